//! Engine.IO v4 packets: WebSocket frames and HTTP long-polling payloads (PROTOCOL.md §1).

use std::borrow::Cow;
use std::collections::VecDeque;

use crate::json;
use crate::text;

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

impl Error {
    /// What `Display` writes, built without `core::fmt` so that a browser driver can report it
    /// without bringing the formatting machinery into its build.
    pub fn message(&self) -> Cow<'static, str> {
        Cow::Borrowed(match self {
            Self::Empty => "empty Engine.IO packet",
            Self::UnknownType(b) => {
                let mut s = String::from("unknown Engine.IO packet type '");
                text::push_escaped(&mut s, char::from(*b).encode_utf8(&mut [0; 4]));
                s.push('\'');
                return Cow::Owned(s);
            }
            Self::BadHandshake(why) => return Cow::Owned(text::concat(&["invalid Engine.IO open packet: ", why])),
            Self::UnexpectedPayload => "Engine.IO packet carries an unexpected payload",
            Self::BadBase64 => "invalid base64 in a binary polling record",
            Self::NotUtf8 => "polling body is not valid UTF-8",
        })
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message())
    }
}

impl std::error::Error for Error {}

/// Decodes one WebSocket text frame.
pub fn decode_text(frame: &str) -> Result<Packet<'_>, Error> {
    let b = frame.as_bytes();
    let &kind = b.first().ok_or(Error::Empty)?;
    // The type is one ASCII byte, so index 1 is a char boundary.
    let rest = frame.get(1..).unwrap_or_default();
    let no_payload = |p: Packet<'static>| if rest.is_empty() { Ok(p) } else { Err(Error::UnexpectedPayload) };
    match kind {
        b'0' => parse_handshake(rest).map(Packet::Open),
        b'1' => no_payload(Packet::Close),
        b'2' | b'3' => {
            let probe = match rest {
                "" => false,
                "probe" => true,
                _ => return Err(Error::UnexpectedPayload),
            };
            Ok(if kind == b'2' { Packet::Ping { probe } } else { Packet::Pong { probe } })
        }
        b'4' => Ok(Packet::Message(Cow::Borrowed(rest))),
        b'5' => no_payload(Packet::Upgrade),
        b'6' => no_payload(Packet::Noop),
        other => Err(Error::UnknownType(other)),
    }
}

/// Decodes one WebSocket binary frame (EIO4: raw bytes, no prefix). Never fails.
pub fn decode_binary(frame: &[u8]) -> Packet<'_> {
    Packet::Binary(Cow::Borrowed(frame))
}

/// Decodes an HTTP long-polling response body: records separated by `\x1e`, binary as `b<base64>`.
/// Each record is decoded independently; a bad record yields an `Err` item.
pub fn decode_payload(body: &str) -> impl Iterator<Item = Result<Packet<'_>, Error>> {
    // Natively `split`, whose searcher (memchr) is fast on long bodies; in the browser build a
    // plain byte search, which is less code.
    #[cfg(not(target_arch = "wasm32"))]
    let records = body.split(SEPARATOR);
    #[cfg(target_arch = "wasm32")]
    let records = Records(Some(body));
    records.map(decode_record)
}

/// The records of a polling body, as `body.split(SEPARATOR)` gives them, found by a byte search
/// (the separator is one ASCII byte).
#[cfg(any(test, target_arch = "wasm32"))]
struct Records<'a>(Option<&'a str>);

#[cfg(any(test, target_arch = "wasm32"))]
impl<'a> Iterator for Records<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let rest = self.0?;
        match rest.bytes().position(|b| b == b'\x1e') {
            Some(i) => {
                self.0 = rest.get(i + 1..);
                rest.get(..i)
            }
            None => self.0.take(),
        }
    }
}

/// One polling record: `b<base64>` or a text packet.
fn decode_record(record: &str) -> Result<Packet<'_>, Error> {
    match record.strip_prefix('b') {
        Some(b64) => base64_decode(b64).map(|v| Packet::Binary(Cow::Owned(v))).ok_or(Error::BadBase64),
        None => decode_text(record),
    }
}

