//! Publishing from a backend service: events to rooms or users through the server's internal API
//! (`POST {url}/internal/emit` with an `x-internal-api-key`, and `POST
//! {url}/internal/v1/emit/batch` for several at once; the contract is in docs/PUBLISHING.md).
//!
//! A [`Publisher`] owns a bounded queue and one worker task that sends the queued events in order,
//! one request at a time: one event alone, or, when several are waiting, up to
//! [`PublisherBuilder::batch`] of them in one batch request (a server without the batch endpoint
//! gets single requests). Every event has an idempotency key (the caller's, or a fresh one from
//! the core's generator) that stays the same across retries, so a retry after a lost answer is
//! never published twice. Transient failures (network errors, timeouts, 408, 425, 429 and 5xx)
//! are retried with jittered exponential backoff (`Retry-After` is honoured); other answers fail
//! the event (in a batch: that event) at once. [`Publisher::flush`] waits for what is queued,
//! [`Publisher::close`] also stops the worker, and [`Publisher::metrics`] counts what happened.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use tidings_core::BackoffStrategy;
use tidings_core::rng::Rng;
use tokio::sync::{Notify, mpsc, oneshot};

use crate::Error;
use crate::error::ConfigError;

/// Where an event goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// One room (`tenant:acme`, `user:42`, `chat:7`).
    Room(String),
    /// These users (their `user:<id>` rooms), 1 to 1000 of them.
    Users(Vec<String>),
}

/// One event to publish.
#[derive(Debug, Clone, PartialEq)]
pub struct Publication {
    /// Where it goes.
    pub to: Target,
    /// The event name (`task.created`).
    pub event: String,
    /// Its data.
    pub data: Value,
    /// The tenant (needed when publishing to users; otherwise taken from the room).
    pub tenant: Option<String>,
    /// Kept across retries; a fresh one is chosen when `None`.
    pub idempotency_key: Option<String>,
    /// Carried to the event's envelope metadata.
    pub correlation_id: Option<String>,
}

impl Publication {
    /// `event` with `data` to `room`.
    pub fn to_room(room: impl Into<String>, event: impl Into<String>, data: Value) -> Self {
        Self::new(Target::Room(room.into()), event, data)
    }

    /// `event` with `data` to these users.
    pub fn to_users(users: impl IntoIterator<Item = impl Into<String>>, event: impl Into<String>, data: Value) -> Self {
        Self::new(Target::Users(users.into_iter().map(Into::into).collect()), event, data)
    }

    fn new(to: Target, event: impl Into<String>, data: Value) -> Self {
        Self { to, event: event.into(), data, tenant: None, idempotency_key: None, correlation_id: None }
    }

    /// For this tenant.
    pub fn tenant(mut self, tenant: impl Into<String>) -> Self {
        self.tenant = Some(tenant.into());
        self
    }

    /// With this idempotency key (a retry of the same publication by the application, even from
    /// another process, is then published once).
    pub fn idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.idempotency_key = Some(key.into());
        self
    }

    /// With a correlation id.
    pub fn correlation_id(mut self, id: impl Into<String>) -> Self {
        self.correlation_id = Some(id.into());
        self
    }

    fn body(&self, key: &str) -> Value {
        let to = match &self.to {
            Target::Room(r) => json!({ "room": r }),
            Target::Users(u) => json!({ "users": u }),
        };
        let mut body = serde_json::Map::new();
        body.insert("to".into(), to);
        body.insert("event".into(), json!(self.event));
        body.insert("data".into(), self.data.clone());
        body.insert("idempotencyKey".into(), json!(key));
        if let Some(t) = &self.tenant {
            body.insert("tenantId".into(), json!(t));
        }
        if let Some(c) = &self.correlation_id {
            body.insert("correlationId".into(), json!(c));
        }
        Value::Object(body)
    }
}

/// The server's answer for a published event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// The event's id (`evt_…`).
    pub id: String,
    /// Its offset in the tenant's stream.
    pub offset: u64,
    /// The server had it already (same idempotency key): this is the first publication's answer.
    pub replayed: bool,
    /// The idempotency key it was published with.
    pub idempotency_key: String,
}

