//! The HTTP API: health, demo login, the internal emit API and the REST feed.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::DefaultBodyLimit;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router, routing};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tidings_example_catalogue::{self as catalogue, Direction, Task, TaskEventData};

use crate::app::{App, Publish, random_id};
use crate::conn::Peer;
use crate::error::ApiError;
use crate::events::Events;
use crate::jwt::{self, AuthError, Claims};
use crate::rooms::{Room, valid_id};
use crate::{clock, demo};

/// Feed page size when the request names none, and the most it may ask for.
const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1000;

/// The API routes (without Socket.IO, CORS or static files).
pub fn routes(app: Arc<App>) -> Router {
    let max_batch = max_batch_bytes(app.config.max_body_bytes);
    Router::new()
        .route("/health", routing::get(health))
        .route("/api/dev/login", routing::post(dev_login))
        .route("/api/dev/users", routing::get(dev_users))
        .route("/api/dev/tasks", routing::post(dev_create_task))
        .route("/internal/emit", routing::post(internal_emit))
        // Version 1 of the contract (docs/PUBLISHING.md); the path above is its alias.
        .route("/internal/v1/emit", routing::post(internal_emit))
        .route("/internal/v1/emit/batch", routing::post(internal_emit_batch).layer(DefaultBodyLimit::max(max_batch)))
        .route("/api/polling/{tenant_id}/events", routing::get(feed))
        .route("/api/polling/{tenant_id}/events/acknowledge", routing::post(acknowledge))
        .with_state(app)
}

/// Parses a JSON body, turning every failure (too large, not JSON, wrong shape) into a clear 4xx.
fn json_body<T: DeserializeOwned>(body: Result<Bytes, BytesRejection>, shape: &str) -> Result<T, ApiError> {
    let body = body.map_err(|e| ApiError {
        status: e.status(),
        code: if e.status() == StatusCode::PAYLOAD_TOO_LARGE { "body_too_large" } else { "bad_body" },
        message: e.body_text(),
        retry_after_secs: None,
    })?;
    serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request("bad_json", format!("the body must be JSON of the form {shape}: {e}")))
}

/// Equality of secrets in constant time (and independent of their lengths).
fn secrets_equal(a: &str, b: &str) -> bool {
    let (a, b) = (Sha256::digest(a.as_bytes()), Sha256::digest(b.as_bytes()));
    a.iter().zip(b.iter()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn bearer(app: &App, headers: &HeaderMap) -> Result<Claims, ApiError> {
    let value = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or("");
    let Some(token) = value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer ")) else {
        return Err(AuthError::Missing.into());
    };
    Ok(jwt::verify(token, app.config.jwt_secret.as_bytes(), clock::now_secs())?)
}

/// `GET /health`: `200 {"status":"ok","sockets":N}`; with the Redis log, `503` with
/// `"status":"unavailable"` while Redis does not answer (a load balancer then sends clients to
/// the other nodes).
async fn health(State(app): State<Arc<App>>) -> (StatusCode, Json<Value>) {
    let sockets = app.io.sockets().len();
    match &app.events {
        Events::Redis(r) if !r.ping().await => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "unavailable", "sockets": sockets, "redis": false })),
        ),
        Events::Redis(_) => (StatusCode::OK, Json(json!({ "status": "ok", "sockets": sockets, "redis": true }))),
        Events::File { .. } => (StatusCode::OK, Json(json!({ "status": "ok", "sockets": sockets }))),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LoginBody {
    user_id: String,
}

