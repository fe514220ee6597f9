//! The module's whole interface: plain `extern "C"` functions over numbers and two byte buffers.
//!
//! No wasm-bindgen, no imports: the module cannot call JavaScript, so it cannot be re-entered,
//! and everything that touches the platform (WebSocket, fetch, timers, the page) is done by the
//! driver's JavaScript half (`npm/src/wasm/tidings_wasm.ts`), which feeds the core and performs
//! what it asks. Decisions stay here, in the core.
//!
//! Data crosses through two buffers. JavaScript asks for the input buffer (`tk_in`), writes the
//! call's strings and bytes into it as *pieces* (a little-endian `u32` length, then the bytes;
//! numbers of a block as `f64`s), then calls a function, which reads them in order. A function
//! that answers with more than a number writes pieces to the output buffer (`tk_out`,
//! `tk_out_len`), which JavaScript reads in the same order. The layout of each call is written
//! once on each side: here and in the reader/writer of `tidings_wasm.ts`.
//!
//! A client is a handle (an index); a bad handle does nothing. Ids (connections, requests,
//! emits, deliveries, auth and room requests) cross as numbers (`get`/`from_raw`).

use std::cell::RefCell;
use std::time::Duration;

use tidings_core::config::OverflowPolicy;
use tidings_core::engineio::Frame;
use tidings_core::{
    AckRequest, Args, AuthMode, AuthRequestId, BackoffStrategy, Client as Core, ConnId, ConnectionState, DeliveryId,
    EmitError, EmitRefused, EmitRequest, EventSource, FeedConfig, FeedStatus, HttpError, Input, Instant, Method,
    Output, RequestId, RequestPurpose, TransportKind,
};

struct State {
    clients: Vec<Option<Core>>,
    input: Vec<u8>,
    out: Vec<u8>,
}

thread_local! {
    static STATE: RefCell<State> = const { RefCell::new(State { clients: Vec::new(), input: Vec::new(), out: Vec::new() }) };
}

/// Reads the pieces of the input buffer in order; past the end, everything is empty or NaN.
struct Rd<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Rd<'a> {
    fn take(&mut self, n: usize) -> &'a [u8] {
        let s = self.b.get(self.at..self.at.saturating_add(n)).unwrap_or_default();
        self.at = self.at.saturating_add(n);
        s
    }
    fn num(&mut self) -> f64 {
        self.take(8).try_into().map_or(f64::NAN, f64::from_le_bytes)
    }
    fn bytes(&mut self) -> &'a [u8] {
        let n = self.take(4).try_into().map_or(0, u32::from_le_bytes);
        self.take(n as usize)
    }
    /// JavaScript writes strings with `TextEncoder`: always UTF-8.
    fn str(&mut self) -> &'a str {
        std::str::from_utf8(self.bytes()).unwrap_or_default()
    }
    fn opt_str(&mut self) -> Option<&'a str> {
        if self.num() == 1.0 { Some(self.str()) } else { None }
    }
    /// Arguments: the JSON text of an array, the number of attachments, each attachment.
    fn args(&mut self) -> Result<Args, String> {
        let text = self.str().to_string();
        let n = self.num();
        let mut attachments = Vec::new();
        let mut i = 0.0;
        // A count that does not match the pieces stops at the end of the buffer.
        while i < n && self.at < self.b.len() {
            attachments.push(self.bytes().to_vec());
            i += 1.0;
        }
        Args::from_json_array(text, attachments).map_err(|e| e.message().into_owned())
    }
}

fn num(out: &mut Vec<u8>, n: f64) {
    out.extend_from_slice(&n.to_le_bytes());
}

fn bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_le_bytes());
    out.extend_from_slice(b);
}

fn str(out: &mut Vec<u8>, s: &str) {
    bytes(out, s.as_bytes());
}

fn opt_str(out: &mut Vec<u8>, s: Option<&str>) {
    num(out, if s.is_some() { 1.0 } else { 0.0 });
    if let Some(s) = s {
        str(out, s);
    }
}

