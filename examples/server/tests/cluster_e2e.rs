//! The reference server on three nodes over one Redis, behind HAProxy (sticky cookie, health
//! checks on `/health`, sessions of a node marked down are shut), with real `tidings` clients on
//! both transports and the REST feed, and a `tidings::Publisher` publishing through the balancer
//! (docs/DEPLOYMENT.md, "Several nodes over Redis").
//!
//! Through a node killed mid-stream, Redis killed and restarted, and a node cut off from Redis,
//! every client gets every event exactly once and in order: what its node could not send it, it
//! reads from the feed after its reconnect (socketioxide has no connection state recovery).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, missing_docs)]

mod common;

#[path = "../../../sdk-native/tests/common/haproxy.rs"]
#[allow(dead_code, unreachable_pub)]
mod haproxy;
#[path = "../../../sdk-native/tests/common/proxy.rs"]
#[allow(dead_code, unreachable_pub)]
mod proxy;
#[path = "../../../sdk-native/tests/common/redis.rs"]
#[allow(dead_code, unreachable_pub)]
mod redis;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use futures_util::StreamExt;
use serde_json::{Value, json};
use tidings::{
    BackoffStrategy, Envelope, FeedConfig, FeedStatus, Notice, Publication, Publisher, ReconnectConfig,
    TransportConfig, TransportKind,
};

/// A free port on 127.0.0.1 (bound, then released for the child to take).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Waits up to `t` for `ok`, 20 ms at a time.
fn wait_for(t: Duration, what: &str, mut ok: impl FnMut() -> bool) {
    let mut tries = t.as_millis() / 20;
    while !ok() {
        tries = tries.checked_sub(1).unwrap_or_else(|| panic!("{what}: not within {t:?}"));
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn drain(name: &'static str, child: &mut Child) {
    if let Some(err) = child.stderr.take() {
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                eprintln!("[{name}] {line}");
            }
        });
    }
}

/// A reference-server process on a fixed port. Killed (SIGKILL) on drop.
struct Node {
    port: u16,
    redis_url: String,
    dir: PathBuf,
    env: Vec<(&'static str, &'static str)>,
    child: Option<Child>,
}

impl Node {
    fn start(redis_url: &str) -> Self {
        Self::start_with(redis_url, &[])
    }

    fn start_with(redis_url: &str, env: &[(&'static str, &'static str)]) -> Self {
        let dir = temp_dir("node");
        let mut n = Node { port: free_port(), redis_url: redis_url.to_string(), dir, env: env.to_vec(), child: None };
        n.spawn();
        n
    }

