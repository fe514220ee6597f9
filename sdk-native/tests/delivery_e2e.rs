//! Lossless delivery against a real Node socket.io server: a consumer slower than the wire slows
//! the connection down instead of losing events; a consumer stalled past the ping timeout gets a
//! reconnect with recovery and then every event once; events without an offset keep their data.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, missing_docs)]

mod common;

use std::time::Duration;

use common::{NodeServer, within};
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::{Value, json};
use tidings::{ConnectionState, Error, Notice, Tidings, TransportConfig, TransportKind};

const T: Duration = Duration::from_secs(20);

/// The burst test measures the process's peak RSS, which every test of this binary shares: it
/// takes a write turn and runs alone; the others share read turns among themselves.
static TURNS: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

#[derive(Debug, Deserialize)]
struct Tick {
    i: u64,
}

fn ws_only() -> TransportConfig {
    TransportConfig::only(TransportKind::WebSocket)
}

/// A client of `srv` over WebSocket, connected, with the defaults a user gets.
async fn ws_client(srv: &NodeServer) -> Tidings {
    within(T, "connecting", Tidings::builder(&srv.url()).transports(ws_only()).connect()).await.unwrap()
}

/// Fails if any notice so far says the connection was lost.
fn assert_never_reconnected(notices: &mut tidings::Notices) {
    while let Some(n) = notices.try_recv() {
        assert!(!matches!(n, Notice::State(ConnectionState::Reconnecting { .. })), "reconnected: {n:?}");
    }
}

