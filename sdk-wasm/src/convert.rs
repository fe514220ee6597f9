//! Between the core's raw JSON arguments and JavaScript values, without serde_json.
//!
//! Received arguments are handed to `JSON.parse`; a reviver swaps each
//! `{"_placeholder":true,"num":N}` for a `Uint8Array` of attachment N. Sent arguments go through
//! `JSON.stringify` with a replacer that swaps every `ArrayBuffer` or `ArrayBufferView` (a Node
//! `Buffer` too) for a placeholder and moves its bytes into the attachments.

use js_sys::{Array, JSON, Object, Reflect, Uint8Array};
use tidings_core::{Args, ConnectError, ConnectionState, DisconnectReason, EventSource, FeedStatus, TransportKind};
use wasm_bindgen::JsValue;
use wasm_bindgen::prelude::*;

/// A JavaScript `Error` with `message`.
pub(crate) fn error(message: impl AsRef<str>) -> JsValue {
    js_sys::Error::new(message.as_ref()).into()
}

/// Sets `key` on `target`; a failure (a frozen object) is not worth reporting.
pub(crate) fn set(target: &JsValue, key: &str, value: &JsValue) {
    let _ = Reflect::set(target, &JsValue::from_str(key), value);
}

/// A plain object built from `pairs`.
pub(crate) fn object(pairs: &[(&str, JsValue)]) -> JsValue {
    let o: JsValue = Object::new().into();
    for (k, v) in pairs {
        set(&o, k, v);
    }
    o
}

// Binary data is swapped for placeholders in JavaScript: a `JSON.stringify` replacer must look at
// `this[key]` (the value before its `toJSON`, which turns a Node `Buffer` into `{type, data}`),
// and a Rust closure cannot see `this`. A module snippet, not `new Function`: no CSP `unsafe-eval`.
#[wasm_bindgen(inline_js = r#"
const bytes = (o) => o instanceof ArrayBuffer ? new Uint8Array(o.slice(0))
  : ArrayBuffer.isView(o) ? new Uint8Array(o.buffer.slice(o.byteOffset, o.byteOffset + o.byteLength))
  : undefined;
export function encodeArgs(values, sink) {
  return JSON.stringify(values, function (k, v) {
    const b = bytes(this[k]);
    return b === undefined ? v : { _placeholder: true, num: sink.push(b) - 1 };
  });
}
export function report(e) {
  if (typeof reportError === "function") reportError(e); else setTimeout(() => { throw e; });
}
export function callEvent(f, name, args, offset, source, ack) {
  if (offset !== undefined) args.push(offset);
  try { f(name, args, offset, source, ack); } catch (e) { report(e); }
}
export function decodeArg(text, att) {
  return att.length === 0 ? JSON.parse(text) : JSON.parse(text, (k, v) =>
    v !== null && typeof v === "object" && !Array.isArray(v) && v._placeholder === true
      && Number.isInteger(v.num) && v.num >= 0 && v.num < att.length ? att[v.num] : v);
}
"#)]
extern "C" {
    #[wasm_bindgen(js_name = encodeArgs, catch)]
    fn encode_args(values: &Array, sink: &Array) -> Result<String, JsValue>;
    #[wasm_bindgen(js_name = decodeArg, catch)]
    fn decode_arg(text: &str, attachments: &Array) -> Result<JsValue, JsValue>;
    /// `f(name, args, offset, source, ack)` in one crossing (an `Array` of arguments and `apply`
    /// take seven), after appending the offset (when there is one) to `args`: listeners get every
    /// argument as sent, like `Event::wire_args` but without copying and re-checking the JSON. An
    /// exception is caught and passed to `report`, so it never unwinds through the driver.
    #[wasm_bindgen(js_name = callEvent)]
    pub(crate) fn call_event(
        f: &js_sys::Function,
        name: &JsValue,
        args: &Array,
        offset: &JsValue,
        source: &JsValue,
        ack: &JsValue,
    );
    // `catch` though it never throws: wasm-bindgen would otherwise import it, like `callEvent`,
    // straight from the snippet, and list the snippet twice in the glue's import object.
    #[wasm_bindgen(js_name = report, catch)]
    fn report_js(error: &JsValue) -> Result<(), JsValue>;
}

/// Reports an exception of an application callback without stopping the driver: `reportError`
/// where it exists (the console and `window.onerror` see it as uncaught), else a rethrow from a
/// `setTimeout`.
pub(crate) fn report(error: &JsValue) {
    let _ = report_js(error);
}