    fn spawn(&mut self) {
        let mut child = Command::new(env!("CARGO_BIN_EXE_tidings-example-server"))
            .args(["--bind", &format!("127.0.0.1:{}", self.port), "--redis-url", &self.redis_url])
            .args(["--jwt-secret", SECRET, "--internal-api-key", KEY, "--data-dir"])
            .arg(&self.dir)
            .env("RUST_LOG", "warn")
            .env("TIDINGS_EMIT_RATE", "off")
            .envs(self.env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drain("node", &mut child);
        self.child = Some(child);
        let port = self.port;
        wait_for(T, "the node listens", || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// What one client received: the `n` of every `task.created`, and its feed's changes.
#[derive(Default)]
struct Seen {
    ns: Vec<u64>,
    feed: Vec<FeedStatus>,
    reconnects: usize,
}

/// A client of `user` through the balancer on `transport`, with the feed, collecting what it
/// gets into the returned `Seen`. Connected when this returns.
async fn listener(lb: &str, user: &str, transport: TransportKind) -> (tidings::Tidings, Arc<Mutex<Seen>>) {
    let mut feed = FeedConfig::new(format!("{lb}/api/polling/acme"));
    feed.interval = Duration::from_secs(1);
    feed.min_interval = Duration::from_secs(1);
    feed.max_interval = Duration::from_secs(2);
    feed.max_failures = 30;
    let c = tidings::Tidings::builder(lb)
        .token(token(user, "acme"))
        .transports(TransportConfig::only(transport))
        .feed(feed)
        .reconnect(ReconnectConfig {
            backoff: BackoffStrategy::SocketIo { min_ms: 100, max_ms: 1_000, factor: 2.0, randomization: 0.5 },
            ..ReconnectConfig::default()
        })
        .build()
        .unwrap();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let mut events = c.on::<Envelope<Value>>("task.created");
    let mut notices = c.notices();
    let s = seen.clone();
    tokio::spawn(async move {
        while let Some(e) = events.next().await {
            let e = e.unwrap();
            s.lock().unwrap().ns.push(e.data.data["n"].as_u64().unwrap());
        }
    });
    let s = seen.clone();
    tokio::spawn(async move {
        while let Some(n) = notices.next().await {
            match n {
                Notice::Feed(f) => s.lock().unwrap().feed.push(f),
                Notice::State(tidings::ConnectionState::Connected { .. }) => s.lock().unwrap().reconnects += 1,
                _ => {}
            }
        }
    });
    c.wait_connected(Duration::from_secs(30)).await.unwrap();
    (c, seen)
}

fn publisher(lb: &str) -> Publisher {
    Publisher::builder(lb)
        .api_key(KEY)
        .backoff(BackoffStrategy::SocketIo { min_ms: 100, max_ms: 1_000, factor: 2.0, randomization: 0.5 })
        .max_attempts(60)
        .build()
        .unwrap()
}

/// Publishes `task.created` `{n}` to the tenant for each `n`, `pace` apart.
async fn publish(p: &Publisher, ns: std::ops::Range<u64>, pace: Duration) {
    for n in ns {
        p.publish(Publication::to_room("tenant:acme", "task.created", json!({ "n": n }))).await.unwrap();
        tokio::time::sleep(pace).await;
    }
}

/// Waits until every listener has `total` events, then checks they are `0..total` exactly.
async fn assert_every_event_once_in_order(seen: &[(&str, &Arc<Mutex<Seen>>)], total: u64) {
    let all = || seen.iter().all(|(_, s)| s.lock().unwrap().ns.len() as u64 >= total);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !all() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A little longer: a duplicate would arrive now.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for (who, s) in seen {
        let s = s.lock().unwrap();
        let expected: Vec<u64> = (0..total).collect();
        assert_eq!(s.ns, expected, "{who}: every event once, in order (feed: {:?})", s.feed);
    }
}

/// At least `n` of the clients reconnected (to another node), and each that did caught up from
/// the feed.
fn assert_moved_and_caught_up(seen: &[&Arc<Mutex<Seen>>], n: usize) {
    let moved: Vec<&&Arc<Mutex<Seen>>> = seen.iter().filter(|s| s.lock().unwrap().reconnects > 1).collect();
    assert!(moved.len() >= n, "{} of the clients reconnected, expected {n} at least", moved.len());
    for s in moved {
        let feed = &s.lock().unwrap().feed;
        assert!(feed.contains(&FeedStatus::CatchingUp) && feed.contains(&FeedStatus::CaughtUp), "{feed:?}");
    }
}

/// Sockets connected to each node (its `/health`), or None for a node that does not answer.
async fn sockets(nodes: &[&Node]) -> Vec<Option<u64>> {
    let mut out = Vec::new();
    for n in nodes {
        let got = reqwest::get(format!("{}/health", n.url())).await.ok();
        let body = match got {
            Some(r) => r.text().await.ok().and_then(|t| serde_json::from_str::<Value>(&t).ok()),
            None => None,
        };
        out.push(body.and_then(|b| b["sockets"].as_u64()));
    }
    out
}

use redis::RedisServer as Redis;

/// HAProxy in front of the nodes: round robin, the `SRV` cookie for long-polling sessions, a
/// health check of `/health` every 200 ms, and the sessions of a node marked down shut.
fn balancer(nodes: &[&Node]) -> haproxy::Haproxy {
    let ports: Vec<u16> = nodes.iter().map(|n| n.port).collect();
    haproxy::Haproxy::start(&ports, haproxy::Checks::Health, "")
}

struct Cluster {
    redis: Redis,
    nodes: Vec<Node>,
    lb: haproxy::Haproxy,
}

fn cluster() -> Cluster {
    let redis = Redis::start_durable();
    let nodes: Vec<Node> = (0..3).map(|_| Node::start(&redis.url())).collect();
    let lb = balancer(&nodes.iter().collect::<Vec<_>>());
    Cluster { redis, nodes, lb }
}

#[tokio::test]
async fn an_event_published_on_one_node_reaches_clients_on_every_node_in_order() {
    let c = cluster();
    // One client straight on each node.
    let mut clients = Vec::new();
    for (i, n) in c.nodes.iter().enumerate() {
        clients.push(listener(&n.url(), &format!("u{i}"), TransportKind::WebSocket).await);
    }
    // Published on all three nodes in turn, interleaved.
    let publishers: Vec<Publisher> = c.nodes.iter().map(|n| publisher(&n.url())).collect();
    for n in 0..60u64 {
        let p = &publishers[(n % 3) as usize];
        p.publish(Publication::to_room("tenant:acme", "task.created", json!({ "n": n }))).await.unwrap();
        p.flush().await;
    }
    let seen: Vec<(&str, &Arc<Mutex<Seen>>)> = clients.iter().map(|(_, s)| ("a client", s)).collect();
    assert_every_event_once_in_order(&seen, 60).await;
    // An idempotency key is honoured across nodes.
    let body = json!({ "to": { "room": "tenant:acme" }, "event": "task.created", "data": { "n": 60 }, "idempotencyKey": "k-1" });
    let (s1, first, r1) = emit(&c.nodes[0].url(), body.clone()).await;
    let (s2, again, r2) = emit(&c.nodes[2].url(), body).await;
    assert_eq!((s1, s2), (200, 200));
    assert_eq!(first["offset"], again["offset"]);
    assert_eq!((r1, r2.as_deref()), (None, Some("true")), "the second node answers with the first event");
    // The feed of any node serves the same log.
    let tok = token("u0", "acme");
    let (_, a) = feed(&c.nodes[1].url(), "acme", &tok, "since=10&limit=5").await;
    let (_, b) = feed(&c.lb.url(), "acme", &tok, "since=10&limit=5").await;
    assert_eq!(a["events"], b["events"]);
    assert_eq!(a["events"][0]["offset"], 11);
    // Backwards too, from Redis: the five before offset 20, oldest first.
    let (_, back) = feed(&c.nodes[2].url(), "acme", &tok, "before=20&limit=5").await;
    let offsets: Vec<u64> = back["events"].as_array().unwrap().iter().map(|e| e["offset"].as_u64().unwrap()).collect();
    assert_eq!(offsets, [15, 16, 17, 18, 19], "{back}");
    assert_eq!(back["cursor"], 15);
    // The versioned path of the internal API is the same endpoint.
    let (status, v1, _) = http(
        "POST",
        &format!("{}/internal/v1/emit", c.nodes[1].url()),
        &[("x-internal-api-key", KEY)],
        Some(json!({ "to": { "room": "tenant:acme" }, "event": "task.created", "data": { "n": 61 } }).to_string()),
    )
    .await;
    assert_eq!((status, v1["offset"].as_u64()), (200, Some(62)), "{v1}");
    assert!(!c.nodes[0].dir.join("events").exists(), "with Redis, no node writes a log file");
    for (c, _) in clients {
        c.close().await;
    }
}

#[tokio::test]
async fn a_node_killed_mid_stream_loses_no_event_for_its_clients() {
    let mut c = cluster();
    let (ws, ws_seen) = listener(&c.lb.url(), "alice", TransportKind::WebSocket).await;
    let (poll, poll_seen) = listener(&c.lb.url(), "bob", TransportKind::Polling).await;
    let p = publisher(&c.lb.url());
    publish(&p, 0..40, Duration::from_millis(10)).await;
    // The node of a client dies (SIGKILL: no goodbye to anyone) while the stream goes on.
    let counts = sockets(&c.nodes.iter().collect::<Vec<_>>()).await;
    let victim = counts.iter().position(|n| n.unwrap_or(0) > 0).expect("a node has a client");
    let stream = {
        let lb = c.lb.url();
        tokio::spawn(async move {
            let p = publisher(&lb);
            publish(&p, 40..200, Duration::from_millis(10)).await;
            p.flush().await;
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    c.nodes[victim].kill();
    within("the stream", stream).await.unwrap();
    p.flush().await;
    assert_every_event_once_in_order(&[("websocket", &ws_seen), ("polling", &poll_seen)], 200).await;
    assert_moved_and_caught_up(&[&ws_seen, &poll_seen], 1);
    ws.close().await;
    poll.close().await;
}

#[tokio::test]
async fn redis_killed_and_restarted_mid_stream_loses_nothing_acknowledged() {
    let mut c = cluster();
    let (ws, ws_seen) = listener(&c.lb.url(), "alice", TransportKind::WebSocket).await;
    let (poll, poll_seen) = listener(&c.lb.url(), "bob", TransportKind::Polling).await;
    let lb = c.lb.url();
    let stream = tokio::spawn(async move {
        let p = publisher(&lb);
        publish(&p, 0..150, Duration::from_millis(10)).await;
        p.flush().await;
        p.metrics()
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    c.redis.kill();
    // Every node reports it: HAProxy takes them all out; publishes get 503 and are retried.
    let nodes: Vec<&Node> = c.nodes.iter().collect();
    let mut unavailable = false;
    for _ in 0..100 {
        let r = reqwest::get(format!("{}/health", nodes[0].url())).await.unwrap();
        if r.status() == 503 {
            unavailable = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(unavailable, "/health says 503 while Redis is away");
    tokio::time::sleep(Duration::from_secs(1)).await;
    c.redis.restart();
    let metrics = tokio::time::timeout(Duration::from_secs(60), stream).await.expect("the stream ends").unwrap();
    assert!(metrics.retried > 0, "publishes were retried while Redis was away: {metrics:?}");
    assert_eq!(metrics.failed, 0, "{metrics:?}");
    assert_every_event_once_in_order(&[("websocket", &ws_seen), ("polling", &poll_seen)], 150).await;
    ws.close().await;
    poll.close().await;
}

// Multi-threaded: the fault proxy runs on this runtime while the test thread waits for the nodes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_cut_off_from_redis_hands_its_clients_over_and_misses_nothing() {
    let redis = Redis::start_durable();
    // Node 0 reaches Redis through a proxy that can blackhole it.
    let cut = proxy::FaultProxy::start(redis.port()).await;
    let redis_via_proxy = format!("redis://127.0.0.1:{}", cut.port);
    let nodes = [Node::start(&redis_via_proxy), Node::start(&redis.url()), Node::start(&redis.url())];
    let lb = balancer(&nodes.iter().collect::<Vec<_>>());
    // Clients straight on node 0 would have nowhere to go: these come through the balancer, and
    // node 0 gets at least one of them (round robin over three, and two clients per transport).
    let mut listeners = Vec::new();
    for (i, t) in [TransportKind::WebSocket, TransportKind::Polling, TransportKind::WebSocket, TransportKind::Polling]
        .into_iter()
        .enumerate()
    {
        listeners.push(listener(&lb.url(), &format!("u{i}"), t).await);
    }
    let on_node_0 = sockets(&nodes.iter().collect::<Vec<_>>()).await[0].unwrap_or(0);
    assert!(on_node_0 > 0, "node 0 has clients");
    let url = lb.url();
    let stream = tokio::spawn(async move {
        let p = publisher(&url);
        publish(&p, 0..200, Duration::from_millis(10)).await;
        p.flush().await;
    });
    tokio::time::sleep(Duration::from_millis(400)).await;
    cut.set(proxy::Mode::Blackhole);
    tokio::time::sleep(Duration::from_secs(3)).await;
    cut.set(proxy::Mode::Pass);
    cut.reset_all();
    within("the stream", stream).await.unwrap();
    let seen: Vec<(&str, &Arc<Mutex<Seen>>)> = listeners.iter().map(|(_, s)| ("a client", s)).collect();
    assert_every_event_once_in_order(&seen, 200).await;
    assert_moved_and_caught_up(&seen.iter().map(|(_, s)| *s).collect::<Vec<_>>(), on_node_0 as usize);
    for (c, _) in listeners {
        c.close().await;
    }
    drop(lb);
    drop(nodes);
}

/// Past the retention (`TIDINGS_REDIS_MAX_EVENTS`, trimmed about), old events are gone, and a
/// feed read from before the oldest kept one says which offsets it cannot give.
#[tokio::test]
async fn a_feed_read_from_before_the_retention_says_what_is_gone() {
    let redis = Redis::start_durable();
    let node = Node::start_with(&redis.url(), &[("TIDINGS_REDIS_MAX_EVENTS", "10")]);
    let p = publisher(&node.url());
    publish(&p, 0..400, Duration::ZERO).await;
    p.flush().await;
    let tok = token("alice", "acme");
    let (status, page) = feed(&node.url(), "acme", &tok, "since=0&limit=5").await;
    assert_eq!(status, 200, "{page}");
    let first = page["events"][0]["offset"].as_u64().unwrap();
    assert!(first > 1 && first <= 391, "trimmed to about 10 (whole stream nodes at a time): {first}");
    assert_eq!(page["truncated"], json!({ "from": 1, "to": first - 1 }));
    // From inside what is kept: nothing to say.
    let (_, page) = feed(&node.url(), "acme", &tok, &format!("since={first}&limit=5")).await;
    assert!(page.get("truncated").is_none(), "{page}");
    assert_eq!(page["events"][0]["offset"], first + 1);
}
