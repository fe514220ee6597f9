//! `tidings-bench client probe tls N`: what one Tidings client's transport setup costs in memory.
//! It repeats, N times, what `sdk-native/src/transport.rs` `Net::new` does for every client (a
//! fresh rustls root store from webpki-roots, a `ClientConfig`, a reqwest client) and reports the
//! RSS growth per copy. Not part of `run`; see docs/BENCHMARKS.md.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use crate::sys::rss_bytes;

pub fn tls(n: u64) -> Result<Value, String> {
    let n = n.max(1);
    let rss0 = rss_bytes();
    let mut configs = Vec::with_capacity(n as usize);
    for _ in 0..n {
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_no_client_auth();
        configs.push(Arc::new(tls));
    }
    let rss1 = rss_bytes();
    let mut clients = Vec::with_capacity(n as usize);
    for tls in &configs {
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured((**tls).clone())
            .connect_timeout(Duration::from_secs(20))
            .pool_idle_timeout(Duration::from_secs(90))
            .build()
            .map_err(|e| e.to_string())?;
        clients.push(http);
    }
    let rss2 = rss_bytes();
    let kib = |a: u64, b: u64| (b.saturating_sub(a)) as f64 / n as f64 / 1024.0;
    Ok(json!({
        "copies": n,
        "roots_and_rustls_config_kib_each": kib(rss0, rss1),
        "reqwest_client_kib_each": kib(rss1, rss2),
        "kept": configs.len() + clients.len(),
    }))
}
