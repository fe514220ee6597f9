//! The Socket.IO side: the JWT middleware, auto-joined rooms, `room:join`/`room:leave`,
//! `join-tenant` and `chat.message`.
//!
//! # CONNECT_ERROR
//!
//! socketioxide 0.18 sends a middleware error as `{"message": "<Display of the error>"}` and has
//! no way to add `data`, so the message carries a stable code before the first colon:
//! `"token_expired: token expired 12 s ago; log in again"`. Clients switch on
//! `message.split(':')[0]`; the codes are those of [`crate::jwt::AuthError::code`].
//!
//! # Acks
//!
//! Every client event with an ack is answered `{"ok": true, ...}` or
//! `{"ok": false, "error": "<what is wrong>"}`; a bad payload never disconnects the socket.

use std::sync::Arc;

use serde_json::{Value, json};
use socketioxide::extract::{AckSender, SocketRef, TryData};
use socketioxide::socket::DisconnectReason;
use tidings_example_catalogue::{self as catalogue, ChatMessage, ChatMessageData, ChatMessageSend, Direction};

use crate::app::{App, Publish, random_id};
use crate::jwt::{self, AuthError, Claims};
use crate::rooms::{Room, valid_id};
use crate::{clock, error::ApiError};

/// Longest chat message, in characters.
const MAX_CHAT_TEXT: usize = 4000;

/// Registers the main namespace with its middleware and handlers.
pub fn attach(app: &Arc<App>) {
    let mw_app = app.clone();
    // Handlers are registered here, in the middleware, and not in the connect handler:
    // socketioxide (0.18) sends the CONNECT ack before it spawns the (always async) connect
    // handler, so an event the client sends right after the ack (a `room:join`) could arrive
    // before its handler exists and be dropped. The middleware runs before the ack.
    let middleware = move |s: SocketRef, TryData(auth): TryData<Value>| async move {
        let token = auth.ok().and_then(|a| a.get("token").and_then(Value::as_str).map(str::to_string));
        let claims =
            jwt::verify(token.as_deref().unwrap_or(""), mw_app.config.jwt_secret.as_bytes(), clock::now_secs())
                .inspect_err(|e| tracing::info!(sid = %s.id, code = e.code(), "connection refused"))?;
        s.extensions.insert(claims);
        on_connect(&mw_app, s);
        Ok::<(), AuthError>(())
    };
    app.io.ns("/", socketioxide::handler::ConnectHandler::with(async |_: SocketRef| {}, middleware));
}

fn on_connect(app: &Arc<App>, s: SocketRef) {
    let Some(claims) = s.extensions.get::<Claims>() else {
        // The middleware always inserts the claims; refuse rather than run unauthenticated.
        let _ = s.disconnect();
        return;
    };
    s.join(vec![format!("user:{}", claims.sub), format!("tenant:{}", claims.tenant_id)]);
    tracing::info!(sid = %s.id, user = %claims.sub, tenant = %claims.tenant_id, "connected");

    let c = claims.clone();
    s.on("room:join", move |s: SocketRef, TryData(d): TryData<Value>, ack: AckSender| async move {
        let reply = match requested_room(d.ok().as_ref(), &c) {
            Ok(room) => {
                s.join(room.name());
                tracing::debug!(sid = %s.id, room = %room.name(), "joined");
                json!({ "ok": true, "room": room.name() })
            }
            Err(error) => json!({ "ok": false, "error": error }),
        };
        let _ = ack.send(&reply);
    });
    let c = claims.clone();
    s.on("room:leave", move |s: SocketRef, TryData(d): TryData<Value>, ack: AckSender| async move {
        let reply = match requested_room(d.ok().as_ref(), &c) {
            Ok(Room::Chat { tenant, chat }) => {
                let name = Room::Chat { tenant, chat }.name();
                s.leave(name.clone());
                json!({ "ok": true, "room": name })
            }
            Ok(room) => {
                json!({ "ok": false, "error": format!("{} is joined automatically and cannot be left", room.name()) })
            }
            Err(error) => json!({ "ok": false, "error": error }),
        };
        let _ = ack.send(&reply);
    });
    // The `join-tenant` convention some backends use: the tenant room is joined on connect
    // already, so this only checks the id and answers.
    let c = claims.clone();
    s.on("join-tenant", move |TryData(d): TryData<Value>, ack: AckSender| async move {
        let reply = match d.ok().as_ref().and_then(Value::as_str) {
            Some(t) if t == c.tenant_id => json!({ "ok": true, "room": format!("tenant:{t}") }),
            Some(t) => {
                json!({ "ok": false, "error": format!("forbidden: you belong to tenant {:?}, not {t:?}", c.tenant_id) })
            }
            None => json!({ "ok": false, "error": "expected the tenant id as a string" }),
        };
        let _ = ack.send(&reply);
    });
    let chat_app = app.clone();
    let c = claims.clone();
    s.on(catalogue::CHAT_MESSAGE, move |s: SocketRef, TryData(d): TryData<Value>, ack: AckSender| async move {
        let reply = match chat_message(&chat_app, &s, &c, d.ok()).await {
            Ok(v) => v,
            Err(error) => json!({ "ok": false, "error": error }),
        };
        let _ = ack.send(&reply);
    });
    let app = app.clone();
    s.on_disconnect(move |s: SocketRef, reason: DisconnectReason| async move {
        app.transports.forget(&s.id.to_string());
        tracing::info!(sid = %s.id, user = %claims.sub, %reason, "disconnected");
    });
}

