//! Strict JSON scanning without building a tree.
//!
//! The core never materialises event arguments: it only needs to validate them, split a top-level
//! array into element slices, read a few object members (handshake, CONNECT payloads, placeholders)
//! and write string literals. Everything here follows RFC 8259 strictly (no trailing commas, no
//! comments, no leading zeros, no lone surrogates in `\u` escapes), never panics and limits nesting
//! depth to [`MAX_DEPTH`].
//!
//! The scanner is iterative and works on bytes: the input is a `&str`, so every byte at or above
//! 0x80 belongs to a valid UTF-8 sequence and can be skipped inside strings without decoding.
//! Differences from `JSON.parse` (and `serde_json`): a `\u` escape of a lone surrogate is refused
//! here, while both of those accept it.

use std::borrow::Cow;
use std::fmt;
use std::ops::Range;

/// Deepest nesting of arrays/objects accepted; deeper input is an error, not a stack overflow.
pub const MAX_DEPTH: usize = 128;

/// Why a JSON text was refused, and at which byte offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonError {
    /// Byte offset in the scanned text where the problem was found.
    pub offset: usize,
    /// A short static description ("unexpected end", "trailing characters", ...).
    pub reason: &'static str,
}

impl JsonError {
    /// What `Display` writes, built without `core::fmt` so that a browser driver can report it
    /// without bringing the formatting machinery into its build.
    pub fn message(&self) -> String {
        crate::text::concat(&["invalid JSON: ", self.reason, " at byte ", &crate::text::decimal(self.offset as u64)])
    }
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())
    }
}

impl std::error::Error for JsonError {}

/// The kind of a JSON value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonKind {
    /// `{...}`
    Object,
    /// `[...]`
    Array,
    /// `"..."`
    String,
    /// A number literal.
    Number,
    /// `true` or `false`.
    Bool,
    /// `null`.
    Null,
}

/// Validates that `text` holds exactly one JSON value (surrounding whitespace allowed) and returns its kind.
pub fn validate(text: &str) -> Result<JsonKind, JsonError> {
    let (kind, range) = scan_plain(text, 0, MAX_DEPTH)?;
    expect_end(text.as_bytes(), range.end)?;
    Ok(kind)
}

/// Scans one value starting at byte `start` (leading whitespace skipped) and returns its kind and
/// the byte range of the value itself (without surrounding whitespace).
pub fn scan_value(text: &str, start: usize) -> Result<(JsonKind, Range<usize>), JsonError> {
    scan_plain(text, start, MAX_DEPTH)
}

/// The byte ranges (into `text`) of the elements of the array that `text` holds exactly.
pub fn array_elements(text: &str) -> Result<Vec<Range<usize>>, JsonError> {
    array_elements_noting(text, usize::MAX).map(|(items, _)| items)
}

/// [`array_elements`] of the array at `range` in `text`, as ranges into `text`.
pub(crate) fn array_elements_in(text: &str, range: Range<usize>) -> Option<Vec<Range<usize>>> {
    let start = range.start;
    let mut items = array_elements(text.get(range)?).ok()?;
    shift_ranges(&mut items, start);
    Some(items)
}

/// Moves ranges found in a slice starting at `by` into the whole text (in place, one loop for
/// every caller).
pub(crate) fn shift_ranges(items: &mut [Range<usize>], by: usize) {
    for r in items {
        r.start += by;
        r.end += by;
    }
}