/// JS strings for the event names seen last, so a name is decoded from UTF-8 once, not per event.
pub(crate) struct Names(Vec<(String, JsValue)>);

impl Names {
    const CAP: usize = 32;

    pub(crate) fn new() -> Self {
        Names(Vec::new())
    }

    pub(crate) fn get(&mut self, name: &str) -> JsValue {
        if let Some((_, v)) = self.0.iter().find(|(n, _)| n == name) {
            return v.clone();
        }
        let v = JsValue::from_str(name);
        if self.0.len() >= Self::CAP {
            self.0.remove(0);
        }
        self.0.push((name.to_string(), v.clone()));
        v
    }
}

/// The arguments as a JavaScript array, attachments as `Uint8Array`s in place of their placeholders.
pub(crate) fn args_to_js(mut args: Args) -> Result<Array, JsValue> {
    let attachments: Array =
        args.take_attachments().iter().map(|b| JsValue::from(Uint8Array::from(b.as_slice()))).collect();
    let out = Array::new();
    for raw in args.iter() {
        out.push(&decode_arg(raw, &attachments)?);
    }
    Ok(out)
}

/// Core arguments from a JavaScript array of values: every `ArrayBuffer` or view (a `Uint8Array`,
/// a Node `Buffer`, a `DataView`) becomes an attachment.
pub(crate) fn js_to_args(values: &Array) -> Result<Args, JsValue> {
    let sink = Array::new();
    let text = encode_args(values, &sink)?;
    let attachments = sink.iter().map(|b| Uint8Array::new(&b).to_vec()).collect();
    Args::from_json_array(text, attachments).map_err(|e| error(e.to_string()))
}

fn reason_str(r: DisconnectReason) -> &'static str {
    r.as_str()
}

fn transport_str(t: TransportKind) -> &'static str {
    t.as_str()
}

/// `{status, ...}` as in `npm/src/types.ts` `ConnectionState`.
pub(crate) fn state_to_js(state: &ConnectionState) -> JsValue {
    match state {
        ConnectionState::Connecting => object(&[("status", "connecting".into())]),
        ConnectionState::Connected { transport, recovered, sid } => object(&[
            ("status", "connected".into()),
            ("transport", transport_str(*transport).into()),
            ("recovered", JsValue::from_bool(*recovered)),
            ("id", JsValue::from_str(sid)),
        ]),
        ConnectionState::Reconnecting { attempt, delay } => object(&[
            ("status", "reconnecting".into()),
            ("attempt", JsValue::from_f64(f64::from(*attempt))),
            ("delay", JsValue::from_f64(delay.as_millis() as f64)),
        ]),
        ConnectionState::Disconnected { reason } => {
            object(&[("status", "disconnected".into()), ("reason", reason_str(*reason).into())])
        }
    }
}

/// An `Error` with `data`, `willRetry` and `fallbackPending` (`ConnectError` in types.ts).
pub(crate) fn connect_error_to_js(e: &ConnectError) -> JsValue {
    let err = error(&e.message);
    let data = e.data.as_deref().and_then(|d| JSON::parse(d).ok()).unwrap_or(JsValue::UNDEFINED);
    set(&err, "data", &data);
    set(&err, "willRetry", &JsValue::from_bool(e.will_retry));
    set(&err, "fallbackPending", &JsValue::from_bool(e.fallback_pending));
    err
}

/// `{status: "polling" | "stopped" | "catching-up" | "caught-up" | "gave-up", error?}`.
pub(crate) fn feed_to_js(s: &FeedStatus) -> JsValue {
    match s {
        FeedStatus::Polling => object(&[("status", "polling".into())]),
        FeedStatus::Stopped => object(&[("status", "stopped".into())]),
        FeedStatus::CatchingUp => object(&[("status", "catching-up".into())]),
        FeedStatus::CaughtUp => object(&[("status", "caught-up".into())]),
        FeedStatus::GaveUp { error } => object(&[("status", "gave-up".into()), ("error", JsValue::from_str(error))]),
    }
}

/// `"socket"` or `"feed"`.
pub(crate) fn source_to_js(s: EventSource, names: &mut Names) -> JsValue {
    names.get(match s {
        EventSource::Socket => "socket",
        EventSource::Feed => "feed",
    })
}

/// An emit's failure as an `Error` (socket.io-client's messages where it has one).
pub(crate) fn emit_error_to_js(e: &dyn std::fmt::Display) -> JsValue {
    error(e.to_string())
}
