//! The reference server (socketioxide: no connection state recovery) with its REST feed, behind
//! the fault proxy (`sdk-native/tests/common/proxy.rs`), with real `tidings` clients on both
//! transports (docs/RELIABILITY.md, "Fault injection on real sockets"). Events are published
//! straight to the server during the fault; the client, cut off, reconnects without recovery and
//! reads what it missed from the feed (the core's catch-up) before the socket's new events:
//! every event exactly once, in order.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, missing_docs)]

mod common;

#[path = "../../../sdk-native/tests/common/proxy.rs"]
#[allow(dead_code, unreachable_pub)]
mod proxy;

use std::time::Duration;

use common::*;
use futures_util::StreamExt;
use serde_json::{Value, json};
use tidings::{
    BackoffStrategy, ConnectionState, Envelope, FeedConfig, FeedStatus, Notice, Notices, ReconnectConfig, Tidings,
    TransportConfig, TransportKind,
};
use tidings_example_server::{Config, ServerHandle};
use tokio::time::Instant;

/// A server with a 500 ms + 500 ms heartbeat, and a proxy in front of it.
async fn server(name: &str) -> (String, proxy::FaultProxy, ServerHandle) {
    let mut config = Config::new(temp_dir(name), SECRET, KEY);
    config.ping_interval = Duration::from_millis(500);
    config.ping_timeout = Duration::from_millis(500);
    let (url, handle) = start_with(config).await;
    let port = url.rsplit(':').next().unwrap().parse().unwrap();
    let proxy = proxy::FaultProxy::start(port).await;
    (url, proxy, handle)
}

/// Alice of tenant acme through the proxy, on `kind`, with the feed (also through the proxy).
async fn alice(
    proxy: &proxy::FaultProxy,
    kind: TransportKind,
) -> (Tidings, Notices, tidings::Subscription<Envelope<Value>>) {
    let mut feed = FeedConfig::new(format!("{}/api/polling/acme", proxy.url()));
    // Only the catch-up after the reconnect reads the feed: nothing polls it during the fault.
    feed.after = Duration::from_secs(60);
    let client = Tidings::builder(&proxy.url())
        .token(token("alice", "acme"))
        .transports(TransportConfig::only(kind))
        .reconnect(ReconnectConfig {
            backoff: BackoffStrategy::SocketIo { min_ms: 100, max_ms: 300, factor: 2.0, randomization: 0.5 },
            ..ReconnectConfig::default()
        })
        .connect_timeout(Duration::from_secs(1))
        .feed(feed)
        .build()
        .unwrap();
    let notices = client.notices();
    let events = client.on::<Envelope<Value>>("task.created");
    within("alice connects", client.wait_connected(Duration::from_secs(30))).await.unwrap();
    (client, notices, events)
}

/// Publishes `task.created` number `i` to the tenant, straight to the server.
async fn publish(url: &str, i: u64) {
    let (status, body, _) =
        emit(url, json!({ "to": { "room": "tenant:acme" }, "event": "task.created", "data": { "i": i } })).await;
    assert_eq!(status, 200, "{body}");
}

/// Reads the next `n` events; returns their `i`s. Every envelope id must be new.
async fn read(events: &mut tidings::Subscription<Envelope<Value>>, n: usize, seen: &mut Vec<String>) -> Vec<u64> {
    let mut out = Vec::new();
    for _ in 0..n {
        let ev = within("an event", events.next()).await.unwrap().unwrap();
        assert!(!seen.contains(&ev.data.id), "delivered twice: {}", ev.data.id);
        seen.push(ev.data.id.clone());
        out.push(ev.data.data["i"].as_u64().unwrap());
    }
    out
}

/// Waits for the first notice `pred` accepts; returns everything seen up to it.
async fn until(notices: &mut Notices, what: &str, pred: impl Fn(&Notice) -> bool) -> Vec<Notice> {
    let mut seen = Vec::new();
    loop {
        let n = within(what, notices.recv()).await.unwrap();
        let done = pred(&n);
        seen.push(n);
        if done {
            return seen;
        }
    }
}

