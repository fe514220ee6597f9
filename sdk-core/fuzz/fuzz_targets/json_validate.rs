//! The strict JSON scanner on arbitrary text: no panic, and its answers agree with each other.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tidings_core::json::{self, JsonKind};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let kind = json::validate(text);
    let start = data.first().map_or(0, |b| usize::from(*b) % (text.len() + 2));
    let _ = json::scan_value(text, start);

    // Every accessor agrees with `validate`.
    let elements = json::array_elements(text);
    assert_eq!(elements.is_ok(), kind == Ok(JsonKind::Array), "array_elements vs validate on {text:?}");
    for r in elements.unwrap_or_default() {
        let item = text.get(r).expect("element range on char boundaries");
        assert!(json::validate(item).is_ok(), "element {item:?} of {text:?}");
    }
    let members = json::object_members(text);
    assert_eq!(members.is_ok(), kind == Ok(JsonKind::Object), "object_members vs validate on {text:?}");
    for (key, r) in members.unwrap_or_default() {
        let value = text.get(r).expect("member range on char boundaries");
        assert!(json::validate(value).is_ok(), "member {key:?} of {text:?}");
        // Keys round-trip through write_string.
        let mut lit = String::new();
        json::write_string(&mut lit, &key);
        assert_eq!(json::parse_string(&lit).as_deref(), Ok(key.as_ref()));
    }

    // Strings: unescape, re-escape, unescape again gives the same value.
    if let Ok(s) = json::parse_string(text) {
        assert_eq!(kind, Ok(JsonKind::String));
        let mut lit = String::new();
        json::write_string(&mut lit, &s);
        assert_eq!(json::parse_string(&lit).as_deref(), Ok(s.as_ref()));
    }
    let trimmed = text.trim_matches(|c| matches!(c, ' ' | '\t' | '\n' | '\r'));
    if kind == Ok(JsonKind::String) {
        assert!(json::parse_string(trimmed).is_ok(), "validated string {text:?}");
    }
    if let Some(n) = json::parse_u64(text) {
        assert_eq!(n.to_string(), text);
    }
    // The raw text also round-trips as a string value.
    let mut lit = String::new();
    json::write_string(&mut lit, text);
    assert_eq!(json::validate(&lit), Ok(JsonKind::String));
    assert_eq!(json::parse_string(&lit).as_deref(), Ok(text));
});
