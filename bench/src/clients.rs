//! The client side, one process per run (`tidings-bench client KIND MODE URL N`): Tidings,
//! rust_socketio 0.6 (async) and the floor (bare tokio-tungstenite + serde_json). The Node
//! client is `bench/node/client.mjs`. Each prints one JSON result line.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::{FutureExt, SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::{Semaphore, mpsc};
use tokio_tungstenite::tungstenite::Message;

use crate::sys::{cpu_time, rss_bytes};
use crate::task::TaskCreated;

type Res = Result<Value, String>;

const ACK_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections opened at once in the idle test.
const CONNECT_CONCURRENCY: usize = 200;

pub async fn run(kind: &str, mode: &str, url: &str, n: u64) -> Res {
    match (kind, mode) {
        ("tidings", "throughput") => tidings_throughput(url, n).await,
        ("tidings", "rtt") => tidings_rtt(url, n).await,
        ("tidings", "idle") => tidings_idle(url, n).await,
        ("rust_socketio", "throughput") => rsio_throughput(url, n).await,
        ("rust_socketio", "rtt") => rsio_rtt(url, n).await,
        ("rust_socketio", "idle") => rsio_idle(url, n).await,
        ("floor", "throughput") => floor_throughput(url, n).await,
        ("cli", "throughput") => cli_throughput(url, n).await,
        ("floor", "rtt") => floor_rtt(url, n).await,
        ("probe", "tls") => crate::probe::tls(n),
        _ => Err(format!("no such client/mode: {kind} {mode}")),
    }
}

