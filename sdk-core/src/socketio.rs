//! Socket.IO v5 packets, and the decoder that reassembles binary attachments (PROTOCOL.md §2).

use std::ops::Range;

/// The reserved event names a client must never emit.
pub const RESERVED_EVENTS: [&str; 6] = [
    "connect",
    "connect_error",
    "disconnect",
    "disconnecting",
    "newListener",
    "removeListener",
];

/// Default cap on binary attachments per packet (socket.io-parser `maxAttachments`).
pub const DEFAULT_MAX_ATTACHMENTS: usize = 10;

/// Socket.IO packet types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketType {
    /// 0
    Connect,
    /// 1
    Disconnect,
    /// 2
    Event,
    /// 3
    Ack,
    /// 4
    ConnectError,
    /// 5
    BinaryEvent,
    /// 6
    BinaryAck,
}

/// A JSON text owned with the byte range of the value of interest inside it (zero-copy slicing of
/// the received frame).
#[derive(Clone, PartialEq, Eq)]
pub struct RawJson {
    text: String,
    range: Range<usize>,
}

impl RawJson {
    /// Wraps a whole JSON text.
    pub fn new(text: String) -> Self {
        let range = 0..text.len();
        Self { text, range }
    }
    /// Wraps `text[range]`; `range` must lie on char boundaries of `text` (checked: `None` if not).
    pub fn slice(text: String, range: Range<usize>) -> Option<Self> {
        text.get(range.clone())?;
        Some(Self { text, range })
    }
    /// The JSON text of the value.
    pub fn as_str(&self) -> &str {
        self.text.get(self.range.clone()).unwrap_or_default()
    }
}

impl std::fmt::Debug for RawJson {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("RawJson").field(&self.as_str()).finish()
    }
}

/// A complete Socket.IO packet, attachments reassembled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    /// Packet type.
    pub kind: PacketType,
    /// Namespace, `/` when absent on the wire.
    pub nsp: String,
    /// Ack id, if any.
    pub id: Option<u64>,
    /// The JSON payload (validated per type: see [`decode`]).
    pub data: Option<RawJson>,
    /// Binary attachments, in placeholder order (empty unless BINARY_EVENT / BINARY_ACK).
    pub attachments: Vec<Vec<u8>>,
}

/// Why a Socket.IO packet was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// Empty packet.
    Empty,
    /// Type byte not 0-6.
    UnknownType,
    /// Attachment count missing its `-`, not a number, or above the cap.
    BadAttachments,
    /// More attachments announced than the cap allows.
    TooManyAttachments {
        /// Announced count.
        announced: usize,
        /// Configured cap.
        max: usize,
    },
    /// Namespace not terminated by `,`.
    BadNamespace,
    /// Ack id is not a valid number.
    BadAckId,
    /// The JSON payload is not valid JSON.
    BadJson(crate::json::JsonError),
    /// The payload is valid JSON but not what this packet type requires.
    InvalidPayload(&'static str),
    /// A placeholder refers to an attachment that does not exist, or is malformed.
    BadPlaceholder,
    /// A binary frame arrived when no binary packet was waiting for attachments.
    UnexpectedBinary,
    /// A text packet arrived while a binary packet still waited for attachments.
    IncompleteBinary,
}

/// Decodes one text packet without attachments handling (the caller supplies them through [`Decoder`]).
/// Validity per type follows socket.io-parser: CONNECT object or absent; DISCONNECT none; EVENT /
/// BINARY_EVENT an array whose first element is a number or a non-reserved string; ACK / BINARY_ACK
/// an array; CONNECT_ERROR a string or object. Returns the packet and the announced attachment count.
pub fn decode(text: String, max_attachments: usize) -> Result<(Packet, usize), Error> {
    todo!()
}

/// Encodes a packet header and payload: `<type>[<n>-][<nsp>,][<id>][data]`. Attachments are not
/// written (send them as separate binary Engine.IO messages after this text).
pub fn encode(kind: PacketType, nsp: &str, id: Option<u64>, data: Option<&str>, attachments: usize) -> String {
    todo!()
}

/// The `num`s of every `{"_placeholder":true,"num":N}` object found anywhere inside `json`, in
/// document order. Malformed placeholders (`_placeholder` true but `num` missing, negative or not an
/// integer) are an error.
pub fn placeholders(json: &str) -> Result<Vec<u64>, Error> {
    todo!()
}

/// The reassembly state machine: text packets in, complete packets out. Owns the partially
/// received binary packet; no locks, no allocation beyond the packet itself.
#[derive(Debug)]
pub struct Decoder {
    max_attachments: usize,
    pending: Option<(Packet, usize)>,
}

impl Decoder {
    /// A decoder accepting at most `max_attachments` attachments per packet.
    pub fn new(max_attachments: usize) -> Self {
        Self { max_attachments, pending: None }
    }
    /// Feeds a text packet. `Ok(None)` means the packet waits for binary attachments.
    /// Placeholders are checked (every num < announced count) before waiting.
    pub fn text(&mut self, text: String) -> Result<Option<Packet>, Error> {
        todo!()
    }
    /// Feeds one binary attachment. `Ok(Some)` when the last one completes the packet.
    pub fn binary(&mut self, data: Vec<u8>) -> Result<Option<Packet>, Error> {
        todo!()
    }
    /// Drops a partially received packet (e.g. when the transport closes).
    pub fn reset(&mut self) {
        self.pending = None;
    }
}
