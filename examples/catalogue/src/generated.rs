//! GENERATED from examples/catalogue/events.json by `cargo run -p tidings-example-catalogue --bin tidings-catalogue-gen`: do not edit.
//!
//! The examples' event types, names and typed decoding; docs/CATALOGUE.md.

use serde::{Deserialize, Serialize};

use crate::Direction;

/// A task. The producer may add fields: they are kept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Task {
    /// Task id.
    #[serde(rename = "id")]
    pub id: String,
    /// Title.
    #[serde(rename = "title", default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Who it is assigned to.
    #[serde(rename = "assigneeId", default, skip_serializing_if = "Option::is_none")]
    pub assignee_id: Option<String>,
    /// Who created it.
    #[serde(rename = "createdBy", default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    /// Every field the catalogue does not name, kept as it is.
    #[serde(flatten)]
    pub rest: serde_json::Map<String, serde_json::Value>,
}

/// The data of `task.created`, `task.assigned` and `task.completed`: entity id, tenant id, user id and the full entity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskEventData {
    /// The task id.
    #[serde(rename = "taskId")]
    pub task_id: String,
    /// The tenant.
    #[serde(rename = "tenantId")]
    pub tenant_id: String,
    /// The user concerned (creator, assignee).
    #[serde(rename = "userId", default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// `task.assigned`: who assigned it.
    #[serde(rename = "assignedBy", default, skip_serializing_if = "Option::is_none")]
    pub assigned_by: Option<String>,
    /// The task.
    #[serde(rename = "task")]
    pub task: Task,
}

/// The data of `notification.created`: the producer decides the fields; these are the ones the examples show.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NotificationData {
    /// The tenant.
    #[serde(rename = "tenantId", default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
    /// The user notified.
    #[serde(rename = "userId", default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// Title.
    #[serde(rename = "title", default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Text.
    #[serde(rename = "text", default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Every field the catalogue does not name, kept as it is.
    #[serde(flatten)]
    pub rest: serde_json::Map<String, serde_json::Value>,
}

/// A chat message as stored and broadcast.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// Message id (`msg_...`).
    #[serde(rename = "id")]
    pub id: String,
    /// The chat.
    #[serde(rename = "chatId")]
    pub chat_id: String,
    /// The chat's tenant.
    #[serde(rename = "tenantId")]
    pub tenant_id: String,
    /// The sender.
    #[serde(rename = "userId")]
    pub user_id: String,
    /// The sender's display name.
    #[serde(rename = "name")]
    pub name: String,
    /// The text.
    #[serde(rename = "text")]
    pub text: String,
    /// ISO 8601 UTC time the server received it.
    #[serde(rename = "sentAt")]
    pub sent_at: String,
}

/// The data of the `chat.message` the server broadcasts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatMessageData {
    /// The message id.
    #[serde(rename = "messageId")]
    pub message_id: String,
    /// The chat.
    #[serde(rename = "chatId")]
    pub chat_id: String,
    /// The tenant.
    #[serde(rename = "tenantId")]
    pub tenant_id: String,
    /// The sender.
    #[serde(rename = "userId")]
    pub user_id: String,
    /// The message.
    #[serde(rename = "message")]
    pub message: ChatMessage,
}

/// The argument of the `chat.message` a client sends: `chatId` (a chat of the sender's tenant) or `room` (`chat:<tenantId>:<chatId>`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatMessageSend {
    /// The chat, 1-64 of [A-Za-z0-9_-].
    #[serde(rename = "chatId", default, skip_serializing_if = "Option::is_none")]
    pub chat_id: Option<String>,
    /// Instead of `chatId`: the chat room's name.
    #[serde(rename = "room", default, skip_serializing_if = "Option::is_none")]
    pub room: Option<String>,
    /// 1-4000 characters (trimmed).
    #[serde(rename = "text")]
    pub text: String,
    /// A resend with the same key is answered with the first send's ack.
    #[serde(rename = "idempotencyKey", default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
}

