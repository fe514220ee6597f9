//! # tidings-example-bot
//!
//! A bot on the `tidings` client: it subscribes to `task.created` (typed as
//! `Envelope<TaskEvent>`), assigns every new unassigned task to the next of its assignees
//! (round-robin) and announces it in a chat room.
//!
//! - The assignment is published with `tidings::Publisher` through the example server's internal API (`POST
//!   /internal/emit`, event `task.assigned` to `tenant:<id>`): the bot acts as a trusted backend
//!   service, since the example server keeps no task database. The idempotency key
//!   `bot-assign:<taskId>` makes a re-processed task (a replay from the feed, a restart) harmless.
//! - The announcement is a `chat.message` emit with an ack on the bot's own socket, with the
//!   idempotency key `bot-chat:<taskId>`.
//! - It runs unattended: the client reconnects by itself with backoff, the REST feed delivers
//!   `task.created` events while the socket is down, and a dev-login token is fetched again on
//!   every connection attempt, so an expired token is no reason to stop.

#![forbid(unsafe_code)]

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use base64::Engine as _;
use futures_util::StreamExt;
use serde_json::{Value, json};
use tidings::{Envelope, FeedConfig, Notice, Publication, Publisher, Tidings};
use tidings_example_catalogue::{ChatMessageSend, Direction, TASK_ASSIGNED, TASK_CREATED, is_known, validate};

/// Bot settings.
#[derive(Clone)]
pub struct BotConfig {
    /// The server (`http://127.0.0.1:3000`).
    pub server_url: String,
    /// A JWT for the bot; without it the bot logs in as `login_user` with `/api/dev/login`.
    pub token: Option<String>,
    /// Demo user to log in as when there is no token (default `bot`).
    pub login_user: String,
    /// Key for `POST /internal/emit`.
    pub internal_api_key: String,
    /// Users to assign tasks to, in turn.
    pub assignees: Vec<String>,
    /// Chat (in the bot's tenant) to announce assignments in.
    pub chat_id: String,
}

impl std::fmt::Debug for BotConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BotConfig")
            .field("server_url", &self.server_url)
            .field("login_user", &self.login_user)
            .field("assignees", &self.assignees)
            .field("chat_id", &self.chat_id)
            .finish_non_exhaustive()
    }
}

/// A task (fields the catalogue does not name are kept in `rest`).
pub use tidings_example_catalogue::Task;
/// The payload of `task.*` events, from the examples' event catalogue (examples/catalogue).
pub use tidings_example_catalogue::TaskEventData as TaskEvent;

/// Why the bot could not start or act.
#[derive(Debug)]
pub enum BotError {
    /// Logging in or calling the server's HTTP API failed.
    Http(String),
    /// The Socket.IO client failed.
    Client(tidings::Error),
}

impl std::fmt::Display for BotError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BotError::Http(m) => write!(f, "HTTP: {m}"),
            BotError::Client(e) => write!(f, "client: {e}"),
        }
    }
}

impl std::error::Error for BotError {}

impl From<tidings::Error> for BotError {
    fn from(e: tidings::Error) -> Self {
        BotError::Client(e)
    }
}

/// A connected bot.
#[derive(Debug)]
pub struct Bot {
    config: BotConfig,
    client: Tidings,
    publisher: Publisher,
    tenant: String,
    next: AtomicUsize,
}

async fn post_json(http: &reqwest::Client, url: &str, body: &Value) -> Result<Value, BotError> {
    let req = http.post(url).header("content-type", "application/json").body(body.to_string());
    let res = req.send().await.map_err(|e| BotError::Http(format!("POST {url}: {e}")))?;
    let status = res.status();
    let text = res.text().await.map_err(|e| BotError::Http(format!("POST {url}: {e}")))?;
    if !status.is_success() {
        return Err(BotError::Http(format!("POST {url}: HTTP {status}: {text}")));
    }
    serde_json::from_str(&text).map_err(|e| BotError::Http(format!("POST {url}: not JSON: {e}")))
}

