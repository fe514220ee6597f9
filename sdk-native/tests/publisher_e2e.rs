//! The publisher (`tidings::Publisher`, `tidings publish`) against the reference server
//! (examples/server, in-process on 127.0.0.1): retries through a restart, injected 5xx and lost
//! answers publish each event exactly once, in order (docs/PUBLISHING.md).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, missing_docs)]

mod common;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{output_within, within};
use serde_json::{Value, json};
use tidings::{BackoffStrategy, Publication, Publisher};
use tidings_example_server::{Claims, Config, ServerHandle, clock, jwt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const SECRET: &str = "publisher-test-secret";
const KEY: &str = "publisher-test-key";
const T: Duration = Duration::from_secs(20);

fn temp_dir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("tidings-pub-{name}-{}-{}", std::process::id(), rand::random::<u32>()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

async fn serve(dir: &std::path::Path, bind: Option<SocketAddr>) -> (SocketAddr, ServerHandle) {
    let mut config = Config::new(dir, SECRET, KEY);
    if let Some(b) = bind {
        config.bind = b;
    }
    tidings_example_server::serve(config).await.unwrap()
}

/// Every event of tenant `acme` in the feed, from the start: (id, data).
async fn feed(addr: SocketAddr) -> Vec<(String, Value)> {
    let claims =
        Claims { sub: "reader".into(), tenant_id: "acme".into(), name: None, exp: clock::now_secs() + 600, iat: None };
    let token = jwt::sign(&claims, SECRET.as_bytes());
    let url = format!("http://{addr}/api/polling/acme/events?since=0&limit=1000");
    let req = reqwest::Client::new().get(url).bearer_auth(token);
    let text = within(T, "the feed", async { req.send().await.unwrap().text().await.unwrap() }).await;
    let body: Value = serde_json::from_str(&text).unwrap();
    body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["id"].as_str().unwrap().to_string(), e["data"]["data"].clone()))
        .collect()
}

/// What the HTTP fault proxy does to the next request that reaches the server.
#[derive(Debug, Clone, Copy)]
enum Http {
    /// Answer 503 without telling the server.
    Unavailable,
    /// Let the server handle it, then close the connection without its answer.
    LoseAnswer,
    /// Answer this status (a 4xx) without telling the server.
    Refuse(u16),
}

const BATCH_PATH: &str = "/internal/v1/emit/batch";

/// An HTTP/1.1 proxy in front of `upstream`, one request per connection (it asks the server to
/// close after answering). It applies `plan` to the next requests while the server is up (when
/// it is down, the client's connection is closed without an answer), records the path of every
/// request it gets, and answers 404 to batch requests while `no_batch` is set (a server without
/// the batch endpoint).
#[derive(Clone, Default)]
struct FaultProxy {
    plan: Arc<Mutex<VecDeque<Http>>>,
    requests: Arc<Mutex<Vec<String>>>,
    no_batch: Arc<AtomicBool>,
}

impl FaultProxy {
    async fn start(&self, upstream: Arc<Mutex<SocketAddr>>) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let proxy = self.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(proxy.clone().handle(client, *upstream.lock().unwrap()));
            }
        });
        addr
    }

    async fn handle(self, mut client: TcpStream, upstream: SocketAddr) {
        let Some(request) = read_request(&mut client).await else { return };
        let path = String::from_utf8_lossy(&request).split(' ').nth(1).unwrap_or_default().to_string();
        self.requests.lock().unwrap().push(path.clone());
        if path == BATCH_PATH && self.no_batch.load(Ordering::SeqCst) {
            let answer = b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
            let _ = client.write_all(answer).await;
            return;
        }
        let Ok(mut server) = TcpStream::connect(upstream).await else { return };
        let fault = self.plan.lock().unwrap().pop_front();
        let status = match fault {
            Some(Http::Unavailable) => Some(503),
            Some(Http::Refuse(status)) => Some(status),
            _ => None,
        };
        if let Some(status) = status {
            let answer = format!("HTTP/1.1 {status} Refused\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
            let _ = client.write_all(answer.as_bytes()).await;
            return;
        }
        if server.write_all(&request).await.is_err() {
            return;
        }
        let mut answer = Vec::new();
        let _ = server.read_to_end(&mut answer).await;
        if let Some(Http::LoseAnswer) = fault {
            return; // the server did it; the client never hears
        }
        let _ = client.write_all(&answer).await;
    }

    /// Requests received so far: (to the batch endpoint, to the single one).
    fn counts(&self) -> (usize, usize) {
        let requests = self.requests.lock().unwrap();
        let batches = requests.iter().filter(|p| *p == BATCH_PATH).count();
        (batches, requests.len() - batches)
    }
}

