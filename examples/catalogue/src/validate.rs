//! Validation of payloads against the catalogue. The generated TypeScript validator
//! (`validateServerToClient` / `validateClientToServer`) reports exactly the same problems, in
//! the same order, with the same paths and messages: the catalogue's tests check it.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::schema::{Catalogue, Direction, EventDef, Ty};

/// One thing wrong with a payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// Where: `$` is the payload, `$.data.task.id` a field, `$.items[2]` an element.
    pub path: String,
    /// What: `missing`, `expected string, got number`, ...
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Joins problems for a log line or an error message.
pub fn describe(problems: &[Problem]) -> String {
    problems.iter().map(Problem::to_string).collect::<Vec<_>>().join("; ")
}

/// The JSON kind of a value, as the messages name it.
fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn is_integer(v: &Value) -> bool {
    v.as_f64().is_some_and(|f| f.is_finite() && f.fract() == 0.0)
}

/// The envelope's fields before `data` (`data` and `metadata` follow), with their types.
pub const ENVELOPE_FIELDS: [(&str, &str); 5] =
    [("id", "string"), ("type", "string"), ("version", "integer"), ("timestamp", "string"), ("source", "string")];
/// The envelope metadata's fields: `(name, optional)`, all strings.
pub const METADATA_FIELDS: [(&str, bool); 4] =
    [("tenantId", false), ("userId", true), ("correlationId", true), ("sessionId", true)];

impl Catalogue {
    /// Checks the payload of event `name` going `direction` as it is on the wire: the envelope
    /// for enveloped events, the data otherwise. An event not in the catalogue is a problem.
    pub fn validate(&self, direction: Direction, name: &str, payload: &Value) -> Result<(), Vec<Problem>> {
        let Some(e) = self.event(direction, name) else { return Err(unknown(name)) };
        let mut out = Vec::new();
        if e.envelope {
            self.check_envelope(e, payload, &mut out);
        } else {
            self.check(&Ty::parse(&e.data), payload, "$", &mut out);
        }
        if out.is_empty() { Ok(()) } else { Err(out) }
    }

    /// Checks only the data of event `name` (the envelope's `data` for enveloped events).
    pub fn validate_data(&self, direction: Direction, name: &str, data: &Value) -> Result<(), Vec<Problem>> {
        let Some(e) = self.event(direction, name) else { return Err(unknown(name)) };
        let mut out = Vec::new();
        self.check(&Ty::parse(&e.data), data, "$", &mut out);
        if out.is_empty() { Ok(()) } else { Err(out) }
    }

    fn check_envelope(&self, e: &EventDef, v: &Value, out: &mut Vec<Problem>) {
        let Value::Object(o) = v else { return expected("object", v, "$", out) };
        for (field, ty) in ENVELOPE_FIELDS {
            self.field(o, field, &Ty::parse(ty), false, false, "$", out);
        }
        self.field(o, "data", &Ty::parse(&e.data), false, false, "$", out);
        match o.get("metadata") {
            None => missing("$.metadata", out),
            Some(Value::Object(m)) => {
                for (field, optional) in METADATA_FIELDS {
                    self.field(m, field, &Ty::String, optional, false, "$.metadata", out);
                }
            }
            Some(other) => expected("object", other, "$.metadata", out),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn field(
        &self,
        o: &Map<String, Value>,
        name: &str,
        ty: &Ty,
        optional: bool,
        nullable: bool,
        path: &str,
        out: &mut Vec<Problem>,
    ) {
        let path = format!("{path}.{name}");
        match o.get(name) {
            None if optional => {}
            None => missing(&path, out),
            Some(Value::Null) if nullable => {}
            Some(v) => self.check(ty, v, &path, out),
        }
    }

    fn check(&self, ty: &Ty, v: &Value, path: &str, out: &mut Vec<Problem>) {
        match ty {
            Ty::Any => {}
            Ty::String if v.is_string() => {}
            Ty::String => expected("string", v, path, out),
            Ty::Integer if is_integer(v) => {}
            Ty::Integer => expected("integer", v, path, out),
            Ty::Number if v.is_number() => {}
            Ty::Number => expected("number", v, path, out),
            Ty::Boolean if v.is_boolean() => {}
            Ty::Boolean => expected("boolean", v, path, out),
            Ty::Array(inner) => match v {
                Value::Array(items) => {
                    for (i, item) in items.iter().enumerate() {
                        self.check(inner, item, &format!("{path}[{i}]"), out);
                    }
                }
                _ => expected("array", v, path, out),
            },
            Ty::Named(name) => {
                let Some(def) = self.type_def(name) else {
                    return out.push(Problem { path: path.into(), message: format!("unknown type {name}") });
                };
                if let Some(values) = &def.values {
                    match v {
                        Value::String(s) if values.contains(s) => {}
                        Value::String(s) => out.push(Problem {
                            path: path.into(),
                            message: format!("expected one of {}, got {}", quoted(values), Value::String(s.clone())),
                        }),
                        _ => expected("string", v, path, out),
                    }
                    return;
                }
                let Value::Object(o) = v else { return expected("object", v, path, out) };
                for f in &def.fields {
                    self.field(o, &f.name, &Ty::parse(&f.ty), f.optional, f.nullable, path, out);
                }
            }
        }
    }
}

/// `"a", "b"` (JSON strings, as `JSON.stringify` writes them).
pub fn quoted(values: &[String]) -> String {
    values.iter().map(|s| Value::String(s.clone()).to_string()).collect::<Vec<_>>().join(", ")
}

fn unknown(name: &str) -> Vec<Problem> {
    vec![Problem { path: "$".into(), message: format!("{} is not in the catalogue", Value::String(name.into())) }]
}

fn missing(path: &str, out: &mut Vec<Problem>) {
    out.push(Problem { path: path.into(), message: "missing".into() });
}

fn expected(what: &str, v: &Value, path: &str, out: &mut Vec<Problem>) {
    out.push(Problem { path: path.into(), message: format!("expected {what}, got {}", kind(v)) });
}
