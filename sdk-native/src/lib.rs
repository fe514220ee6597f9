//! # tidings
//!
//! A Socket.IO v5 client for tokio, built on the sans-IO [`tidings_core`]: exact on the wire,
//! typed with serde, and it never loses an event it can keep.
//!
//! - Lossless delivery: every subscription gets every matching event, in order, once; a consumer
//!   slower than the wire slows the connection down (backpressure within a bounded receive
//!   buffer, [`ClientBuilder::receive_buffer`]) instead of losing events. Lossy delivery is an
//!   explicit choice per subscription ([`Tidings::on_lossy`]).
//! - WebSocket and HTTP long-polling (with upgrade, and a fallback to polling when WebSocket is
//!   blocked), `ws`/`wss`/`http`/`https`, rustls verifying certificates by default.
//! - Reconnection with jittered backoff, connection state recovery, rooms re-joined after a
//!   reconnect that did not recover, acks with timeouts, at-least-once retries, a bounded send
//!   buffer, de-duplication of events, and an optional REST feed fallback.
//!
//! ```no_run
//! use futures_util::StreamExt;
//! use serde::Deserialize;
//!
//! #[derive(Debug, Deserialize)]
//! struct Task { id: String, title: String }
//!
//! # async fn run() -> Result<(), tidings::Error> {
//! let client = tidings::Tidings::builder("http://127.0.0.1:3000").token("secret").connect().await?;
//! client.join("chat:42").await?;
//! let mut tasks = client.on::<Task>("task.created");
//! while let Some(event) = tasks.next().await {
//!     match event {
//!         Ok(t) => println!("new task {}: {}", t.data.id, t.data.title),
//!         Err(e) => eprintln!("bad payload: {e}"),
//!     }
//! }
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]

mod client;
mod delivery;
mod driver;
mod error;
mod payload;
mod publisher;
mod snapshot;
mod transport;

pub use client::{AckHandle, AuthProvider, ClientBuilder, Emit, History, Received, Subscription, Tidings};
pub use delivery::{DEFAULT_RECEIVE_BUFFER, Notices};
pub use driver::{InvalidEvent, Notice};
pub use error::{ArgumentError, Cause, ConfigError, DecodeError, Error};
pub use payload::{Bytes, Payload};
pub use publisher::{Publication, PublishHandle, Published, Publisher, PublisherBuilder, PublisherMetrics, Target};
pub use snapshot::{SnapshotRequest, SnapshotSource, SnapshotStream, Snapshotted};
pub use tidings_core::config::{OverflowPolicy, ReconnectConfig, SendBufferConfig};
pub use tidings_core::event::{Envelope, EnvelopeMetadata};
pub use tidings_core::{
    Args, BackoffStrategy, ConnectError, ConnectionState, DisconnectReason, EmitError, Event, EventSource, Fault,
    FeedConfig, FeedStatus, HttpError, InvalidEmit, TransportConfig, TransportKind,
};

/// Whether `name` matches `pattern` (exact, `prefix.*`/`prefix:*`, or `*`).
pub fn event_pattern_matches(pattern: &str, name: &str) -> bool {
    tidings_core::event::EventPattern::parse(pattern).matches(name)
}

/// Parses a server URL the way the client does (scheme, host, port, namespace from the path).
pub fn parse_url(url: &str) -> Result<tidings_core::url::ServerUrl, tidings_core::url::UrlError> {
    tidings_core::url::ServerUrl::parse(url)
}

#[cfg(test)]
mod assertions {
    fn send_sync<T: Send + Sync>() {}
    #[test]
    fn handle_is_send_sync() {
        send_sync::<super::Tidings>();
        send_sync::<super::Error>();
    }
}
