//! The example server in-process on 127.0.0.1:0, driven by the real `tidings` client and HTTP.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, missing_docs)]

mod common;

use std::time::Duration;

use common::*;
use futures_util::StreamExt;
use serde_json::{Value, json};
use tidings::{Envelope, Error, Tidings};

async fn refused(url: &str, auth: Value) -> tidings::ConnectError {
    match Tidings::builder(url).auth(auth).connect().await {
        Err(Error::Connect(e)) => e,
        other => panic!("expected a connect error, got {other:?}"),
    }
}

#[tokio::test]
async fn auth_ok_missing_expired_and_forged() {
    let dir = temp_dir("auth");
    let (url, server) = start(&dir).await;
    let ok = client(&url, "alice", "acme").await;
    ok.close().await;

    let e = refused(&url, json!({})).await;
    assert!(e.message.starts_with("token_missing: missing token"), "{}", e.message);
    assert!(!e.will_retry);
    let e = refused(&url, json!({ "token": token_for("alice", "acme", -30) })).await;
    assert!(e.message.starts_with("token_expired: token expired"), "{}", e.message);
    let forged = tidings_example_server::jwt::sign(
        &tidings_example_server::Claims {
            sub: "alice".into(),
            tenant_id: "acme".into(),
            name: None,
            exp: i64::MAX / 2,
            iat: None,
        },
        b"not-the-secret",
    );
    let e = refused(&url, json!({ "token": forged })).await;
    assert!(e.message.starts_with("token_invalid_signature: "), "{}", e.message);
    let e = refused(&url, json!({ "token": "not.a.jwt" })).await;
    assert!(e.message.starts_with("token_malformed: "), "{}", e.message);
    server.shutdown().await;
}

#[tokio::test]
async fn user_room_receives_an_internal_emit_in_an_envelope() {
    let dir = temp_dir("emit");
    let (url, server) = start(&dir).await;
    let alice = client(&url, "alice", "acme").await;
    let bob = client(&url, "bob", "acme").await;
    let mut alice_tasks = alice.on::<Envelope<Value>>("task.*");
    let mut bob_tasks = bob.on::<Envelope<Value>>("task.*");

    let task = json!({ "id": "t1", "title": "Ship it", "assigneeId": "alice" });
    let data = json!({ "taskId": "t1", "tenantId": "acme", "userId": "alice", "task": task });
    let (status, body, _) =
        emit(&url, json!({ "to": { "users": ["alice"] }, "event": "task.assigned", "data": data })).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["offset"], 1);

    let got = tokio::time::timeout(T, alice_tasks.next()).await.unwrap().unwrap().unwrap();
    assert_eq!(got.event, "task.assigned");
    let env = got.data;
    assert_eq!(env.id, body["id"].as_str().unwrap());
    assert_eq!(env.kind.as_deref(), Some("task.assigned"));
    assert_eq!(env.data, data);
    assert_eq!(env.metadata.tenant_id.as_deref(), Some("acme"));
    assert_eq!(env.metadata.user_id.as_deref(), Some("alice"));
    assert_eq!(env.source.as_deref(), Some("tidings-example-server"));

    // The same event to the tenant room reaches bob too; the user-room one did not.
    let (status, _, _) =
        emit(&url, json!({ "to": { "room": "tenant:acme" }, "event": "task.created", "data": data })).await;
    assert_eq!(status, 200);
    let got = tokio::time::timeout(T, bob_tasks.next()).await.unwrap().unwrap().unwrap();
    assert_eq!(got.event, "task.created", "bob must not have seen alice's task.assigned");
    alice.close().await;
    bob.close().await;
    server.shutdown().await;
}

#[tokio::test]
async fn room_join_is_authorised_by_tenant() {
    let dir = temp_dir("rooms");
    let (url, server) = start(&dir).await;
    let alice = client(&url, "alice", "acme").await;
    let ack: Value = alice.join("chat:acme:general").await.unwrap().deserialize().unwrap();
    assert_eq!(ack, json!({ "ok": true, "room": "chat:acme:general" }));
    let ack: Value = alice.join("chat:globex:general").await.unwrap().deserialize().unwrap();
    assert_eq!(ack["ok"], false);
    assert!(ack["error"].as_str().unwrap().starts_with("forbidden: "), "{ack}");
    let ack: Value = alice.join("lobby").await.unwrap().deserialize().unwrap();
    assert!(ack["error"].as_str().unwrap().contains("unknown room"), "{ack}");
    let ack: Value = alice.join("user:bob").await.unwrap().deserialize().unwrap();
    assert_eq!(ack["ok"], false);
    // The object forms some backends use.
    let ack: Value =
        alice.emit_with_ack("room:join", &json!({ "chatId": "random" }), T).await.unwrap().deserialize().unwrap();
    assert_eq!(ack, json!({ "ok": true, "room": "chat:acme:random" }));
    let ack: Value = alice.emit_with_ack("room:join", &42, T).await.unwrap().deserialize().unwrap();
    assert_eq!(ack["ok"], false);
    let ack: Value = alice.emit_with_ack("join-tenant", "globex", T).await.unwrap().deserialize().unwrap();
    assert_eq!(ack["ok"], false);
    let ack: Value = alice.leave("tenant:acme").await.unwrap().deserialize().unwrap();
    assert_eq!(ack["ok"], false);
    let ack: Value = alice.leave("chat:acme:general").await.unwrap().deserialize().unwrap();
    assert_eq!(ack["ok"], true);
    alice.close().await;
    server.shutdown().await;
}

