//! Socket.IO v5 packets, and the decoder that reassembles binary attachments (PROTOCOL.md §2).

use std::borrow::Cow;
use std::ops::Range;

use crate::json;
use crate::text;

/// The reserved event names a client must never emit.
pub const RESERVED_EVENTS: [&str; 6] =
    ["connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"];

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
    /// For an array found while decoding: the byte ranges (in `text`) of its elements, so the
    /// arguments need not be scanned a second time.
    elements: Option<Vec<Range<usize>>>,
    /// For an event found while decoding: whether its first argument may be an envelope (an
    /// object with a key that may be `data`); `true` when unknown.
    maybe_envelope: bool,
}

impl RawJson {
    /// Wraps a whole JSON text.
    pub fn new(text: String) -> Self {
        let range = 0..text.len();
        Self { text, range, elements: None, maybe_envelope: true }
    }
    /// Wraps `text[range]`; `range` must lie on char boundaries of `text` (checked: `None` if not).
    pub fn slice(text: String, range: Range<usize>) -> Option<Self> {
        text.get(range.clone())?;
        Some(Self { text, range, elements: None, maybe_envelope: true })
    }
    /// The byte ranges (in the owned text) of the array's elements, when the decoder found them.
    pub fn elements(&self) -> Option<&[Range<usize>]> {
        self.elements.as_deref()
    }
    /// Whether an event's first argument may be an envelope (see [`crate::event::envelope_id`]):
    /// `false` only when the decoder saw that it is not an object with a key that may be `data`.
    pub fn may_be_envelope(&self) -> bool {
        self.maybe_envelope
    }
    /// The owned text, the value's range and its elements' ranges (see [`RawJson::elements`]).
    pub fn into_elements(self) -> (String, Range<usize>, Option<Vec<Range<usize>>>) {
        (self.text, self.range, self.elements)
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
    /// Two placeholders refer to the same attachment. socket.io's encoders write one attachment
    /// per occurrence of binary data, so only a hand-made packet does this; refused because each
    /// reference is materialised as a copy (a 1 MB attachment named by every placeholder of a large
    /// text would grow into gigabytes).
    RepeatedPlaceholder,
    /// A binary frame arrived when no binary packet was waiting for attachments.
    UnexpectedBinary,
    /// A text packet arrived while a binary packet still waited for attachments.
    IncompleteBinary,
}

impl RawJson {
    /// The whole owned text and the range of the value inside it (for zero-copy slicing further down).
    pub fn into_parts(self) -> (String, Range<usize>) {
        (self.text, self.range)
    }
    /// The byte range of the value inside the owned text.
    pub fn range(&self) -> Range<usize> {
        self.range.clone()
    }
}

impl PacketType {
    /// The type digit on the wire.
    pub fn as_u8(self) -> u8 {
        match self {
            Self::Connect => 0,
            Self::Disconnect => 1,
            Self::Event => 2,
            Self::Ack => 3,
            Self::ConnectError => 4,
            Self::BinaryEvent => 5,
            Self::BinaryAck => 6,
        }
    }
    /// The type for a wire digit `0`-`6`.
    pub fn from_u8(digit: u8) -> Option<Self> {
        Some(match digit {
            0 => Self::Connect,
            1 => Self::Disconnect,
            2 => Self::Event,
            3 => Self::Ack,
            4 => Self::ConnectError,
            5 => Self::BinaryEvent,
            6 => Self::BinaryAck,
            _ => return None,
        })
    }
    /// BINARY_EVENT or BINARY_ACK: the header carries an attachment count.
    pub fn is_binary(self) -> bool {
        matches!(self, Self::BinaryEvent | Self::BinaryAck)
    }
}

impl Error {
    /// What `Display` writes, built without `core::fmt` so that a browser driver can report it
    /// without bringing the formatting machinery into its build.
    pub fn message(&self) -> Cow<'static, str> {
        Cow::Borrowed(match self {
            Self::Empty => "empty Socket.IO packet",
            Self::UnknownType => "unknown Socket.IO packet type",
            Self::BadAttachments => "illegal attachment count",
            Self::TooManyAttachments { announced, max } => {
                return Cow::Owned(text::concat(&[
                    "too many attachments: ",
                    &text::decimal(u64::try_from(*announced).unwrap_or(u64::MAX)),
                    " announced, at most ",
                    &text::decimal(u64::try_from(*max).unwrap_or(u64::MAX)),
                    " allowed",
                ]));
            }
            Self::BadNamespace => "invalid namespace",
            Self::BadAckId => "invalid ack id",
            Self::BadJson(e) => return Cow::Owned(text::concat(&["invalid payload: ", &e.message()])),
            Self::InvalidPayload(why) => return Cow::Owned(text::concat(&["invalid payload: ", why])),
            Self::BadPlaceholder => "invalid binary placeholder",
            Self::RepeatedPlaceholder => "two binary placeholders refer to the same attachment",
            Self::UnexpectedBinary => "got binary data when not reconstructing a packet",
            Self::IncompleteBinary => "got plaintext data when reconstructing a packet",
        })
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::BadJson(e) => Some(e),
            _ => None,
        }
    }
}

