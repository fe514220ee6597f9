//! Shared helpers: an in-process server on 127.0.0.1:0 with its own data dir, tokens, HTTP.
//!
//! Every wait for the server is bounded ([`within`]): a server that never answers fails the
//! test with what it was waiting for, it does not hang the run.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, dead_code, unreachable_pub)]

use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use serde_json::Value;
use tidings_example_server::{Claims, Config, ServerHandle, clock, jwt};

pub const SECRET: &str = "test-secret";
pub const KEY: &str = "test-internal-key";
pub const T: Duration = Duration::from_secs(10);

/// `f`, or a failure naming `what` if it takes longer than [`T`].
pub async fn within<F: Future>(what: &str, f: F) -> F::Output {
    tokio::time::timeout(T, f).await.unwrap_or_else(|_| panic!("{what}: nothing within {T:?}"))
}

pub fn temp_dir(name: &str) -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let d = std::env::temp_dir().join(format!(
        "tidings-example-{name}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&d);
    d
}

pub async fn start(dir: &std::path::Path) -> (String, ServerHandle) {
    start_with(Config::new(dir, SECRET, KEY)).await
}

pub async fn start_with(config: Config) -> (String, ServerHandle) {
    let (addr, handle) = tidings_example_server::serve(config).await.unwrap();
    (format!("http://{addr}"), handle)
}

pub fn token_for(user: &str, tenant: &str, ttl_secs: i64) -> String {
    let claims = Claims {
        sub: user.into(),
        tenant_id: tenant.into(),
        name: Some(user.to_uppercase()),
        exp: clock::now_secs() + ttl_secs,
        iat: None,
    };
    jwt::sign(&claims, SECRET.as_bytes())
}

pub fn token(user: &str, tenant: &str) -> String {
    token_for(user, tenant, 3600)
}

/// A connected client of `user`. Bounded at 30 s, not [`T`]: on a loaded machine a first
/// attempt that is lost takes the client's 20 s connect timeout and a retry, which is what the
/// client is for.
pub async fn client(url: &str, user: &str, tenant: &str) -> tidings::Tidings {
    let connect = tidings::Tidings::builder(url).token(token(user, tenant)).connect();
    let connected = tokio::time::timeout(Duration::from_secs(30), connect).await;
    connected.unwrap_or_else(|_| panic!("{user}'s connect: nothing within 30 s")).unwrap()
}

/// A raw HTTP request: (status, JSON body or Null, the idempotent-replayed header). The answer
/// must come within [`T`].
pub async fn http(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<String>,
) -> (u16, Value, Option<String>) {
    let c = reqwest::Client::new();
    let mut req = c.request(method.parse().unwrap(), url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    if let Some(b) = body {
        req = req.header("content-type", "application/json").body(b);
    }
    within(&format!("{method} {url}"), async {
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        let replayed = res.headers().get("idempotent-replayed").map(|v| v.to_str().unwrap().to_string());
        let text = res.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null), replayed)
    })
    .await
}

pub async fn emit(url: &str, body: Value) -> (u16, Value, Option<String>) {
    http("POST", &format!("{url}/internal/emit"), &[("x-internal-api-key", KEY)], Some(body.to_string())).await
}

pub async fn feed(url: &str, tenant: &str, tok: &str, query: &str) -> (u16, Value) {
    let auth = format!("Bearer {tok}");
    let (s, v, _) =
        http("GET", &format!("{url}/api/polling/{tenant}/events?{query}"), &[("authorization", &auth)], None).await;
    (s, v)
}