/// [`array_elements`], also telling whether element `noted` is an object that may have a `data`
/// member: one of its own keys is spelled `"data"`, or has an escape that could spell it. `false`
/// proves it has none (an event's first argument is then no envelope), at no extra pass.
pub(crate) fn array_elements_noting(text: &str, noted: usize) -> Result<(Vec<Range<usize>>, bool), JsonError> {
    let b = text.as_bytes();
    let mut data_key = DataKey { b, depth: 0, found: false };
    let mut i = skip_ws(b, 0);
    if b.get(i) != Some(&b'[') {
        return Err(err(i, "expected an array"));
    }
    let mut out = Vec::new();
    i = skip_ws(b, i + 1);
    if b.get(i) == Some(&b']') {
        i += 1;
    } else {
        loop {
            // In the browser build the scanner is instantiated once (bytes over speed): the noted
            // element is not looked into, and the answer is "maybe".
            #[cfg(not(target_arch = "wasm32"))]
            let (_, r) = if out.len() == noted {
                scan_with(text, i, MAX_DEPTH - 1, &mut data_key)?
            } else {
                scan_plain(text, i, MAX_DEPTH - 1)?
            };
            #[cfg(target_arch = "wasm32")]
            let (_, r) = {
                data_key.found |= out.len() == noted;
                scan_plain(text, i, MAX_DEPTH - 1)?
            };
            i = skip_ws(b, r.end);
            out.push(r);
            match b.get(i) {
                Some(b',') => i += 1,
                Some(b']') => {
                    i += 1;
                    break;
                }
                Some(_) => return Err(err(i, "expected ',' or ']'")),
                None => return Err(err(i, "unexpected end")),
            }
        }
    }
    expect_end(b, i)?;
    Ok((out, data_key.found))
}

/// Looks for an own key of an object that may be `data` (see [`array_elements_noting`]).
struct DataKey<'a> {
    b: &'a [u8],
    /// Containers open inside the scanned value.
    depth: usize,
    found: bool,
}

impl Visitor for DataKey<'_> {
    fn open(&mut self, _kind: JsonKind) {
        self.depth += 1;
    }
    fn key(&mut self, literal: Range<usize>, escaped: bool) {
        if self.depth == 1 && !self.found {
            self.found = escaped || (literal.len() == 6 && self.b.get(literal) == Some(b"\"data\""));
        }
    }
    fn value(&mut self, kind: JsonKind, _range: Range<usize>) {
        if matches!(kind, JsonKind::Object | JsonKind::Array) {
            self.depth = self.depth.saturating_sub(1);
        }
    }
}

/// The members of the object that `text` holds exactly: unescaped key and the byte range of the value.
#[allow(clippy::type_complexity)] // the signature is fixed public API
pub fn object_members(text: &str) -> Result<Vec<(Cow<'_, str>, Range<usize>)>, JsonError> {
    let b = text.as_bytes();
    let mut i = skip_ws(b, 0);
    if b.get(i) != Some(&b'{') {
        return Err(err(i, "expected an object"));
    }
    let mut out = Vec::new();
    i = skip_ws(b, i + 1);
    if b.get(i) == Some(&b'}') {
        i += 1;
    } else {
        loop {
            if b.get(i) != Some(&b'"') {
                return Err(err(i, "expected a string key"));
            }
            let (key_end, escaped) = scan_string(b, i)?;
            let key = unescape(text, i..key_end, escaped)?;
            i = skip_ws(b, key_end);
            if b.get(i) != Some(&b':') {
                return Err(err(i, "expected ':'"));
            }
            let (_, r) = scan_plain(text, i + 1, MAX_DEPTH - 1)?;
            i = skip_ws(b, r.end);
            out.push((key, r));
            match b.get(i) {
                Some(b',') => i = skip_ws(b, i + 1),
                Some(b'}') => {
                    i += 1;
                    break;
                }
                Some(_) => return Err(err(i, "expected ',' or '}'")),
                None => return Err(err(i, "unexpected end")),
            }
        }
    }
    expect_end(b, i)?;
    Ok(out)
}

/// Unescapes a JSON string literal (with its quotes). Borrowed when it has no escapes.
pub fn parse_string(literal: &str) -> Result<Cow<'_, str>, JsonError> {
    let b = literal.as_bytes();
    if b.first() != Some(&b'"') {
        return Err(err(0, "expected a string"));
    }
    let (end, escaped) = scan_string(b, 0)?;
    if end != b.len() {
        return Err(err(end, "trailing characters"));
    }
    unescape(literal, 0..end, escaped)
}

/// The string member `key` of the object that `obj` holds (the last one when it is repeated, as
/// with `JSON.parse`), unescaped; `None` when `obj` is no object or the member no string.
pub(crate) fn string_member(obj: &str, key: &str) -> Option<String> {
    let members = object_members(obj).ok()?;
    let (_, r) = members.into_iter().rev().find(|(k, _)| k == key)?;
    parse_string(obj.get(r)?).ok().map(Cow::into_owned)
}

