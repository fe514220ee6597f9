//! The generators: Rust types (`src/generated.rs`) and TypeScript event maps with a validator
//! (`examples/react-app/src/catalogue.generated.ts`) from the catalogue.

use crate::schema::{Catalogue, Direction, EventDef, Ty, TypeDef};
use crate::validate::{ENVELOPE_FIELDS, METADATA_FIELDS, quoted};

/// The command that regenerates the files.
pub const REGENERATE: &str = "cargo run -p tidings-example-catalogue --bin tidings-catalogue-gen";
/// Where the Rust output goes, from the repository root.
pub const RUST_PATH: &str = "examples/catalogue/src/generated.rs";
/// Where the TypeScript output goes, from the repository root.
pub const TS_PATH: &str = "examples/react-app/src/catalogue.generated.ts";

fn header(comment: &str) -> String {
    format!("{comment} GENERATED from examples/catalogue/events.json by `{REGENERATE}`: do not edit.\n")
}

fn doc_lines(indent: &str, prefix: &str, doc: &str) -> String {
    doc.lines().map(|l| format!("{indent}{prefix} {l}\n")).collect()
}

fn const_name(event: &str) -> String {
    event.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() } else { '_' }).collect()
}

fn snake(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else if c.is_ascii_alphanumeric() {
            out.push(c);
        } else {
            out.push('_');
        }
    }
    const KEYWORDS: [&str; 12] =
        ["type", "ref", "self", "match", "move", "impl", "mod", "use", "fn", "struct", "enum", "loop"];
    if KEYWORDS.contains(&out.as_str()) { format!("{out}_") } else { out }
}

fn pascal(value: &str) -> String {
    let mut out = String::new();
    let mut up = true;
    for c in value.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(if up { c.to_ascii_uppercase() } else { c });
            up = false;
        } else {
            up = true;
        }
    }
    if out.starts_with(|c: char| c.is_ascii_digit()) || out.is_empty() { format!("V{out}") } else { out }
}

fn direction_text(d: Direction) -> &'static str {
    match d {
        Direction::ServerToClient => "server → client",
        Direction::ClientToServer => "client → server",
    }
}

fn rust_ty(ty: &Ty) -> String {
    match ty {
        Ty::String => "String".into(),
        Ty::Integer => "i64".into(),
        Ty::Number => "f64".into(),
        Ty::Boolean => "bool".into(),
        Ty::Any => "serde_json::Value".into(),
        Ty::Named(n) => n.clone(),
        Ty::Array(inner) => format!("Vec<{}>", rust_ty(inner)),
    }
}

/// The Rust module.
pub fn rust(c: &Catalogue) -> String {
    let mut s = header("//!");
    s.push_str("//!\n//! The examples' event types, names and typed decoding; docs/CATALOGUE.md.\n\n");
    s.push_str("use serde::{Deserialize, Serialize};\n\nuse crate::Direction;\n");
    for (name, def) in &c.types {
        s.push('\n');
        s.push_str(&rust_type(name, def));
    }
    let mut names: Vec<&str> = Vec::new();
    for e in &c.events {
        if !names.contains(&e.name.as_str()) {
            names.push(&e.name);
        }
    }
    for name in &names {
        s.push('\n');
        for e in c.events.iter().filter(|e| &e.name == name) {
            let wrap = if e.envelope { ", in an envelope" } else { "" };
            let ack = e.ack.as_deref().map(|a| format!(", ack [`{a}`]")).unwrap_or_default();
            let data = match Ty::parse(&e.data) {
                Ty::Named(n) => format!("[`{n}`]"),
                other => format!("`{}`", rust_ty(&other)),
            };
            s.push_str(&format!("/// {} (data {data}{wrap}{ack}): {}\n", direction_text(e.direction), e.doc));
        }
        s.push_str(&format!("pub const {}: &str = {name:?};\n", const_name(name)));
    }
    for (d, cname) in [(Direction::ServerToClient, "SERVER_TO_CLIENT"), (Direction::ClientToServer, "CLIENT_TO_SERVER")]
    {
        let list: Vec<String> = c.events.iter().filter(|e| e.direction == d).map(|e| const_name(&e.name)).collect();
        s.push_str(&format!(
            "\n/// The events going {}.\npub const {cname}: &[&str] = &[{}];\n",
            direction_text(d),
            list.join(", ")
        ));
    }
    s.push_str(
        "\n/// Deserializes `data` into the Rust type of the data of event `name` going `direction`\n\
         /// (`None`: not in the catalogue). The catalogue's tests use it to check the types against\n\
         /// the validator.\n\
         pub fn decode_data(direction: Direction, name: &str, data: &serde_json::Value) -> Option<Result<(), serde_json::Error>> {\n\
         \x20   match (direction, name) {\n",
    );
    for e in &c.events {
        let d = match e.direction {
            Direction::ServerToClient => "ServerToClient",
            Direction::ClientToServer => "ClientToServer",
        };
        s.push_str(&format!(
            "        (Direction::{d}, {:?}) => Some(serde_json::from_value::<{}>(data.clone()).map(drop)),\n",
            e.name,
            rust_ty(&Ty::parse(&e.data))
        ));
    }
    s.push_str("        _ => None,\n    }\n}\n");
    s
}