/// The ack of `chat.message`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatMessageAck {
    /// The envelope id of the broadcast `chat.message`.
    #[serde(rename = "id")]
    pub id: String,
    /// Its offset in the tenant's log.
    #[serde(rename = "offset")]
    pub offset: i64,
    /// Whether this answers an earlier send with the same idempotency key.
    #[serde(rename = "replayed")]
    pub replayed: bool,
}

/// The ack of `room:join`, `room:leave` and `join-tenant`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoomAck {
    /// The room's name.
    #[serde(rename = "room")]
    pub room: String,
}

/// server → client (data [`TaskEventData`], in an envelope): A task was created.
pub const TASK_CREATED: &str = "task.created";

/// server → client (data [`TaskEventData`], in an envelope): A task was assigned (`task.assigneeId`).
pub const TASK_ASSIGNED: &str = "task.assigned";

/// server → client (data [`TaskEventData`], in an envelope): A task was completed.
pub const TASK_COMPLETED: &str = "task.completed";

/// server → client (data [`NotificationData`], in an envelope): A notification for a user.
pub const NOTIFICATION_CREATED: &str = "notification.created";

/// server → client (data [`ChatMessageData`], in an envelope): A chat message, broadcast to `chat:<tenantId>:<chatId>`.
/// client → server (data [`ChatMessageSend`], ack [`ChatMessageAck`]): Sends a chat message; it is logged and broadcast.
pub const CHAT_MESSAGE: &str = "chat.message";

/// client → server (data `String`, ack [`RoomAck`]): Joins a room (`chat:<tenantId>:<chatId>`).
pub const ROOM_JOIN: &str = "room:join";

/// client → server (data `String`, ack [`RoomAck`]): Leaves a chat room.
pub const ROOM_LEAVE: &str = "room:leave";

/// client → server (data `String`, ack [`RoomAck`]): Checks the tenant id (the tenant room is joined on connect).
pub const JOIN_TENANT: &str = "join-tenant";

/// The events going server → client.
pub const SERVER_TO_CLIENT: &[&str] = &[TASK_CREATED, TASK_ASSIGNED, TASK_COMPLETED, NOTIFICATION_CREATED, CHAT_MESSAGE];

/// The events going client → server.
pub const CLIENT_TO_SERVER: &[&str] = &[CHAT_MESSAGE, ROOM_JOIN, ROOM_LEAVE, JOIN_TENANT];

/// Deserializes `data` into the Rust type of the data of event `name` going `direction`
/// (`None`: not in the catalogue). The catalogue's tests use it to check the types against
/// the validator.
pub fn decode_data(direction: Direction, name: &str, data: &serde_json::Value) -> Option<Result<(), serde_json::Error>> {
    match (direction, name) {
        (Direction::ServerToClient, "task.created") => Some(serde_json::from_value::<TaskEventData>(data.clone()).map(drop)),
        (Direction::ServerToClient, "task.assigned") => Some(serde_json::from_value::<TaskEventData>(data.clone()).map(drop)),
        (Direction::ServerToClient, "task.completed") => Some(serde_json::from_value::<TaskEventData>(data.clone()).map(drop)),
        (Direction::ServerToClient, "notification.created") => Some(serde_json::from_value::<NotificationData>(data.clone()).map(drop)),
        (Direction::ServerToClient, "chat.message") => Some(serde_json::from_value::<ChatMessageData>(data.clone()).map(drop)),
        (Direction::ClientToServer, "chat.message") => Some(serde_json::from_value::<ChatMessageSend>(data.clone()).map(drop)),
        (Direction::ClientToServer, "room:join") => Some(serde_json::from_value::<String>(data.clone()).map(drop)),
        (Direction::ClientToServer, "room:leave") => Some(serde_json::from_value::<String>(data.clone()).map(drop)),
        (Direction::ClientToServer, "join-tenant") => Some(serde_json::from_value::<String>(data.clone()).map(drop)),
        _ => None,
    }
}
