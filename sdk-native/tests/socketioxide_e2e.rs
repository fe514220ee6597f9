//! The same client against a Rust `socketioxide` server (no connection state recovery there).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, missing_docs)]

mod common;

use std::time::Duration;

use common::within;
use futures_util::StreamExt;
use serde_json::{Value, json};
use socketioxide::SocketIo;
use socketioxide::extract::{AckSender, Data, SocketRef};
use socketioxide::handler::ConnectHandler;
use tidings::{Bytes, ConnectionState, DisconnectReason, Error, Notice, Tidings, TransportConfig, TransportKind};

const T: Duration = Duration::from_secs(10);

async fn auth_middleware(Data(auth): Data<Value>) -> Result<(), String> {
    if auth["token"] == "good" { Ok(()) } else { Err("invalid token".to_string()) }
}

async fn start() -> (String, SocketIo) {
    let (layer, io) = SocketIo::new_layer();
    let handler = async |s: SocketRef, Data(auth): Data<Value>| {
        s.emit("auth", &auth).ok();
        s.on("echo", async |Data(d): Data<Value>, ack: AckSender| {
            ack.send(&d).ok();
        });
        s.on("doge", async |s: SocketRef| {
            s.emit("doge", &bytes::Bytes::from_static(b"asdfasdf")).ok();
        });
        s.on("disconnect-me", async |s: SocketRef| {
            s.disconnect().ok();
        });
        s.on("room:join", async |s: SocketRef, Data(room): Data<String>, ack: AckSender| {
            s.join(room.clone());
            ack.send(&json!({"ok": true, "room": room})).ok();
        });
        // Answers with the sizes of the binary attachments it received, and echoes them back.
        s.on("upload", async |Data(d): Data<(Value, bytes::Bytes, bytes::Bytes)>, ack: AckSender| {
            ack.send(&(json!({"meta": d.0, "sizes": [d.1.len(), d.2.len()]}), d.1)).ok();
        });
        // Asks the client a question with an ack and reports the answer as an event.
        s.on("ask-me", async |s: SocketRef| {
            if let Ok(ack) = s.emit_with_ack::<_, Value>("ask", &1) {
                let reply = ack.await.unwrap_or(Value::Null);
                s.emit("answered", &reply).ok();
            }
        });
    };
    io.ns("/", handler);
    io.ns("/auth", handler.with(auth_middleware));
    let app = axum::Router::new().layer(layer);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.ok() });
    (url, io)
}

/// A socketioxide server on its own runtime and thread, so that dropping it kills the listener
/// and every connection at once (a crash, as far as the client can tell).
struct Server {
    io: SocketIo,
    rt: Option<tokio::runtime::Runtime>,
}

impl Server {
    fn start_on(port: u16) -> Self {
        // Built and started from a plain thread: a runtime cannot be entered from the test's.
        std::thread::spawn(move || Self::start_blocking(port)).join().unwrap()
    }