/// What a publisher did so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PublisherMetrics {
    /// Events the server accepted (including replays of an earlier publication).
    pub published: u64,
    /// Requests that failed transiently and were retried (a batch's retry counts once).
    pub retried: u64,
    /// Events that failed for good (rejected by the server, attempts spent, or closed).
    pub failed: u64,
    /// Events queued or in flight now.
    pub queued: u64,
    /// Batch requests sent (retries included): each carried several events.
    pub batches: u64,
}

/// Configures a [`Publisher`].
#[derive(Debug, Clone)]
pub struct PublisherBuilder {
    url: String,
    api_key: Option<String>,
    queue: usize,
    backoff: BackoffStrategy,
    max_attempts: Option<u32>,
    request_timeout: Duration,
    batch_max: usize,
}

impl PublisherBuilder {
    /// The internal API key (header `x-internal-api-key`). Never logged.
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = Some(key.into());
        self
    }

    /// Most events waiting to be sent (default 10,000); [`Publisher::publish`] waits for room,
    /// [`Publisher::try_publish`] fails.
    pub fn queue(mut self, events: usize) -> Self {
        self.queue = events.max(1);
        self
    }

    /// Delay between attempts (default: 200 ms doubling to 10 s, ±50 % jitter).
    pub fn backoff(mut self, backoff: BackoffStrategy) -> Self {
        self.backoff = backoff;
        self
    }

    /// Give up on an event after this many attempts (default: never while the publisher is open;
    /// [`Publisher::close`] bounds the wait).
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = Some(attempts.max(1));
        self
    }

    /// Time allowed for one request (default 10 s); a request that takes longer is retried.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Most events sent in one batch request when several are queued (default and most: 100, the
    /// contract's bound; `1` sends one request per event). A batch also stays under 1 MiB.
    pub fn batch(mut self, events: usize) -> Self {
        self.batch_max = events.clamp(1, MAX_BATCH_EVENTS);
        self
    }

    /// Starts the publisher's worker on the current tokio runtime.
    pub fn build(self) -> Result<Publisher, Error> {
        let url = self.url.trim_end_matches('/').to_string();
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(ConfigError::PublisherScheme.into());
        }
        let api_key = self.api_key.ok_or(ConfigError::MissingApiKey)?;
        self.backoff.validate().map_err(ConfigError::Backoff)?;
        let http = crate::transport::Net::new(&[], 0)?.http;
        let (tx, rx) = mpsc::channel(self.queue);
        let shared = Arc::new(Shared::default());
        let worker = Worker {
            http,
            endpoint: format!("{url}/internal/emit"),
            batch_endpoint: format!("{url}/internal/v1/emit/batch"),
            batch_max: self.batch_max,
            api_key,
            backoff: self.backoff,
            max_attempts: self.max_attempts,
            request_timeout: self.request_timeout,
            rng: Rng::new(rand::random()),
            shared: shared.clone(),
        };
        let task = tokio::spawn(worker.run(rx));
        Ok(Publisher { tx: Some(tx), shared, task: Some(task) })
    }
}

#[derive(Default)]
struct Shared {
    published: AtomicU64,
    retried: AtomicU64,
    batches: AtomicU64,
    failed: AtomicU64,
    /// Events accepted by `publish` so far.
    enqueued: AtomicU64,
    /// Events finished (published or failed) so far.
    done: AtomicU64,
    /// Woken whenever an event finishes.
    progress: Notify,
}

struct Job {
    publication: Publication,
    reply: Option<oneshot::Sender<Result<Published, Error>>>,
}

/// Publishes events through the server's internal API; see the module documentation.
///
/// ```no_run
/// # async fn run() -> Result<(), tidings::Error> {
/// use tidings::{Publication, Publisher};
/// let publisher = Publisher::builder("http://127.0.0.1:3000").api_key("secret").build()?;
/// let data = serde_json::json!({ "id": "t1", "title": "Ship it" });
/// // Fire and forget (retried until it lands) ...
/// publisher.publish(Publication::to_room("tenant:acme", "task.created", data.clone())).await?;
/// // ... or wait for the server's answer.
/// let published = publisher.publish(Publication::to_room("tenant:acme", "task.updated", data)).await?.await?;
/// println!("{} at offset {}", published.id, published.offset);
/// publisher.close(std::time::Duration::from_secs(10)).await?;
/// # Ok(()) }
/// ```
pub struct Publisher {
    tx: Option<mpsc::Sender<Job>>,
    shared: Arc<Shared>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The API key is a secret: never printed.
        f.debug_struct("Publisher").field("metrics", &self.metrics()).finish_non_exhaustive()
    }
}

