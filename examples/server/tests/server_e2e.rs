//! The example server in-process on 127.0.0.1:0, driven by the real `tidings` client and HTTP.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, missing_docs)]

mod common;

use std::time::Duration;

use common::*;
use futures_util::StreamExt;
use serde_json::{Value, json};
use tidings::{Envelope, Error, Tidings};

async fn refused(url: &str, auth: Value) -> tidings::ConnectError {
    match within("a refused connect", Tidings::builder(url).auth(auth).connect()).await {
        Err(Error::Connect(e)) => e,
        other => panic!("expected a connect error, got {other:?}"),
    }
}

#[tokio::test]
async fn auth_ok_missing_expired_and_forged() {
    let dir = temp_dir("auth");
    let (url, server) = start(&dir).await;
    let ok = client(&url, "alice", "acme").await;
    within("the client's close", ok.close()).await;

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
    within("the shutdown", server.shutdown()).await;
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
    within("alice's close", alice.close()).await;
    within("bob's close", bob.close()).await;
    within("the shutdown", server.shutdown()).await;
}

#[tokio::test]
async fn room_join_is_authorised_by_tenant() {
    let dir = temp_dir("rooms");
    let (url, server) = start(&dir).await;
    let alice = client(&url, "alice", "acme").await;
    let ack: Value =
        within("join chat:acme:general", alice.join("chat:acme:general")).await.unwrap().deserialize().unwrap();
    assert_eq!(ack, json!({ "ok": true, "room": "chat:acme:general" }));
    let ack: Value =
        within("join chat:globex:general", alice.join("chat:globex:general")).await.unwrap().deserialize().unwrap();
    assert_eq!(ack["ok"], false);
    assert!(ack["error"].as_str().unwrap().starts_with("forbidden: "), "{ack}");
    let ack: Value = within("join lobby", alice.join("lobby")).await.unwrap().deserialize().unwrap();
    assert!(ack["error"].as_str().unwrap().contains("unknown room"), "{ack}");
    let ack: Value = within("join user:bob", alice.join("user:bob")).await.unwrap().deserialize().unwrap();
    assert_eq!(ack["ok"], false);
    // The object forms some backends use.
    let ack: Value =
        alice.emit_with_ack("room:join", &json!({ "chatId": "random" }), T).await.unwrap().deserialize().unwrap();
    assert_eq!(ack, json!({ "ok": true, "room": "chat:acme:random" }));
    let ack: Value = alice.emit_with_ack("room:join", &42, T).await.unwrap().deserialize().unwrap();
    assert_eq!(ack["ok"], false);
    let ack: Value = alice.emit_with_ack("join-tenant", "globex", T).await.unwrap().deserialize().unwrap();
    assert_eq!(ack["ok"], false);
    let ack: Value = within("leave tenant:acme", alice.leave("tenant:acme")).await.unwrap().deserialize().unwrap();
    assert_eq!(ack["ok"], false);
    let ack: Value =
        within("leave chat:acme:general", alice.leave("chat:acme:general")).await.unwrap().deserialize().unwrap();
    assert_eq!(ack["ok"], true);
    within("alice's close", alice.close()).await;
    within("the shutdown", server.shutdown()).await;
}

#[tokio::test]
async fn chat_message_is_acked_logged_and_broadcast() {
    let dir = temp_dir("chat");
    let (url, server) = start(&dir).await;
    let alice = client(&url, "alice", "acme").await;
    let bob = client(&url, "bob", "acme").await;
    let carol = client(&url, "carol", "globex").await;
    within("join chat:acme:general", bob.join("chat:acme:general")).await.unwrap();
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
        within("a client's close", c.close()).await;
    }
    within("the shutdown", server.shutdown()).await;
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
    within("alice's close", alice.close()).await;
    within("the shutdown", server.shutdown()).await;

    // Still de-duplicated after a restart: the key is in the log.
    let (url, server) = start(&dir).await;
    let (_, third, replayed3) = emit(&url, body).await;
    assert_eq!((third, replayed3.as_deref()), (first, Some("true")));
    within("the shutdown", server.shutdown()).await;
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
    within("alice's close", alice.close()).await;
    within("the shutdown", server.shutdown()).await;

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
    within("the shutdown", server.shutdown()).await;
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
    let bob =
        within("bob's connect", Tidings::builder(&url).token(v["token"].as_str().unwrap()).connect()).await.unwrap();
    within("bob's close", bob.close()).await;
    within("the shutdown", server.shutdown()).await;
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
    within("bob's close", bob.close()).await;
    within("the shutdown", server.shutdown()).await;

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
    within("the shutdown", server.shutdown()).await;
}

