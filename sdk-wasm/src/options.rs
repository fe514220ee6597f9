//! `TidingsOptions` (npm/src/types.ts) to a core [`Config`]. Every value is checked; a bad one is
//! a thrown `Error` naming the option. Unknown keys are ignored, as socket.io-client does.

use std::time::Duration;

use js_sys::{Array, Function, JSON, Reflect};
use tidings_core::config::{OverflowPolicy, TransportConfig};
use tidings_core::{AuthMode, BackoffStrategy, Config, FeedConfig, TransportKind};
use wasm_bindgen::{JsCast, JsValue};

/// What the options give besides the core configuration.
pub(crate) struct Parsed {
    pub(crate) config: Config,
    /// `auth` as a function: called before every attempt.
    pub(crate) auth_provider: Option<Function>,
}

type R<T> = Result<T, String>;

fn get(obj: &JsValue, key: &str) -> R<Option<JsValue>> {
    if obj.is_undefined() || obj.is_null() {
        return Ok(None);
    }
    let v = Reflect::get(obj, &JsValue::from_str(key)).map_err(|_| format!("cannot read option {key}"))?;
    Ok(if v.is_undefined() { None } else { Some(v) })
}

fn boolean(obj: &JsValue, key: &str) -> R<Option<bool>> {
    get(obj, key)?.map(|v| v.as_bool().ok_or_else(|| format!("option {key} must be a boolean"))).transpose()
}

fn number(obj: &JsValue, key: &str) -> R<Option<f64>> {
    get(obj, key)?
        .map(|v| match v.as_f64() {
            Some(n) if !n.is_nan() && n >= 0.0 => Ok(n),
            _ => Err(format!("option {key} must be a non-negative number")),
        })
        .transpose()
}

/// A non-negative integer (Infinity allowed only where `infinite_ok`: then `Ok(Some(None))`).
fn count(obj: &JsValue, key: &str, infinite_ok: bool) -> R<Option<Option<u64>>> {
    match number(obj, key)? {
        None => Ok(None),
        Some(n) if n.is_infinite() && infinite_ok => Ok(Some(None)),
        Some(n) if n.is_finite() && n.fract() == 0.0 && n <= 9_007_199_254_740_991.0 => Ok(Some(Some(n as u64))),
        Some(_) => Err(format!("option {key} must be a non-negative integer")),
    }
}

fn int<T: TryFrom<u64>>(obj: &JsValue, key: &str) -> R<Option<T>> {
    count(obj, key, false)?
        .flatten()
        .map(|n| T::try_from(n).map_err(|_| format!("option {key} is too large")))
        .transpose()
}

fn millis(obj: &JsValue, key: &str) -> R<Option<Duration>> {
    Ok(int::<u64>(obj, key)?.map(Duration::from_millis))
}

fn string(obj: &JsValue, key: &str) -> R<Option<String>> {
    get(obj, key)?.map(|v| v.as_string().ok_or_else(|| format!("option {key} must be a string"))).transpose()
}

fn nested(obj: &JsValue, key: &str) -> R<Option<JsValue>> {
    match get(obj, key)? {
        Some(v) if v.is_object() => Ok(Some(v)),
        Some(_) => Err(format!("option {key} must be an object")),
        None => Ok(None),
    }
}

fn transport(v: &JsValue) -> R<TransportKind> {
    match v.as_string().as_deref() {
        Some("websocket") => Ok(TransportKind::WebSocket),
        Some("polling") => Ok(TransportKind::Polling),
        _ => Err("option transports may only list \"websocket\" and \"polling\"".to_string()),
    }
}

/// The JSON text of an auth object (it must be a plain object).
pub(crate) fn auth_json(v: &JsValue) -> R<String> {
    if !v.is_object() || Array::is_array(v) || v.is_function() {
        return Err("auth must be an object or a function returning one".to_string());
    }
    JSON::stringify(v)
        .ok()
        .and_then(|s| s.as_string())
        .ok_or_else(|| "auth could not be serialised as JSON".to_string())
}

/// The `auth` option of `WasmClient.of(namespace, {auth})`: an object, or a provider function.
pub(crate) fn namespace_auth(options: &JsValue) -> R<(AuthMode, Option<Function>)> {
    if !(options.is_undefined() || options.is_null() || options.is_object()) {
        return Err("options must be an object".to_string());
    }
    Ok(match get(options, "auth")? {
        None => (AuthMode::None, None),
        Some(f) if f.is_function() => (AuthMode::Provider, f.dyn_into::<Function>().ok()),
        Some(v) => (AuthMode::Static(auth_json(&v)?), None),
    })
}

