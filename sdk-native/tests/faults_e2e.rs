//! Real network faults between the native client and a real Node socket.io server (connection
//! state recovery on, a 500 ms + 500 ms heartbeat), injected by a TCP proxy (common/proxy.rs):
//! a blackholed (half-open) connection, resets mid-stream, and latency. In each, the events the
//! server broadcasts reach the handler exactly once and in order (docs/RELIABILITY.md).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, missing_docs)]

mod common;

use std::time::Duration;

use tokio::time::Instant;

use common::proxy::{FaultProxy, Mode};
use common::{NodeServer, within};
use futures_util::StreamExt;
use serde_json::{Value, json};
use tidings::{
    BackoffStrategy, ConnectionState, DisconnectReason, Notice, Notices, ReconnectConfig, Tidings, TransportConfig,
    TransportKind,
};

const T: Duration = Duration::from_secs(15);

fn server() -> NodeServer {
    NodeServer::start_with("s1", &["--ping-interval", "500", "--ping-timeout", "500"])
}

async fn client(proxy: &FaultProxy, transports: TransportConfig) -> Tidings {
    let connect = Tidings::builder(&proxy.url())
        .transports(transports)
        .reconnect(ReconnectConfig {
            backoff: BackoffStrategy::SocketIo { min_ms: 100, max_ms: 500, factor: 2.0, randomization: 0.5 },
            ..ReconnectConfig::default()
        })
        // A connection attempt made into the blackhole gives up quickly and tries again.
        .connect_timeout(Duration::from_secs(1))
        .connect();
    within(T, "connecting", connect).await.unwrap()
}

/// Notices until one matches; returns it.
async fn until(n: &mut Notices, pred: impl Fn(&Notice) -> bool) -> Notice {
    loop {
        let notice = tokio::time::timeout(T, n.recv()).await.expect("notice in time").expect("client alive");
        if pred(&notice) {
            return notice;
        }
    }
}

/// The server broadcasts `tick` with `from..to`.
async fn ticks(srv: &NodeServer, from: u32, to: u32) {
    for i in from..to {
        srv.emit("/", "tick", json!([i])).await;
    }
}

/// Reads `n` ticks and checks they are `0..n`, then that nothing more comes.
async fn expect_ticks(sub: &mut tidings::Subscription<u32>, n: u32) {
    for want in 0..n {
        let got = tokio::time::timeout(T, sub.next()).await.expect("tick in time").unwrap().unwrap();
        assert_eq!(got.data, want, "every tick once, in order");
    }
    assert!(tokio::time::timeout(Duration::from_millis(700), sub.next()).await.is_err(), "no duplicate");
}

/// No `Disconnected` among the notices received so far.
fn assert_never_dropped(notices: &mut Notices, when: &str) {
    while let Some(n) = notices.try_recv() {
        assert!(!matches!(n, Notice::State(ConnectionState::Disconnected { .. })), "dropped {when}: {n:?}");
    }
}

fn recovered(n: &Notice) -> Option<bool> {
    match n {
        Notice::State(ConnectionState::Connected { recovered, .. }) => Some(*recovered),
        _ => None,
    }
}

/// A client through a fresh proxy to a fresh server, subscribed to `tick`, with ticks 0..5 sent.
struct Streaming {
    srv: NodeServer,
    proxy: FaultProxy,
    client: Tidings,
    sub: tidings::Subscription<u32>,
    notices: Notices,
}

async fn streaming(transports: TransportConfig) -> Streaming {
    let srv = server();
    let proxy = FaultProxy::start(srv.port).await;
    let client = client(&proxy, transports).await;
    let sub = client.on::<u32>("tick");
    let notices = client.notices();
    ticks(&srv, 0, 5).await;
    Streaming { srv, proxy, client, sub, notices }
}

/// Waits for the `Disconnected` notice of a fault made at `cut`: checks it came within the
/// heartbeat window (pingInterval + pingTimeout = 1 s, plus the timer's slack) and returns it.
async fn disconnected_within_the_heartbeat(notices: &mut Notices, cut: Instant, what: &str) -> Notice {
    let n = until(notices, |n| matches!(n, Notice::State(ConnectionState::Disconnected { .. }))).await;
    let detected = cut.elapsed();
    assert!(detected < Duration::from_millis(2_500), "detected after {detected:?} ({what})");
    n
}

#[tokio::test]
async fn a_blackholed_connection_is_detected_within_the_heartbeat_and_recovers_every_event_once() {
    for transports in [TransportConfig::only(TransportKind::WebSocket), TransportConfig::only(TransportKind::Polling)] {
        let Streaming { srv, proxy, client, mut sub, mut notices } = streaming(transports).await;
        // The network goes silent both ways; the server goes on broadcasting.
        proxy.set(Mode::Blackhole);
        let cut = Instant::now();
        ticks(&srv, 5, 10).await;
        let n = disconnected_within_the_heartbeat(&mut notices, cut, &format!("{transports:?}")).await;
        assert!(
            matches!(
                n,
                Notice::State(ConnectionState::Disconnected {
                    reason: DisconnectReason::PingTimeout | DisconnectReason::TransportError
                })
            ),
            "{n:?}"
        );
        ticks(&srv, 10, 12).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        proxy.set(Mode::Pass);
        let n = until(&mut notices, |n| recovered(n).is_some()).await;
        assert_eq!(recovered(&n), Some(true), "the session is recovered ({transports:?})");
        ticks(&srv, 12, 15).await;
        expect_ticks(&mut sub, 15).await;
        within(T, "closing", client.close()).await;
    }
}