/// `[a,b]` as one piece (no copy into a `String` first), then the attachments.
fn args(out: &mut Vec<u8>, a: &Args) {
    let len = a.iter().map(|s| s.len() + 1).sum::<usize>().max(1) + 1;
    out.extend_from_slice(&(len as u32).to_le_bytes());
    out.push(b'[');
    for (i, s) in a.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(s.as_bytes());
    }
    out.push(b']');
    num(out, a.attachments().len() as f64);
    for b in a.attachments() {
        bytes(out, b);
    }
}

/// Not inlined: the options alone call it eight times.
#[inline(never)]
fn ms(n: f64) -> Duration {
    Duration::from_millis(n as u64)
}

fn set<T>(slot: &mut T, n: f64, f: impl FnOnce(f64) -> T) {
    if !n.is_nan() {
        *slot = f(n);
    }
}

/// Runs `f` on client `h` with the input buffer and a cleared output buffer.
fn with<R>(h: u32, f: impl FnOnce(&mut Core, &mut Rd<'_>, &mut Vec<u8>) -> R) -> Option<R> {
    STATE.with_borrow_mut(|s| {
        let State { clients, input, out } = s;
        let core = clients.get_mut(h as usize)?.as_mut()?;
        out.clear();
        Some(f(core, &mut Rd { b: input, at: 0 }, out))
    })
}

fn at(now: f64) -> Instant {
    Instant::from_millis(now as u64)
}

/// The input buffer, at least `len` bytes long: returns its address. It only grows (zeroed once),
/// so a call's pieces overwrite the previous call's; JavaScript reserves room for the most bytes a
/// string may take (3 per UTF-16 unit) and the readers stop at the last piece of the layout.
#[unsafe(no_mangle)]
pub extern "C" fn tk_in(len: usize) -> usize {
    STATE.with_borrow_mut(|s| {
        if s.input.len() < len {
            s.input.resize(len.next_power_of_two(), 0);
        }
        s.input.as_mut_ptr() as usize
    })
}

/// The output buffer's address.
#[unsafe(no_mangle)]
pub extern "C" fn tk_out() -> usize {
    STATE.with_borrow(|s| s.out.as_ptr() as usize)
}

/// The output buffer's length.
#[unsafe(no_mangle)]
pub extern "C" fn tk_out_len() -> usize {
    STATE.with_borrow(|s| s.out.len())
}

/// Number of option numbers before the option strings (the order of `tidings_wasm.ts`'s
/// `optionNumbers`).
const OPTION_NUMBERS: usize = 24;

/// A client from the options in the input buffer: `OPTION_NUMBERS` numbers (NaN: the default),
/// then the URL, the path, the static auth JSON, the room events, the feed's URL and `since`, the
/// fallback URLs. Returns the handle, or -1 for an invalid URL and -2 for an invalid option, the
/// reason in the output buffer (-3: a message to show as it is).
#[unsafe(no_mangle)]
pub extern "C" fn tk_new() -> i32 {
    STATE.with_borrow_mut(|s| {
        let State { clients, input, out } = s;
        out.clear();
        let core = match config(&mut Rd { b: input, at: 0 }) {
            Ok(c) => c,
            Err((code, why)) => {
                str(out, why);
                return code;
            }
        };
        let h = clients.iter().position(Option::is_none).unwrap_or(clients.len());
        match clients.get_mut(h) {
            Some(slot) => *slot = Some(core),
            None => clients.push(Some(core)),
        }
        h as i32
    })
}

fn kind(n: f64) -> Option<TransportKind> {
    match n as u8 {
        1 => Some(TransportKind::WebSocket),
        2 => Some(TransportKind::Polling),
        _ => None,
    }
}

fn config(rd: &mut Rd<'_>) -> Result<Core, (i32, &'static str)> {
    let mut f = [f64::NAN; OPTION_NUMBERS];
    for x in &mut f {
        *x = rd.num();
    }
    let [
        upgrade,
        try_all,
        fallback_after,
        reprobe,
        reconnection,
        attempts,
        delay,
        delay_max,
        rand_factor,
        full_jitter,
        timeout,
        ack_timeout,
        retries,
        max_packets,
        max_bytes,
        drop_oldest,
        feed_after,
        feed_interval,
        feed_min,
        feed_max,
        feed_failures,
        auth,
        t0,
        t1,
    ] = f;
    let mut c = tidings_core::Config::new(rd.str()).map_err(|e| (-1, e.0))?;
    let path = rd.str();
    let auth_json = rd.str();
    c.auth = match auth as u8 {
        1 => AuthMode::Static(auth_json.to_string()),
        2 => AuthMode::Provider,
        _ => AuthMode::None,
    };
    if !t0.is_nan() {
        c.transports.order = [kind(t0), kind(t1)];
    }
    let t = &mut c.transports;
    set(&mut t.upgrade, upgrade, |n| n == 1.0);
    set(&mut t.try_all_transports, try_all, |n| n == 1.0);
    set(&mut t.fallback_after, fallback_after, |n| n as u32);
    set(&mut t.reprobe_every, reprobe, ms);
    set(&mut c.reconnect.enabled, reconnection, |n| n == 1.0);
    set(&mut c.reconnect.max_attempts, attempts, |n| n.is_finite().then_some(n as u32));
    let (mut min_ms, mut max_ms, mut randomization) = match c.reconnect.backoff {
        BackoffStrategy::SocketIo { min_ms, max_ms, randomization, .. } => (min_ms, max_ms, randomization),
        BackoffStrategy::FullJitter { min_ms, max_ms, .. } => (min_ms, max_ms, 0.5),
    };
    set(&mut min_ms, delay, |n| n as u64);
    set(&mut max_ms, delay_max, |n| n as u64);
    set(&mut randomization, rand_factor, |n| n);
    c.reconnect.backoff = if full_jitter == 1.0 {
        BackoffStrategy::FullJitter { min_ms, max_ms, factor: 2.0 }
    } else {
        BackoffStrategy::SocketIo { min_ms, max_ms, factor: 2.0, randomization }
    };
    if !path.is_empty() {
        c.path = path.to_string();
    }
    set(&mut c.connect_timeout, timeout, ms);
    set(&mut c.ack_timeout, ack_timeout, |n| Some(ms(n)));
    set(&mut c.retries, retries, |n| n as u32);
    set(&mut c.send_buffer.max_packets, max_packets, |n| n as usize);
    set(&mut c.send_buffer.max_bytes, max_bytes, |n| n as usize);
    set(&mut c.send_buffer.overflow, drop_oldest, |n| {
        if n == 1.0 { OverflowPolicy::DropOldest } else { OverflowPolicy::Reject }
    });
    let (join, leave) = (rd.str(), rd.str());
    if !join.is_empty() {
        c.room_events.join = join.to_string();
    }
    if !leave.is_empty() {
        c.room_events.leave = leave.to_string();
    }
    if let Some(url) = rd.opt_str() {
        let mut feed = FeedConfig::new(url);
        set(&mut feed.after, feed_after, ms);
        set(&mut feed.interval, feed_interval, ms);
        set(&mut feed.min_interval, feed_min, ms);
        set(&mut feed.max_interval, feed_max, ms);
        set(&mut feed.max_failures, feed_failures, |n| n as u32);
        feed.since = rd.opt_str().map(str::to_string);
        c.feed = Some(feed);
    }
    let seed = (rd.num() as u64) << 32 | rd.num() as u64;
    c.seed = seed;
    let n = rd.num();
    let mut i = 0.0;
    while i < n && rd.at < rd.b.len() {
        let u = tidings_core::url::ServerUrl::parse(rd.str());
        c.fallback_urls.push(u.map_err(|_| (-3, "option fallbackUrls must list http(s) or ws(s) URLs"))?);
        i += 1.0;
    }
    // `Core::new` validates the options (one `validate` call in the module, not two).
    Core::new(c).map_err(|e| (-2, e.0))
}

/// Drops client `h`.
#[unsafe(no_mangle)]
pub extern "C" fn tk_drop(h: u32) {
    STATE.with_borrow_mut(|s| {
        if let Some(slot) = s.clients.get_mut(h as usize) {
            *slot = None;
        }
    });
}

/// The URL's namespace, to the output buffer.
#[unsafe(no_mangle)]
pub extern "C" fn tk_main(h: u32) {
    with(h, |c, _, out| str(out, c.main_namespace()));
}

/// Connects the namespace in the input buffer (the URL's: the connection; another: opened again
/// with its auth). Returns 0, or -1 with the reason.
#[unsafe(no_mangle)]
pub extern "C" fn tk_connect(h: u32, now: f64) -> i32 {
    with(h, |c, rd, out| {
        let nsp = rd.str();
        if nsp == c.main_namespace() {
            c.connect(at(now));
            return 0;
        }
        let mode = c.namespace_auth(nsp).cloned().unwrap_or(AuthMode::None);
        done(out, c.open_namespace(at(now), nsp, mode).map_err(|e| e.message()))
    })
    .unwrap_or(-1)
}

/// 0, or -1 with the reason. Errors are written with their `message()`, never `Display`: the
/// module has no `core::fmt` in it.
fn done(out: &mut Vec<u8>, r: Result<(), impl AsRef<str>>) -> i32 {
    match r {
        Ok(()) => 0,
        Err(e) => {
            str(out, e.as_ref());
            -1
        }
    }
}

/// Opens the namespace in the input buffer (given with or without its `/`) with `auth`: 0 none,
/// 1 the static JSON that follows, 2 a provider. Writes the namespace's path; returns 0, or -1
/// with the reason.
#[unsafe(no_mangle)]
pub extern "C" fn tk_open(h: u32, now: f64, auth: u32) -> i32 {
    with(h, |c, rd, out| {
        let nsp = tidings_core::url::namespace_path(rd.str());
        let mode = match auth {
            1 => AuthMode::Static(rd.str().to_string()),
            2 => AuthMode::Provider,
            _ => AuthMode::None,
        };
        let r = c.open_namespace(at(now), &nsp, mode).map_err(|e| e.message());
        let code = done(out, r);
        if code == 0 {
            str(out, &nsp);
        }
        code
    })
    .unwrap_or(-1)
}

/// Disconnects the namespace in the input buffer ("io client disconnect"); an empty name
/// disconnects the whole connection.
#[unsafe(no_mangle)]
pub extern "C" fn tk_disconnect(h: u32, now: f64) {
    with(h, |c, rd, _| {
        let nsp = rd.str();
        if nsp.is_empty() {
            c.disconnect(at(now));
        } else {
            let _ = c.disconnect_namespace(at(now), nsp);
        }
    });
}

/// Emits (input: namespace, event, arguments). `flags`: 1 ack, 2 volatile, 4 idempotent;
/// `timeout` in ms or NaN. Returns the emit id, or -1 with the reason (-2: a volatile emit
/// dropped, which socket.io-client does silently).
#[unsafe(no_mangle)]
pub extern "C" fn tk_emit(h: u32, now: f64, flags: u32, timeout: f64) -> f64 {
    with(h, |c, rd, out| {
        let (nsp, event) = (rd.str(), rd.str());
        let args = match rd.args() {
            Ok(a) => a,
            Err(e) => {
                str(out, &e);
                return -1.0;
            }
        };
        let mut req = EmitRequest::new(event, args).namespace(nsp);
        req.ack = flags & 1 != 0;
        req.volatile = flags & 2 != 0;
        req.timeout = (!timeout.is_nan()).then(|| ms(timeout));
        if flags & 4 != 0 {
            req = req.new_idempotency_key();
        }
        match c.emit(at(now), req) {
            Ok(id) => id.get() as f64,
            Err(e) => {
                str(out, &e.message());
                if matches!(e, EmitRefused::Failed(EmitError::VolatileDropped)) { -2.0 } else { -1.0 }
            }
        }
    })
    .unwrap_or(-1.0)
}

/// Answers the server's ack request `id` (input: namespace, arguments). Returns 0 or -1 with the
/// reason.
#[unsafe(no_mangle)]
pub extern "C" fn tk_ack(h: u32, now: f64, id: f64) -> i32 {
    with(h, |c, rd, out| {
        let namespace = rd.str().to_string();
        let r = rd.args().and_then(|a| {
            c.ack(at(now), &AckRequest { namespace, id: id as u64 }, a).map_err(|e| e.message().into_owned())
        });
        done(out, r)
    })
    .unwrap_or(-1)
}

/// Joins (`join` 1) or leaves a room (input: namespace, room). Returns the request id, or -1
/// with the reason.
#[unsafe(no_mangle)]
pub extern "C" fn tk_room(h: u32, now: f64, join: u32) -> f64 {
    with(h, |c, rd, out| {
        let (nsp, room) = (rd.str(), rd.str());
        let r = if join == 1 { c.join(at(now), nsp, room) } else { c.leave(at(now), nsp, room) };
        match r {
            Ok(id) => id.get() as f64,
            Err(e) => {
                str(out, &e.message());
                -1.0
            }
        }
    })
    .unwrap_or(-1.0)
}

/// Answers auth request `id`: `ok` 1 with the auth JSON in the input buffer, 0 with why the
/// provider failed (the core retries after the backoff), 2 with no auth (no provider).
#[unsafe(no_mangle)]
pub extern "C" fn tk_auth(h: u32, now: f64, id: f64, ok: u32) {
    with(h, |c, rd, _| {
        let id = AuthRequestId::from_raw(id as u64);
        let _ = match ok {
            1 => c.provide_auth(at(now), id, Some(rd.str().to_string())),
            2 => c.provide_auth(at(now), id, None),
            _ => c.auth_failed(at(now), id, rd.str()),
        };
    });
}

/// Every event up to delivery `id` has been handed to the application.
#[unsafe(no_mangle)]
pub extern "C" fn tk_delivered(h: u32, now: f64, id: f64) {
    with(h, |c, _, _| c.delivered(at(now), DeliveryId::from_raw(id as u64)));
}

/// An input from the platform (`kind`: see `tidings_wasm.ts`'s `In`); `id` the socket or
/// request, `n` a close code or HTTP status (NaN: none); text or bytes in the input buffer.
#[unsafe(no_mangle)]
pub extern "C" fn tk_input(h: u32, now: f64, kind: u32, id: f64, n: f64) {
    with(h, |c, rd, _| {
        let conn = ConnId::from_raw(id as u64);
        let rid = RequestId::from_raw(id as u64);
        let input = match kind {
            0 => Input::WsOpened(conn),
            1 => Input::WsText(conn, rd.str().to_string()),
            2 => Input::WsBinary(conn, rd.bytes().to_vec()),
            3 => Input::WsClosed {
                conn,
                code: (!n.is_nan()).then_some(n as u16),
                error: rd.opt_str().map(str::to_string),
            },
            4 => Input::HttpResponse { id: rid, status: n as u16, body: rd.bytes().to_vec() },
            5 => Input::HttpFailed { id: rid, error: HttpError::Network(rd.str().to_string()) },
            6 => Input::HttpFailed { id: rid, error: HttpError::TooLarge { max_body: n as usize } },
            7 => Input::Online,
            8 => Input::Offline,
            9 => Input::Visible,
            10 => Input::Hidden,
            _ => Input::Timeout,
        };
        c.handle_input(at(now), input);
    });
}

fn state(out: &mut Vec<u8>, s: &ConnectionState) {
    match s {
        ConnectionState::Connecting => num(out, 0.0),
        ConnectionState::Connected { transport, recovered, sid } => {
            num(out, 1.0);
            str(out, transport.as_str());
            num(out, if *recovered { 1.0 } else { 0.0 });
            str(out, sid);
        }
        ConnectionState::Reconnecting { attempt, delay } => {
            num(out, 2.0);
            num(out, f64::from(*attempt));
            num(out, delay.as_millis() as f64);
        }
        ConnectionState::Disconnected { reason } => {
            num(out, 3.0);
            str(out, reason.as_str());
        }
    }
}

fn settled(out: &mut Vec<u8>, r: &Result<Args, EmitError>) {
    match r {
        Ok(a) => {
            num(out, 1.0);
            args(out, a);
        }
        Err(e) => {
            num(out, 0.0);
            str(out, &e.message());
        }
    }
}

/// The next output, written to the output buffer; returns its kind (0: wait, with the deadline
/// in ms or -1).
#[unsafe(no_mangle)]
pub extern "C" fn tk_poll(h: u32) -> u32 {
    with(h, |c, _, out| {
        loop {
            return match c.poll_output() {
                Output::Wait(deadline) => {
                    num(out, deadline.map_or(-1.0, |d| d.as_millis() as f64));
                    0
                }
                Output::OpenWebSocket { conn, url } => {
                    num(out, conn.get() as f64);
                    str(out, &url);
                    1
                }
                Output::SendWebSocket { conn, frame } => {
                    num(out, conn.get() as f64);
                    match frame {
                        Frame::Text(t) => {
                            num(out, 0.0);
                            str(out, &t);
                        }
                        Frame::Binary(b) => {
                            num(out, 1.0);
                            bytes(out, &b);
                        }
                    }
                    2
                }
                Output::CloseWebSocket(conn) => {
                    num(out, conn.get() as f64);
                    3
                }
                Output::Http(r) => {
                    num(out, r.id.get() as f64);
                    num(out, if r.method == Method::Post { 1.0 } else { 0.0 });
                    str(out, &r.url);
                    opt_str(out, r.content_type);
                    opt_str(out, r.authorization.as_deref());
                    opt_str(out, r.body.as_deref());
                    num(out, r.max_body as f64);
                    // 0 and 1: Engine.IO long-polling (which `extraHeaders` and `withCredentials`
                    // are for); 2: the REST feed.
                    num(
                        out,
                        match r.purpose {
                            RequestPurpose::PollReceive => 0.0,
                            RequestPurpose::PollSend => 1.0,
                            _ => 2.0,
                        },
                    );
                    4
                }
                Output::AbortHttp(id) => {
                    num(out, id.get() as f64);
                    5
                }
                Output::NeedAuth { namespace, request } => {
                    str(out, &namespace);
                    num(out, request.get() as f64);
                    6
                }
                Output::Event(e) => {
                    str(out, &e.namespace);
                    str(out, &e.name);
                    args(out, &e.args);
                    opt_str(out, e.offset.as_deref());
                    num(out, e.delivery.get() as f64);
                    num(out, e.ack.map_or(-1.0, |a| a.id as f64));
                    num(out, if e.source == EventSource::Feed { 1.0 } else { 0.0 });
                    // The envelope id (`lastEventMeta.id` in npm) by the core's one rule, so the id an
                    // application stores as its cursor is the one the feed and de-duplication use.
                    let first = e.args.get(0).filter(|a| a.starts_with('{'));
                    opt_str(out, first.and_then(tidings_core::event::envelope_id).as_deref());
                    7
                }
                Output::Settled { emit, result } => {
                    num(out, emit.get() as f64);
                    settled(out, &result);
                    8
                }
                Output::Room { request, result, .. } => {
                    num(out, request.map_or(-1.0, |r| r.get() as f64));
                    settled(out, &result);
                    9
                }
                Output::State { namespace, state: s } => {
                    str(out, &namespace);
                    state(out, &s);
                    10
                }
                Output::ConnectError { namespace, error } => {
                    str(out, &namespace);
                    str(out, &error.message);
                    opt_str(out, error.data.as_deref());
                    num(out, if error.will_retry { 1.0 } else { 0.0 });
                    num(out, if error.fallback_pending { 1.0 } else { 0.0 });
                    11
                }
                Output::Feed(f) => {
                    let (k, e) = match &f {
                        FeedStatus::Polling => (0.0, ""),
                        FeedStatus::Stopped => (1.0, ""),
                        FeedStatus::CatchingUp => (2.0, ""),
                        FeedStatus::CaughtUp => (3.0, ""),
                        FeedStatus::GaveUp { error } => (4.0, error.as_str()),
                    };
                    num(out, k);
                    str(out, e);
                    12
                }
                // The cause behind a "parse error" or "transport error" disconnect: not surfaced to
                // JavaScript (its text would cost the bundle).
                Output::Fault(_) => continue,
            };
        }
    })
    .unwrap_or(0)
}

/// The state of the namespace in the input buffer (as in `tk_poll`'s state output).
#[unsafe(no_mangle)]
pub extern "C" fn tk_state(h: u32) {
    with(h, |c, rd, out| state(out, c.state(rd.str()).unwrap_or(&ConnectionState::NOT_CONNECTED)));
}

/// The cursor (the position of the last event delivered), as an optional string.
#[unsafe(no_mangle)]
pub extern "C" fn tk_cursor(h: u32) {
    with(h, |c, _, out| opt_str(out, c.cursor()));
}

/// The rooms of the namespace in the input buffer: their number, then each.
#[unsafe(no_mangle)]
pub extern "C" fn tk_rooms(h: u32) {
    with(h, |c, rd, out| {
        let rooms = c.rooms(rd.str());
        num(out, rooms.len() as f64);
        for r in &rooms {
            str(out, r);
        }
    });
}
