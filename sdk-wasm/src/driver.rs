//! The driver: one owner of the core, IO in, IO and deliveries out.
//!
//! Every entry point (a command from JS, a WebSocket event, a fetch answer, the timer) runs as:
//! borrow the core, feed it, drain its outputs (performing IO at once and queueing whatever is
//! meant for the application), release the borrow, then deliver the queue. Application code
//! therefore never runs under a borrow, and a callback that calls back into the client (an emit
//! from an event handler) just queues more deliveries, which the outer loop delivers in order.
//! Once an event's callback has returned (or thrown), the loop tells the core
//! (`Client::delivered`, under a fresh borrow): only then is the event received, its offset the
//! recovery offset and its keys in the de-duplication window.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::{Rc, Weak};

use js_sys::{Function, Promise};
use tidings_core::{
    Args, AuthRequestId, Client as Core, ConnId, ConnectError, ConnectionState, EmitError, EmitId, Event, FeedStatus,
    Input, Instant, Output, RequestId, RoomRequestId,
};
use wasm_bindgen::JsValue;

use crate::clock::Clock;
use crate::convert::{self, report};
use crate::net::{Req, Timer, Ws};
use crate::page::PageListeners;
use crate::small_map::SmallMap;

/// A promise's settle functions.
pub(crate) struct Pending {
    pub(crate) resolve: Function,
    pub(crate) reject: Function,
}

impl Pending {
    /// A new promise and its settle functions.
    pub(crate) fn new() -> (Promise, Option<Pending>) {
        let mut slot = None;
        let promise = Promise::new(&mut |resolve, reject| slot = Some(Pending { resolve, reject }));
        (promise, slot)
    }
}

/// One namespace's callbacks (JS functions), set by `WasmClient::on*`.
#[derive(Default, Clone)]
pub(crate) struct Callbacks {
    pub(crate) event: Option<Function>,
    pub(crate) state: Option<Function>,
    pub(crate) connect_error: Option<Function>,
    pub(crate) feed: Option<Function>,
}

/// Something for the application, delivered after the core's borrow is released.
enum Delivery {
    Event(Event),
    State(String, ConnectionState),
    ConnectError(String, ConnectError),
    Feed(FeedStatus),
    Settle(Pending, Result<Args, EmitError>),
    Auth(AuthRequestId, Function),
}

/// Everything a client owns, reached through one `RefCell`.
pub(crate) struct Inner {
    pub(crate) core: Core,
    clock: Clock,
    /// What the IO resources' callbacks reach (`Shared::sink`).
    weak: Weak<Shared>,
    sockets: SmallMap<ConnId, Ws>,
    requests: SmallMap<RequestId, Req>,
    timer: Timer,
    /// The deadline the timer is armed for.
    armed: Option<Instant>,
    page: Option<PageListeners>,
    pub(crate) acks: SmallMap<EmitId, Pending>,
    /// Room requests waiting for their answer.
    pub(crate) rooms: SmallMap<RoomRequestId, Pending>,
    /// Auth providers by namespace.
    pub(crate) auth: SmallMap<String, Function>,
    /// Whether the last connection of each namespace was a recovery (socket.io-client's
    /// `recovered`, kept while disconnected).
    pub(crate) recovered: SmallMap<String, bool>,
    /// The namespaces with an open `WasmClient` handle; the last one to close closes the engine.
    pub(crate) handles: Vec<String>,
    pub(crate) closed: bool,
}

impl Inner {
    /// The core's state of `nsp`, and whether its last connection was a recovery.
    pub(crate) fn state(&self, nsp: &str) -> (&ConnectionState, bool) {
        let state = self.core.state(nsp).unwrap_or(&ConnectionState::NOT_CONNECTED);
        (state, self.recovered.get_ref(nsp).copied().unwrap_or(false))
    }
}

/// The client's shared state; JS callbacks hold a `Weak` to it.
pub(crate) struct Shared {
    inner: RefCell<Inner>,
    queue: RefCell<VecDeque<Delivery>>,
    delivering: Cell<bool>,
    /// Callbacks by namespace.
    pub(crate) callbacks: RefCell<SmallMap<String, Callbacks>>,
    /// The URL's namespace (the feed's events and status belong to it).
    pub(crate) main: String,
    names: RefCell<convert::Names>,
}