/// Parses a non-negative integer literal with no fraction or exponent (e.g. a placeholder `num`).
pub fn parse_u64(literal: &str) -> Option<u64> {
    let b = literal.as_bytes();
    if b.is_empty() || (b.len() > 1 && b.first() == Some(&b'0')) {
        return None;
    }
    b.iter().try_fold(0u64, |acc, &c| if c.is_ascii_digit() { times_ten_plus(acc, c - b'0') } else { None })
}

/// `acc * 10 + digit`, `None` on overflow. Compared with `u64::MAX / 10` rather than
/// `checked_mul`, which on wasm32 is a 128-bit multiply in software.
pub(crate) fn times_ten_plus(acc: u64, digit: u8) -> Option<u64> {
    if acc > u64::MAX / 10 { None } else { (acc * 10).checked_add(u64::from(digit)) }
}

/// Appends `s` to `out` as a JSON string literal, escaping as `JSON.stringify` does.
pub fn write_string(out: &mut String, s: &str) {
    out.reserve(s.len() + 2);
    out.push('"');
    let mut run = 0;
    for (i, &c) in s.as_bytes().iter().enumerate() {
        let short = match c {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            0x08 => "\\b",
            0x0c => "\\f",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0..=0x1f => "",
            _ => continue,
        };
        // `i` is at an ASCII byte, hence a char boundary.
        out.push_str(s.get(run..i).unwrap_or_default());
        if short.is_empty() {
            out.push_str("\\u00");
            out.push(hex_digit(c >> 4));
            out.push(hex_digit(c & 0x0f));
        } else {
            out.push_str(short);
        }
        run = i + 1;
    }
    out.push_str(s.get(run..).unwrap_or_default());
    out.push('"');
}

/// Appends `n` in decimal: a number literal, a port, a count in a message. The core's text is
/// built with `push_str` and this rather than `format!`/`write!`, which would bring `core::fmt`'s
/// machinery (kilobytes) into the browser build.
pub fn write_u64(out: &mut String, mut n: u64) {
    // Least significant digit first, into the end of a buffer that fits `u64::MAX`.
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    for d in digits.iter_mut().rev() {
        *d = b'0' + u8::try_from(n % 10).unwrap_or(0);
        start -= 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for &d in digits.get(start..).unwrap_or_default() {
        out.push(char::from(d));
    }
}

fn hex_digit(v: u8) -> char {
    char::from_digit(u32::from(v), 16).unwrap_or('0')
}

// ------------------------------------------------------------------------------------------ scanner

/// Receives the structure of a value while it is scanned. Every method defaults to doing nothing,
/// so plain validation compiles to the bare scanner.
pub(crate) trait Visitor {
    /// A container starts.
    fn open(&mut self, _kind: JsonKind) {}
    /// An object key (the range of its literal, quotes included; `escaped`: whether it has an
    /// escape) was read; its value follows.
    fn key(&mut self, _literal: Range<usize>, _escaped: bool) {}
    /// A value is complete (containers after their closing bracket).
    fn value(&mut self, _kind: JsonKind, _range: Range<usize>) {}
}

#[cfg(any(test, not(target_arch = "wasm32")))]
struct NoVisit;

#[cfg(any(test, not(target_arch = "wasm32")))]
impl Visitor for NoVisit {}

/// In the browser build the scanner is compiled for this one visitor type (bytes over speed, as
/// in [`array_elements_noting`]): plain scans pass `None`, which costs a branch per value, and the
/// placeholder finder is called through the trait object ([`scan_visiting`]).
#[cfg(any(test, target_arch = "wasm32"))]
impl Visitor for Option<&mut dyn Visitor> {
    fn open(&mut self, kind: JsonKind) {
        if let Some(v) = self {
            v.open(kind);
        }
    }
    fn key(&mut self, literal: Range<usize>, escaped: bool) {
        if let Some(v) = self {
            v.key(literal, escaped);
        }
    }
    fn value(&mut self, kind: JsonKind, range: Range<usize>) {
        if let Some(v) = self {
            v.value(kind, range);
        }
    }
}

/// [`scan_with`] visiting nothing.
#[inline]
fn scan_plain(text: &str, start: usize, max_depth: usize) -> Result<(JsonKind, Range<usize>), JsonError> {
    #[cfg(not(target_arch = "wasm32"))]
    let mut v = NoVisit;
    #[cfg(target_arch = "wasm32")]
    let mut v: Option<&mut dyn Visitor> = None;
    scan_with(text, start, max_depth, &mut v)
}

/// [`scan_with`] for a visitor off the hot path (the placeholder finder): natively compiled for
/// it, in the browser build through the one scanner (see the `Option` visitor above).
pub(crate) fn scan_visiting<V: Visitor>(
    text: &str,
    start: usize,
    max_depth: usize,
    v: &mut V,
) -> Result<(JsonKind, Range<usize>), JsonError> {
    #[cfg(not(target_arch = "wasm32"))]
    return scan_with(text, start, max_depth, v);
    #[cfg(target_arch = "wasm32")]
    return scan_with(text, start, max_depth, &mut Some(v as &mut dyn Visitor));
}

fn err(offset: usize, reason: &'static str) -> JsonError {
    JsonError { offset, reason }
}

/// The index of the first non-whitespace byte at or after `i` (JSON whitespace: space, tab, LF, CR).
#[inline]
pub(crate) fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while let Some(b' ' | b'\t' | b'\n' | b'\r') = b.get(i) {
        i += 1;
    }
    i
}

