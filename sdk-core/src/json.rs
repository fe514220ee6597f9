//! Strict JSON scanning without building a tree.
//!
//! The core never materialises event arguments: it only needs to validate them, split a top-level
//! array into element slices, read a few object members (handshake, CONNECT payloads, placeholders)
//! and write string literals. Everything here follows RFC 8259 strictly (no trailing commas, no
//! comments, no leading zeros, no lone surrogates in `\u` escapes), never panics and limits nesting
//! depth to [`MAX_DEPTH`].

use std::borrow::Cow;
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
    todo!()
}

/// Scans one value starting at byte `start` (leading whitespace skipped) and returns its kind and
/// the byte range of the value itself (without surrounding whitespace).
pub fn scan_value(text: &str, start: usize) -> Result<(JsonKind, Range<usize>), JsonError> {
    todo!()
}

/// The byte ranges (into `text`) of the elements of the array that `text` holds exactly.
pub fn array_elements(text: &str) -> Result<Vec<Range<usize>>, JsonError> {
    todo!()
}

/// The members of the object that `text` holds exactly: unescaped key and the byte range of the value.
pub fn object_members(text: &str) -> Result<Vec<(Cow<'_, str>, Range<usize>)>, JsonError> {
    todo!()
}

/// Unescapes a JSON string literal (with its quotes). Borrowed when it has no escapes.
pub fn parse_string(literal: &str) -> Result<Cow<'_, str>, JsonError> {
    todo!()
}

/// Parses a non-negative integer literal with no fraction or exponent (e.g. a placeholder `num`).
pub fn parse_u64(literal: &str) -> Option<u64> {
    todo!()
}

/// Appends `s` to `out` as a JSON string literal, escaping as `JSON.stringify` does.
pub fn write_string(out: &mut String, s: &str) {
    todo!()
}
