//! The event schema.
//!
//! Socket.IO event names are free-form strings. Tidings adds three conventions on top, none of them
//! enforced on the wire:
//!
//! - subscription patterns: an exact name, a prefix (`task.*`, `chat:*`) or everything (`*`), see
//!   [`EventPattern`];
//! - naming helpers for the two common styles, `entity.action` ([`DottedName`]) and
//!   `domain:entity:action` ([`ColonName`]);
//! - an optional envelope around the first argument (`{"id", "type", "version", "timestamp",
//!   "source", "data", "metadata"}`), whose `id` feeds de-duplication ([`envelope_id`], no serde)
//!   and which applications can deserialise with the serde types `Envelope` and friends (feature
//!   `serde`).

use std::fmt;

use crate::json::{self, JsonKind};

/// Whether `name` is reserved by Socket.IO (`connect`, `connect_error`, `disconnect`,
/// `disconnecting`, `newListener`, `removeListener`): such an event must never be emitted.
pub fn is_reserved(name: &str) -> bool {
    crate::socketio::RESERVED_EVENTS.contains(&name)
}

/// Which event names a subscription receives.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum EventPattern {
    /// Exactly this name.
    Exact(String),
    /// Every name that starts with this prefix. [`EventPattern::parse`] keeps the separator, so
    /// `task.*` becomes `Prefix("task.")`, which matches `task.created` but not `tasks.created`.
    Prefix(String),
    /// Every event.
    Any,
}

impl EventPattern {
    /// Parses the subscription syntax: `*` is [`EventPattern::Any`]; a name ending in `.*` or `:*`
    /// is a [`EventPattern::Prefix`] up to and including the separator; anything else (including
    /// `task*` without a separator) is [`EventPattern::Exact`].
    pub fn parse(s: &str) -> EventPattern {
        if s == "*" {
            return EventPattern::Any;
        }
        match s.strip_suffix('*') {
            Some(prefix) if prefix.ends_with('.') || prefix.ends_with(':') => EventPattern::Prefix(prefix.to_owned()),
            _ => EventPattern::Exact(s.to_owned()),
        }
    }

    /// Whether the event `name` matches. A prefix matches the prefix itself too (`task.*`
    /// matches `task.`), as a glob would.
    pub fn matches(&self, name: &str) -> bool {
        match self {
            EventPattern::Exact(exact) => exact == name,
            EventPattern::Prefix(prefix) => name.starts_with(prefix.as_str()),
            EventPattern::Any => true,
        }
    }
}

/// Writes the form [`EventPattern::parse`] reads: `*`, `<prefix>*` or the exact name.
///
/// Every pattern that `parse` returns round-trips. Hand-built patterns that `parse` can't produce
/// don't: `Exact("*")` or `Exact("task.*")` display as a wildcard, and `Prefix("task")` displays
/// as `task*`, which parses back as an exact name.
impl fmt::Display for EventPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EventPattern::Exact(exact) => f.write_str(exact),
            EventPattern::Prefix(prefix) => {
                f.write_str(prefix)?;
                f.write_str("*")
            }
            EventPattern::Any => f.write_str("*"),
        }
    }
}

/// One part of a conventional name: non-empty, `[A-Za-z0-9_-]` only.
fn is_name_part(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// An `entity.action` event name, e.g. `task.created`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DottedName<'a> {
    /// The part before the dot (`task`).
    pub entity: &'a str,
    /// The part after the dot (`created`).
    pub action: &'a str,
}

impl<'a> DottedName<'a> {
    /// Splits `entity.action`: exactly one dot, both parts non-empty and made of `[A-Za-z0-9_-]`.
    pub fn parse(name: &'a str) -> Option<Self> {
        let (entity, action) = name.split_once('.')?;
        (is_name_part(entity) && is_name_part(action)).then_some(DottedName { entity, action })
    }
}

impl fmt::Display for DottedName<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for part in [self.entity, ".", self.action] {
            f.write_str(part)?;
        }
        Ok(())
    }
}

/// A `domain:entity:action` event name, e.g. `crm:customer:created`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ColonName<'a> {
    /// The first part (`crm`).
    pub domain: &'a str,
    /// The middle part (`customer`).
    pub entity: &'a str,
    /// The last part (`created`).
    pub action: &'a str,
}

impl<'a> ColonName<'a> {
    /// Splits `domain:entity:action`: exactly two colons, all three parts non-empty and made of
    /// `[A-Za-z0-9_-]`.
    pub fn parse(name: &'a str) -> Option<Self> {
        let mut parts = name.split(':');
        let (domain, entity, action) = (parts.next()?, parts.next()?, parts.next()?);
        let ok = parts.next().is_none() && is_name_part(domain) && is_name_part(entity) && is_name_part(action);
        ok.then_some(ColonName { domain, entity, action })
    }
}

