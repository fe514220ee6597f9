//! A cluster of Node socket.io servers sharing a real Redis through
//! `@socket.io/redis-streams-adapter` (docs/DEPLOYMENT.md, "Node cluster with the Redis streams
//! adapter"). The client is connected to node A with node B as its fallback URL, in a room, while
//! events are broadcast to that room through a third node, C, without a pause: every event
//! reaches the client, on A and then on B, only through the Redis stream. A then ends mid-stream
//! and the client moves to B:
//!
//! - **A is stopped (SIGTERM)**: `io.close()` ends each socket with "server shutting down", which
//!   stores its session (id, rooms, data) in Redis, and closes the transports without a
//!   DISCONNECT packet. B restores the session (`recovered: true`, same socket id, the room held
//!   without a join) and replays, from the stream, what the client missed: every event arrives
//!   exactly once and in order.
//! - **A crashes (SIGKILL)**: nothing stores the session, so B has none to restore
//!   (`recovered: false`, a new socket id; the client reports it, and joins its room again).
//!   The events broadcast while the client was between the nodes are lost to it; those before
//!   the crash and those after the join arrive once and in order.
//!
//! In both, node B refuses Socket.IO for a moment around A's end, so the client surely spends
//! some time connected to no node while the events go on.
//!
//! Two races of socket.io 4.8.4 with the adapter 0.3.1 at the restore, both at the instant of the
//! move (docs/DEPLOYMENT.md has the details), shape the test:
//!
//! - An event broadcast *by the restoring node* then can be lost (the node's local delivery runs
//!   before the restored socket is registered, and its stream entry came after the restore's
//!   last read). With the events broadcast through B, 3 of about 40 recoveries lost one, and B's
//!   frame log showed that B never sent it. Hence C.
//! - An event broadcast elsewhere then can be sent twice by B, in the replay and again by B's
//!   stream reader after the CONNECT ack (B's frame log shows the same entry twice; 2 or 3 of
//!   about 100 recoveries). The client's offset de-duplication covers only the replay before the
//!   ack, so the ticks are envelopes with an id, which the client de-duplicates always.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, missing_docs)]

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::redis::RedisServer;
use common::{NodeServer, eventually, within};
use futures_util::StreamExt;
use serde_json::{Value, json};
use tidings::{BackoffStrategy, ConnectionState, Notice, ReconnectConfig, Tidings, TransportConfig, TransportKind};

const T: Duration = Duration::from_secs(15);
const ROOM: &str = "cluster:1";
const JOIN: &str = r#"["room:join","cluster:1"]"#;

fn reconnect() -> ReconnectConfig {
    ReconnectConfig {
        backoff: BackoffStrategy::SocketIo { min_ms: 100, max_ms: 500, factor: 2.0, randomization: 0.5 },
        ..ReconnectConfig::default()
    }
}

/// Redis and three Node servers (setup s1: connection state recovery) sharing it: A and B for
/// the client, C for the publisher.
fn cluster() -> (RedisServer, NodeServer, NodeServer, NodeServer) {
    let redis = RedisServer::start();
    let node = || NodeServer::start_with("s1", &["--redis-url", &redis.url()]);
    let (a, b, c) = (node(), node(), node());
    (redis, a, b, c)
}

/// Broadcasts `tick` 0, 1, 2, ... to [`ROOM`] through one node's control endpoint, one request
/// after the other (so the node appends them to the Redis stream in that order), every 10 ms,
/// until stopped. Each tick is an envelope, `{"id":"tick-N","data":N}`: the client de-duplicates
/// envelopes by id, which the restore needs (see the module's doc).
struct Ticker {
    sent: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Ticker {
    fn start(via: &NodeServer) -> Self {
        let url = format!("http://127.0.0.1:{}/control/to?room={ROOM}&event=tick", via.port);
        let (sent, stop) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicBool::new(false)));
        let (s, st) = (sent.clone(), stop.clone());
        let task = tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut i = 0u64;
            while !st.load(Ordering::SeqCst) {
                let tick = json!([{"id": format!("tick-{i}"), "data": i}]);
                let answer = within(T, "a tick broadcast", http.post(&url).body(tick.to_string()).send()).await;
                assert!(answer.expect("the control endpoint answers").status().is_success());
                i += 1;
                s.store(i, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        });
        Self { sent, stop, task }
    }

    /// How many ticks were broadcast so far (the next one is this number).
    fn sent(&self) -> u64 {
        self.sent.load(Ordering::SeqCst)
    }

    /// Stops after the tick in flight; returns how many were broadcast.
    async fn stop(self) -> u64 {
        self.stop.store(true, Ordering::SeqCst);
        let sent = self.sent.clone();
        within(T, "the ticker's end", self.task).await.expect("the ticker did not fail");
        sent.load(Ordering::SeqCst)
    }
}