/// A line of /proc/self/status in KiB (`VmHWM`: the peak RSS; `VmRSS`: the RSS now).
fn status_kib(key: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Peak resident memory of this process so far (VmHWM), in KiB.
fn peak_rss_kib() -> u64 {
    status_kib("VmHWM:")
}

/// Starts a peak RSS measurement: resets the peak to the RSS now (`clear_refs` 5) and returns
/// that RSS, so an earlier test's peak does not hide this one's.
fn reset_peak_rss_kib() -> u64 {
    std::fs::write("/proc/self/clear_refs", "5").expect("reset the peak RSS");
    status_kib("VmRSS:")
}

/// Reads `n` ticks in order from `sub`, sleeping `pause` after each; returns their indices.
async fn read_ticks(sub: &mut tidings::Subscription<Tick>, n: u64, pause: Duration) -> Vec<u64> {
    let mut got = Vec::with_capacity(n as usize);
    while (got.len() as u64) < n {
        let ev = tokio::time::timeout(T, sub.next()).await.expect("next event in time").expect("client alive");
        got.push(ev.expect("a lossless subscription yields no error").data.i);
        if !pause.is_zero() {
            tokio::time::sleep(pause).await;
        }
    }
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_larger_than_every_buffer_reaches_a_slow_consumer_whole_and_in_order() {
    let _turn = TURNS.write().await;
    // 3,000 events of ~8 KiB: 24 MiB, six times the default receive buffer (4 MiB).
    let srv = NodeServer::start_quiet("s0", &["--ping-interval", "25000", "--ping-timeout", "20000"]);
    let client = ws_client(&srv).await;
    let mut notices = client.notices();
    let mut ticks = client.on::<Tick>("tick");
    let before = reset_peak_rss_kib();
    let n = 3_000;
    srv.burst("tick", n, 8 << 10).await;
    // A consumer that sleeps after every event (about 1 ms: far slower than the wire).
    let got = read_ticks(&mut ticks, n, Duration::from_millis(1)).await;
    assert_eq!(got, (0..n).collect::<Vec<_>>(), "every event, in order, once");
    let growth = peak_rss_kib().saturating_sub(before);
    eprintln!("peak RSS growth while 24 MiB of events passed a slow consumer: {growth} KiB");
    // Bounded by the receive buffer (4 MiB) plus one batch of frames and the runtime's slack,
    // not by the 24 MiB the server sent.
    assert!(growth < 16 << 10, "peak RSS grew by {growth} KiB");
    assert!(matches!(client.state(), ConnectionState::Connected { .. }));
    // A short stall never dropped the connection.
    assert_never_reconnected(&mut notices);
    within(T, "closing", client.close()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_long_polling_a_slow_consumer_holds_back_the_next_get_and_loses_nothing() {
    let _turn = TURNS.read().await;
    // 1,500 events of ~8 KiB (12 MiB, three times the receive buffer) over long-polling: while
    // the consumer is behind, the next GET waits, so the server keeps the rest.
    let srv = NodeServer::start_quiet("s0", &["--ping-interval", "25000", "--ping-timeout", "20000"]);
    let connect = Tidings::builder(&srv.url()).transports(TransportConfig::only(TransportKind::Polling)).connect();
    let client = within(T, "connecting", connect).await.unwrap();
    let mut ticks = client.on::<Tick>("tick");
    let n = 1_500;
    srv.burst("tick", n, 8 << 10).await;
    let got = read_ticks(&mut ticks, n, Duration::from_millis(1)).await;
    assert_eq!(got, (0..n).collect::<Vec<_>>(), "every event, in order, once");
    assert!(matches!(client.state(), ConnectionState::Connected { .. }));
    within(T, "closing", client.close()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_stall_keeps_the_connection() {
    let _turn = TURNS.read().await;
    // A ping the server sends while the client does not read waits in TCP behind the events;
    // the server gives it pingTimeout (5 s here) to be answered. A 400 ms stall, plus the time
    // to read what queued up meanwhile (a debug build on a busy machine is slow), fits.
    let srv = NodeServer::start_quiet("s1", &["--ping-interval", "1000", "--ping-timeout", "5000"]);
    let client = ws_client(&srv).await;
    let mut notices = client.notices();
    let mut ticks = client.on::<Tick>("tick");
    let n = 20_000; // ~6 MiB with its padding: more than the receive buffer
    srv.burst("tick", n, 200).await;
    // The first event, then nothing read for 400 ms while the buffer fills and reading pauses.
    let first = read_ticks(&mut ticks, 1, Duration::ZERO).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let rest = read_ticks(&mut ticks, n - 1, Duration::ZERO).await;
    assert_eq!([first, rest].concat(), (0..n).collect::<Vec<_>>());
    assert_never_reconnected(&mut notices);
    within(T, "closing", client.close()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_stalled_past_the_ping_timeout_gets_a_recovered_reconnect_and_every_event_once() {
    let _turn = TURNS.read().await;
    // Recovery on; the heartbeat gives up after 300 + 200 ms without a pong.
    let srv = NodeServer::start_quiet("s1", &["--ping-interval", "300", "--ping-timeout", "200"]);
    let client = ws_client(&srv).await;
    let mut notices = client.notices();
    let mut ticks = client.on::<Tick>("tick");
    // One event first, so the client has an offset to recover from. Awaited from before the
    // burst: `wait_for` subscribes when called, and the event may arrive before the answer.
    let warmup = client.wait_for::<Value>("warmup", T);
    srv.burst("warmup", 1, 0).await;
    warmup.await.expect("the warmup event");
    let n = 30_000;
    srv.burst("tick", n, 200).await; // ~7 MiB: more than the receive buffer holds
    let first = read_ticks(&mut ticks, 1, Duration::ZERO).await;
    // Stalled for 2.5 s: five ping timeouts.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let rest = read_ticks(&mut ticks, n - 1, Duration::ZERO).await;
    assert_eq!([first, rest].concat(), (0..n).collect::<Vec<_>>(), "every event once, in order");
    // The connection was lost while stalled, and came back recovered.
    let mut reconnected = false;
    loop {
        let notice = tokio::time::timeout(T, notices.recv()).await.expect("notice").expect("alive");
        match notice {
            Notice::State(ConnectionState::Reconnecting { .. })
            | Notice::State(ConnectionState::Disconnected { .. }) => reconnected = true,
            Notice::State(ConnectionState::Connected { recovered, .. }) if reconnected => {
                assert!(recovered, "the session was recovered");
                break;
            }
            _ => {}
        }
    }
    // Nothing more arrives: no duplicate of the replay.
    srv.burst("tick", 1, 0).await;
    let last = tokio::time::timeout(T, ticks.next()).await.unwrap().unwrap().unwrap();
    assert_eq!(last.data.i, 0, "the next event is the new one, not a replayed duplicate");
    within(T, "closing", client.close()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn volatile_and_ack_requesting_events_keep_their_arguments_with_recovery_on() {
    let _turn = TURNS.read().await;
    let srv = NodeServer::start("s1");
    let client = ws_client(&srv).await;
    let mut vol = client.on::<String>("vol");
    let mut news = client.on::<String>("news");
    let mut ask = client.on::<String>("ask-all");
    // A volatile broadcast has no offset: its last string argument is data. Twice: both arrive.
    for _ in 0..2 {
        srv.control("POST", "emit?event=vol&volatile=1", Some(json!(["x"]))).await;
    }
    for _ in 0..2 {
        let ev = tokio::time::timeout(T, vol.next()).await.unwrap().unwrap().unwrap();
        assert_eq!(ev.data, "x", "the volatile event's argument reaches the handler");
    }
    // A stored broadcast carries an offset: the data is "one", the offset is separate.
    srv.emit("/", "news", json!(["one"])).await;
    let ev = tokio::time::timeout(T, news.next()).await.unwrap().unwrap().unwrap();
    assert_eq!(ev.data, "one");
    let offset = ev.offset.expect("a stored broadcast has an offset");
    assert_ne!(offset, "one");
    // A broadcast that asks for an ack carries no offset; its last string is data.
    srv.control("POST", "emit?event=ask-all&ack=1", Some(json!(["q"]))).await;
    let ev = tokio::time::timeout(T, ask.next()).await.unwrap().unwrap().unwrap();
    assert_eq!((ev.data.as_str(), ev.offset.as_deref()), ("q", None));
    ev.ack.expect("the server asked for an ack").send(&[json!("answer")]).unwrap();
    assert!(
        common::eventually(T, || {
            let acks = futures_executor_block(srv.control("GET", "acks", None));
            acks.as_array().is_some_and(|a| a.iter().any(|x| x["replies"] == json!(["answer"])))
        })
        .await
    );
    within(T, "closing", client.close()).await;
}

/// Runs a control request from a sync closure.
fn futures_executor_block<F: std::future::Future>(f: F) -> F::Output {
    tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(f))
}

#[tokio::test]
async fn wait_for_subscribes_when_called() {
    let _turn = TURNS.read().await;
    let srv = NodeServer::start("s0");
    let client = ws_client(&srv).await;
    // The event is triggered, and has arrived, before the future is first polled.
    let next = client.wait_for::<Value>("news", T);
    srv.emit("/", "news", json!([{"n": 1}])).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(next.await.unwrap().data, json!({"n": 1}));
    within(T, "closing", client.close()).await;
}

#[tokio::test]
async fn a_lossy_subscription_never_slows_the_lossless_ones() {
    let _turn = TURNS.read().await;
    let srv = NodeServer::start_quiet("s0", &["--ping-interval", "25000", "--ping-timeout", "20000"]);
    let client = ws_client(&srv).await;
    let _unread_gauge = client.on_lossy::<Tick>("tick", 8);
    let mut ticks = client.on::<Tick>("tick");
    let n = 20_000;
    srv.burst("tick", n, 0).await;
    assert_eq!(read_ticks(&mut ticks, n, Duration::ZERO).await, (0..n).collect::<Vec<_>>());
    let mut gauge = _unread_gauge;
    for i in 0..8 {
        assert_eq!(tokio::time::timeout(T, gauge.next()).await.unwrap().unwrap().unwrap().data.i, i);
    }
    // The next event tells the gauge how many it skipped, then comes itself.
    srv.burst("tick", 1, 0).await;
    match tokio::time::timeout(T, gauge.next()).await.unwrap().unwrap() {
        Err(Error::Lagged(k)) => assert_eq!(k, n - 8, "every skipped event is counted"),
        other => panic!("{other:?}"),
    }
    assert_eq!(tokio::time::timeout(T, gauge.next()).await.unwrap().unwrap().unwrap().data.i, 0);
    within(T, "closing", client.close()).await;
}

#[tokio::test]
async fn a_validator_keeps_invalid_events_from_every_subscription_and_reports_them() {
    let _turn = TURNS.read().await;
    let srv = NodeServer::start("s1");
    let client = within(
        T,
        "connecting",
        Tidings::builder(&srv.url())
            .transports(ws_only())
            .validate(|ev| match ev.args.get(0) {
                Some(raw) if raw.starts_with('{') => Ok(()),
                _ => Err(vec![format!("{}: the payload must be an object", ev.name)]),
            })
            .connect(),
    )
    .await
    .unwrap();
    let mut notices = client.notices();
    let mut news = client.on::<Value>("news");
    let mut any = client.on_any();
    for arg in [json!({"n": 1}), json!("not an object"), json!({"n": 3})] {
        srv.emit("/", "news", json!([arg])).await;
    }
    for n in [1, 3] {
        let ev = tokio::time::timeout(T, news.next()).await.unwrap().unwrap().unwrap();
        assert_eq!(ev.data, json!({"n": n}), "only valid events reach a typed subscription, in order");
        // (The server greets each socket with an "auth" event first.)
        let ev = loop {
            let ev = tokio::time::timeout(T, any.next()).await.unwrap().unwrap().unwrap();
            if ev.event == "news" {
                break ev;
            }
        };
        assert_eq!(ev.data.arg::<Value>(0).unwrap(), json!({"n": n}), "nor does on_any see the invalid one");
    }
    let invalid = loop {
        match tokio::time::timeout(T, notices.recv()).await.unwrap().unwrap() {
            Notice::Invalid(i) => break i,
            _ => continue,
        }
    };
    assert_eq!((invalid.event.as_str(), invalid.namespace.as_str()), ("news", "/"));
    assert_eq!(invalid.problems, vec!["news: the payload must be an object".to_string()]);
    assert_eq!(invalid.args.arg::<String>(0).unwrap(), "not an object", "reported with its arguments");
    assert!(invalid.offset.is_some(), "a stored broadcast's offset is reported with it");
    assert!(tokio::time::timeout(Duration::from_millis(300), news.next()).await.is_err(), "nothing else is delivered");
    within(T, "closing", client.close()).await;
}