fn expect_end(b: &[u8], end: usize) -> Result<(), JsonError> {
    let i = skip_ws(b, end);
    if i == b.len() { Ok(()) } else { Err(err(i, "trailing characters")) }
}

/// Scans one value at `start` (after whitespace), allowing `max_depth` nested containers, and
/// reports its structure to `v`. Iterative: the open containers live in a fixed array.
pub(crate) fn scan_with<V: Visitor>(
    text: &str,
    start: usize,
    max_depth: usize,
    v: &mut V,
) -> Result<(JsonKind, Range<usize>), JsonError> {
    let b = text.as_bytes();
    let max_depth = max_depth.min(MAX_DEPTH);
    let mut i = skip_ws(b, start);
    let begin = i;
    // Start offset of each open container; bit `n` of `objects` is set when container `n` is an
    // object (two 64-bit words rather than a u128, whose shifts are software calls on wasm32).
    let mut starts = [0usize; MAX_DEPTH];
    let mut objects = [0u64; MAX_DEPTH / 64];
    let mut depth = 0usize;
    loop {
        // A value is expected at `i`.
        i = skip_ws(b, i);
        let Some(&c) = b.get(i) else { return Err(err(i, "unexpected end")) };
        let vstart = i;
        let kind = match c {
            b'{' | b'[' => {
                let is_obj = c == b'{';
                let Some(slot) = starts.get_mut(depth).filter(|_| depth < max_depth) else {
                    return Err(err(i, "nesting too deep"));
                };
                *slot = i;
                if let Some(word) = objects.get_mut(depth / 64) {
                    let bit = 1u64 << (depth % 64);
                    if is_obj {
                        *word |= bit;
                    } else {
                        *word &= !bit;
                    }
                }
                depth += 1;
                let kind = if is_obj { JsonKind::Object } else { JsonKind::Array };
                v.open(kind);
                i = skip_ws(b, i + 1);
                let close = if is_obj { b'}' } else { b']' };
                if b.get(i) == Some(&close) {
                    depth -= 1;
                    i += 1;
                    kind
                } else {
                    if is_obj {
                        i = read_key(b, i, v)?;
                    }
                    continue;
                }
            }
            b'"' => {
                i = scan_string(b, i)?.0;
                JsonKind::String
            }
            b't' => {
                i = literal(b, i, b"true")?;
                JsonKind::Bool
            }
            b'f' => {
                i = literal(b, i, b"false")?;
                JsonKind::Bool
            }
            b'n' => {
                i = literal(b, i, b"null")?;
                JsonKind::Null
            }
            b'-' | b'0'..=b'9' => {
                i = scan_number(b, i)?;
                JsonKind::Number
            }
            _ => return Err(err(i, "expected a value")),
        };
        v.value(kind, vstart..i);
        let mut last = kind;
        // Close containers until one wants another element.
        loop {
            if depth == 0 {
                return Ok((last, begin..i));
            }
            i = skip_ws(b, i);
            let top = depth - 1;
            let is_obj = objects.get(top / 64).is_some_and(|word| word & (1u64 << (top % 64)) != 0);
            match b.get(i) {
                Some(b',') => {
                    i += 1;
                    if is_obj {
                        i = read_key(b, skip_ws(b, i), v)?;
                    }
                    break;
                }
                Some(b']') if !is_obj => last = JsonKind::Array,
                Some(b'}') if is_obj => last = JsonKind::Object,
                Some(_) => return Err(err(i, if is_obj { "expected ',' or '}'" } else { "expected ',' or ']'" })),
                None => return Err(err(i, "unexpected end")),
            }
            i += 1;
            depth -= 1;
            let open = starts.get(depth).copied().unwrap_or(begin);
            v.value(last, open..i);
        }
    }
}