fn rust_type(name: &str, def: &TypeDef) -> String {
    let mut s = doc_lines("", "///", &def.doc);
    if let Some(values) = &def.values {
        s.push_str("#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]\n");
        s.push_str(&format!("pub enum {name} {{\n"));
        for v in values {
            s.push_str(&format!("    /// `{v:?}`\n    #[serde(rename = {v:?})]\n    {},\n", pascal(v)));
        }
        s.push_str("}\n");
        return s;
    }
    s.push_str("#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]\n");
    s.push_str(&format!("pub struct {name} {{\n"));
    for f in &def.fields {
        s.push_str(&doc_lines("    ", "///", &f.doc));
        let ty = rust_ty(&Ty::parse(&f.ty));
        if f.optional {
            s.push_str(&format!(
                "    #[serde(rename = {:?}, default, skip_serializing_if = \"Option::is_none\")]\n",
                f.name
            ));
        } else {
            s.push_str(&format!("    #[serde(rename = {:?})]\n", f.name));
        }
        let ty = if f.optional || f.nullable { format!("Option<{ty}>") } else { ty };
        s.push_str(&format!("    pub {}: {ty},\n", snake(&f.name)));
    }
    if def.additional_fields {
        s.push_str("    /// Every field the catalogue does not name, kept as it is.\n");
        s.push_str("    #[serde(flatten)]\n    pub rest: serde_json::Map<String, serde_json::Value>,\n");
    }
    s.push_str("}\n");
    s
}

fn ts_ty(ty: &Ty) -> String {
    match ty {
        Ty::String => "string".into(),
        Ty::Integer | Ty::Number => "number".into(),
        Ty::Boolean => "boolean".into(),
        Ty::Any => "unknown".into(),
        Ty::Named(n) => n.clone(),
        Ty::Array(inner) => format!("{}[]", ts_ty(inner)),
    }
}

fn ts_check(ty: &Ty) -> String {
    match ty {
        Ty::String => "cString".into(),
        Ty::Integer => "cInteger".into(),
        Ty::Number => "cNumber".into(),
        Ty::Boolean => "cBoolean".into(),
        Ty::Any => "cAny".into(),
        Ty::Named(n) => format!("c{n}"),
        Ty::Array(inner) => format!("cArray({})", ts_check(inner)),
    }
}

fn ts_key(name: &str) -> String {
    let ident = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_' || c == '$')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$');
    if ident { name.to_string() } else { json(name) }
}