/// Reads one request (headers and a content-length body) and adds `connection: close`.
async fn read_request(client: &mut TcpStream) -> Option<Vec<u8>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        let n = client.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let len = head
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse::<usize>()))
        .and_then(Result::ok)
        .unwrap_or(0);
    while buf.len() < head_end + len {
        let n = client.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let mut head: Vec<String> = head
        .trim_end()
        .lines()
        .filter(|l| !l.to_ascii_lowercase().starts_with("connection:"))
        .map(String::from)
        .collect();
    head.push("connection: close".into());
    let mut out = (head.join("\r\n") + "\r\n\r\n").into_bytes();
    out.extend_from_slice(&buf[head_end..]);
    Some(out)
}

fn builder(url: &str) -> tidings::PublisherBuilder {
    Publisher::builder(url).api_key(KEY).backoff(BackoffStrategy::SocketIo {
        min_ms: 50,
        max_ms: 400,
        factor: 2.0,
        randomization: 0.5,
    })
}

fn publisher(url: &str) -> Publisher {
    builder(url).build().unwrap()
}

/// Queues `task.created` with `{"seq": n}` for each `n`, keeping the handles.
async fn publish_seqs(publisher: &Publisher, seqs: std::ops::Range<u64>, handles: &mut Vec<tidings::PublishHandle>) {
    for seq in seqs {
        let p = Publication::to_room("tenant:acme", "task.created", json!({ "seq": seq }));
        handles.push(within(T, "queueing a publication", publisher.publish(p)).await.unwrap());
    }
}