impl Shared {
    pub(crate) fn new(core: Core, auth: Option<Function>) -> Rc<Self> {
        let main = core.main_namespace().to_string();
        let mut providers = SmallMap::new();
        if let Some(f) = auth {
            providers.insert(main.clone(), f);
        }
        Rc::new_cyclic(|weak: &Weak<Shared>| {
            let w = weak.clone();
            Shared {
                inner: RefCell::new(Inner {
                    core,
                    clock: Clock::new(),
                    weak: weak.clone(),
                    sockets: SmallMap::new(),
                    requests: SmallMap::new(),
                    timer: Timer::new(move || Shared::io(&w, Input::Timeout)),
                    armed: None,
                    page: Some(PageListeners::install(Shared::sink(weak))),
                    acks: SmallMap::new(),
                    rooms: SmallMap::new(),
                    auth: providers,
                    recovered: SmallMap::new(),
                    handles: vec![main.clone()],
                    closed: false,
                }),
                queue: RefCell::new(VecDeque::new()),
                delivering: Cell::new(false),
                callbacks: RefCell::new(SmallMap::new()),
                main,
                names: RefCell::new(convert::Names::new()),
            }
        })
    }

    /// Runs `f` on the core with the current time, drains, then delivers. Fails (instead of
    /// panicking) on a re-entrant call or after `close()`.
    pub(crate) fn run<R>(self: &Rc<Self>, f: impl FnOnce(&mut Inner, Instant) -> R) -> Result<R, JsValue> {
        let r = {
            let Ok(mut inner) = self.inner.try_borrow_mut() else {
                return Err(convert::error("tidings: re-entrant call into the client"));
            };
            if inner.closed {
                return Err(convert::error("tidings: this client is closed; create a new one with connect()"));
            }
            let now = inner.clock.now();
            let r = f(&mut inner, now);
            let Ok(mut queue) = self.queue.try_borrow_mut() else {
                return Err(convert::error("tidings: re-entrant call into the client"));
            };
            inner.drain(&mut queue);
            r
        };
        self.deliver();
        Ok(r)
    }

    /// Reads the state without draining.
    pub(crate) fn read<R>(&self, f: impl FnOnce(&Inner) -> R) -> Option<R> {
        self.inner.try_borrow().ok().map(|i| f(&i))
    }