/// DEMO ONLY: a token for one of the built-in demo users, no password. Disabled by
/// `TIDINGS_DEV_LOGIN=0` / `--no-dev-login`.
async fn dev_login(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    app.limits.per_ip.take(&peer.addr.ip().to_string()).map_err(ApiError::rate_limited)?;
    if !app.config.dev_login {
        return Err(ApiError::not_found(
            "dev_login_disabled",
            "dev login is disabled on this server (TIDINGS_DEV_LOGIN=0)",
        ));
    }
    let LoginBody { user_id } = json_body(body, r#"{"userId": "alice"}"#)?;
    let Some(user) = demo::user(&user_id) else {
        return Err(ApiError::bad_request(
            "unknown_user",
            format!("unknown demo user {user_id:?}; demo users: {}", demo::ids().join(", ")),
        ));
    };
    let now = clock::now_secs();
    let exp = now + i64::try_from(app.config.token_ttl.as_secs()).unwrap_or(i64::MAX / 2);
    let claims = Claims {
        sub: user.id.into(),
        tenant_id: user.tenant.into(),
        name: Some(user.name.into()),
        exp,
        iat: Some(now),
    };
    let token = jwt::sign(&claims, app.config.jwt_secret.as_bytes());
    tracing::info!(user = user.id, tenant = user.tenant, "demo login");
    Ok(Json(json!({
        "token": token,
        "user": { "id": user.id, "tenantId": user.tenant, "name": user.name },
        "expiresAt": clock::iso8601(exp.saturating_mul(1000)),
        "demo": true,
    })))
}

async fn dev_users(State(app): State<Arc<App>>) -> Result<Json<Value>, ApiError> {
    if !app.config.dev_login {
        return Err(ApiError::not_found(
            "dev_login_disabled",
            "dev login is disabled on this server (TIDINGS_DEV_LOGIN=0)",
        ));
    }
    let users: Vec<Value> =
        demo::USERS.iter().map(|u| json!({ "id": u.id, "tenantId": u.tenant, "name": u.name })).collect();
    Ok(Json(json!({ "users": users })))
}

#[derive(Deserialize)]
struct TaskBody {
    title: String,
}

/// Longest demo task title, in characters.
const MAX_TASK_TITLE: usize = 200;

/// DEMO ONLY: `POST /api/dev/tasks` `{"title": "..."}` with a Bearer token publishes
/// `task.created` to the caller's tenant room (the example keeps no task database; a real app's
/// task service would do this through `/internal/emit`). Off with the dev login.
async fn dev_create_task(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    app.limits.per_ip.take(&peer.addr.ip().to_string()).map_err(ApiError::rate_limited)?;
    if !app.config.dev_login {
        return Err(ApiError::not_found(
            "dev_login_disabled",
            "dev login is disabled on this server (TIDINGS_DEV_LOGIN=0)",
        ));
    }
    let c = bearer(&app, &headers)?;
    let TaskBody { title } = json_body(body, r#"{"title": "Write the docs"}"#)?;
    let title = title.trim();
    if title.is_empty() || title.chars().count() > MAX_TASK_TITLE {
        return Err(ApiError::bad_request("invalid_title", format!("title must be 1-{MAX_TASK_TITLE} characters")));
    }
    let task_id = random_id("task");
    let data = TaskEventData {
        task_id: task_id.clone(),
        tenant_id: c.tenant_id.clone(),
        user_id: Some(c.sub.clone()),
        assigned_by: None,
        task: Task {
            id: task_id.clone(),
            title: Some(title.to_string()),
            assignee_id: None,
            created_by: Some(c.sub.clone()),
            rest: serde_json::Map::new(),
        },
    };
    let data = serde_json::to_value(&data).map_err(|e| ApiError::internal(format!("encoding task.created: {e}")))?;
    let published = app
        .publish(Publish {
            tenant: c.tenant_id.clone(),
            rooms: vec![Room::Tenant(c.tenant_id.clone())],
            event: catalogue::TASK_CREATED.into(),
            data,
            idempotency_key: None,
            user_id: Some(c.sub.clone()),
            correlation_id: None,
            session_id: None,
        })
        .await?;
    Ok(Json(json!({ "id": published.id, "offset": published.offset, "taskId": task_id })))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EmitBody {
    to: Target,
    event: String,
    #[serde(default)]
    data: Value,
    idempotency_key: Option<String>,
    tenant_id: Option<String>,
    user_id: Option<String>,
    correlation_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Target {
    users: Option<Vec<String>>,
    room: Option<String>,
}

const EMIT_SHAPE: &str = r#"{"to": {"users": ["alice"]} | {"room": "tenant:acme"}, "event": "task.created", "data": {...}, "idempotencyKey"?: "...", "tenantId"?: "acme"}"#;

/// Most events in one `POST /internal/v1/emit/batch`.
pub const MAX_BATCH_EVENTS: usize = 100;

/// Most bytes of a batch request's body, for a server whose single-event bound is
/// `max_body_bytes` (64 KiB by default: a batch takes up to 1 MiB).
pub fn max_batch_bytes(max_body_bytes: usize) -> usize {
    max_body_bytes.saturating_mul(16)
}

const BATCH_SHAPE: &str = r#"{"events": [<the body of POST /internal/emit>, ...]} (1-100 events)"#;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchBody {
    events: Vec<Box<serde_json::value::RawValue>>,
}

/// Checks the `x-internal-api-key` header: `401` missing, `403` wrong (and guessing keys costs
/// a token of the caller's address).
fn internal_auth(app: &App, peer: &Peer, headers: &HeaderMap) -> Result<(), ApiError> {
    let key = headers.get("x-internal-api-key").and_then(|v| v.to_str().ok());
    let refused = match key {
        None => ApiError {
            status: StatusCode::UNAUTHORIZED,
            code: "missing_api_key",
            message: "missing x-internal-api-key header".into(),
            retry_after_secs: None,
        },
        Some(k) if !secrets_equal(k, &app.config.internal_api_key) => {
            ApiError::forbidden("invalid_api_key", "invalid x-internal-api-key")
        }
        Some(_) => return Ok(()),
    };
    app.limits.per_ip.take(&peer.addr.ip().to_string()).map_err(ApiError::rate_limited)?;
    Err(refused)
}

/// `POST /internal/emit` (and `/internal/v1/emit`): one event (docs/PUBLISHING.md).
async fn internal_emit(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    internal_auth(&app, &peer, &headers)?;
    // One key is configured: one bucket.
    app.limits.emit.take("internal").map_err(ApiError::rate_limited)?;
    let published = emit_event(&app, json_body(body, EMIT_SHAPE)?).await?;
    let mut res = Json(json!({ "id": published.id, "offset": published.offset })).into_response();
    if published.replayed {
        res.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    Ok(res)
}

/// `POST /internal/v1/emit/batch` `{"events": [...]}`: 1 to [`MAX_BATCH_EVENTS`] events of the
/// single emit's shape, published in order, each as `POST /internal/emit` would (its own
/// idempotency key, its own refusal). Answers `200 {"results": [...]}`, one per event in order:
/// `{"id", "offset", "replayed"}` or `{"error": {"status", "code", "message"}}`. A transient
/// failure (the log cannot be written: 5xx) answers that error for the whole request: the events
/// before it are stored, and a retry with the same keys replays them.
async fn internal_emit_batch(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    internal_auth(&app, &peer, &headers)?;
    let BatchBody { events } = json_body(body, BATCH_SHAPE)?;
    if events.is_empty() || events.len() > MAX_BATCH_EVENTS {
        return Err(ApiError::bad_request(
            "invalid_batch",
            format!("a batch has 1-{MAX_BATCH_EVENTS} events, not {}", events.len()),
        ));
    }
    // Each event counts, as if it came alone.
    app.limits.emit.take_n("internal", events.len()).map_err(ApiError::rate_limited)?;
    let mut results = Vec::with_capacity(events.len());
    for raw in events {
        let published = if raw.get().len() > app.config.max_body_bytes {
            Err(ApiError {
                status: StatusCode::PAYLOAD_TOO_LARGE,
                code: "event_too_large",
                message: format!("an event is at most {} bytes", app.config.max_body_bytes),
                retry_after_secs: None,
            })
        } else {
            match serde_json::from_str::<EmitBody>(raw.get()) {
                Ok(b) => emit_event(&app, b).await,
                Err(e) => {
                    Err(ApiError::bad_request("bad_json", format!("each event must be of the form {EMIT_SHAPE}: {e}")))
                }
            }
        };
        results.push(match published {
            Ok(p) => json!({ "id": p.id, "offset": p.offset, "replayed": p.replayed }),
            Err(e) if e.status.is_server_error() || e.status == StatusCode::TOO_MANY_REQUESTS => return Err(e),
            Err(e) => json!({ "error": { "status": e.status.as_u16(), "code": e.code, "message": e.message } }),
        });
    }
    Ok(Json(json!({ "results": results })))
}

/// Checks one event (its target, tenant, key and name) and publishes it: the single emit and
/// each event of a batch.
async fn emit_event(app: &Arc<App>, b: EmitBody) -> Result<crate::app::Published, ApiError> {
    let rooms = match (b.to.users, b.to.room) {
        (Some(users), None) if !users.is_empty() && users.len() <= 1000 => {
            if let Some(bad) = users.iter().find(|u| !valid_id(u)) {
                return Err(ApiError::bad_request("invalid_user", format!("invalid user id {bad:?}")));
            }
            users.into_iter().map(Room::User).collect::<Vec<_>>()
        }
        (None, Some(room)) => vec![Room::parse(&room).map_err(|m| ApiError::bad_request("invalid_room", m))?],
        _ => {
            return Err(ApiError::bad_request(
                "invalid_target",
                "\"to\" must be {\"users\": [1-1000 ids]} or {\"room\": name}",
            ));
        }
    };
    let data_tenant = b.data.get("tenantId").and_then(Value::as_str).map(str::to_string);
    let room_tenant = rooms.first().and_then(Room::tenant).map(str::to_string);
    let tenant = match (b.tenant_id, room_tenant) {
        (Some(t), Some(r)) if t != r => {
            return Err(ApiError::bad_request(
                "tenant_mismatch",
                format!("tenantId {t:?} but the room is of tenant {r:?}"),
            ));
        }
        (Some(t), _) | (None, Some(t)) => t,
        (None, None) => data_tenant.ok_or_else(|| {
            ApiError::bad_request("missing_tenant", "sending to users needs \"tenantId\" (in the body or in data)")
        })?,
    };
    if !valid_id(&tenant) {
        return Err(ApiError::bad_request("invalid_tenant", format!("invalid tenant id {tenant:?}")));
    }
    if b.idempotency_key.as_ref().is_some_and(|k| k.is_empty() || k.len() > 200) {
        return Err(ApiError::bad_request("invalid_idempotency_key", "idempotencyKey must be 1-200 characters"));
    }
    let user_id = b.user_id.or_else(|| b.data.get("userId").and_then(Value::as_str).map(str::to_string));
    // The event catalogue (examples/catalogue): a catalogue event whose data does not fit is
    // reported here and still relayed (the server relays what producers send; clients validate
    // what they receive).
    if catalogue::is_known(Direction::ServerToClient, &b.event)
        && let Err(problems) = catalogue::validate_data(Direction::ServerToClient, &b.event, &b.data)
    {
        tracing::warn!(event = %b.event, problems = %catalogue::describe(&problems), "emitted data does not fit the event catalogue");
    }
    app.publish(Publish {
        tenant,
        rooms,
        event: b.event,
        data: b.data,
        idempotency_key: b.idempotency_key.map(|k| format!("internal:{k}")),
        user_id,
        correlation_id: b.correlation_id,
        session_id: None,
    })
    .await
}

fn tenant_claims(app: &App, headers: &HeaderMap, tenant_id: &str) -> Result<Claims, ApiError> {
    let claims = bearer(app, headers)?;
    if claims.tenant_id != tenant_id {
        return Err(ApiError::forbidden(
            "wrong_tenant",
            format!("this token is for tenant {:?}, not {tenant_id:?}", claims.tenant_id),
        ));
    }
    Ok(claims)
}

/// Where a feed read starts: the offset of the last event the caller already has.
async fn start_offset(app: &App, tenant: &str, since: Option<&str>, c: &Claims) -> Result<u64, ApiError> {
    let head = app.events.head(tenant).await.map_err(ApiError::unavailable)?;
    let Some(since) = since.filter(|s| !s.is_empty()) else {
        let acked = app.events.acked(tenant, &c.sub).await.map_err(ApiError::unavailable)?;
        return Ok(acked.unwrap_or(head).min(head));
    };
    if since.bytes().all(|b| b.is_ascii_digit()) {
        let n: u64 = since.parse().map_err(|_| ApiError::bad_request("bad_cursor", "cursor out of range"))?;
        return Ok(n.min(head));
    }
    if let Some(offset) = app.events.offset_of(tenant, since).await.map_err(ApiError::unavailable)? {
        return Ok(offset);
    }
    if let Some(ms) = clock::parse_iso8601(since) {
        return app.events.offset_at_time(tenant, ms).await.map_err(ApiError::unavailable);
    }
    // An envelope id the retention deleted is not told apart from one never logged: both are
    // unknown. The message says where the log starts when it no longer starts at 1.
    let first = app.events.first_offset(tenant).await.map_err(ApiError::unavailable)?;
    let kept = if first > 1 {
        format!(" (events before offset {first} are no longer kept: since={} reads from the oldest kept)", first - 1)
    } else {
        String::new()
    };
    Err(ApiError::bad_request(
        "unknown_cursor",
        format!(
            "unknown cursor {since:?}: pass a cursor this feed returned, an event id, or an ISO 8601 UTC time{kept}"
        ),
    ))
}

/// Which log entries the caller may read.
fn visible_to(c: &Claims) -> impl Fn(&crate::store::LogEntry) -> bool + Clone + Send + Sync + 'static {
    let (user, tenant) = (c.sub.clone(), c.tenant_id.clone());
    move |e| e.visible_to(&user, &tenant)
}

/// One event of a feed page: `{id, event, data, offset}` (`data` is the envelope the socket sends).
fn feed_event(e: &crate::store::LogEntry) -> Value {
    json!({ "id": e.envelope.id, "event": e.envelope.kind, "data": e.envelope, "offset": e.offset })
}

/// `GET /api/polling/:tenantId/events?before=&limit=`: the page of older events instead, the last
/// `limit` before offset `before`, oldest first, with `cursor` to pass as the next `before`. The
/// page that reaches the oldest kept event of a log whose retention deleted older ones says so:
/// `"truncated": {"from": 1, "to": T}`.
///
/// `GET /api/polling/:tenantId/events?since=&limit=`: the events after `since` that the caller
/// may see, oldest first, `{events: [{id, event, data, offset}], cursor}`. One read looks at no
/// more than [`crate::store::MAX_SCAN`] entries; `cursor` is past the last one looked at. When
/// the retention (file or Redis) deleted events right after `since`, the page starts at the
/// oldest kept one and says `"truncated": {"from": F, "to": T}` (offsets F to T are gone).
async fn feed(
    State(app): State<Arc<App>>,
    Path(tenant_id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let c = tenant_claims(&app, &headers, &tenant_id)?;
    let (mut since, mut limit, mut before) = (None, DEFAULT_LIMIT, None);
    for (k, v) in form_pairs(query.as_deref().unwrap_or("")) {
        match k.as_str() {
            "since" => since = Some(v),
            "before" => {
                before =
                    Some(v.parse::<u64>().map_err(|_| {
                        ApiError::bad_request("bad_cursor", "before must be an offset (a whole number)")
                    })?);
            }
            "limit" => {
                limit = v
                    .parse::<usize>()
                    .ok()
                    .filter(|n| *n >= 1)
                    .ok_or_else(|| ApiError::bad_request("bad_limit", "limit must be a positive integer"))?
                    .min(MAX_LIMIT);
            }
            _ => {}
        }
    }
    if let Some(before) = before {
        if since.is_some() {
            return Err(ApiError::bad_request("bad_cursor", "give since (newer events) or before (older), not both"));
        }
        let page =
            app.events.read_back(&tenant_id, before, limit, visible_to(&c)).await.map_err(ApiError::unavailable)?;
        let events: Vec<Value> = page.entries.iter().map(|e| feed_event(e)).collect();
        // Older events may remain while the looking did not reach the start of the log.
        let first = app.events.first_offset(&tenant_id).await.map_err(ApiError::unavailable)?;
        let has_more = page.cursor > first.max(1);
        let mut body = serde_json::Map::new();
        body.insert("events".into(), Value::Array(events));
        body.insert("cursor".into(), json!(page.cursor));
        body.insert("hasMore".into(), json!(has_more));
        // The start of what is kept was reached, and the retention deleted older events.
        let gone_to = first.min(before).saturating_sub(1);
        if !has_more && first > 1 && gone_to >= 1 {
            body.insert("truncated".into(), json!({ "from": 1, "to": gone_to }));
        }
        return Ok(Json(Value::Object(body)));
    }
    let start = start_offset(&app, &tenant_id, since.as_deref(), &c).await?;
    let page = app.events.read(&tenant_id, start, limit, visible_to(&c)).await.map_err(ApiError::unavailable)?;
    let events: Vec<Value> = page.entries.iter().map(|e| feed_event(e)).collect();
    let mut body = serde_json::Map::new();
    body.insert("events".into(), Value::Array(events));
    body.insert("cursor".into(), json!(page.cursor));
    body.insert("hasMore".into(), json!(page.cursor < page.head));
    // The retention deleted events after `since`: the page starts at the oldest kept one.
    if let Some((from, to)) = page.truncated {
        body.insert("truncated".into(), json!({ "from": from, "to": to }));
    }
    Ok(Json(Value::Object(body)))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AckBody {
    event_ids: Vec<String>,
}

/// `POST /api/polling/:tenantId/events/acknowledge` `{eventIds: [...]}`: remembers (in memory)
/// the caller's latest acknowledged event, where a read without `since` starts.
async fn acknowledge(
    State(app): State<Arc<App>>,
    Path(tenant_id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let c = tenant_claims(&app, &headers, &tenant_id)?;
    let AckBody { event_ids } = json_body(body, r#"{"eventIds": ["evt_..."]}"#)?;
    if event_ids.len() > MAX_LIMIT {
        return Err(ApiError::bad_request("too_many_ids", format!("at most {MAX_LIMIT} eventIds per request")));
    }
    let mut known = 0usize;
    let mut highest = 0u64;
    // Only recent events are looked up: an id older than that is not counted.
    for id in &event_ids {
        if let Some(o) = app.events.recent_offset_of(&tenant_id, id).await.map_err(ApiError::unavailable)? {
            known += 1;
            highest = highest.max(o);
        }
    }
    if highest > 0 {
        app.events.ack(&c.tenant_id, &c.sub, highest).await.map_err(ApiError::unavailable)?;
    }
    Ok(Json(json!({ "ok": true, "acknowledged": known })))
}

/// Decodes `application/x-www-form-urlencoded` pairs (`+` is a space, `%XX` a byte).
fn form_pairs(q: &str) -> Vec<(String, String)> {
    fn decode(s: &str) -> String {
        let mut out = Vec::with_capacity(s.len());
        let mut bytes = s.bytes();
        while let Some(b) = bytes.next() {
            match b {
                b'+' => out.push(b' '),
                b'%' => {
                    let hex: Vec<u8> = bytes.clone().take(2).collect();
                    match std::str::from_utf8(&hex).ok().and_then(|h| u8::from_str_radix(h, 16).ok()) {
                        Some(v) if hex.len() == 2 => {
                            out.push(v);
                            bytes.nth(1);
                        }
                        _ => out.push(b'%'),
                    }
                }
                b => out.push(b),
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (decode(k), decode(v)),
            None => (decode(p), String::new()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_decoding_and_secrets() {
        assert_eq!(
            form_pairs("since=2026-01-01T00%3A00%3A00Z&limit=5&x&bad=%zz"),
            vec![
                ("since".into(), "2026-01-01T00:00:00Z".into()),
                ("limit".into(), "5".into()),
                ("x".into(), String::new()),
                ("bad".into(), "%zz".into())
            ]
        );
        assert!(secrets_equal("k", "k"));
        assert!(!secrets_equal("k", "k2"));
    }
}
