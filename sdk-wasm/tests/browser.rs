//! End-to-end tests of the browser driver (`WasmClient`: npm/src/wasm/tidings_wasm.ts over the
//! core's module) in headless Chromium against the real Node socket.io server
//! (testing/node-server). `scripts/test-wasm.sh` starts the servers and passes their URLs at
//! compile time; without them every test fails (nothing is skipped silently).
#![cfg(target_arch = "wasm32")]
#![allow(
    missing_docs,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use js_sys::{Array, Function, JSON, Object, Promise, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

const S0: Option<&str> = option_env!("TIDINGS_WASM_S0_URL");
const S0_KILL: Option<&str> = option_env!("TIDINGS_WASM_S0_KILL_URL");
const S1: Option<&str> = option_env!("TIDINGS_WASM_S1_URL");
const POLLING_ONLY: Option<&str> = option_env!("TIDINGS_WASM_POLLING_ONLY_URL");
// Servers of their own: these tests switch the server's proxy on and off.
const S0_BLOCK: Option<&str> = option_env!("TIDINGS_WASM_S0_BLOCK_URL");
const S1_FEED: Option<&str> = option_env!("TIDINGS_WASM_S1_FEED_URL");
// A Node cluster on one Redis (the Redis streams adapter): a pair of nodes A and B per test (the
// test ends A), and C, which broadcasts the events.
const CLUSTER_STOP_WS: [Option<&str>; 2] =
    [option_env!("TIDINGS_WASM_CLUSTER_STOP_WS_A_URL"), option_env!("TIDINGS_WASM_CLUSTER_STOP_WS_B_URL")];
const CLUSTER_STOP_POLLING: [Option<&str>; 2] =
    [option_env!("TIDINGS_WASM_CLUSTER_STOP_POLLING_A_URL"), option_env!("TIDINGS_WASM_CLUSTER_STOP_POLLING_B_URL")];
const CLUSTER_CRASH_WS: [Option<&str>; 2] =
    [option_env!("TIDINGS_WASM_CLUSTER_CRASH_WS_A_URL"), option_env!("TIDINGS_WASM_CLUSTER_CRASH_WS_B_URL")];
const CLUSTER_C: Option<&str> = option_env!("TIDINGS_WASM_CLUSTER_C_URL");
// The fault proxy (testing/node-server/fault-proxy.mjs): the clients of the fault tests connect
// to PROXY, the tests switch faults on its control port, and broadcast on SERVER (an s1 with a
// 500 + 500 ms heartbeat) directly.
const FAULT_SERVER: Option<&str> = option_env!("TIDINGS_WASM_FAULT_SERVER_URL");
const FAULT_PROXY: Option<&str> = option_env!("TIDINGS_WASM_FAULT_PROXY_URL");
const FAULT_CONTROL: Option<&str> = option_env!("TIDINGS_WASM_FAULT_CONTROL_URL");
// The reference server (examples/server: socketioxide, no session recovery, the REST feed; a
// 500 + 500 ms heartbeat) behind a fault proxy of its own (PROXY, CONTROL), and the relay the
// tests publish through (EMIT: its `POST /internal/emit`, which wants a key the page must not
// send). The server's CORS allows the test page's origin.
const REFERENCE_SERVER: Option<&str> = option_env!("TIDINGS_WASM_REFERENCE_SERVER_URL");
const REFERENCE_PROXY: Option<&str> = option_env!("TIDINGS_WASM_REFERENCE_PROXY_URL");
const REFERENCE_CONTROL: Option<&str> = option_env!("TIDINGS_WASM_REFERENCE_CONTROL_URL");
const REFERENCE_EMIT: Option<&str> = option_env!("TIDINGS_WASM_REFERENCE_EMIT_URL");

fn server(url: Option<&'static str>) -> Option<&'static str> {
    assert!(url.is_some(), "no server URL at compile time: run the browser tests with scripts/test-wasm.sh");
    url
}

// The driver under test: its JavaScript half (npm/src/wasm/tidings_wasm.ts) with the module built
// by scripts/build-wasm.sh, bundled into one file (the .wasm inlined) by scripts/test-wasm.sh.
#[wasm_bindgen(module = "/tests/generated/driver.js")]
extern "C" {
    type WasmClient;
    #[wasm_bindgen(constructor, catch)]
    fn new(url: &str, options: JsValue) -> Result<WasmClient, JsValue>;
    #[wasm_bindgen(method, catch)]
    fn of(this: &WasmClient, namespace: &str, options: JsValue) -> Result<WasmClient, JsValue>;
    #[wasm_bindgen(method, getter)]
    fn namespace(this: &WasmClient) -> String;
    #[wasm_bindgen(method, catch)]
    fn connect(this: &WasmClient) -> Result<(), JsValue>;
    #[wasm_bindgen(method, catch)]
    fn disconnect(this: &WasmClient) -> Result<(), JsValue>;
    #[wasm_bindgen(method)]
    fn close(this: &WasmClient);
    #[wasm_bindgen(method, catch)]
    fn emit(this: &WasmClient, event: &str, args: &Array, opts: JsValue) -> Result<JsValue, JsValue>;
    #[wasm_bindgen(method, catch)]
    fn ack(this: &WasmClient, ack_id: f64, args: &Array) -> Result<(), JsValue>;
    #[wasm_bindgen(method)]
    fn join(this: &WasmClient, room: &str) -> Promise;
    #[wasm_bindgen(method)]
    fn leave(this: &WasmClient, room: &str) -> Promise;
    #[wasm_bindgen(method, getter)]
    fn state(this: &WasmClient) -> JsValue;
    #[wasm_bindgen(method, getter)]
    fn id(this: &WasmClient) -> Option<String>;
    #[wasm_bindgen(method, getter)]
    fn connected(this: &WasmClient) -> bool;
    #[wasm_bindgen(method, getter)]
    fn recovered(this: &WasmClient) -> bool;
    #[wasm_bindgen(method, getter)]
    fn rooms(this: &WasmClient) -> Array;
    #[wasm_bindgen(method, js_name = onEvent)]
    fn on_event(this: &WasmClient, f: Option<Function>);
    #[wasm_bindgen(method, js_name = onState)]
    fn on_state(this: &WasmClient, f: Option<Function>);
    #[wasm_bindgen(method, js_name = onConnectError)]
    fn on_connect_error(this: &WasmClient, f: Option<Function>);
    #[wasm_bindgen(method, js_name = onFeed)]
    fn on_feed(this: &WasmClient, f: Option<Function>);
}

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_name = setTimeout)]
    fn set_timeout(cb: &Function, ms: f64) -> JsValue;
    #[wasm_bindgen(js_name = fetch)]
    fn fetch_str(url: &str, init: &JsValue) -> Promise;
}

// What a Node `Buffer` (bundlers polyfill it in browsers) looks like to JSON.stringify: a
// Uint8Array whose toJSON turns it into {type: "Buffer", data: [...]}.
#[wasm_bindgen(inline_js = r#"
class BufferLike extends Uint8Array { toJSON() { return { type: "Buffer", data: Array.from(this) }; } }
export function bufferLike(bytes) { return BufferLike.from(bytes); }
"#)]
extern "C" {
    #[wasm_bindgen(js_name = bufferLike)]
    fn buffer_like(bytes: &[u8]) -> JsValue;
}

// Collects the uncaught errors (window `error` events, which `reportError` raises) whose message
// contains `marker`, and keeps them from failing the page.
#[wasm_bindgen(inline_js = r#"
export function watchErrors(marker) {
  const seen = [];
  const onError = (ev) => {
    const message = String(ev.error?.message ?? ev.message);
    if (message.includes(marker)) { seen.push(message); ev.preventDefault(); }
  };
  addEventListener("error", onError);
  return { seen, stop: () => removeEventListener("error", onError) };
}
"#)]
extern "C" {
    #[wasm_bindgen(js_name = watchErrors)]
    fn watch_errors(marker: &str) -> JsValue;
}

async fn sleep(ms: u32) {
    let p = Promise::new(&mut |resolve, _| {
        set_timeout(&resolve, f64::from(ms));
    });
    JsFuture::from(p).await.unwrap();
}

fn js(text: &str) -> JsValue {
    JSON::parse(text).unwrap()
}

fn get(v: &JsValue, k: &str) -> JsValue {
    Reflect::get(v, &k.into()).unwrap()
}

fn json<T: AsRef<JsValue>>(v: &T) -> String {
    JSON::stringify(v.as_ref()).unwrap().into()
}

/// POSTs (or GETs) a control route; returns the parsed JSON answer.
async fn control(base: &str, method: &str, path: &str, body: &str) -> JsValue {
    let init = Object::new();
    Reflect::set(&init, &"method".into(), &method.into()).unwrap();
    if method == "POST" {
        Reflect::set(&init, &"body".into(), &body.into()).unwrap();
    }
    let resp: web_sys::Response = JsFuture::from(fetch_str(&format!("{base}{path}"), &init)).await.unwrap().into();
    JsFuture::from(resp.json().unwrap()).await.unwrap()
}