fn throughput_result(events: u64, t0: Instant, cpu0: Duration, check: u64) -> Value {
    json!({
        "events": events,
        "wall_s": t0.elapsed().as_secs_f64(),
        "cpu_s": (cpu_time() - cpu0).as_secs_f64(),
        "check": check,
    })
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

// ---------- Tidings ----------

fn tidings_builder(url: &str, auth: Value) -> tidings::ClientBuilder {
    tidings::Tidings::builder(url)
        .transports(tidings::TransportConfig::only(tidings::TransportKind::WebSocket))
        .reconnect(tidings::ReconnectConfig { enabled: false, ..Default::default() })
        .connect_timeout(Duration::from_secs(60))
        .auth(auth)
}

async fn tidings_throughput(url: &str, n: u64) -> Res {
    let cpu0 = cpu_time();
    let t0 = Instant::now();
    // The defaults a user gets: lossless delivery within the default receive buffer.
    let client = tidings_builder(url, json!({ "mode": "throughput", "n": n })).build().map_err(|e| e.to_string())?;
    let mut sub = client.on::<TaskCreated>("task.created");
    let (mut count, mut check) = (0u64, 0u64);
    while count < n {
        match tokio::time::timeout(Duration::from_secs(60), sub.next()).await {
            Ok(Some(Ok(ev))) => {
                check += ev.data.touch();
                count += 1;
            }
            Ok(Some(Err(e))) => return Err(format!("after {count} events: {e}")),
            Ok(None) => return Err(format!("stream ended after {count} events")),
            Err(_) => return Err(format!("stalled after {count} events")),
        }
    }
    let r = throughput_result(count, t0, cpu0, check);
    client.close().await;
    Ok(r)
}

async fn tidings_rtt(url: &str, n: u64) -> Res {
    let client = tidings_builder(url, json!({ "mode": "rtt" })).connect().await.map_err(|e| e.to_string())?;
    let task = TaskCreated::sample(7);
    let mut lat = Vec::with_capacity(n as usize);
    for _ in 0..n {
        let t = Instant::now();
        let ack = client.emit_with_ack("echo", &task, ACK_TIMEOUT).await.map_err(|e| e.to_string())?;
        lat.push(micros(t.elapsed()));
        let v: Value = ack.deserialize().map_err(|e| e.to_string())?;
        if v["ok"] != json!(true) {
            return Err(format!("bad ack {v}"));
        }
    }
    client.close().await;
    Ok(json!({ "lat_us": lat }))
}

/// Opens `n` connections with `connect`, at most `CONNECT_CONCURRENCY` at a time.
async fn connect_many<C, E, F, Fut>(url: &str, n: u64, connect: F) -> Result<Vec<C>, String>
where
    C: Send + 'static,
    E: std::fmt::Display + Send + 'static,
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = Result<C, E>> + Send + 'static,
{
    let sem = Arc::new(Semaphore::new(CONNECT_CONCURRENCY));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..n {
        let sem = sem.clone();
        let fut = connect(url.to_string());
        tasks.spawn(async move {
            let _permit = sem.acquire().await;
            fut.await
        });
    }
    let mut clients = Vec::with_capacity(n as usize);
    while let Some(r) = tasks.join_next().await {
        clients.push(r.map_err(|e| e.to_string())?.map_err(|e| format!("connect: {e}"))?);
    }
    Ok(clients)
}

async fn tidings_idle(url: &str, n: u64) -> Res {
    let rss0 = rss_bytes();
    let clients =
        connect_many(url, n, |url| async move { tidings_builder(&url, json!({ "mode": "idle" })).connect().await })
            .await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let up = clients.iter().filter(|c| matches!(c.state(), tidings::ConnectionState::Connected { .. })).count();
    if up as u64 != n {
        return Err(format!("{} of {n} connections dropped while idle", n - up as u64));
    }
    let rss1 = rss_bytes();
    Ok(json!({ "connections": up, "rss_before": rss0, "rss_after": rss1 }))
}

// ---------- rust_socketio ----------

fn rsio_builder(url: &str, auth: Value) -> rust_socketio::asynchronous::ClientBuilder {
    rust_socketio::asynchronous::ClientBuilder::new(url)
        .transport_type(rust_socketio::TransportType::Websocket)
        .reconnect(false)
        .auth(auth)
}

async fn rsio_throughput(url: &str, n: u64) -> Res {
    use rust_socketio::Payload;
    let cpu0 = cpu_time();
    let t0 = Instant::now();
    let count = Arc::new(AtomicU64::new(0));
    let check = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<()>();
    let (c, k, e) = (count.clone(), check.clone(), errors.clone());
    let client = rsio_builder(url, json!({ "mode": "throughput", "n": n }))
        .on("task.created", move |payload: Payload, _| {
            // The typed decode a user would write with this API: Payload::Text -> serde.
            let task = match payload {
                Payload::Text(mut args) if !args.is_empty() => {
                    serde_json::from_value::<TaskCreated>(args.swap_remove(0)).ok()
                }
                _ => None,
            };
            match task {
                Some(t) => {
                    k.fetch_add(t.touch(), Ordering::Relaxed);
                }
                None => {
                    e.fetch_add(1, Ordering::Relaxed);
                }
            }
            if c.fetch_add(1, Ordering::Relaxed) + 1 == n {
                let _ = done_tx.send(());
            }
            async {}.boxed()
        })
        .connect()
        .await
        .map_err(|e| e.to_string())?;
    if tokio::time::timeout(Duration::from_secs(120), done_rx.recv()).await.is_err() {
        return Err(format!("stalled after {} events", count.load(Ordering::Relaxed)));
    }
    let errs = errors.load(Ordering::Relaxed);
    if errs > 0 {
        return Err(format!("{errs} payloads failed to decode"));
    }
    let r = throughput_result(count.load(Ordering::Relaxed), t0, cpu0, check.load(Ordering::Relaxed));
    let _ = client.disconnect().await;
    Ok(r)
}

async fn rsio_rtt(url: &str, n: u64) -> Res {
    use rust_socketio::Payload;
    let client = rsio_builder(url, json!({ "mode": "rtt" })).connect().await.map_err(|e| e.to_string())?;
    // rust_socketio 0.6's connect() can return before the namespace is connected, and an emit
    // sent at once is then dropped by socketioxide (seen 3 of 3 times, TOOLCHAIN.md): settle first.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let task = serde_json::to_value(TaskCreated::sample(7)).map_err(|e| e.to_string())?;
    let (tx, mut rx) = mpsc::unbounded_channel::<Payload>();
    let mut lat = Vec::with_capacity(n as usize);
    for i in 0..n {
        let tx = tx.clone();
        let t = Instant::now();
        client
            .emit_with_ack("echo", Payload::Text(vec![task.clone()]), ACK_TIMEOUT, move |p: Payload, _| {
                let _ = tx.send(p);
                async {}.boxed()
            })
            .await
            .map_err(|e| e.to_string())?;
        match tokio::time::timeout(ACK_TIMEOUT, rx.recv()).await {
            Ok(Some(_)) => lat.push(micros(t.elapsed())),
            _ => return Err(format!("ack {i} timed out")),
        }
    }
    let _ = client.disconnect().await;
    Ok(json!({ "lat_us": lat }))
}

async fn rsio_idle(url: &str, n: u64) -> Res {
    let rss0 = rss_bytes();
    let clients =
        connect_many(url, n, |url| async move { rsio_builder(&url, json!({ "mode": "idle" })).connect().await })
            .await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss1 = rss_bytes();
    Ok(json!({ "connections": clients.len(), "rss_before": rss0, "rss_after": rss1 }))
}

// ---------- floor: bare tokio-tungstenite + serde_json ----------

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn floor_connect(url: &str, auth: Value) -> Result<Ws, String> {
    let ws_url = format!("{}/socket.io/?EIO=4&transport=websocket", url.replacen("http://", "ws://", 1));
    // TCP_NODELAY, as Tidings, rust_socketio and Node's ws set it.
    let (mut ws, _) =
        tokio_tungstenite::connect_async_with_config(ws_url, None, true).await.map_err(|e| e.to_string())?;
    // Engine.IO open packet, then the Socket.IO CONNECT and its ack.
    match ws.next().await {
        Some(Ok(Message::Text(t))) if t.starts_with('0') => {}
        other => return Err(format!("no open packet: {other:?}")),
    }
    ws.send(Message::text(format!("40{auth}"))).await.map_err(|e| e.to_string())?;
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) if t.starts_with("40") => return Ok(ws),
            Some(Ok(Message::Text(t))) if t.as_str() == "2" => {
                ws.send(Message::text("3")).await.map_err(|e| e.to_string())?;
            }
            Some(Ok(_)) => {}
            other => return Err(format!("no CONNECT ack: {other:?}")),
        }
    }
}

