//! `WasmClient`: the low-level class JavaScript sees. `npm/src/index.ts` wraps it in a
//! socket.io-client-like `Socket`; nothing here is meant to be used directly by applications.

use std::rc::Rc;
use std::time::Duration;

use js_sys::{Array, Function, Promise, Reflect};
use tidings_core::{AckRequest, AuthMode, Client as Core, ConnectionState, EmitError, EmitRefused, EmitRequest};
use wasm_bindgen::prelude::*;

use crate::convert::{self, error};
use crate::driver::{Pending, Shared};
use crate::options;

/// One Socket.IO namespace driven in the browser: the URL's, or another one opened with `of()`
/// over the same connection (socket.io-client's multiplexing).
///
/// Callbacks: `onEvent(name, args, offset, source, ackId)`, `onState(state)`,
/// `onConnectError(error)`, `onFeed(status)`. `args` are every argument as sent; with connection
/// state recovery on, `offset` is the last of them when it may be the recovery offset (also the
/// last argument, as socket.io-client hands it to its listeners). `ackId` is a number when the
/// server asked for an acknowledgement: answer with `ack(ackId, args)`. An event counts as
/// received once `onEvent` has returned (or thrown: the exception is reported, and the events
/// after it are still delivered).
#[wasm_bindgen]
pub struct WasmClient {
    shared: Rc<Shared>,
    nsp: String,
}

fn opt_bool(opts: &JsValue, key: &str) -> bool {
    opts.is_object() && Reflect::get(opts, &JsValue::from_str(key)).ok().and_then(|v| v.as_bool()).unwrap_or(false)
}

#[wasm_bindgen]
impl WasmClient {
    /// A client for `url` (its path names the namespace) with `options` (`TidingsOptions`).
    /// Throws an `Error` for an invalid URL or option. Does not connect: call `connect()`.
    #[wasm_bindgen(constructor)]
    pub fn new(url: &str, options: JsValue) -> Result<WasmClient, JsValue> {
        let parsed = options::parse(url, &options).map_err(|e| error(format!("tidings: {e}")))?;
        let core = Core::new(parsed.config).map_err(|e| error(format!("tidings: {e}")))?;
        let nsp = core.main_namespace().to_string();
        Ok(WasmClient { shared: Shared::new(core, parsed.auth_provider), nsp })
    }

    /// Opens `namespace` over this client's connection, with `options.auth` (an object, or a
    /// function called before every attempt). Connects it at once (and the connection if needed).
    /// Throws for an invalid namespace or auth, or when the namespace already has an open handle.
    pub fn of(&self, namespace: &str, options: JsValue) -> Result<WasmClient, JsValue> {
        let (auth, provider) = options::namespace_auth(&options).map_err(|e| error(format!("tidings: {e}")))?;
        // `admin` and `/admin` name the same namespace, as in the native client.
        let nsp = tidings_core::url::namespace_path(namespace);
        self.shared.run(|i, now| {
            if i.handles.contains(&nsp) {
                return Err(error(format!("tidings: namespace {nsp} is already open on this connection")));
            }
            i.core.open_namespace(now, &nsp, auth).map_err(|e| error(format!("tidings: {e}")))?;
            match provider {
                Some(f) => i.auth.insert(nsp.clone(), f),
                None => drop(i.auth.remove(&nsp)),
            }
            i.handles.push(nsp.clone());
            Ok(())
        })??;
        Ok(WasmClient { shared: self.shared.clone(), nsp })
    }

    /// The namespace of this handle.
    #[wasm_bindgen(getter)]
    pub fn namespace(&self) -> String {
        self.nsp.clone()
    }

    /// Connects this namespace (and the connection if needed), or reconnects after a disconnect.
    pub fn connect(&self) -> Result<(), JsValue> {
        let nsp = &self.nsp;
        self.shared.run(|i, now| {
            if *nsp == i.core.main_namespace() {
                i.core.connect(now);
                Ok(())
            } else {
                let mode = i.core.namespace_auth(nsp).cloned().unwrap_or(AuthMode::None);
                i.core.open_namespace(now, nsp, mode).map_err(|e| error(e.to_string()))
            }
        })?
    }