fn json(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

const TS_RUNTIME: &str = r#"
/** One thing wrong with a payload (the Rust validator reports the same ones). */
export interface Problem {
  /** `$` is the payload, `$.data.task.id` a field, `$.items[2]` an element. */
  path: string;
  message: string;
}

type Check = (v: unknown, path: string, out: Problem[]) => void;

function kind(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "array";
  return typeof v;
}
function expected(what: string, v: unknown, path: string, out: Problem[]): void {
  out.push({ path, message: `expected ${what}, got ${kind(v)}` });
}
function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
function field(
  o: Record<string, unknown>,
  name: string,
  check: Check,
  optional: boolean,
  nullable: boolean,
  path: string,
  out: Problem[],
): void {
  const p = `${path}.${name}`;
  if (!Object.prototype.hasOwnProperty.call(o, name)) {
    if (!optional) out.push({ path: p, message: "missing" });
    return;
  }
  const v = o[name];
  if (v === null && nullable) return;
  check(v, p, out);
}
function run(checks: Record<string, Check>, name: string, payload: unknown): Problem[] {
  const check = Object.prototype.hasOwnProperty.call(checks, name) ? checks[name] : undefined;
  if (!check) return [{ path: "$", message: `${JSON.stringify(name)} is not in the catalogue` }];
  const out: Problem[] = [];
  check(payload, "$", out);
  return out;
}
"#;

const TS_CHECKS: [(&str, &str); 7] = [
    (
        "cString",
        r#"function cString(v: unknown, path: string, out: Problem[]): void {
  if (typeof v !== "string") expected("string", v, path, out);
}
"#,
    ),
    (
        "cInteger",
        r#"function cInteger(v: unknown, path: string, out: Problem[]): void {
  if (typeof v !== "number" || !Number.isInteger(v)) expected("integer", v, path, out);
}
"#,
    ),
    (
        "cNumber",
        r#"function cNumber(v: unknown, path: string, out: Problem[]): void {
  if (typeof v !== "number") expected("number", v, path, out);
}
"#,
    ),
    (
        "cBoolean",
        r#"function cBoolean(v: unknown, path: string, out: Problem[]): void {
  if (typeof v !== "boolean") expected("boolean", v, path, out);
}
"#,
    ),
    (
        "cAny",
        r#"function cAny(): void {}
"#,
    ),
    (
        "cArray",
        r#"function cArray(item: Check): Check {
  return (v, path, out) => {
    if (!Array.isArray(v)) return expected("array", v, path, out);
    v.forEach((x, i) => item(x, `${path}[${i}]`, out));
  };
}
"#,
    ),
    (
        "cEnum",
        r#"function cEnum(values: readonly string[], text: string): Check {
  return (v, path, out) => {
    if (typeof v !== "string") return expected("string", v, path, out);
    if (!values.includes(v)) out.push({ path, message: `expected one of ${text}, got ${JSON.stringify(v)}` });
  };
}
"#,
    ),
];