/// Reads decimal digits at `i`: the value (`None` on overflow) and the end. No digits gives `(Some(0), i)`.
fn read_decimal(b: &[u8], mut i: usize) -> (Option<u64>, usize) {
    let mut n = Some(0u64);
    while let Some(&c @ b'0'..=b'9') = b.get(i) {
        n = n.and_then(|n| json::times_ten_plus(n, c - b'0'));
        i += 1;
    }
    (n, i)
}

/// Decodes one text packet without attachments handling (the caller supplies them through [`Decoder`]).
/// Validity per type follows socket.io-parser: CONNECT object or absent; DISCONNECT none; EVENT /
/// BINARY_EVENT an array whose first element is a number or a non-reserved string; ACK / BINARY_ACK
/// an array; CONNECT_ERROR a string or object. Returns the packet and the announced attachment count.
///
/// The header is read as socket.io-parser's `decodeString` reads it: the attachment count (types 5
/// and 6 only) is digits followed by `-`; a namespace is present only when the next character is
/// `/` and runs to the next `,` (or to the end of the packet); an ack id is the run of digits that
/// follows. Stricter than socket.io-parser: the attachment count must be plain digits, an ack id
/// must fit in a `u64`, and EVENT / ACK packets must carry their array.
pub fn decode(text: String, max_attachments: usize) -> Result<(Packet, usize), Error> {
    let b = text.as_bytes();
    let &digit = b.first().ok_or(Error::Empty)?;
    let kind = digit.checked_sub(b'0').and_then(PacketType::from_u8).ok_or(Error::UnknownType)?;
    let mut i = 1;

    let mut announced = 0usize;
    if kind.is_binary() {
        let (n, end) = read_decimal(b, i);
        if end == i || b.get(end) != Some(&b'-') {
            return Err(Error::BadAttachments);
        }
        let n = n.and_then(|n| usize::try_from(n).ok()).ok_or(Error::BadAttachments)?;
        if n > max_attachments {
            return Err(Error::TooManyAttachments { announced: n, max: max_attachments });
        }
        announced = n;
        i = end + 1;
    }

    let nsp = if b.get(i) == Some(&b'/') {
        let end = b.get(i..).and_then(|rest| rest.iter().position(|&c| c == b',')).map_or(b.len(), |p| i + p);
        // `i` and `end` sit on ASCII bytes (or the end), hence on char boundaries.
        let nsp = text.get(i..end).ok_or(Error::BadNamespace)?.to_owned();
        i = (end + 1).min(b.len());
        nsp
    } else {
        "/".to_owned()
    };

    let mut id = None;
    if let Some(b'0'..=b'9') = b.get(i) {
        let (n, end) = read_decimal(b, i);
        id = Some(n.ok_or(Error::BadAckId)?);
        i = end;
    }

    let mut elements = None;
    let mut maybe_envelope = true;
    let data = if i < b.len() {
        let arrays =
            matches!(kind, PacketType::Event | PacketType::BinaryEvent | PacketType::Ack | PacketType::BinaryAck);
        let (json_kind, range) = match text.get(i..) {
            // Arguments: validate and split in one pass (the client needs the elements anyway).
            Some(rest) if arrays && rest.starts_with('[') => {
                // An event's first argument is its second element (after the name).
                let noted = if matches!(kind, PacketType::Event | PacketType::BinaryEvent) { 1 } else { usize::MAX };
                let (mut items, data_key) =
                    json::array_elements_noting(rest, noted).map_err(|e| Error::BadJson(shift(e, i)))?;
                maybe_envelope = data_key;
                json::shift_ranges(&mut items, i);
                elements = Some(items);
                // The array runs to the end but for JSON whitespace (counted by bytes: no char
                // pattern searcher).
                let ws = rest.bytes().rev().take_while(|c| matches!(c, b' ' | b'\t' | b'\n' | b'\r')).count();
                (json::JsonKind::Array, i..i + rest.len() - ws)
            }
            _ => {
                let (json_kind, range) = json::scan_value(&text, i).map_err(Error::BadJson)?;
                let end = json::skip_ws(b, range.end);
                if end != b.len() {
                    return Err(Error::BadJson(json::JsonError { offset: end, reason: "trailing characters" }));
                }
                (json_kind, range)
            }
        };
        check_payload(kind, &text, json_kind, range.clone())?;
        Some((json_kind, range))
    } else {
        None
    };
    match (kind, &data) {
        (PacketType::Event | PacketType::BinaryEvent, None) => return Err(Error::InvalidPayload("EVENT without data")),
        (PacketType::Ack | PacketType::BinaryAck, None) => return Err(Error::InvalidPayload("ACK without data")),
        _ => {}
    }
    let data = match data {
        Some((_, range)) => {
            let mut raw = RawJson::slice(text, range).ok_or(Error::InvalidPayload("payload not on char boundaries"))?;
            raw.elements = elements;
            raw.maybe_envelope = maybe_envelope;
            Some(raw)
        }
        None => None,
    };
    Ok((Packet { kind, nsp, id, data, attachments: Vec::new() }, announced))
}

