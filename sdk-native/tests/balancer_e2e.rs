//! Behind a load balancer: HAProxy (round robin, each request balanced on its own, a
//! sticky-session cookie) in front of two Node socket.io servers. Every request of a long-polling
//! session, and its WebSocket upgrade, must reach the server that holds the session; the client
//! keeps the balancer's cookie, as a browser does, and sends it back (docs/DEPLOYMENT.md).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, missing_docs)]

mod common;

use std::time::Duration;

use common::haproxy::{Checks, Haproxy};
use common::{NodeServer, within};
use futures_util::StreamExt;
use serde_json::{Value, json};
use tidings::{BackoffStrategy, ConnectionState, ReconnectConfig, Tidings, TransportConfig, TransportKind};

const T: Duration = Duration::from_secs(10);

/// HAProxy in front of `servers`, checking them by TCP. `http-reuse never` and no
/// `prefer-last-server`: each request is balanced on its own, as behind a balancer with many
/// clients, so only the cookie keeps a session together.
fn balancer(servers: &[&NodeServer]) -> Haproxy {
    let ports: Vec<u16> = servers.iter().map(|s| s.port).collect();
    Haproxy::start(&ports, Checks::Tcp, "  http-reuse never\n")
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
    let lb = balancer(&[&a, &b]);
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
    let lb = balancer(&[&a, &b]);
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
    let lb = balancer(&[&a, &b]);
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
    let lb = balancer(&[&a, &b]);
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