    /// The callback every IO resource reports to: `Shared::io` through a `Weak`, so a dropped
    /// client just stops hearing about them. One closure type, so each resource's code is
    /// generated once.
    fn sink(weak: &Weak<Shared>) -> impl Fn(Input) + Clone + 'static {
        let w = weak.clone();
        move |input| Shared::io(&w, input)
    }

    /// Feeds one input from an IO resource (a WebSocket, a fetch, the timer, a page listener),
    /// after the bookkeeping it calls for: a closed socket is dropped (which removes its
    /// handlers, so a `close` after an `error` is not reported twice; wasm-bindgen defers freeing
    /// the running one), a finished request is forgotten, a fired timer's handle is spent.
    fn io(weak: &Weak<Shared>, input: Input) {
        if let Some(s) = weak.upgrade() {
            let _ = s.run(|inner, now| {
                match &input {
                    Input::WsClosed { conn, .. } => {
                        inner.sockets.remove(conn);
                    }
                    Input::HttpResponse { id, .. } | Input::HttpFailed { id, .. } => {
                        if let Some(r) = inner.requests.remove(id) {
                            r.detach();
                        }
                    }
                    Input::Timeout => {
                        inner.timer.fired();
                        inner.armed = None;
                    }
                    _ => {}
                }
                inner.core.handle_input(now, input);
            });
        }
    }

    /// Answers an auth request once the provider's promise settled; what a failure means (ask
    /// again after the backoff, never connect without auth) is the core's decision.
    pub(crate) fn auth_ready(weak: &Weak<Shared>, request: AuthRequestId, auth: Result<String, String>) {
        if let Some(s) = weak.upgrade() {
            let _ = s.run(|inner, now| {
                let _ = match auth {
                    Ok(a) => inner.core.provide_auth(now, request, Some(a)),
                    Err(e) => inner.core.auth_failed(now, request, &e),
                };
            });
        }
    }

    /// Disconnects, lets the last packets go out, then releases every JS resource.
    pub(crate) fn close(self: &Rc<Self>) {
        let _ = self.run(|inner, now| inner.core.disconnect(now));
        if let Ok(mut guard) = self.inner.try_borrow_mut() {
            let inner = &mut *guard;
            inner.closed = true;
            inner.page = None;
            inner.timer.clear();
            for r in inner.requests.drain_values() {
                // The POST carrying the close may be in flight: let it finish.
                r.detach();
            }
            inner.sockets.clear();
            let err = convert::error("tidings: the client was closed");
            let pending: Vec<Pending> = inner.acks.drain_values().chain(inner.rooms.drain_values()).collect();
            drop(guard);
            for p in pending {
                let _ = p.reject.call1(&JsValue::UNDEFINED, &err);
            }
        }
        if let Ok(mut cb) = self.callbacks.try_borrow_mut() {
            cb.clear();
        }
    }

    /// Sets one callback of `nsp`'s.
    pub(crate) fn set_callback(&self, nsp: &str, set: impl FnOnce(&mut Callbacks)) {
        if let Ok(mut c) = self.callbacks.try_borrow_mut()
            && let Some(cb) = c.get_or_insert_with(nsp.to_string(), Callbacks::default)
        {
            set(cb);
        }
    }

    /// Delivers the queue in order; nested calls leave it to the outermost one.
    fn deliver(self: &Rc<Self>) {
        if self.delivering.replace(true) {
            return;
        }
        // The last event whose callbacks have run, reported to the core once the queue is empty:
        // one report covers every event before it (`Client::delivered`), so a burst costs one
        // borrow and one drain, not one per event.
        let mut last = None;
        loop {
            let next = match self.queue.try_borrow_mut() {
                Ok(mut q) => q.pop_front(),
                Err(_) => None,
            };
            let Some(d) = next else {
                let Some(id) = last.take() else { break };
                // Their callbacks have run (or thrown, or there were none): only now may the core
                // count the events as received (offsets, de-duplication keys). A fresh borrow, as
                // a callback may have called back into the client; fails only after `close()`.
                // Whatever the core asks for next is queued, and delivered by this loop.
                let _ = self.run(|inner, now| inner.core.delivered(now, id));
                continue;
            };
            if let Delivery::Event(ev) = &d {
                last = Some(ev.delivery);
            }
            self.deliver_one(d);
        }
        self.delivering.set(false);
    }

    fn callback(&self, nsp: Option<&str>, pick: impl FnOnce(&Callbacks) -> Option<Function>) -> Option<Function> {
        let c = self.callbacks.try_borrow().ok()?;
        c.get_ref(nsp.unwrap_or(&self.main)).and_then(pick)
    }

    fn deliver_one(self: &Rc<Self>, d: Delivery) {
        let this = JsValue::UNDEFINED;
        let result = match d {
            Delivery::Event(ev) => {
                let Some(f) = self.callback(Some(&ev.namespace), |c| c.event.clone()) else { return };
                let args = match convert::args_to_js(ev.args) {
                    Ok(a) => a,
                    Err(e) => return report(&e),
                };
                let (name, source) = match self.names.try_borrow_mut() {
                    Ok(mut names) => (names.get(&ev.name), convert::source_to_js(ev.source, &mut names)),
                    Err(_) => return,
                };
                let offset = ev.offset.as_deref().map_or(JsValue::UNDEFINED, JsValue::from_str);
                let ack = ev.ack.map_or(JsValue::UNDEFINED, |a| JsValue::from_f64(a.id as f64));
                // `call_event` appends the offset to `args`: the callback gets every argument as
                // sent (`Event::wire_args`), as socket.io-client hands them to its listeners, since
                // a volatile event's last string argument looks just like an offset on the wire.
                // A throwing callback is reported there; the queue goes on.
                return convert::call_event(&f, &name, &args, &offset, &source, &ack);
            }
            Delivery::State(nsp, s) => match self.callback(Some(&nsp), |c| c.state.clone()) {
                Some(f) => f.call1(&this, &convert::state_to_js(&s)),
                None => return,
            },
            Delivery::ConnectError(nsp, e) => match self.callback(Some(&nsp), |c| c.connect_error.clone()) {
                Some(f) => f.call1(&this, &convert::connect_error_to_js(&e)),
                None => return,
            },
            Delivery::Feed(s) => match self.callback(None, |c| c.feed.clone()) {
                Some(f) => f.call1(&this, &convert::feed_to_js(&s)),
                None => return,
            },
            Delivery::Settle(p, Ok(args)) => match convert::args_to_js(args) {
                Ok(a) => p.resolve.call1(&this, &a),
                Err(e) => p.reject.call1(&this, &e),
            },
            Delivery::Settle(p, Err(e)) => p.reject.call1(&this, &convert::emit_error_to_js(&e)),
            Delivery::Auth(request, provider) => {
                self.ask_auth(request, &provider);
                return;
            }
        };
        if let Err(e) = result {
            report(&e);
        }
    }

    /// Calls the auth provider (it may return a promise) and answers the core when it settles.
    fn ask_auth(self: &Rc<Self>, request: AuthRequestId, provider: &Function) {
        let value = provider.call0(&JsValue::UNDEFINED).unwrap_or(JsValue::UNDEFINED);
        let promise = Promise::resolve(&value);
        let weak = Rc::downgrade(self);
        wasm_bindgen_futures::spawn_local(async move {
            let auth = match wasm_bindgen_futures::JsFuture::from(promise).await {
                Ok(v) => crate::options::auth_json(&v),
                Err(e) => {
                    report(&e);
                    Err("it threw or its promise was rejected".to_string())
                }
            };
            Shared::auth_ready(&weak, request, auth);
        });
    }
}

