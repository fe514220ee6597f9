//! Between the core's raw JSON arguments and the application's serde types.
//!
//! Binary attachments appear to serde as `{"$binary":"<base64>"}` objects, which [`Bytes`]
//! (de)serialises; everything else is plain JSON. Arguments without attachments are deserialised
//! straight from the received text, with no intermediate tree.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tidings_core::Args;

use crate::Error;

/// Binary data in an event: sent as a Socket.IO attachment, received from one.
///
/// In JSON form (for example in [`serde_json::Value`] or the CLI) it is `{"$binary":"<base64>"}`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Bytes(pub Vec<u8>);

impl Serialize for Bytes {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(1))?;
        m.serialize_entry("$binary", &STANDARD.encode(&self.0))?;
        m.end()
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Tagged {
            #[serde(rename = "$binary")]
            b64: String,
        }
        let t = Tagged::deserialize(d)?;
        STANDARD.decode(t.b64).map(Bytes).map_err(serde::de::Error::custom)
    }
}

/// An event's or ack's arguments as received: raw JSON plus attachments, materialised on demand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payload(pub(crate) Args);

impl Payload {
    /// Number of arguments.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there are no arguments.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many binary attachments the arguments carry (their placeholders are in the raw text).
    pub fn attachment_count(&self) -> usize {
        self.0.attachments().len()
    }

    /// The raw JSON text of argument `i` (binary attachments appear as placeholders).
    pub fn raw(&self, i: usize) -> Option<&str> {
        self.0.get(i)
    }

    /// Deserialises the payload: the single argument when there is one, else the array of all
    /// arguments (so a tuple type receives several).
    pub fn deserialize<T: DeserializeOwned>(&self) -> Result<T, Error> {
        Payload::deserialize_args(&self.0)
    }

    /// Deserialises an event's data the way [`Payload::deserialize`] does. When the event's last
    /// argument may be a recovery offset (`offset` is `Some`: see [`crate::Received::offset`]) and
    /// the data without it does not fit `T`, the arguments as sent are tried too: a volatile
    /// event's last string argument is data that looks like an offset.
    pub(crate) fn deserialize_event<T: DeserializeOwned>(ev: &mut tidings_core::Event) -> Result<T, Error> {
        match Payload::deserialize_args::<T>(&ev.args) {
            Err(e) if ev.offset.is_some() => Payload::deserialize_args::<T>(&ev.wire_args()).map_err(|_| e),
            r => r,
        }
    }

    pub(crate) fn deserialize_args<T: DeserializeOwned>(args: &Args) -> Result<T, Error> {
        if args.attachments().is_empty() {
            let r = if args.len() == 1 {
                serde_json::from_str(args.get(0).unwrap_or("null"))
            } else {
                serde_json::from_str(&args.to_json_array())
            };
            return r.map_err(crate::error::decode);
        }
        let p = Payload(args.clone());
        let v = p.to_value()?;
        serde_json::from_value(v).map_err(crate::error::decode)
    }

    /// Deserialises argument `i` alone.
    pub fn arg<T: DeserializeOwned>(&self, i: usize) -> Result<T, Error> {
        let raw = self.0.get(i).ok_or(Error::Decode(crate::error::DecodeError::MissingArgument(i)))?;
        if self.0.attachments().is_empty() {
            return serde_json::from_str(raw).map_err(crate::error::decode);
        }
        let mut v: Value = serde_json::from_str(raw).map_err(crate::error::decode)?;
        substitute_placeholders(&mut v, self.0.attachments());
        serde_json::from_value(v).map_err(crate::error::decode)
    }

    /// All arguments as JSON values (attachments as `{"$binary":…}`).
    pub fn to_values(&self) -> Result<Vec<Value>, Error> {
        self.0
            .iter()
            .map(|raw| {
                let mut v: Value = serde_json::from_str(raw).map_err(crate::error::decode)?;
                substitute_placeholders(&mut v, self.0.attachments());
                Ok(v)
            })
            .collect()
    }

    /// The payload as one JSON value (see [`Payload::deserialize`] for the single-argument rule).
    pub fn to_value(&self) -> Result<Value, Error> {
        let mut vals = self.to_values()?;
        Ok(if vals.len() == 1 { vals.pop().unwrap_or(Value::Null) } else { Value::Array(vals) })
    }
}