/// Reads `"key"` `:` at `i` and returns the position after the colon.
fn read_key<V: Visitor>(b: &[u8], i: usize, v: &mut V) -> Result<usize, JsonError> {
    if b.get(i) != Some(&b'"') {
        return Err(err(i, "expected a string key"));
    }
    let (end, escaped) = scan_string(b, i)?;
    v.key(i..end, escaped);
    let j = skip_ws(b, end);
    if b.get(j) != Some(&b':') {
        return Err(err(j, "expected ':'"));
    }
    Ok(j + 1)
}

fn literal(b: &[u8], i: usize, word: &'static [u8]) -> Result<usize, JsonError> {
    if b.get(i..i + word.len()) == Some(word) { Ok(i + word.len()) } else { Err(err(i, "invalid literal")) }
}

fn digits(b: &[u8], mut i: usize) -> usize {
    while let Some(b'0'..=b'9') = b.get(i) {
        i += 1;
    }
    i
}

/// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?` at `i`; returns the end.
fn scan_number(b: &[u8], mut i: usize) -> Result<usize, JsonError> {
    if b.get(i) == Some(&b'-') {
        i += 1;
    }
    match b.get(i) {
        Some(b'0') => i += 1,
        Some(b'1'..=b'9') => i = digits(b, i + 1),
        _ => return Err(err(i, "invalid number")),
    }
    if b.get(i) == Some(&b'.') {
        let j = digits(b, i + 1);
        if j == i + 1 {
            return Err(err(j, "invalid number"));
        }
        i = j;
    }
    if let Some(b'e' | b'E') = b.get(i) {
        i += 1;
        if let Some(b'+' | b'-') = b.get(i) {
            i += 1;
        }
        let j = digits(b, i);
        if j == i {
            return Err(err(j, "invalid number"));
        }
        i = j;
    }
    Ok(i)
}

fn hex4(b: &[u8], i: usize) -> Result<u32, JsonError> {
    let quad = b.get(i..i + 4).ok_or_else(|| err(i, "invalid \\u escape"))?;
    quad.iter().try_fold(0u32, |acc, &c| {
        let d = char::from(c).to_digit(16).ok_or_else(|| err(i, "invalid \\u escape"))?;
        Ok(acc << 4 | d)
    })
}

/// Scans the string literal whose opening quote is at `i`; returns the end (after the closing
/// quote) and whether it contains escapes.
/// The index of the first byte at or after `j` that ends a run of plain string bytes (a quote, a
/// backslash or a control character), or `b.len()`. Eight bytes at a time where it can: strings
/// are most of an event's text, and this scan runs on every event.
#[cfg_attr(not(target_arch = "wasm32"), inline(always))]
fn skip_plain(b: &[u8], mut j: usize) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    // The high bit of each byte of `x` that is zero, exact for the lowest such byte (the classic
    // bit trick: a borrow can only mark bytes above a real zero byte).
    let zeros = |x: u64| x.wrapping_sub(ONES) & !x & HIGHS;
    // The special bytes of a little-endian word: quotes, backslashes, and bytes below 0x20 (for
    // which `byte & 0xE0` is zero). The lowest marked byte is the first special one.
    let special =
        |x: u64| zeros(x ^ (ONES * u64::from(b'"'))) | zeros(x ^ (ONES * u64::from(b'\\'))) | zeros(x & (ONES * 0xE0));
    while let Some(chunk) = b.get(j..j + 8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let mask = special(u64::from_le_bytes(word));
        if mask != 0 {
            return j + (mask.trailing_zeros() / 8) as usize;
        }
        j += 8;
    }
    // The last few bytes, padded with a plain byte.
    let rest = b.get(j..).unwrap_or_default();
    let mut word = [b'a'; 8];
    if let Some(dst) = word.get_mut(..rest.len()) {
        dst.copy_from_slice(rest);
    }
    let mask = special(u64::from_le_bytes(word));
    if mask == 0 { b.len() } else { (j + (mask.trailing_zeros() / 8) as usize).min(b.len()) }
}

