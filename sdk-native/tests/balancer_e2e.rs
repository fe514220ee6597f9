//! Behind a load balancer: HAProxy (round robin, each request balanced on its own, a
//! sticky-session cookie) in front of two Node socket.io servers. Every request of a long-polling
//! session, and its WebSocket upgrade, must reach the server that holds the session; the client
//! keeps the balancer's cookie, as a browser does, and sends it back (docs/DEPLOYMENT.md).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, missing_docs)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{NodeServer, within};
use futures_util::StreamExt;
use serde_json::{Value, json};
use tidings::{BackoffStrategy, ConnectionState, ReconnectConfig, Tidings, TransportConfig, TransportKind};

const T: Duration = Duration::from_secs(10);

/// HAProxy on an ephemeral 127.0.0.1 port in front of `servers`. Killed on drop.
struct Balancer {
    port: u16,
    child: Child,
    dir: std::path::PathBuf,
}

impl Balancer {
    fn start(servers: &[&NodeServer]) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let dir =
            std::env::temp_dir().join(format!("tidings-haproxy-{}-{}", std::process::id(), rand::random::<u32>()));
        std::fs::create_dir_all(&dir).unwrap();
        let backends: String = servers
            .iter()
            .enumerate()
            .map(|(i, s)| format!("  server s{i} 127.0.0.1:{} cookie s{i} check inter 200 fall 1 rise 1\n", s.port))
            .collect();
        // `http-reuse never` and no `prefer-last-server`: each request is balanced on its own,
        // as behind a balancer with many clients, so only the cookie keeps a session together.
        let cfg = format!(
            "global\n  maxconn 512\n\
             defaults\n  mode http\n  timeout connect 2s\n  timeout client 30s\n  timeout server 30s\n  timeout tunnel 60s\n  option redispatch\n  retries 2\n\
             frontend fe\n  bind 127.0.0.1:{port}\n  default_backend be\n\
             backend be\n  balance roundrobin\n  http-reuse never\n  cookie SRV insert indirect nocache\n{backends}"
        );
        let path = dir.join("haproxy.cfg");
        std::fs::write(&path, cfg).unwrap();
        let mut child = Command::new("haproxy")
            .args(["-db", "-f"])
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("haproxy must be installed (the test command installs it from Debian)");
        let stderr = child.stderr.take().expect("piped");
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("[haproxy] {line}");
            }
        });
        // Up to T, 20 ms at a time.
        let mut tries = T.as_millis() / 20;
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            tries = tries.checked_sub(1).unwrap_or_else(|| panic!("haproxy did not listen on {port} within {T:?}"));
            std::thread::sleep(Duration::from_millis(20));
        }
        Balancer { port, child, dir }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Engine sessions each server holds.
async fn sessions(servers: &[&NodeServer]) -> Vec<u64> {
    let mut out = Vec::new();
    for s in servers {
        out.push(s.control("GET", "info", None).await["engineClients"].as_u64().unwrap_or(0));
    }
    out
}

fn client(url: &str, transports: TransportConfig) -> Tidings {
    Tidings::builder(url)
        .transports(transports)
        .reconnect(ReconnectConfig {
            backoff: BackoffStrategy::SocketIo { min_ms: 100, max_ms: 500, factor: 2.0, randomization: 0.5 },
            ..ReconnectConfig::default()
        })
        .build()
        .unwrap()
}

async fn connected(c: &Tidings) -> TransportKind {
    let mut states = c.watch_state();
    within(T, "connected", async {
        loop {
            if let ConnectionState::Connected { transport, .. } = c.state() {
                return transport;
            }
            let _ = states.changed().await;
        }
    })
    .await
}

/// The control: without the cookie, the balancer sends a session's second request to the other
/// server, which does not know the session.
#[tokio::test]
async fn without_the_cookie_a_polling_session_reaches_the_wrong_server() {
    let (a, b) = (NodeServer::start("s0"), NodeServer::start("s0"));
    let lb = Balancer::start(&[&a, &b]);
    let http = reqwest::Client::new();
    let base = format!("{}/socket.io/?EIO=4&transport=polling", lb.url());
    let open = within(T, "handshake", http.get(&base).send()).await.unwrap();
    assert!(open.headers().get("set-cookie").is_some(), "the balancer sets its cookie");
    let body = open.text().await.unwrap();
    let handshake: Value = serde_json::from_str(body.strip_prefix('0').unwrap()).unwrap();
    let sid = handshake["sid"].as_str().unwrap();
    let poll = within(T, "poll", http.get(format!("{base}&sid={sid}")).send()).await.unwrap();
    assert_eq!(poll.status(), 400, "round robin sent the poll to the other server");
    assert!(poll.text().await.unwrap().contains("Session ID unknown"));
}

