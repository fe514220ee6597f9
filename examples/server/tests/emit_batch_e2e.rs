//! `POST /internal/v1/emit/batch` of the reference server in-process, with the file log and with
//! the Redis log (docs/PUBLISHING.md): events appended in order, each with its own idempotency
//! key (inside a batch, across batches and with the single emit) and its own refusal; the
//! bounds; the rate limit counting events; a log that cannot be written fails the whole request,
//! and its retry replays what was stored.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, missing_docs)]

mod common;

#[path = "../../../sdk-native/tests/common/redis.rs"]
#[allow(dead_code, unreachable_pub)]
mod redis;

use std::time::Duration;

use common::*;
use serde_json::{Value, json};

fn event(seq: u64, key: Option<&str>) -> Value {
    let mut e = json!({ "to": { "room": "tenant:acme" }, "event": "task.created", "data": { "seq": seq } });
    if let Some(k) = key {
        e["idempotencyKey"] = json!(k);
    }
    e
}

async fn batch_raw(url: &str, key: &str, body: String) -> (u16, Value, Option<String>) {
    http("POST", &format!("{url}/internal/v1/emit/batch"), &[("x-internal-api-key", key)], Some(body)).await
}

async fn batch(url: &str, events: Vec<Value>) -> (u16, Value) {
    let (s, v, _) = batch_raw(url, KEY, json!({ "events": events }).to_string()).await;
    (s, v)
}

/// The `seq` of every event of tenant `acme` in the feed, from the start.
async fn seqs(url: &str) -> Vec<u64> {
    let (s, page) = feed(url, "acme", &token("reader", "acme"), "since=0&limit=1000").await;
    assert_eq!(s, 200, "{page}");
    page["events"].as_array().unwrap().iter().map(|e| e["data"]["data"]["seq"].as_u64().unwrap()).collect()
}

/// The results' (offset, replayed) or error code, one per event.
fn outcomes(v: &Value) -> Vec<Result<(u64, bool), String>> {
    v["results"]
        .as_array()
        .unwrap_or_else(|| panic!("no results: {v}"))
        .iter()
        .map(|r| match r["error"]["code"].as_str() {
            Some(code) => Err(code.to_string()),
            None => Ok((r["offset"].as_u64().unwrap(), r["replayed"].as_bool().unwrap())),
        })
        .collect()
}

/// What both logs must do: order, idempotency inside and across batches and with the single
/// emit, and per-event refusals that do not stop the others.
async fn appends_in_order_with_idempotency_and_per_event_refusals(url: &str) {
    let bad_name = json!({ "to": { "room": "tenant:acme" }, "event": "disconnect", "data": { "seq": 99 } });
    let no_tenant = json!({ "to": { "users": ["alice"] }, "event": "task.created", "data": { "seq": 98 } });
    let (s, v) = batch(
        url,
        vec![
            event(1, Some("a")),
            bad_name,
            event(2, None),
            event(1, Some("a")),
            no_tenant,
            json!(7),
            event(3, Some("b")),
        ],
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        outcomes(&v),
        vec![
            Ok((1, false)),
            Err("invalid_event".into()),
            Ok((2, false)),
            Ok((1, true)),
            Err("missing_tenant".into()),
            Err("bad_json".into()),
            Ok((3, false)),
        ],
        "{v}"
    );
    let first = &v["results"][0];
    assert!(first["id"].as_str().unwrap().starts_with("evt_"));
    assert_eq!(v["results"][3]["id"], first["id"], "the repeated key's first answer");
    assert_eq!(v["results"][1]["error"]["status"], 400);
    assert!(v["results"][1]["error"]["message"].as_str().unwrap().contains("reserved"));

    // Across batches and with the single emit, both ways.
    let (s, single, replayed) = emit(url, event(4, Some("b"))).await;
    assert_eq!((s, single["offset"].as_u64(), replayed.as_deref()), (200, Some(3), Some("true")));
    let (s, _, replayed) = emit(url, event(4, Some("c"))).await;
    assert_eq!((s, replayed), (200, None));
    let (s, v) = batch(url, vec![event(1, Some("a")), event(4, Some("c")), event(5, Some("d"))]).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(outcomes(&v), vec![Ok((1, true)), Ok((4, true)), Ok((5, false))]);
    assert_eq!(seqs(url).await, vec![1, 2, 3, 4, 5], "each event once, in order");
}

