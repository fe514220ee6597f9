//! The local servers: a hand-rolled Engine.IO v4 / Socket.IO v5 WebSocket server (`raw`), and
//! socketioxide 0.18 on axum 0.8 (`sioxide`). Both behave the same way, driven by the CONNECT
//! auth payload:
//!
//! - `{"mode":"throughput","n":N}`: right after the CONNECT ack, send N `task.created` events,
//!   then one `done` event;
//! - `{"mode":"rtt"}` / `{"mode":"idle"}`: nothing; every `echo` event is acked with `{"ok":true}`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message;

use crate::task::TaskCreated;

const PING_INTERVAL: Duration = Duration::from_secs(25);
const PING_TIMEOUT: Duration = Duration::from_secs(20);

/// Runs a server until killed. Prints `LISTENING <port>` once bound.
pub async fn run(kind: &str, port: u16) -> Result<(), String> {
    crate::sys::raise_nofile();
    let listener = TcpListener::bind(("127.0.0.1", port)).await.map_err(|e| format!("bind {port}: {e}"))?;
    let port = listener.local_addr().map_err(|e| e.to_string())?.port();
    println!("LISTENING {port}");
    match kind {
        "raw" => raw(listener).await,
        "sioxide" => sioxide(listener).await,
        other => Err(format!("unknown server {other}")),
    }
}

fn mode(auth: &Value) -> (&str, u64) {
    (auth.get("mode").and_then(Value::as_str).unwrap_or("idle"), auth.get("n").and_then(Value::as_u64).unwrap_or(0))
}

// ---------- raw ----------

static SIDS: AtomicU64 = AtomicU64::new(1);

async fn raw(listener: TcpListener) -> Result<(), String> {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                tokio::spawn(async move {
                    let _ = raw_conn(stream).await;
                });
            }
            // EMFILE and the like: back off briefly instead of spinning.
            Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
        }
    }
}

async fn raw_conn(stream: TcpStream) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    stream.set_nodelay(true)?;
    let ws = tokio_tungstenite::accept_async(stream).await?;
    let (mut tx, mut rx) = ws.split();
    let sid = SIDS.fetch_add(1, Ordering::Relaxed);
    tx.send(Message::text(format!(
        r#"0{{"sid":"e{sid:019}","upgrades":[],"pingInterval":{},"pingTimeout":{},"maxPayload":1000000}}"#,
        PING_INTERVAL.as_millis(),
        PING_TIMEOUT.as_millis()
    )))
    .await?;
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + PING_INTERVAL, PING_INTERVAL);
    loop {
        tokio::select! {
            msg = rx.next() => {
                let text = match msg {
                    Some(Ok(Message::Text(t))) => t,
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return Ok(()),
                    Some(Ok(_)) => continue,
                };
                let text = text.as_str();
                if let Some(rest) = text.strip_prefix("40") {
                    let auth: Value = serde_json::from_str(rest).unwrap_or(Value::Null);
                    tx.send(Message::text(format!(r#"40{{"sid":"s{sid:019}"}}"#))).await?;
                    if let ("throughput", n) = mode(&auth) {
                        for i in 0..n {
                            let body = serde_json::to_string(&TaskCreated::sample(i))?;
                            tx.feed(Message::text(format!(r#"42["task.created",{body}]"#))).await?;
                        }
                        tx.send(Message::text(format!(r#"42["done",{n}]"#))).await?;
                    }
                } else if let Some(rest) = text.strip_prefix("42") {
                    // `42<id>["echo",…]`: ack with `43<id>[{"ok":true}]`.
                    let id: String = rest.chars().take_while(char::is_ascii_digit).collect();
                    if !id.is_empty() {
                        tx.send(Message::text(format!(r#"43{id}[{{"ok":true}}]"#))).await?;
                    }
                } else if text.starts_with("41") || text == "1" {
                    return Ok(());
                }
                // "3" (pong) and anything else: nothing to do.
            }
            _ = ping.tick() => tx.send(Message::text("2")).await?,
        }
    }
}

// ---------- socketioxide ----------

async fn sioxide(listener: TcpListener) -> Result<(), String> {
    use socketioxide::extract::{AckSender, Data, SocketRef};
    use socketioxide::handler::ConnectHandler;
    use socketioxide::{SendError, SocketError, SocketIo};

    let (layer, io) = SocketIo::builder()
        .ping_interval(PING_INTERVAL)
        .ping_timeout(PING_TIMEOUT)
        .max_buffer_size(65_536)
        .build_layer();
    // socketioxide sends the CONNECT ack and then spawns the connect handler, so an event the
    // client sends at once can arrive before a handler registered there exists, and is dropped
    // (the "emit right after connect is lost" seen with rust_socketio). A connect middleware runs
    // before the ack: register the handlers there.
    let register = |s: SocketRef| async move {
        s.on("echo", |ack: AckSender| async move {
            let _ = ack.send(&serde_json::json!({ "ok": true }));
        });
        Ok::<(), std::convert::Infallible>(())
    };
    let on_connect = |s: SocketRef, Data(auth): Data<Value>| async move {
        if let ("throughput", n) = mode(&auth) {
            tokio::spawn(async move {
                for i in 0..n {
                    let task = TaskCreated::sample(i);
                    loop {
                        match s.emit("task.created", &task) {
                            Ok(()) => break,
                            Err(SendError::Socket(SocketError::InternalChannelFull)) => {
                                tokio::task::yield_now().await;
                            }
                            Err(_) => return,
                        }
                    }
                }
                let _ = s.emit("done", &n);
            });
        }
    };
    io.ns("/", on_connect.with(register));
    let app = axum::Router::new().layer(layer);
    axum::serve(listener, app).await.map_err(|e| e.to_string())
}
