//! Faults against a real Node socket.io server: the server restarted on the same port, and
//! Socket.IO down while the application's REST feed stays up.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, missing_docs)]

mod common;

use std::time::Duration;

use common::{NodeServer, eventually, within};
use futures_util::StreamExt;
use serde_json::{Value, json};
use tidings::{
    BackoffStrategy, ConnectionState, Envelope, EventSource, FeedConfig, FeedStatus, Notice, ReconnectConfig, Tidings,
    TransportConfig, TransportKind,
};

const T: Duration = Duration::from_secs(10);
const MIN_MS: u64 = 200;
const MAX_MS: u64 = 1_000;

fn reconnect() -> ReconnectConfig {
    ReconnectConfig {
        backoff: BackoffStrategy::SocketIo { min_ms: MIN_MS, max_ms: MAX_MS, factor: 2.0, randomization: 0.5 },
        ..ReconnectConfig::default()
    }
}

/// Notices until `pred` matches one; returns all of them (the match last).
async fn until(n: &mut tidings::Notices, pred: impl Fn(&Notice) -> bool) -> Vec<Notice> {
    let mut seen = Vec::new();
    loop {
        let notice = tokio::time::timeout(T, n.recv()).await.expect("notice in time").expect("client alive");
        let done = pred(&notice);
        seen.push(notice);
        if done {
            return seen;
        }
    }
}

fn connected(n: &Notice) -> bool {
    matches!(n, Notice::State(ConnectionState::Connected { .. }))
}

