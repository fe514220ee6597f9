//! Engine.IO v4 packets: WebSocket frames and HTTP long-polling payloads (PROTOCOL.md §1).

use std::borrow::Cow;
use std::collections::VecDeque;

/// The polling record separator.
pub const SEPARATOR: char = '\x1e';

/// An Engine.IO v4 packet. Borrowed when decoded from a frame, owned (`'static`) when queued for sending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet<'a> {
    /// `0{...}`: the handshake.
    Open(Handshake),
    /// `1`
    Close,
    /// `2`, or `2probe` during an upgrade.
    Ping {
        /// The packet carried the `probe` payload.
        probe: bool,
    },
    /// `3`, or `3probe` during an upgrade.
    Pong {
        /// The packet carried the `probe` payload.
        probe: bool,
    },
    /// `4<text>`: a text message (a Socket.IO packet).
    Message(Cow<'a, str>),
    /// A binary message: a raw binary WebSocket frame, or `b<base64>` in a polling payload.
    Binary(Cow<'a, [u8]>),
    /// `5`
    Upgrade,
    /// `6`
    Noop,
}

/// The open packet's JSON (all five keys are required).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handshake {
    /// Engine.IO session id.
    pub sid: String,
    /// Transports the session may upgrade to (`["websocket"]`, or `[]` over WebSocket).
    pub upgrades: Vec<String>,
    /// Milliseconds between server pings.
    pub ping_interval: u64,
    /// Milliseconds the server waits for a pong.
    pub ping_timeout: u64,
    /// Largest payload the server accepts, in bytes.
    pub max_payload: u64,
}

/// Why an Engine.IO frame or payload was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// An empty frame or an empty record in a polling payload.
    Empty,
    /// The packet type is not 0-6 (the offending byte).
    UnknownType(u8),
    /// The open packet's JSON is invalid or lacks a key, or a key has the wrong type.
    BadHandshake(&'static str),
    /// A packet that must not have a payload has one (e.g. `1x`, `2foo`).
    UnexpectedPayload,
    /// A `b...` record is not valid base64.
    BadBase64,
    /// A polling body is not valid UTF-8.
    NotUtf8,
}

/// Decodes one WebSocket text frame.
pub fn decode_text(frame: &str) -> Result<Packet<'_>, Error> {
    todo!()
}

/// Decodes one WebSocket binary frame (EIO4: raw bytes, no prefix). Never fails.
pub fn decode_binary(frame: &[u8]) -> Packet<'_> {
    todo!()
}

/// Decodes an HTTP long-polling response body: records separated by `\x1e`, binary as `b<base64>`.
/// Each record is decoded independently; a bad record yields an `Err` item.
pub fn decode_payload(body: &str) -> impl Iterator<Item = Result<Packet<'_>, Error>> {
    std::iter::empty()
}

/// What to put on a WebSocket for one packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A text frame.
    Text(String),
    /// A binary frame (raw bytes, no prefix).
    Binary(Vec<u8>),
}

/// Encodes one packet for a WebSocket (binary packets become raw binary frames).
pub fn encode_ws(packet: &Packet<'_>) -> Frame {
    todo!()
}

/// Appends one packet to a polling body (binary as `b` + standard base64 with padding), without separator.
pub fn encode_polling_record(packet: &Packet<'_>, out: &mut String) {
    todo!()
}

/// Takes packets off the front of `queue` and joins them into one polling POST body, following the
/// official client's batching rule under `max_payload` (`_getWritablePackets`); returns `None` when
/// the queue is empty. A single oversize packet is still taken alone.
pub fn take_polling_batch(queue: &mut VecDeque<Packet<'static>>, max_payload: u64) -> Option<String> {
    todo!()
}
