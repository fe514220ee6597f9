//! Building and searching text without `core::fmt` and the generic string searcher.
//!
//! `format!`, `write!` and `to_string()` on numbers bring `core::fmt`'s machinery (the argument
//! walker, padding, integer formatting, several kilobytes) into the browser build, and
//! `str::contains(&str)` brings the Two-Way searcher (about 1.7 KB). The core's URLs, packets and
//! runtime messages are short concatenations, so they are built with these helpers instead. The
//! `Display` impls of the public errors stay (the native SDK uses them); they write the errors'
//! `message()`, built with these helpers, so a driver can report an error through `message()`
//! without `core::fmt`, and `Display` itself needs only `Formatter::write_str`.

/// The concatenation of `parts`.
pub(crate) fn concat(parts: &[&str]) -> String {
    let mut out = String::with_capacity(parts.iter().map(|p| p.len()).sum());
    for p in parts {
        out.push_str(p);
    }
    out
}

/// `s` without the trailing bytes `b` (an ASCII byte), as `s.trim_end_matches(char::from(b))`
/// without the char pattern machinery.
pub(crate) fn trim_end_byte(s: &str, b: u8) -> &str {
    let end = s.len() - s.bytes().rev().take_while(|&c| c == b).count();
    s.get(..end).unwrap_or(s)
}

/// Appends `s` escaped as `str::escape_default` escapes it (`\t`, `\r`, `\n`, `\\`, `\'`, `\"`,
/// printable ASCII as is, anything else as `\u{hex}`), without its iterator adapters, which are
/// most of an error message's code in the browser build.
pub(crate) fn push_escaped(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\n' => out.push_str("\\n"),
            '\\' | '\'' | '"' => {
                out.push('\\');
                out.push(c);
            }
            ' '..='~' => out.push(c),
            _ => {
                out.push_str("\\u{");
                let n = u32::from(c);
                // Lowercase hex without leading zeros (at least one digit).
                let mut shift = 28;
                while shift > 0 && n >> shift == 0 {
                    shift -= 4;
                }
                loop {
                    out.push(char::from_digit((n >> shift) & 0xf, 16).unwrap_or('0'));
                    if shift == 0 {
                        break;
                    }
                    shift -= 4;
                }
                out.push('}');
            }
        }
    }
}

/// `n` in decimal (as `n.to_string()`).
pub(crate) fn decimal(n: u64) -> String {
    let mut out = String::new();
    crate::json::write_u64(&mut out, n);
    out
}

/// Whether `needle` occurs in `hay`. Natively this is `str::contains`, whose searcher is fast on
/// long texts (an event's first argument is scanned for `"data"`); in the browser build a plain
/// scan from each occurrence of the needle's first byte, which is small.
#[cfg(not(target_arch = "wasm32"))]
pub(crate) fn contains(hay: &str, needle: &str) -> bool {
    hay.contains(needle)
}

/// Whether `needle` occurs in `hay` (see the native version).
#[cfg(target_arch = "wasm32")]
pub(crate) fn contains(hay: &str, needle: &str) -> bool {
    scan_contains(hay.as_bytes(), needle.as_bytes())
}

#[cfg(any(test, target_arch = "wasm32"))]
fn scan_contains(h: &[u8], n: &[u8]) -> bool {
    let Some(&first) = n.first() else { return true };
    h.iter().enumerate().any(|(i, &c)| c == first && h.get(i..i + n.len()) == Some(n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpers_agree_with_std() {
        assert_eq!(concat(&["a", "", "bc"]), "abc");
        assert_eq!(concat(&[]), "");
        assert_eq!(decimal(0), "0");
        let mut all = String::new();
        for c in (0..0x3000u32).chain([0xfeff, 0x1_0000, 0x1_d4b8, 0x10_ffff]).filter_map(char::from_u32) {
            all.push(c);
        }
        let mut escaped = String::new();
        push_escaped(&mut escaped, &all);
        assert_eq!(escaped, all.escape_default().to_string());
        for s in ["", "/", "//", "a/b//", "é/", "/a"] {
            assert_eq!(trim_end_byte(s, b'/'), s.trim_end_matches('/'));
        }
        assert_eq!(decimal(u64::MAX), u64::MAX.to_string());
        for (hay, needle) in
            [("", ""), ("", "a"), ("abc", ""), ("abc", "bc"), ("abc", "bd"), ("aab", "ab"), ("ab", "abc")]
        {
            assert_eq!(contains(hay, needle), hay.contains(needle), "{hay:?} {needle:?}");
            assert_eq!(scan_contains(hay.as_bytes(), needle.as_bytes()), hay.contains(needle), "{hay:?} {needle:?}");
        }
    }

    /// The messages with runtime parts, against the `format!` templates they replaced.
    #[test]
    fn messages_read_as_the_format_templates_did() {
        use crate::client::{CommandError, EmitError, Fault, HttpError, InvalidEmit};
        use crate::{ArgsError, engineio, json::JsonError, socketio};
        let json = JsonError { offset: 7, reason: "unexpected end" };
        assert_eq!(json.to_string(), "invalid JSON: unexpected end at byte 7");
        assert_eq!(
            ArgsError::NotAnArray(json.clone()).to_string(),
            "arguments must be a JSON array: unexpected end at byte 7"
        );
        for b in [b'7', b'\n', b'\'', 0x80] {
            let want = format!("unknown Engine.IO packet type '{}'", char::from(b).escape_default());
            assert_eq!(engineio::Error::UnknownType(b).to_string(), want);
        }
        assert_eq!(
            socketio::Error::TooManyAttachments { announced: 12, max: 10 }.to_string(),
            "too many attachments: 12 announced, at most 10 allowed"
        );
        assert_eq!(
            socketio::Error::BadJson(json).to_string(),
            "invalid payload: invalid JSON: unexpected end at byte 7"
        );
        assert_eq!(
            EmitError::TooLarge { size: 1_000_001, max: 1_000_000 }.to_string(),
            "packet of 1000001 bytes exceeds the server's maxPayload of 1000000 bytes; send less per emit"
        );
        assert_eq!(
            InvalidEmit::ReservedName("connect".into()).to_string(),
            format!("\"{}\" is a reserved event name; choose another name", "connect")
        );
        let odd = "a\"b\n\u{e9}";
        assert_eq!(
            CommandError::InvalidNamespace(odd.into()).to_string(),
            format!("invalid namespace \"{}\": it must start with '/'", odd.escape_default())
        );
        assert_eq!(Fault::HttpStatus(503).to_string(), "polling request answered HTTP 503");
        assert_eq!(
            Fault::Http(HttpError::TooLarge { max_body: 65_536 }).to_string(),
            "polling request failed: response body larger than 65536 bytes"
        );
        assert_eq!(Fault::Http(HttpError::Network("reset".into())).to_string(), "polling request failed: reset");
    }
}