/// The server's answer to one publication, when it comes. Dropping it does not cancel anything.
pub struct PublishHandle(oneshot::Receiver<Result<Published, Error>>);

impl std::future::Future for PublishHandle {
    type Output = Result<Published, Error>;

    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<Self::Output> {
        std::pin::Pin::new(&mut self.0).poll(cx).map(|r| r.unwrap_or(Err(Error::Closed)))
    }
}

impl Publisher {
    /// A publisher for the server at `url` (its origin, e.g. `http://127.0.0.1:3000`).
    pub fn builder(url: impl Into<String>) -> PublisherBuilder {
        PublisherBuilder {
            url: url.into(),
            api_key: None,
            queue: 10_000,
            backoff: BackoffStrategy::SocketIo { min_ms: 200, max_ms: 10_000, factor: 2.0, randomization: 0.5 },
            max_attempts: None,
            request_timeout: Duration::from_secs(10),
            batch_max: MAX_BATCH_EVENTS,
        }
    }

    /// Queues `publication`, waiting while the queue is full; the handle resolves with the
    /// server's answer (drop it to fire and forget).
    pub async fn publish(&self, publication: Publication) -> Result<PublishHandle, Error> {
        let tx = self.tx.as_ref().ok_or(Error::Closed)?;
        let (reply, rx) = oneshot::channel();
        self.shared.enqueued.fetch_add(1, Ordering::SeqCst);
        if tx.send(Job { publication, reply: Some(reply) }).await.is_err() {
            self.shared.enqueued.fetch_sub(1, Ordering::SeqCst);
            return Err(Error::Closed);
        }
        Ok(PublishHandle(rx))
    }

    /// Queues `publication` if there is room now; `Err(Error::Emit(SendBufferFull))` if not.
    pub fn try_publish(&self, publication: Publication) -> Result<PublishHandle, Error> {
        let tx = self.tx.as_ref().ok_or(Error::Closed)?;
        let (reply, rx) = oneshot::channel();
        self.shared.enqueued.fetch_add(1, Ordering::SeqCst);
        match tx.try_send(Job { publication, reply: Some(reply) }) {
            Ok(()) => Ok(PublishHandle(rx)),
            Err(e) => {
                self.shared.enqueued.fetch_sub(1, Ordering::SeqCst);
                Err(match e {
                    mpsc::error::TrySendError::Full(_) => Error::Emit(tidings_core::EmitError::SendBufferFull),
                    mpsc::error::TrySendError::Closed(_) => Error::Closed,
                })
            }
        }
    }

    /// Waits until every event queued before this call is published or has failed.
    pub async fn flush(&self) {
        let target = self.shared.enqueued.load(Ordering::SeqCst);
        loop {
            let progress = self.shared.progress.notified();
            tokio::pin!(progress);
            progress.as_mut().enable();
            if self.shared.done.load(Ordering::SeqCst) >= target {
                return;
            }
            progress.await;
        }
    }

    /// Stops taking events, waits at most `within` for the queued ones, then stops the worker.
    /// `Err(Error::Timeout)` if some were still unpublished (they count as failed).
    pub async fn close(mut self, within: Duration) -> Result<(), Error> {
        self.tx = None; // the worker ends once the queue is empty
        let Some(mut task) = self.task.take() else { return Ok(()) };
        if tokio::time::timeout(within, &mut task).await.is_ok() {
            return Ok(());
        }
        task.abort();
        let left = self.metrics().queued;
        self.shared.failed.fetch_add(left, Ordering::SeqCst);
        self.shared.done.fetch_add(left, Ordering::SeqCst);
        Err(Error::Timeout)
    }

    /// What the publisher did so far.
    pub fn metrics(&self) -> PublisherMetrics {
        let s = &self.shared;
        let done = s.done.load(Ordering::SeqCst);
        PublisherMetrics {
            published: s.published.load(Ordering::SeqCst),
            retried: s.retried.load(Ordering::SeqCst),
            failed: s.failed.load(Ordering::SeqCst),
            queued: s.enqueued.load(Ordering::SeqCst).saturating_sub(done),
            batches: s.batches.load(Ordering::SeqCst),
        }
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        // Without `close`, what is queued is still sent while the runtime lives.
        self.tx = None;
    }
}