    /// Disconnects this namespace ("io client disconnect"); the connection closes with the last
    /// namespace. `connect()` may follow.
    pub fn disconnect(&self) -> Result<(), JsValue> {
        let nsp = &self.nsp;
        // The core's rule, as in the native client: this namespace; the engine closes when none
        // is left.
        self.shared.run(|i, now| {
            let _ = i.core.disconnect_namespace(now, nsp);
        })
    }

    /// Disconnects this namespace and forgets its callbacks. The last handle to close also
    /// releases every socket, request, timer and listener, and rejects what is still pending.
    /// Call `free()` afterwards to release the wasm memory.
    pub fn close(&self) {
        let nsp = &self.nsp;
        let last = self
            .shared
            .run(|i, now| {
                i.handles.retain(|n| n != nsp);
                let last = i.handles.is_empty();
                if !last {
                    let _ = i.core.disconnect_namespace(now, nsp);
                    i.auth.remove(nsp);
                }
                last
            })
            .unwrap_or(false);
        if last {
            self.shared.close();
        } else if let Ok(mut c) = self.shared.callbacks.try_borrow_mut() {
            c.remove(nsp);
        }
    }

    /// Emits `event` with `args` (an array; `ArrayBuffer`s and typed arrays are sent as binary).
    ///
    /// `opts`: `{ack, timeout, volatile, idempotent}`. With `ack` (or `timeout`, in ms) returns a
    /// promise of the ack's arguments (an array); otherwise `undefined`. Throws for an invalid
    /// emit without ack; rejects the promise for one with ack.
    pub fn emit(&self, event: &str, args: &Array, opts: JsValue) -> Result<JsValue, JsValue> {
        let timeout = if opts.is_object() {
            Reflect::get(&opts, &JsValue::from_str("timeout"))
                .ok()
                .and_then(|v| v.as_f64())
                .filter(|t| t.is_finite() && *t >= 0.0)
                .map(|t| Duration::from_millis(t as u64))
        } else {
            None
        };
        let ack = opt_bool(&opts, "ack") || timeout.is_some();
        let volatile = opt_bool(&opts, "volatile");
        let idempotent = opt_bool(&opts, "idempotent");
        let fail = |e: JsValue| if ack { Ok(Promise::reject(&e).into()) } else { Err(e) };
        let args = match convert::js_to_args(args) {
            Ok(a) => a,
            Err(e) => return fail(e),
        };
        let (promise, pending) = if ack { Pending::new() } else { (Promise::resolve(&JsValue::UNDEFINED), None) };
        let namespace = self.nsp.clone();
        let result = self.shared.run(|i, now| {
            let mut req = EmitRequest::new(event, args).namespace(namespace);
            req.ack = ack;
            req.timeout = timeout;
            req.volatile = volatile;
            if idempotent {
                req = req.new_idempotency_key();
            }
            let r = i.core.emit(now, req);
            if let (Ok(id), Some(p)) = (&r, pending) {
                i.acks.insert(*id, p);
            }
            r
        });
        match result {
            Err(e) => fail(e),
            Ok(Ok(_)) if ack => Ok(promise.into()),
            Ok(Ok(_)) => Ok(JsValue::UNDEFINED),
            // socket.io-client drops a volatile emit silently.
            Ok(Err(EmitRefused::Failed(EmitError::VolatileDropped))) if !ack => Ok(JsValue::UNDEFINED),
            Ok(Err(e)) => fail(convert::emit_error_to_js(&e)),
        }
    }