#[tokio::test]
async fn chat_message_is_acked_logged_and_broadcast() {
    let dir = temp_dir("chat");
    let (url, server) = start(&dir).await;
    let alice = client(&url, "alice", "acme").await;
    let bob = client(&url, "bob", "acme").await;
    let carol = client(&url, "carol", "globex").await;
    bob.join("chat:acme:general").await.unwrap();
    let mut bob_chat = bob.on::<Envelope<Value>>("chat.message");

    let ack: Value = alice
        .emit_with_ack("chat.message", &json!({ "chatId": "general", "text": "hello" }), T)
        .await
        .unwrap()
        .deserialize()
        .unwrap();
    assert_eq!(ack["ok"], true, "{ack}");
    let got = tokio::time::timeout(T, bob_chat.next()).await.unwrap().unwrap().unwrap();
    assert_eq!(got.data.id, ack["id"].as_str().unwrap());
    assert_eq!(got.data.data["message"]["text"], "hello");
    assert_eq!(got.data.data["message"]["userId"], "alice");
    assert_eq!(got.data.data["chatId"], "general");

    // Refusals come back in the ack, and the socket stays usable.
    for bad in [json!({ "chatId": "general" }), json!({ "room": "chat:globex:general", "text": "x" }), json!("hi")] {
        let ack: Value = alice.emit_with_ack("chat.message", &bad, T).await.unwrap().deserialize().unwrap();
        assert_eq!(ack["ok"], false, "{bad} -> {ack}");
        assert!(ack["error"].is_string());
    }
    let ack: Value = carol
        .emit_with_ack("chat.message", &json!({ "room": "chat:acme:general", "text": "sneaky" }), T)
        .await
        .unwrap()
        .deserialize()
        .unwrap();
    assert!(ack["error"].as_str().unwrap().starts_with("forbidden"), "{ack}");

    // The message is in the log: bob reads it back from the feed.
    let (status, page) = feed(&url, "acme", &token("bob", "acme"), "since=0").await;
    assert_eq!(status, 200);
    assert_eq!(page["events"].as_array().unwrap().len(), 1);
    assert_eq!(page["events"][0]["event"], "chat.message");
    for c in [alice, bob, carol] {
        c.close().await;
    }
    server.shutdown().await;
}

#[tokio::test]
async fn a_repeated_idempotency_key_emits_once() {
    let dir = temp_dir("idem");
    let (url, server) = start(&dir).await;
    let alice = client(&url, "alice", "acme").await;
    let mut events = alice.on::<Envelope<Value>>("notification.created");
    let body = json!({
        "to": { "room": "tenant:acme" },
        "event": "notification.created",
        "data": { "notificationId": "n1", "tenantId": "acme" },
        "idempotencyKey": "n1-created",
    });
    let (s1, first, replayed1) = emit(&url, body.clone()).await;
    let (s2, second, replayed2) = emit(&url, body.clone()).await;
    assert_eq!((s1, s2), (200, 200));
    assert_eq!(first, second);
    assert_eq!((replayed1, replayed2.as_deref()), (None, Some("true")));
    let got = tokio::time::timeout(T, events.next()).await.unwrap().unwrap().unwrap();
    assert_eq!(got.data.id, first["id"].as_str().unwrap());
    assert!(tokio::time::timeout(Duration::from_millis(500), events.next()).await.is_err(), "emitted twice");
    alice.close().await;
    server.shutdown().await;

    // Still de-duplicated after a restart: the key is in the log.
    let (url, server) = start(&dir).await;
    let (_, third, replayed3) = emit(&url, body).await;
    assert_eq!((third, replayed3.as_deref()), (first, Some("true")));
    server.shutdown().await;
}