async fn dev_login(http: &reqwest::Client, url: &str, user: &str) -> Result<String, BotError> {
    let v = post_json(http, &format!("{url}/api/dev/login"), &json!({ "userId": user })).await?;
    v.get("token")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| BotError::Http("no token in the login answer".into()))
}

fn to_json(v: &impl serde::Serialize) -> Result<Value, BotError> {
    serde_json::to_value(v).map_err(|e| BotError::Http(format!("encoding a payload: {e}")))
}

/// The `tenantId` claim of a JWT (read, not verified: the server verifies it).
fn tenant_of(token: &str) -> Option<String> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).ok()?;
    let v: Value = serde_json::from_slice(&bytes).ok()?;
    v.get("tenantId")?.as_str().map(str::to_string)
}

impl Bot {
    /// Logs in (unless a token is configured), connects, subscribes and joins the chat room.
    pub async fn connect(config: BotConfig) -> Result<Bot, BotError> {
        let url = config.server_url.trim_end_matches('/').to_string();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| BotError::Http(e.to_string()))?;
        let token = match &config.token {
            Some(t) => t.clone(),
            None => dev_login(&http, &url, &config.login_user).await?,
        };
        let tenant = tenant_of(&token).ok_or_else(|| BotError::Http("the token has no tenantId claim".into()))?;
        // A fresh token for every connection attempt: an expired one never stops the bot.
        let provider_http = http.clone();
        let (static_token, user, provider_url) = (config.token.clone(), config.login_user.clone(), url.clone());
        let first = Arc::new(std::sync::Mutex::new(Some(token)));
        let mut feed = FeedConfig::new(format!("{url}/api/polling/{tenant}"));
        feed.after = Duration::from_secs(2);
        let client = Tidings::builder(&url)
            .auth_provider(move |_ns| {
                let (http, static_token, user, url, first) =
                    (provider_http.clone(), static_token.clone(), user.clone(), provider_url.clone(), first.clone());
                async move {
                    let cached = first.lock().ok().and_then(|mut f| f.take());
                    let token = match (static_token, cached) {
                        (Some(t), _) | (None, Some(t)) => t,
                        (None, None) => dev_login(&http, &url, &user).await.map_err(|e| e.to_string())?,
                    };
                    Ok(json!({ "token": token }))
                }
            })
            .feed(feed)
            .validate(fits_the_catalogue)
            .ack_timeout(Duration::from_secs(10))
            .build()?;
        client.wait_connected(Duration::from_secs(20)).await?;
        let room = format!("chat:{tenant}:{}", config.chat_id);
        let ack: Value = client.join(&room).await?.deserialize()?;
        if ack.get("ok") != Some(&Value::Bool(true)) {
            return Err(BotError::Http(format!("joining {room} was refused: {ack}")));
        }
        tracing::info!(%url, %tenant, %room, "bot connected");
        let publisher = Publisher::builder(&url).api_key(&config.internal_api_key).build()?;
        Ok(Bot {
            config: BotConfig { server_url: url, ..config },
            client,
            publisher,
            tenant,
            next: AtomicUsize::new(0),
        })
    }

    /// The bot's tenant.
    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    /// Handles events until `shutdown` completes, then disconnects.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), BotError> {
        let mut tasks = self.client.on::<Envelope<TaskEvent>>(TASK_CREATED);
        let mut notices = self.client.notices();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                notice = notices.recv() => match notice {
                    Some(Notice::State(s)) => tracing::info!(state = ?s, "connection"),
                    Some(Notice::ConnectError(e)) => tracing::warn!(message = %e.message, will_retry = e.will_retry, "connect error"),
                    // The client logged it too; the bot never handles an event that does not fit.
                    Some(Notice::Invalid(i)) => tracing::warn!(event = %i.event, problems = ?i.problems, "skipped an event that does not fit the catalogue"),
                    Some(other) => tracing::debug!(notice = ?other, "notice"),
                    None => break,
                },
                event = tasks.next() => match event {
                    Some(Ok(ev)) => {
                        if let Err(e) = self.handle(&ev.data).await {
                            // Logged and skipped: the next event may well succeed.
                            tracing::error!(error = %e, event_id = %ev.data.id, "could not handle task.created");
                        }
                    }
                    Some(Err(e)) => tracing::warn!(error = %e, "skipping a task.created that does not fit"),
                    None => break,
                },
            }
        }
        tracing::info!("bot stopping");
        self.client.close().await;
        Ok(())
    }

    fn pick_assignee(&self) -> Option<String> {
        let n = self.config.assignees.len();
        if n == 0 {
            return None;
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed) % n;
        self.config.assignees.get(i).cloned()
    }

    /// Reacts to one `task.created`: assigns it if unassigned and announces it. Returns the
    /// assignee, or `None` when there was nothing to do.
    pub async fn handle(&self, ev: &Envelope<TaskEvent>) -> Result<Option<String>, BotError> {
        let t = &ev.data;
        if t.tenant_id != self.tenant || t.task.assignee_id.is_some() {
            return Ok(None);
        }
        let Some(assignee) = self.pick_assignee() else { return Ok(None) };
        let mut task = t.task.clone();
        task.assignee_id = Some(assignee.clone());
        let data = TaskEvent {
            task_id: t.task_id.clone(),
            tenant_id: self.tenant.clone(),
            user_id: Some(assignee.clone()),
            assigned_by: Some(self.config.login_user.clone()),
            task,
        };
        // Through the publisher: retried with the same key until the server has it, once.
        let assigned = Publication::to_room(format!("tenant:{}", self.tenant), TASK_ASSIGNED, to_json(&data)?)
            .idempotency_key(format!("bot-assign:{}", t.task_id))
            .correlation_id(ev.id.clone());
        self.publisher.publish(assigned).await?.await?;
        let title = t.task.title.as_deref().filter(|s| !s.is_empty()).unwrap_or(t.task_id.as_str());
        let message = ChatMessageSend {
            chat_id: Some(self.config.chat_id.clone()),
            room: None,
            text: format!("Assigned \u{201c}{title}\u{201d} to {assignee}"),
            idempotency_key: Some(format!("bot-chat:{}", t.task_id)),
        };
        let ack: Value = self
            .client
            .emit_with_ack(tidings_example_catalogue::CHAT_MESSAGE, &message, Duration::from_secs(10))
            .await?
            .deserialize()?;
        if ack.get("ok") != Some(&Value::Bool(true)) {
            tracing::warn!(%ack, "the chat message was refused");
        }
        tracing::info!(task = %t.task_id, %assignee, "assigned");
        Ok(Some(assignee))
    }
}