fn log_line(offset: u64, rooms: &[&str]) -> String {
    use tidings_example_server::store::{Envelope, LogEntry, Metadata};
    let ts_ms = tidings_example_server::clock::now_ms();
    let entry = LogEntry {
        offset,
        rooms: rooms.iter().map(|r| r.to_string()).collect(),
        ts_ms,
        idempotency_key: Some(format!("internal:k{offset}")),
        envelope: Envelope {
            id: tidings_example_server::app::random_id("evt"),
            kind: "task.created".into(),
            version: 1,
            timestamp: tidings_example_server::clock::iso8601(ts_ms),
            source: "test".into(),
            data: json!({ "n": offset }),
            metadata: Metadata { tenant_id: "acme".into(), ..Metadata::default() },
        },
    };
    format!("{}\n", serde_json::to_string(&entry).unwrap())
}

fn feed_offsets(page: &Value) -> Vec<u64> {
    page["events"].as_array().unwrap().iter().map(|e| e["offset"].as_u64().unwrap()).collect()
}

#[tokio::test]
async fn a_torn_log_is_recovered_at_start_without_losing_or_reusing_an_offset() {
    let dir = temp_dir("torn");
    std::fs::create_dir_all(dir.join("events")).unwrap();
    let path = dir.join("events/acme.jsonl");
    let tenant = ["tenant:acme"];
    let (l3, l4) = (log_line(3, &tenant), log_line(4, &["user:bob"]));
    // Two complete lines; a write that failed half way with the next (acknowledged) line right
    // after it, as earlier versions could leave; a complete line; a torn last line (a crash).
    let torn_write = &l3[..l3.len() / 2];
    let text = [
        log_line(1, &tenant),
        log_line(2, &tenant),
        torn_write.to_string(),
        l3.clone(),
        l4,
        "{\"offset\":5,\"rooms\":[\"ten".into(),
    ]
    .concat();
    std::fs::write(&path, &text).unwrap();

    let (url, server) = start(&dir).await;
    let alice = token("alice", "acme");
    let (s, page) = feed(&url, "acme", &alice, "since=0").await;
    assert_eq!(s, 200, "{page}");
    assert_eq!(feed_offsets(&page), [1, 2, 3], "every complete event alice may see");
    assert_eq!(page["cursor"], 4);
    let (_, page) = feed(&url, "acme", &token("bob", "acme"), "since=0").await;
    assert_eq!(feed_offsets(&page), [1, 2, 3, 4]);
    let l3_id: Value = serde_json::from_str(&l3).unwrap();
    assert_eq!(page["events"][2]["id"], l3_id["envelope"]["id"], "the line after the torn write is the event itself");
    // The idempotency key of a recovered line still de-duplicates.
    let body = |key: &str| json!({ "to": { "room": "tenant:acme" }, "event": "task.created", "data": {}, "idempotencyKey": key });
    let (_, v, replayed) = emit(&url, body("k3")).await;
    assert_eq!((v["offset"].as_u64(), replayed.as_deref()), (Some(3), Some("true")));
    // New events get fresh offsets, after the last complete line.
    let (s, v, _) = emit(&url, body("new-1")).await;
    assert_eq!((s, v["offset"].as_u64()), (200, Some(5)), "{v}");
    within("the shutdown", server.shutdown()).await;

    let on_disk = std::fs::read_to_string(&path).unwrap();
    let kept = &text[..text.rfind('\n').unwrap() + 1];
    assert!(on_disk.starts_with(kept), "every complete line is kept as it was");
    let new: Value = serde_json::from_str(&on_disk[kept.len()..]).unwrap();
    assert_eq!(new["offset"], 5, "the torn tail is gone, the new event is the only line after the kept ones");
    let (url, server) = start(&dir).await;
    let (_, page) = feed(&url, "acme", &token("bob", "acme"), "since=0").await;
    assert_eq!(feed_offsets(&page), [1, 2, 3, 4, 5], "nothing lost across the restart");
    let (_, v, _) = emit(&url, body("new-2")).await;
    assert_eq!(v["offset"], 6);
    within("the shutdown", server.shutdown()).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn with_a_small_memory_tail_the_feed_still_serves_the_whole_log() {
    let dir = temp_dir("tail");
    let config = || {
        let mut c = tidings_example_server::Config::new(&dir, SECRET, KEY);
        c.log_limits.memory_events = 5;
        c.log_limits.idempotency_keys = 3;
        c
    };
    let (mut url, mut server) = start_with(config()).await;
    let mut ids = vec![String::new()];
    for n in 1..=40u64 {
        let to = if n % 4 == 0 { json!({ "users": ["bob"] }) } else { json!({ "room": "tenant:acme" }) };
        let (s, v, _) =
            emit(&url, json!({ "to": to, "event": "task.created", "tenantId": "acme", "data": { "n": n } })).await;
        assert_eq!((s, v["offset"].as_u64()), (200, Some(n)), "{v}");
        ids.push(v["id"].as_str().unwrap().to_string());
    }
    let alice = token("alice", "acme");
    let visible: Vec<u64> = (1..=40).filter(|n| n % 4 != 0).collect();
    for round in 0..2 {
        let (_, page) = feed(&url, "acme", &alice, "since=0&limit=1000").await;
        assert_eq!(feed_offsets(&page), visible, "round {round}");
        assert_eq!(page["events"][0]["id"], ids[1]);
        // An envelope id long out of memory, a page across the file and the tail.
        let (s, page) = feed(&url, "acme", &alice, &format!("since={}&limit=10", ids[3])).await;
        assert_eq!(s, 200, "{page}");
        assert_eq!(feed_offsets(&page), [5, 6, 7, 9, 10, 11, 13, 14, 15, 17]);
        let (_, page) = feed(&url, "acme", &alice, "since=30&limit=10").await;
        assert_eq!(feed_offsets(&page), [31, 33, 34, 35, 37, 38, 39]);
        let (_, page) = feed(&url, "acme", &alice, "since=1970-01-01T00:00:00Z&limit=3").await;
        assert_eq!(feed_offsets(&page), [1, 2, 3]);
        // After a restart everything is read back the same way.
        if round == 0 {
            within("the shutdown", server.shutdown()).await;
            (url, server) = start_with(config()).await;
        }
    }
    within("the shutdown", server.shutdown()).await;

    // Idempotency keys: the last three are remembered; an older one is a new event again.
    let (url, server) = start_with(config()).await;
    let keyed = |k: &str| json!({ "to": { "room": "tenant:acme" }, "event": "x.y", "data": {}, "idempotencyKey": k });
    for k in ["a", "b", "c", "d"] {
        let (_, _, replayed) = emit(&url, keyed(k)).await;
        assert_eq!(replayed, None);
    }
    let (_, v, replayed) = emit(&url, keyed("d")).await;
    assert_eq!((v["offset"].as_u64(), replayed.as_deref()), (Some(44), Some("true")), "a retry inside the window");
    let (_, v, replayed) = emit(&url, keyed("a")).await;
    assert_eq!((v["offset"].as_u64(), replayed), (Some(45), None), "outside the window (three keys)");
    within("the shutdown", server.shutdown()).await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// The names of the files of the event log, sorted.
fn log_files(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> =
        std::fs::read_dir(dir.join("events")).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    names
}

/// Every event of the feed from `since`, page by page (`limit` a page): (offsets, the
/// `truncated` of each page that had one).
async fn read_all(url: &str, tok: &str, since: &str, limit: usize) -> (Vec<u64>, Vec<Value>) {
    let (mut since, mut offsets, mut truncated) = (since.to_string(), Vec::new(), Vec::new());
    for _ in 0..100 {
        let (s, page) = feed(url, "acme", tok, &format!("since={since}&limit={limit}")).await;
        assert_eq!(s, 200, "{page}");
        offsets.extend(feed_offsets(&page));
        if let Some(t) = page.get("truncated") {
            truncated.push(t.clone());
        }
        since = page["cursor"].to_string();
        if page["hasMore"] == false {
            return (offsets, truncated);
        }
    }
    panic!("the feed never ended");
}

/// `TIDINGS_LOG_RETAIN_EVENTS`: past the retention the file log deletes whole old segments; a
/// feed read from before the oldest kept event says what is gone and gives every kept event
/// once, in order, before and after a restart; offsets go on.
#[tokio::test]
async fn with_a_retention_the_file_log_forgets_old_events_and_the_feed_says_so() {
    let dir = temp_dir("retention");
    let config = || {
        let mut c = tidings_example_server::Config::new(&dir, SECRET, KEY);
        // Segments of 2 events (a quarter of 10); 4 in memory, so reads go to the files too.
        c.log_limits.retain_events = 10;
        c.log_limits.memory_events = 4;
        c
    };
    let (mut url, mut server) = start_with(config()).await;
    let mut ids = vec![String::new()];
    for n in 1..=40u64 {
        let (s, v, _) =
            emit(&url, json!({ "to": { "room": "tenant:acme" }, "event": "task.created", "data": { "n": n } })).await;
        assert_eq!((s, v["offset"].as_u64()), (200, Some(n)), "{v}");
        ids.push(v["id"].as_str().unwrap().to_string());
    }
    // 31..=40 kept: [29, 30] went once ten newer events were in.
    let kept: Vec<u64> = (31..=40).collect();
    let alice = token("alice", "acme");
    for round in 0..2 {
        assert_eq!(
            log_files(&dir),
            ["acme.31.jsonl", "acme.33.jsonl", "acme.35.jsonl", "acme.37.jsonl", "acme.39.jsonl"]
        );
        let (s, page) = feed(&url, "acme", &alice, "since=0&limit=1000").await;
        assert_eq!(s, 200, "{page}");
        assert_eq!(page["truncated"], json!({ "from": 1, "to": 30 }), "round {round}");
        assert_eq!(feed_offsets(&page), kept, "every kept event once, in order");
        assert_eq!(page["events"][0]["id"], ids[31]);
        assert_eq!(page["events"][0]["data"]["data"], json!({ "n": 31 }));
        assert_eq!((page["cursor"].as_u64(), &page["hasMore"]), (Some(40), &json!(false)));
        // Page by page: the first page says it, the others do not.
        let (offsets, truncated) = read_all(&url, &alice, "0", 3).await;
        assert_eq!((offsets, truncated), (kept.clone(), vec![json!({ "from": 1, "to": 30 })]));
        let (s, page) = feed(&url, "acme", &alice, "since=12&limit=2").await;
        assert_eq!(
            (s, page["truncated"].clone(), feed_offsets(&page)),
            (200, json!({ "from": 13, "to": 30 }), vec![31, 32])
        );
        // From inside what is kept: nothing to say.
        let (_, page) = feed(&url, "acme", &alice, "since=30").await;
        assert!(page.get("truncated").is_none(), "{page}");
        assert_eq!(feed_offsets(&page), kept);
        // A kept envelope id (out of memory: from the files), and a deleted one.
        let (_, page) = feed(&url, "acme", &alice, &format!("since={}", ids[33])).await;
        assert_eq!(feed_offsets(&page), (34..=40).collect::<Vec<_>>());
        let (s, page) = feed(&url, "acme", &alice, &format!("since={}", ids[5])).await;
        assert_eq!((s, page["code"].as_str()), (400, Some("unknown_cursor")), "{page}");
        assert!(page["error"].as_str().unwrap().contains("before offset 31 are no longer kept"), "{page}");
        // A time before everything: the same as from the start.
        let (_, page) = feed(&url, "acme", &alice, "since=1970-01-01T00:00:00Z&limit=1000").await;
        assert_eq!((page["truncated"].clone(), feed_offsets(&page)), (json!({ "from": 1, "to": 30 }), kept.clone()));
        // Backwards: down to the oldest kept, then what is gone.
        let (_, page) = feed(&url, "acme", &alice, "before=41&limit=6").await;
        assert_eq!((feed_offsets(&page), &page["hasMore"]), ((35..=40).collect(), &json!(true)));
        assert!(page.get("truncated").is_none(), "{page}");
        let (_, page) = feed(&url, "acme", &alice, &format!("before={}&limit=6", page["cursor"])).await;
        assert_eq!((feed_offsets(&page), &page["hasMore"]), ((31..=34).collect(), &json!(false)));
        assert_eq!(page["truncated"], json!({ "from": 1, "to": 30 }));
        let (_, page) = feed(&url, "acme", &alice, "before=20").await;
        assert_eq!((feed_offsets(&page), page["truncated"].clone()), (vec![], json!({ "from": 1, "to": 19 })));
        if round == 0 {
            within("the shutdown", server.shutdown()).await;
            (url, server) = start_with(config()).await;
        }
    }
    // New events go on from the head, and push the oldest segment out.
    for n in 41..=42u64 {
        let (_, v, _) =
            emit(&url, json!({ "to": { "room": "tenant:acme" }, "event": "task.created", "data": { "n": n } })).await;
        assert_eq!(v["offset"].as_u64(), Some(n), "{v}");
    }
    let (_, page) = feed(&url, "acme", &alice, "since=0&limit=1000").await;
    assert_eq!(page["truncated"], json!({ "from": 1, "to": 32 }));
    assert_eq!(feed_offsets(&page), (33..=42).collect::<Vec<_>>());
    within("the shutdown", server.shutdown()).await;
    let (url, server) = start_with(config()).await;
    let (offsets, truncated) = read_all(&url, &alice, "0", 4).await;
    assert_eq!((offsets, truncated), ((33..=42).collect(), vec![json!({ "from": 1, "to": 32 })]));
    let (_, v, _) = emit(&url, json!({ "to": { "room": "tenant:acme" }, "event": "task.created", "data": {} })).await;
    assert_eq!(v["offset"], 43);
    within("the shutdown", server.shutdown()).await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// `TIDINGS_LOG_RETAIN_SECS`: a tenant that gets no new events still ages (a timer applies the
/// retention), and its newest segment stays.
#[tokio::test]
async fn with_a_retention_by_age_an_idle_tenant_ages_too() {
    let dir = temp_dir("retention-age");
    let mut config = tidings_example_server::Config::new(&dir, SECRET, KEY);
    // Segments span a second at most (a quarter of the age); the timer runs every second.
    config.log_limits.retain_age = Some(Duration::from_secs(4));
    let (url, server) = start_with(config).await;
    let publish = |n: u64| {
        let url = url.clone();
        async move {
            let body = json!({ "to": { "room": "tenant:acme" }, "event": "task.created", "data": { "n": n } });
            let (s, v, _) = emit(&url, body).await;
            assert_eq!((s, v["offset"].as_u64()), (200, Some(n)), "{v}");
        }
    };
    for n in 1..=3 {
        publish(n).await;
    }
    tokio::time::sleep(Duration::from_millis(1200)).await;
    for n in 4..=6 {
        publish(n).await;
    }
    let alice = token("alice", "acme");
    // No event comes any more: about 4 s after 3, the first segment is gone all the same.
    let page = within("the deletion by age", async {
        loop {
            let (_, page) = feed(&url, "acme", &alice, "since=0").await;
            if page.get("truncated").is_some() {
                return page;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    assert_eq!(page["truncated"], json!({ "from": 1, "to": 3 }));
    assert_eq!(feed_offsets(&page), [4, 5, 6], "the newest segment stays, however old");
    // The segment leaves the in-memory view first (the feed says `truncated` from then on), then
    // its file is unlinked: wait for that too.
    within("the old segment's file to go", async {
        while log_files(&dir) != ["acme.4.jsonl"] {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    within("the shutdown", server.shutdown()).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn publish_and_login_are_rate_limited_with_retry_after() {
    use tidings_example_server::ratelimit::Rate;
    let dir = temp_dir("ratelimit");
    let mut config = tidings_example_server::Config::new(&dir, SECRET, KEY);
    config.emit_rate = Rate { per_sec: 1.0, burst: 3.0 };
    config.login_rate = Rate { per_sec: 1.0, burst: 2.0 };
    let (url, server) = start_with(config).await;
    let c = reqwest::Client::new();
    let post = |path: &str, key: &str, body: &str| {
        let send = c
            .post(format!("{url}{path}"))
            .header("x-internal-api-key", key)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send();
        within("a POST", send)
    };
    let retry_after = |r: &reqwest::Response| r.headers().get("retry-after").map(|v| v.to_str().unwrap().to_string());
    let event = r#"{"to":{"room":"tenant:acme"},"event":"x.y","data":{}}"#;

    for _ in 0..3 {
        assert_eq!(post("/internal/emit", KEY, event).await.unwrap().status(), 200);
    }
    let res = post("/internal/emit", KEY, event).await.unwrap();
    assert_eq!((res.status().as_u16(), retry_after(&res).as_deref()), (429, Some("1")));
    let body: Value = serde_json::from_str(&within("the 429's body", res.text()).await.unwrap()).unwrap();
    assert_eq!(body["code"], "rate_limited");

    let login = r#"{"userId":"alice"}"#;
    for _ in 0..2 {
        assert_eq!(post("/api/dev/login", "", login).await.unwrap().status(), 200);
    }
    let res = post("/api/dev/login", "", login).await.unwrap();
    assert_eq!((res.status().as_u16(), retry_after(&res).as_deref()), (429, Some("1")));
    // Guessing API keys draws on the same per-address bucket.
    assert_eq!(post("/internal/emit", "wrong", event).await.unwrap().status(), 429);

    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(post("/internal/emit", KEY, event).await.unwrap().status(), 200, "a token came back");
    assert_eq!(post("/api/dev/login", "", login).await.unwrap().status(), 200);
    within("the shutdown", server.shutdown()).await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// A service stops, events are published, and it starts again from the envelope id of the last
/// event it handled (`FeedConfig::since`): the feed gives what it missed, then the socket goes
/// live, with nothing missing or twice at the seam.
#[tokio::test]
async fn a_client_started_from_a_stored_position_gets_every_later_event_once() {
    let dir = temp_dir("since");
    let (url, server) = start(&dir).await;
    let publish = |n: u64| {
        let url = url.clone();
        async move {
            let (s, _, _) =
                emit(&url, json!({ "to": { "room": "tenant:acme" }, "event": "task.created", "data": { "n": n } }))
                    .await;
            assert_eq!(s, 200);
        }
    };
    let connect = |since: Option<String>| {
        let mut feed = tidings::FeedConfig::new(format!("{url}/api/polling/acme"));
        feed.since = since;
        feed.limit = 4; // several pages
        // Subscribed before any event can arrive: build() starts connecting, on() is queued first.
        let c = tidings::Tidings::builder(&url).token(token("alice", "acme")).feed(feed).build().unwrap();
        let events = c.on::<Envelope<Value>>("task.created");
        (c, events)
    };
    let (first, mut events) = connect(None);
    within("the first run's connect", first.wait_connected(T)).await.unwrap();
    for n in 0..5 {
        publish(n).await;
    }
    let mut last_id = String::new();
    for n in 0..5 {
        let e = within("the first run's events", events.next()).await.unwrap().unwrap();
        assert_eq!(e.data.data["n"], n);
        last_id = e.data.id;
    }
    // The client's own cursor says the same once the last event is delivered: that is what a
    // service persists.
    let cursor = within("the cursor", async {
        loop {
            match first.cursor().await {
                Some(c) if c == last_id => return c,
                _ => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
    })
    .await;
    let handle = first.clone();
    within("the first run's close", first.close()).await;
    assert_eq!(handle.cursor().await, None, "a closed client has no cursor to give");

    for n in 5..15 {
        publish(n).await;
    }
    let (second, mut events) = connect(Some(cursor));
    let mut got = Vec::new();
    while got.len() < 10 {
        let e = within("the missed events", events.next()).await.unwrap().unwrap();
        got.push(e.data.data["n"].as_u64().unwrap());
    }
    for n in 15..20 {
        publish(n).await;
    }
    while got.len() < 15 {
        let e = within("the live events", events.next()).await.unwrap().unwrap();
        got.push(e.data.data["n"].as_u64().unwrap());
    }
    assert_eq!(got, (5..20).collect::<Vec<u64>>(), "every later event once, in order");
    assert!(
        tokio::time::timeout(Duration::from_millis(300), events.next()).await.is_err(),
        "nothing more (no duplicate)"
    );
    within("the second run's close", second.close()).await;
    within("the shutdown", server.shutdown()).await;
}

/// `Tidings::history`: pages of the feed after a position, typed, with the next cursor; it
/// delivers nothing to subscriptions. Without a feed it says so.
#[tokio::test]
async fn history_pages_through_the_feed() {
    let dir = temp_dir("history");
    let (url, server) = start(&dir).await;
    for n in 0..12u64 {
        emit(&url, json!({ "to": { "room": "tenant:acme" }, "event": "task.created", "data": { "n": n } })).await;
    }
    #[derive(serde::Deserialize)]
    struct Task {
        data: Value,
    }
    let feed = tidings::FeedConfig::new(format!("{url}/api/polling/acme"));
    let c = tidings::Tidings::builder(&url).token(token("alice", "acme")).feed(feed).build().unwrap();
    let mut live = c.on::<Envelope<Value>>("*");
    let (mut since, mut got) = (Some("2".to_string()), Vec::new());
    loop {
        let page = within("a history page", c.history::<Task>(since.as_deref(), 4)).await.unwrap();
        assert!(page.events.len() <= 4);
        got.extend(page.events.iter().map(|e| {
            assert_eq!((e.event.as_str(), e.source), ("task.created", tidings::EventSource::Feed));
            e.data.data["n"].as_u64().unwrap()
        }));
        if !page.has_more {
            break;
        }
        since = page.cursor;
    }
    assert_eq!(got, (2..12).collect::<Vec<u64>>(), "after offset 2, every event once, in order");
    let err = within("history of a bad position", c.history::<Value>(Some("evt_nope"), 4)).await.unwrap_err();
    assert!(matches!(&err, tidings::Error::Feed(m) if m.contains("400")), "{err}");
    assert!(tokio::time::timeout(Duration::from_millis(200), live.next()).await.is_err(), "history delivers nothing");
    let no_feed = tidings::Tidings::builder(&url).token(token("alice", "acme")).build().unwrap();
    let err = within("history without a feed", no_feed.history::<Value>(None, 4)).await.unwrap_err();
    assert!(matches!(&err, tidings::Error::Feed(m) if m.contains("no feed")), "{err}");
    c.close().await;
    no_feed.close().await;
    within("the shutdown", server.shutdown()).await;
}

/// The feed backwards (`before=OFFSET`): pages of older events, the newest page first, each
/// oldest first, skipping what the caller may not see, until there is nothing older.
#[tokio::test]
async fn the_feed_pages_backwards_with_before() {
    let dir = temp_dir("before");
    let (url, server) = start(&dir).await;
    let mut visible = Vec::new();
    for n in 0..30u64 {
        let (_, e, _) =
            emit(&url, json!({ "to": { "room": "tenant:acme" }, "event": "task.created", "data": { "n": n } })).await;
        visible.push(e["offset"].as_u64().unwrap());
        if n % 6 == 0 {
            // Bob's own: not for alice.
            emit(&url, json!({ "to": { "users": ["bob"] }, "event": "task.assigned", "data": {}, "tenantId": "acme" }))
                .await;
        }
    }
    let tok = token("alice", "acme");
    let head = visible.last().unwrap() + 1;
    let (mut before, mut pages) = (head, Vec::new());
    loop {
        let (status, page) = feed(&url, "acme", &tok, &format!("before={before}&limit=7")).await;
        assert_eq!(status, 200, "{page}");
        let offsets: Vec<u64> =
            page["events"].as_array().unwrap().iter().map(|e| e["offset"].as_u64().unwrap()).collect();
        assert!(offsets.windows(2).all(|w| w[0] < w[1]), "oldest first within a page: {offsets:?}");
        assert!(offsets.iter().all(|o| *o < before));
        pages.push(offsets);
        if page["hasMore"] == false {
            break;
        }
        before = page["cursor"].as_u64().unwrap();
        assert!(pages.len() < 10, "it ends");
    }
    assert_eq!(pages[0].len(), 7, "the newest seven first");
    let all: Vec<u64> = pages.into_iter().rev().flatten().collect();
    assert_eq!(all, visible, "every visible event once, in order, and none of bob's");
    let (status, _) = feed(&url, "acme", &tok, "before=5&since=1").await;
    assert_eq!(status, 400, "since and before together");
    let (status, _) = feed(&url, "acme", &tok, "before=x").await;
    assert_eq!(status, 400);
    within("the shutdown", server.shutdown()).await;
}
