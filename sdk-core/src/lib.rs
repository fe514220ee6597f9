//! # tidings-core
//!
//! The sans-IO heart of Tidings: Engine.IO v4 and Socket.IO v5 codecs, the event schema, and the
//! client state machine (reconnection with backoff, heartbeat, acks and retries, connection state
//! recovery, room re-join, long-polling with upgrade, and the REST feed fallback).
//!
//! It performs no IO, reads no clock and draws no OS randomness: a *driver* (the tokio driver in
//! the `tidings` crate, the browser driver in `tidings-wasm`) owns one [`Client`], feeds it what
//! happened and does what it asks.
//!
//! ## The driving contract
//!
//! 1. Mutate: call a command ([`Client::connect`], [`Client::emit`], [`Client::join`], ...) or
//!    [`Client::handle_input`] with an [`Input`], always passing the current [`Instant`].
//! 2. Drain: call [`Client::poll_output`] until it returns [`Output::Wait`]. Perform each output
//!    (open a WebSocket, send a frame, make an HTTP request, deliver an event to the application).
//! 3. Sleep until the deadline in [`Output::Wait`] or the next input, whichever comes first; when the
//!    deadline passes, feed [`Input::Timeout`]. A spurious timeout is harmless.
//!
//! Every WebSocket and HTTP request carries a generation id ([`ConnId`], [`RequestId`]); inputs
//! about ones the core no longer cares about are ignored, so drivers never need to cancel races.
//!
//! ```
//! use tidings_core::{Client, Config, Input, Instant, Output};
//!
//! let mut config = Config::new("http://127.0.0.1:3000").unwrap();
//! config.seed = 42; // drivers pass a random seed
//! let mut client = Client::new(config).unwrap();
//! client.connect(Instant::from_millis(0));
//! loop {
//!     match client.poll_output() {
//!         Output::OpenWebSocket { conn, url } => {
//!             assert!(url.starts_with("ws://127.0.0.1:3000/socket.io/?EIO=4&transport=websocket"));
//!             // A driver opens the socket here and later calls
//!             // client.handle_input(now, Input::WsOpened(conn)) and so on.
//!             let _ = conn;
//!         }
//!         Output::Wait(deadline) => {
//!             // Sleep until `deadline` or the next input.
//!             assert!(deadline.is_some());
//!             break;
//!         }
//!         _other => {}
//!     }
//! }
//! # let _ = Input::Timeout;
//! ```
//!
//! ## Event arguments stay JSON text
//!
//! The core never builds a JSON tree. [`Args`] keeps the received text with the byte range of each
//! argument; drivers deserialise straight into the application's types (or hand the text to
//! `JSON.parse` in the browser). This keeps serde_json out of the browser build.

#![forbid(unsafe_code)]

pub mod args;
pub mod backoff;
pub mod client;
pub mod config;
pub mod dedup;
pub mod engineio;
pub mod event;
pub mod json;
pub mod rng;
pub mod socketio;
mod text;
pub mod time;
pub mod url;
mod vecmap;

pub use args::{Args, ArgsError};
pub use backoff::BackoffStrategy;
pub use client::{
    AckRequest, AuthRequestId, Client, CommandError, ConnId, ConnectError, ConnectionState, DeliveryId,
    DisconnectReason, EmitError, EmitId, EmitRefused, EmitRequest, Event, EventSource, Fault, FeedStatus, HistoryEvent,
    HistoryPage, HttpError, HttpRequest, IdempotencyKey, Input, InvalidEmit, Method, Output, RequestId, RequestPurpose,
    RoomRequestId, history_page,
};
pub use config::{AuthMode, Config, ConfigError, FeedConfig, RoomEvents, TransportConfig, TransportKind};
pub use time::Instant;