#[tokio::test]
async fn server_restart_reconnects_with_backoff_rejoins_rooms_and_delivers_each_event_once() {
    let srv = NodeServer::start("s1");
    let port = srv.port.to_string();
    let connect = Tidings::builder(&srv.url())
        .token("t1")
        .transports(TransportConfig::only(TransportKind::WebSocket))
        .reconnect(reconnect())
        .connect();
    let client = within(T, "connecting", connect).await.unwrap();
    within(T, "join chat:1", client.join("chat:1")).await.unwrap();
    let mut msgs = client.on::<String>("chat.message");
    srv.to_room("chat:1", "chat.message", json!(["before"])).await;
    assert_eq!(tokio::time::timeout(T, msgs.next()).await.unwrap().unwrap().unwrap().data, "before");

    let mut notices = client.notices();
    drop(srv); // SIGKILL: no close frame, no DISCONNECT.
    // Let a few attempts fail against the closed port before the server comes back.
    let down = until(
        &mut notices,
        |n| matches!(n, Notice::State(ConnectionState::Reconnecting { attempt, .. }) if *attempt >= 3),
    )
    .await;
    let srv = NodeServer::start_with("s1", &["--port", &port]);
    let mut seen = down;
    seen.extend(until(&mut notices, connected).await);

    // Backoff: attempts count up from 1 and each delay is in socket.io's randomised range.
    let attempts: Vec<(u32, Duration)> = seen
        .iter()
        .filter_map(|n| match n {
            Notice::State(ConnectionState::Reconnecting { attempt, delay }) => Some((*attempt, *delay)),
            _ => None,
        })
        .collect();
    assert!(attempts.len() >= 3, "{seen:?}");
    for (i, (attempt, delay)) in attempts.iter().enumerate() {
        assert_eq!(*attempt as usize, i + 1, "{attempts:?}");
        let base = (MIN_MS << i.min(16)).min(MAX_MS);
        let (lo, hi) = (base / 2, (base * 3 / 2).min(MAX_MS));
        let ms = delay.as_millis() as u64;
        assert!((lo..=hi).contains(&ms), "attempt {attempt}: {ms} ms not in {lo}..={hi}");
    }
    assert!(seen.iter().any(|n| matches!(n, Notice::ConnectError(_))), "failed attempts are reported: {seen:?}");
    // A restarted server has no session to restore.
    match seen.last() {
        Some(Notice::State(ConnectionState::Connected { recovered, .. })) => assert!(!recovered),
        other => panic!("{other:?}"),
    }

    // The room is joined again, once, on the new server.
    assert!(
        eventually(T, || srv.received().iter().any(|f| f.contains(r#"["room:join","chat:1"]"#))).await,
        "{:?}",
        srv.received()
    );
    assert!(srv.has_member_in("chat:1", T).await, "{:?}", srv.rooms_of_sockets().await);
    let joins = srv.received().iter().filter(|f| f.contains(r#"["room:join","chat:1"]"#)).count();
    assert_eq!(joins, 1);

    srv.to_room("chat:1", "chat.message", json!(["after"])).await;
    assert_eq!(tokio::time::timeout(T, msgs.next()).await.unwrap().unwrap().unwrap().data, "after");
    assert!(tokio::time::timeout(Duration::from_millis(500), msgs.next()).await.is_err(), "each event once");
    within(T, "closing", client.close()).await;
}

/// A Node server with recovery and a durable feed, and a client of it (WebSocket, the feed
/// polled from 300 ms after a drop), connected and in room `user:1`.
struct FeedWorld {
    dir: std::path::PathBuf,
    srv: NodeServer,
    client: Tidings,
    tasks: tidings::Subscription<Envelope<Value>>,
    notices: tidings::Notices,
}

async fn feed_world(name: &str, tune: impl FnOnce(&mut FeedConfig)) -> FeedWorld {
    let dir = std::env::temp_dir().join(format!("tidings-{name}-{}-{}", std::process::id(), rand_suffix()));
    let srv = NodeServer::start_with("s1", &["--data-dir", dir.to_str().unwrap()]);
    let mut feed = FeedConfig {
        after: Duration::from_millis(300),
        interval: Duration::from_millis(300),
        min_interval: Duration::from_millis(100),
        max_interval: Duration::from_secs(2),
        ..FeedConfig::new(format!("{}/feed", srv.url()))
    };
    tune(&mut feed);
    let client = Tidings::builder(&srv.url())
        .token("t1")
        .transports(TransportConfig::only(TransportKind::WebSocket))
        .reconnect(reconnect())
        .feed(feed)
        .build()
        .unwrap();
    let tasks = client.on::<Envelope<Value>>("task.*");
    let mut notices = client.notices();
    until(&mut notices, connected).await;
    within(T, "join user:1", client.join("user:1")).await.unwrap();
    FeedWorld { dir, srv, client, tasks, notices }
}

#[tokio::test]
async fn feed_bridges_a_socketio_outage_and_recovery_adds_no_duplicates() {
    let FeedWorld { dir, srv, client, mut tasks, mut notices } = feed_world("feed", |_| {}).await;

    let publish = |n: u32| {
        let srv = &srv;
        async move {
            let r = srv.control("POST", "publish?room=user:1&event=task.created", Some(json!({"task": n}))).await;
            assert_eq!(r["id"], json!(format!("evt_{n}")), "{r}");
        }
    };
    let mut got = Vec::new();
    let mut next = async || {
        let r = tokio::time::timeout(T, tasks.next()).await.expect("event in time").unwrap().unwrap();
        assert_eq!(r.data.data, json!({"task": r.data.id[4..].parse::<u32>().unwrap()}));
        (r.data.id, r.source)
    };
    publish(1).await;
    got.push(next().await);

    // Socket.IO goes down (the transport is closed, new connections are refused); the feed stays.
    srv.control("POST", "refuse-socketio?on=1", None).await;
    until(&mut notices, |n| matches!(n, Notice::Feed(FeedStatus::Polling))).await;
    publish(2).await;
    publish(3).await;
    got.push(next().await);
    got.push(next().await);

    // Socket.IO is back: the session is recovered, and the server replays evt_2 and evt_3 on
    // the socket; the client has them already.
    srv.control("POST", "refuse-socketio?on=0", None).await;
    let seen = until(&mut notices, connected).await;
    match seen.last() {
        Some(Notice::State(ConnectionState::Connected { recovered, .. })) => assert!(recovered, "{seen:?}"),
        other => panic!("{other:?}"),
    }
    assert!(
        seen.iter().any(|n| matches!(n, Notice::Feed(FeedStatus::Stopped)))
            || matches!(tokio::time::timeout(T, notices.recv()).await, Ok(Some(Notice::Feed(FeedStatus::Stopped)))),
        "the feed stops when the socket is back: {seen:?}"
    );
    publish(4).await;
    got.push(next().await);
    assert!(tokio::time::timeout(Duration::from_millis(500), tasks.next()).await.is_err(), "no duplicates");
    // The recovery did replay them: de-duplication is what kept them from the handler.
    let replayed = srv.sent().iter().filter(|f| f.contains(r#""id":"evt_2""#)).count();
    assert_eq!(replayed, 1, "evt_2 reached the client once on the socket (the recovery replay)");
    let ids: Vec<&str> = got.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(ids, ["evt_1", "evt_2", "evt_3", "evt_4"]);
    let sources: Vec<EventSource> = got.iter().map(|(_, s)| *s).collect();
    assert_eq!(sources, [EventSource::Socket, EventSource::Feed, EventSource::Feed, EventSource::Socket]);

    // The feed was asked from the last event the socket delivered, with the token in a header
    // (never in the URL), and the delivered events were acknowledged.
    let requests = srv.control("GET", "feed-requests", None).await;
    let requests = requests.as_array().unwrap();
    let first = &requests[0];
    assert_eq!(first["method"], json!("GET"));
    assert!(first["url"].as_str().unwrap().contains("since=evt_1"), "{first}");
    for r in requests {
        assert_eq!(r["authorization"], json!("Bearer t1"));
        assert!(!r["url"].as_str().unwrap().contains("t1"), "{r}");
    }
    let acked: Vec<Value> = requests
        .iter()
        .filter(|r| r["method"] == "POST")
        .flat_map(|r| {
            serde_json::from_str::<Value>(r["body"].as_str().unwrap()).unwrap()["eventIds"]
                .clone()
                .as_array()
                .cloned()
                .unwrap()
        })
        .collect();
    assert_eq!(acked, [json!("evt_2"), json!("evt_3")]);
    within(T, "closing", client.close()).await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_feed_page_over_the_body_limit_is_fetched_in_smaller_pages_and_nothing_is_skipped() {
    // About three of the events below per page.
    let FeedWorld { dir, srv, client, mut tasks, mut notices } = feed_world("feed-big", |f| f.max_body = 4_000).await;
    // One event on the socket first: the feed resumes after the last event delivered (a feed
    // asked with no position starts at its end).
    srv.control("POST", "publish?room=user:1&event=task.created", Some(json!({"task": 0}))).await;
    let first = tokio::time::timeout(T, tasks.next()).await.expect("event in time").unwrap().unwrap();
    assert_eq!((first.data.data["task"].as_u64(), first.source), (Some(0), EventSource::Socket));
    srv.control("POST", "refuse-socketio?on=1", None).await;
    let pad = "x".repeat(1_000);
    for n in 1..=8u32 {
        let r =
            srv.control("POST", "publish?room=user:1&event=task.created", Some(json!({"task": n, "pad": pad}))).await;
        assert_eq!(r["id"], json!(format!("evt_{}", n + 1)), "{r}");
    }
    until(&mut notices, |n| matches!(n, Notice::Feed(FeedStatus::Polling))).await;
    let mut got = Vec::new();
    while got.len() < 8 {
        let Ok(r) = tokio::time::timeout(T, tasks.next()).await else {
            let requests = srv.control("GET", "feed-requests", None).await;
            let notes: Vec<Notice> = std::iter::from_fn(|| notices.try_recv()).collect();
            panic!("got {got:?}; notices {notes:?}; requests {requests}");
        };
        let r = r.unwrap().unwrap();
        assert_eq!(r.source, EventSource::Feed);
        got.push(r.data.data["task"].as_u64().unwrap());
    }
    assert_eq!(got, (1..=8).collect::<Vec<u64>>(), "every event once, in order");
    let requests = srv.control("GET", "feed-requests", None).await;
    let limits: Vec<String> = requests
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["method"] == "GET")
        .filter_map(|r| r["url"].as_str()?.split("limit=").nth(1).map(|l| l.split('&').next().unwrap().to_string()))
        .collect();
    assert_eq!(limits[..6], ["100", "50", "25", "12", "6", "3"], "{limits:?}");
    within(T, "closing", client.close()).await;
    let _ = std::fs::remove_dir_all(dir);
}

fn rand_suffix() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u8(0);
    h.finish()
}

/// Waits until the client is connected again, to `srv`, which got its `chat:1` join again.
async fn connected_and_rejoined(notices: &mut tidings::Notices, srv: &NodeServer) {
    until(notices, connected).await;
    let join = r#"["room:join","chat:1"]"#;
    assert!(eventually(T, || srv.received().iter().any(|f| f.contains(join))).await, "the room is joined again");
    assert!(srv.has_member_in("chat:1", T).await, "the server has the client in chat:1");
}

/// Two Node servers; the client prefers `a` and falls back to `b` (docs/RELIABILITY.md, "Several
/// servers"): `a` dies, the client moves to `b`, joins its room again and gets `b`'s events; `a`
/// comes back and the healthy connection to `b` is kept; `b` dies and the client is back on `a`.
async fn fails_over_between_two_servers(transports: TransportConfig) {
    let a = NodeServer::start("s1");
    let a_port = a.port.to_string();
    let b = NodeServer::start("s1");
    let connect = Tidings::builder(&a.url())
        .fallback_url(&b.url())
        .token("t1")
        .transports(transports)
        .reconnect(reconnect())
        .connect();
    let client = within(T, "connecting", connect).await.unwrap();
    within(T, "join chat:1", client.join("chat:1")).await.unwrap();
    let mut msgs = client.on::<String>("chat.message");
    let mut next =
        async || tokio::time::timeout(T, msgs.next()).await.expect("an event in time").unwrap().unwrap().data;
    a.to_room("chat:1", "chat.message", json!(["from a"])).await;
    assert_eq!(next().await, "from a");

    let mut notices = client.notices();
    drop(a);
    connected_and_rejoined(&mut notices, &b).await;
    b.to_room("chat:1", "chat.message", json!(["from b"])).await;
    assert_eq!(next().await, "from b");

    // `a` is back: the connection to `b` is healthy, so it is kept.
    let a = NodeServer::start_with("s1", &["--port", &a_port]);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(a.received().is_empty(), "nothing moved to a while b is healthy: {:?}", a.received());
    b.to_room("chat:1", "chat.message", json!(["still b"])).await;
    assert_eq!(next().await, "still b");

    // `b` dies: the next series starts at the preferred server, `a`.
    drop(b);
    connected_and_rejoined(&mut notices, &a).await;
    a.to_room("chat:1", "chat.message", json!(["a again"])).await;
    assert_eq!(next().await, "a again");
    assert!(tokio::time::timeout(Duration::from_millis(300), msgs.next()).await.is_err(), "each event once");
    within(T, "closing", client.close()).await;
}

#[tokio::test]
async fn fails_over_to_the_next_server_and_back_over_websocket() {
    fails_over_between_two_servers(TransportConfig::only(TransportKind::WebSocket)).await;
}

#[tokio::test]
async fn fails_over_to_the_next_server_and_back_over_long_polling() {
    fails_over_between_two_servers(TransportConfig::only(TransportKind::Polling)).await;
}