/// Reads the open packet's JSON. Duplicate keys resolve to the last one, as with `JSON.parse`.
fn parse_handshake(text: &str) -> Result<Handshake, Error> {
    let members = json::object_members(text).map_err(|_| Error::BadHandshake("not a JSON object"))?;
    let mut raw: [Option<&str>; 5] = [None; 5];
    for (key, range) in members {
        let slot = match key.as_ref() {
            "sid" => 0,
            "upgrades" => 1,
            "pingInterval" => 2,
            "pingTimeout" => 3,
            "maxPayload" => 4,
            _ => continue,
        };
        if let Some(s) = raw.get_mut(slot) {
            *s = text.get(range);
        }
    }
    let [sid, upgrades, ping_interval, ping_timeout, max_payload] = raw;
    let sid = sid.ok_or(Error::BadHandshake("missing sid"))?;
    let sid = json::parse_string(sid).map_err(|_| Error::BadHandshake("sid is not a string"))?.into_owned();
    let upgrades = upgrades.ok_or(Error::BadHandshake("missing upgrades"))?;
    let items = json::array_elements(upgrades).map_err(|_| Error::BadHandshake("upgrades is not an array"))?;
    let mut list = Vec::with_capacity(items.len());
    for r in items {
        let s = upgrades.get(r).and_then(|lit| json::parse_string(lit).ok());
        list.push(s.ok_or(Error::BadHandshake("upgrades holds a non-string"))?.into_owned());
    }
    let upgrades = list;
    let int = |raw: Option<&str>, missing, bad| {
        json::parse_u64(raw.ok_or(Error::BadHandshake(missing))?).ok_or(Error::BadHandshake(bad))
    };
    Ok(Handshake {
        sid,
        upgrades,
        ping_interval: int(ping_interval, "missing pingInterval", "pingInterval is not a non-negative integer")?,
        ping_timeout: int(ping_timeout, "missing pingTimeout", "pingTimeout is not a non-negative integer")?,
        max_payload: int(max_payload, "missing maxPayload", "maxPayload is not a non-negative integer")?,
    })
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
    if let Packet::Binary(data) = packet {
        return Frame::Binary(data.to_vec());
    }
    let mut out = String::new();
    encode_polling_record(packet, &mut out);
    Frame::Text(out)
}

/// Appends one packet to a polling body (binary as `b` + standard base64 with padding), without separator.
pub fn encode_polling_record(packet: &Packet<'_>, out: &mut String) {
    match packet {
        Packet::Open(h) => {
            out.push('0');
            write_handshake(h, out);
        }
        Packet::Close => out.push('1'),
        Packet::Ping { probe } => out.push_str(if *probe { "2probe" } else { "2" }),
        Packet::Pong { probe } => out.push_str(if *probe { "3probe" } else { "3" }),
        Packet::Message(text) => {
            out.reserve(text.len() + 1);
            out.push('4');
            out.push_str(text);
        }
        Packet::Binary(data) => {
            out.push('b');
            base64_encode(data, out);
        }
        Packet::Upgrade => out.push('5'),
        Packet::Noop => out.push('6'),
    }
}

fn write_handshake(h: &Handshake, out: &mut String) {
    out.push_str("{\"sid\":");
    json::write_string(out, &h.sid);
    out.push_str(",\"upgrades\":[");
    for (i, u) in h.upgrades.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        json::write_string(out, u);
    }
    for (key, n) in [
        ("],\"pingInterval\":", h.ping_interval),
        (",\"pingTimeout\":", h.ping_timeout),
        (",\"maxPayload\":", h.max_payload),
    ] {
        out.push_str(key);
        json::write_u64(out, n);
    }
    out.push('}');
}