/// A JSON error found in a slice starting at `by`, placed in the whole text.
fn shift(e: json::JsonError, by: usize) -> json::JsonError {
    json::JsonError { offset: e.offset + by, reason: e.reason }
}

/// socket.io-parser's `isPayloadValid` for a present payload.
fn check_payload(kind: PacketType, text: &str, json_kind: json::JsonKind, range: Range<usize>) -> Result<(), Error> {
    use json::JsonKind::{Array, Number, Object, String};
    match kind {
        PacketType::Connect if json_kind != Object => Err(Error::InvalidPayload("CONNECT payload must be an object")),
        PacketType::Disconnect => Err(Error::InvalidPayload("DISCONNECT must not carry a payload")),
        PacketType::ConnectError if !matches!(json_kind, String | Object) => {
            Err(Error::InvalidPayload("CONNECT_ERROR payload must be a string or an object"))
        }
        PacketType::Ack | PacketType::BinaryAck if json_kind != Array => {
            Err(Error::InvalidPayload("ACK payload must be an array"))
        }
        PacketType::Event | PacketType::BinaryEvent => {
            if json_kind != Array {
                return Err(Error::InvalidPayload("EVENT payload must be an array"));
            }
            // Skip `[` and whitespace; an empty array has no event name.
            let first = json::skip_ws(text.as_bytes(), range.start + 1);
            let bad_name = Error::InvalidPayload("EVENT name must be a number or a non-reserved string");
            if text.as_bytes().get(first) == Some(&b']') {
                return Err(bad_name);
            }
            match json::scan_value(text, first).map_err(Error::BadJson)? {
                (Number, _) => Ok(()),
                (String, r) => {
                    let name = text
                        .get(r)
                        .and_then(|lit| json::parse_string(lit).ok())
                        .ok_or(Error::InvalidPayload("bad event name"))?;
                    if RESERVED_EVENTS.contains(&name.as_ref()) { Err(bad_name) } else { Ok(()) }
                }
                _ => Err(bad_name),
            }
        }
        _ => Ok(()),
    }
}

/// Encodes a packet header and payload: `<type>[<n>-][<nsp>,][<id>][data]`. Attachments are not
/// written (send them as separate binary Engine.IO messages after this text).
///
/// The `<n>-` count is written for BINARY_EVENT / BINARY_ACK (always, as socket.io-parser does, so
/// the output decodes) and never for other types; the namespace is omitted when it is `/` or empty.
pub fn encode(kind: PacketType, nsp: &str, id: Option<u64>, data: Option<&str>, attachments: usize) -> String {
    let mut out = String::with_capacity(1 + 4 + nsp.len() + 1 + 20 + data.map_or(0, str::len));
    out.push(char::from(b'0' + kind.as_u8()));
    if kind.is_binary() {
        json::write_u64(&mut out, u64::try_from(attachments).unwrap_or(u64::MAX));
        out.push('-');
    }
    if !nsp.is_empty() && nsp != "/" {
        out.push_str(nsp);
        out.push(',');
    }
    if let Some(id) = id {
        json::write_u64(&mut out, id);
    }
    if let Some(data) = data {
        out.push_str(data);
    }
    out
}