/// The client's validator: a server event of the catalogue must fit it (its first argument, the
/// envelope), or no subscription gets it; other events pass.
fn fits_the_catalogue(ev: &tidings::Event) -> Result<(), Vec<String>> {
    if !is_known(Direction::ServerToClient, &ev.name) {
        return Ok(());
    }
    let payload = match ev.args.get(0).map(serde_json::from_str::<Value>) {
        Some(Ok(v)) => v,
        Some(Err(e)) => return Err(vec![format!("$: not JSON: {e}")]),
        None => Value::Null,
    };
    validate(Direction::ServerToClient, &ev.name, &payload).map_err(|ps| ps.iter().map(ToString::to_string).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_tenant_claim() {
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(br#"{"sub":"bot","tenantId":"acme"}"#);
        assert_eq!(tenant_of(&format!("h.{payload}.s")).as_deref(), Some("acme"));
        assert_eq!(tenant_of("nope"), None);
    }

    #[test]
    fn task_events_keep_unknown_fields() {
        let v = json!({ "taskId": "t1", "tenantId": "acme", "task": { "id": "t1", "title": "x", "priority": 2 } });
        let e: TaskEvent = serde_json::from_value(v).unwrap();
        assert_eq!(e.task.assignee_id, None);
        assert_eq!(serde_json::to_value(&e.task).unwrap()["priority"], 2);
    }
}