/// Everything a client reported, in order.
#[derive(Default)]
struct Log {
    events: Vec<(String, Array, JsValue, JsValue, JsValue)>,
    feed: Vec<JsValue>,
    /// How many `events` had come when each of `feed` was reported, and once the code that
    /// reported it was done (in a microtask): the events in between came in the same drain of
    /// the client (after a `caught-up`: the socket's events that waited for the catch-up).
    feed_at: Vec<(usize, Option<usize>)>,
    states: Vec<JsValue>,
    /// When each of `states` was reported (`Date.now()`, ms).
    state_at: Vec<f64>,
    errors: Vec<JsValue>,
}

struct Harness {
    client: WasmClient,
    log: Rc<RefCell<Log>>,
}

impl Harness {
    fn new(url: &str, options: &JsValue) -> Self {
        Self::with(WasmClient::new(url, options.clone()).expect("client"))
    }

    fn with(client: WasmClient) -> Self {
        let log = Rc::new(RefCell::new(Log::default()));
        let l = log.clone();
        let on_event = Closure::<dyn FnMut(String, Array, JsValue, JsValue, JsValue)>::new(
            move |name: String, args: Array, offset: JsValue, source: JsValue, ack: JsValue| {
                l.borrow_mut().events.push((name, args, ack, offset, source));
            },
        );
        client.on_event(Some(on_event.into_js_value().unchecked_into()));
        let l = log.clone();
        let on_state = Closure::<dyn FnMut(JsValue)>::new(move |s: JsValue| {
            let mut log = l.borrow_mut();
            log.states.push(s);
            log.state_at.push(js_sys::Date::now());
        });
        client.on_state(Some(on_state.into_js_value().unchecked_into()));
        let l = log.clone();
        let on_error = Closure::<dyn FnMut(JsValue)>::new(move |e: JsValue| l.borrow_mut().errors.push(e));
        client.on_connect_error(Some(on_error.into_js_value().unchecked_into()));
        let l = log.clone();
        let on_feed = Closure::<dyn FnMut(JsValue)>::new(move |s: JsValue| {
            let mut log = l.borrow_mut();
            log.feed.push(s);
            let (n, at) = (log.events.len(), log.feed_at.len());
            log.feed_at.push((n, None));
            let l = l.clone();
            wasm_bindgen_futures::spawn_local(async move {
                let mut log = l.borrow_mut();
                log.feed_at[at].1 = Some(log.events.len());
            });
        });
        client.on_feed(Some(on_feed.into_js_value().unchecked_into()));
        Harness { client, log }
    }

    async fn wait(&self, what: &str, timeout_ms: u32, mut cond: impl FnMut(&Harness) -> bool) {
        let mut waited = 0;
        while !cond(self) {
            if waited >= timeout_ms {
                let log = self.log.borrow();
                let states: Vec<String> = log.states.iter().map(json).collect();
                let events: Vec<String> = log.events.iter().map(|e| format!("{} {}", e.0, json(&e.1))).collect();
                panic!(
                    "timed out waiting for {what}; states {states:?}; events {events:?}; errors {}",
                    log.errors.len()
                );
            }
            sleep(10).await;
            waited += 10;
        }
    }

    async fn connected(&self) {
        self.wait("connected", 10_000, |h| h.client.connected()).await;
    }

    /// A client for `url` with `options`, connected.
    async fn connect(url: &str, options: &JsValue) -> Self {
        let h = Self::new(url, options);
        h.client.connect().unwrap();
        h.connected().await;
        h
    }

    /// The arguments of the `n`th event called `name`.
    fn event(&self, name: &str, n: usize) -> Option<Array> {
        self.log.borrow().events.iter().filter(|e| e.0 == name).nth(n).map(|e| e.1.clone())
    }

    fn count(&self, name: &str) -> usize {
        self.log.borrow().events.iter().filter(|e| e.0 == name).count()
    }

    async fn next_event(&self, name: &str, n: usize) -> Array {
        self.wait(&format!("event {name} #{n}"), 10_000, |h| h.event(name, n).is_some()).await;
        self.event(name, n).unwrap()
    }