/// Most events in one batch request (the contract's bound).
const MAX_BATCH_EVENTS: usize = 100;
/// Most bytes of a batch request's body (the reference server's default bound).
const MAX_BATCH_BYTES: usize = 1 << 20;

struct Worker {
    http: reqwest::Client,
    endpoint: String,
    batch_endpoint: String,
    /// Most events per request; 1 once the server turned out to have no batch endpoint.
    batch_max: usize,
    api_key: String,
    backoff: BackoffStrategy,
    max_attempts: Option<u32>,
    request_timeout: Duration,
    rng: Rng,
    shared: Arc<Shared>,
}

/// A queued event with its idempotency key and its request body, ready to send.
struct Ready {
    key: String,
    body: String,
    reply: Option<oneshot::Sender<Result<Published, Error>>>,
}

/// What one attempt came to.
enum Attempt<T> {
    Done(T),
    /// Try again, after this long if the server said so.
    Retry(Option<Duration>, String),
    Fail(Error),
}

/// The server's answer to one request that is not to be retried as it is.
struct Answer {
    status: u16,
    replayed: bool,
    text: String,
}

impl Worker {
    async fn run(mut self, mut rx: mpsc::Receiver<Job>) {
        // One request at a time keeps the order in which the events were queued.
        let mut next: Option<Ready> = None;
        loop {
            let first = match next.take() {
                Some(ready) => ready,
                None => match rx.recv().await {
                    Some(job) => self.ready(job),
                    None => break,
                },
            };
            // What else is queued already goes with it, within the batch's bounds.
            let mut bytes = first.body.len();
            let mut group = vec![first];
            while group.len() < self.batch_max {
                let Ok(job) = rx.try_recv() else { break };
                let ready = self.ready(job);
                bytes += ready.body.len() + 1;
                if bytes + 16 > MAX_BATCH_BYTES {
                    next = Some(ready);
                    break;
                }
                group.push(ready);
            }
            self.deliver(group).await;
        }
    }

    fn ready(&mut self, job: Job) -> Ready {
        let key = job.publication.idempotency_key.clone().unwrap_or_else(|| self.rng.token(20));
        let body = job.publication.body(&key).to_string();
        Ready { key, body, reply: job.reply }
    }