/// The size `_getWritablePackets` counts for a packet's data: UTF-8 bytes of a string,
/// `ceil(len * 1.33)` for binary (computed in `f64` exactly as JavaScript does), nothing when absent.
fn data_size(packet: &Packet<'_>) -> u64 {
    let n = match packet {
        Packet::Message(text) => text.len(),
        Packet::Ping { probe: true } | Packet::Pong { probe: true } => "probe".len(),
        Packet::Binary(data) => {
            #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let n = (data.len() as f64 * 1.33).ceil() as u64;
            return n;
        }
        Packet::Open(h) => {
            let mut s = String::new();
            write_handshake(h, &mut s);
            s.len()
        }
        _ => 0,
    };
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// Takes packets off the front of `queue` and joins them into one polling POST body, following the
/// official client's batching rule under `max_payload` (`_getWritablePackets`); returns `None` when
/// the queue is empty. A single oversize packet is still taken alone.
///
/// As in engine.io-client, a `max_payload` of 0 means "no limit".
pub fn take_polling_batch(queue: &mut VecDeque<Packet<'static>>, max_payload: u64) -> Option<String> {
    if queue.is_empty() {
        return None;
    }
    let mut count = queue.len();
    if count > 1 && max_payload > 0 {
        let mut size: u64 = 1;
        for (i, packet) in queue.iter().enumerate() {
            size = size.saturating_add(data_size(packet));
            if i > 0 && size > max_payload {
                count = i;
                break;
            }
            size = size.saturating_add(2);
        }
    }
    let mut body = String::new();
    // `pop_front` rather than `drain`: the same, with less code in the browser build.
    for i in 0..count {
        let Some(packet) = queue.pop_front() else { break };
        if i > 0 {
            body.push(SEPARATOR);
        }
        encode_polling_record(&packet, &mut body);
    }
    Some(body)
}

// ------------------------------------------------------------------------------------------- base64

const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn b64_char(v: u32) -> char {
    BASE64.get((v & 63) as usize).map_or('A', |&c| char::from(c))
}

fn b64_value(c: u8) -> Option<u32> {
    let v = match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => return None,
    };
    Some(u32::from(v))
}

/// Appends the standard base64 (RFC 4648 §4, with padding) of `data` to `out`.
pub fn base64_encode(data: &[u8], out: &mut String) {
    out.reserve(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let byte = |k: usize| u32::from(chunk.get(k).copied().unwrap_or(0));
        let n = byte(0) << 16 | byte(1) << 8 | byte(2);
        out.push(b64_char(n >> 18));
        out.push(b64_char(n >> 12));
        out.push(if chunk.len() > 1 { b64_char(n >> 6) } else { '=' });
        out.push(if chunk.len() > 2 { b64_char(n) } else { '=' });
    }
}

/// Decodes strict standard base64 with padding: the length is a multiple of 4, only the standard
/// alphabet, `=` only as final padding, and the padding bits are zero (canonical form).
pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let b = text.as_bytes();
    if !b.len().is_multiple_of(4) {
        return None;
    }
    let mut out = Vec::with_capacity(b.len() / 4 * 3);
    let quads = b.len() / 4;
    for (q, chunk) in b.chunks_exact(4).enumerate() {
        let &[c0, c1, c2, c3] = chunk else { return None };
        let last = q + 1 == quads;
        let (v0, v1) = (b64_value(c0)?, b64_value(c1)?);
        let hi = v0 << 18 | v1 << 12;
        match (c2, c3) {
            (b'=', b'=') if last && v1 & 0x0f == 0 => out.push((hi >> 16) as u8),
            (_, b'=') if last => {
                let v2 = b64_value(c2)?;
                if v2 & 0x03 != 0 {
                    return None;
                }
                let n = hi | v2 << 6;
                out.extend_from_slice(&[(n >> 16) as u8, (n >> 8) as u8]);
            }
            _ => {
                let n = hi | b64_value(c2)? << 6 | b64_value(c3)?;
                out.extend_from_slice(&[(n >> 16) as u8, (n >> 8) as u8, n as u8]);
            }
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    /// The browser build's record search splits as `str::split` does.
    #[test]
    fn records_split_as_str_split() {
        for body in ["", "\x1e", "4a", "4a\x1e", "\x1e4a", "4a\x1e\x1e4é\x1eb", "4é\x1e\x1e"] {
            let ours: Vec<&str> = super::Records(Some(body)).collect();
            assert_eq!(ours, body.split(super::SEPARATOR).collect::<Vec<_>>(), "{body:?}");
        }
    }
}
