//! Tokens never reach the server's logs, even at trace level: a connect with a token, a refused
//! one, and a feed read with a Bearer header, captured through the server's own log filter.
//! (Its own test binary: it installs the process-wide subscriber.)

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, missing_docs)]

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use common::*;
use serde_json::json;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::{EnvFilter, Layer};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// The client crates log in the same process; only the server's side is under test.
fn from_the_client(meta: &tracing::Metadata<'_>) -> bool {
    matches!(meta.target().split("::").next(), Some("tidings" | "tidings_core" | "reqwest" | "hyper_util"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_never_reach_the_logs_even_at_trace_level() {
    let server_logs = Captured::default();
    let everything = Captured::default();
    let (a, b) = (server_logs.clone(), everything.clone());
    let subscriber = tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_ansi(false)
                .with_writer(move || a.clone())
                .with_filter(tidings_example_server::logs::filter(Some("trace")))
                .with_filter(tracing_subscriber::filter::filter_fn(|m| !from_the_client(m))),
        )
        // The same events without the guard: proves the test would see a token if one were logged.
        .with(
            tracing_subscriber::fmt::layer()
                .with_ansi(false)
                .with_writer(move || b.clone())
                .with_filter(EnvFilter::new("trace")),
        );
    tracing::subscriber::set_global_default(subscriber).unwrap();

    let dir = temp_dir("logs");
    let (url, server) = start(&dir).await;
    let tok = token("alice", "acme");
    let alice = within("alice's connect", tidings::Tidings::builder(&url).token(tok.clone()).connect()).await.unwrap();
    within("alice's join", alice.join("chat:acme:general")).await.unwrap();
    let forged = jwt_with_secret("bob", "acme", "not-the-secret");
    let refused = tidings::Tidings::builder(&url).auth(json!({ "token": forged })).connect();
    assert!(within("a refused connect", refused).await.is_err());
    let (status, _) = feed(&url, "acme", &tok, "since=0").await;
    assert_eq!(status, 200);
    within("alice's close", alice.close()).await;
    within("the shutdown", server.shutdown()).await;

    let (logged, all) = (server_logs.text(), everything.text());
    let signature = |t: &str| t.rsplit('.').next().unwrap().to_string();
    assert!(
        all.lines().any(|l| l.contains(&signature(&tok)) && l.contains("socketioxide")),
        "the unguarded capture should hold socketioxide's CONNECT auth (else this test proves nothing)"
    );
    assert!(logged.contains("connected"), "the server's own logs are captured:\n{logged}");
    assert!(logged.contains("connection refused"), "{logged}");
    for secret in [&tok, &forged] {
        assert!(!logged.contains(&signature(secret)), "a token in the server's logs:\n{logged}");
    }
    assert!(!logged.contains("auth:"), "{logged}");
    let _ = std::fs::remove_dir_all(&dir);
}

fn jwt_with_secret(user: &str, tenant: &str, secret: &str) -> String {
    let claims = tidings_example_server::Claims {
        sub: user.into(),
        tenant_id: tenant.into(),
        name: None,
        exp: tidings_example_server::clock::now_secs() + 3600,
        iat: None,
    };
    tidings_example_server::jwt::sign(&claims, secret.as_bytes())
}