/// The server process freezes (SIGSTOP) with the connection open: the client notices within the
/// heartbeat window, keeps trying (each attempt into the frozen process times out), and when the
/// process runs again it reconnects; every event once, in order.
#[tokio::test]
async fn a_frozen_server_is_detected_within_the_heartbeat_and_the_client_is_back_when_it_thaws() {
    for transports in [TransportConfig::only(TransportKind::WebSocket), TransportConfig::only(TransportKind::Polling)] {
        let Streaming { srv, proxy: _proxy, client, mut sub, mut notices } = streaming(transports).await;
        srv.freeze();
        let cut = Instant::now();
        let n = disconnected_within_the_heartbeat(&mut notices, cut, &format!("{transports:?}")).await;
        assert!(
            matches!(n, Notice::State(ConnectionState::Disconnected { reason: DisconnectReason::PingTimeout })),
            "{n:?} ({transports:?})"
        );
        // At least one attempt goes into the frozen process and times out.
        until(&mut notices, |n| matches!(n, Notice::State(ConnectionState::Reconnecting { attempt: 2.., .. }))).await;
        srv.thaw();
        until(&mut notices, |n| recovered(n).is_some()).await;
        ticks(&srv, 5, 10).await;
        expect_ticks(&mut sub, 10).await;
        within(T, "closing", client.close()).await;
    }
}

/// A slow link (32 KiB/s each way) under the default heartbeat: a 160 KiB burst arrives whole,
/// in order, without a disconnect, and emits with acks get through the other way meanwhile.
#[tokio::test]
async fn a_slow_link_carries_a_burst_whole_and_in_order() {
    const RATE: u32 = 32 << 10;
    let srv = NodeServer::start_quiet("s1", &[]);
    let proxy = FaultProxy::start(srv.port).await;
    let client = client(&proxy, TransportConfig::only(TransportKind::WebSocket)).await;
    let mut sub = client.on::<Value>("burst");
    let mut notices = client.notices();
    proxy.set(Mode::Bandwidth(RATE));
    let started = Instant::now();
    // 200 events of ~800 B.
    srv.burst("burst", 200, 800).await;
    let pad = "x".repeat(2000);
    for i in 0..5 {
        let ack =
            within(T, "an ack over the slow link", client.emit_with_ack("echo", &json!({ "i": i, "pad": pad }), T))
                .await
                .unwrap();
        assert_eq!(ack.deserialize::<Value>().unwrap()["i"], json!(i));
    }
    for want in 0..200u64 {
        let got = tokio::time::timeout(T, sub.next()).await.expect("an event in time").unwrap().unwrap();
        assert_eq!(got.data["i"].as_u64(), Some(want), "every event once, in order");
    }
    let took = started.elapsed();
    // 200 × ~800 B at 32 KiB/s is about 5 s: the limit was real.
    assert!(took > Duration::from_millis(2_500), "the burst took {took:?}: was the link slow?");
    assert_never_dropped(&mut notices, "on the slow link");
    within(T, "closing", client.close()).await;
}

/// Polling first, with every WebSocket handshake cut (reset before it reaches the server): the
/// session stays on long-polling and loses nothing; once the cut is lifted, the next probe
/// upgrades it; every event once, in order.
#[tokio::test]
async fn a_cut_upgrade_leaves_the_session_on_polling_until_a_probe_gets_through() {
    let srv = server();
    let proxy = FaultProxy::start(srv.port).await;
    proxy.cut_websocket_upgrades(true);
    let transports = TransportConfig { reprobe_every: Duration::from_millis(300), ..TransportConfig::polling_first() };
    let client = client(&proxy, transports).await;
    let mut sub = client.on::<u32>("tick");
    let mut notices = client.notices();
    ticks(&srv, 0, 5).await;
    // Several probes are cut meanwhile.
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    ticks(&srv, 5, 10).await;
    assert!(
        matches!(client.state(), ConnectionState::Connected { transport: TransportKind::Polling, .. }),
        "still on polling: {:?}",
        client.state()
    );
    assert!(proxy.upgrades_cut() >= 2, "probes were cut: {}", proxy.upgrades_cut());
    proxy.cut_websocket_upgrades(false);
    until(&mut notices, |n| {
        matches!(n, Notice::State(ConnectionState::Connected { transport: TransportKind::WebSocket, .. }))
    })
    .await;
    ticks(&srv, 10, 15).await;
    expect_ticks(&mut sub, 15).await;
    assert_never_dropped(&mut notices, "while the upgrade was cut");
    within(T, "closing", client.close()).await;
}