    fn start_blocking(port: u16) -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let io = rt.block_on(async move {
            let (layer, io) = SocketIo::new_layer();
            io.ns("/", async |s: SocketRef| {
                s.on("room:join", async |s: SocketRef, Data(room): Data<String>, ack: AckSender| {
                    s.join(room.clone());
                    ack.send(&json!({"ok": true, "room": room})).ok();
                });
            });
            let app = axum::Router::new().layer(layer);
            let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap();
            tokio::spawn(async move { axum::serve(listener, app).await.ok() });
            io
        });
        Self { io, rt: Some(rt) }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

async fn connected(url: &str, t: TransportConfig) -> Tidings {
    within(T, "connecting", Tidings::builder(url).transports(t).token("good").connect()).await.unwrap()
}

#[tokio::test]
async fn sx_connect_auth_echo_over_websocket_and_polling() {
    let (url, _io) = start().await;
    for t in [
        TransportConfig::only(TransportKind::WebSocket),
        TransportConfig::only(TransportKind::Polling),
        TransportConfig::polling_first(),
    ] {
        // Subscribe before connecting: the server emits `auth` as soon as the namespace connects.
        let client = Tidings::builder(&url).transports(t).token("good").build().unwrap();
        let mut auth = client.on::<Value>("auth");
        client.wait_connected(T).await.unwrap();
        let auth = tokio::time::timeout(T, auth.next()).await.unwrap().unwrap().unwrap();
        assert_eq!(auth.data, json!({"token": "good"}));
        assert_eq!(auth.offset, None, "socketioxide appends no offsets");
        let ack = client.emit_with_ack("echo", &json!({"a": [1, 2]}), T).await.unwrap();
        assert_eq!(ack.deserialize::<Value>().unwrap(), json!({"a": [1, 2]}));
        within(T, "closing", client.close()).await;
    }
}

#[tokio::test]
async fn sx_binary_from_server() {
    let (url, _io) = start().await;
    let client = connected(&url, TransportConfig::only(TransportKind::WebSocket)).await;
    let mut doge = client.on::<Bytes>("doge");
    within(T, "emit doge", client.emit("doge", &())).await.unwrap();
    assert_eq!(tokio::time::timeout(T, doge.next()).await.unwrap().unwrap().unwrap().data.0, b"asdfasdf");
    within(T, "closing", client.close()).await;
}

#[tokio::test]
async fn sx_middleware_error_is_a_connect_error() {
    let (url, _io) = start().await;
    let connect = Tidings::builder(&format!("{url}/auth")).token("bad").connect();
    let err = within(T, "connecting", connect).await.unwrap_err();
    match err {
        Error::Connect(e) => {
            assert_eq!(e.message, "invalid token");
            assert!(!e.will_retry);
        }
        other => panic!("{other:?}"),
    }
    let connect = Tidings::builder(&format!("{url}/auth")).token("good").connect();
    let ok = within(T, "connecting", connect).await.unwrap();
    within(T, "closing", ok.close()).await;
}

#[tokio::test]
async fn sx_server_disconnect_and_rooms() {
    let (url, io) = start().await;
    let client = connected(&url, TransportConfig::only(TransportKind::WebSocket)).await;
    within(T, "join chat:9", client.join("chat:9")).await.unwrap();
    let mut msgs = client.on::<String>("chat.message");
    within(T, "the broadcast", io.to("chat:9").emit("chat.message", "hello")).await.unwrap();
    assert_eq!(tokio::time::timeout(T, msgs.next()).await.unwrap().unwrap().unwrap().data, "hello");
    let mut notices = client.notices();
    within(T, "emit disconnect-me", client.emit("disconnect-me", &())).await.unwrap();
    loop {
        if let Notice::State(ConnectionState::Disconnected { reason }) =
            tokio::time::timeout(T, notices.recv()).await.unwrap().unwrap()
        {
            assert_eq!(reason, DisconnectReason::IoServerDisconnect);
            break;
        }
    }
    within(T, "closing", client.close()).await;
}

#[tokio::test]
async fn sx_binary_to_server_with_ack() {
    let (url, _io) = start().await;
    for t in [TransportConfig::only(TransportKind::WebSocket), TransportConfig::only(TransportKind::Polling)] {
        let client = connected(&url, t).await;
        let ack = client
            .emit_builder("upload")
            .arg(&json!({"name": "a.bin"}))
            .arg(&Bytes(vec![1, 2, 3]))
            .arg(&Bytes(vec![4; 300]))
            .timeout(T)
            .ack()
            .await
            .unwrap();
        let (summary, echoed): (Value, Bytes) = ack.deserialize().unwrap();
        assert_eq!(summary, json!({"meta": {"name": "a.bin"}, "sizes": [3, 300]}));
        assert_eq!(echoed.0, [1, 2, 3]);
        within(T, "closing", client.close()).await;
    }
}

#[tokio::test]
async fn sx_client_answers_a_server_ack_request() {
    let (url, _io) = start().await;
    let client = connected(&url, TransportConfig::only(TransportKind::WebSocket)).await;
    let mut asks = client.on::<u32>("ask");
    let mut answered = client.on::<Value>("answered");
    within(T, "emit ask-me", client.emit("ask-me", &())).await.unwrap();
    let ask = tokio::time::timeout(T, asks.next()).await.unwrap().unwrap().unwrap();
    assert_eq!(ask.data, 1);
    ask.ack.expect("the server asked for an ack").send(&[json!("yes")]).unwrap();
    let got = tokio::time::timeout(T, answered.next()).await.unwrap().unwrap().unwrap();
    assert_eq!(got.data, json!("yes"));
    within(T, "closing", client.close()).await;
}

#[tokio::test]
async fn sx_server_restart_reconnects_and_rejoins_rooms() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let server = Server::start_on(port);
    let url = format!("http://127.0.0.1:{port}");
    let reconnect = tidings::ReconnectConfig {
        backoff: tidings::BackoffStrategy::SocketIo { min_ms: 100, max_ms: 500, factor: 2.0, randomization: 0.5 },
        ..tidings::ReconnectConfig::default()
    };
    let connect = Tidings::builder(&url)
        .transports(TransportConfig::only(TransportKind::WebSocket))
        .reconnect(reconnect)
        .connect();
    let client = within(T, "connecting", connect).await.unwrap();
    within(T, "join chat:7", client.join("chat:7")).await.unwrap();
    let mut msgs = client.on::<String>("chat.message");
    let mut notices = client.notices();
    drop(server);
    loop {
        let n = tokio::time::timeout(T, notices.recv()).await.unwrap().unwrap();
        if matches!(n, Notice::State(ConnectionState::Reconnecting { attempt: 2, .. })) {
            break;
        }
    }
    let server = Server::start_on(port);
    loop {
        let n = tokio::time::timeout(T, notices.recv()).await.unwrap().unwrap();
        if let Notice::State(ConnectionState::Connected { recovered, .. }) = n {
            assert!(!recovered, "socketioxide has no connection state recovery");
            break;
        }
    }
    // The room was joined again on the new server.
    let mut joined = false;
    for _ in 0..100 {
        let sockets = server.io.within("chat:7").sockets();
        if !sockets.is_empty() {
            joined = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(joined, "the room is re-joined after the restart");
    within(T, "the broadcast", server.io.to("chat:7").emit("chat.message", "after restart")).await.unwrap();
    assert_eq!(tokio::time::timeout(T, msgs.next()).await.unwrap().unwrap().unwrap().data, "after restart");
    assert!(tokio::time::timeout(Duration::from_millis(300), msgs.next()).await.is_err(), "each event once");
    within(T, "closing", client.close()).await;
}
