//! Between the core's raw JSON arguments and JavaScript values, without serde_json.
//!
//! Received arguments are handed to `JSON.parse`; a reviver swaps each
//! `{"_placeholder":true,"num":N}` for a `Uint8Array` of attachment N. Sent arguments go through
//! `JSON.stringify` with a replacer that swaps every `ArrayBuffer` or `ArrayBufferView` for a
//! placeholder and moves its bytes into the attachments.

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::{Array, ArrayBuffer, JSON, Object, Reflect, Uint8Array};
use tidings_core::{
    Args, ConnectError, ConnectionState, DisconnectReason, EmitError, EventSource, FeedStatus, TransportKind,
};
use wasm_bindgen::prelude::*;
use wasm_bindgen::{JsCast, JsValue};

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

#[wasm_bindgen]
extern "C" {
    // js-sys has no JSON.parse with a reviver.
    #[wasm_bindgen(js_namespace = JSON, js_name = parse, catch)]
    fn parse_with_reviver(text: &str, reviver: &js_sys::Function) -> Result<JsValue, JsValue>;
}

fn placeholder_num(value: &JsValue, attachments: usize) -> Option<usize> {
    if !value.is_object() || Array::is_array(value) {
        return None;
    }
    let flag = Reflect::get(value, &JsValue::from_str("_placeholder")).ok()?;
    if flag != JsValue::TRUE {
        return None;
    }
    let num = Reflect::get(value, &JsValue::from_str("num")).ok()?.as_f64()?;
    // Only exact small integers name an attachment.
    if num.fract() != 0.0 || num < 0.0 || num >= attachments as f64 {
        return None;
    }
    Some(num as usize)
}

/// The arguments as a JavaScript array, attachments as `Uint8Array`s in place of their placeholders.
pub(crate) fn args_to_js(mut args: Args) -> Result<Array, JsValue> {
    let out = Array::new();
    let attachments = args.take_attachments();
    if attachments.is_empty() {
        for raw in args.iter() {
            out.push(&JSON::parse(raw)?);
        }
        return Ok(out);
    }
    let reviver = Closure::<dyn FnMut(JsValue, JsValue) -> JsValue>::new(move |_key: JsValue, value: JsValue| {
        match placeholder_num(&value, attachments.len()).and_then(|n| attachments.get(n)) {
            Some(bytes) => Uint8Array::from(bytes.as_slice()).into(),
            None => value,
        }
    });
    for raw in args.iter() {
        out.push(&parse_with_reviver(raw, reviver.as_ref().unchecked_ref())?);
    }
    Ok(out)
}

fn bytes_of(value: &JsValue) -> Option<Vec<u8>> {
    if let Some(buf) = value.dyn_ref::<ArrayBuffer>() {
        return Some(Uint8Array::new(buf).to_vec());
    }
    if ArrayBuffer::is_view(value) {
        let get = |k: &str| Reflect::get(value, &JsValue::from_str(k)).ok();
        let buffer = get("buffer")?.dyn_into::<ArrayBuffer>().ok()?;
        let offset = get("byteOffset")?.as_f64()?;
        let length = get("byteLength")?.as_f64()?;
        // Offsets and lengths of views are exact integers below 2^53; u32 covers wasm32 memory.
        return Some(Uint8Array::new_with_byte_offset_and_length(&buffer, offset as u32, length as u32).to_vec());
    }
    None
}

/// Core arguments from a JavaScript array of values (binary data becomes attachments).
pub(crate) fn js_to_args(values: &Array) -> Result<Args, JsValue> {
    let attachments: Rc<RefCell<Vec<Vec<u8>>>> = Rc::default();
    let sink = attachments.clone();
    let replacer = Closure::<dyn FnMut(JsValue, JsValue) -> JsValue>::new(move |_key: JsValue, value: JsValue| {
        match bytes_of(&value) {
            Some(bytes) => {
                let mut list = sink.borrow_mut();
                let num = list.len();
                list.push(bytes);
                object(&[("_placeholder", JsValue::TRUE), ("num", JsValue::from_f64(num as f64))])
            }
            None => value,
        }
    });
    let text = JSON::stringify_with_replacer(values, replacer.as_ref())?;
    drop(replacer);
    let text: String = text.into();
    let attachments = attachments.take();
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

/// `{status: "polling" | "stopped" | "gave-up", error?}`.
pub(crate) fn feed_to_js(s: &FeedStatus) -> JsValue {
    match s {
        FeedStatus::Polling => object(&[("status", "polling".into())]),
        FeedStatus::Stopped => object(&[("status", "stopped".into())]),
        FeedStatus::GaveUp { error } => object(&[("status", "gave-up".into()), ("error", JsValue::from_str(error))]),
    }
}

/// `"socket"` or `"feed"`.
pub(crate) fn source_to_js(s: EventSource) -> JsValue {
    match s {
        EventSource::Socket => "socket".into(),
        EventSource::Feed => "feed".into(),
    }
}

/// An emit's failure as an `Error` (socket.io-client's messages where it has one).
pub(crate) fn emit_error_to_js(e: &EmitError) -> JsValue {
    error(e.to_string())
}
