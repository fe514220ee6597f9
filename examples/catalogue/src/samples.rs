//! Sample payloads per event, valid and mutated, for the tests that check the Rust validator,
//! the Rust types, the TypeScript validator and the TypeScript types against each other.

use serde_json::{Map, Value, json};

use crate::schema::{Catalogue, Direction, EventDef, Ty};
use crate::validate::{ENVELOPE_FIELDS, METADATA_FIELDS};

/// One sample.
#[derive(Debug, Clone)]
pub struct Case {
    /// The event's direction.
    pub direction: Direction,
    /// The event.
    pub event: String,
    /// What this sample is (`valid, all fields`, `$.data.task.id: null`, ...).
    pub what: String,
    /// The payload as on the wire.
    pub payload: Value,
    /// The data part (for the typed Rust check), when the payload has one.
    pub data: Option<Value>,
    /// Whether it is valid.
    pub valid: bool,
    /// Whether the TypeScript types reject it (an integer with a fraction is a `number`).
    pub ts_types_reject: bool,
    /// Whether deserializing the data into the Rust type fails (`null` is `None` for an
    /// optional field; envelope problems are not the data's).
    pub serde_rejects: bool,
    /// Whether the payload has fields the catalogue does not name (TypeScript object literals
    /// refuse those, so such samples are not type-checked).
    pub extras: bool,
}

/// A valid value of `ty`: with every optional field when `full`, with an extra field in every
/// object when `extras`.
pub fn sample(c: &Catalogue, ty: &Ty, full: bool, extras: bool) -> Value {
    match ty {
        Ty::String => json!("text"),
        Ty::Integer => json!(7),
        Ty::Number => json!(1.5),
        Ty::Boolean => json!(true),
        Ty::Any => json!({ "any": [1, "thing"] }),
        Ty::Array(inner) => json!([sample(c, inner, full, extras)]),
        Ty::Named(n) => {
            let Some(def) = c.type_def(n) else { return Value::Null };
            if let Some(values) = &def.values {
                return values.first().map(|v| json!(v)).unwrap_or(Value::Null);
            }
            let mut o = Map::new();
            for f in def.fields.iter().filter(|f| full || !f.optional) {
                let v = if f.nullable && !full { Value::Null } else { sample(c, &Ty::parse(&f.ty), full, extras) };
                o.insert(f.name.clone(), v);
            }
            if extras {
                o.insert("fieldAddedLater".into(), json!({ "kept": true }));
            }
            Value::Object(o)
        }
    }
}

/// A value of the wrong type for `ty` (`None` for `any`).
fn wrong(c: &Catalogue, ty: &Ty) -> Option<Value> {
    Some(match ty {
        Ty::Any => return None,
        Ty::String => json!(7),
        Ty::Integer => json!(2.5),
        Ty::Number => json!("1"),
        Ty::Boolean => json!("yes"),
        Ty::Array(_) => json!({}),
        Ty::Named(n) if c.type_def(n).is_some_and(|d| d.values.is_some()) => json!("not-a-value"),
        Ty::Named(_) => json!("text"),
    })
}

struct Mutation {
    /// `None`: the value is removed.
    value: Option<Value>,
    what: String,
    ts: bool,
    serde: bool,
}

