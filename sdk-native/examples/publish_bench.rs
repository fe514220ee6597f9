//! Times `tidings::Publisher` publishing a backlog: `EVENTS` events queued fire-and-forget, then
//! `flush`, to a server's internal API (docs/BENCHMARKS.md, "Publishing"; driven by
//! `scripts/publish-bench.sh`).
//!
//! ```sh
//! TIDINGS_API_KEY=... cargo run --release -p tidings --example publish_bench -- URL EVENTS BATCH
//! ```
//!
//! Prints one JSON line: `{"publisher":"rust","events","batch","ms","eventsPerSec","published",
//! "failed","batches"}`.

use std::time::Duration;

use serde_json::json;
use tidings::{Publication, Publisher};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url, events, batch] = args.as_slice() else {
        return Err("usage: publish_bench URL EVENTS BATCH (the key in TIDINGS_API_KEY)".into());
    };
    let events: u64 = events.parse()?;
    let batch: usize = batch.parse()?;
    let key = std::env::var("TIDINGS_API_KEY").map_err(|_| "TIDINGS_API_KEY is not set")?;
    let queue = usize::try_from(events)?.max(1);
    let publisher = Publisher::builder(url.as_str()).api_key(key).batch(batch).queue(queue).max_attempts(5).build()?;
    let title = "Ship the publisher's batching";
    let started = tokio::time::Instant::now();
    for seq in 0..events {
        let data = json!({ "taskId": format!("t{seq}"), "tenantId": "bench", "task": { "id": format!("t{seq}"), "title": title } });
        // Fire and forget: the handle is dropped.
        drop(publisher.publish(Publication::to_room("tenant:bench", "task.created", data)).await?);
    }
    publisher.flush().await;
    let elapsed = started.elapsed();
    let m = publisher.metrics();
    let secs = elapsed.as_secs_f64().max(1e-9);
    let line = json!({
        "publisher": "rust",
        "events": events,
        "batch": batch,
        "ms": elapsed.as_millis() as u64,
        "eventsPerSec": (events as f64 / secs).round(),
        "published": m.published,
        "failed": m.failed,
        "batches": m.batches,
    });
    println!("{line}");
    publisher.close(Duration::from_secs(5)).await?;
    Ok(())
}