// ---------- the `tidings` CLI ----------

/// `tidings listen URL --transport websocket --event task.created --count N > /dev/null`, as a
/// user would run it: the CLI binary next to this one (`scripts/bench.sh` builds both). Wall time
/// from spawning to its exit (process start and connection included); CPU of the CLI process.
async fn cli_throughput(url: &str, n: u64) -> Res {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?.with_file_name("tidings");
    let auth = json!({ "mode": "throughput", "n": n }).to_string();
    let cpu0 = crate::sys::children_cpu_time();
    let t0 = Instant::now();
    let status = tokio::process::Command::new(&exe)
        .args(["listen", url, "--transport", "websocket", "--auth", &auth, "--event", "task.created"])
        .args(["--count", &n.to_string(), "--timeout", "300"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .await
        .map_err(|e| format!("{}: {e} (build it: scripts/bench.sh)", exe.display()))?;
    let wall = t0.elapsed().as_secs_f64();
    if !status.success() {
        return Err(format!("the CLI exited with {status}"));
    }
    Ok(json!({
        "events": n,
        "wall_s": wall,
        "cpu_s": (crate::sys::children_cpu_time() - cpu0).as_secs_f64(),
        "check": n,
    }))
}

async fn floor_throughput(url: &str, n: u64) -> Res {
    let cpu0 = cpu_time();
    let t0 = Instant::now();
    let mut ws = floor_connect(url, json!({ "mode": "throughput", "n": n })).await?;
    let (mut count, mut check) = (0u64, 0u64);
    while count < n {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => {
                if let Some(body) = t.strip_prefix("42") {
                    if let Ok((name, task)) = serde_json::from_str::<(&str, TaskCreated)>(body)
                        && name == "task.created"
                    {
                        check += task.touch();
                        count += 1;
                    }
                } else if t.as_str() == "2" {
                    ws.send(Message::text("3")).await.map_err(|e| e.to_string())?;
                }
            }
            Some(Ok(_)) => {}
            other => return Err(format!("after {count} events: {other:?}")),
        }
    }
    Ok(throughput_result(count, t0, cpu0, check))
}

async fn floor_rtt(url: &str, n: u64) -> Res {
    let mut ws = floor_connect(url, json!({ "mode": "rtt" })).await?;
    let body = serde_json::to_string(&TaskCreated::sample(7)).map_err(|e| e.to_string())?;
    let mut lat = Vec::with_capacity(n as usize);
    for id in 0..n {
        let t = Instant::now();
        ws.send(Message::text(format!(r#"42{id}["echo",{body}]"#))).await.map_err(|e| e.to_string())?;
        let want = format!("43{id}[");
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(t))) if t.starts_with(want.as_str()) => {
                    let _: Vec<Value> = serde_json::from_str(&t[want.len() - 1..]).map_err(|e| e.to_string())?;
                    break;
                }
                Some(Ok(Message::Text(t))) if t.as_str() == "2" => {
                    ws.send(Message::text("3")).await.map_err(|e| e.to_string())?;
                }
                Some(Ok(_)) => {}
                other => return Err(format!("ack {id}: {other:?}")),
            }
        }
        lat.push(micros(t.elapsed()));
    }
    Ok(json!({ "lat_us": lat }))
}