/// Mutations of `v` (a valid value of `ty` at `path`).
fn mutate(c: &Catalogue, ty: &Ty, v: &Value, path: &str, optional: bool, nullable: bool) -> Vec<Mutation> {
    let mut out = Vec::new();
    if let Some(w) = wrong(c, ty) {
        out.push(Mutation { what: format!("{path}: {w}"), value: Some(w), ts: *ty != Ty::Integer, serde: true });
        if !nullable {
            out.push(Mutation { what: format!("{path}: null"), value: Some(Value::Null), ts: true, serde: !optional });
        }
    }
    match (ty, v) {
        (Ty::Array(inner), Value::Array(items)) => {
            if let Some(first) = items.first() {
                for m in mutate(c, inner, first, &format!("{path}[0]"), false, false) {
                    let Some(x) = m.value else { continue };
                    let mut items = items.clone();
                    if let Some(slot) = items.first_mut() {
                        *slot = x;
                    }
                    out.push(Mutation { value: Some(Value::Array(items)), ..m });
                }
            }
        }
        (Ty::Named(n), Value::Object(o)) => {
            let Some(def) = c.type_def(n) else { return out };
            for f in &def.fields {
                let Some(fv) = o.get(&f.name) else { continue };
                let fpath = format!("{path}.{}", f.name);
                if !f.optional {
                    let mut o = o.clone();
                    o.remove(&f.name);
                    out.push(Mutation {
                        value: Some(Value::Object(o)),
                        what: format!("{fpath}: removed"),
                        ts: true,
                        serde: !f.nullable,
                    });
                }
                for m in mutate(c, &Ty::parse(&f.ty), fv, &fpath, f.optional, f.nullable) {
                    let mut o = o.clone();
                    match m.value {
                        Some(x) => o.insert(f.name.clone(), x),
                        None => o.remove(&f.name),
                    };
                    out.push(Mutation { value: Some(Value::Object(o)), ..m });
                }
            }
        }
        _ => {}
    }
    out
}

fn envelope(e: &EventDef, data: Value) -> Value {
    json!({
        "id": "evt_0123456789abcdef0123456789abcdef",
        "type": e.name,
        "version": 1,
        "timestamp": "2026-01-02T03:04:05.678Z",
        "source": "catalogue-samples",
        "data": data,
        "metadata": { "tenantId": "acme", "userId": "alice" },
    })
}

/// Every sample of every event.
pub fn cases(c: &Catalogue) -> Vec<Case> {
    let mut out = Vec::new();
    for e in &c.events {
        let ty = Ty::parse(&e.data);
        let wrap = |data: Value| if e.envelope { envelope(e, data) } else { data };
        let case = |what: String, data: Value, valid: bool, ts: bool, serde: bool, extras: bool| Case {
            direction: e.direction,
            event: e.name.clone(),
            what,
            payload: wrap(data.clone()),
            data: Some(data),
            valid,
            ts_types_reject: ts,
            serde_rejects: serde,
            extras,
        };
        let full = sample(c, &ty, true, false);
        out.push(case("valid, every field".into(), full.clone(), true, false, false, false));
        out.push(case("valid, required fields".into(), sample(c, &ty, false, false), true, false, false, false));
        out.push(case("valid, with fields added later".into(), sample(c, &ty, true, true), true, false, false, true));
        for m in mutate(c, &ty, &full, "$", false, false) {
            let Some(v) = m.value else { continue };
            let what = if e.envelope { m.what.replacen('$', "$.data", 1) } else { m.what };
            out.push(case(what, v, false, m.ts, m.serde, false));
        }
        if !e.envelope {
            continue;
        }
        let env = envelope(e, full);
        let mut bad = Vec::new();
        for (f, _) in ENVELOPE_FIELDS.iter().chain(&[("data", ""), ("metadata", "")]) {
            let mut x = env.clone();
            if let Some(o) = x.as_object_mut() {
                o.remove(*f);
            }
            bad.push((format!("$.{f}: removed"), x));
        }
        for (f, optional) in METADATA_FIELDS {
            let mut x = env.clone();
            if let Some(m) = x.get_mut("metadata").and_then(Value::as_object_mut) {
                if optional {
                    m.insert(f.into(), json!(3));
                } else {
                    m.remove(f);
                }
            }
            bad.push((format!("$.metadata.{f}: {}", if optional { "3" } else { "removed" }), x));
        }
        let mut x = env.clone();
        if let Some(o) = x.as_object_mut() {
            o.insert("metadata".into(), json!([]));
            o.insert("version".into(), json!("1"));
        }
        bad.push(("$.metadata: [], $.version: \"1\"".into(), x));
        bad.push(("$: a string".into(), json!("evt_1")));
        for (what, payload) in bad {
            out.push(Case {
                direction: e.direction,
                event: e.name.clone(),
                what,
                payload,
                data: None,
                valid: false,
                ts_types_reject: true,
                serde_rejects: false,
                extras: false,
            });
        }
    }
    out
}