/// The TypeScript module.
pub fn typescript(c: &Catalogue) -> String {
    let mut s = header("//");
    s.push_str("// The examples' event maps (for createTidingsHooks / TidingsClient) and a validator without\n");
    s.push_str("// dependencies; docs/CATALOGUE.md. It imports nothing, so it compiles on its own.\n\n");
    // The envelope.
    s.push_str("/** The Tidings envelope every enveloped event is wrapped in. */\n");
    s.push_str("export interface Envelope<T = unknown, K extends string = string> {\n");
    for (f, ty) in ENVELOPE_FIELDS {
        let ty = if f == "type" { "K".to_string() } else { ts_ty(&Ty::parse(ty)) };
        s.push_str(&format!("  {f}: {ty};\n"));
    }
    s.push_str("  data: T;\n  metadata: EnvelopeMetadata;\n}\n\n/** Routing and correlation metadata of an envelope. */\nexport interface EnvelopeMetadata {\n");
    for (f, optional) in METADATA_FIELDS {
        s.push_str(&format!("  {f}{}: string;\n", if optional { "?" } else { "" }));
    }
    s.push_str("}\n\n/** Every ack: `{ok: true, ...}` or `{ok: false, error}`. */\n");
    s.push_str("export type Ack<T> = ({ ok: true } & T) | { ok: false; error: string };\n");
    for (name, def) in &c.types {
        s.push('\n');
        s.push_str(&ts_type(name, def));
    }
    for (d, map) in [(Direction::ServerToClient, "ServerToClient"), (Direction::ClientToServer, "ClientToServer")] {
        s.push_str(&format!("\n/** The events going {}. */\nexport interface {map} {{\n", direction_text(d)));
        for e in c.events.iter().filter(|e| e.direction == d) {
            s.push_str(&format!("  /** {} */\n", e.doc.replace("*/", "*\\/")));
            let arg = ts_payload(e);
            match &e.ack {
                Some(a) => s.push_str(&format!(
                    "  {}: (data: {arg}, ack: (reply: Ack<{}>) => void) => void;\n",
                    json(&e.name),
                    ts_ty(&Ty::parse(a))
                )),
                None => s.push_str(&format!("  {}: (data: {arg}) => void;\n", json(&e.name))),
            }
        }
        s.push_str("}\n");
        let names: Vec<String> = c.events.iter().filter(|e| e.direction == d).map(|e| json(&e.name)).collect();
        let cname = const_name(map_snake(map));
        s.push_str(&format!("\nexport const {cname}_EVENTS = [{}] as const;\n", names.join(", ")));
        s.push_str(&format!(
            "export function is{map}Event(name: string): name is keyof {map} {{\n  return ({cname}_EVENTS as readonly string[]).includes(name);\n}}\n"
        ));
    }
    s.push_str("\n/** The first argument of event `K` going server → client. */\n");
    s.push_str(
        "export type ServerToClientPayload<K extends keyof ServerToClient> = Parameters<ServerToClient[K]>[0];\n",
    );
    s.push_str("/** The first argument of event `K` going client → server. */\n");
    s.push_str(
        "export type ClientToServerPayload<K extends keyof ClientToServer> = Parameters<ClientToServer[K]>[0];\n",
    );
    s.push_str(TS_RUNTIME);
    let mut body = String::new();
    let s_outer = std::mem::take(&mut s);
    let mut type_checks: Vec<(String, String)> = Vec::new();
    for (name, def) in &c.types {
        if !s.is_empty() {
            type_checks.push((format!("c{}", type_checks_name(&s)), std::mem::take(&mut s)));
        }
        s.push('\n');
        if let Some(values) = &def.values {
            let list: Vec<String> = values.iter().map(|v| json(v)).collect();
            s.push_str(&format!("const c{name}: Check = cEnum([{}], {});\n", list.join(", "), json(&quoted(values))));
            continue;
        }
        s.push_str(&format!("function c{name}(v: unknown, path: string, out: Problem[]): void {{\n"));
        s.push_str("  if (!isObject(v)) return expected(\"object\", v, path, out);\n");
        for f in &def.fields {
            s.push_str(&format!(
                "  field(v, {}, {}, {}, {}, path, out);\n",
                json(&f.name),
                ts_check(&Ty::parse(&f.ty)),
                f.optional,
                f.nullable
            ));
        }
        s.push_str("}\n");
    }
    if !s.is_empty() {
        type_checks.push((format!("c{}", type_checks_name(&s)), std::mem::take(&mut s)));
    }
    s.push_str("\nfunction envelope(data: Check): Check {\n  return (v, path, out) => {\n");
    s.push_str("    if (!isObject(v)) return expected(\"object\", v, path, out);\n");
    for (f, ty) in ENVELOPE_FIELDS {
        s.push_str(&format!("    field(v, {}, {}, false, false, path, out);\n", json(f), ts_check(&Ty::parse(ty))));
    }
    s.push_str("    field(v, \"data\", data, false, false, path, out);\n");
    s.push_str("    if (!Object.prototype.hasOwnProperty.call(v, \"metadata\")) return void out.push({ path: `${path}.metadata`, message: \"missing\" });\n");
    s.push_str(
        "    const m = v.metadata;\n    if (!isObject(m)) return expected(\"object\", m, `${path}.metadata`, out);\n",
    );
    for (f, optional) in METADATA_FIELDS {
        s.push_str(&format!("    field(m, {}, cString, {optional}, false, `${{path}}.metadata`, out);\n", json(f)));
    }
    s.push_str("  };\n}\n");
    for (d, map) in [(Direction::ServerToClient, "ServerToClient"), (Direction::ClientToServer, "ClientToServer")] {
        let lower = map_snake(map);
        s.push_str(&format!("\nconst {}_PAYLOAD: Record<keyof {map}, Check> = {{\n", const_name(lower)));
        for e in c.events.iter().filter(|e| e.direction == d) {
            let check = ts_check(&Ty::parse(&e.data));
            let check = if e.envelope { format!("envelope({check})") } else { check };
            s.push_str(&format!("  {}: {check},\n", json(&e.name)));
        }
        s.push_str("};\n");
        s.push_str(&format!("const {}_DATA: Record<keyof {map}, Check> = {{\n", const_name(lower)));
        for e in c.events.iter().filter(|e| e.direction == d) {
            s.push_str(&format!("  {}: {},\n", json(&e.name), ts_check(&Ty::parse(&e.data))));
        }
        s.push_str("};\n");
        s.push_str(&format!(
            "/** The problems of event `name`'s payload going {} as it is on the wire (the envelope for\n * enveloped events); none when it is valid. An event not in the catalogue is a problem. */\n\
             export function validate{map}(name: string, payload: unknown): Problem[] {{\n  return run({c}_PAYLOAD, name, payload);\n}}\n\
             /** The problems of event `name`'s data (an envelope's `data`). */\n\
             export function validate{map}Data(name: string, data: unknown): Problem[] {{\n  return run({c}_DATA, name, data);\n}}\n",
            direction_text(d),
            c = const_name(lower)
        ));
    }
    std::mem::swap(&mut s, &mut body);
    s = s_outer;
    // Only the checks of types some event's data uses (acks are not validated): the app
    // compiles with noUnusedLocals.
    let uses = |text: &str, name: &str| [",", ")", "("].iter().any(|end| text.contains(&format!("{name}{end}")));
    let mut included = vec![false; type_checks.len()];
    loop {
        let mut grew = false;
        for (i, (name, _)) in type_checks.iter().enumerate() {
            let seen = included.get(i).copied().unwrap_or(true);
            let used =
                uses(&body, name) || type_checks.iter().zip(&included).any(|((_, code), inc)| *inc && uses(code, name));
            if !seen && used {
                if let Some(slot) = included.get_mut(i) {
                    *slot = true;
                }
                grew = true;
            }
        }
        if !grew {
            break;
        }
    }
    let checks: String =
        type_checks.iter().zip(&included).filter(|(_, inc)| **inc).map(|((_, code), _)| code.as_str()).collect();
    body = format!("{checks}{body}");
    // Only the checks in use: the app compiles with noUnusedLocals.
    for (name, code) in TS_CHECKS {
        if body.contains(&format!("{name},"))
            || body.contains(&format!("{name})"))
            || body.contains(&format!("{name}("))
        {
            s.push_str(code);
        }
    }
    s.push_str(&body);
    s
}