/// The room a `room:join`/`room:leave` asks for: a room name, `{"room": name}` or
/// `{"chatId": id}` (a chat of the caller's tenant), if the caller may be in it.
fn requested_room(d: Option<&Value>, c: &Claims) -> Result<Room, String> {
    let name = match d {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Object(o)) => {
            match (o.get("room").and_then(Value::as_str), o.get("chatId").and_then(Value::as_str)) {
                (Some(r), _) => r.to_string(),
                (None, Some(chat)) => format!("chat:{}:{chat}", c.tenant_id),
                (None, None) => return Err("expected a room name, {\"room\": name} or {\"chatId\": id}".into()),
            }
        }
        _ => return Err("expected a room name, {\"room\": name} or {\"chatId\": id}".into()),
    };
    let room = Room::parse(&name)?;
    if !room.visible_to(&c.sub, &c.tenant_id) {
        return Err(format!("forbidden: {name} is not a room of user {:?} in tenant {:?}", c.sub, c.tenant_id));
    }
    Ok(room)
}

/// Stores a chat message in the tenant's log and broadcasts it to the chat room.
async fn chat_message(app: &Arc<App>, s: &SocketRef, c: &Claims, d: Option<Value>) -> Result<Value, String> {
    let d = d.ok_or("expected {\"chatId\": id, \"text\": string}")?;
    // Checked against the event catalogue (examples/catalogue) first: every problem is named.
    catalogue::validate(Direction::ClientToServer, catalogue::CHAT_MESSAGE, &d).map_err(|problems| {
        format!("expected {{\"chatId\": id, \"text\": string}}: {}", catalogue::describe(&problems))
    })?;
    let d: ChatMessageSend =
        serde_json::from_value(d).map_err(|e| format!("expected {{\"chatId\": id, \"text\": string}}: {e}"))?;
    let room = match (d.room.as_deref(), d.chat_id.as_deref()) {
        (Some(r), _) => Room::parse(r)?,
        (None, Some(chat)) if valid_id(chat) => Room::Chat { tenant: c.tenant_id.clone(), chat: chat.to_string() },
        _ => return Err("expected {\"chatId\": id, \"text\": string} (chatId: 1-64 of [A-Za-z0-9_-])".into()),
    };
    let Room::Chat { tenant, chat } = room else {
        return Err("chat messages go to chat:<tenantId>:<chatId> rooms".into());
    };
    if tenant != c.tenant_id {
        return Err(format!("forbidden: chat {chat:?} belongs to tenant {tenant:?}"));
    }
    let text = d.text.trim();
    if text.is_empty() || text.chars().count() > MAX_CHAT_TEXT {
        return Err(format!("text must be 1-{MAX_CHAT_TEXT} characters"));
    }
    // Scoped by user so two users' keys never collide.
    let key = d.idempotency_key.as_deref().map(|k| format!("chat:{}:{k}", c.sub));
    let message_id = random_id("msg");
    let message = ChatMessage {
        id: message_id.clone(),
        chat_id: chat.clone(),
        tenant_id: tenant.clone(),
        user_id: c.sub.clone(),
        name: c.name.clone().unwrap_or_else(|| c.sub.clone()),
        text: text.to_string(),
        sent_at: clock::iso8601(clock::now_ms()),
    };
    let data = ChatMessageData {
        message_id,
        chat_id: chat.clone(),
        tenant_id: tenant.clone(),
        user_id: c.sub.clone(),
        message,
    };
    let data = serde_json::to_value(&data).map_err(|e| format!("encoding the message: {e}"))?;
    let p = Publish {
        tenant: tenant.clone(),
        rooms: vec![Room::Chat { tenant, chat }],
        event: catalogue::CHAT_MESSAGE.into(),
        data,
        idempotency_key: key,
        user_id: Some(c.sub.clone()),
        correlation_id: None,
        session_id: Some(s.id.to_string()),
    };
    let published = app.publish(p).await.map_err(|e: ApiError| e.message)?;
    Ok(json!({ "ok": true, "id": published.id, "offset": published.offset, "replayed": published.replayed }))
}