#[tokio::test]
async fn the_file_log_appends_a_batch_in_order_with_idempotency_and_per_event_refusals() {
    let dir = temp_dir("batch");
    let (url, server) = start(&dir).await;
    appends_in_order_with_idempotency_and_per_event_refusals(&url).await;
    within("the shutdown", server.shutdown()).await;

    // The keys are in the log: still replayed after a restart.
    let (url, server) = start(&dir).await;
    let (s, v) = batch(&url, vec![event(3, Some("b")), event(6, None)]).await;
    assert_eq!((s, outcomes(&v)), (200, vec![Ok((3, true)), Ok((6, false))]));
    within("the shutdown", server.shutdown()).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_batch_is_bounded_authenticated_and_checked() {
    let dir = temp_dir("batch-bounds");
    let (url, server) = start(&dir).await;
    let good = json!({ "events": [event(1, None)] }).to_string();
    let (s, v, _) = http("POST", &format!("{url}/internal/v1/emit/batch"), &[], Some(good.clone())).await;
    assert_eq!((s, v["code"].as_str()), (401, Some("missing_api_key")));
    let (s, v, _) = batch_raw(&url, "wrong", good).await;
    assert_eq!((s, v["code"].as_str()), (403, Some("invalid_api_key")));

    for (body, status, code) in [
        ("{not json".to_string(), 400, "bad_json"),
        (r#"{"events":"x"}"#.into(), 400, "bad_json"),
        (r#"{"events":[],"more":1}"#.into(), 400, "bad_json"),
        (json!({ "events": [] }).to_string(), 400, "invalid_batch"),
        (json!({ "events": vec![event(1, None); 101] }).to_string(), 400, "invalid_batch"),
    ] {
        let (s, v, _) = batch_raw(&url, KEY, body.clone()).await;
        assert_eq!((s, v["code"].as_str()), (status, Some(code)), "{body:.80} -> {v}");
    }
    // 1 MiB at most (16 times the single event's 64 KiB), and each event 64 KiB at most.
    let big = |n: usize, seq: u64| json!({ "to": { "room": "tenant:acme" }, "event": "x.y", "data": { "seq": seq, "pad": "a".repeat(n) } });
    let (s, _, _) = batch_raw(&url, KEY, json!({ "events": vec![big(60_000, 0); 18] }).to_string()).await;
    assert_eq!(s, 413, "over the batch's bound");
    let (s, v) = batch(&url, vec![big(60_000, 1), big(70_000, 2), big(60_000, 3)]).await;
    assert_eq!(s, 200, "above one event's bound, under the batch's");
    assert_eq!(outcomes(&v), vec![Ok((1, false)), Err("event_too_large".into()), Ok((2, false))]);
    assert_eq!(v["results"][1]["error"]["status"], 413);
    let (s, v) = batch(&url, vec![event(4, None); 100]).await;
    assert_eq!((s, outcomes(&v).len()), (200, 100), "100 events are allowed");
    assert_eq!(seqs(&url).await.len(), 102);
    within("the shutdown", server.shutdown()).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn the_rate_limit_counts_each_event_of_a_batch() {
    use tidings_example_server::ratelimit::Rate;
    let dir = temp_dir("batch-rate");
    let mut config = tidings_example_server::Config::new(&dir, SECRET, KEY);
    config.emit_rate = Rate { per_sec: 1.0, burst: 5.0 };
    let (url, server) = start_with(config).await;
    let (s, _) = batch(&url, vec![event(1, None), event(2, None), event(3, None)]).await;
    assert_eq!(s, 200);
    let (s, v, _) = emit(&url, event(4, None)).await;
    assert_eq!(s, 200, "{v}");
    let (s, v, _) = batch_raw(&url, KEY, json!({ "events": [event(5, None), event(6, None)] }).to_string()).await;
    assert_eq!((s, v["code"].as_str()), (429, Some("rate_limited")), "5 events taken, 1 token left");
    assert_eq!(seqs(&url).await, vec![1, 2, 3, 4], "a refused batch publishes nothing");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (s, _) = batch(&url, vec![event(5, None), event(6, None)]).await;
    assert_eq!(s, 200);
    within("the shutdown", server.shutdown()).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_redis_log_does_the_same_and_a_lost_redis_fails_the_whole_batch() {
    let mut redis = tokio::task::spawn_blocking(redis::RedisServer::start).await.unwrap();
    let dir = temp_dir("batch-redis");
    let mut config = tidings_example_server::Config::new(&dir, SECRET, KEY);
    config.redis_url = Some(redis.url());
    let (url, server) = start_with(config).await;
    appends_in_order_with_idempotency_and_per_event_refusals(&url).await;

    // Redis goes away: the whole request fails (503, to retry) ...
    let mut redis = tokio::task::spawn_blocking(move || {
        redis.stop();
        redis
    })
    .await
    .unwrap();
    let retry = vec![event(5, Some("d")), event(6, Some("e")), event(7, Some("f"))];
    let (s, v, _) = batch_raw(&url, KEY, json!({ "events": retry }).to_string()).await;
    assert_eq!((s, v["code"].as_str()), (503, Some("unavailable")), "{v}");
    // ... and once it is back, the retry with the same keys replays what was stored.
    let redis = tokio::task::spawn_blocking(move || {
        redis.restart();
        redis
    })
    .await
    .unwrap();
    let mut answer = None;
    for _ in 0..50 {
        let (s, v) = batch(&url, retry.clone()).await;
        if s == 200 {
            answer = Some(v);
            break;
        }
        assert_eq!(s, 503, "{v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let v = answer.expect("Redis back within 5 s");
    assert_eq!(outcomes(&v), vec![Ok((5, true)), Ok((6, false)), Ok((7, false))]);
    assert_eq!(seqs(&url).await, vec![1, 2, 3, 4, 5, 6, 7]);
    within("the shutdown", server.shutdown()).await;
    drop(redis);
    let _ = std::fs::remove_dir_all(&dir);
}