/// The type name of a generated check (`function cTask(` or `const cLevel:`).
fn type_checks_name(code: &str) -> String {
    let rest = code.split_once(" c").map(|(_, r)| r).unwrap_or("");
    rest.chars().take_while(char::is_ascii_alphanumeric).collect()
}

fn map_snake(map: &str) -> &'static str {
    if map == "ServerToClient" { "server_to_client" } else { "client_to_server" }
}

fn ts_payload(e: &EventDef) -> String {
    let data = ts_ty(&Ty::parse(&e.data));
    if e.envelope { format!("Envelope<{data}, {}>", json(&e.name)) } else { data }
}

fn ts_type(name: &str, def: &TypeDef) -> String {
    let mut s = format!("/** {} */\n", def.doc.replace("*/", "*\\/"));
    if let Some(values) = &def.values {
        let list: Vec<String> = values.iter().map(|v| json(v)).collect();
        s.push_str(&format!("export type {name} = {};\n", list.join(" | ")));
        return s;
    }
    s.push_str(&format!("export interface {name} {{\n"));
    for f in &def.fields {
        if !f.doc.is_empty() {
            s.push_str(&format!("  /** {} */\n", f.doc.replace("*/", "*\\/")));
        }
        let ty = ts_ty(&Ty::parse(&f.ty));
        let ty = if f.nullable { format!("{ty} | null") } else { ty };
        s.push_str(&format!("  {}{}: {ty};\n", ts_key(&f.name), if f.optional { "?" } else { "" }));
    }
    if def.additional_fields {
        s.push_str("  /** Fields the catalogue does not name. */\n  [field: string]: unknown;\n");
    }
    s.push_str("}\n");
    s
}