/// The `num`s of every `{"_placeholder":true,"num":N}` object found anywhere inside `json`, in
/// document order. Malformed placeholders (`_placeholder` true but `num` missing, negative or not an
/// integer) are an error.
///
/// As in socket.io-parser's `reconstructPacket`, a placeholder object replaces its whole value (what
/// is nested inside it is not searched), `_placeholder` must be exactly `true`, and a duplicated key
/// counts by its last occurrence (as after `JSON.parse`). Stricter: `num` must be written as a plain
/// integer (`1.0` or `1e0` are refused).
pub fn placeholders(json: &str) -> Result<Vec<u64>, Error> {
    let mut finder = PlaceholderFinder { text: json, frames: Vec::new(), out: Vec::new() };
    let (_, range) = json::scan_visiting(json, 0, json::MAX_DEPTH, &mut finder).map_err(Error::BadJson)?;
    let end = json::skip_ws(json.as_bytes(), range.end);
    if end != json.len() {
        return Err(Error::BadJson(json::JsonError { offset: end, reason: "trailing characters" }));
    }
    finder.out.into_iter().collect::<Option<Vec<u64>>>().ok_or(Error::BadPlaceholder)
}

/// Which member an object is reading.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Member {
    Placeholder,
    Num,
    Other,
}

/// One open container while looking for placeholders.
struct Frame {
    /// `out.len()` when the container opened: a placeholder object discards what was found inside it.
    found_before: usize,
    /// The member whose value comes next (objects only).
    member: Member,
    /// Last `_placeholder` member was `true`.
    placeholder: bool,
    /// Last `num` member, if it is a number literal.
    num: Option<Range<usize>>,
}

struct PlaceholderFinder<'a> {
    text: &'a str,
    frames: Vec<Frame>,
    /// Placeholders found so far; `None` for a malformed one (an error unless an enclosing
    /// placeholder object discards it).
    out: Vec<Option<u64>>,
}

impl json::Visitor for PlaceholderFinder<'_> {
    fn open(&mut self, _kind: json::JsonKind) {
        self.frames.push(Frame { found_before: self.out.len(), member: Member::Other, placeholder: false, num: None });
    }

    fn key(&mut self, literal: Range<usize>, _escaped: bool) {
        let member = match self.text.get(literal).and_then(|l| json::parse_string(l).ok()).as_deref() {
            Some("_placeholder") => Member::Placeholder,
            Some("num") => Member::Num,
            _ => Member::Other,
        };
        if let Some(f) = self.frames.last_mut() {
            f.member = member;
        }
    }

    fn value(&mut self, kind: json::JsonKind, range: Range<usize>) {
        if matches!(kind, json::JsonKind::Object | json::JsonKind::Array)
            && let Some(closed) = self.frames.pop()
            && kind == json::JsonKind::Object
            && closed.placeholder
        {
            self.out.truncate(closed.found_before);
            self.out.push(closed.num.and_then(|r| self.text.get(r)).and_then(json::parse_u64));
        }
        let Some(parent) = self.frames.last_mut() else { return };
        match parent.member {
            Member::Placeholder => parent.placeholder = self.text.get(range) == Some("true"),
            Member::Num => parent.num = (kind == json::JsonKind::Number).then_some(range),
            Member::Other => {}
        }
        parent.member = Member::Other;
    }
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
        if self.pending.take().is_some() {
            return Err(Error::IncompleteBinary);
        }
        let (packet, announced) = decode(text, self.max_attachments)?;
        if packet.kind.is_binary() {
            let data = packet.data.as_ref().map_or("", RawJson::as_str);
            let nums = placeholders(data)?;
            let mut seen = vec![false; announced];
            for n in nums {
                let slot = usize::try_from(n).ok().and_then(|n| seen.get_mut(n)).ok_or(Error::BadPlaceholder)?;
                if std::mem::replace(slot, true) {
                    return Err(Error::RepeatedPlaceholder);
                }
            }
            if announced > 0 {
                self.pending = Some((packet, announced));
                return Ok(None);
            }
        }
        Ok(Some(packet))
    }
    /// Feeds one binary attachment. `Ok(Some)` when the last one completes the packet.
    pub fn binary(&mut self, data: Vec<u8>) -> Result<Option<Packet>, Error> {
        let Some((mut packet, announced)) = self.pending.take() else { return Err(Error::UnexpectedBinary) };
        packet.attachments.push(data);
        if packet.attachments.len() >= announced {
            return Ok(Some(packet));
        }
        self.pending = Some((packet, announced));
        Ok(None)
    }
    /// Drops a partially received packet (e.g. when the transport closes).
    pub fn reset(&mut self) {
        self.pending = None;
    }
    /// True while a binary packet waits for attachments.
    pub fn is_pending(&self) -> bool {
        self.pending.is_some()
    }
}