    async fn emit_ack(&self, event: &str, args: &Array) -> Array {
        let p: Promise = self.client.emit(event, args, js(r#"{"ack":true}"#)).unwrap().unchecked_into();
        JsFuture::from(p).await.unwrap().unchecked_into()
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.client.close();
    }
}

fn fast_reconnect() -> JsValue {
    js(r#"{"reconnectionDelay":100,"reconnectionDelayMax":200,"randomizationFactor":0}"#)
}

#[wasm_bindgen_test]
async fn connects_with_auth_and_exchanges_events_and_acks() {
    let Some(url) = server(S0) else { return };
    let h = Harness::connect(url, &js(r#"{"auth":{"token":"abc"}}"#)).await;
    assert!(h.client.id().is_some());
    assert_eq!(get(&h.client.state(), "status"), "connected");

    // The server greets with its handshake.auth.
    let auth = h.next_event("auth", 0).await;
    assert_eq!(json(&auth), r#"[{"token":"abc"}]"#);

    // Client -> server -> client event.
    h.client.emit("echo", &js(r#"[1,"two",{"three":[3]}]"#).unchecked_into(), JsValue::UNDEFINED).unwrap();
    let echo = h.next_event("echo", 0).await;
    assert_eq!(json(&echo), r#"[1,"two",{"three":[3]}]"#);

    // Client ack request.
    let acked = h.emit_ack("echo", &js(r#"[{"a":1},"b"]"#).unchecked_into()).await;
    assert_eq!(json(&acked), r#"[{"a":1},"b"]"#);

    // Server ack request: `ask` makes the server emit `ask` 1 with an ack, then `answered`.
    h.client.emit("ask", &Array::new(), JsValue::UNDEFINED).unwrap();
    h.wait("ask", 5000, |h| h.count("ask") == 1).await;
    let ack_id = h.log.borrow().events.iter().find(|e| e.0 == "ask").unwrap().2.clone();
    assert_eq!(json(&h.event("ask", 0).unwrap()), "[1]");
    h.client.ack(ack_id.as_f64().expect("an ack id"), &js(r#"["yes",2]"#).unchecked_into()).unwrap();
    let answered = h.next_event("answered", 0).await;
    assert_eq!(json(&answered), r#"["yes",2]"#);

    // Reserved names are refused with an Error, not a panic.
    let err = h.client.emit("connect", &Array::new(), JsValue::UNDEFINED).unwrap_err();
    assert!(err.is_instance_of::<js_sys::Error>());
}

#[wasm_bindgen_test]
async fn binary_both_ways() {
    let Some(url) = server(S0) else { return };
    let h = Harness::connect(url, &JsValue::UNDEFINED).await;

    // A Uint8Array (and an ArrayBuffer) nested in the arguments go as attachments and come back.
    let args = Array::new();
    args.push(&Uint8Array::from(&[1u8, 2, 3][..]));
    let nested = js(r#"{"name":"x"}"#);
    Reflect::set(&nested, &"buf".into(), &Uint8Array::from(&[9u8, 8][..]).buffer()).unwrap();
    args.push(&nested);
    let back = h.emit_ack("echo", &args).await;
    let first: Uint8Array = back.get(0).dyn_into().expect("a Uint8Array");
    assert_eq!(first.to_vec(), vec![1, 2, 3]);
    let buf: Uint8Array = get(&back.get(1), "buf").dyn_into().expect("a Uint8Array");
    assert_eq!(buf.to_vec(), vec![9, 8]);
    assert_eq!(get(&back.get(1), "name"), "x");

    // A Buffer-like view with a toJSON (and a DataView over part of a buffer) go as binary too.
    let args = Array::new();
    args.push(&buffer_like(&[5, 6, 7]));
    let whole = Uint8Array::from(&[0u8, 1, 2, 3, 4][..]).buffer();
    args.push(&js_sys::DataView::new(&whole, 1, 3));
    let back = h.emit_ack("echo", &args).await;
    assert_eq!(back.get(0).dyn_into::<Uint8Array>().expect("binary, not toJSON").to_vec(), vec![5, 6, 7]);
    assert_eq!(back.get(1).dyn_into::<Uint8Array>().expect("a Uint8Array").to_vec(), vec![1, 2, 3]);

    // Server-sent binary: doge (one attachment) and bin2 (two, nested).
    h.client.emit("doge", &Array::new(), JsValue::UNDEFINED).unwrap();
    let doge = h.next_event("doge", 0).await;
    assert_eq!(doge.get(0).dyn_into::<Uint8Array>().unwrap().to_vec(), b"asdfasdf".to_vec());
    h.client.emit("bin2", &Array::new(), JsValue::UNDEFINED).unwrap();
    let bin2 = h.next_event("bin2", 0).await.get(0);
    assert_eq!(get(&bin2, "a").dyn_into::<Uint8Array>().unwrap().to_vec(), vec![1, 2, 3]);
    let c = get(&Reflect::get_u32(&get(&bin2, "b"), 1).unwrap(), "c");
    assert_eq!(c.dyn_into::<Uint8Array>().unwrap().to_vec(), vec![4, 5]);
}

#[wasm_bindgen_test]
async fn auth_provider_rooms_and_volatile() {
    let Some(url) = server(S0) else { return };
    let options = Object::new();
    let provider = Closure::<dyn FnMut() -> Promise>::new(|| Promise::resolve(&js(r#"{"token":"from-fn"}"#)));
    Reflect::set(&options, &"auth".into(), &provider.into_js_value()).unwrap();
    let h = Harness::connect(url, &options).await;
    assert_eq!(json(&h.next_event("auth", 0).await), r#"[{"token":"from-fn"}]"#);

    let joined = JsFuture::from(h.client.join("blue")).await.unwrap();
    assert_eq!(json(&joined), r#"[{"ok":true,"room":"blue"}]"#);
    control(url, "POST", "/control/to?room=blue&event=roomy", r#"["hello"]"#).await;
    assert_eq!(json(&h.next_event("roomy", 0).await), r#"["hello"]"#);
    assert_eq!(json(&h.client.rooms()), r#"["blue"]"#);
    JsFuture::from(h.client.leave("blue")).await.unwrap();
    assert_eq!(json(&h.client.rooms()), "[]");

    // A volatile emit while connected goes out.
    h.client.emit("echo", &js(r#"["v"]"#).unchecked_into(), js(r#"{"volatile":true}"#)).unwrap();
    assert_eq!(json(&h.next_event("echo", 0).await), r#"["v"]"#);
}

#[wasm_bindgen_test]
async fn reconnects_after_the_transport_is_killed() {
    let Some(url) = server(S0_KILL) else { return };
    let h = Harness::connect(url, &fast_reconnect()).await;
    let first_id = h.client.id().unwrap();
    let killed = control(url, "POST", "/control/kill-transports", "").await;
    assert!(get(&killed, "closed").as_f64().unwrap() >= 1.0);
    h.wait("a disconnect", 5000, |h| !h.client.connected()).await;
    h.connected().await;
    assert_ne!(h.client.id().unwrap(), first_id, "S0 has no recovery: a new session");
    let statuses: Vec<String> = h.log.borrow().states.iter().map(|s| get(s, "status").as_string().unwrap()).collect();
    assert!(statuses.iter().any(|s| s == "reconnecting"), "{statuses:?}");
    let reasons: Vec<String> = h.log.borrow().states.iter().filter_map(|s| get(s, "reason").as_string()).collect();
    assert!(reasons.iter().any(|r| r == "transport close"), "{reasons:?}");
    // Still works.
    let acked = h.emit_ack("echo", &js("[42]").unchecked_into()).await;
    assert_eq!(json(&acked), "[42]");
}

/// The server forgets the long-polling session without a word (a restart, another server behind
/// a balancer): the next request gets `400 Session ID unknown`, and the client opens one new
/// session with a handshake instead of retrying the dead sid in a loop.
#[wasm_bindgen_test]
async fn an_unknown_session_id_gets_one_new_handshake_not_a_loop() {
    let Some(url) = server(S0_KILL) else { return };
    let options = fast_reconnect();
    Reflect::set(&options, &"transports".into(), &js(r#"["polling"]"#)).unwrap();
    let h = Harness::connect(url, &options).await;
    let first_id = h.client.id().unwrap();
    let forgotten = control(url, "POST", "/control/forget-sessions", "").await;
    assert!(get(&forgotten, "forgotten").as_f64().unwrap() >= 1.0);
    h.wait("a new session", 5000, |h| h.client.id().is_some_and(|id| id != first_id)).await;
    sleep(1500).await;
    let statuses: Vec<String> = h.log.borrow().states.iter().map(|s| get(s, "status").as_string().unwrap()).collect();
    let connects = statuses.iter().filter(|s| *s == "connected").count();
    let reconnects = statuses.iter().filter(|s| *s == "reconnecting").count();
    assert_eq!((connects, reconnects), (2, 1), "one new handshake, then stable: {statuses:?}");
    let acked = h.emit_ack("echo", &js("[7]").unchecked_into()).await;
    assert_eq!(json(&acked), "[7]");
}

#[wasm_bindgen_test]
async fn recovers_the_session_and_gets_missed_events_once() {
    let Some(url) = server(S1) else { return };
    // A 1 s delay leaves time to publish while the client is away.
    let h =
        Harness::connect(url, &js(r#"{"auth":{"token":"t1"},"reconnectionDelay":1000,"randomizationFactor":0}"#)).await;
    h.next_event("auth", 0).await;
    // The recovery offset is reported apart from the arguments.
    let offset = h.log.borrow().events.iter().find(|e| e.0 == "auth").unwrap().3.clone();
    assert!(offset.as_string().is_some(), "auth carries an offset");
    assert!(!h.client.recovered());
    let id = h.client.id().unwrap();

    control(url, "POST", "/control/kill-transports", "").await;
    h.wait("a disconnect", 5000, |h| !h.client.connected()).await;
    control(url, "POST", "/control/emit?event=news", r#"["missed"]"#).await;
    h.connected().await;
    assert!(h.client.recovered(), "the server restored the session");
    assert_eq!(h.client.id().unwrap(), id);
    let news = h.next_event("news", 0).await;
    // Every argument as sent: the offset comes last, as socket.io-client hands it to listeners.
    let news_offset = h.log.borrow().events.iter().find(|e| e.0 == "news").unwrap().3.clone();
    assert!(news_offset.as_string().is_some(), "news carries an offset");
    assert_eq!(news.length(), 2, "{}", json(&news));
    assert_eq!(news.get(0), "missed");
    assert_eq!(news.get(1), news_offset, "the offset is the last argument");
    sleep(300).await;
    assert_eq!(h.count("news"), 1, "a missed event is delivered once");
}

#[wasm_bindgen_test]
async fn listeners_get_every_argument_as_sent_and_repeated_volatile_events() {
    let Some(url) = server(S1) else { return };
    let h = Harness::connect(url, &JsValue::UNDEFINED).await;
    h.next_event("auth", 0).await;

    // A volatile broadcast carries no offset, but its last string argument looks like one on the
    // wire: the listener still gets it, and the same event sent twice arrives twice.
    for _ in 0..2 {
        let r = control(url, "POST", "/control/emit?event=vol&volatile=1", r#"["x"]"#).await;
        assert_eq!(get(&r, "ok"), JsValue::TRUE, "{}", json(&r));
    }
    h.wait("two vol events", 5000, |h| h.count("vol") == 2).await;
    assert_eq!(json(&h.event("vol", 0).unwrap()), r#"["x"]"#);
    assert_eq!(json(&h.event("vol", 1).unwrap()), r#"["x"]"#);

    // A stored broadcast: its argument, then the offset the server appended (also the third
    // parameter of onEvent), as socket.io-client passes it.
    control(url, "POST", "/control/emit?event=news", r#"["one"]"#).await;
    let news = h.next_event("news", 0).await;
    let offset = h.log.borrow().events.iter().find(|e| e.0 == "news").unwrap().3.clone();
    let offset_text = offset.as_string().expect("news carries an offset");
    assert_ne!(offset_text, "x");
    assert_eq!(json(&news), format!(r#"["one",{}]"#, json(&offset)));
    let names: Vec<String> = h.log.borrow().events.iter().map(|e| e.0.clone()).collect();
    assert_eq!(names, ["auth", "vol", "vol", "news"], "in order, nothing dropped or repeated");
    sleep(200).await;
    assert_eq!((h.count("vol"), h.count("news")), (2, 1));
}

#[wasm_bindgen_test]
async fn a_throwing_callback_loses_no_later_event() {
    let Some(url) = server(S1) else { return };
    const MARKER: &str = "tidings-test: thrown by the callback";
    let errors = watch_errors(MARKER);
    // The callback throws on the first tick and on the eleventh. Long-polling: the burst arrives
    // in one or two HTTP bodies, so the eleventh has events queued behind it in the same
    // delivery loop. A 1 s reconnection delay leaves time to publish while away.
    let h = Harness::new(url, &js(r#"{"transports":["polling"],"reconnectionDelay":1000,"randomizationFactor":0}"#));
    let l = h.log.clone();
    let on_event = Closure::<dyn FnMut(String, Array, JsValue, JsValue, JsValue) -> Result<(), JsValue>>::new(
        move |name: String, args: Array, offset: JsValue, source: JsValue, ack: JsValue| {
            let throws = name == "tick" && [0.0, 10.0].contains(&get(&args.get(0), "i").as_f64().unwrap());
            l.borrow_mut().events.push((name, args, ack, offset, source));
            if throws { Err(js_sys::Error::new(MARKER).into()) } else { Ok(()) }
        },
    );
    h.client.on_event(Some(on_event.into_js_value().unchecked_into()));
    h.client.connect().unwrap();
    h.connected().await;
    h.next_event("auth", 0).await;

    let r = control(url, "POST", "/control/burst?event=tick&count=20", "").await;
    assert_eq!(get(&r, "count"), 20, "{}", json(&r));
    h.wait("20 ticks", 10_000, |h| h.count("tick") == 20).await;
    {
        let log = h.log.borrow();
        let ticks: Vec<&(String, Array, JsValue, JsValue, JsValue)> =
            log.events.iter().filter(|e| e.0 == "tick").collect();
        let order: Vec<f64> = ticks.iter().map(|e| get(&e.1.get(0), "i").as_f64().unwrap()).collect();
        assert_eq!(order, (0..20).map(f64::from).collect::<Vec<_>>(), "every tick, in order");
        for e in &ticks {
            assert_eq!(e.1.length(), 2, "the tick and its offset: {}", json(&e.1));
            assert_eq!(e.1.get(1), e.3, "the offset is the last argument");
        }
    }
    let seen = get(&errors, "seen");
    assert_eq!(json(&seen), format!(r#"["{MARKER}","{MARKER}"]"#), "each exception was reported as uncaught");

    // The events whose callback threw counted as delivered like the others: the recovery offset moved on, the
    // session is restored, and only what was published while away comes back.
    control(url, "POST", "/control/kill-transports", "").await;
    h.wait("a disconnect", 5000, |h| !h.client.connected()).await;
    control(url, "POST", "/control/emit?event=news", r#"["missed"]"#).await;
    h.connected().await;
    assert!(h.client.recovered(), "the server restored the session");
    assert_eq!(h.next_event("news", 0).await.get(0), "missed");
    sleep(300).await;
    assert_eq!((h.count("tick"), h.count("news")), (20, 1), "nothing replayed twice");
    let stop: Function = get(&errors, "stop").unchecked_into();
    stop.call0(&JsValue::UNDEFINED).unwrap();
}

#[wasm_bindgen_test]
async fn falls_back_to_long_polling_when_websocket_is_refused() {
    let Some(url) = server(POLLING_ONLY) else { return };
    let h = Harness::new(url, &fast_reconnect());
    h.client.connect().unwrap();
    h.wait("connected over polling", 15_000, |h| h.client.connected()).await;
    assert_eq!(get(&h.client.state(), "transport"), "polling");
    let fallback_reported = h.log.borrow().errors.iter().any(|e| get(e, "fallbackPending") == JsValue::TRUE);
    assert!(fallback_reported, "the WebSocket failures were reported with fallbackPending");
    // Events, acks and binary over polling.
    let args = Array::new();
    args.push(&"p".into());
    args.push(&Uint8Array::from(&[7u8, 7, 7][..]));
    let back = h.emit_ack("echo", &args).await;
    assert_eq!(back.get(0), "p");
    assert_eq!(back.get(1).dyn_into::<Uint8Array>().unwrap().to_vec(), vec![7, 7, 7]);
    h.client.emit("doge", &Array::new(), JsValue::UNDEFINED).unwrap();
    let doge = h.next_event("doge", 0).await;
    assert_eq!(doge.get(0).dyn_into::<Uint8Array>().unwrap().to_vec(), b"asdfasdf".to_vec());
}

#[wasm_bindgen_test]
async fn a_blocked_websocket_falls_back_to_polling_then_upgrades_when_unblocked() {
    let Some(url) = server(S0_BLOCK) else { return };
    control(url, "POST", "/control/block-websocket?on=1", "").await;
    let h = Harness::new(url, &js(r#"{"reprobeInterval":300,"reconnectionDelay":100,"reconnectionDelayMax":200}"#));
    h.client.connect().unwrap();
    h.wait("connected over polling", 15_000, |h| h.client.connected()).await;
    assert_eq!(get(&h.client.state(), "transport"), "polling");
    let one = Array::of1(&"over polling".into());
    assert_eq!(json(&h.emit_ack("echo", &one).await), r#"["over polling"]"#);
    // The proxy lets WebSockets through again: the background re-probe upgrades the session
    // (same sid, no reconnect) and nothing in flight is lost.
    let sid = h.client.id().unwrap();
    let states_before = h.log.borrow().states.len();
    control(url, "POST", "/control/block-websocket?on=0", "").await;
    h.wait("upgraded to websocket", 10_000, |h| get(&h.client.state(), "transport") == "websocket").await;
    assert_eq!(h.client.id().unwrap(), sid, "an upgrade, not a new session");
    let two = Array::of1(&"over websocket".into());
    assert_eq!(json(&h.emit_ack("echo", &two).await), r#"["over websocket"]"#);
    let log = h.log.borrow();
    let after: Vec<String> = log.states[states_before..].iter().map(|s| json(&get(s, "status"))).collect();
    assert!(after.iter().all(|s| s == r#""connected""#), "the upgrade needed no reconnection: {after:?}");
}

#[wasm_bindgen_test]
async fn the_rest_feed_bridges_a_socketio_outage_without_duplicates() {
    let Some(url) = server(S1_FEED) else { return };
    let options = js(&format!(
        r#"{{"auth":{{"token":"t1"}},"transports":["websocket"],"reconnectionDelay":100,"reconnectionDelayMax":300,
            "randomizationFactor":0,"feed":{{"url":"{url}/feed","after":300,"interval":300,"minInterval":100,"maxInterval":2000}}}}"#
    ));
    let h = Harness::connect(url, &options).await;
    JsFuture::from(h.client.join("user:1")).await.unwrap();
    let publish = async |n: u32| {
        let r = control(url, "POST", "/control/publish?room=user:1&event=task.created", &format!(r#"{{"task":{n}}}"#))
            .await;
        assert_eq!(get(&r, "id"), format!("evt_{n}"), "{}", json(&r));
    };
    publish(1).await;
    h.next_event("task.created", 0).await;

    // Socket.IO goes down, the application's REST feed stays up.
    control(url, "POST", "/control/refuse-socketio?on=1", "").await;
    h.wait("feed polling", 10_000, |h| h.log.borrow().feed.iter().any(|s| json(s).contains("polling"))).await;
    publish(2).await;
    publish(3).await;
    h.next_event("task.created", 2).await;

    // Socket.IO is back: the session is recovered and the server replays evt_2 and evt_3 on the
    // socket; de-duplication keeps them from the handler.
    control(url, "POST", "/control/refuse-socketio?on=0", "").await;
    h.wait("reconnected", 15_000, |h| h.client.connected()).await;
    assert!(h.client.recovered(), "the session was recovered");
    h.wait("feed stopped", 5_000, |h| h.log.borrow().feed.iter().any(|s| json(s).contains("stopped"))).await;
    publish(4).await;
    h.next_event("task.created", 3).await;
    sleep(500).await;
    let got: Vec<(String, String)> = h
        .log
        .borrow()
        .events
        .iter()
        .filter(|e| e.0 == "task.created")
        .map(|e| (get(&e.1.get(0), "id").as_string().unwrap(), e.4.as_string().unwrap()))
        .collect();
    let expected = [("evt_1", "socket"), ("evt_2", "feed"), ("evt_3", "feed"), ("evt_4", "socket")];
    assert_eq!(got, expected.map(|(a, b)| (a.to_string(), b.to_string())), "each event once, in order");

    // The feed was asked from the last socket event, with the token in a header, never the URL.
    let requests: Array = control(url, "GET", "/control/feed-requests", "").await.unchecked_into();
    assert!(requests.length() > 0);
    let first = requests.get(0);
    assert!(get(&first, "url").as_string().unwrap().contains("since=evt_1"), "{}", json(&first));
    for r in requests.iter() {
        assert_eq!(get(&r, "authorization"), "Bearer t1");
        assert!(!get(&r, "url").as_string().unwrap().contains("t1"), "{}", json(&r));
    }
}

#[wasm_bindgen_test]
async fn namespaces_share_one_connection() {
    let Some(url) = server(S0) else { return };
    let main = Harness::connect(url, &js(r#"{"auth":{"token":"main"}}"#)).await;
    let custom = Harness::with(main.client.of("/custom", js(r#"{"auth":{"token":"custom"}}"#)).unwrap());
    assert_eq!(custom.client.namespace(), "/custom");
    custom.connected().await;
    assert!(main.client.of("/custom", JsValue::UNDEFINED).is_err(), "one handle per namespace");
    assert!(main.client.of("custom", JsValue::UNDEFINED).is_err(), "a namespace starts with '/'");

    // Each namespace got its own auth, and each handle sees only its own events.
    assert_eq!(json(&main.next_event("auth", 0).await), r#"[{"token":"main"}]"#);
    assert_eq!(json(&custom.next_event("auth", 0).await), r#"[{"token":"custom"}]"#);
    let back = custom.emit_ack("echo", &Array::of1(&"via custom".into())).await;
    assert_eq!(json(&back), r#"["via custom"]"#);
    assert_eq!(main.count("auth"), 1);
    assert_ne!(main.client.id(), custom.client.id());

    // One engine session: the server sees both sockets on the same engine connection.
    let sockets: Array = control(url, "GET", "/control/sockets", "").await.unchecked_into();
    let engine_of = |nsp: &str, id: &str| {
        sockets
            .iter()
            .find(|s| get(s, "nsp") == nsp && get(s, "id") == id)
            .map(|s| get(&s, "engineId"))
            .unwrap_or_else(|| panic!("no {nsp} socket {id}: {}", json(&sockets)))
    };
    let a = engine_of("/", &main.client.id().unwrap());
    let b = engine_of("/custom", &custom.client.id().unwrap());
    assert_eq!(a, b, "both namespaces over one engine connection");

    // Closing one namespace leaves the other connected; the last close ends the connection.
    custom.client.close();
    sleep(200).await;
    assert!(!custom.client.connected());
    assert!(main.client.connected(), "the main namespace stays connected");
    let back = main.emit_ack("echo", &Array::of1(&"still here".into())).await;
    assert_eq!(json(&back), r#"["still here"]"#);
}

#[wasm_bindgen_test]
async fn an_ack_timeout_rejects_and_close_releases() {
    let Some(url) = server(S0) else { return };
    let h = Harness::connect(url, &JsValue::UNDEFINED).await;
    let p: Promise = h.client.emit("nothing-acks", &Array::new(), js(r#"{"timeout":100}"#)).unwrap().unchecked_into();
    let err = JsFuture::from(p).await.unwrap_err();
    assert_eq!(get(&err, "message"), "operation has timed out");
    h.client.close();
    // After close every command is a thrown Error.
    let err = h.client.connect().unwrap_err();
    assert!(err.is_instance_of::<js_sys::Error>());
    assert!(!h.client.connected());
}

#[wasm_bindgen_test]
fn bad_options_throw_errors() {
    let url = "http://127.0.0.1:1";
    for bad in [
        r#"{"reconnectionDelay":-1}"#,
        r#"{"transports":["carrier-pigeon"]}"#,
        r#"{"transports":[]}"#,
        r#"{"randomizationFactor":2}"#,
        r#"{"retries":2}"#,
        r#"{"auth":"token"}"#,
        r#"{"backoff":"linear"}"#,
        r#"{"feed":{"interval":10}}"#,
        r#"{"upgrade":"yes"}"#,
    ] {
        let err = WasmClient::new(url, js(bad)).err().unwrap_or_else(|| panic!("{bad} was accepted"));
        assert!(err.is_instance_of::<js_sys::Error>(), "{bad}");
        let message = get(&err, "message").as_string().unwrap();
        assert!(message.starts_with("tidings: "), "{message}");
    }
    let err = WasmClient::new("not a url", JsValue::UNDEFINED).err().expect("a bad url is refused");
    assert!(err.is_instance_of::<js_sys::Error>());
    assert!(WasmClient::new(url, js(r#"{"retries":2,"ackTimeout":100}"#)).is_ok());
}

/// Broadcasts `tick` 0, 1, 2, ... to `room` through node `via`, one request after the other, every
/// 10 ms, until stopped. Each is an envelope, `{"id":"tick-N","data":N}`: the client de-duplicates
/// envelopes by id, which covers the adapter's rare duplicate at the restore
/// (sdk-native/tests/cluster_e2e.rs).
struct Ticker {
    sent: Rc<Cell<u32>>,
    stop: Rc<Cell<bool>>,
    done: Rc<Cell<bool>>,
}

impl Ticker {
    fn start(via: &'static str, room: &'static str) -> Self {
        Self::spawn(0, move |i| async move {
            let tick = format!(r#"[{{"id":"tick-{i}","data":{i}}}]"#);
            let r = control(via, "POST", &format!("/control/to?room={room}&event=tick"), &tick).await;
            assert_eq!(get(&r, "ok"), JsValue::TRUE, "{}", json(&r));
        })
    }

    /// Calls `send` with `first`, `first + 1`, ..., each once the one before is done, every
    /// 10 ms; `sent` is the next number.
    fn spawn<F: std::future::Future<Output = ()>>(first: u32, send: impl Fn(u32) -> F + 'static) -> Self {
        let (sent, stop, done) = (Rc::new(Cell::new(first)), Rc::new(Cell::new(false)), Rc::new(Cell::new(false)));
        let (s, st, d) = (sent.clone(), stop.clone(), done.clone());
        wasm_bindgen_futures::spawn_local(async move {
            let mut i = first;
            while !st.get() {
                send(i).await;
                i += 1;
                s.set(i);
                sleep(10).await;
            }
            d.set(true);
        });
        Self { sent, stop, done }
    }

    /// Stops after the tick in flight; returns how many were broadcast.
    async fn stop(self) -> u32 {
        self.stop.set(true);
        for _ in 0..1000 {
            if self.done.get() {
                return self.sent.get();
            }
            sleep(10).await;
        }
        panic!("the ticker did not stop");
    }
}

/// The sockets a node has: `(id, recovered, rooms)`.
async fn sockets_of(node: &str) -> Vec<(String, bool, Vec<String>)> {
    let sockets: Array = control(node, "GET", "/control/sockets", "").await.unchecked_into();
    sockets
        .iter()
        .map(|s| {
            let rooms: Array = get(&s, "rooms").unchecked_into();
            let rooms = rooms.iter().map(|r| r.as_string().unwrap()).collect();
            (get(&s, "id").as_string().unwrap(), get(&s, "recovered") == JsValue::TRUE, rooms)
        })
        .collect()
}

/// docs/DEPLOYMENT.md, "Node cluster with the Redis streams adapter"; the same test as
/// sdk-native/tests/cluster_e2e.rs. The client is on node A with node B as its fallback, in a
/// room, while C broadcasts ticks to the room; A ends mid-stream (`stop`: POST /control/shutdown,
/// socket.io closes and stores the session in Redis; otherwise POST /control/crash, the process
/// SIGKILLs itself), with B refusing Socket.IO for a moment so that the client surely spends
/// time on no node. Stopped: B restores the session and every tick arrives once, in order.
/// Crashed: a new session, the room joined again, the ticks broadcast while the client was on no
/// node lost, the others once and in order.
async fn moves_from_a_to_b(nodes: [Option<&'static str>; 2], transport: &str, room: &'static str, stop: bool) {
    let (Some(a), Some(b), Some(c)) = (server(nodes[0]), server(nodes[1]), server(CLUSTER_C)) else { return };
    let options = js(&format!(
        r#"{{"transports":["{transport}"],"fallbackUrls":["{b}"],"reconnectionDelay":100,"reconnectionDelayMax":500}}"#
    ));
    let h = Harness::connect(a, &options).await;
    let sid_a = h.client.id().unwrap();
    JsFuture::from(h.client.join(room)).await.unwrap();
    let on_a = sockets_of(a).await;
    assert!(on_a.iter().any(|s| s.0 == sid_a && s.2.iter().any(|r| r == room)), "in the room on A: {on_a:?}");
    assert!(sockets_of(b).await.is_empty(), "nobody on B yet");

    let ticks = |h: &Harness| -> Vec<u32> {
        let log = h.log.borrow();
        log.events.iter().filter(|e| e.0 == "tick").map(|e| get(&e.1.get(0), "data").as_f64().unwrap() as u32).collect()
    };
    let ticker = Ticker::start(c, room);
    h.wait("20 ticks through Redis", 10_000, |h| h.count("tick") >= 20).await;

    control(b, "POST", "/control/refuse-socketio?on=1", "").await;
    let errors_before = h.log.borrow().errors.len();
    let end = control(a, "POST", if stop { "/control/shutdown" } else { "/control/crash" }, "").await;
    assert_eq!(get(&end, "ok"), JsValue::TRUE, "{}", json(&end));
    h.wait("A gone", 10_000, |h| !h.client.connected()).await;
    let dead = ticker.sent.get();
    h.wait("failed attempts", 10_000, |h| h.log.borrow().errors.len() >= errors_before + 3).await;
    let away = ticker.sent.get();
    assert!(away > dead, "ticks were broadcast while the client was on no node");
    control(b, "POST", "/control/refuse-socketio?on=0", "").await;

    h.wait("connected to B", 15_000, |h| h.client.connected()).await;
    let recovered = h.client.recovered();
    let sid = h.client.id().unwrap();
    let mut on_b = sockets_of(b).await;
    for _ in 0..100 {
        if on_b.iter().any(|s| s.2.iter().any(|r| r == room)) {
            break;
        }
        sleep(50).await;
        on_b = sockets_of(b).await;
    }
    assert_eq!(on_b.len(), 1, "the client is on B: {on_b:?}");
    assert_eq!(on_b[0].0, sid);
    assert!(on_b[0].2.iter().any(|r| r == room), "in the room on B: {on_b:?}");
    let rejoined_at = ticker.sent.get();

    let more = rejoined_at + 30;
    while ticker.sent.get() < more {
        sleep(20).await;
    }
    let total = ticker.stop().await;
    h.wait("the last tick", 10_000, |h| ticks(h).last() == Some(&(total - 1))).await;
    sleep(300).await;
    let got = ticks(&h);
    let missed: Vec<u32> = (dead..away).collect();
    if stop {
        assert!(recovered, "B restored the session A stored in Redis");
        assert_eq!(sid, sid_a, "the same socket");
        assert!(on_b[0].1, "B reports the socket recovered");
        assert!(missed.iter().all(|t| got.contains(t)), "{dead}..{away} replayed: {got:?}");
        assert_eq!(got, (0..total).collect::<Vec<_>>(), "every tick exactly once and in order");
    } else {
        assert!(!recovered, "a crashed node stored no session: B starts a new one");
        assert_ne!(sid, sid_a);
        assert!(!on_b[0].1);
        assert!(got.windows(2).all(|w| w[0] < w[1]), "once each and in order: {got:?}");
        let prefix = got.iter().zip(0..).take_while(|(t, i)| *t == i).count() as u32;
        assert!(prefix >= 20, "the ticks before the crash: {got:?}");
        assert!(!got.iter().any(|t| missed.contains(t)), "{dead}..{away} lost: {got:?}");
        let after: Vec<u32> = got.iter().copied().filter(|t| *t >= rejoined_at).collect();
        assert_eq!(after, (rejoined_at..total).collect::<Vec<_>>(), "every tick after the join on B");
    }
}

#[wasm_bindgen_test]
async fn cluster_a_stopped_node_s_session_is_recovered_on_the_other_node_over_websocket() {
    moves_from_a_to_b(CLUSTER_STOP_WS, "websocket", "cluster:stop-ws", true).await;
}

#[wasm_bindgen_test]
async fn cluster_a_stopped_node_s_session_is_recovered_on_the_other_node_over_long_polling() {
    moves_from_a_to_b(CLUSTER_STOP_POLLING, "polling", "cluster:stop-polling", true).await;
}

#[wasm_bindgen_test]
async fn cluster_a_crashed_node_s_session_is_not_recovered_and_the_client_rejoins() {
    moves_from_a_to_b(CLUSTER_CRASH_WS, "websocket", "cluster:crash-ws", false).await;
}

// ---------------------------------------------------------------- real network faults
//
// docs/RELIABILITY.md, "Fault injection on real sockets": the browser's side of
// sdk-native/tests/faults_e2e.rs. One proxy and one server for every fault test: wasm-bindgen-test
// runs a page's tests one after the other, and each test restores the proxy first (pass, no cut,
// counters at zero) and uses event names and keys of its own.

/// The fault proxy and the server behind it.
#[derive(Clone, Copy)]
struct Faults {
    server: &'static str,
    proxy: &'static str,
    control: &'static str,
}

impl Faults {
    async fn new() -> Option<Self> {
        Self::of(FAULT_SERVER, FAULT_PROXY, FAULT_CONTROL).await
    }

    /// The proxy on `control` in front of `server`, restored.
    async fn of(
        server_url: Option<&'static str>,
        proxy_url: Option<&'static str>,
        control_url: Option<&'static str>,
    ) -> Option<Self> {
        let (Some(server), Some(proxy), Some(control)) = (server(server_url), server(proxy_url), server(control_url))
        else {
            return None;
        };
        let f = Faults { server, proxy, control };
        f.set("/restore").await;
        Some(f)
    }

    /// Switches the proxy (`/mode?set=blackhole`, `/reset`, `/cut-upgrades?on=1`, ...).
    async fn set(&self, path: &str) -> JsValue {
        let state = control(self.control, "POST", path, "").await;
        assert!(get(&state, "error").is_undefined(), "{path}: {}", json(&state));
        state
    }

    /// One of the proxy's counters (`accepted`, `upgradesCut`, `resets`).
    async fn counter(&self, name: &str) -> f64 {
        get(&control(self.control, "GET", "/state", "").await, name).as_f64().unwrap()
    }

    /// The server broadcasts `event` with each number of `range`, one after the other (stored for
    /// recovery: each carries an offset).
    async fn ticks(&self, event: &str, range: std::ops::Range<u32>) {
        for i in range {
            let r = control(self.server, "POST", &format!("/control/emit?event={event}"), &format!("[{i}]")).await;
            assert_eq!(get(&r, "ok"), JsValue::TRUE, "{}", json(&r));
        }
    }

    /// Options for a client of the proxy: `transports`, a short backoff, and a 500 ms connect
    /// timeout (an attempt made into the blackhole gives up soon and tries again), plus `extra`.
    fn options(transports: &str, extra: &str) -> JsValue {
        js(&format!(
            r#"{{"transports":{transports},"reconnectionDelay":100,"reconnectionDelayMax":500,"timeout":500{extra}}}"#
        ))
    }
}

impl Harness {
    /// The numbers the `event`s carried, in the order they came.
    fn ticks(&self, event: &str) -> Vec<u32> {
        let log = self.log.borrow();
        log.events.iter().filter(|e| e.0 == event).map(|e| e.1.get(0).as_f64().unwrap() as u32).collect()
    }

    /// Waits for `n` `event`s, then a moment for a duplicate; checks they are `0..n`, in order.
    async fn expect_ticks(&self, event: &str, n: u32) {
        self.wait(&format!("{n} {event}"), 10_000, |h| h.count(event) >= n as usize).await;
        sleep(300).await;
        assert_eq!(self.ticks(event), (0..n).collect::<Vec<_>>(), "every {event} exactly once, in order");
    }

    /// The statuses reported from the `from`th state on.
    fn statuses(&self, from: usize) -> Vec<String> {
        self.log.borrow().states[from..].iter().map(|s| get(s, "status").as_string().unwrap()).collect()
    }

    /// Waits for the first state reported after the `from`th that is not `connected`; returns it
    /// and how long after `since` (`Date.now()`) it came.
    async fn dropped_after(&self, from: usize, since: f64) -> (JsValue, f64) {
        self.wait("the disconnect", 10_000, |h| h.statuses(from).iter().any(|s| s != "connected")).await;
        let log = self.log.borrow();
        let i = (from..log.states.len()).find(|i| get(&log.states[*i], "status") != "connected").unwrap();
        (log.states[i].clone(), log.state_at[i] - since)
    }
}

/// The heartbeat window: pingInterval + pingTimeout (1 s), plus slack for the timers and the
/// page; the same bound as the native test.
const DETECTED_WITHIN_MS: f64 = 2_500.0;

/// (a) and (d): the network goes silent both ways (nothing forwarded or read, no RST) while the
/// server broadcasts and the client emits with acks. The client notices by the heartbeat within
/// its window and keeps trying (attempts into the blackhole time out); once the network is back,
/// its session is recovered, every event arrives exactly once and in order, and every emit made
/// during the blackhole, on the silent connection before the drop was noticed or while
/// reconnecting after, reaches the server exactly once and in order. The emits use `retries`
/// (at-least-once, one in flight, tried again on the next connection): without it an emit
/// already handed to the silent connection fails with `Disconnected` (docs/RELIABILITY.md). The
/// server's `count-acks` answers each with how many it has counted for the key, so 1, 2, 3, ...
/// proves once each, in order.
async fn a_blackhole_both_ways(transport: &str) {
    let Some(f) = Faults::new().await else { return };
    let event = format!("bh-{transport}");
    let key = format!(r#"[{{"key":"bh-{transport}"}}]"#);
    let options = Faults::options(&format!(r#"["{transport}"]"#), r#","retries":3,"ackTimeout":3000"#);
    let h = Harness::connect(f.proxy, &options).await;
    assert_eq!(get(&h.client.state(), "transport"), transport);
    let sid = h.client.id().unwrap();
    let emit = |h: &Harness| -> JsFuture {
        let ack = h.client.emit("count-acks", &js(&key).unchecked_into(), js(r#"{"ack":true}"#)).unwrap();
        JsFuture::from(ack.unchecked_into::<Promise>())
    };
    f.ticks(&event, 0..5).await;
    h.wait("5 ticks", 5_000, |h| h.count(&event) == 5).await;

    let from = h.log.borrow().states.len();
    f.set("/mode?set=blackhole").await;
    let cut = js_sys::Date::now();
    let mut acks: Vec<JsFuture> = (0..3).map(|_| emit(&h)).collect();
    f.ticks(&event, 5..10).await;
    let (state, detected) = h.dropped_after(from, cut).await;
    assert_eq!(json(&state), r#"{"status":"disconnected","reason":"ping timeout"}"#, "{transport}");
    assert!(detected < DETECTED_WITHIN_MS, "{transport}: noticed {detected} ms after the cut");
    acks.extend((0..3).map(|_| emit(&h)));
    f.ticks(&event, 10..12).await;
    // Attempts go into the blackhole and time out meanwhile.
    h.wait("an attempt timed out", 5_000, |h| !h.log.borrow().errors.is_empty()).await;
    f.set("/mode?set=pass").await;
    h.connected().await;
    assert!(h.client.recovered(), "{transport}: the session is recovered");
    assert_eq!(h.client.id().unwrap(), sid);
    f.ticks(&event, 12..15).await;
    for (i, ack) in acks.into_iter().enumerate() {
        let got = ack.await.unwrap_or_else(|e| panic!("{transport}: emit {i} failed: {}", json(&e)));
        assert_eq!(json(&got), format!("[{}]", i + 1), "{transport}: emit {i} counted once, in order");
    }
    h.expect_ticks(&event, 15).await;
    // No copy of an emit arrives late either.
    assert_eq!(json(&emit(&h).await.unwrap()), "[7]", "{transport}: no emit counted twice");
    console_log!("fault: blackhole over {transport}: the drop noticed {detected} ms after the cut");
}

#[wasm_bindgen_test]
async fn fault_a_blackhole_over_websocket_is_noticed_in_time_and_loses_and_repeats_nothing_either_way() {
    a_blackhole_both_ways("websocket").await;
}

#[wasm_bindgen_test]
async fn fault_a_blackhole_over_long_polling_is_noticed_in_time_and_loses_and_repeats_nothing_either_way() {
    a_blackhole_both_ways("polling").await;
}

/// (b) Every connection reset (RST) mid-stream, three times, over WebSocket: each time the
/// client reconnects and its session is recovered; every event exactly once, in order.
#[wasm_bindgen_test]
async fn fault_connections_reset_mid_stream_over_websocket_lose_and_repeat_nothing() {
    let Some(f) = Faults::new().await else { return };
    let event = "rst";
    let h = Harness::connect(f.proxy, &Faults::options(r#"["websocket"]"#, "")).await;
    let sid = h.client.id().unwrap();
    let connected = |h: &Harness| h.statuses(0).iter().filter(|s| *s == "connected").count();
    let mut next = 0;
    for round in 1..=3 {
        f.ticks(event, next..next + 10).await;
        next += 10;
        let before = connected(&h);
        f.set("/reset").await;
        f.ticks(event, next..next + 3).await;
        next += 3;
        h.wait(&format!("reconnected after reset {round}"), 10_000, |h| connected(h) > before).await;
        assert!(h.client.recovered(), "reset {round}: the session is recovered");
        assert_eq!(h.client.id().unwrap(), sid);
    }
    h.expect_ticks(event, next).await;
    assert!(f.counter("accepted").await >= 4.0, "one connection per reset");
    assert!(f.counter("resets").await >= 3.0);
}

/// Every connection reset mid-stream over long-polling, five times. The browser hides most resets:
/// a request cut on a reused keep-alive connection before any answer came is sent again by the
/// browser's HTTP stack on a new connection, unseen by the page. When a GET's answer was cut after
/// the server wrote it, the server takes the resent GET for the next poll and the events in the
/// lost answer are gone without a trace (Engine.IO's long-polling has no sequence numbers; the
/// same holds for socket.io-client): docs/RELIABILITY.md. What must hold: nothing repeated,
/// nothing out of order, every reconnection (a reset the browser did not hide) recovered, and the
/// session keeps working.
#[wasm_bindgen_test]
async fn fault_connections_reset_over_long_polling_repeat_and_reorder_nothing_and_every_reconnection_recovers() {
    let Some(f) = Faults::new().await else { return };
    let event = "rst-polling";
    let h = Harness::connect(f.proxy, &Faults::options(r#"["polling"]"#, "")).await;
    let mut next = 0;
    for _ in 0..5 {
        f.ticks(event, next..next + 4).await;
        next += 4;
        f.set("/reset").await;
        sleep(200).await;
    }
    h.connected().await;
    f.ticks(event, next..next + 4).await;
    next += 4;
    h.wait("the last tick", 10_000, |h| h.ticks(event).last() == Some(&(next - 1))).await;
    sleep(300).await;
    let got = h.ticks(event);
    assert!(got.windows(2).all(|w| w[0] < w[1]), "nothing repeated or reordered: {got:?}");
    let connected: Vec<String> = {
        let log = h.log.borrow();
        log.states.iter().filter(|s| get(s, "status") == "connected").map(|s| json(&get(s, "recovered"))).collect()
    };
    assert!(connected[1..].iter().all(|r| r == "true"), "every reconnection recovered: {connected:?}");
    let back = h.emit_ack("echo", &Array::of1(&"still here".into())).await;
    assert_eq!(json(&back), r#"["still here"]"#);
    let lost: Vec<u32> = (0..next).filter(|i| !got.contains(i)).collect();
    console_log!("fault: 5 resets over long-polling: {} reconnections, lost {lost:?}", connected.len() - 1);
}

/// (c) Long-polling first, with every WebSocket handshake reset by the proxy: the session stays
/// on long-polling and loses nothing while its probes are cut; once they get through, the next
/// one upgrades it (same session, no disconnect); every event exactly once, in order.
#[wasm_bindgen_test]
async fn fault_cut_upgrades_leave_the_session_on_polling_until_a_probe_gets_through() {
    let Some(f) = Faults::new().await else { return };
    let event = "cut";
    f.set("/cut-upgrades?on=1").await;
    let h =
        Harness::connect(f.proxy, &Faults::options(r#"["polling","websocket"]"#, r#","reprobeInterval":300"#)).await;
    assert_eq!(get(&h.client.state(), "transport"), "polling");
    let sid = h.client.id().unwrap();
    f.ticks(event, 0..5).await;
    // Several probes are cut meanwhile.
    sleep(700).await;
    f.ticks(event, 5..10).await;
    h.wait("10 ticks", 5_000, |h| h.count(event) == 10).await;
    assert_eq!(get(&h.client.state(), "transport"), "polling", "still on polling");
    let cut = f.counter("upgradesCut").await;
    assert!(cut >= 2.0, "probes were cut: {cut}");
    f.set("/cut-upgrades?on=0").await;
    h.wait("upgraded to websocket", 5_000, |h| get(&h.client.state(), "transport") == "websocket").await;
    assert_eq!(h.client.id().unwrap(), sid, "an upgrade, not a new session");
    f.ticks(event, 10..15).await;
    h.expect_ticks(event, 15).await;
    let statuses = h.statuses(0);
    let first = statuses.iter().position(|s| s == "connected").unwrap();
    assert!(statuses[first..].iter().all(|s| s == "connected"), "no disconnect: {statuses:?}");
    console_log!("fault: {cut} upgrade probes cut in 0.7 s (reprobeInterval 300 ms)");
}

/// Latency (40 ms each way) over both transports: events in order, an ack's round trip crosses
/// the delay twice.
#[wasm_bindgen_test]
async fn fault_latency_keeps_order_and_delays_acks_accordingly() {
    let Some(f) = Faults::new().await else { return };
    for transport in ["websocket", "polling"] {
        let event = format!("lat-{transport}");
        let h = Harness::connect(f.proxy, &Faults::options(&format!(r#"["{transport}"]"#), "")).await;
        f.set("/mode?set=latency&ms=40").await;
        f.ticks(&event, 0..10).await;
        let t = js_sys::Date::now();
        let back = h.emit_ack("echo", &Array::of1(&"x".into())).await;
        let took = js_sys::Date::now() - t;
        assert_eq!(json(&back), r#"["x"]"#);
        assert!(took >= 80.0, "{transport}: the ack crossed the delay twice: {took} ms");
        h.expect_ticks(&event, 10).await;
        f.set("/mode?set=pass").await;
    }
}

// ---------------------------------------------------------------- the reference server + its feed
//
// docs/RELIABILITY.md, "Catching up from the feed": the browser's side of
// examples/server/tests/faults_e2e.rs. socketioxide restores no session, so every reconnect is
// `recovered: false`; the core reads what the client missed from the REST feed (through the
// proxy too) before it lets the new socket's events through. One server and one proxy for these
// tests, restored before each; every test's events carry its name.

/// The reference server behind its proxy, and the relay its events are published through.
#[derive(Clone, Copy)]
struct Reference {
    faults: Faults,
    emit: &'static str,
}

impl Reference {
    async fn new() -> Option<Self> {
        let emit = server(REFERENCE_EMIT)?;
        let faults = Faults::of(REFERENCE_SERVER, REFERENCE_PROXY, REFERENCE_CONTROL).await?;
        Some(Reference { faults, emit })
    }

    /// A token for a demo user from the server's dev login (straight to the server: CORS).
    async fn login(&self, user: &str) -> String {
        let r = control(self.faults.server, "POST", "/api/dev/login", &format!(r#"{{"userId":"{user}"}}"#)).await;
        get(&r, "token").as_string().unwrap_or_else(|| panic!("dev login: {}", json(&r)))
    }

    /// Publishes `task.created` `{test, i}` to `tenant:acme`, straight to the server (`POST
    /// /internal/emit`, through the relay).
    async fn publish(self, test: &str, i: u32) {
        let body =
            format!(r#"{{"to":{{"room":"tenant:acme"}},"event":"task.created","data":{{"test":"{test}","i":{i}}}}}"#);
        let r = control(self.emit, "POST", "/emit", &body).await;
        assert!(get(&r, "id").as_string().is_some_and(|id| id.starts_with("evt_")), "{}", json(&r));
    }

    /// Publishes each of `range`, one after the other.
    async fn publish_all(self, test: &str, range: std::ops::Range<u32>) {
        for i in range {
            self.publish(test, i).await;
        }
    }

    /// Publishes `first`, `first + 1`, ... in the background, every 10 ms, until stopped.
    fn ticker(self, test: &'static str, first: u32) -> Ticker {
        Ticker::spawn(first, move |i| self.publish(test, i))
    }

    /// Alice of acme connected through the proxy on `transports`, the feed through the proxy
    /// too. The feed only catches up: its polling (a fallback while the socket is down) starts
    /// after a minute, so nothing else reads it meanwhile.
    async fn alice(&self, transports: &str) -> Harness {
        let token = self.login("alice").await;
        let feed = format!(
            r#","auth":{{"token":"{token}"}},"feed":{{"url":"{}/api/polling/acme","after":60000}}"#,
            self.faults.proxy
        );
        Harness::connect(self.faults.proxy, &Faults::options(transports, &feed)).await
    }
}

/// A `task.created` envelope of a reference test, as delivered: `(i, envelope id, source)`.
type Delivered = (u32, String, String);

impl Harness {
    /// The `task.created` envelopes of `test` among `events[range]`, in the order they came.
    fn envelopes_in(&self, test: &str, range: std::ops::Range<usize>) -> Vec<Delivered> {
        let log = self.log.borrow();
        let mine = |e: &&(String, Array, JsValue, JsValue, JsValue)| {
            e.0 == "task.created" && get(&get(&e.1.get(0), "data"), "test") == test
        };
        log.events[range]
            .iter()
            .filter(mine)
            .map(|e| {
                let envelope = e.1.get(0);
                let i = get(&get(&envelope, "data"), "i").as_f64().unwrap() as u32;
                (i, get(&envelope, "id").as_string().unwrap(), e.4.as_string().unwrap())
            })
            .collect()
    }

    /// The `task.created` envelopes of `test`, in the order they came.
    fn envelopes(&self, test: &str) -> Vec<Delivered> {
        let n = self.log.borrow().events.len();
        self.envelopes_in(test, 0..n)
    }

    /// Waits for `n` envelopes of `test`, then a moment for a duplicate; checks they are `0..n`
    /// in order, each envelope id once. Returns them.
    async fn expect_envelopes(&self, test: &str, n: u32) -> Vec<Delivered> {
        self.wait(&format!("{n} {test} events"), 10_000, |h| h.envelopes(test).len() >= n as usize).await;
        sleep(300).await;
        let got = self.envelopes(test);
        let order: Vec<u32> = got.iter().map(|e| e.0).collect();
        assert_eq!(order, (0..n).collect::<Vec<_>>(), "{test}: every event exactly once, in order");
        let mut ids: Vec<&String> = got.iter().map(|e| &e.1).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), got.len(), "{test}: no envelope id twice");
        got
    }

    /// The envelopes of `test` delivered during the catch-up reported from the `from`th feed
    /// status on (between `catching-up` and `caught-up`), and those delivered right after it,
    /// in the same drain of the client (the socket's events that waited for it): `(during,
    /// released)`.
    fn catch_up(&self, from: usize, test: &str) -> (Vec<Delivered>, Vec<Delivered>) {
        let statuses = self.feed_statuses(from);
        let start = statuses.iter().position(|s| s == "catching-up").expect("a catch-up") + from;
        let end = statuses.iter().position(|s| s == "caught-up").expect("caught up") + from;
        let (a, b, c) = {
            let log = self.log.borrow();
            (log.feed_at[start].0, log.feed_at[end].0, log.feed_at[end].1.expect("the drain is over"))
        };
        (self.envelopes_in(test, a..b), self.envelopes_in(test, b..c))
    }

    /// The feed statuses reported from the `from`th on.
    fn feed_statuses(&self, from: usize) -> Vec<String> {
        self.log.borrow().feed[from..].iter().map(|s| get(s, "status").as_string().unwrap()).collect()
    }
}

/// A blackhole (nothing forwarded or read, no RST) during a stream of events, lifted once the
/// client noticed the drop (by the heartbeat, within its window; into a slow network for a
/// moment), while events go on being published. socketioxide restores no session: the client
/// reconnects with `recovered: false`, a new socket id, and reads the events it missed from the
/// feed (`catching-up` → `caught-up`) while the new socket's events wait, then those: every
/// event exactly once, in order.
async fn reference_blackhole(transport: &str, test: &'static str) {
    let Some(r) = Reference::new().await else { return };
    let f = &r.faults;
    let h = r.alice(&format!(r#"["{transport}"]"#)).await;
    assert_eq!(get(&h.client.state(), "transport"), transport);
    let sid = h.client.id().unwrap();
    r.publish_all(test, 0..5).await;
    h.wait("5 events", 5_000, |h| h.envelopes(test).len() == 5).await;

    let (from, feed_from) = (h.log.borrow().states.len(), h.log.borrow().feed.len());
    f.set("/mode?set=blackhole").await;
    let cut = js_sys::Date::now();
    r.publish_all(test, 5..10).await;
    let (state, detected) = h.dropped_after(from, cut).await;
    assert_eq!(json(&state), r#"{"status":"disconnected","reason":"ping timeout"}"#, "{transport}");
    assert!(detected < DETECTED_WITHIN_MS, "{transport}: noticed {detected} ms after the cut");
    // Events go on while the client reconnects and catches up: those before its new socket
    // joined come from the feed; those the new socket gets during the catch-up wait for it. The
    // network comes back slow (50 ms each way), so the catch-up (a CORS preflight and a GET:
    // two round trips) overlaps the new socket's first events.
    let ticker = r.ticker(test, 10);
    f.set("/mode?set=latency&ms=50").await;
    h.wait("the catch-up", 10_000, |h| h.feed_statuses(feed_from).iter().any(|s| s == "caught-up")).await;
    f.set("/mode?set=pass").await;
    let caught_up = js_sys::Date::now() - cut;
    assert!(h.client.connected());
    assert!(!h.client.recovered(), "{transport}: socketioxide restores no session");
    assert_ne!(h.client.id().unwrap(), sid, "{transport}: a new socket");
    assert_eq!(h.feed_statuses(feed_from), ["catching-up", "caught-up"], "{transport}");
    let (during, released) = h.catch_up(feed_from, test);
    assert!(
        during.iter().all(|e| e.2 == "feed"),
        "{transport}: only the feed's events during the catch-up: {during:?}"
    );
    assert!(released.iter().all(|e| e.2 == "socket"), "{transport}: {released:?}");
    let live_from = ticker.sent.get() + 5;
    while ticker.sent.get() < live_from {
        sleep(10).await;
    }
    let total = ticker.stop().await;
    let got = h.expect_envelopes(test, total).await;
    let sources: Vec<&str> = got.iter().map(|e| e.2.as_str()).collect();
    assert!(sources[..5].iter().all(|s| *s == "socket"), "{transport}: {sources:?}");
    assert!(sources[5..10].iter().all(|s| *s == "feed"), "{transport}: missed, then read from the feed: {sources:?}");
    assert!(sources[live_from as usize..].iter().all(|s| *s == "socket"), "{transport}: live again: {sources:?}");
    let from_feed = sources.iter().filter(|s| **s == "feed").count();
    console_log!(
        "fault: reference blackhole over {transport}: the drop noticed {detected} ms after the cut, caught up {caught_up} ms after it; {from_feed} of {total} events from the feed, {} of the new socket's released after it",
        released.len()
    );
}

#[wasm_bindgen_test]
async fn fault_reference_a_blackhole_over_websocket_is_caught_up_from_the_feed_once_in_order() {
    reference_blackhole("websocket", "ref-bh-websocket").await;
}

#[wasm_bindgen_test]
async fn fault_reference_a_blackhole_over_long_polling_is_caught_up_from_the_feed_once_in_order() {
    reference_blackhole("polling", "ref-bh-polling").await;
}

/// Every connection reset (RST) mid-stream, three times, over WebSocket, while events are
/// published every 10 ms (some in flight at each reset, some while the client is away): each
/// time a new socket (`recovered: false`) and a catch-up from the feed; every event exactly once,
/// in order.
#[wasm_bindgen_test]
async fn fault_reference_resets_mid_stream_over_websocket_are_caught_up_from_the_feed_once_in_order() {
    let Some(r) = Reference::new().await else { return };
    let f = &r.faults;
    let test = "ref-rst";
    let h = r.alice(r#"["websocket"]"#).await;
    let ticker = r.ticker(test, 0);
    let mut released_after = 0;
    for round in 1..=3 {
        // A few events first (one at least: a client that delivered none has nothing to resume
        // from, it starts from now).
        let seen = h.envelopes(test).len();
        h.wait(&format!("events before reset {round}"), 5_000, |h| h.envelopes(test).len() >= seen + 5).await;
        let feed_from = h.log.borrow().feed.len();
        let sid = h.client.id().unwrap();
        f.set("/reset").await;
        h.wait(&format!("the catch-up after reset {round}"), 10_000, |h| {
            h.feed_statuses(feed_from).iter().any(|s| s == "caught-up")
        })
        .await;
        assert_eq!(h.feed_statuses(feed_from), ["catching-up", "caught-up"], "reset {round}");
        let (during, released) = h.catch_up(feed_from, test);
        assert!(during.iter().all(|e| e.2 == "feed"), "reset {round}: only the feed's during the catch-up: {during:?}");
        assert!(released.iter().all(|e| e.2 == "socket"), "reset {round}: {released:?}");
        released_after += released.len();
        assert!(!h.client.recovered(), "reset {round}: socketioxide restores no session");
        assert_ne!(h.client.id().unwrap(), sid, "reset {round}: a new socket");
    }
    let seen = h.envelopes(test).len();
    h.wait("events after the last reset", 5_000, |h| h.envelopes(test).len() >= seen + 5).await;
    let total = ticker.stop().await;
    let got = h.expect_envelopes(test, total).await;
    let from_feed = got.iter().filter(|e| e.2 == "feed").count();
    assert!(f.counter("accepted").await >= 4.0, "one connection per reset");
    assert!(f.counter("resets").await >= 3.0);
    console_log!(
        "fault: 3 resets against the reference server: {from_feed} of {total} events read from the feed, {released_after} of the new sockets' released after the catch-ups"
    );
}