    /// Publishes `group` (in one batch request if it has several events), then answers each.
    async fn deliver(&mut self, group: Vec<Ready>) {
        if group.len() > 1 {
            let events: Vec<&str> = group.iter().map(|r| r.body.as_str()).collect();
            let body = format!(r#"{{"events":[{}]}}"#, events.join(","));
            let what = format!("a batch of {} events", group.len());
            match self.send(true, &body, &what, |a| batch_answer(a, &group)).await {
                Ok(results) => {
                    for (ready, result) in group.into_iter().zip(results) {
                        self.finish(ready, result);
                    }
                    return;
                }
                Err(Error::Rejected { status: 404 | 405, .. }) => {
                    tracing::debug!("the server has no batch endpoint: one request per event from now on");
                    self.batch_max = 1;
                }
                // Larger than this server takes at once: these go one by one.
                Err(Error::Rejected { status: 413, .. }) => {}
                Err(e) => {
                    for ready in group {
                        self.finish(ready, Err(e.clone()));
                    }
                    return;
                }
            }
        }
        for ready in group {
            let result = self.send(false, &ready.body, "an event", |a| single_answer(a, &ready.key)).await;
            self.finish(ready, result);
        }
    }

    fn finish(&self, ready: Ready, result: Result<Published, Error>) {
        match &result {
            Ok(_) => self.shared.published.fetch_add(1, Ordering::SeqCst),
            Err(_) => self.shared.failed.fetch_add(1, Ordering::SeqCst),
        };
        self.shared.done.fetch_add(1, Ordering::SeqCst);
        self.shared.progress.notify_waiters();
        if let Some(reply) = ready.reply {
            let _ = reply.send(result);
        }
    }

    /// Sends `body` (to the batch endpoint if `batch`) until `read` takes the answer or fails,
    /// retrying transient failures with the backoff.
    async fn send<T>(
        &mut self,
        batch: bool,
        body: &str,
        what: &str,
        read: impl Fn(Answer) -> Attempt<T>,
    ) -> Result<T, Error> {
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            if batch {
                self.shared.batches.fetch_add(1, Ordering::SeqCst);
            }
            let answer = match self.post(batch, body).await {
                Attempt::Done(answer) => read(answer),
                Attempt::Retry(after, why) => Attempt::Retry(after, why),
                Attempt::Fail(e) => Attempt::Fail(e),
            };
            match answer {
                Attempt::Done(done) => return Ok(done),
                Attempt::Fail(e) => return Err(e),
                Attempt::Retry(after, why) => {
                    if self.max_attempts.is_some_and(|max| attempt >= max) {
                        return Err(Error::GaveUp { attempts: attempt, last: why });
                    }
                    self.shared.retried.fetch_add(1, Ordering::SeqCst);
                    let delay = after
                        .unwrap_or_else(|| Duration::from_millis(self.backoff.delay_ms(attempt - 1, &mut self.rng)));
                    tracing::debug!(what, attempt, delay_ms = delay.as_millis() as u64, %why, "publish retried");
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }

    /// One request: its answer, or a transient failure to retry.
    async fn post(&self, batch: bool, body: &str) -> Attempt<Answer> {
        let request = self
            .http
            .post(if batch { &self.batch_endpoint } else { &self.endpoint })
            .header("content-type", "application/json")
            .header("x-internal-api-key", &self.api_key)
            .body(body.to_string())
            .timeout(self.request_timeout)
            .send();
        let resp = match request.await {
            Ok(r) => r,
            Err(e) => return Attempt::Retry(None, e.without_url().to_string()),
        };
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(|s| Duration::from_secs(s.min(300)));
        let replayed = resp.headers().get("idempotent-replayed").is_some_and(|v| v == "true");
        let text = match resp.text().await {
            Ok(t) => t,
            Err(e) => return Attempt::Retry(None, e.without_url().to_string()),
        };
        if transient(status) {
            return Attempt::Retry(retry_after, format!("HTTP {status}"));
        }
        Attempt::Done(Answer { status, replayed, text })
    }
}

/// Whether an answer with this status is worth retrying as it is.
fn transient(status: u16) -> bool {
    matches!(status, 408 | 425 | 429 | 500..=599)
}

/// A refusal's message: `code: what` from the reference server's `{"error", "code"}`, or the
/// answer's text.
fn refusal(text: &str) -> String {
    let v: Value = serde_json::from_str(text).unwrap_or(Value::Null);
    match (v.get("code").and_then(Value::as_str), v.get("error").and_then(Value::as_str)) {
        (Some(code), Some(what)) => format!("{code}: {what:.500}"),
        _ => format!("{text:.500}"),
    }
}

/// Where an event landed, from `{"id", "offset"}` (and `replayed` in a batch's results).
fn published(v: &Value, replayed: bool, key: &str) -> Option<Published> {
    let id = v.get("id").and_then(Value::as_str)?;
    let offset = v.get("offset").and_then(Value::as_u64)?;
    let replayed = replayed || v.get("replayed").and_then(Value::as_bool).unwrap_or(false);
    Some(Published { id: id.to_string(), offset, replayed, idempotency_key: key.to_string() })
}

/// The answer to `POST /internal/emit`.
fn single_answer(a: Answer, key: &str) -> Attempt<Published> {
    if !(200..300).contains(&a.status) {
        return Attempt::Fail(Error::Rejected { status: a.status, message: refusal(&a.text) });
    }
    let v: Value = serde_json::from_str(&a.text).unwrap_or(Value::Null);
    match published(&v, a.replayed, key) {
        Some(p) => Attempt::Done(p),
        None => Attempt::Fail(Error::Rejected {
            status: a.status,
            message: format!("the answer has no id and offset: {:.200}", a.text),
        }),
    }
}

/// The answer to `POST /internal/v1/emit/batch`: one result per event of `group`, in order.
fn batch_answer(a: Answer, group: &[Ready]) -> Attempt<Vec<Result<Published, Error>>> {
    if !(200..300).contains(&a.status) {
        return Attempt::Fail(Error::Rejected { status: a.status, message: refusal(&a.text) });
    }
    let v: Value = serde_json::from_str(&a.text).unwrap_or(Value::Null);
    let results = v.get("results").and_then(Value::as_array).filter(|r| r.len() == group.len());
    let Some(results) = results else {
        let message = format!("the answer has no result for each of the {} events: {:.200}", group.len(), a.text);
        return Attempt::Fail(Error::Rejected { status: a.status, message });
    };
    let mut out = Vec::with_capacity(results.len());
    for (r, ready) in results.iter().zip(group) {
        let Some(e) = r.get("error") else {
            out.push(published(r, false, &ready.key).ok_or_else(|| Error::Rejected {
                status: a.status,
                message: format!("a result has no id and offset: {:.200}", r.to_string()),
            }));
            continue;
        };
        let status = e.get("status").and_then(Value::as_u64).and_then(|s| u16::try_from(s).ok()).unwrap_or(400);
        if transient(status) {
            // Not in the contract (such a failure fails the whole request); the whole batch is
            // sent again with its keys, which keeps the order.
            return Attempt::Retry(None, format!("HTTP {status} for an event of the batch"));
        }
        let code = e.get("code").and_then(Value::as_str).unwrap_or("refused");
        let what = e.get("message").and_then(Value::as_str).unwrap_or("");
        out.push(Err(Error::Rejected { status, message: format!("{code}: {what:.500}") }));
    }
    Attempt::Done(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(keys: &[&str]) -> Vec<Ready> {
        keys.iter().map(|k| Ready { key: (*k).to_string(), body: String::new(), reply: None }).collect()
    }

    fn answer(status: u16, text: &str) -> Answer {
        Answer { status, replayed: false, text: text.to_string() }
    }

    #[test]
    fn a_batch_answer_is_read_per_event_and_never_trusted() {
        let g = group(&["a", "b", "c"]);
        let text = r#"{"results":[{"id":"evt_1","offset":1,"replayed":true},
            {"error":{"status":400,"code":"invalid_event","message":"reserved"}},{"id":"evt_2"}]}"#;
        let Attempt::Done(results) = batch_answer(answer(200, text), &g) else { panic!("not done") };
        assert_eq!(
            results[0],
            Ok(Published { id: "evt_1".into(), offset: 1, replayed: true, idempotency_key: "a".into() })
        );
        assert_eq!(results[1], Err(Error::Rejected { status: 400, message: "invalid_event: reserved".into() }));
        assert!(matches!(&results[2], Err(Error::Rejected { status: 200, message }) if message.contains("no id")));
        // Not one result per event, not JSON, a refusal of the whole batch: every event fails.
        for (status, text) in [(200, r#"{"results":[]}"#), (200, "<html>"), (200, "[1]")] {
            assert!(matches!(batch_answer(answer(status, text), &g), Attempt::Fail(Error::Rejected { .. })), "{text}");
        }
        let refused =
            batch_answer(answer(403, r#"{"error":"invalid x-internal-api-key","code":"invalid_api_key"}"#), &g);
        assert!(
            matches!(refused, Attempt::Fail(Error::Rejected { status: 403, ref message }) if message == "invalid_api_key: invalid x-internal-api-key")
        );
        // A transient status in a result (not in the contract): the whole batch again.
        let text = r#"{"results":[{"id":"evt_1","offset":1},{"error":{"status":503}},{"error":{}}]}"#;
        assert!(matches!(batch_answer(answer(200, text), &g), Attempt::Retry(None, _)));
        // A result's error without a status is a 400.
        let text = r#"{"results":[{"id":"evt_1","offset":1},{"error":{"status":70000}},{"error":"x"}]}"#;
        let Attempt::Done(results) = batch_answer(answer(200, text), &g) else { panic!("not done") };
        assert!(matches!(results[1], Err(Error::Rejected { status: 400, .. })));
        assert!(matches!(results[2], Err(Error::Rejected { status: 400, .. })));
    }

    #[test]
    fn a_single_answer_is_read_as_before() {
        let ok = Answer { status: 200, replayed: true, text: r#"{"id":"evt_9","offset":9}"#.into() };
        assert!(matches!(single_answer(ok, "k"), Attempt::Done(Published { offset: 9, replayed: true, .. })));
        assert!(matches!(single_answer(answer(200, "nope"), "k"), Attempt::Fail(Error::Rejected { status: 200, .. })));
        let plain = single_answer(answer(418, "short and stout"), "k");
        assert!(
            matches!(plain, Attempt::Fail(Error::Rejected { status: 418, ref message }) if message == "short and stout")
        );
    }
}
