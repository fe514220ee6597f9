//! The schema format of `events.json` (docs/CATALOGUE.md).

use serde::Deserialize;

/// Which way an event goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Direction {
    /// Emitted by the server, received by clients.
    ServerToClient,
    /// Emitted by clients (acknowledged), received by the server.
    ClientToServer,
}

/// The whole catalogue.
#[derive(Debug, Clone)]
pub struct Catalogue {
    /// Free text (ignored).
    pub comment: Option<String>,
    /// Named types, in the order they are written out.
    pub types: Vec<(String, TypeDef)>,
    /// The events.
    pub events: Vec<EventDef>,
}

/// A named type: an object with fields, or a string enum.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TypeDef {
    /// Documentation.
    #[serde(default)]
    pub doc: String,
    /// The fields of an object type.
    #[serde(default)]
    pub fields: Vec<Field>,
    /// Whether unknown fields are kept (Rust: a `rest` map; TypeScript: an index signature).
    /// They are always accepted by validation, either way.
    #[serde(default)]
    pub additional_fields: bool,
    /// The values of a string enum (then there are no fields).
    #[serde(default, rename = "enum")]
    pub values: Option<Vec<String>>,
}

/// A field of an object type.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Field {
    /// Its name on the wire.
    pub name: String,
    /// Its type: `string`, `integer`, `number`, `boolean`, `any`, a type name, each followed by
    /// any number of `[]`.
    #[serde(rename = "type")]
    pub ty: String,
    /// May be absent.
    #[serde(default)]
    pub optional: bool,
    /// May be `null`.
    #[serde(default)]
    pub nullable: bool,
    /// Documentation.
    #[serde(default)]
    pub doc: String,
}

/// An event.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventDef {
    /// Its name.
    pub name: String,
    /// Which way it goes.
    pub direction: Direction,
    /// Whether the payload is a Tidings envelope with `data` of type [`EventDef::data`].
    #[serde(default)]
    pub envelope: bool,
    /// The type of the data (a type expression, like a field's).
    pub data: String,
    /// The type of the ack's success fields (client-to-server events).
    #[serde(default)]
    pub ack: Option<String>,
    /// Documentation.
    #[serde(default)]
    pub doc: String,
}

/// A parsed type expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ty {
    /// A JSON string.
    String,
    /// A JSON number without a fraction.
    Integer,
    /// A JSON number.
    Number,
    /// `true` or `false`.
    Boolean,
    /// Anything.
    Any,
    /// A named type of the catalogue.
    Named(String),
    /// An array.
    Array(Box<Ty>),
}

impl Ty {
    /// Parses `string`, `Task[]`, ...
    pub fn parse(s: &str) -> Ty {
        if let Some(inner) = s.strip_suffix("[]") {
            return Ty::Array(Box::new(Ty::parse(inner)));
        }
        match s {
            "string" => Ty::String,
            "integer" => Ty::Integer,
            "number" => Ty::Number,
            "boolean" => Ty::Boolean,
            "any" => Ty::Any,
            other => Ty::Named(other.to_string()),
        }
    }
}

impl Catalogue {
    /// Reads a catalogue and checks that every type it names is defined.
    pub fn parse(json: &str) -> Result<Catalogue, String> {
        let raw: RawCatalogue = serde_json::from_str(json).map_err(|e| format!("events.json: {e}"))?;
        let c = Catalogue { comment: raw.comment, types: raw.types, events: raw.events };
        c.check_types()?;
        Ok(c)
    }

    /// The named type `name`.
    pub fn type_def(&self, name: &str) -> Option<&TypeDef> {
        self.types.iter().find(|(n, _)| n == name).map(|(_, d)| d)
    }

    /// The event `name` going `direction`.
    pub fn event(&self, direction: Direction, name: &str) -> Option<&EventDef> {
        self.events.iter().find(|e| e.direction == direction && e.name == name)
    }

    fn check_types(&self) -> Result<(), String> {
        let known = |t: &str, ctx: &str| -> Result<(), String> {
            let mut ty = Ty::parse(t);
            while let Ty::Array(inner) = ty {
                ty = *inner;
            }
            match ty {
                Ty::Named(n) if self.type_def(&n).is_none() => Err(format!("{ctx}: unknown type {n:?}")),
                _ => Ok(()),
            }
        };
        for (name, def) in &self.types {
            if !name.chars().all(|c| c.is_ascii_alphanumeric()) || !name.starts_with(|c: char| c.is_ascii_uppercase()) {
                return Err(format!("type {name:?}: names are PascalCase ASCII"));
            }
            if def.values.is_some() && !def.fields.is_empty() {
                return Err(format!("type {name}: an enum has no fields"));
            }
            for f in &def.fields {
                known(&f.ty, &format!("{name}.{}", f.name))?;
            }
        }
        for e in &self.events {
            known(&e.data, &e.name)?;
            if let Some(a) = &e.ack {
                known(a, &e.name)?;
            }
            if self.events.iter().filter(|o| o.name == e.name && o.direction == e.direction).count() > 1 {
                return Err(format!("event {:?} is defined twice in one direction", e.name));
            }
        }
        Ok(())
    }
}

/// `types` is an object whose key order matters; serde_json's map sorts keys, so it is read as
/// a sequence of entries by hand.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCatalogue {
    #[serde(default, rename = "$comment")]
    comment: Option<String>,
    #[serde(deserialize_with = "ordered")]
    types: Vec<(String, TypeDef)>,
    events: Vec<EventDef>,
}

fn ordered<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<(String, TypeDef)>, D::Error> {
    struct V;
    impl<'de> serde::de::Visitor<'de> for V {
        type Value = Vec<(String, TypeDef)>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an object of type definitions")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(entry) = m.next_entry::<String, TypeDef>()? {
                out.push(entry);
            }
            Ok(out)
        }
    }
    d.deserialize_map(V)
}