impl fmt::Display for ColonName<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for part in [self.domain, ":", self.entity, ":", self.action] {
            f.write_str(part)?;
        }
        Ok(())
    }
}

/// The envelope id of an event, read from the raw JSON text of its first argument without serde.
///
/// Returns the top-level `id` member when the argument is an envelope: a JSON object with both an
/// `id` and a `data` member. Requiring `data` keeps plain entities out: `{"id":"task-1", ...}` sent
/// twice as `task.updated` is two updates of one task, not one event delivered twice, so it must
/// not be de-duplicated.
///
/// A string id is returned unescaped. A numeric id is returned as its literal text (`7`, `1.5e3`),
/// so `7` and `"7"` give the same key. Any other kind of id (null, bool, object, array), a missing
/// `id` or `data`, or text that is not a valid JSON object gives `None`. If `id` appears more than
/// once, the last one wins, as with `JSON.parse`.
pub fn envelope_id(first_arg_json: &str) -> Option<String> {
    // Without `"data"` written plainly, and without any escape that could spell it, there is no
    // `data` member: skip parsing the object (most events are not envelopes).
    if !crate::text::contains(first_arg_json, "\"data\"") && !first_arg_json.contains('\\') {
        return None;
    }
    let members = json::object_members(first_arg_json).ok()?;
    if !members.iter().any(|(key, _)| key == "data") {
        return None;
    }
    let (_, range) = members.into_iter().rev().find(|(key, _)| key == "id")?;
    let raw = first_arg_json.get(range)?;
    match json::validate(raw).ok()? {
        JsonKind::String => json::parse_string(raw).ok().map(|s| s.into_owned()),
        JsonKind::Number => Some(raw.to_owned()),
        JsonKind::Object | JsonKind::Array | JsonKind::Bool | JsonKind::Null => None,
    }
}

#[cfg(feature = "serde")]
pub use envelope::{Envelope, EnvelopeMetadata, Timestamp, Version};

#[cfg(feature = "serde")]
mod envelope {
    use serde::{Deserialize, Serialize};