    /// Answers the server's ack request `ack_id` (from `onEvent`) with `args`.
    pub fn ack(&self, ack_id: f64, args: &Array) -> Result<(), JsValue> {
        let args = convert::js_to_args(args)?;
        let r = self.shared.run(|i, now| {
            let req = AckRequest { namespace: self.nsp.clone(), id: ack_id as u64 };
            i.core.ack(now, &req, args)
        })?;
        r.map_err(|e| error(e.to_string()))
    }

    /// Joins `room` (re-joined after every reconnect that did not recover); resolves with the
    /// server's ack arguments.
    pub fn join(&self, room: &str) -> Promise {
        self.room(room, true)
    }

    /// Leaves `room`.
    pub fn leave(&self, room: &str) -> Promise {
        self.room(room, false)
    }

    fn room(&self, room: &str, join: bool) -> Promise {
        let (promise, pending) = Pending::new();
        let result = self.shared.run(|i, now| {
            let nsp = &self.nsp;
            let r = if join { i.core.join(now, nsp, room) } else { i.core.leave(now, nsp, room) };
            if let (Ok(id), Some(p)) = (&r, pending) {
                i.rooms.insert(*id, p);
            }
            r
        });
        match result {
            Ok(Ok(_)) => promise,
            Ok(Err(e)) => Promise::reject(&error(e.to_string())),
            Err(e) => Promise::reject(&e),
        }
    }

    /// The connection state (`ConnectionState` in types.ts).
    #[wasm_bindgen(getter)]
    pub fn state(&self) -> JsValue {
        self.shared.read(|i| convert::state_to_js(i.state(&self.nsp).0)).unwrap_or(JsValue::UNDEFINED)
    }

    /// The socket id while connected.
    #[wasm_bindgen(getter)]
    pub fn id(&self) -> Option<String> {
        self.shared
            .read(|i| match i.state(&self.nsp).0 {
                ConnectionState::Connected { sid, .. } => Some(sid.clone()),
                _ => None,
            })
            .flatten()
    }

    /// Where the client stands: the position of the last event delivered (`Client::cursor`).
    #[wasm_bindgen(getter)]
    pub fn cursor(&self) -> Option<String> {
        self.shared.read(|i| i.core.cursor().map(str::to_string)).flatten()
    }

    /// Whether the namespace is connected.
    #[wasm_bindgen(getter)]
    pub fn connected(&self) -> bool {
        self.shared.read(|i| matches!(i.state(&self.nsp).0, ConnectionState::Connected { .. })).unwrap_or(false)
    }

    /// Whether the last connection restored the previous session.
    #[wasm_bindgen(getter)]
    pub fn recovered(&self) -> bool {
        self.shared.read(|i| i.state(&self.nsp).1).unwrap_or(false)
    }

    /// Rooms remembered (re-joined after a reconnect).
    #[wasm_bindgen(getter)]
    pub fn rooms(&self) -> Array {
        self.shared.read(|i| i.core.rooms(&self.nsp).iter().map(|r| JsValue::from_str(r)).collect()).unwrap_or_default()
    }

    /// `onEvent(name, args, offset, source, ackId)` for every server event (or `undefined`);
    /// `args` include the offset, last, when there is one.
    #[wasm_bindgen(js_name = onEvent)]
    pub fn on_event(&self, f: Option<Function>) {
        self.shared.set_callback(&self.nsp, |c| c.event = f);
    }

    /// `onState(state)` for every state change.
    #[wasm_bindgen(js_name = onState)]
    pub fn on_state(&self, f: Option<Function>) {
        self.shared.set_callback(&self.nsp, |c| c.state = f);
    }

    /// `onConnectError(error)` for every failed attempt.
    #[wasm_bindgen(js_name = onConnectError)]
    pub fn on_connect_error(&self, f: Option<Function>) {
        self.shared.set_callback(&self.nsp, |c| c.connect_error = f);
    }

    /// `onFeed(status)` for the REST feed fallback's changes.
    #[wasm_bindgen(js_name = onFeed)]
    pub fn on_feed(&self, f: Option<Function>) {
        self.shared.set_callback(&self.nsp, |c| c.feed = f);
    }
}