/// Parses `options` (an object or undefined) for `url`.
pub(crate) fn parse(url: &str, options: &JsValue) -> R<Parsed> {
    if !(options.is_undefined() || options.is_null() || options.is_object()) {
        return Err("options must be an object".to_string());
    }
    let mut c = Config::new(url).map_err(|e| format!("invalid url \"{url}\": {}", e.0))?;
    let mut auth_provider = None;
    match get(options, "auth")? {
        None => {}
        Some(f) if f.is_function() => {
            auth_provider = f.dyn_into::<Function>().ok();
            c.auth = AuthMode::Provider;
        }
        Some(v) => c.auth = AuthMode::Static(auth_json(&v)?),
    }
    if let Some(list) = get(options, "transports")? {
        let list = list.dyn_into::<Array>().map_err(|_| "option transports must be an array".to_string())?;
        let kinds = list.iter().map(|v| transport(&v)).collect::<R<Vec<_>>>()?;
        let mut order = [None, None];
        match kinds.as_slice() {
            [a] => order[0] = Some(*a),
            [a, b] => order = [Some(*a), Some(*b)],
            _ => return Err("option transports must list one or two transports".to_string()),
        }
        c.transports.order = order;
    }
    if let Some(list) = get(options, "fallbackUrls")? {
        let list = list.dyn_into::<Array>().map_err(|_| "option fallbackUrls must be an array".to_string())?;
        for v in list.iter() {
            let u = v.as_string().and_then(|s| tidings_core::url::ServerUrl::parse(&s).ok());
            c.fallback_urls.push(u.ok_or("option fallbackUrls must list http(s) or ws(s) URLs")?);
        }
    }
    let t: &mut TransportConfig = &mut c.transports;
    if let Some(b) = boolean(options, "upgrade")? {
        t.upgrade = b;
    }
    if let Some(b) = boolean(options, "tryAllTransports")? {
        t.try_all_transports = b;
    }
    if let Some(n) = int(options, "fallbackAfter")? {
        t.fallback_after = n;
    }
    if let Some(d) = millis(options, "reprobeInterval")? {
        t.reprobe_every = d;
    }
    if let Some(b) = boolean(options, "reconnection")? {
        c.reconnect.enabled = b;
    }
    if let Some(n) = count(options, "reconnectionAttempts", true)? {
        c.reconnect.max_attempts = n
            .map(|n| u32::try_from(n).map_err(|_| "option reconnectionAttempts is too large".to_string()))
            .transpose()?;
    }
    let (min, max, rand) = match c.reconnect.backoff {
        BackoffStrategy::SocketIo { min_ms, max_ms, randomization, .. } => (min_ms, max_ms, randomization),
        BackoffStrategy::FullJitter { min_ms, max_ms, .. } => (min_ms, max_ms, 0.5),
    };
    let min = int(options, "reconnectionDelay")?.unwrap_or(min);
    let max = int(options, "reconnectionDelayMax")?.unwrap_or(max);
    let rand = match number(options, "randomizationFactor")? {
        Some(r) if r > 1.0 => return Err("option randomizationFactor must be between 0 and 1".to_string()),
        Some(r) => r,
        None => rand,
    };
    c.reconnect.backoff = match string(options, "backoff")?.as_deref() {
        None | Some("socket.io") => {
            BackoffStrategy::SocketIo { min_ms: min, max_ms: max, factor: 2.0, randomization: rand }
        }
        Some("full-jitter") => BackoffStrategy::FullJitter { min_ms: min, max_ms: max, factor: 2.0 },
        Some(_) => return Err("option backoff must be \"socket.io\" or \"full-jitter\"".to_string()),
    };
    if let Some(p) = string(options, "path")? {
        // socket.io-client's `addTrailingSlash`: "/my-path" is requested as "/my-path/".
        c.path = if p.ends_with('/') { p } else { p + "/" };
    }
    if let Some(d) = millis(options, "timeout")? {
        c.connect_timeout = d;
    }
    if let Some(d) = millis(options, "ackTimeout")? {
        c.ack_timeout = Some(d);
    }
    if let Some(n) = int(options, "retries")? {
        c.retries = n;
    }
    if let Some(sb) = nested(options, "sendBuffer")? {
        if let Some(n) = int(&sb, "maxPackets")? {
            c.send_buffer.max_packets = n;
        }
        if let Some(n) = int(&sb, "maxBytes")? {
            c.send_buffer.max_bytes = n;
        }
        c.send_buffer.overflow = match string(&sb, "overflow")?.as_deref() {
            None => c.send_buffer.overflow,
            Some("reject") => OverflowPolicy::Reject,
            Some("drop-oldest") => OverflowPolicy::DropOldest,
            Some(_) => return Err("option sendBuffer.overflow must be \"reject\" or \"drop-oldest\"".to_string()),
        };
    }
    if let Some(re) = nested(options, "roomEvents")? {
        if let Some(j) = string(&re, "join")? {
            c.room_events.join = j;
        }
        if let Some(l) = string(&re, "leave")? {
            c.room_events.leave = l;
        }
    }
    if let Some(f) = nested(options, "feed")? {
        let url = string(&f, "url")?.ok_or_else(|| "option feed.url is required".to_string())?;
        let mut feed = FeedConfig::new(url);
        if let Some(d) = millis(&f, "after")? {
            feed.after = d;
        }
        if let Some(d) = millis(&f, "interval")? {
            feed.interval = d;
        }
        if let Some(d) = millis(&f, "minInterval")? {
            feed.min_interval = d;
        }
        if let Some(d) = millis(&f, "maxInterval")? {
            feed.max_interval = d;
        }
        if let Some(n) = int(&f, "maxFailures")? {
            feed.max_failures = n;
        }
        feed.since = string(&f, "since")?;
        c.feed = Some(feed);
    }
    // Handled by the caller (npm/src/index.ts), checked here so a typo'd value is caught.
    boolean(options, "autoConnect")?;
    c.seed = seed();
    c.validate().map_err(|e| e.to_string())?;
    Ok(Parsed { config: c, auth_provider })
}

/// A random seed for jitter and cache-busting (not security sensitive).
fn seed() -> u64 {
    let hi = (js_sys::Math::random() * 4_294_967_296.0) as u64;
    let lo = (js_sys::Math::random() * 4_294_967_296.0) as u64;
    (hi << 32) | lo
}