async fn blackhole_during_a_stream(kind: TransportKind) {
    let (url, proxy, _server) = server(&format!("faults-blackhole-{kind:?}")).await;
    let (client, mut notices, mut events) = alice(&proxy, kind).await;
    let mut seen = Vec::new();
    for i in 0..5 {
        publish(&url, i).await;
    }
    assert_eq!(read(&mut events, 5, &mut seen).await, (0..5).collect::<Vec<_>>());

    proxy.set(proxy::Mode::Blackhole);
    let cut = Instant::now();
    for i in 5..10 {
        publish(&url, i).await;
    }
    until(&mut notices, "the drop", |n| {
        matches!(n, Notice::State(ConnectionState::Disconnected { .. } | ConnectionState::Reconnecting { .. }))
    })
    .await;
    let noticed = cut.elapsed();
    println!("{kind:?}: the blackhole noticed after {noticed:?}");
    assert!(noticed < Duration::from_millis(2500), "within the 1 s heartbeat window (and some): {noticed:?}");
    proxy.set(proxy::Mode::Pass);
    let reconnect = until(&mut notices, "the catch-up", |n| matches!(n, Notice::Feed(FeedStatus::CaughtUp))).await;
    assert!(
        reconnect.iter().any(|n| matches!(n, Notice::State(ConnectionState::Connected { recovered: false, .. }))),
        "socketioxide does not recover sessions: {reconnect:?}"
    );
    for i in 10..15 {
        publish(&url, i).await;
    }
    assert_eq!(read(&mut events, 10, &mut seen).await, (5..15).collect::<Vec<_>>(), "every event once, in order");
    assert!(
        tokio::time::timeout(Duration::from_millis(500), events.next()).await.is_err(),
        "nothing more (no duplicate)"
    );
    within("closing", client.close()).await;
}

#[tokio::test]
async fn a_blackhole_over_websocket_is_caught_up_from_the_feed() {
    blackhole_during_a_stream(TransportKind::WebSocket).await;
}

#[tokio::test]
async fn a_blackhole_over_long_polling_is_caught_up_from_the_feed() {
    blackhole_during_a_stream(TransportKind::Polling).await;
}

#[tokio::test]
async fn resets_mid_stream_are_caught_up_from_the_feed() {
    let (url, proxy, _server) = server("faults-resets").await;
    let (client, mut notices, mut events) = alice(&proxy, TransportKind::WebSocket).await;
    let mut seen = Vec::new();
    let mut next = 0;
    for round in 0..3 {
        for _ in 0..5 {
            publish(&url, next).await;
            next += 1;
        }
        proxy.reset_all();
        for _ in 0..5 {
            publish(&url, next).await;
            next += 1;
        }
        until(&mut notices, "the catch-up", |n| matches!(n, Notice::Feed(FeedStatus::CaughtUp))).await;
        let got = read(&mut events, 10, &mut seen).await;
        assert_eq!(got, (round * 10..round * 10 + 10).collect::<Vec<_>>(), "round {round}: every event once, in order");
    }
    assert!(proxy.accepted() >= 4, "one connection per reset: {}", proxy.accepted());
    within("closing", client.close()).await;
}

/// Emits made during the fault are delivered once: chat messages sent into a blackhole, with
/// `retries` and an idempotency key each (`Emit::idempotent`), are all acknowledged after the
/// network is back, and the server's log holds each exactly once. (The bytes of the first tries
/// may still reach the server over the old connection when the network comes back, and a retry
/// follows: the key is what makes that one message, docs/RELIABILITY.md "Guarantees".)
#[tokio::test]
async fn chat_messages_sent_into_a_blackhole_with_retries_and_keys_are_logged_once() {
    for kind in [TransportKind::WebSocket, TransportKind::Polling] {
        let (url, proxy, _server) = server(&format!("faults-emits-{kind:?}")).await;
        let client = Tidings::builder(&proxy.url())
            .token(token("alice", "acme"))
            .transports(TransportConfig::only(kind))
            .reconnect(ReconnectConfig {
                backoff: BackoffStrategy::SocketIo { min_ms: 100, max_ms: 300, factor: 2.0, randomization: 0.5 },
                ..ReconnectConfig::default()
            })
            .connect_timeout(Duration::from_secs(1))
            .retries(10, Duration::from_millis(1500))
            .build()
            .unwrap();
        within("alice connects", client.wait_connected(Duration::from_secs(30))).await.unwrap();
        proxy.set(proxy::Mode::Blackhole);
        let texts: Vec<String> = (0..3).map(|i| format!("{kind:?} message {i}")).collect();
        let sends = texts.iter().map(|text| {
            let emit = client.emit_builder("chat.message").arg(&json!({ "chatId": "general", "text": text }));
            emit.idempotent().ack()
        });
        let acks = async { futures_util::future::join_all(sends).await };
        let lift = async {
            tokio::time::sleep(Duration::from_millis(1500)).await;
            proxy.set(proxy::Mode::Pass);
        };
        let (acks, ()) =
            tokio::time::timeout(Duration::from_secs(30), async { tokio::join!(acks, lift) }).await.unwrap();
        for a in &acks {
            let v: Value = a.as_ref().unwrap().arg(0).unwrap();
            assert_eq!(v["ok"], json!(true), "{v}");
        }
        let (status, page) = feed(&url, "acme", &token("alice", "acme"), "since=0&limit=1000").await;
        assert_eq!(status, 200, "{page}");
        let logged: Vec<String> = page["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["event"] == "chat.message")
            .map(|e| e["data"]["data"]["message"]["text"].as_str().unwrap().to_string())
            .collect();
        let mut sorted = logged.clone();
        sorted.sort();
        assert_eq!(sorted, texts, "each message logged exactly once ({kind:?}): {logged:?}");
        within("closing", client.close()).await;
    }
}
