//! Shared state and the one way events leave the server: [`App::publish`] logs, then broadcasts.

use std::sync::Arc;

use serde_json::Value;
use socketioxide::{SendError, SocketError, SocketIo};

use crate::config::Config;
use crate::error::ApiError;
use crate::events::Events;
use crate::store::{Appended, Envelope, LogEntry, Metadata};
use crate::transports::Transports;
use crate::{clock, rooms::Room};

/// The `source` of every envelope this server produces.
pub const SOURCE: &str = "tidings-example-server";

/// Server state shared by the HTTP and Socket.IO handlers.
#[derive(Debug)]
pub struct App {
    /// The configuration the server started with.
    pub config: Config,
    /// The event log: this node's files, or Redis shared by every node.
    pub events: Events,
    /// The Socket.IO server.
    pub io: SocketIo,
    /// Sockets cut off because they missed an event (see [`crate::transports`]).
    pub transports: Transports,
    /// Rate limits of the HTTP API.
    pub limits: crate::ratelimit::Limits,
}

/// An event to log and broadcast.
#[derive(Debug, Clone)]
pub struct Publish {
    /// The tenant whose log gets the event.
    pub tenant: String,
    /// Target rooms (all of this tenant, or user rooms).
    pub rooms: Vec<Room>,
    /// Event name.
    pub event: String,
    /// Payload (the envelope's `data`).
    pub data: Value,
    /// De-duplication key, already scoped by its producer.
    pub idempotency_key: Option<String>,
    /// Envelope metadata besides the tenant.
    pub user_id: Option<String>,
    /// Correlation id for the envelope.
    pub correlation_id: Option<String>,
    /// Socket.IO session id for the envelope.
    pub session_id: Option<String>,
}

/// Where a published event landed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// The envelope id.
    pub id: String,
    /// The offset in the tenant's log.
    pub offset: u64,
    /// Whether the idempotency key was seen before (nothing was emitted this time).
    pub replayed: bool,
}

/// Names Socket.IO reserves; emitting them would confuse every client.
const RESERVED: [&str; 6] =
    ["connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"];

/// Checks an event name: 1-100 characters of `[A-Za-z0-9_.:-]`, not reserved.
pub fn check_event_name(name: &str) -> Result<(), String> {
    if RESERVED.contains(&name) {
        return Err(format!("event name {name:?} is reserved by Socket.IO"));
    }
    let ok = (1..=100).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-'));
    if ok { Ok(()) } else { Err("event names are 1-100 characters of [A-Za-z0-9_.:-], e.g. task.created".into()) }
}

/// A fresh random id with a prefix (`evt_…`, `msg_…`).
pub fn random_id(prefix: &str) -> String {
    format!("{prefix}_{:032x}", rand::random::<u128>())
}

impl App {
    /// Appends the event to its tenant's log (fsync'd), then broadcasts it to its rooms. A
    /// repeated idempotency key (within the window, see [`crate::store::Limits`]) returns the
    /// first event's id and offset and emits nothing.
    ///
    /// The work runs in its own task: a caller that is cancelled (a client that hangs up) never
    /// stops an append half way, between the file and the memory.
    pub async fn publish(self: &Arc<Self>, p: Publish) -> Result<Published, ApiError> {
        check_event_name(&p.event).map_err(|m| ApiError::bad_request("invalid_event", m))?;
        let app = self.clone();
        tokio::spawn(async move { app.publish_now(p).await }).await.map_err(ApiError::internal)?
    }

    async fn publish_now(&self, p: Publish) -> Result<Published, ApiError> {
        let ts_ms = clock::now_ms();
        let envelope = Envelope {
            id: random_id("evt"),
            kind: p.event.clone(),
            version: 1,
            timestamp: clock::iso8601(ts_ms),
            source: SOURCE.to_string(),
            data: p.data,
            metadata: Metadata {
                correlation_id: p.correlation_id,
                user_id: p.user_id,
                tenant_id: p.tenant.clone(),
                session_id: p.session_id,
            },
        };
        let rooms: Vec<String> = p.rooms.iter().map(Room::name).collect();
        let mut entry = LogEntry { offset: 0, rooms, ts_ms, idempotency_key: p.idempotency_key, envelope };
        let appended = match &self.events {
            Events::File { store, .. } => {
                let log = store.tenant(&p.tenant).map_err(ApiError::internal)?;
                let mut log = log.appender().await;
                entry.offset = log.next_offset();
                let appended = log.append(entry.clone()).await.map_err(ApiError::internal)?;
                if let Appended::New(_) = appended {
                    // Still under the tenant's lock, so sockets see events in offset order.
                    self.broadcast(&entry.rooms, &p.event, &entry.envelope);
                }
                appended
            }
            // Every node (this one too) broadcasts it from the bus, in order (crate::redis_log).
            Events::Redis(r) => r.append(&p.tenant, &entry).await.map_err(ApiError::unavailable)?,
        };
        let offset = match appended {
            Appended::Replayed { id, offset } => {
                tracing::info!(tenant = %p.tenant, event = %p.event, %id, offset, "idempotent replay; not emitted again");
                return Ok(Published { id, offset, replayed: true });
            }
            Appended::New(offset) => offset,
        };
        let id = entry.envelope.id;
        tracing::info!(tenant = %p.tenant, event = %p.event, %id, offset, rooms = ?entry.rooms, "published");
        Ok(Published { id, offset, replayed: false })
    }

    /// Sends an event read from the Redis bus to this node's sockets in its rooms.
    pub fn deliver(&self, entry: &LogEntry) {
        self.broadcast(&entry.rooms, &entry.envelope.kind, &entry.envelope);
    }

    /// Cuts every socket of this node (as a slow one is cut): events were published that this
    /// node can no longer send, so its clients reconnect and catch up from the feed.
    pub fn cut_all(&self, why: &str) {
        let sockets = self.io.sockets();
        tracing::warn!(
            sockets = sockets.len(),
            why,
            "missed events from the bus; cutting every socket so clients catch up from the feed"
        );
        for s in &sockets {
            self.transports.cut(s);
        }
    }

    /// Sends the event to every socket in `rooms`, one by one, so that a socket that cannot take
    /// it is known. Such a socket (its buffer is full: a client that reads too slowly) is cut off
    /// rather than left to silently miss the event: its client reconnects and catches up from
    /// the feed, where the event is (see [`crate::transports`] for why a transport close and not
    /// a Socket.IO DISCONNECT). The envelope is encoded once for all of them.
    fn broadcast(&self, rooms: &[String], event: &str, envelope: &Envelope) {
        let payload = match serde_json::value::to_raw_value(envelope) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(event, error = %e, "could not encode an envelope");
                return;
            }
        };
        for s in self.io.to(rooms.to_vec()).sockets() {
            match s.emit(event, &payload) {
                Ok(()) => {}
                Err(SendError::Socket(SocketError::InternalChannelFull)) => self.transports.cut(&s),
                // Already closing: its client reconnects by itself.
                Err(SendError::Socket(SocketError::Closed)) => {}
                Err(e) => tracing::error!(sid = %s.id, event, error = %e, "emit failed"),
            }
        }
    }
}
