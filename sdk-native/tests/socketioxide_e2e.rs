//! The same client against a Rust `socketioxide` server (no connection state recovery there).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, missing_docs)]

use std::time::Duration;

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
    };
    io.ns("/", handler);
    io.ns("/auth", handler.with(auth_middleware));
    let app = axum::Router::new().layer(layer);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.ok() });
    (url, io)
}

async fn connected(url: &str, t: TransportConfig) -> Tidings {
    Tidings::builder(url).transports(t).token("good").connect().await.unwrap()
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
        client.close().await;
    }
}

#[tokio::test]
async fn sx_binary_from_server() {
    let (url, _io) = start().await;
    let client = connected(&url, TransportConfig::only(TransportKind::WebSocket)).await;
    let mut doge = client.on::<Bytes>("doge");
    client.emit("doge", &()).await.unwrap();
    assert_eq!(tokio::time::timeout(T, doge.next()).await.unwrap().unwrap().unwrap().data.0, b"asdfasdf");
    client.close().await;
}

#[tokio::test]
async fn sx_middleware_error_is_a_connect_error() {
    let (url, _io) = start().await;
    let err = Tidings::builder(&format!("{url}/auth")).token("bad").connect().await.unwrap_err();
    match err {
        Error::Connect(e) => {
            assert_eq!(e.message, "invalid token");
            assert!(!e.will_retry);
        }
        other => panic!("{other:?}"),
    }
    let ok = Tidings::builder(&format!("{url}/auth")).token("good").connect().await.unwrap();
    ok.close().await;
}

#[tokio::test]
async fn sx_server_disconnect_and_rooms() {
    let (url, io) = start().await;
    let client = connected(&url, TransportConfig::only(TransportKind::WebSocket)).await;
    client.join("chat:9").await.unwrap();
    let mut msgs = client.on::<String>("chat.message");
    io.to("chat:9").emit("chat.message", "hello").await.unwrap();
    assert_eq!(tokio::time::timeout(T, msgs.next()).await.unwrap().unwrap().unwrap().data, "hello");
    let mut notices = client.notices();
    client.emit("disconnect-me", &()).await.unwrap();
    loop {
        if let Notice::State(ConnectionState::Disconnected { reason }) =
            tokio::time::timeout(T, notices.recv()).await.unwrap().unwrap()
        {
            assert_eq!(reason, DisconnectReason::IoServerDisconnect);
            break;
        }
    }
    client.close().await;
}