/// One request per event (`batch(1)`): the single endpoint through the faults.
#[tokio::test]
async fn retries_through_a_restart_5xx_and_lost_answers_publish_each_event_once_in_order() {
    let dir = temp_dir("retries");
    let (addr, server) = serve(&dir, None).await;
    let upstream = Arc::new(Mutex::new(addr));
    // Request 3 is handled but its answer lost, 4 and 5 get a 503 (then the retry of 3 is
    // answered from the idempotency key), and the server restarts in the middle of the stream.
    let faults = FaultProxy::default();
    let plan = faults.plan.clone();
    let proxy = faults.start(upstream.clone()).await;
    let publisher = builder(&format!("http://{proxy}")).batch(1).build().unwrap();

    let mut handles = Vec::new();
    publish_seqs(&publisher, 0..2, &mut handles).await;
    within(T, "the flush", publisher.flush()).await;
    plan.lock().unwrap().extend([Http::LoseAnswer, Http::Unavailable, Http::Unavailable]);
    publish_seqs(&publisher, 2..10, &mut handles).await;
    within(T, "the flush", publisher.flush()).await;
    // A restart: the events queued meanwhile wait and go out once it is back.
    within(T, "the shutdown", server.shutdown()).await;
    publish_seqs(&publisher, 10..20, &mut handles).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (again, server) = serve(&dir, Some(addr)).await;
    assert_eq!(again, addr);
    tokio::time::timeout(T, publisher.flush()).await.expect("flushed in time");

    let mut replayed = 0;
    for h in handles {
        let p = within(T, "a publication's answer", h).await.unwrap();
        replayed += usize::from(p.replayed);
    }
    assert_eq!(replayed, 1, "the retry after the lost answer was answered from its idempotency key");
    let m = publisher.metrics();
    assert_eq!((m.published, m.failed, m.queued, m.batches), (20, 0, 0, 0), "{m:?}");
    assert!(m.retried >= 4, "{m:?}");
    assert_eq!(faults.counts().0, 0, "no batch request");
    let events = feed(addr).await;
    let seqs: Vec<u64> = events.iter().map(|(_, d)| d["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (0..20).collect::<Vec<u64>>(), "each event once, in order");
    publisher.close(T).await.unwrap();
    within(T, "the shutdown", server.shutdown()).await;
    let _ = std::fs::remove_dir_all(dir);
}

/// Queues `task.created` with `{"seq": n}` for each `n` without yielding (`try_publish`), so that
/// the worker finds them all queued: they go out in batches.
fn queue_seqs(publisher: &Publisher, seqs: std::ops::Range<u64>) -> Vec<tidings::PublishHandle> {
    seqs.map(|seq| {
        publisher.try_publish(Publication::to_room("tenant:acme", "task.created", json!({ "seq": seq }))).unwrap()
    })
    .collect()
}

/// A backlog of 500 events, queued while the server is down, goes out in batches of 100 once
/// it is back, through a lost answer and a 503 on a batch: each event once, in order.
#[tokio::test]
async fn a_backlog_goes_out_in_batches_through_a_restart_a_lost_answer_and_a_503() {
    let dir = temp_dir("batches");
    let (addr, server) = serve(&dir, None).await;
    let faults = FaultProxy::default();
    let proxy = faults.start(Arc::new(Mutex::new(addr))).await;
    let publisher = publisher(&format!("http://{proxy}"));
    within(T, "the shutdown", server.shutdown()).await;

    // Fire and forget (the handles are only read at the end, to count the replays).
    let handles = queue_seqs(&publisher, 0..500);
    // The first batch to reach the server is handled but its answer lost, its retry gets a 503,
    // and the retry after that is answered from the 100 idempotency keys.
    faults.plan.lock().unwrap().extend([Http::LoseAnswer, Http::Unavailable]);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(publisher.metrics().published, 0);
    let (again, server) = serve(&dir, Some(addr)).await;
    assert_eq!(again, addr);
    within(T, "the flush", publisher.flush()).await;

    let mut replayed = 0;
    for h in handles {
        replayed += usize::from(within(T, "a publication's answer", h).await.unwrap().replayed);
    }
    assert_eq!(replayed, 100, "the batch whose answer was lost, answered again from its keys");
    let events = feed(addr).await;
    let seqs: Vec<u64> = events.iter().map(|(_, d)| d["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (0..500).collect::<Vec<u64>>(), "each event once, in order");
    let m = publisher.metrics();
    assert_eq!((m.published, m.failed, m.queued), (500, 0, 0), "{m:?}");
    let (batches, singles) = faults.counts();
    assert_eq!(singles, 0, "only batch requests");
    assert!((7..=30).contains(&batches), "5 batches, 2 faults and the attempts while down: {batches}");
    assert_eq!(m.batches as usize, batches);
    assert!(m.retried >= 3, "{m:?}");
    publisher.close(T).await.unwrap();
    within(T, "the shutdown", server.shutdown()).await;
    let _ = std::fs::remove_dir_all(dir);
}

/// A refusal in a batch fails that event only; the others are published, in order.
#[tokio::test]
async fn a_batch_with_refused_events_publishes_the_others() {
    let dir = temp_dir("batch-refused");
    let (addr, server) = serve(&dir, None).await;
    let publisher = publisher(&format!("http://{addr}"));
    let mut handles = queue_seqs(&publisher, 0..4);
    let bad_name = Publication::to_room("tenant:acme", "not an event!", json!({ "seq": 99 }));
    handles.push(publisher.try_publish(bad_name).unwrap());
    handles.extend(queue_seqs(&publisher, 4..7));
    let no_tenant = Publication::to_users(["alice"], "task.created", json!({ "seq": 98 }));
    handles.push(publisher.try_publish(no_tenant).unwrap());
    handles.extend(queue_seqs(&publisher, 7..9));

    let mut answers = Vec::new();
    for h in handles {
        answers.push(within(T, "a publication's answer", h).await);
    }
    for (i, code) in [(4, "invalid_event"), (8, "missing_tenant")] {
        match &answers[i] {
            Err(tidings::Error::Rejected { status: 400, message }) => assert!(message.starts_with(code), "{message}"),
            other => panic!("{i}: {other:?}"),
        }
    }
    let offsets: Vec<u64> = answers.iter().filter_map(|a| a.as_ref().ok()).map(|p| p.offset).collect();
    assert_eq!(offsets, (1..=9).collect::<Vec<u64>>());
    let m = publisher.metrics();
    assert_eq!((m.published, m.failed, m.retried, m.batches), (9, 2, 0, 1), "{m:?}");
    let seqs: Vec<u64> = feed(addr).await.iter().map(|(_, d)| d["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (0..9).collect::<Vec<u64>>());
    within(T, "the shutdown", server.shutdown()).await;
    let _ = std::fs::remove_dir_all(dir);
}

/// A batch refused as too large (413) goes one event at a time, and batches go on; a 405 on the
/// batch path is a server without it, as a 404.
#[tokio::test]
async fn a_413_sends_that_batch_one_by_one_and_a_405_stops_batching() {
    let dir = temp_dir("batch-413");
    let (addr, server) = serve(&dir, None).await;
    let faults = FaultProxy::default();
    let proxy = faults.start(Arc::new(Mutex::new(addr))).await;
    let publisher = publisher(&format!("http://{proxy}"));
    let mut handles = Vec::new();
    for (round, fault, counts) in [
        (0..10, Some(Http::Refuse(413)), (1, 10)),
        (10..20, None, (2, 10)),
        (20..30, Some(Http::Refuse(405)), (3, 20)),
        (30..40, None, (3, 30)),
    ] {
        faults.plan.lock().unwrap().extend(fault);
        handles.extend(queue_seqs(&publisher, round));
        within(T, "the flush", publisher.flush()).await;
        assert_eq!(faults.counts(), counts);
    }
    for h in handles {
        within(T, "a publication's answer", h).await.unwrap();
    }
    let seqs: Vec<u64> = feed(addr).await.iter().map(|(_, d)| d["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (0..40).collect::<Vec<u64>>());
    within(T, "the shutdown", server.shutdown()).await;
    let _ = std::fs::remove_dir_all(dir);
}

/// Large events: a batch stays under the server's 1 MiB.
#[tokio::test]
async fn batches_of_large_events_stay_under_the_bound() {
    let dir = temp_dir("batch-large");
    let (addr, server) = serve(&dir, None).await;
    let publisher = publisher(&format!("http://{addr}"));
    let pad = "a".repeat(60_000);
    let handles: Vec<_> = (0..20u64)
        .map(|seq| {
            let p = Publication::to_room("tenant:acme", "task.created", json!({ "seq": seq, "pad": pad }));
            publisher.try_publish(p).unwrap()
        })
        .collect();
    for h in handles {
        within(T, "a publication's answer", h).await.unwrap();
    }
    let m = publisher.metrics();
    assert_eq!((m.published, m.failed, m.retried, m.batches), (20, 0, 0, 2), "17 events, then 3: {m:?}");
    within(T, "the shutdown", server.shutdown()).await;
    let _ = std::fs::remove_dir_all(dir);
}

/// A server without the batch endpoint (404): one request per event, for the rest of the
/// publisher's life.
#[tokio::test]
async fn without_the_batch_endpoint_the_publisher_falls_back_to_single_requests() {
    let dir = temp_dir("no-batch");
    let (addr, server) = serve(&dir, None).await;
    let faults = FaultProxy::default();
    faults.no_batch.store(true, Ordering::SeqCst);
    let proxy = faults.start(Arc::new(Mutex::new(addr))).await;
    let publisher = publisher(&format!("http://{proxy}"));
    let mut handles = queue_seqs(&publisher, 0..30);
    within(T, "the flush", publisher.flush()).await;
    assert_eq!(faults.counts(), (1, 30), "one batch request, then each event alone");
    handles.extend(queue_seqs(&publisher, 30..60));
    within(T, "the flush", publisher.flush()).await;
    assert_eq!(faults.counts(), (1, 60), "no batch tried again");
    for h in handles {
        within(T, "a publication's answer", h).await.unwrap();
    }
    let m = publisher.metrics();
    assert_eq!((m.published, m.failed, m.batches), (60, 0, 1), "{m:?}");
    let seqs: Vec<u64> = feed(addr).await.iter().map(|(_, d)| d["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (0..60).collect::<Vec<u64>>());
    within(T, "the shutdown", server.shutdown()).await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_refused_publication_fails_at_once_and_is_counted() {
    let dir = temp_dir("refused");
    let (addr, server) = serve(&dir, None).await;
    let publisher = publisher(&format!("http://{addr}"));
    // To users without a tenant: the server says 400, which is not retried.
    let publish = publisher.publish(Publication::to_users(["alice"], "task.created", json!({})));
    let h = within(T, "queueing a publication", publish).await.unwrap();
    match within(T, "the publication's answer", h).await {
        Err(tidings::Error::Rejected { status: 400, message }) => {
            assert!(message.contains("missing_tenant"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    let m = publisher.metrics();
    assert_eq!((m.published, m.failed, m.retried), (0, 1, 0));
    // A wrong key is refused too.
    let wrong = Publisher::builder(format!("http://{addr}")).api_key("nope").build().unwrap();
    let publish = wrong.publish(Publication::to_room("tenant:acme", "x", json!(1)));
    let h = within(T, "queueing a publication", publish).await.unwrap();
    let answer = within(T, "the publication's answer", h).await;
    assert!(matches!(answer, Err(tidings::Error::Rejected { status: 403, .. })));
    assert!(!format!("{wrong:?}").contains("nope"), "the key never appears in Debug output");
    within(T, "the shutdown", server.shutdown()).await;
    let _ = std::fs::remove_dir_all(dir);
}

/// Runs the CLI off the runtime (the server runs on it, in this process), at most [`T`].
async fn cli(args: Vec<String>) -> std::process::Output {
    tokio::task::spawn_blocking(move || {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_tidings"));
        output_within(cmd.args(&args).env("TIDINGS_API_KEY", KEY), T, &format!("tidings {}", args.join(" ")))
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_publishes_once_per_idempotency_key() {
    let dir = temp_dir("cli");
    let (addr, server) = serve(&dir, None).await;
    let url = format!("http://{addr}");
    let args = |extra: &[&str]| -> Vec<String> {
        ["publish", &url, "task.created"].iter().chain(extra).map(|s| s.to_string()).collect()
    };
    let publish = |key: &'static str| {
        let a = args(&[r#"{"title":"x"}"#, "--room", "tenant:acme", "--idempotency-key", key]);
        async move {
            let out = cli(a).await;
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            serde_json::from_slice::<Value>(&out.stdout).unwrap()
        }
    };
    let first = publish("order-42").await;
    let second = publish("order-42").await;
    assert_eq!(first["id"], second["id"]);
    assert_eq!((first["replayed"].as_bool(), second["replayed"].as_bool()), (Some(false), Some(true)));
    assert_eq!(feed(addr).await.len(), 1, "published once");
    // A usage error and a refusal have their own exit codes.
    let usage = cli(args(&["--room", "r", "--user", "u"])).await;
    assert_eq!(usage.status.code(), Some(2));
    let refused = cli(args(&["--user", "alice"])).await;
    assert_eq!(refused.status.code(), Some(6), "{}", String::from_utf8_lossy(&refused.stderr));
    within(T, "the shutdown", server.shutdown()).await;
    let _ = std::fs::remove_dir_all(dir);
}

/// `tidings listen --feed FEED --since OFFSET`: the history after the offset, then the live
/// events, each once and in order across the seam.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listen_since_prints_history_then_live_without_gap_or_duplicate() {
    use std::io::BufRead;
    let dir = temp_dir("listen-since");
    let (addr, server) = serve(&dir, None).await;
    let url = format!("http://{addr}");
    let p = publisher(&url);
    let mut handles = Vec::new();
    publish_seqs(&p, 0..6, &mut handles).await;
    within(T, "the history's publication", p.flush()).await;
    let claims =
        Claims { sub: "alice".into(), tenant_id: "acme".into(), name: None, exp: clock::now_secs() + 600, iat: None };
    let token = jwt::sign(&claims, SECRET.as_bytes());
    // Offsets start at 1: since=3 is after seq 2, so the history is seqs 3, 4 and 5.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_tidings"))
        .args(["listen", &url, "--token", &token, "--event", "task.created", "--count", "8"])
        .args(["--feed", &format!("{url}/api/polling/acme"), "--since", "3", "--timeout", "20"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let seq = |line: &str| -> u64 {
        let v: Value = serde_json::from_str(line).unwrap();
        v["args"][0]["data"]["seq"].as_u64().unwrap()
    };
    let mut seqs = Vec::new();
    for _ in 0..3 {
        seqs.push(seq(&within(T, "the history", rx.recv()).await.unwrap()));
    }
    publish_seqs(&p, 6..11, &mut handles).await;
    within(T, "the live publication", p.flush()).await;
    while let Some(line) = within(T, "the live events", rx.recv()).await {
        seqs.push(seq(&line));
    }
    assert_eq!(seqs, (3..11).collect::<Vec<u64>>(), "history then live, each once, in order");
    let status = common::wait_within(&mut child, T, "tidings listen");
    assert!(status.success(), "{status:?}");
    within(T, "the shutdown", server.shutdown()).await;
}

/// A service killed mid-stream (SIGKILL: no goodbye, nothing flushed) and started again from
/// the last event it handled (here: `tidings listen`, whose last printed envelope id is the stored
/// cursor): every event handled exactly once across the two runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_killed_and_restarted_from_its_stored_cursor_handles_every_event_once() {
    use std::io::BufRead;
    let dir = temp_dir("killed-service");
    let (addr, server) = serve(&dir, None).await;
    let url = format!("http://{addr}");
    let p = publisher(&url);
    let mut handles = Vec::new();
    let claims =
        Claims { sub: "alice".into(), tenant_id: "acme".into(), name: None, exp: clock::now_secs() + 600, iat: None };
    let token = jwt::sign(&claims, SECRET.as_bytes());
    // One run of the service: its lines arrive on a channel (a thread reads its stdout).
    let start = |since: Option<&str>| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_tidings"));
        cmd.args(["listen", &url, "--token", &token, "--event", "task.created", "--timeout", "30"])
            .args(["--feed", &format!("{url}/api/polling/acme")]);
        if let Some(s) = since {
            cmd.args(["--since", s]);
        }
        let mut child = cmd.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::null()).spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Value>();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(serde_json::from_str(&line).unwrap());
            }
        });
        (child, rx)
    };
    let (mut first, mut lines) = start(Some("0"));
    let mut handled: Vec<(u64, String)> = Vec::new();
    publish_seqs(&p, 0..20, &mut handles).await;
    while handled.len() < 12 {
        let v = within(T, "the first run's events", lines.recv()).await.unwrap();
        handled.push((v["args"][0]["data"]["seq"].as_u64().unwrap(), v["args"][0]["id"].as_str().unwrap().to_string()));
    }
    first.kill().unwrap();
    let _ = first.wait();
    // What the first run printed after the 12th line is not handled: the cursor is the 12th's id.
    let cursor = handled.last().unwrap().1.clone();
    publish_seqs(&p, 20..30, &mut handles).await;
    within(T, "the publication", p.flush()).await;
    let (mut second, mut lines) = start(Some(&cursor));
    while handled.len() < 30 {
        let v = within(T, "the second run's events", lines.recv()).await.unwrap();
        handled.push((v["args"][0]["data"]["seq"].as_u64().unwrap(), v["args"][0]["id"].as_str().unwrap().to_string()));
    }
    let seqs: Vec<u64> = handled.iter().map(|(s, _)| *s).collect();
    assert_eq!(seqs, (0..30).collect::<Vec<u64>>(), "every event handled once, in order, across the kill");
    assert!(
        tokio::time::timeout(std::time::Duration::from_millis(300), lines.recv()).await.is_err(),
        "nothing more (no duplicate)"
    );
    second.kill().unwrap();
    let _ = second.wait();
    within(T, "the shutdown", server.shutdown()).await;
    let _ = std::fs::remove_dir_all(dir);
}