#[cfg_attr(not(target_arch = "wasm32"), inline(always))]
fn scan_string(b: &[u8], i: usize) -> Result<(usize, bool), JsonError> {
    let mut j = i + 1;
    let mut escaped = false;
    loop {
        j = skip_plain(b, j);
        match b.get(j) {
            None => return Err(err(j, "unterminated string")),
            Some(b'"') => return Ok((j + 1, escaped)),
            Some(b'\\') => {
                escaped = true;
                match b.get(j + 1) {
                    Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => j += 2,
                    Some(b'u') => {
                        let cp = hex4(b, j + 2)?;
                        if (0xDC00..0xE000).contains(&cp) {
                            return Err(err(j, "lone surrogate"));
                        }
                        if (0xD800..0xDC00).contains(&cp) {
                            let low = if b.get(j + 6..j + 8) == Some(b"\\u") { hex4(b, j + 8)? } else { 0 };
                            if !(0xDC00..0xE000).contains(&low) {
                                return Err(err(j, "lone surrogate"));
                            }
                            j += 12;
                        } else {
                            j += 6;
                        }
                    }
                    _ => return Err(err(j, "invalid escape")),
                }
            }
            Some(_) => return Err(err(j, "control character in string")),
        }
    }
}

/// The value of the string literal `text[lit]` (already scanned by [`scan_string`]).
fn unescape(text: &str, lit: Range<usize>, escaped: bool) -> Result<Cow<'_, str>, JsonError> {
    let inner = (lit.start + 1)..lit.end.saturating_sub(1);
    let bad = || err(lit.start, "invalid string");
    let raw = text.get(inner.clone()).ok_or_else(bad)?;
    if !escaped {
        return Ok(Cow::Borrowed(raw));
    }
    let b = raw.as_bytes();
    let mut out = String::with_capacity(raw.len());
    let mut run = 0;
    let mut j = 0;
    while let Some(&c) = b.get(j) {
        if c != b'\\' {
            j += 1;
            continue;
        }
        out.push_str(raw.get(run..j).ok_or_else(bad)?);
        let (ch, len) = match b.get(j + 1) {
            Some(b'"') => ('"', 2),
            Some(b'\\') => ('\\', 2),
            Some(b'/') => ('/', 2),
            Some(b'b') => ('\u{8}', 2),
            Some(b'f') => ('\u{c}', 2),
            Some(b'n') => ('\n', 2),
            Some(b'r') => ('\r', 2),
            Some(b't') => ('\t', 2),
            Some(b'u') => {
                let hi = hex4(b, j + 2)?;
                if (0xD800..0xDC00).contains(&hi) {
                    let lo = hex4(b, j + 8)?;
                    let cp = 0x10000 + ((hi - 0xD800) << 10) + (lo.wrapping_sub(0xDC00) & 0x3ff);
                    (char::from_u32(cp).ok_or_else(bad)?, 12)
                } else {
                    (char::from_u32(hi).ok_or_else(bad)?, 6)
                }
            }
            _ => return Err(bad()),
        };
        out.push(ch);
        j += len;
        run = j;
    }
    out.push_str(raw.get(run..).ok_or_else(bad)?);
    Ok(Cow::Owned(out))
}

#[cfg(test)]
mod tests {
    use super::{
        JsonKind, MAX_DEPTH, NoVisit, Visitor, array_elements_noting, scan_with, skip_plain, times_ten_plus, write_u64,
    };