#[tokio::test]
async fn the_feed_catches_up_after_a_restart() {
    let dir = temp_dir("restart");
    let (url, server) = start(&dir).await;
    let alice_token = token("alice", "acme");
    let alice = client(&url, "alice", "acme").await;
    let mut seen = alice.on::<Envelope<Value>>("task.created");
    let task = |n: u32| json!({ "taskId": format!("t{n}"), "tenantId": "acme", "userId": "bob", "task": { "id": format!("t{n}") } });
    let (_, e1, _) =
        emit(&url, json!({ "to": { "room": "tenant:acme" }, "event": "task.created", "data": task(1) })).await;
    // Invisible to alice: another user's room, and another tenant.
    emit(&url, json!({ "to": { "users": ["bob"] }, "event": "task.assigned", "data": task(9) })).await;
    emit(&url, json!({ "to": { "room": "tenant:globex" }, "event": "task.created", "data": { "tenantId": "globex" } }))
        .await;
    let first = tokio::time::timeout(T, seen.next()).await.unwrap().unwrap().unwrap();
    assert_eq!(first.data.id, e1["id"].as_str().unwrap());
    alice.close().await;
    server.shutdown().await;

    // While alice is away (and the server restarts) two more events are logged.
    let (url, server) = start(&dir).await;
    let (_, e3, _) =
        emit(&url, json!({ "to": { "room": "tenant:acme" }, "event": "task.created", "data": task(3) })).await;
    assert_eq!(e3["offset"], 3, "offsets continue across restarts");
    emit(&url, json!({ "to": { "room": "tenant:acme" }, "event": "task.completed", "data": task(3) })).await;

    // Resuming after the envelope id of the last socket event: each missed event exactly once.
    let (status, page) = feed(&url, "acme", &alice_token, &format!("since={}&limit=10", first.data.id)).await;
    assert_eq!(status, 200, "{page}");
    let events = page["events"].as_array().unwrap();
    let names: Vec<&str> = events.iter().map(|e| e["event"].as_str().unwrap()).collect();
    assert_eq!(names, ["task.created", "task.completed"]);
    assert_eq!(events[0]["id"], e3["id"]);
    assert_eq!(events[0]["data"]["id"], e3["id"], "data is the envelope the socket delivers");
    assert_eq!(events[0]["offset"], 3);
    assert_eq!(page["cursor"], 4);
    // Paging with the cursor: nothing new, and bob (another user) sees his own event.
    let (_, page) = feed(&url, "acme", &alice_token, "since=4").await;
    assert_eq!(page["events"], json!([]));
    let (_, page) = feed(&url, "acme", &token("bob", "acme"), "since=0&limit=2").await;
    assert_eq!(page["events"].as_array().unwrap().len(), 2);
    assert_eq!(page["events"][1]["event"], "task.assigned");
    assert_eq!(page["hasMore"], true);
    // Limit 1 pages one visible event at a time, skipping invisible ones.
    let (_, page) = feed(&url, "acme", &alice_token, "since=1&limit=1").await;
    assert_eq!(page["events"][0]["offset"], 3);

    // Acknowledging moves where a read without `since` starts for this user.
    let feed_url = format!("{url}/api/polling/acme");
    let (status, _, _) = http(
        "POST",
        &format!("{feed_url}/events/acknowledge"),
        &[("authorization", &format!("Bearer {alice_token}"))],
        Some(json!({ "eventIds": [e3["id"]] }).to_string()),
    )
    .await;
    assert_eq!(status, 200);
    let (_, page) = feed(&url, "acme", &alice_token, "").await;
    assert_eq!(page["events"].as_array().unwrap().len(), 1, "without since: after the last acknowledged event");
    server.shutdown().await;
}