/// Every `tick` the client receives (its `data`), in the order received.
fn collect(client: &Tidings) -> Arc<Mutex<Vec<u64>>> {
    let got = Arc::new(Mutex::new(Vec::new()));
    let mut ticks = client.on::<Value>("tick");
    let sink = got.clone();
    tokio::spawn(async move {
        while let Some(tick) = ticks.next().await {
            let tick = tick.expect("a tick decodes").data;
            sink.lock().unwrap().push(tick["data"].as_u64().unwrap_or_else(|| panic!("a tick: {tick}")));
        }
    });
    got
}

/// Notices until `pred` matches one; returns that one.
async fn until(n: &mut tidings::Notices, what: &str, pred: impl Fn(&Notice) -> bool) -> Notice {
    loop {
        let notice = within(T, what, n.recv()).await.expect("client alive");
        if pred(&notice) {
            return notice;
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EndOfA {
    /// SIGTERM: socket.io closes, storing each session in Redis.
    Stop,
    /// SIGKILL: the process is gone at once, nothing is stored.
    Crash,
}

async fn moves_from_a_to_b(transports: TransportConfig, end: EndOfA) {
    let (redis, mut a, b, c) = cluster();
    let client = Tidings::builder(&a.url())
        .fallback_url(&b.url())
        .token("t1")
        .transports(transports)
        .reconnect(reconnect())
        .build()
        .unwrap();
    let mut notices = client.notices();
    let first =
        until(&mut notices, "connected to A", |n| matches!(n, Notice::State(ConnectionState::Connected { .. }))).await;
    let Notice::State(ConnectionState::Connected { sid: sid_a, .. }) = first else { unreachable!() };
    let got = collect(&client);
    within(T, "join", client.join(ROOM)).await.unwrap();
    assert!(a.has_member_in(ROOM, T).await, "the client is in the room on A");
    let on_b = b.control("GET", "sockets", None).await;
    assert_eq!(on_b, json!([]), "nobody on B yet");

    // The events are broadcast through C: they reach the client, on A and then on B, only
    // through the Redis stream.
    let ticker = Ticker::start(&c);
    assert!(eventually(T, || got.lock().unwrap().len() >= 20).await, "ticks reach A's socket through Redis");

    // B refuses Socket.IO for a moment, A ends: the client is connected to no node while the
    // ticks go on.
    b.control("POST", "refuse-socketio?on=1", None).await;
    match end {
        EndOfA::Stop => assert!(a.terminate().success(), "A exits 0 after SIGTERM"),
        EndOfA::Crash => drop(a),
    }
    // A has exited: from this tick on, until B accepts the client, none can reach it live.
    let dead = ticker.sent();
    // Redis holds the stream, and the session if A stored it.
    let keys = if end == EndOfA::Stop { ":2\r\n" } else { ":1\r\n" };
    assert_eq!(redis.command("DBSIZE"), keys, "{end:?}: the stream, and the session only if A stored it");
    until(
        &mut notices,
        "several failed attempts",
        |n| matches!(n, Notice::State(ConnectionState::Reconnecting { attempt, .. }) if *attempt >= 3),
    )
    .await;
    let away = ticker.sent();
    assert!(away > dead, "ticks were broadcast while the client was connected to no node");
    let missed: Vec<u64> = (dead..away).collect();
    b.control("POST", "refuse-socketio?on=0", None).await;

    let moved =
        until(&mut notices, "connected to B", |n| matches!(n, Notice::State(ConnectionState::Connected { .. }))).await;
    let Notice::State(ConnectionState::Connected { recovered, sid, .. }) = moved else { unreachable!() };
    let sockets = b.control("GET", "sockets", None).await;
    assert_eq!(sockets.as_array().map(Vec::len), Some(1), "the client is on B: {sockets}");
    assert!(b.has_member_in(ROOM, T).await, "the client is in the room on B: {sockets}");
    let rejoined_at = ticker.sent();

    // The stream goes on for a while on B, then stops; every tick that is going to arrive has
    // arrived when one more sent after it has.
    let more = rejoined_at + 30;
    assert!(eventually(T, || ticker.sent() >= more).await);
    let total = ticker.stop().await;
    let last = total - 1;
    assert!(eventually(T, || got.lock().unwrap().last() == Some(&last)).await, "the last tick arrives");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let got = got.lock().unwrap().clone();
    eprintln!(
        "{end:?}: recovered {recovered}; {total} ticks broadcast, {} received; A gone at {dead}, \
         the client on no node until at least {away}, in the room on B from {rejoined_at}",
        got.len()
    );

    // What B sent of the ticks, replayed and live: the same stream entry twice is the adapter's
    // duplicate at the restore (the module's doc), which the envelope's id keeps from the handler.
    let mut from_b: Vec<String> = b.sent().into_iter().filter(|f| f.contains(r#"["tick","#)).collect();
    let sent_by_b = from_b.len();
    from_b.sort();
    from_b.dedup();
    eprintln!("{end:?}: B sent {sent_by_b} tick frames, {} of them twice", sent_by_b - from_b.len());
    match end {
        EndOfA::Stop => {
            assert!(recovered, "B restored the session A stored in Redis");
            assert_eq!(sid, sid_a, "the same socket");
            assert_eq!(sockets[0]["recovered"], json!(true), "{sockets}");
            assert!(!b.received().iter().any(|f| f.contains(JOIN)), "the room came back with the session, no join");
            // Including those broadcast while the client was on no node: B replayed them from
            // the stream.
            assert!(missed.iter().all(|t| got.contains(t)), "{dead}..{away} replayed: {got:?}");
            assert_eq!(got, (0..total).collect::<Vec<_>>(), "every tick exactly once and in order; B sent {from_b:?}");
        }
        EndOfA::Crash => {
            assert!(!recovered, "a crashed node stored no session: B starts a new one");
            assert_ne!(sid, sid_a);
            assert_eq!(sockets[0]["recovered"], json!(false), "{sockets}");
            assert!(b.received().iter().any(|f| f.contains(JOIN)), "the client joined its room again on B");
            // Once each, in order; everything A delivered before the crash, everything after the
            // join on B; what was broadcast in between is lost to this client.
            assert!(got.windows(2).all(|w| w[0] < w[1]), "once each and in order: {got:?}");
            let prefix = got.iter().zip(0..).take_while(|(t, i)| *t == i).count() as u64;
            assert!(prefix >= 20, "the ticks before the crash: {got:?}");
            assert!(
                !got.iter().any(|t| missed.contains(t)),
                "the ticks broadcast while the client was on no node ({dead}..{away}) are lost: {got:?}"
            );
            let after: Vec<u64> = got.iter().copied().filter(|t| *t >= rejoined_at).collect();
            assert_eq!(after, (rejoined_at..total).collect::<Vec<_>>(), "every tick after the join on B");
        }
    }
    within(T, "closing", client.close()).await;
}

#[tokio::test]
async fn a_stopped_node_s_session_is_recovered_on_the_other_node_over_websocket() {
    moves_from_a_to_b(TransportConfig::only(TransportKind::WebSocket), EndOfA::Stop).await;
}

#[tokio::test]
async fn a_stopped_node_s_session_is_recovered_on_the_other_node_over_long_polling() {
    moves_from_a_to_b(TransportConfig::only(TransportKind::Polling), EndOfA::Stop).await;
}

#[tokio::test]
async fn a_crashed_node_s_session_is_not_recovered_and_the_client_rejoins_over_websocket() {
    moves_from_a_to_b(TransportConfig::only(TransportKind::WebSocket), EndOfA::Crash).await;
}

#[tokio::test]
async fn a_crashed_node_s_session_is_not_recovered_and_the_client_rejoins_over_long_polling() {
    moves_from_a_to_b(TransportConfig::only(TransportKind::Polling), EndOfA::Crash).await;
}

/// The control: two nodes with recovery but without the adapter (each keeps its sessions in
/// memory). A stopped the same way, B has no session to restore.
#[tokio::test]
async fn without_the_adapter_a_stopped_node_s_session_is_not_recovered_on_the_other_node() {
    let mut a = NodeServer::start("s1");
    let b = NodeServer::start("s1");
    let client = Tidings::builder(&a.url())
        .fallback_url(&b.url())
        .transports(TransportConfig::only(TransportKind::WebSocket))
        .reconnect(reconnect())
        .build()
        .unwrap();
    let mut notices = client.notices();
    until(&mut notices, "connected to A", |n| matches!(n, Notice::State(ConnectionState::Connected { .. }))).await;
    let got = collect(&client);
    within(T, "join", client.join(ROOM)).await.unwrap();
    a.to_room(ROOM, "tick", json!([{"id": "tick-0", "data": 0}])).await;
    assert!(eventually(T, || got.lock().unwrap().len() == 1).await, "a tick with an offset from A");
    assert!(a.terminate().success());
    let moved =
        until(&mut notices, "connected to B", |n| matches!(n, Notice::State(ConnectionState::Connected { .. }))).await;
    assert!(matches!(moved, Notice::State(ConnectionState::Connected { recovered: false, .. })), "{moved:?}");
    assert!(b.has_member_in(ROOM, T).await, "the client joined its room again on B");
    within(T, "closing", client.close()).await;
}

/// The Redis helper other tests build on: `stop` saves, `restart` brings the data back on the same
/// port, `kill` loses what was not saved.
#[test]
fn redis_restarts_on_its_port_with_its_data() {
    let mut redis = RedisServer::start();
    let port = redis.port();
    assert_eq!(redis.url(), format!("redis://127.0.0.1:{port}"));
    assert_eq!(redis.command("SET kept 1"), "+OK\r\n");
    redis.restart();
    assert_eq!(redis.port(), port);
    assert_eq!(redis.command("GET kept"), "1");
    assert_eq!(redis.command("SET lost 1"), "+OK\r\n");
    redis.kill();
    redis.restart();
    assert_eq!(redis.command("GET kept"), "1");
    assert_eq!(redis.command("EXISTS lost"), ":0\r\n");
}

/// Node A loses Redis (a blackhole: nothing forwarded, no RST) while the ticks go on through C,
/// then gets it back (the stuck connections reset, as a timeout would). The client on A stays
/// connected: A's adapter resumes reading the stream where it stopped, so the ticks of the outage
/// arrive late, then the rest, every one once and in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_cut_off_from_redis_resumes_the_stream_and_its_client_misses_nothing() {
    let redis = RedisServer::start();
    let cut = common::proxy::FaultProxy::start(redis.port()).await;
    let via_proxy = format!("redis://127.0.0.1:{}", cut.port);
    let a = NodeServer::start_with("s1", &["--redis-url", &via_proxy]);
    let c = NodeServer::start_with("s1", &["--redis-url", &redis.url()]);
    let client = Tidings::builder(&a.url())
        .transports(TransportConfig::only(TransportKind::WebSocket))
        .reconnect(reconnect())
        .build()
        .unwrap();
    let mut notices = client.notices();
    until(&mut notices, "connected to A", |n| matches!(n, Notice::State(ConnectionState::Connected { .. }))).await;
    let got = collect(&client);
    within(T, "join", client.join(ROOM)).await.unwrap();
    let ticker = Ticker::start(&c);
    assert!(eventually(T, || got.lock().unwrap().len() >= 20).await, "ticks reach A's socket through Redis");
    cut.set(common::proxy::Mode::Blackhole);
    let from = ticker.sent();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let until_tick = ticker.sent();
    let received_meanwhile = got.lock().unwrap().iter().filter(|t| **t > from + 2).count();
    assert!(until_tick > from + 50, "ticks went on through C: {from}..{until_tick}");
    cut.set(common::proxy::Mode::Pass);
    cut.reset_all();
    let more = until_tick + 30;
    assert!(eventually(T, || ticker.sent() >= more).await);
    let total = ticker.stop().await;
    assert!(eventually(T, || got.lock().unwrap().len() as u64 >= total).await, "every tick arrives");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let got = got.lock().unwrap().clone();
    eprintln!("cut from tick {from} to {until_tick}; {received_meanwhile} ticks reached A meanwhile; {total} in all");
    assert!(received_meanwhile < 10, "A did not read the stream while cut off ({received_meanwhile})");
    assert_eq!(got, (0..total).collect::<Vec<_>>(), "every tick once and in order");
    let states: Vec<Notice> = std::iter::from_fn(|| notices.try_recv()).collect();
    assert!(
        !states.iter().any(|n| matches!(n, Notice::State(ConnectionState::Disconnected { .. }))),
        "the client stayed connected to A: {states:?}"
    );
    within(T, "closing", client.close()).await;
}

/// Redis is killed (SIGKILL, an append-only file fsync'd on every write) and restarted on its
/// port while the ticks go on through C, to a client on A. The client side holds: it stays
/// connected, gets every tick broadcast before the kill and those after A is reading the stream
/// again, each once and in order. What was broadcast during the outage is up to the cluster, not
/// the client: socket.io answers a broadcast before Redis has it, and in some runs the outage's
/// ticks all arrive (node-redis queued them and A's adapter resumed after them), in others they
/// never reach A (seen: 62 lost in 2 runs of 3 on a loaded machine). The test prints what was
/// lost and asserts only what the client controls; docs/DEPLOYMENT.md reports it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_and_restarted_mid_stream_the_client_keeps_order_and_no_duplicate() {
    let mut redis = RedisServer::start_durable();
    let a = NodeServer::start_with("s1", &["--redis-url", &redis.url()]);
    let c = NodeServer::start_with("s1", &["--redis-url", &redis.url()]);
    let client = Tidings::builder(&a.url())
        .transports(TransportConfig::only(TransportKind::WebSocket))
        .reconnect(reconnect())
        .build()
        .unwrap();
    let mut notices = client.notices();
    until(&mut notices, "connected to A", |n| matches!(n, Notice::State(ConnectionState::Connected { .. }))).await;
    let got = collect(&client);
    within(T, "join", client.join(ROOM)).await.unwrap();
    let ticker = Ticker::start(&c);
    assert!(eventually(T, || got.lock().unwrap().len() >= 20).await, "ticks reach A's socket through Redis");
    let before = ticker.sent();
    redis.kill();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let meanwhile = ticker.sent();
    redis.restart();
    let more = ticker.sent() + 60;
    assert!(eventually(2 * T, || ticker.sent() >= more).await);
    let total = ticker.stop().await;
    // node-redis reconnects with a backoff of its own: on a loaded machine, seconds.
    let last = eventually(2 * T, || got.lock().unwrap().last() == Some(&(total - 1))).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let got = got.lock().unwrap().clone();
    let missing: Vec<u64> = (0..total).filter(|t| !got.contains(t)).collect();
    eprintln!(
        "Redis killed at tick {before} (still {meanwhile} a second later); {total} in all; lost by the cluster: {} {missing:?}",
        missing.len()
    );
    assert!(last, "the last tick arrives; missing {missing:?}");
    assert!(got.windows(2).all(|w| w[0] < w[1]), "once each and in order: {got:?}");
    assert!((0..before.saturating_sub(1)).all(|t| got.contains(&t)), "every tick before the kill");
    let tail = total - 20..total;
    assert!(tail.clone().all(|t| got.contains(&t)), "the ticks once A reads the stream again ({tail:?})");
    let states: Vec<Notice> = std::iter::from_fn(|| notices.try_recv()).collect();
    assert!(
        !states.iter().any(|n| matches!(n, Notice::State(ConnectionState::Disconnected { .. }))),
        "the client stayed connected to A: {states:?}"
    );
    within(T, "closing", client.close()).await;
}
