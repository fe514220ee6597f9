//! The bot against the real example server, in-process: a task created through the internal API
//! is assigned and announced, as another tidings client sees it.
//!
//! Every wait is bounded ([`within`]): a server or bot that never answers fails the test, it
//! does not hang the run.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, missing_docs)]

use std::future::Future;
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{Value, json};
use tidings::{Envelope, Tidings};
use tidings_example_bot::{Bot, BotConfig};
use tidings_example_server::Config;

const T: Duration = Duration::from_secs(10);
const KEY: &str = "bot-test-key";

/// `f`, or a failure naming `what` if it takes longer than [`T`].
async fn within<F: Future>(what: &str, f: F) -> F::Output {
    tokio::time::timeout(T, f).await.unwrap_or_else(|_| panic!("{what}: nothing within {T:?}"))
}

async fn post(url: &str, path: &str, body: Value, key: Option<&str>) -> Value {
    let mut req = reqwest::Client::new().post(format!("{url}{path}")).header("content-type", "application/json");
    if let Some(k) = key {
        req = req.header("x-internal-api-key", k);
    }
    within(&format!("POST {path}"), async {
        let res = req.body(body.to_string()).send().await.unwrap();
        assert!(res.status().is_success());
        serde_json::from_str(&res.text().await.unwrap()).unwrap()
    })
    .await
}

#[tokio::test]
async fn the_bot_assigns_new_tasks_and_announces_them() {
    let dir = std::env::temp_dir().join(format!("tidings-bot-e2e-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (addr, server) = tidings_example_server::serve(Config::new(dir.clone(), "bot-test-secret", KEY)).await.unwrap();
    let url = format!("http://{addr}");

    let bot = within(
        "the bot's connect",
        Bot::connect(BotConfig {
            server_url: url.clone(),
            token: None,
            login_user: "bot".into(),
            internal_api_key: KEY.into(),
            assignees: vec!["alice".into(), "bob".into()],
            chat_id: "general".into(),
        }),
    )
    .await
    .unwrap();
    assert_eq!(bot.tenant(), "acme");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(bot.run(async {
        let _ = stopped.await;
    }));

    // Alice watches the tenant's tasks and the chat.
    let login = post(&url, "/api/dev/login", json!({ "userId": "alice" }), None).await;
    let alice = within("alice's connect", Tidings::builder(&url).token(login["token"].as_str().unwrap()).connect())
        .await
        .unwrap();
    within("alice's join", alice.join("chat:acme:general")).await.unwrap();
    let mut assigned = alice.on::<Envelope<Value>>("task.assigned");
    let mut chat = alice.on::<Envelope<Value>>("chat.message");

    // `assigneeId` is optional, not nullable, in the event catalogue: absent when unassigned (a
    // `null` would not fit, and the bot's validator would keep the event from it).
    let created = |id: &str, assignee: Option<&str>| {
        let mut task = json!({ "id": id, "title": format!("Task {id}"), "priority": 1 });
        if let Some(a) = assignee {
            task["assigneeId"] = json!(a);
        }
        json!({
            "to": { "room": "tenant:acme" },
            "event": "task.created",
            "data": { "taskId": id, "tenantId": "acme", "userId": "carol", "task": task },
        })
    };
    // Already assigned: the bot leaves it alone. Then an unassigned one.
    post(&url, "/internal/emit", created("t0", Some("bob")), Some(KEY)).await;
    let e = post(&url, "/internal/emit", created("t1", None), Some(KEY)).await;

    let got = tokio::time::timeout(T, assigned.next()).await.unwrap().unwrap().unwrap();
    let d = &got.data.data;
    assert_eq!(d["taskId"], "t1", "only the unassigned task is assigned");
    assert_eq!(d["task"]["assigneeId"], "alice");
    assert_eq!(d["userId"], "alice");
    assert_eq!(d["task"]["priority"], 1, "unknown task fields are kept");
    assert_eq!(got.data.metadata.correlation_id.as_deref(), e["id"].as_str());

    let msg = tokio::time::timeout(T, chat.next()).await.unwrap().unwrap().unwrap();
    assert_eq!(msg.data.data["message"]["userId"], "bot");
    assert_eq!(msg.data.data["message"]["text"], "Assigned \u{201c}Task t1\u{201d} to alice");

    // Round-robin: the next task goes to bob.
    post(&url, "/internal/emit", created("t2", None), Some(KEY)).await;
    let got = tokio::time::timeout(T, assigned.next()).await.unwrap().unwrap().unwrap();
    assert_eq!(got.data.data["task"]["assigneeId"], "bob");

    stop.send(()).unwrap();
    tokio::time::timeout(T, running).await.unwrap().unwrap().unwrap();
    within("alice's close", alice.close()).await;
    within("the shutdown", server.shutdown()).await;
    let _ = std::fs::remove_dir_all(&dir);
}