#[tokio::test]
async fn bad_input_gets_a_clear_4xx_and_the_server_stays_up() {
    let dir = temp_dir("bad");
    let (url, server) = start(&dir).await;
    let good = json!({ "to": { "room": "tenant:acme" }, "event": "task.created", "data": {} }).to_string();
    let emit_url = format!("{url}/internal/emit");
    let (s, v, _) = http("POST", &emit_url, &[], Some(good.clone())).await;
    assert_eq!((s, v["code"].as_str()), (401, Some("missing_api_key")));
    let (s, v, _) = http("POST", &emit_url, &[("x-internal-api-key", "wrong")], Some(good)).await;
    assert_eq!((s, v["code"].as_str()), (403, Some("invalid_api_key")));
    let key = [("x-internal-api-key", KEY)];
    let cases = [
        ("{not json", 400, "bad_json"),
        (r#"{"to":{"room":"lobby"},"event":"x.y"}"#, 400, "invalid_room"),
        (r#"{"to":{"room":"tenant:acme","users":["a"]},"event":"x.y"}"#, 400, "invalid_target"),
        (r#"{"to":{"users":["alice"]},"event":"x.y"}"#, 400, "missing_tenant"),
        (r#"{"to":{"room":"tenant:acme"},"event":"disconnect"}"#, 400, "invalid_event"),
        (r#"{"to":{"room":"tenant:acme"},"event":"x.y","tenantId":"globex"}"#, 400, "tenant_mismatch"),
    ];
    for (body, status, code) in cases {
        let (s, v, _) = http("POST", &emit_url, &key, Some(body.to_string())).await;
        assert_eq!((s, v["code"].as_str()), (status, Some(code)), "{body} -> {v}");
        assert!(v["error"].as_str().is_some_and(|e| !e.is_empty()));
    }
    let huge = json!({ "to": { "room": "tenant:acme" }, "event": "x.y", "data": "a".repeat(100_000) }).to_string();
    let (s, _, _) = http("POST", &emit_url, &key, Some(huge)).await;
    assert_eq!(s, 413);

    let alice = token("alice", "acme");
    let (s, v) = feed(&url, "globex", &alice, "").await;
    assert_eq!((s, v["code"].as_str()), (403, Some("wrong_tenant")));
    let (s, v) = feed(&url, "acme", "garbage", "").await;
    assert_eq!((s, v["code"].as_str()), (401, Some("token_malformed")));
    let (s, v, _) = http("GET", &format!("{url}/api/polling/acme/events"), &[], None).await;
    assert_eq!((s, v["code"].as_str()), (401, Some("token_missing")));
    let (s, v) = feed(&url, "acme", &alice, "since=evt_nope").await;
    assert_eq!((s, v["code"].as_str()), (400, Some("unknown_cursor")));
    let (s, v) = feed(&url, "acme", &alice, "limit=-3").await;
    assert_eq!((s, v["code"].as_str()), (400, Some("bad_limit")));
    let ack_url = format!("{url}/api/polling/acme/events/acknowledge");
    let (s, _, _) = http("POST", &ack_url, &[("authorization", &format!("Bearer {alice}"))], Some("[]".into())).await;
    assert_eq!(s, 400);
    let (s, v, _) = http("POST", &format!("{url}/api/dev/login"), &[], Some(r#"{"userId":"mallory"}"#.into())).await;
    assert_eq!((s, v["code"].as_str()), (400, Some("unknown_user")));
    let (s, _, _) = http("GET", &format!("{url}/nope"), &[], None).await;
    assert_eq!(s, 404);

    let (s, v, _) = http("GET", &format!("{url}/health"), &[], None).await;
    assert_eq!((s, v["status"].as_str()), (200, Some("ok")));
    // A dev-login token works on the socket.
    let (s, v, _) = http("POST", &format!("{url}/api/dev/login"), &[], Some(r#"{"userId":"bob"}"#.into())).await;
    assert_eq!(s, 200);
    let bob = Tidings::builder(&url).token(v["token"].as_str().unwrap()).connect().await.unwrap();
    bob.close().await;
    server.shutdown().await;
}

#[tokio::test]
async fn the_demo_task_endpoint_publishes_task_created_to_the_tenant() {
    let dir = temp_dir("devtask");
    let (url, server) = start(&dir).await;
    let bob = client(&url, "bob", "acme").await;
    let mut tasks = bob.on::<Envelope<Value>>("task.created");
    let alice = format!("Bearer {}", token("alice", "acme"));

    let (s, v, _) = http(
        "POST",
        &format!("{url}/api/dev/tasks"),
        &[("authorization", &alice)],
        Some(r#"{"title":" Ship it "}"#.into()),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let got = tokio::time::timeout(T, tasks.next()).await.unwrap().unwrap().unwrap();
    assert_eq!(got.data.id, v["id"].as_str().unwrap());
    assert_eq!(got.data.data["taskId"], v["taskId"]);
    assert_eq!(got.data.data["tenantId"], "acme");
    assert_eq!(got.data.data["userId"], "alice");
    assert_eq!(got.data.data["task"]["title"], "Ship it");
    assert_eq!(got.data.data["task"]["id"], v["taskId"]);

    // No token, an empty title, dev login off.
    let (s, v, _) = http("POST", &format!("{url}/api/dev/tasks"), &[], Some(r#"{"title":"x"}"#.into())).await;
    assert_eq!((s, v["code"].as_str()), (401, Some("token_missing")));
    let (s, v, _) =
        http("POST", &format!("{url}/api/dev/tasks"), &[("authorization", &alice)], Some(r#"{"title":"  "}"#.into()))
            .await;
    assert_eq!((s, v["code"].as_str()), (400, Some("invalid_title")));
    bob.close().await;
    server.shutdown().await;

    let mut config = tidings_example_server::Config::new(&dir, SECRET, KEY);
    config.dev_login = false;
    let (addr, server) = tidings_example_server::serve(config).await.unwrap();
    let (s, _, _) = http(
        "POST",
        &format!("http://{addr}/api/dev/tasks"),
        &[("authorization", &alice)],
        Some(r#"{"title":"x"}"#.into()),
    )
    .await;
    assert_eq!(s, 404);
    server.shutdown().await;
}