impl Inner {
    /// Performs every output; application-bound ones go to `out`. Re-arms the timer last.
    fn drain(&mut self, out: &mut VecDeque<Delivery>) {
        loop {
            match self.core.poll_output() {
                Output::Wait(deadline) => {
                    self.arm(deadline);
                    return;
                }
                Output::OpenWebSocket { conn, url } => match Ws::open(conn, &url, Shared::sink(&self.weak)) {
                    Ok(ws) => {
                        self.sockets.insert(conn, ws);
                    }
                    Err(error) => {
                        let now = self.clock.now();
                        self.core.handle_input(now, Input::WsClosed { conn, code: None, error: Some(error) });
                    }
                },
                Output::SendWebSocket { conn, frame } => {
                    if let Some(ws) = self.sockets.get(&conn) {
                        ws.send(&frame);
                    }
                }
                Output::CloseWebSocket(conn) => {
                    self.sockets.remove(&conn);
                }
                Output::Http(req) => {
                    let id = req.id;
                    match Req::start(req, Shared::sink(&self.weak)) {
                        Ok(r) => {
                            self.requests.insert(id, r);
                        }
                        Err(error) => {
                            let now = self.clock.now();
                            self.core.handle_input(
                                now,
                                Input::HttpFailed { id, error: tidings_core::HttpError::Network(error) },
                            );
                        }
                    }
                }
                Output::AbortHttp(id) => {
                    self.requests.remove(&id);
                }
                Output::NeedAuth { namespace, request } => match self.auth.get(&namespace) {
                    Some(f) => out.push_back(Delivery::Auth(request, f.clone())),
                    None => {
                        let now = self.clock.now();
                        let _ = self.core.provide_auth(now, request, None);
                    }
                },
                Output::Event(ev) => out.push_back(Delivery::Event(ev)),
                Output::Settled { emit, result } => {
                    if let Some(p) = self.acks.remove(&emit) {
                        out.push_back(Delivery::Settle(p, result));
                    }
                }
                Output::Room { request, result, .. } => {
                    if let Some(p) = request.and_then(|id| self.rooms.remove(&id)) {
                        out.push_back(Delivery::Settle(p, result));
                    }
                }
                Output::State { namespace, state } => {
                    if let ConnectionState::Connected { recovered, .. } = &state {
                        self.recovered.insert(namespace.clone(), *recovered);
                    }
                    out.push_back(Delivery::State(namespace, state));
                }
                Output::ConnectError { namespace, error } => out.push_back(Delivery::ConnectError(namespace, error)),
                Output::Feed(status) => out.push_back(Delivery::Feed(status)),
                // The cause behind a "parse error" or "transport error" disconnect: not surfaced to
                // JS yet (its text would cost the bundle; see sdk-wasm/README.md).
                Output::Fault(_) => {}
            }
        }
    }

    fn arm(&mut self, deadline: Option<Instant>) {
        if deadline == self.armed {
            return;
        }
        self.armed = deadline;
        match deadline {
            None => self.timer.clear(),
            Some(d) => {
                let now = self.clock.now();
                // +1 ms: never wake up just before the deadline and spin.
                let ms = d.as_millis().saturating_sub(now.as_millis()).saturating_add(1);
                self.timer.arm(ms);
            }
        }
    }
}
