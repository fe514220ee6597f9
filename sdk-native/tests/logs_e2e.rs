//! Tokens never reach logs, URLs or `Debug` output, checked at TRACE level against a real
//! Node socket.io server with the REST feed in use. A binary of its own: it installs the global
//! tracing subscriber.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, missing_docs)]

mod common;

use std::time::Duration;

use common::{NodeServer, next_state, within};
use serde_json::{Value, json};
use tidings::{ConnectionState, Notice, Tidings, TransportConfig};

const T: Duration = Duration::from_secs(10);

/// Collects everything the client logs at TRACE level.
#[derive(Clone, Default)]
struct LogSink(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for LogSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn tokens_never_reach_logs_urls_or_debug_output() {
    const SECRET: &str = "s3cr3t-t0ken";
    let sink = LogSink::default();
    let writer = sink.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    // The global default, in a test binary of its own: a thread-local default misses events
    // whose callsites other test threads registered first.
    tracing::subscriber::set_global_default(subscriber).unwrap();
    let srv = NodeServer::start("s1");
    // Polling first (HTTP URLs), then WebSocket, with the REST feed configured (bearer header).
    let feed = tidings::FeedConfig {
        after: Duration::from_millis(100),
        interval: Duration::from_millis(200),
        min_interval: Duration::from_millis(100),
        ..tidings::FeedConfig::new(format!("{}/feed", srv.url()))
    };
    let connect =
        Tidings::builder(&srv.url()).token(SECRET).transports(TransportConfig::polling_first()).feed(feed).connect();
    let client = within(T, "connecting", connect).await.unwrap();
    assert!(!format!("{client:?}").contains(SECRET));
    client.emit_with_ack("echo", &"x", T).await.unwrap();
    let mut notices = client.notices();
    srv.control("POST", "refuse-socketio?on=1", None).await;
    loop {
        if let Notice::Feed(tidings::FeedStatus::Polling) =
            tokio::time::timeout(T, notices.recv()).await.unwrap().unwrap()
        {
            break;
        }
    }
    let mut requests = Value::Null;
    for _ in 0..100 {
        requests = srv.control("GET", "feed-requests", None).await;
        if requests.as_array().is_some_and(|a| !a.is_empty()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(requests.as_array().is_some_and(|a| !a.is_empty()), "the feed was polled");
    srv.control("POST", "refuse-socketio?on=0", None).await;
    next_state(&mut notices, |s| matches!(s, ConnectionState::Connected { .. })).await;
    within(T, "closing", client.close()).await;
    let logs = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("state") && logs.contains("http request"), "the client did log: {logs}");
    assert!(!logs.contains(SECRET), "a token reached the logs");
    // The token travelled only in the CONNECT payload and the feed's Authorization header.
    assert!(srv.received().iter().any(|f| f.contains(SECRET)), "the token was sent in CONNECT");
    for r in requests.as_array().unwrap() {
        assert!(!r["url"].as_str().unwrap().contains(SECRET), "{r}");
        assert_eq!(r["authorization"], json!(format!("Bearer {SECRET}")));
    }
}