    /// The optional envelope convention some backends wrap an event's first argument in.
    ///
    /// Only `id` and `data` are required; the other fields default to `None` (or an empty
    /// [`EnvelopeMetadata`]) and unknown fields are ignored, so producers can add fields freely.
    /// `None` fields are left out when serialising.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Envelope<T> {
        /// Unique id of this event; the key for de-duplication (see [`super::envelope_id`]).
        pub id: String,
        /// The event type, e.g. `task.created` (JSON field `type`).
        #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
        pub kind: Option<String>,
        /// Schema version of `data`, a number or a string.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub version: Option<Version>,
        /// When the event happened.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub timestamp: Option<Timestamp>,
        /// The service that produced the event.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub source: Option<String>,
        /// The payload.
        pub data: T,
        /// Correlation and routing metadata; empty when absent.
        #[serde(default)]
        pub metadata: EnvelopeMetadata,
    }

    /// An envelope's `version`: producers send either `2` or `"2.1"`.
    #[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
    #[serde(untagged)]
    pub enum Version {
        /// A non-negative integer version, e.g. `2`.
        Number(u64),
        /// A textual version, e.g. `"2.1"`.
        Text(String),
    }

    /// An envelope's `timestamp`: epoch milliseconds (`Date.now()`) or a string (a JavaScript
    /// `Date` serialises as an ISO 8601 string such as `"2026-01-01T00:00:00.000Z"`). The string
    /// is kept as sent, not parsed.
    #[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
    #[serde(untagged)]
    pub enum Timestamp {
        /// Milliseconds since the Unix epoch.
        Millis(i64),
        /// A date string, usually ISO 8601.
        Text(String),
    }

    /// An envelope's `metadata` object (camelCase on the wire). All fields are optional.
    #[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct EnvelopeMetadata {
        /// Id tying together the events and requests of one operation across services.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub correlation_id: Option<String>,
        /// The user the event concerns or who caused it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub user_id: Option<String>,
        /// The tenant the event belongs to.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub tenant_id: Option<String>,
        /// The session that caused the event.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub session_id: Option<String>,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pattern_parsing() {
        assert_eq!(EventPattern::parse("*"), EventPattern::Any);
        assert_eq!(EventPattern::parse("task.*"), EventPattern::Prefix("task.".into()));
        assert_eq!(EventPattern::parse("chat:*"), EventPattern::Prefix("chat:".into()));
        assert_eq!(EventPattern::parse("crm:customer:*"), EventPattern::Prefix("crm:customer:".into()));
        assert_eq!(EventPattern::parse("task.created"), EventPattern::Exact("task.created".into()));
        assert_eq!(EventPattern::parse("task*"), EventPattern::Exact("task*".into()));
        assert_eq!(EventPattern::parse("**"), EventPattern::Exact("**".into()));
        assert_eq!(EventPattern::parse(""), EventPattern::Exact(String::new()));
    }

    #[test]
    fn pattern_matching() {
        let p = EventPattern::parse("task.*");
        assert!(p.matches("task.created") && p.matches("task.a.b") && p.matches("task."));
        assert!(!p.matches("tasks.created") && !p.matches("task") && !p.matches("chat.message"));
        let c = EventPattern::parse("chat:*");
        assert!(c.matches("chat:room:joined") && !c.matches("chat.message"));
        let e = EventPattern::parse("a");
        assert!(e.matches("a") && !e.matches("ab") && !e.matches("A"));
        assert!(EventPattern::Any.matches("") && EventPattern::Any.matches("anything"));
    }

    #[test]
    fn pattern_display_round_trips() {
        for s in ["*", "task.*", "chat:*", "task.created", "task*", "crm:customer:created", ""] {
            let p = EventPattern::parse(s);
            assert_eq!(p.to_string(), s);
            assert_eq!(EventPattern::parse(&p.to_string()), p);
        }
    }

    #[test]
    fn dotted_names() {
        assert_eq!(DottedName::parse("task.created"), Some(DottedName { entity: "task", action: "created" }));
        assert_eq!(
            DottedName::parse("user_profile.updated-v2"),
            Some(DottedName { entity: "user_profile", action: "updated-v2" })
        );
        for bad in ["a.b.c", ".x", "x.", ".", "task", "", "ta sk.created", "task.créé", "a:b.c"] {
            assert_eq!(DottedName::parse(bad), None, "{bad}");
        }
        assert_eq!(DottedName::parse("task.created").map(|n| n.to_string()).as_deref(), Some("task.created"));
    }

    #[test]
    fn colon_names() {
        let c = ColonName::parse("crm:customer:created").unwrap();
        assert_eq!(c, ColonName { domain: "crm", entity: "customer", action: "created" });
        assert_eq!(c.to_string(), "crm:customer:created");
        for bad in ["a:b", "a:b:c:d", ":b:c", "a::c", "a:b:", "a.b:c:d", "", "::"] {
            assert_eq!(ColonName::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn reserved_names() {
        for name in ["connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"] {
            assert!(is_reserved(name), "{name}");
        }
        for name in ["task.created", "Connect", "message", "reconnect", ""] {
            assert!(!is_reserved(name), "{name}");
        }
    }

    #[test]
    fn envelope_ids() {
        assert_eq!(envelope_id(r#"{"id":"e1","type":"task.created","data":{}}"#).as_deref(), Some("e1"));
        assert_eq!(envelope_id(r#"  { "data" : null , "id" : "e\u00e9\n" }  "#).as_deref(), Some("eé\n"));
        assert_eq!(envelope_id(r#"{"id":7,"data":null}"#).as_deref(), Some("7"));
        assert_eq!(envelope_id(r#"{"id":-1.5e3,"data":1}"#).as_deref(), Some("-1.5e3"));
        assert_eq!(envelope_id(r#"{"id":"a","data":1,"id":"b"}"#).as_deref(), Some("b"));
        // Nested ids don't count.
        assert_eq!(envelope_id(r#"{"data":{"id":"inner"}}"#), None);
        // Not an envelope: a plain entity with an id.
        assert_eq!(envelope_id(r#"{"id":"task-1","title":"x"}"#), None);
        for bad_id in ["null", "true", "{}", "[]"] {
            assert_eq!(envelope_id(&format!(r#"{{"id":{bad_id},"data":1}}"#)), None, "{bad_id}");
        }
        for not_object in ["[1]", "\"id\"", "7", "null", "", "{", r#"{"id":"e1","data":1"#, r#"{"id":"e1","data":1}x"#]
        {
            assert_eq!(envelope_id(not_object), None, "{not_object}");
        }
    }

    #[cfg(feature = "serde")]
    mod serde_envelopes {
        use super::super::*;
        use serde_json::{Value, json};

        #[test]
        fn full_envelope() {
            let e: Envelope<Value> = serde_json::from_str(
                r#"{"id":"e1","type":"task.created","version":2,"timestamp":"2026-01-01T00:00:00.000Z",
                    "source":"tasks","data":{"taskId":"t1"},
                    "metadata":{"correlationId":"c","userId":"u","tenantId":"t","sessionId":"s"}}"#,
            )
            .unwrap();
            assert_eq!(e.id, "e1");
            assert_eq!(e.kind.as_deref(), Some("task.created"));
            assert_eq!(e.version, Some(Version::Number(2)));
            assert_eq!(e.timestamp, Some(Timestamp::Text("2026-01-01T00:00:00.000Z".into())));
            assert_eq!(e.source.as_deref(), Some("tasks"));
            assert_eq!(e.data, json!({"taskId": "t1"}));
            let m = EnvelopeMetadata {
                correlation_id: Some("c".into()),
                user_id: Some("u".into()),
                tenant_id: Some("t".into()),
                session_id: Some("s".into()),
            };
            assert_eq!(e.metadata, m);
        }

        #[test]
        fn unknown_fields_are_ignored() {
            let e: Envelope<u32> = serde_json::from_str(
                r#"{"id":"e1","data":5,"extra":true,"nested":{"x":[1]},"metadata":{"traceId":"z","userId":"u"}}"#,
            )
            .unwrap();
            assert_eq!((e.id.as_str(), e.data), ("e1", 5));
            assert_eq!(e.metadata.user_id.as_deref(), Some("u"));
        }

        #[test]
        fn optional_fields_may_be_missing_or_null() {
            let e: Envelope<Option<u32>> = serde_json::from_str(r#"{"id":"e2","data":null}"#).unwrap();
            assert_eq!((e.kind, e.version, e.timestamp, e.source, e.data), (None, None, None, None, None));
            assert_eq!(e.metadata, EnvelopeMetadata::default());
            let e: Envelope<u32> = serde_json::from_str(
                r#"{"id":"e3","type":null,"version":null,"timestamp":null,"source":null,"data":1}"#,
            )
            .unwrap();
            assert_eq!((e.kind, e.version, e.timestamp, e.source), (None, None, None, None));
            // `id` and `data` are required.
            assert!(serde_json::from_str::<Envelope<u32>>(r#"{"data":1}"#).is_err());
            assert!(serde_json::from_str::<Envelope<u32>>(r#"{"id":"e"}"#).is_err());
        }

        #[test]
        fn numeric_and_string_versions_and_timestamps() {
            let e: Envelope<()> =
                serde_json::from_str(r#"{"id":"a","data":null,"version":"2.1","timestamp":1700000000000}"#).unwrap();
            assert_eq!(e.version, Some(Version::Text("2.1".into())));
            assert_eq!(e.timestamp, Some(Timestamp::Millis(1_700_000_000_000)));
            let e: Envelope<()> = serde_json::from_str(r#"{"id":"a","data":null,"version":3,"timestamp":-5}"#).unwrap();
            assert_eq!((e.version, e.timestamp), (Some(Version::Number(3)), Some(Timestamp::Millis(-5))));
        }

        #[test]
        fn serialization_round_trips() {
            let full = Envelope {
                id: "e1".to_owned(),
                kind: Some("task.created".to_owned()),
                version: Some(Version::Text("1.0".into())),
                timestamp: Some(Timestamp::Millis(1_700_000_000_000)),
                source: Some("tasks".into()),
                data: json!({"taskId": "t1", "n": [1, 2]}),
                metadata: EnvelopeMetadata { correlation_id: Some("c".into()), ..EnvelopeMetadata::default() },
            };
            let text = serde_json::to_string(&full).unwrap();
            let v: Value = serde_json::from_str(&text).unwrap();
            assert_eq!(v["type"], "task.created");
            assert_eq!(v["metadata"], json!({"correlationId": "c"}));
            assert_eq!(serde_json::from_str::<Envelope<Value>>(&text).unwrap(), full);
            assert_eq!(envelope_id(&text).as_deref(), Some("e1"));

            let minimal = Envelope {
                id: "m".into(),
                kind: None,
                version: None,
                timestamp: None,
                source: None,
                data: 1u8,
                metadata: EnvelopeMetadata::default(),
            };
            let text = serde_json::to_string(&minimal).unwrap();
            assert_eq!(text, r#"{"id":"m","data":1,"metadata":{}}"#);
            assert_eq!(serde_json::from_str::<Envelope<u8>>(&text).unwrap(), minimal);
        }
    }
}