    /// The browser build's one scanner: `None` scans as `NoVisit`, `Some` visits as the visitor.
    #[test]
    fn the_option_visitor_forwards_everything() {
        #[derive(Default, PartialEq, Debug)]
        struct Log(Vec<String>);
        impl Visitor for Log {
            fn open(&mut self, kind: JsonKind) {
                self.0.push(format!("open {kind:?}"));
            }
            fn key(&mut self, literal: std::ops::Range<usize>, escaped: bool) {
                self.0.push(format!("key {literal:?} {escaped}"));
            }
            fn value(&mut self, kind: JsonKind, range: std::ops::Range<usize>) {
                self.0.push(format!("value {kind:?} {range:?}"));
            }
        }
        for text in
            [r#" {"a\u0062":[1,{"_placeholder":true,"num":0}],"c":null} "#, "[1,2", "\"x\"", "{}", "[[[]]]", "tru"]
        {
            let (mut direct, mut through) = (Log::default(), Log::default());
            let want = scan_with(text, 0, MAX_DEPTH, &mut direct);
            assert_eq!(scan_with(text, 0, MAX_DEPTH, &mut Some(&mut through as &mut dyn Visitor)), want, "{text}");
            assert_eq!(through, direct, "{text}");
            assert_eq!(
                scan_with(text, 0, MAX_DEPTH, &mut None::<&mut dyn Visitor>),
                scan_with(text, 0, MAX_DEPTH, &mut NoVisit)
            );
        }
    }

    #[test]
    fn times_ten_plus_is_checked_arithmetic() {
        for acc in [0, 1, u64::MAX / 10 - 1, u64::MAX / 10, u64::MAX / 10 + 1, u64::MAX] {
            for d in [0, 5, 6, 9] {
                assert_eq!(times_ten_plus(acc, d), acc.checked_mul(10).and_then(|n| n.checked_add(u64::from(d))));
            }
        }
    }

    #[test]
    fn write_u64_writes_decimal_as_display_does() {
        for n in [0, 1, 9, 10, 99, 100, 65_535, 1 << 32, 10_000_000_000_000_000_000, u64::MAX] {
            let mut s = String::from("x");
            write_u64(&mut s, n);
            assert_eq!(s, format!("x{n}"));
        }
    }

    #[test]
    fn the_noted_element_may_have_a_data_key_only_when_one_of_its_own_keys_may_spell_it() {
        let noted = |text: &str| array_elements_noting(text, 1).map(|(_, found)| found).unwrap();
        assert!(noted(r#"["e",{"id":"1","data":{}}]"#));
        assert!(noted(r#"["e",{"a":[{"x":1}],"data":2}]"#), "after a nested container");
        assert!(noted(r#"["e",{"d\u0061ta":1}]"#), "an escape may spell it");
        assert!(!noted(r#"["e",{"a":{"data":1}}]"#), "a nested key is not the argument's own");
        assert!(!noted(r#"["e",{"id":"1","dat":2,"datas":3}]"#));
        assert!(!noted(r#"["e",{},"data"]"#));
        assert!(!noted(r#"["e","data"]"#));
        assert!(!noted(r#"["e",[{"data":1}]]"#));
        assert!(!noted(r#"[{"data":1},{"x":1}]"#), "only the noted element counts");
        assert!(!noted("[]"));
    }

    #[test]
    fn skip_plain_finds_the_first_special_byte_from_every_start() {
        let naive = |b: &[u8], j: usize| {
            b.iter().skip(j).position(|&c| c == b'"' || c == b'\\' || c < 0x20).map_or(b.len(), |p| p + j)
        };
        let mut rng = 0x9E37_79B9_7F4A_7C15u64;
        for len in 0..40 {
            for _ in 0..50 {
                let text: Vec<u8> = (0..len)
                    .map(|_| {
                        rng ^= rng << 13;
                        rng ^= rng >> 7;
                        rng ^= rng << 17;
                        // Mostly plain bytes, sometimes each kind of special one (and UTF-8 bytes).
                        match rng % 23 {
                            0 => b'"',
                            1 => b'\\',
                            2 => 0x1F,
                            3 => 0x00,
                            4 => 0xC3,
                            5 => 0x20,
                            r => b'a' + (r % 26) as u8,
                        }
                    })
                    .collect();
                for j in 0..=text.len() {
                    assert_eq!(skip_plain(&text, j), naive(&text, j), "{text:?} from {j}");
                }
            }
        }
    }
}