fn substitute_placeholders(v: &mut Value, attachments: &[Vec<u8>]) {
    match v {
        Value::Object(m) => {
            if m.get("_placeholder") == Some(&Value::Bool(true))
                && let Some(bytes) = m.get("num").and_then(Value::as_u64).and_then(|n| attachments.get(n as usize))
            {
                {
                    let mut tagged = serde_json::Map::new();
                    tagged.insert("$binary".to_string(), Value::String(STANDARD.encode(bytes)));
                    *v = Value::Object(tagged);
                    return;
                }
            }
            m.values_mut().for_each(|x| substitute_placeholders(x, attachments));
        }
        Value::Array(a) => a.iter_mut().for_each(|x| substitute_placeholders(x, attachments)),
        _ => {}
    }
}

/// Replaces `{"$binary":…}` objects by placeholders, moving the bytes into `attachments`.
fn extract_binary(v: &mut Value, attachments: &mut Vec<Vec<u8>>) -> Result<(), Error> {
    match v {
        Value::Object(m) => {
            if m.len() == 1
                && let Some(Value::String(b64)) = m.get("$binary")
            {
                {
                    let bytes = STANDARD
                        .decode(b64)
                        .map_err(|e| Error::InvalidArgument(crate::error::ArgumentError::Binary(e)))?;
                    let num = attachments.len();
                    attachments.push(bytes);
                    let mut p = serde_json::Map::new();
                    p.insert("_placeholder".to_string(), Value::Bool(true));
                    p.insert("num".to_string(), Value::from(num));
                    *v = Value::Object(p);
                    return Ok(());
                }
            }
            m.values_mut().try_for_each(|x| extract_binary(x, attachments))
        }
        Value::Array(a) => a.iter_mut().try_for_each(|x| extract_binary(x, attachments)),
        _ => Ok(()),
    }
}

/// Builds core [`Args`] from serialisable values: one argument per value.
#[cfg(test)]
pub(crate) fn to_args<T: Serialize + ?Sized>(values: &[&T]) -> Result<Args, Error> {
    let mut texts = Vec::with_capacity(values.len());
    for v in values {
        texts.push(serde_json::to_string(v).map_err(crate::error::serialize)?);
    }
    texts_to_args(texts)
}

/// Builds core [`Args`] from JSON texts (one per argument), converting `$binary` objects to attachments.
pub(crate) fn texts_to_args(texts: Vec<String>) -> Result<Args, Error> {
    if !texts.iter().any(|t| t.contains("\"$binary\"")) {
        return Args::from_values(texts.iter().map(String::as_str), Vec::new())
            .map_err(|e| Error::InvalidArgument(crate::error::ArgumentError::Args(e)));
    }
    let mut attachments = Vec::new();
    let mut out = Vec::with_capacity(texts.len());
    for t in texts {
        let mut v: Value = serde_json::from_str(&t).map_err(crate::error::serialize)?;
        extract_binary(&mut v, &mut attachments)?;
        out.push(v.to_string());
    }
    Args::from_values(out.iter().map(String::as_str), attachments)
        .map_err(|e| Error::InvalidArgument(crate::error::ArgumentError::Args(e)))
}

/// Builds core [`Args`] from JSON values.
pub(crate) fn values_to_args(values: &[Value]) -> Result<Args, Error> {
    texts_to_args(values.iter().map(Value::to_string).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_round_trip() {
        let args = to_args(&[&serde_json::json!({"file": Bytes(vec![1, 2, 3]), "name": "x"})]).unwrap();
        assert_eq!(args.attachments(), &[vec![1, 2, 3]]);
        assert_eq!(args.get(0), Some(r#"{"file":{"_placeholder":true,"num":0},"name":"x"}"#));
        let p = Payload(args);
        #[derive(Deserialize)]
        struct F {
            file: Bytes,
            name: String,
        }
        let f: F = p.deserialize().unwrap();
        assert_eq!(f.file.0, vec![1, 2, 3]);
        assert_eq!(f.name, "x");
    }

    #[test]
    fn several_args_become_a_tuple() {
        let p = Payload(Args::from_json_array(r#"[1,"two"]"#.into(), vec![]).unwrap());
        let (a, b): (u32, String) = p.deserialize().unwrap();
        assert_eq!((a, b.as_str()), (1, "two"));
        assert!(p.deserialize::<u32>().is_err());
    }
}
