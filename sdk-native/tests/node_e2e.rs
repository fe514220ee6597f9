//! End-to-end tests against a real Node `socket.io` 4.8 server (PROTOCOL.md §7).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, missing_docs)]

mod common;

use std::time::Duration;

use common::{NodeServer, eventually, next_state, within};
use futures_util::StreamExt;
use serde_json::{Value, json};
use tidings::{
    Bytes, ConnectionState, DisconnectReason, EmitError, Error, Notice, ReconnectConfig, Tidings, TransportConfig,
    TransportKind,
};

const T: Duration = Duration::from_secs(10);

fn ws_only() -> TransportConfig {
    TransportConfig::only(TransportKind::WebSocket)
}

#[tokio::test]
async fn s2_websocket_handshake_then_connect_with_auth() {
    let srv = NodeServer::start("s0");
    let client = Tidings::builder(&srv.url()).transports(ws_only()).token("abc").build().unwrap();
    let mut auth = client.on::<Value>("auth");
    client.wait_connected(T).await.unwrap();
    let auth = tokio::time::timeout(T, auth.next()).await.unwrap().unwrap().unwrap();
    assert_eq!(auth.data, json!({"token": "abc"}));
    match client.state() {
        ConnectionState::Connected { transport, recovered, sid } => {
            assert_eq!(transport, TransportKind::WebSocket);
            assert!(!recovered);
            assert!(!sid.is_empty());
        }
        other => panic!("unexpected state {other:?}"),
    }
    let got = srv.received();
    assert!(got.contains(&r#"40{"token":"abc"}"#.to_string()), "{got:?}");
    // the engine handshake over WebSocket offers no upgrade
    let sent = srv.sent();
    assert!(sent.iter().any(|f| f.starts_with("0{") && f.contains(r#""upgrades":[]"#)), "{sent:?}");
    within(T, "closing", client.close()).await;
}

#[tokio::test]
async fn s1_polling_first_then_upgrade_keeps_order() {
    let srv = NodeServer::start("s0");
    let connect = Tidings::builder(&srv.url()).transports(TransportConfig::polling_first()).connect();
    let client = within(T, "connecting", connect).await.unwrap();
    let mut echoes = client.on::<u32>("echo");
    for i in 0..50u32 {
        within(T, "emit echo", client.emit("echo", &i)).await.unwrap();
    }
    for i in 0..50u32 {
        let e = tokio::time::timeout(T, echoes.next()).await.unwrap().unwrap().unwrap();
        assert_eq!(e.data, i, "events out of order or lost across the upgrade");
    }
    assert!(
        eventually(T, || matches!(
            client.state(),
            ConnectionState::Connected { transport: TransportKind::WebSocket, .. }
        ))
        .await,
        "upgraded to websocket"
    );
    let got = srv.received();
    assert_eq!(got.iter().position(|f| f == "40"), Some(0), "CONNECT first, over polling: {got:?}");
    assert!(got.iter().any(|f| f == "2probe"), "{got:?}");
    assert!(got.iter().any(|f| f == "5"), "{got:?}");
    within(T, "closing", client.close()).await;
}

#[tokio::test]
async fn s33_emits_while_upgrading_are_neither_lost_nor_reordered() {
    // On loopback an upgrade finishes before the first emit; a proxy that blocks WebSockets
    // until the middle of a stream of emits makes the upgrade happen during the stream.
    let srv = NodeServer::start("s0");
    srv.control("POST", "block-websocket?on=1", None).await;
    let transports = TransportConfig { reprobe_every: Duration::from_millis(200), ..TransportConfig::polling_first() };
    let connect = Tidings::builder(&srv.url()).transports(transports).connect();
    let client = within(T, "connecting", connect).await.unwrap();
    assert!(matches!(client.state(), ConnectionState::Connected { transport: TransportKind::Polling, .. }));
    let mut echoes = client.on::<u32>("echo");
    let upgraded = || matches!(client.state(), ConnectionState::Connected { transport: TransportKind::WebSocket, .. });
    let (mut sent, mut after) = (0u32, 0);
    while after < 20 && sent < 3_000 {
        within(T, "emit echo", client.emit("echo", &sent)).await.unwrap();
        sent += 1;
        if sent == 30 {
            srv.control("POST", "block-websocket?on=0", None).await;
        }
        if upgraded() {
            after += 1;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert!(upgraded(), "upgraded to websocket");
    for i in 0..sent {
        let e = tokio::time::timeout(T, echoes.next()).await.unwrap().unwrap().unwrap();
        assert_eq!(e.data, i, "events out of order or lost across the upgrade");
    }
    let got = srv.received_with_transport();
    let echo_over = |t: &str| got.iter().filter(|(f, tr)| f.starts_with(r#"42["echo""#) && tr == t).count();
    assert!(echo_over("polling") >= 30 && echo_over("websocket") >= 20, "both sides of the upgrade: {got:?}");
    assert_eq!(echo_over("polling") + echo_over("websocket"), sent as usize, "each emit sent once");
    assert!(got.iter().any(|(f, _)| f == "5"), "{got:?}");
    within(T, "closing", client.close()).await;
}

#[tokio::test]
async fn s3_heartbeat_is_answered_and_never_initiated() {
    let srv = NodeServer::start("s0");
    let connect = Tidings::builder(&srv.url()).transports(ws_only()).connect();
    let client = within(T, "connecting", connect).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert!(matches!(client.state(), ConnectionState::Connected { .. }));
    let got = srv.received();
    let pongs = got.iter().filter(|f| *f == "3").count();
    assert!(pongs >= 2, "expected pongs, got {got:?}");
    assert!(!got.iter().any(|f| f == "2"), "the client must never ping: {got:?}");
    within(T, "closing", client.close()).await;
}

#[tokio::test]
async fn s4_silent_server_ping_timeout_then_reconnect() {
    // The handshake announces pingInterval 300 + pingTimeout 200, but the server never pings.
    let srv = NodeServer::start("no-ping");
    let connect = Tidings::builder(&srv.url()).transports(ws_only()).connect();
    let client = within(T, "connecting", connect).await.unwrap();
    let mut notices = client.notices();
    let connected_at = tokio::time::Instant::now();
    let s = next_state(&mut notices, |s| matches!(s, ConnectionState::Disconnected { .. })).await;
    let after = connected_at.elapsed();
    assert!(matches!(s, ConnectionState::Disconnected { reason: DisconnectReason::PingTimeout }), "{s:?}");
    assert!(after >= Duration::from_millis(350) && after < Duration::from_millis(2_000), "{after:?}");
    next_state(&mut notices, |s| matches!(s, ConnectionState::Reconnecting { attempt: 1, .. })).await;
    next_state(&mut notices, |s| matches!(s, ConnectionState::Connected { .. })).await;
    assert!(!srv.received().iter().any(|f| f == "2"), "the client never pings");
    within(T, "closing", client.close()).await;
}

#[tokio::test]
async fn s6_custom_namespace_with_auth() {
    let srv = NodeServer::start("s0");
    let client = Tidings::builder(&format!("{}/custom", srv.url()))
        .auth(json!({"token": "x"}))
        .transports(ws_only())
        .build()
        .unwrap();
    let mut auth = client.on::<Value>("auth");
    client.wait_connected(T).await.unwrap();
    let auth = tokio::time::timeout(T, auth.next()).await.unwrap().unwrap().unwrap();
    assert_eq!(auth.data, json!({"token": "x"}));
    assert!(srv.received().contains(&r#"40/custom,{"token":"x"}"#.to_string()));
    let ack = client.emit_with_ack("echo", &json!({"a": 1}), T).await.unwrap();
    assert_eq!(ack.deserialize::<Value>().unwrap(), json!({"a": 1}));
    within(T, "closing", client.close()).await;
}

#[tokio::test]
async fn a_failing_auth_provider_is_retried_after_the_backoff_never_bypassed() {
    let srv = NodeServer::start("s0");
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let counter = calls.clone();
    let client = Tidings::builder(&format!("{}/auth", srv.url()))
        .transports(ws_only())
        .auth_provider(move |_ns| {
            let n = counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async move { if n == 0 { Err("token service down".to_string()) } else { Ok(json!({"token": "good"})) } }
        })
        .build()
        .unwrap();
    let mut notices = client.notices();
    let error = loop {
        match tokio::time::timeout(T, notices.recv()).await.unwrap().unwrap() {
            Notice::ConnectError(e) => break e,
            _ => continue,
        }
    };
    assert_eq!(error.message, "the auth provider failed: token service down");
    assert!(error.will_retry);
    client.wait_connected(T).await.unwrap();
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 2);
    // The server never saw a CONNECT without the token.
    let connects: Vec<String> = srv.received().into_iter().filter(|f| f.starts_with("40/auth")).collect();
    assert_eq!(connects, vec![r#"40/auth,{"token":"good"}"#.to_string()]);
    within(T, "closing", client.close()).await;
}

#[tokio::test]
async fn malformed_packets_are_reported_with_their_cause_and_the_client_reconnects_every_time() {
    // A hostile server: each frame below goes out as one Engine.IO message. Every one must give a
    // typed fault, a "parse error" disconnect and a reconnect, never a panic or a stuck client.
    let deep = format!("2[\"deep\",{}1{}]", "[".repeat(200), "]".repeat(200));
    let frames: Vec<(&str, String)> = vec![
        ("invalid JSON", r#"2["news",{"a":tru}]"#.into()),
        ("truncated JSON", r#"2["news",{"a":1"#.into()),
        ("no event name", "2[]".into()),
        ("unknown packet type", "9".into()),
        ("event without data", "2/nowhere".into()),
        ("an absurd attachment count", r#"51000000000-["x",{"_placeholder":true,"num":0}]"#.into()),
        (
            "one attachment named twice",
            r#"52-["x",{"_placeholder":true,"num":0},{"_placeholder":true,"num":0}]"#.into(),
        ),
        ("nesting past the limit", deep),
    ];
    let srv = NodeServer::start("s0");
    let fast = ReconnectConfig {
        backoff: tidings::BackoffStrategy::SocketIo { min_ms: 50, max_ms: 200, factor: 2.0, randomization: 0.5 },
        ..ReconnectConfig::default()
    };
    let connect = Tidings::builder(&srv.url()).transports(ws_only()).reconnect(fast).connect();
    let client = within(T, "connecting", connect).await.unwrap();
    let mut notices = client.notices();
    for (what, frame) in frames {
        let sent = srv.raw_message(&frame).await;
        assert_eq!(sent["sent"], json!(1), "{what}");
        let mut seen = Vec::new();
        loop {
            let n = tokio::time::timeout(T, notices.recv()).await.unwrap().unwrap();
            let done = matches!(n, Notice::State(ConnectionState::Connected { .. }));
            seen.push(n);
            if done {
                break;
            }
        }
        assert!(matches!(&seen[0], Notice::Fault(tidings::Fault::Socket(_))), "{what}: the cause first: {seen:?}");
        assert_eq!(
            seen[1],
            Notice::State(ConnectionState::Disconnected { reason: DisconnectReason::ParseError }),
            "{what}"
        );
        // And the client works.
        let ack = client.emit_with_ack("echo", &json!(what), T).await.unwrap();
        assert_eq!(ack.deserialize::<String>().unwrap(), what);
    }
    within(T, "closing", client.close()).await;
}

#[tokio::test]
async fn s7_two_namespaces_share_one_engine_session() {
    let srv = NodeServer::start("s0");
    let connect = Tidings::builder(&srv.url()).auth(json!({"token": "x"})).transports(ws_only()).connect();
    let client = within(T, "connecting", connect).await.unwrap();
    let custom = client.of("/custom").unwrap();
    assert_eq!(custom.namespace(), "/custom");
    custom.wait_connected(T).await.unwrap();
    assert_eq!(srv.control("GET", "info", None).await["engineClients"], json!(1), "one engine session");
    let got = srv.received();
    assert!(got.contains(&r#"40{"token":"x"}"#.to_string()), "{got:?}");
    assert!(got.contains(&r#"40/custom,{"token":"x"}"#.to_string()), "{got:?}");
    // Each handle sees its own namespace's events only.
    let mut main_news = client.on::<String>("news");
    let mut custom_news = custom.on::<String>("news");
    srv.emit("/custom", "news", json!(["for custom"])).await;
    srv.emit("/", "news", json!(["for main"])).await;
    assert_eq!(tokio::time::timeout(T, custom_news.next()).await.unwrap().unwrap().unwrap().data, "for custom");
    assert_eq!(tokio::time::timeout(T, main_news.next()).await.unwrap().unwrap().unwrap().data, "for main");
    let ack = custom.emit_with_ack("echo", &json!({"ns": "custom"}), T).await.unwrap();
    assert_eq!(ack.deserialize::<Value>().unwrap(), json!({"ns": "custom"}));
    // Disconnecting /custom sends `41/custom,`; `/` keeps working on the same session.
    let mut notices = custom.notices();
    within(T, "disconnecting", custom.disconnect()).await.unwrap();
    let s = next_state(&mut notices, |s| matches!(s, ConnectionState::Disconnected { .. })).await;
    assert!(matches!(s, ConnectionState::Disconnected { reason: DisconnectReason::IoClientDisconnect }), "{s:?}");
    assert!(eventually(T, || srv.received().iter().any(|f| f == "41/custom,")).await, "{:?}", srv.received());
    assert!(matches!(client.state(), ConnectionState::Connected { .. }));
    let ack = client.emit_with_ack("echo", &json!("still here"), T).await.unwrap();
    assert_eq!(ack.deserialize::<String>().unwrap(), "still here");
    assert_eq!(srv.control("GET", "info", None).await["engineClients"], json!(1));
    assert!(!srv.received().iter().any(|f| f == "41"), "the main namespace stayed connected");
    // And it comes back on demand.
    custom.connect().unwrap();
    custom.wait_connected(T).await.unwrap();
    within(T, "closing", client.close()).await;
}

#[tokio::test]
async fn s8_connect_error_with_data_does_not_reconnect() {
    let srv = NodeServer::start("s0");
    let connect = Tidings::builder(&format!("{}/no", srv.url())).transports(ws_only()).connect();
    let err = within(T, "connecting", connect).await.unwrap_err();
    match err {
        Error::Connect(e) => {
            assert_eq!(e.message, "not authorized");
            assert_eq!(serde_json::from_str::<Value>(e.data.as_deref().unwrap()).unwrap(), json!({"code": 42}));
            assert!(!e.will_retry);
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn s9_unknown_namespace() {
    let srv = NodeServer::start("s0");
    let connect = Tidings::builder(&format!("{}/random", srv.url())).transports(ws_only()).connect();
    let err = within(T, "connecting", connect).await.unwrap_err();
    assert!(matches!(err, Error::Connect(ref e) if e.message == "Invalid namespace"), "{err:?}");
}

#[tokio::test]
async fn s10_ack_ids_count_from_zero() {
    let srv = NodeServer::start("s0");
    let connect = Tidings::builder(&srv.url()).transports(ws_only()).connect();
    let client = within(T, "connecting", connect).await.unwrap();
    let a = client.emit_with_ack("echo", &json!({"a": 1}), T).await.unwrap();
    assert_eq!(a.deserialize::<Value>().unwrap(), json!({"a": 1}));
    let b = client.emit_with_ack("echo", &2, T).await.unwrap();
    assert_eq!(b.deserialize::<u32>().unwrap(), 2);
    let got = srv.received();
    assert!(got.contains(&r#"420["echo",{"a":1}]"#.to_string()), "{got:?}");
    assert!(got.contains(&r#"421["echo",2]"#.to_string()), "{got:?}");
    assert!(srv.sent().contains(&r#"430[{"a":1}]"#.to_string()));
    within(T, "closing", client.close()).await;
}

#[tokio::test]
async fn s11_client_answers_a_server_ack_request() {
    let srv = NodeServer::start("s0");
    let connect = Tidings::builder(&srv.url()).transports(ws_only()).connect();
    let client = within(T, "connecting", connect).await.unwrap();
    let mut asks = client.on::<u32>("ask");
    let answered = client.on::<String>("answered");
    within(T, "emit ask", client.emit("ask", &())).await.unwrap();
    let ask = tokio::time::timeout(T, asks.next()).await.unwrap().unwrap().unwrap();
    assert_eq!(ask.data, 1);
    ask.ack.expect("the server asked for an ack").send(&[json!("yes")]).unwrap();
    let mut answered = answered;
    let a = tokio::time::timeout(T, answered.next()).await.unwrap().unwrap().unwrap();
    assert_eq!(a.data, "yes");
    within(T, "closing", client.close()).await;
}

#[tokio::test]
async fn s12_binary_from_server() {
    let srv = NodeServer::start("s0");
    let connect = Tidings::builder(&srv.url()).transports(ws_only()).connect();
    let client = within(T, "connecting", connect).await.unwrap();
    let doge = client.on::<Bytes>("doge");
    within(T, "emit doge", client.emit("doge", &())).await.unwrap();
    let mut doge = doge;
    let d = tokio::time::timeout(T, doge.next()).await.unwrap().unwrap().unwrap();
    assert_eq!(d.data.0, b"asdfasdf");
    within(T, "closing", client.close()).await;
}

#[tokio::test]
async fn s13_binary_with_ack_is_a_binary_event() {
    let srv = NodeServer::start("s0");
    let connect = Tidings::builder(&srv.url()).transports(ws_only()).connect();
    let client = within(T, "connecting", connect).await.unwrap();
    let ack = client.emit_with_ack("echo", &Bytes(vec![1, 2, 3]), T).await.unwrap();
    assert_eq!(ack.deserialize::<Bytes>().unwrap().0, vec![1, 2, 3]);
    let got = srv.received();
    assert!(got.contains(&r#"451-0["echo",{"_placeholder":true,"num":0}]"#.to_string()), "{got:?}");
    assert!(!got.iter().any(|f| f.starts_with("46")), "never BINARY_ACK on send: {got:?}");
    within(T, "closing", client.close()).await;
}

#[tokio::test]
async fn s14_two_attachments_in_order() {
    let srv = NodeServer::start("s0");
    let connect = Tidings::builder(&srv.url()).transports(ws_only()).connect();
    let client = within(T, "connecting", connect).await.unwrap();
    let ack = client
        .emit_builder("echo")
        .arg(&Bytes(vec![1]))
        .arg(&json!({"x": Bytes(vec![2, 2])}))
        .timeout(T)
        .ack()
        .await
        .unwrap();
    let (a, b): (Bytes, Value) = ack.deserialize().unwrap();
    assert_eq!(a.0, vec![1]);
    assert_eq!(b, json!({"x": {"$binary": "AgI="}}));
    within(T, "closing", client.close()).await;
}

#[tokio::test]
async fn s15_binary_over_polling() {
    let srv = NodeServer::start("s0");
    let connect = Tidings::builder(&srv.url()).transports(TransportConfig::only(TransportKind::Polling)).connect();
    let client = within(T, "connecting", connect).await.unwrap();
    let ack = client.emit_with_ack("echo", &Bytes(vec![1, 2, 3]), T).await.unwrap();
    assert_eq!(ack.deserialize::<Bytes>().unwrap().0, vec![1, 2, 3]);
    assert!(matches!(client.state(), ConnectionState::Connected { transport: TransportKind::Polling, .. }));
    within(T, "closing", client.close()).await;
}

#[tokio::test]
async fn s16_emits_before_connect_are_buffered_in_order() {
    let srv = NodeServer::start("s0");
    let client =
        Tidings::builder(&srv.url()).transports(TransportConfig::only(TransportKind::Polling)).build().unwrap();
    let mut echoes = client.on::<u32>("echo");
    for i in 0..5u32 {
        within(T, "emit echo", client.emit("echo", &i)).await.unwrap();
    }
    for i in 0..5u32 {
        assert_eq!(tokio::time::timeout(T, echoes.next()).await.unwrap().unwrap().unwrap().data, i);
    }
    // the CONNECT went alone: no batch carried both `40` and an event
    let got = srv.received();
    assert!(got.iter().any(|f| f == "40"), "{got:?}");
    within(T, "closing", client.close()).await;
}

#[tokio::test]
async fn s17_volatile_dropped_while_disconnected() {
    let srv = NodeServer::start("s0");
    let client = Tidings::builder(&srv.url()).transports(ws_only()).build().unwrap();
    let r = within(T, "a volatile emit echo", client.emit_volatile("echo", &1)).await;
    assert_eq!(r, Err(Error::Emit(EmitError::VolatileDropped)));
    within(T, "closing", client.close()).await;
}

#[tokio::test]
async fn s18_ack_timeout() {
    let srv = NodeServer::start("s0");
    let connect = Tidings::builder(&srv.url()).transports(ws_only()).connect();
    let client = within(T, "connecting", connect).await.unwrap();
    let r = client.emit_with_ack("nothing-acks", &1, Duration::from_millis(50)).await;
    assert_eq!(r.unwrap_err().to_string(), "operation has timed out");
    within(T, "closing", client.close()).await;
}

#[tokio::test]
async fn s19_retries_with_new_ack_ids_then_the_queue_moves_on() {
    let srv = NodeServer::start("s0");
    let connect = Tidings::builder(&srv.url()).transports(ws_only()).retries(2, Duration::from_millis(100)).connect();
    let client = within(T, "connecting", connect).await.unwrap();
    let started = tokio::time::Instant::now();
    let first = client.emit_builder("nothing-acks").arg(&1).ack();
    let c2 = client.clone();
    let second = tokio::spawn(async move { c2.emit_builder("echo").arg(&2).ack().await });
    let r = within(T, "the first emit's retries", first).await;
    assert!(matches!(r, Err(Error::Emit(EmitError::Timeout))), "{r:?}");
    assert!(started.elapsed() >= Duration::from_millis(290), "{:?}", started.elapsed());
    let ok = within(T, "the second emit's ack", second).await.unwrap().unwrap();
    assert_eq!(ok.deserialize::<u32>().unwrap(), 2);
    let got: Vec<String> = srv.received().into_iter().filter(|f| f.starts_with("42")).collect();
    assert_eq!(
        got,
        vec![r#"420["nothing-acks",1]"#, r#"421["nothing-acks",1]"#, r#"422["nothing-acks",1]"#, r#"423["echo",2]"#]
    );
    within(T, "closing", client.close()).await;
}

#[tokio::test]
async fn s20_server_disconnect_does_not_reconnect_until_asked() {
    let srv = NodeServer::start("s0");
    let connect = Tidings::builder(&srv.url()).transports(ws_only()).connect();
    let client = within(T, "connecting", connect).await.unwrap();
    let first_sid = match client.state() {
        ConnectionState::Connected { sid, .. } => sid,
        s => panic!("{s:?}"),
    };
    let mut notices = client.notices();
    within(T, "emit disconnect-me", client.emit("disconnect-me", &())).await.unwrap();
    let s = next_state(&mut notices, |s| matches!(s, ConnectionState::Disconnected { .. })).await;
    assert_eq!(s, ConnectionState::Disconnected { reason: DisconnectReason::IoServerDisconnect });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(client.state(), ConnectionState::Disconnected { reason: DisconnectReason::IoServerDisconnect });
    client.connect().unwrap();
    client.wait_connected(T).await.unwrap();
    match client.state() {
        ConnectionState::Connected { sid, .. } => assert_ne!(sid, first_sid),
        s => panic!("{s:?}"),
    }
    within(T, "closing", client.close()).await;
}

#[tokio::test]
async fn s21_transport_close_reconnects_with_backoff() {
    let srv = NodeServer::start("s0");
    let connect = Tidings::builder(&srv.url()).transports(ws_only()).connect();
    let client = within(T, "connecting", connect).await.unwrap();
    let mut notices = client.notices();
    within(T, "emit close-transport", client.emit("close-transport", &())).await.unwrap();
    let s = next_state(&mut notices, |s| matches!(s, ConnectionState::Disconnected { .. })).await;
    assert_eq!(s, ConnectionState::Disconnected { reason: DisconnectReason::TransportClose });
    match next_state(&mut notices, |s| matches!(s, ConnectionState::Reconnecting { .. })).await {
        ConnectionState::Reconnecting { attempt, delay } => {
            assert_eq!(attempt, 1);
            assert!((500..=1500).contains(&(delay.as_millis() as u64)), "{delay:?}");
        }
        s => panic!("{s:?}"),
    }
    next_state(&mut notices, |s| matches!(s, ConnectionState::Connected { .. })).await;
    let ack = client.emit_with_ack("echo", &7, T).await.unwrap();
    assert_eq!(ack.deserialize::<u32>().unwrap(), 7);
    within(T, "closing", client.close()).await;
}

#[tokio::test]
async fn s22_unreachable_server_gives_connect_errors_then_reconnect_failed() {
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let reconnect = ReconnectConfig {
        max_attempts: Some(3),
        backoff: tidings::BackoffStrategy::SocketIo { min_ms: 100, max_ms: 500, factor: 2.0, randomization: 0.5 },
        ..ReconnectConfig::default()
    };
    let client = Tidings::builder(&format!("http://127.0.0.1:{port}"))
        .transports(ws_only())
        .reconnect(reconnect)
        .build()
        .unwrap();
    let mut notices = client.notices();
    let (mut errors, mut delays) = (0, Vec::new());
    loop {
        match tokio::time::timeout(T, notices.recv()).await.unwrap().unwrap() {
            Notice::ConnectError(_) => errors += 1,
            Notice::State(ConnectionState::Reconnecting { delay, .. }) => delays.push(delay.as_millis() as u64),
            Notice::State(ConnectionState::Disconnected { reason }) => {
                assert_eq!(reason, DisconnectReason::ReconnectFailed);
                break;
            }
            _ => {}
        }
    }
    assert_eq!(errors, 4, "the first try and 3 attempts each report connect_error");
    assert_eq!(delays.len(), 3);
    for (d, (lo, hi)) in delays.iter().zip([(50, 150), (100, 300), (200, 500)]) {
        assert!((lo..=hi).contains(d), "{delays:?}");
    }
    within(T, "closing", client.close()).await;
}

#[tokio::test]
async fn s23_client_disconnect_sends_41() {
    let srv = NodeServer::start("s0");
    let connect = Tidings::builder(&srv.url()).transports(ws_only()).connect();
    let client = within(T, "connecting", connect).await.unwrap();
    within(T, "disconnecting", client.disconnect()).await.unwrap();
    assert_eq!(client.state(), ConnectionState::Disconnected { reason: DisconnectReason::IoClientDisconnect });
    assert!(eventually(T, || srv.received().iter().any(|f| f == "41")).await, "{:?}", srv.received());
    within(T, "closing", client.close()).await;
}

#[tokio::test]
async fn s23_polling_client_disconnect_posts_close() {
    // Long heartbeats: if the server forgets the session quickly, it was told so (POST `1`), not
    // timed out.
    let srv = NodeServer::start_with("s0", &["--ping-interval", "20000", "--ping-timeout", "20000"]);
    let connect = Tidings::builder(&srv.url()).transports(TransportConfig::only(TransportKind::Polling)).connect();
    let client = within(T, "connecting", connect).await.unwrap();
    let mut notices = client.notices();
    assert_eq!(srv.control("GET", "info", None).await["engineClients"], json!(1));
    within(T, "disconnecting", client.disconnect()).await.unwrap();
    let s = next_state(&mut notices, |s| matches!(s, ConnectionState::Disconnected { .. })).await;
    assert!(matches!(s, ConnectionState::Disconnected { reason: DisconnectReason::IoClientDisconnect }), "{s:?}");
    let mut gone = false;
    for _ in 0..50 {
        if srv.control("GET", "info", None).await["engineClients"] == json!(0) {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(gone, "the server still holds the polling session 5 s after close(): the close packet never arrived");
    assert!(srv.received().iter().any(|f| f == "41"), "{:?}", srv.received());
    assert!(
        tokio::time::timeout(Duration::from_millis(1500), next_state(&mut notices, |_| true)).await.is_err(),
        "no reconnect after disconnect()"
    );
    within(T, "closing", client.close()).await;
}

#[tokio::test]
async fn s24_connection_state_recovery_delivers_missed_events_once() {
    let srv = NodeServer::start("s1");
    let connect = Tidings::builder(&srv.url()).transports(ws_only()).connect();
    let client = within(T, "connecting", connect).await.unwrap();
    let mut news = client.on::<String>("news");
    srv.emit("/", "news", json!(["one"])).await;
    let one = tokio::time::timeout(T, news.next()).await.unwrap().unwrap().unwrap();
    assert_eq!(one.data, "one", "the offset is metadata, not an argument");
    assert!(one.offset.is_some());
    let mut notices = client.notices();
    srv.kill_transports().await;
    next_state(&mut notices, |s| matches!(s, ConnectionState::Disconnected { .. })).await;
    srv.emit("/", "news", json!(["two"])).await;
    srv.emit("/", "news", json!(["three"])).await;
    let s = next_state(&mut notices, |s| matches!(s, ConnectionState::Connected { .. })).await;
    assert!(matches!(s, ConnectionState::Connected { recovered: true, .. }), "{s:?}");
    let two = tokio::time::timeout(T, news.next()).await.unwrap().unwrap().unwrap();
    let three = tokio::time::timeout(T, news.next()).await.unwrap().unwrap().unwrap();
    assert_eq!((two.data.as_str(), three.data.as_str()), ("two", "three"));
    assert!(tokio::time::timeout(Duration::from_millis(300), news.next()).await.is_err(), "no duplicates");
    let connects: Vec<String> = srv.received().into_iter().filter(|f| f.starts_with("40{\"pid\"")).collect();
    assert_eq!(connects.len(), 1, "{connects:?}");
    assert!(connects[0].contains(&format!(r#""offset":"{}""#, one.offset.unwrap())));
    within(T, "closing", client.close()).await;
}

fn sid(client: &Tidings) -> String {
    match client.state() {
        ConnectionState::Connected { sid, .. } => sid,
        other => panic!("not connected: {other:?}"),
    }
}

#[tokio::test]
async fn s25_recovery_without_events_is_not_recovered() {
    // `/quiet` sends nothing on connect, so the client holds a pid but no offset when it drops.
    let srv = NodeServer::start("s1");
    let connect = Tidings::builder(&format!("{}/quiet", srv.url())).transports(ws_only()).connect();
    let client = within(T, "connecting", connect).await.unwrap();
    let first_sid = sid(&client);
    let mut notices = client.notices();
    srv.kill_transports().await;
    let s = next_state(&mut notices, |s| matches!(s, ConnectionState::Connected { .. })).await;
    assert!(matches!(s, ConnectionState::Connected { recovered: false, .. }), "{s:?}");
    // The frame log is read from the server's stderr on another thread: it may lag the notice.
    let two = || srv.received().into_iter().filter(|f| f.starts_with("40/quiet,")).count() == 2;
    assert!(eventually(T, two).await, "{:?}", srv.received());
    let connects: Vec<String> = srv.received().into_iter().filter(|f| f.starts_with("40/quiet,")).collect();
    assert!(connects[1].contains(r#""pid":"#) && !connects[1].contains("offset"), "{}", connects[1]);
    assert_ne!(sid(&client), first_sid, "a session that was not recovered gets a new sid");
    within(T, "closing", client.close()).await;
}

#[tokio::test]
async fn s27_acks_carry_no_offset_and_recovery_auth_order() {
    let srv = NodeServer::start("s1");
    let client = Tidings::builder(&srv.url()).token("t1").transports(ws_only()).build().unwrap();
    let mut auth = client.on::<Value>("auth");
    client.wait_connected(T).await.unwrap();
    let _ = tokio::time::timeout(T, auth.next()).await.unwrap().unwrap().unwrap();
    let ack = client.emit_with_ack("echo", &json!("x"), T).await.unwrap();
    assert_eq!(ack.len(), 1);
    let mut notices = client.notices();
    srv.kill_transports().await;
    next_state(&mut notices, |s| matches!(s, ConnectionState::Connected { .. })).await;
    assert!(eventually(T, || srv.received().iter().any(|f| f.starts_with("40{\"pid\""))).await, "recovery CONNECT");
    let c = srv.received().into_iter().find(|f| f.starts_with("40{\"pid\"")).expect("recovery CONNECT");
    let keys: Vec<String> =
        serde_json::from_str::<serde_json::Map<String, Value>>(&c[2..]).unwrap().keys().cloned().collect();
    // serde_json's Map is sorted; check the raw order instead
    let (p, o, t) = (c.find("\"pid\"").unwrap(), c.find("\"offset\"").unwrap(), c.find("\"token\"").unwrap());
    assert!(p < o && o < t, "{c}");
    assert_eq!(keys.len(), 3);
    within(T, "closing", client.close()).await;
}

#[tokio::test]
async fn s28_max_payload_refuses_oversized_emits() {
    let srv = NodeServer::start("s2");
    let connect = Tidings::builder(&srv.url()).transports(ws_only()).connect();
    let client = within(T, "connecting", connect).await.unwrap();
    let big = "x".repeat(200);
    let r = within(T, "emit echo", client.emit("echo", &big)).await;
    assert!(matches!(r, Err(Error::Emit(EmitError::TooLarge { max: 100, .. }))), "{r:?}");
    let ok = client.emit_with_ack("echo", &"small", T).await.unwrap();
    assert_eq!(ok.deserialize::<String>().unwrap(), "small");
    within(T, "closing", client.close()).await;
}

#[tokio::test]
async fn s29_polling_batches_stay_under_max_payload() {
    let srv = NodeServer::start("s2");
    let connect = Tidings::builder(&srv.url()).transports(TransportConfig::only(TransportKind::Polling)).connect();
    let client = within(T, "connecting", connect).await.unwrap();
    let mut echoes = client.on::<String>("echo");
    for i in 0..3 {
        within(T, "emit echo", client.emit("echo", &format!("payload-number-{i:02}"))).await.unwrap();
    }
    for i in 0..3 {
        let e = tokio::time::timeout(T, echoes.next()).await.unwrap().unwrap().unwrap();
        assert_eq!(e.data, format!("payload-number-{i:02}"));
    }
    assert!(matches!(client.state(), ConnectionState::Connected { .. }), "the server never saw an oversized POST");
    within(T, "closing", client.close()).await;
}

#[tokio::test]
async fn s31_reserved_event_names_are_refused_before_the_wire() {
    let srv = NodeServer::start("s0");
    let connect = Tidings::builder(&srv.url()).transports(ws_only()).connect();
    let client = within(T, "connecting", connect).await.unwrap();
    for name in ["connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"] {
        match within(T, "emit a reserved name", client.emit(name, &1)).await {
            Err(Error::InvalidEmit(tidings::InvalidEmit::ReservedName(n))) => assert_eq!(n, name),
            other => panic!("{name}: {other:?}"),
        }
    }
    // The connection is unharmed (the server would have closed it on `42["disconnect"]`).
    let ack = client.emit_with_ack("echo", &"ok", T).await.unwrap();
    assert_eq!(ack.deserialize::<String>().unwrap(), "ok");
    assert!(!srv.received().iter().any(|f| f.contains(r#"["disconnect""#)));
    within(T, "closing", client.close()).await;
}

#[tokio::test]
async fn s34_http_400_is_an_xhr_poll_error() {
    // A polling request to a WebSocket-only server gets 400 `{"code":0,"message":"Transport unknown"}`.
    let srv = NodeServer::start("ws-only");
    let reconnect = ReconnectConfig { max_attempts: Some(0), ..ReconnectConfig::default() };
    let connect = Tidings::builder(&srv.url())
        .transports(TransportConfig::only(TransportKind::Polling))
        .reconnect(reconnect)
        .connect();
    let err = within(T, "connecting", connect).await.unwrap_err();
    match err {
        Error::Connect(e) => {
            assert_eq!(e.message, "xhr poll error");
            assert!(!e.will_retry && !e.fallback_pending, "{e:?}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn s32_try_all_transports_falls_back_to_websocket() {
    let srv = NodeServer::start("ws-only");
    let mut t = TransportConfig::polling_first();
    t.try_all_transports = true;
    let connect = Tidings::builder(&srv.url()).transports(t).connect();
    let client = within(T, "connecting", connect).await.unwrap();
    assert!(matches!(client.state(), ConnectionState::Connected { transport: TransportKind::WebSocket, .. }));
    within(T, "closing", client.close()).await;
}

#[tokio::test]
async fn falls_back_to_polling_when_the_server_refuses_websocket() {
    let srv = NodeServer::start("polling-only");
    // The default: WebSocket first, long-polling after two failed WebSocket attempts.
    let client = Tidings::builder(&srv.url()).build().unwrap();
    let mut news = client.on::<String>("news");
    client.wait_connected(T).await.unwrap();
    assert!(matches!(client.state(), ConnectionState::Connected { transport: TransportKind::Polling, .. }));
    srv.emit("/", "news", json!(["over polling"])).await;
    assert_eq!(tokio::time::timeout(T, news.next()).await.unwrap().unwrap().unwrap().data, "over polling");
    let ack = client.emit_with_ack("echo", &json!({"a": 1}), T).await.unwrap();
    assert_eq!(ack.deserialize::<Value>().unwrap(), json!({"a": 1}));
    within(T, "closing", client.close()).await;
}

#[tokio::test]
async fn a_blocked_websocket_falls_back_to_polling_and_moves_back_when_unblocked() {
    let srv = NodeServer::start("s0");
    srv.control("POST", "block-websocket?on=1", None).await;
    let transports = TransportConfig { reprobe_every: Duration::from_millis(500), ..TransportConfig::default() };
    let client = Tidings::builder(&srv.url()).transports(transports).build().unwrap();
    let mut news = client.on::<u32>("news");
    let mut notices = client.notices();
    let s = next_state(&mut notices, |s| matches!(s, ConnectionState::Connected { .. })).await;
    assert!(matches!(s, ConnectionState::Connected { transport: TransportKind::Polling, .. }), "{s:?}");
    srv.emit("/", "news", json!([1])).await;
    srv.control("POST", "block-websocket?on=0", None).await;
    // The background probe finds WebSocket open again and upgrades the same session.
    let s = next_state(&mut notices, |s| matches!(s, ConnectionState::Connected { .. })).await;
    assert!(matches!(s, ConnectionState::Connected { transport: TransportKind::WebSocket, recovered: false, .. }));
    srv.emit("/", "news", json!([2])).await;
    let mut got = Vec::new();
    for _ in 0..2 {
        got.push(tokio::time::timeout(T, news.next()).await.unwrap().unwrap().unwrap().data);
    }
    assert_eq!(got, [1, 2], "nothing lost or reordered across the move");
    let sockets = srv.control("GET", "sockets", None).await;
    assert_eq!(sockets.as_array().map(Vec::len), Some(1), "one session, upgraded: {sockets}");
    assert_eq!(sockets[0]["transport"], json!("websocket"));
    within(T, "closing", client.close()).await;
}

#[tokio::test]
async fn rooms_are_rejoined_after_a_reconnect_that_did_not_recover() {
    let srv = NodeServer::start("s0");
    let connect = Tidings::builder(&srv.url()).transports(ws_only()).connect();
    let client = within(T, "connecting", connect).await.unwrap();
    let ack = within(T, "join chat:1", client.join("chat:1")).await.unwrap();
    assert_eq!(ack.deserialize::<Value>().unwrap()["ok"], json!(true));
    let mut msgs = client.on::<String>("chat.message");
    srv.to_room("chat:1", "chat.message", json!(["before"])).await;
    assert_eq!(tokio::time::timeout(T, msgs.next()).await.unwrap().unwrap().unwrap().data, "before");
    let mut notices = client.notices();
    within(T, "emit close-transport", client.emit("close-transport", &())).await.unwrap();
    next_state(&mut notices, |s| matches!(s, ConnectionState::Connected { .. })).await;
    // the room join is replayed; wait until the server has it
    assert!(
        eventually(T, || srv.received().iter().filter(|f| f.contains(r#"["room:join","chat:1"]"#)).count() >= 2).await,
        "{:?}",
        srv.received()
    );
    assert!(srv.has_member_in("chat:1", T).await, "the server put the socket in chat:1 again");
    srv.to_room("chat:1", "chat.message", json!(["after"])).await;
    assert_eq!(tokio::time::timeout(T, msgs.next()).await.unwrap().unwrap().unwrap().data, "after");
    within(T, "closing", client.close()).await;
}

#[tokio::test]
async fn a_bad_payload_is_an_error_item_not_a_panic() {
    let srv = NodeServer::start("s0");
    let connect = Tidings::builder(&srv.url()).transports(ws_only()).connect();
    let client = within(T, "connecting", connect).await.unwrap();
    let mut sub = client.on::<u32>("echo");
    within(T, "emit echo", client.emit("echo", &"not a number")).await.unwrap();
    within(T, "emit echo", client.emit("echo", &5)).await.unwrap();
    assert!(matches!(tokio::time::timeout(T, sub.next()).await.unwrap().unwrap(), Err(Error::Decode(_))));
    assert_eq!(tokio::time::timeout(T, sub.next()).await.unwrap().unwrap().unwrap().data, 5);
    within(T, "closing", client.close()).await;
}

#[tokio::test]
async fn a_lossy_subscriber_is_bounded_and_told_how_many_it_skipped() {
    let srv = NodeServer::start("s0");
    let connect = Tidings::builder(&srv.url()).transports(ws_only()).connect();
    let client = within(T, "connecting", connect).await.unwrap();
    let mut slow = client.on_lossy::<u32>("news", 4);
    let mut fast = client.on::<u32>("news");
    // The fast subscriber is read as events come; the slow one reads nothing yet.
    let (ten, got_ten) = tokio::sync::oneshot::channel();
    let reader = tokio::spawn(async move {
        let (mut got, mut ten) = (Vec::new(), Some(ten));
        while got.len() < 11 {
            got.push(tokio::time::timeout(T, fast.next()).await.unwrap().unwrap().unwrap().data);
            if got.len() == 10 {
                let _ = ten.take().map(|t| t.send(()));
            }
        }
        got
    });
    for i in 0..10u32 {
        srv.emit("/", "news", json!([i])).await;
    }
    // The client hands each event to every subscription at once: once the fast one has all
    // ten, the slow one was offered them too (a fixed pause would race a slow machine).
    within(T, "the fast subscriber's first ten events", got_ten).await.unwrap();
    for i in 0..4u32 {
        assert_eq!(tokio::time::timeout(T, slow.next()).await.unwrap().unwrap().unwrap().data, i);
    }
    srv.emit("/", "news", json!([10])).await;
    match tokio::time::timeout(T, slow.next()).await.unwrap().unwrap() {
        Err(Error::Lagged(n)) => assert_eq!(n, 6),
        other => panic!("{other:?}"),
    }
    assert_eq!(tokio::time::timeout(T, slow.next()).await.unwrap().unwrap().unwrap().data, 10);
    let fast_got = within(T, "the fast subscriber's reader", reader).await.unwrap();
    assert_eq!(fast_got, (0..=10).collect::<Vec<u32>>(), "a subscriber that keeps up loses nothing");
    assert!(matches!(client.state(), ConnectionState::Connected { .. }), "the connection is unaffected");
    within(T, "closing", client.close()).await;
}

#[tokio::test]
async fn token_never_appears_in_debug_output() {
    let b = Tidings::builder("http://127.0.0.1:1").token("super-secret-token");
    assert!(!format!("{b:?}").contains("super-secret-token"));
}

/// The server forgets the polling session without a word (a restart, another server behind a
/// balancer): the next request gets `400 Session ID unknown`. The client takes it as a lost
/// transport and opens one new session with a handshake; it does not retry the dead sid in a loop.
#[tokio::test]
async fn an_unknown_session_id_gets_one_new_handshake_not_a_loop() {
    let srv = NodeServer::start("s0");
    let connect = Tidings::builder(&srv.url()).transports(TransportConfig::only(TransportKind::Polling)).connect();
    let client = within(T, "connecting", connect).await.unwrap();
    let first_sid = sid(&client);
    let mut notices = client.notices();
    let forgotten = srv.control("POST", "forget-sessions", None).await;
    assert_eq!(forgotten["forgotten"], 1, "{forgotten}");
    let s = next_state(&mut notices, |s| matches!(s, ConnectionState::Connected { .. })).await;
    assert!(matches!(s, ConnectionState::Connected { recovered: false, .. }), "{s:?}");
    assert_ne!(sid(&client), first_sid, "a new session");
    // Stable afterwards: one handshake, no further reconnect for several heartbeats (s0: 300 ms).
    let again = tokio::time::timeout(Duration::from_millis(1_500), async {
        next_state(&mut notices, |s| {
            matches!(s, ConnectionState::Connected { .. } | ConnectionState::Reconnecting { .. })
        })
        .await
    })
    .await;
    assert!(again.is_err(), "no further reconnect: {again:?}");
    let echo = client.emit_with_ack("echo", &json!("after"), T).await.unwrap();
    assert_eq!(echo.arg::<String>(0).unwrap(), "after");
    within(T, "closing", client.close()).await;
}

/// Subscribe with a snapshot against the server's `subscribe:<topic>` (it joins the room, then
/// loads and sends `<topic>:initial`, or the ack): the snapshot first, even when a live update
/// reached the room while it was loading, then the live updates; after a reconnect that did not
/// recover (s0), the subscription is sent again and a new snapshot comes first.
#[tokio::test]
async fn subscribe_with_snapshot_orders_the_snapshot_first_and_resubscribes_after_a_new_session() {
    use tidings::{SnapshotRequest, Snapshotted};
    let srv = NodeServer::start("s0");
    srv.control("POST", "snapshot?topic=dashboard", Some(json!({ "v": 1 }))).await;
    let client = within(T, "connecting", Tidings::builder(&srv.url()).transports(ws_only()).connect()).await.unwrap();
    let request = SnapshotRequest::new("subscribe:dashboard", "dashboard:update").args(json!({ "delayMs": 300 }));
    let mut dashboard = client.subscribe_with_snapshot::<Value, Value>(request);
    // While the server "loads" the snapshot, an update reaches the room.
    assert!(srv.has_member_in("dashboard", T).await, "subscribed: in the room");
    srv.to_room("dashboard", "dashboard:update", json!([{ "v": 2 }])).await;
    let mut next = async || within(T, "the dashboard", dashboard.next()).await.unwrap().unwrap();
    let Snapshotted::Snapshot(s) = next().await else { panic!("the snapshot comes first") };
    assert_eq!(s, json!({ "v": 1 }));
    let Snapshotted::Live(u) = next().await else { panic!("then the update that waited for it") };
    assert_eq!(u.data, json!({ "v": 2 }));

    // A new session (s0 has no recovery): subscribed again, a new snapshot first.
    srv.control("POST", "snapshot?topic=dashboard", Some(json!({ "v": 3 }))).await;
    srv.kill_transports().await;
    let Snapshotted::Snapshot(s) = next().await else { panic!("a new snapshot after the new session") };
    assert_eq!(s, json!({ "v": 3 }));
    srv.to_room("dashboard", "dashboard:update", json!([{ "v": 4 }])).await;
    let Snapshotted::Live(u) = next().await else { panic!("live again") };
    assert_eq!(u.data, json!({ "v": 4 }));
    // The frame log is read from the server's stderr on another thread: it may lag.
    let subscribes = || srv.received().into_iter().filter(|f| f.contains("subscribe:dashboard")).count();
    assert!(eventually(T, || subscribes() == 2).await, "once per session: {}", subscribes());

    // The ack variant.
    srv.control("POST", "snapshot?topic=prices", Some(json!([10, 11]))).await;
    let request = SnapshotRequest::new("subscribe:prices", "prices:tick").snapshot_in_ack();
    let mut prices = client.subscribe_with_snapshot::<Vec<u32>, u32>(request);
    let first = within(T, "the prices", prices.next()).await.unwrap().unwrap();
    assert!(matches!(first, Snapshotted::Snapshot(ref v) if v == &[10, 11]), "{first:?}");
    within(T, "closing", client.close()).await;
}