#[tokio::test]
async fn connections_reset_mid_stream_lose_and_repeat_nothing() {
    let srv = server();
    let proxy = FaultProxy::start(srv.port).await;
    let client = client(&proxy, TransportConfig::only(TransportKind::WebSocket)).await;
    let mut sub = client.on::<u32>("tick");
    let mut notices = client.notices();
    let mut next = 0;
    for _ in 0..3 {
        ticks(&srv, next, next + 20).await;
        next += 20;
        proxy.reset_all();
        ticks(&srv, next, next + 5).await;
        next += 5;
        let n = until(&mut notices, |n| recovered(n).is_some()).await;
        assert_eq!(recovered(&n), Some(true));
    }
    expect_ticks(&mut sub, next).await;
    assert!(proxy.accepted() >= 4, "one connection per reset");
    within(T, "closing", client.close()).await;
}

/// Latency with jitter (10-60 ms per chunk each way), both transports: a stream and acked emits
/// cross it whole, in order, each once, with no disconnect.
#[tokio::test]
async fn jitter_keeps_order_and_loses_nothing() {
    for transports in [TransportConfig::only(TransportKind::WebSocket), TransportConfig::only(TransportKind::Polling)] {
        let srv = server();
        let proxy = FaultProxy::start(srv.port).await;
        let client = client(&proxy, transports).await;
        let mut sub = client.on::<u32>("tick");
        let mut notices = client.notices();
        proxy.set(Mode::Jitter { base: Duration::from_millis(10), spread: Duration::from_millis(50) });
        let emits = async {
            let mut answers = Vec::new();
            for i in 0..5 {
                let ack = client.emit_with_ack("echo", &json!(i), T).await.unwrap();
                answers.push(ack.deserialize::<u32>().unwrap());
            }
            answers
        };
        let (answers, ()) = tokio::join!(emits, ticks(&srv, 0, 30));
        assert_eq!(answers, [0, 1, 2, 3, 4], "{transports:?}");
        expect_ticks(&mut sub, 30).await;
        while let Some(n) = notices.try_recv() {
            assert!(!matches!(n, Notice::State(ConnectionState::Disconnected { .. })), "{n:?} ({transports:?})");
        }
        within(T, "closing", client.close()).await;
    }
}

#[tokio::test]
async fn latency_keeps_order_and_delays_acks_accordingly() {
    let srv = server();
    let proxy = FaultProxy::start(srv.port).await;
    let client = client(&proxy, TransportConfig::only(TransportKind::WebSocket)).await;
    let mut sub = client.on::<u32>("tick");
    proxy.set(Mode::Latency(Duration::from_millis(40)));
    ticks(&srv, 0, 30).await;
    let t = Instant::now();
    let ack = client.emit_with_ack("echo", &json!("x"), T).await.unwrap();
    assert_eq!(ack.deserialize::<String>().unwrap(), "x");
    assert!(t.elapsed() >= Duration::from_millis(80), "the ack crossed the delay twice: {:?}", t.elapsed());
    expect_ticks(&mut sub, 30).await;
    within(T, "closing", client.close()).await;
}

#[tokio::test]
async fn a_peer_that_stops_reading_is_dropped_once_the_outgoing_queue_passes_its_bound() {
    // The default heartbeat (25 s + 20 s): only the queue's bound can notice within the test.
    let srv = NodeServer::start("s1");
    let proxy = FaultProxy::start(srv.port).await;
    let client = client(&proxy, TransportConfig::only(TransportKind::WebSocket)).await;
    let mut notices = client.notices();
    proxy.set(Mode::Blackhole);
    let cut = Instant::now();
    // 16 MiB of emits: the kernel's buffers take a few, the client's queue (4 MiB by default) the
    // rest, then the connection counts as dead.
    let chunk = "x".repeat(64 * 1024);
    for _ in 0..256 {
        // Once the connection is dropped, emits wait in the send buffer, itself bounded (4 MiB):
        // past it the caller is told, not ignored.
        if let Err(e) = within(T, "emit bulk", client.emit("bulk", &chunk)).await {
            assert!(matches!(e, tidings::Error::Emit(tidings::EmitError::SendBufferFull)), "{e:?}");
            break;
        }
    }
    let n = until(&mut notices, |n| matches!(n, Notice::Fault(_))).await;
    match &n {
        Notice::Fault(tidings::Fault::WebSocket(e)) => assert!(e.contains("the peer stopped reading"), "{e}"),
        other => panic!("{other:?}"),
    }
    assert!(cut.elapsed() < Duration::from_secs(10), "noticed after {:?}", cut.elapsed());
    let n = until(&mut notices, |n| matches!(n, Notice::State(ConnectionState::Disconnected { .. }))).await;
    assert_eq!(n, Notice::State(ConnectionState::Disconnected { reason: DisconnectReason::TransportError }));
    // The network comes back: the client reconnects. (Not recovered: the server still holds the
    // old connection open, as it would behind a real half-open network, so socket.io refuses
    // to hand its session over.)
    proxy.set(Mode::Pass);
    until(&mut notices, |n| recovered(n).is_some()).await;
    within(T, "closing", client.close()).await;
}