#[tokio::test]
async fn a_long_polling_session_stays_on_its_server_through_the_balancers_cookie() {
    let (a, b) = (NodeServer::start("s0"), NodeServer::start("s0"));
    let lb = Balancer::start(&[&a, &b]);
    let c = client(&lb.url(), TransportConfig::only(TransportKind::Polling));
    let mut news = c.on::<u32>("news");
    assert_eq!(connected(&c).await, TransportKind::Polling);
    let counts = sessions(&[&a, &b]).await;
    assert_eq!(counts.iter().sum::<u64>(), 1, "one session: {counts:?}");
    let home = if counts[0] == 1 { &a } else { &b };
    // Many polling round trips (each GET is answered by an event, then a new GET goes out), and
    // emits with acks (POSTs): each must reach the session's server.
    for i in 0..30u32 {
        home.emit("/", "news", json!([i])).await;
        let got = within(T, "an event", news.next()).await.unwrap().unwrap();
        assert_eq!(got.data, i);
        if i % 10 == 0 {
            let ack = within(T, "an ack", c.emit_with_ack("echo", &json!({ "i": i }), T)).await.unwrap();
            assert_eq!(ack.deserialize::<Value>().unwrap(), json!({ "i": i }));
        }
    }
    assert!(matches!(c.state(), ConnectionState::Connected { .. }), "never dropped: {:?}", c.state());
    assert_eq!(sessions(&[&a, &b]).await.iter().sum::<u64>(), 1, "no second session was opened");
    c.close().await;
}

#[tokio::test]
async fn the_websocket_upgrade_reaches_the_polling_sessions_server() {
    let (a, b) = (NodeServer::start("s0"), NodeServer::start("s0"));
    let lb = Balancer::start(&[&a, &b]);
    let c = client(&lb.url(), TransportConfig::polling_first());
    let mut news = c.on::<String>("news");
    connected(&c).await;
    let mut states = c.watch_state();
    within(T, "the upgrade", async {
        while !matches!(c.state(), ConnectionState::Connected { transport: TransportKind::WebSocket, .. }) {
            let _ = states.changed().await;
        }
    })
    .await;
    let counts = sessions(&[&a, &b]).await;
    assert_eq!(counts.iter().sum::<u64>(), 1, "the upgrade joined the session, not a new one: {counts:?}");
    let home = if counts[0] == 1 { &a } else { &b };
    home.emit("/", "news", json!(["over websocket"])).await;
    assert_eq!(within(T, "an event", news.next()).await.unwrap().unwrap().data, "over websocket");
    c.close().await;
}

/// The session's server dies: the balancer sends the next request elsewhere ("Session ID
/// unknown"), the client opens a new session there, and the new cookie keeps it there.
#[tokio::test]
async fn when_the_sessions_server_dies_the_client_starts_over_on_the_other_one() {
    let (a, b) = (NodeServer::start("s0"), NodeServer::start("s0"));
    let lb = Balancer::start(&[&a, &b]);
    let c = client(&lb.url(), TransportConfig::only(TransportKind::Polling));
    let mut news = c.on::<String>("news");
    connected(&c).await;
    let counts = sessions(&[&a, &b]).await;
    let (home, other) = if counts[0] == 1 { (a, b) } else { (b, a) };
    let mut states = c.watch_state();
    drop(home);
    within(T, "the drop", async {
        while matches!(c.state(), ConnectionState::Connected { .. }) {
            let _ = states.changed().await;
        }
    })
    .await;
    connected(&c).await;
    assert_eq!(sessions(&[&other]).await, vec![1], "the new session is on the surviving server");
    other.emit("/", "news", json!(["still here"])).await;
    assert_eq!(within(T, "an event", news.next()).await.unwrap().unwrap().data, "still here");
    c.close().await;
}
