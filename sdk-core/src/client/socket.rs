//! A namespace socket, a sub-machine of its own: CONNECT with auth and recovery, emits, acks,
//! retries, the send buffer and the reliable queue, rooms, event delivery.
//!
//! Each method acts on one namespace, with a [`Cx`] and the [`Engine`] it sends through (only
//! its sending and state queries); what concerns the other namespaces, the engine's lifecycle
//! or the feed comes back as an [`After`] for [`super::Client`] to route.

use crate::vecmap::{VecMap, VecSet};
use std::time::Duration;

use super::engine::Engine;
use super::inbox::{Inbox, Retired};
use super::outbox::{Outbox, Pending};
use super::{
    AckRequest, AuthRequestId, ConnectError, ConnectionState, Cx, DeliveryId, DisconnectReason, EmitError, EmitId,
    EmitRefused, EmitRequest, Event, EventSource, Fault, IdempotencyKey, InvalidEmit, Output, RoomRequestId,
};
use crate::args::Args;
use crate::config::{AuthMode, TransportKind};
use crate::dedup::DedupKey;
use crate::json::{self, JsonKind};
use crate::socketio::{self, Packet, PacketType};
use crate::text;
use crate::time::{Instant, earliest};

const V2_SERVER: &str = "It seems you are trying to reach a Socket.IO server in v2.x with a v3.x client, but they are not compatible (more information here: https://socket.io/docs/v3/migrating-from-2-x-to-3-0/)";

/// Room acks wait this long when no `ack_timeout` is configured.
const ROOM_ACK_TIMEOUT: Duration = Duration::from_secs(10);

/// The most socket events that wait for a feed catch-up. Past it, an event with an envelope id is
/// not kept (the feed has it: the catch-up reads on to the end and delivers it in its place);
/// one without goes out at once, out of order rather than lost.
pub(super) const HOLD_MAX: usize = 10_000;

/// A socket event decoded and waiting for a feed catch-up to end (see [`Socket::release`]).
#[derive(Debug)]
pub(super) struct Held {
    event: Event,
    keys: Vec<DedupKey>,
    retired: Option<Retired>,
}

#[derive(Debug)]
pub(super) struct Socket {
    pub(super) nsp: String,
    pub(super) auth: AuthMode,
    phase: SocketPhase,
    reported: Option<ConnectionState>,
    pid: Option<String>,
    offset: Option<String>,
    next_ack: u64,
    acks: VecMap<u64, AckWait>,
    /// Emits not on the wire yet: the send buffer and the reliable queue.
    outbox: Outbox,
    pub(super) rooms: VecSet<String>,
    /// Room changes made while not connected, to send after a recovered reconnect.
    unsynced: VecMap<String, bool>,
    /// Failures of the auth provider in a row (the backoff attempt of the next retry).
    auth_failures: u32,
    /// Room requests not answered yet: (id, room, join).
    room_requests: Vec<(RoomRequestId, String, bool)>,
    auth_refreshed: bool,
    /// Connected without recovery, with a feed: the client starts a catch-up (taken by it).
    catch_up_due: bool,
    /// While the feed catches up, the events wait here, so they follow the events they missed.
    held: Option<std::collections::VecDeque<Held>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum SocketPhase {
    /// Not wanted: never connected, or disconnected for good (client, server, CONNECT_ERROR).
    Inactive,
    /// Wanted; the engine is not open yet.
    Waiting,
    /// Waiting for the driver's auth.
    Auth(AuthRequestId),
    /// The auth provider failed; ask it again at `deadline`.
    AuthRetry { deadline: Instant },
    /// CONNECT sent.
    Connecting { pid_sent: Option<String>, deadline: Instant },
    /// CONNECT acknowledged.
    Connected { sid: String, recovered: bool },
}

#[derive(Debug)]
enum AckWait {
    User { emit: EmitId, deadline: Option<Instant> },
    Reliable,
    Room { room: String, join: bool, deadline: Instant },
}

impl Socket {
    /// Not inlined in the browser build: `Client::new` and `open_namespace` each had a copy.
    #[cfg_attr(target_arch = "wasm32", inline(never))]
    pub(super) fn new(nsp: String, auth: AuthMode) -> Self {
        Self {
            nsp,
            auth,
            phase: SocketPhase::Inactive,
            reported: None,
            pid: None,
            offset: None,
            next_ack: 0,
            acks: VecMap::new(),
            outbox: Outbox::default(),
            rooms: VecSet::new(),
            unsynced: VecMap::new(),
            room_requests: Vec::new(),
            auth_failures: 0,
            auth_refreshed: false,
            catch_up_due: false,
            held: None,
        }
    }

    /// Whether a catch-up should start now (once per unrecovered connect).
    pub(super) fn take_catch_up_due(&mut self) -> bool {
        std::mem::take(&mut self.catch_up_due)
    }

    pub(super) fn is_holding(&self) -> bool {
        self.held.is_some()
    }

    /// Ends the wait for the feed: the held events go out, after what the feed delivered and
    /// without what it delivered. `interrupted` (the socket went down before the catch-up ended):
    /// the held events with an envelope id are dropped instead, as the feed, which goes on from
    /// where it stopped, has them and must deliver them after the ones it has not read yet.
    pub(super) fn release(&mut self, cx: &mut Cx<'_>, inbox: &mut Inbox, interrupted: bool) {
        for h in self.held.take().unwrap_or_default() {
            let in_feed = h.keys.iter().any(|k| matches!(k, DedupKey::EnvelopeId(_)));
            if (interrupted && in_feed) || inbox.seen(&h.keys, false) {
                continue;
            }
            let mut event = h.event;
            event.delivery = inbox.admit(h.keys, h.retired);
            cx.out.push_back(Output::Event(event));
        }
    }

    pub(super) fn is_connected(&self) -> bool {
        matches!(self.phase, SocketPhase::Connected { .. })
    }

    pub(super) fn is_active(&self) -> bool {
        !matches!(self.phase, SocketPhase::Inactive)
    }

    pub(super) fn awaiting_auth(&self) -> Option<AuthRequestId> {
        match self.phase {
            SocketPhase::Auth(id) => Some(id),
            _ => None,
        }
    }

    /// The last state reported.
    pub(super) fn reported(&self) -> Option<&ConnectionState> {
        self.reported.as_ref()
    }

    /// An event received in session `pid` with `offset` was delivered: recover from there.
    pub(super) fn delivered_offset(&mut self, pid: &str, offset: String) {
        if self.pid.as_deref() == Some(pid) {
            self.offset = Some(offset);
        }
    }

    pub(super) fn buffered_packets(&self) -> usize {
        self.outbox.len()
    }

    pub(super) fn pending_acks(&self) -> usize {
        self.acks.len()
    }

    fn take_ack_id(&mut self) -> u64 {
        let id = self.next_ack;
        self.next_ack = self.next_ack.wrapping_add(1);
        id
    }

    pub(super) fn deadline(&self) -> Option<Instant> {
        let phase = match &self.phase {
            SocketPhase::Connecting { deadline, .. } | SocketPhase::AuthRetry { deadline } => Some(*deadline),
            _ => None,
        };
        self.acks.values().fold(earliest(phase, self.outbox.deadline()), |d, a| match a {
            AckWait::User { deadline, .. } => earliest(d, *deadline),
            AckWait::Room { deadline, .. } => earliest(d, Some(*deadline)),
            AckWait::Reliable => d,
        })
    }
}

/// `["event",a,b]`
fn event_data(event: &str, args: &Args) -> String {
    let mut out = String::with_capacity(event.len() + args.inner_len() + 4);
    out.push('[');
    json::write_string(&mut out, event);
    if !args.is_empty() {
        out.push(',');
        args.write_inner(&mut out);
    }
    out.push(']');
    out
}

/// The CONNECT payload: `Object.assign({pid, offset}, auth)` as socket.io-client builds it.
fn connect_data(pid: Option<&str>, offset: Option<&str>, auth: Option<&str>) -> Option<String> {
    let members = auth.and_then(|a| json::object_members(a).ok().map(|m| (a, m)));
    let mut out = String::from("{");
    let mut first = true;
    let mut put = |out: &mut String, key: &str, raw: Option<&str>, plain: Option<&str>| {
        if !first {
            out.push(',');
        }
        first = false;
        json::write_string(out, key);
        out.push(':');
        match (raw, plain) {
            (Some(r), _) => out.push_str(r),
            (None, Some(p)) => json::write_string(out, p),
            (None, None) => out.push_str("null"),
        }
    };
    let from_auth = |key: &str| {
        members.as_ref().and_then(|(a, m)| m.iter().rev().find(|(k, _)| k == key).and_then(|(_, r)| a.get(r.clone())))
    };
    if let (Some(pid), Some(offset)) = (pid, offset) {
        put(&mut out, "pid", from_auth("pid"), Some(pid));
        put(&mut out, "offset", from_auth("offset"), Some(offset));
    } else if let Some(pid) = pid {
        put(&mut out, "pid", from_auth("pid"), Some(pid));
    }
    let written: &[&str] = match (pid, offset) {
        (Some(_), Some(_)) => &["pid", "offset"],
        (Some(_), None) => &["pid"],
        (None, _) => &[],
    };
    if let Some((a, m)) = &members {
        for (k, r) in m {
            if written.contains(&k.as_ref()) {
                continue;
            }
            // Later duplicates override earlier ones, as in JSON.parse.
            if m.iter().rev().find(|(k2, _)| k2 == k).map(|(_, r2)| r2) != Some(r) {
                continue;
            }
            put(&mut out, k, a.get(r.clone()), None);
        }
    }
    out.push('}');
    if out == "{}" && auth.is_none() { None } else { Some(out) }
}

/// Reads the object members `message` and `data` of a CONNECT_ERROR payload (or a bare string).
fn connect_error_of(data: Option<&str>) -> (String, Option<String>) {
    let Some(d) = data else { return ("connect error".to_string(), None) };
    match json::validate(d) {
        Ok(JsonKind::String) => (json::parse_string(d).map(|s| s.into_owned()).unwrap_or_default(), None),
        Ok(JsonKind::Object) => {
            let members = json::object_members(d).unwrap_or_default();
            let mut message = String::new();
            let mut extra = None;
            for (k, r) in members {
                let raw = d.get(r).unwrap_or_default();
                match k.as_ref() {
                    "message" => {
                        message = json::parse_string(raw).map(|s| s.into_owned()).unwrap_or_else(|_| raw.to_string())
                    }
                    "data" => extra = Some(raw.to_string()),
                    _ => {}
                }
            }
            (message, extra)
        }
        _ => (d.to_string(), None),
    }
}

/// Heuristic for "this CONNECT_ERROR is about credentials": worth one retry with fresh auth.
fn looks_like_auth_failure(message: &str, data: Option<&str>) -> bool {
    let hay = text::concat(&[message, " ", data.unwrap_or_default()]).to_ascii_lowercase();
    ["auth", "token", "jwt", "expired", "unauthori", "forbidden", "credential", "401", "403"]
        .iter()
        .any(|w| text::contains(&hay, w))
}

/// What the client must do after a namespace acted (the parts that concern more than one
/// namespace: the engine they share and the feed).
#[must_use]
#[derive(Debug)]
pub(super) enum After {
    /// Nothing more.
    Nothing,
    /// Its state changed: the feed may start or stop.
    Changed,
    /// It is inactive for good: the engine closes if no namespace wants it, and the feed follows.
    Gone,
    /// It never answered its CONNECT: the session is taken for broken.
    Broken(Fault),
}

/// Reports the fate of an emit. One call site for the output's construction and queueing
/// rather than one at each of the nine places an emit is settled.
#[cfg_attr(target_arch = "wasm32", inline(never))]
fn settle(cx: &mut Cx<'_>, emit: EmitId, result: Result<Args, EmitError>) {
    cx.out.push_back(Output::Settled { emit, result });
}

impl Socket {
    /// Reports a failed connection attempt of this namespace (`connect_error`); built in one
    /// place for the five ways an attempt fails.
    #[cfg_attr(target_arch = "wasm32", inline(never))]
    fn connect_error(
        &self,
        cx: &mut Cx<'_>,
        message: String,
        data: Option<String>,
        will_retry: bool,
        fallback_pending: bool,
        cause: Option<Fault>,
    ) {
        let error = ConnectError { message, data, will_retry, fallback_pending, cause };
        cx.out.push_back(Output::ConnectError { namespace: self.nsp.clone(), error });
    }

    fn set_state(&mut self, cx: &mut Cx<'_>, state: ConnectionState) {
        if self.reported.as_ref() == Some(&state) {
            return;
        }
        self.reported = Some(state.clone());
        cx.out.push_back(Output::State { namespace: self.nsp.clone(), state });
    }

    // ---------------------------------------------------------------- lifecycle

    /// Wanted again (`connect`, `open_namespace`): connects at once if the engine is open. False
    /// when it was active already.
    pub(super) fn activate(&mut self, cx: &mut Cx<'_>, engine: &mut Engine) -> bool {
        if !matches!(self.phase, SocketPhase::Inactive) {
            return false;
        }
        self.phase = SocketPhase::Waiting;
        self.set_state(cx, ConnectionState::Connecting);
        if engine.is_open() {
            self.begin_connect(cx, engine);
        }
        true
    }

    /// A connection attempt of the engine started.
    pub(super) fn engine_connecting(&mut self, cx: &mut Cx<'_>) {
        if self.is_active() {
            self.set_state(cx, ConnectionState::Connecting);
        }
    }

    /// The engine is open: a namespace waiting for it connects.
    pub(super) fn engine_open(&mut self, cx: &mut Cx<'_>, engine: &mut Engine) {
        if matches!(self.phase, SocketPhase::Waiting) {
            self.begin_connect(cx, engine);
        }
    }

    fn begin_connect(&mut self, cx: &mut Cx<'_>, engine: &mut Engine) {
        let id = AuthRequestId(cx.ids.next());
        self.auth_refreshed = false;
        match &self.auth {
            AuthMode::None => self.send_connect(cx, engine, None),
            AuthMode::Static(a) => {
                let a = a.clone();
                self.send_connect(cx, engine, Some(a));
            }
            AuthMode::Provider => {
                self.phase = SocketPhase::Auth(id);
                cx.out.push_back(Output::NeedAuth { namespace: self.nsp.clone(), request: id });
            }
        }
    }

    /// Sends the CONNECT (with `auth`, and the session to recover), or waits for the engine.
    pub(super) fn send_connect(&mut self, cx: &mut Cx<'_>, engine: &mut Engine, auth: Option<String>) {
        if !engine.is_open() {
            self.phase = SocketPhase::Waiting;
            return;
        }
        let deadline = cx.now + cx.config.namespace_timeout;
        let data = connect_data(self.pid.as_deref(), self.offset.as_deref(), auth.as_deref());
        self.phase = SocketPhase::Connecting { pid_sent: self.pid.clone(), deadline };
        let text = socketio::encode(PacketType::Connect, &self.nsp, None, data.as_deref(), 0);
        engine.send(cx, text, &[]);
    }

    /// The driver could not get auth for the CONNECT: say so, and ask again after the reconnect
    /// backoff (the engine stays open for the other namespaces). Connecting without auth instead
    /// could give an anonymous session the application never asked for.
    pub(super) fn auth_failed(&mut self, cx: &mut Cx<'_>, message: &str) -> After {
        let attempt = self.auth_failures;
        let reconnect = &cx.config.reconnect;
        let give_up = !reconnect.enabled || reconnect.max_attempts.is_some_and(|max| attempt >= max);
        let message = text::concat(&["the auth provider failed: ", message]);
        self.connect_error(cx, message, None, !give_up, false, None);
        if give_up {
            self.deactivate(cx, DisconnectReason::ConnectError);
            return After::Gone;
        }
        let delay = reconnect.backoff.delay_ms(attempt, cx.rng);
        self.auth_failures = attempt.saturating_add(1);
        self.phase = SocketPhase::AuthRetry { deadline: cx.now.plus_millis(delay) };
        After::Nothing
    }

    /// The engine session is gone: wait for the next one; acks of packets sent can no longer come.
    pub(super) fn engine_closed(&mut self, cx: &mut Cx<'_>, reason: DisconnectReason) {
        if !matches!(
            self.phase,
            SocketPhase::Connected { .. }
                | SocketPhase::Connecting { .. }
                | SocketPhase::Auth(_)
                | SocketPhase::AuthRetry { .. }
        ) {
            return;
        }
        let was_connected = self.is_connected();
        self.phase = SocketPhase::Waiting;
        self.fail_sent_acks(cx);
        if was_connected {
            self.set_state(cx, ConnectionState::Disconnected { reason });
        }
    }

    /// The engine gave up for `reason`.
    pub(super) fn give_up(&mut self, cx: &mut Cx<'_>, reason: DisconnectReason) {
        if self.is_active() {
            self.deactivate(cx, reason);
        }
    }

    /// A connection attempt of the engine failed.
    pub(super) fn engine_failed(
        &mut self,
        cx: &mut Cx<'_>,
        message: &str,
        cause: Option<Fault>,
        will_retry: bool,
        fallback_pending: bool,
    ) {
        if self.is_active() {
            self.connect_error(cx, message.to_string(), None, will_retry, fallback_pending, cause);
        }
    }

    /// Reports `state` (the engine's) if the namespace is active.
    pub(super) fn engine_state(&mut self, cx: &mut Cx<'_>, state: &ConnectionState) {
        if self.is_active() {
            self.set_state(cx, state.clone());
        }
    }

    pub(super) fn transport_changed(&mut self, cx: &mut Cx<'_>, transport: TransportKind) {
        if let SocketPhase::Connected { sid, recovered } = &self.phase {
            let state = ConnectionState::Connected { transport, recovered: *recovered, sid: sid.clone() };
            self.reported = Some(state.clone());
            cx.out.push_back(Output::State { namespace: self.nsp.clone(), state });
        }
    }

    /// Makes the namespace inactive for good and fails everything it still holds.
    fn deactivate(&mut self, cx: &mut Cx<'_>, reason: DisconnectReason) {
        if matches!(self.phase, SocketPhase::Inactive) {
            return;
        }
        self.phase = SocketPhase::Inactive;
        let held = self.outbox.take_all();
        if reason != DisconnectReason::ReconnectFailed {
            // Neither a client nor a server disconnect keeps a session to recover.
            self.pid = None;
            self.offset = None;
        }
        // Room changes waiting for a connection stay remembered for a later `connect`, but their
        // callers are told now.
        let waiting: Vec<(String, bool)> = self.unsynced.iter().map(|(r, j)| (r.clone(), *j)).collect();
        self.fail_sent_acks(cx);
        for (room, join) in waiting {
            self.room_done(cx, &room, join, Err(EmitError::Disconnected));
        }
        for p in held {
            settle(cx, p.emit, Err(EmitError::Disconnected));
        }
        self.set_state(cx, ConnectionState::Disconnected { reason });
    }

    /// Acks of packets already sent can no longer come: fail them. Reliable emits stay queued.
    fn fail_sent_acks(&mut self, cx: &mut Cx<'_>) {
        let acks = std::mem::take(&mut self.acks);
        self.outbox.connection_lost();
        for (_, a) in acks {
            match a {
                AckWait::User { emit, .. } => settle(cx, emit, Err(EmitError::Disconnected)),
                AckWait::Room { room, join, .. } => self.room_done(cx, &room, join, Err(EmitError::Disconnected)),
                AckWait::Reliable => {}
            }
        }
    }

    /// `disconnect()`: DISCONNECT if the server knows the namespace, then inactive.
    pub(super) fn client_disconnect(&mut self, cx: &mut Cx<'_>, engine: &mut Engine) {
        if matches!(self.phase, SocketPhase::Connected { .. } | SocketPhase::Connecting { .. }) {
            let text = socketio::encode(PacketType::Disconnect, &self.nsp, None, None, 0);
            engine.send(cx, text, &[]);
        }
        self.deactivate(cx, DisconnectReason::IoClientDisconnect);
    }

    // ---------------------------------------------------------------- packets in

    /// A packet for this namespace. Events go through `inbox` (de-duplication, delivery).
    pub(super) fn on_packet(&mut self, cx: &mut Cx<'_>, engine: &mut Engine, inbox: &mut Inbox, p: Packet) -> After {
        if matches!(p.kind, PacketType::Event | PacketType::BinaryEvent) {
            // The hot path: no copy of the phase or the namespace.
            if matches!(self.phase, SocketPhase::Connected { .. } | SocketPhase::Connecting { .. }) {
                // Recovered events arrive before the CONNECT ack; delivering them at once keeps
                // socket.io-client's order (missed events first, then `connect`).
                self.deliver_event(cx, inbox, p);
            }
            return After::Nothing;
        }
        // Matched by reference (a clone of the whole phase costs code for every variant).
        match (p.kind, &self.phase) {
            (PacketType::Connect, SocketPhase::Connecting { pid_sent, .. }) => {
                let pid_sent = pid_sent.clone();
                self.on_connect_ack(cx, engine, p, pid_sent)
            }
            (PacketType::ConnectError, SocketPhase::Connecting { .. }) => self.on_connect_error(cx, p),
            (PacketType::Disconnect, SocketPhase::Connected { .. } | SocketPhase::Connecting { .. }) => {
                self.deactivate(cx, DisconnectReason::IoServerDisconnect);
                After::Gone
            }
            (PacketType::Ack | PacketType::BinaryAck, SocketPhase::Connected { .. }) => {
                self.on_ack(cx, engine, p);
                After::Nothing
            }
            // Anything else is for a namespace in another state; socket.io-client ignores it too.
            _ => After::Nothing,
        }
    }

    fn on_connect_ack(&mut self, cx: &mut Cx<'_>, engine: &mut Engine, p: Packet, pid_sent: Option<String>) -> After {
        let data = p.data.as_ref().map(|d| d.as_str().to_string()).unwrap_or_default();
        let sid = json::string_member(&data, "sid");
        let Some(sid) = sid else {
            self.connect_error(cx, V2_SERVER.to_string(), None, false, false, None);
            self.deactivate(cx, DisconnectReason::ConnectError);
            return After::Gone;
        };
        let pid = json::string_member(&data, "pid");
        let recovered = pid.is_some() && pid == pid_sent;
        let transport = engine.transport().unwrap_or(TransportKind::WebSocket);
        if !recovered {
            self.offset = None;
        }
        self.pid = pid;
        self.auth_failures = 0;
        self.phase = SocketPhase::Connected { sid: sid.clone(), recovered };
        // Not recovered: what was published meanwhile comes from the feed, if there is one; the
        // socket's events wait for it (docs/RELIABILITY.md, "Catching up from the feed").
        if !recovered && cx.config.feed.is_some() && self.nsp == cx.config.url.namespace {
            self.catch_up_due = true;
            self.held = Some(std::collections::VecDeque::new());
        }
        self.set_state(cx, ConnectionState::Connected { transport, recovered, sid });
        self.sync_rooms(cx, engine, recovered);
        self.flush_buffer(cx, engine);
        self.drain_queue(cx, engine);
        After::Changed
    }

    fn on_connect_error(&mut self, cx: &mut Cx<'_>, p: Packet) -> After {
        let (message, data) = connect_error_of(p.data.as_ref().map(|d| d.as_str()));
        let refresh = self.auth == AuthMode::Provider && !self.auth_refreshed && cx.config.refresh_auth_on_error;
        if refresh && looks_like_auth_failure(&message, data.as_deref()) {
            let id = AuthRequestId(cx.ids.next());
            self.auth_refreshed = true;
            self.phase = SocketPhase::Auth(id);
            self.connect_error(cx, message, data, true, false, None);
            cx.out.push_back(Output::NeedAuth { namespace: self.nsp.clone(), request: id });
            return After::Nothing;
        }
        self.connect_error(cx, message, data, false, false, None);
        self.deactivate(cx, DisconnectReason::ConnectError);
        After::Gone
    }

    fn deliver_event(&mut self, cx: &mut Cx<'_>, inbox: &mut Inbox, p: Packet) {
        let Packet { nsp, id: ack_id, data, attachments, .. } = p;
        let Some(data) = data else { return };
        let maybe_envelope = data.may_be_envelope();
        let Some((name, mut args)) = event_parts(data, attachments) else { return };
        // The offset rule (docs/PROTOCOL.md, "Offsets"): with recovery on (the CONNECT ack had a
        // pid), a socket.io server appends an offset as the last argument of every event that
        // asks for no ack, except volatile ones, and it is always a string. The candidate moves
        // to `offset`; nothing is dropped because of it (see `offset_counts` below).
        let mut offset = None;
        if ack_id.is_none()
            && self.pid.is_some()
            && let Some(last) = args.get(args.len().wrapping_sub(1))
            && last.starts_with('"')
        {
            offset = json::parse_string(last).ok().map(|o| o.into_owned());
            if offset.is_some() {
                args.pop();
            }
        }
        // A socket.io server sends a stored event twice only when a recovering CONNECT asks for
        // what followed an offset, and it sends that replay before the CONNECT ack. So an offset
        // proves a duplicate only then; a volatile event whose last argument merely repeats an
        // earlier one is never dropped.
        let offset_counts = matches!(self.phase, SocketPhase::Connecting { pid_sent: Some(_), .. });
        let socket_offset = match (&offset, &self.pid) {
            (Some(o), Some(pid)) => Some((pid.clone(), o.clone())),
            _ => None,
        };
        // Only object-looking arguments can be envelopes; skip the scan for the rest (and the
        // decoder already knows when there is no `data` key).
        let env = args.get(0).filter(|a| maybe_envelope && a.starts_with('{')).and_then(crate::event::envelope_id);
        // Most events have neither: no allocation for them.
        let mut keys = Vec::new();
        if let Some(o) = &offset {
            keys.push(DedupKey::Offset(o.clone()));
        }
        if let Some(e) = &env {
            keys.push(DedupKey::EnvelopeId(e.clone()));
        }
        if inbox.seen(&keys, offset_counts) {
            return;
        }
        let envelope = if nsp == cx.config.url.namespace { env } else { None };
        let retired = (socket_offset.is_some() || envelope.is_some()).then(|| Retired {
            namespace: nsp.clone(),
            socket_offset,
            envelope,
        });
        let ack = ack_id.map(|id| AckRequest { namespace: nsp.clone(), id });
        let event =
            Event { namespace: nsp, name, args, offset, ack, source: EventSource::Socket, delivery: DeliveryId(0) };
        if let Some(held) = &mut self.held {
            if held.len() < HOLD_MAX {
                held.push_back(Held { event, keys, retired });
                return;
            }
            if retired.as_ref().is_some_and(|r| r.envelope.is_some()) {
                return;
            }
        }
        let mut event = event;
        event.delivery = inbox.admit(keys, retired);
        cx.out.push_back(Output::Event(event));
    }

    fn on_ack(&mut self, cx: &mut Cx<'_>, engine: &mut Engine, p: Packet) {
        let Some(id) = p.id else { return };
        let Some(wait) = self.acks.remove(&id) else { return };
        let args = match p.data {
            Some(d) => {
                let (text, range, elements) = d.into_elements();
                let items = elements.unwrap_or_else(|| json::array_elements_in(&text, range).unwrap_or_default());
                Args::from_parts(text, items, p.attachments)
            }
            None => Args::empty(),
        };
        match wait {
            AckWait::User { emit, .. } => settle(cx, emit, Ok(args)),
            AckWait::Room { room, join, .. } => self.room_done(cx, &room, join, Ok(args)),
            AckWait::Reliable => {
                if let Some(p) = self.outbox.acked(id) {
                    settle(cx, p.emit, Ok(args));
                    self.drain_queue(cx, engine);
                }
            }
        }
    }

    // ---------------------------------------------------------------- packets out

    /// An event packet of ours that a lost session never wrote: an emit that asked for no ack
    /// goes back to the send buffer, to be sent after the next CONNECT ack (in the order it was
    /// made, before later emits). One with an ack is left to its ack (failed with `Disconnected`,
    /// or tried again with `retries`); anything else belonged to the lost session.
    pub(super) fn requeue(&mut self, cx: &mut Cx<'_>, p: Packet) {
        if !self.is_active() || p.id.is_some() || !matches!(p.kind, PacketType::Event | PacketType::BinaryEvent) {
            return;
        }
        let Some((event, args)) = p.data.and_then(|d| event_parts(d, p.attachments)) else { return };
        let emit = EmitId(cx.ids.next());
        let pending = Pending { emit, event, args, ack: false, deadline: None, timeout: None };
        // Full: refused as a new emit made now would be, and reported (drivers log a settled
        // emit nobody waits for), not lost silently.
        if let Err(e) = self.buffer_or_reject(cx, pending, false) {
            settle(cx, emit, Err(e));
        }
    }

    fn send_event(&self, cx: &mut Cx<'_>, engine: &mut Engine, event: &str, args: &Args, ack_id: Option<u64>) {
        let data = event_data(event, args);
        let n = args.attachments().len();
        let kind = if n > 0 { PacketType::BinaryEvent } else { PacketType::Event };
        let text = socketio::encode(kind, &self.nsp, ack_id, Some(&data), n);
        engine.send(cx, text, args.attachments());
    }

    fn too_large(&self, engine: &Engine, event: &str, args: &Args) -> Option<EmitError> {
        let max = engine.max_payload()?;
        // type + attachments + namespace + ack id + JSON, as the server counts it.
        let size = 1 + 4 + self.nsp.len() + 1 + 20 + event.len() + 4 + args.inner_len();
        let att = args.attachments().iter().map(Vec::len).max().unwrap_or(0);
        let biggest = size.max(att);
        (u64::try_from(biggest).unwrap_or(u64::MAX) > max).then_some(EmitError::TooLarge { size: biggest, max })
    }

    pub(super) fn emit(
        &mut self,
        cx: &mut Cx<'_>,
        engine: &mut Engine,
        mut req: EmitRequest,
    ) -> Result<EmitId, EmitRefused> {
        if socketio::RESERVED_EVENTS.contains(&req.event.as_str()) {
            return Err(InvalidEmit::ReservedName(req.event).into());
        }
        req.args.check_placeholders(cx.config.max_attachments).map_err(InvalidEmit::InvalidArgs)?;
        match req.idempotency_key.take() {
            Some(IdempotencyKey::Given(key)) => req.args = with_idempotency_key(&req.args, &key)?,
            Some(IdempotencyKey::New) => req.args = with_idempotency_key(&req.args, &cx.rng.token(20))?,
            None => {}
        }
        if let Some(e) = self.too_large(engine, &req.event, &req.args) {
            return Err(e.into());
        }
        let emit = EmitId(cx.ids.next());
        let connected = self.is_connected();
        let timeout = req.timeout.or(cx.config.ack_timeout);
        if req.volatile {
            if !(connected && engine.writable()) {
                return Err(EmitError::VolatileDropped.into());
            }
            let ack_id = req.ack.then(|| self.register_ack(cx, emit, timeout));
            self.send_event(cx, engine, &req.event, &req.args, ack_id);
            return Ok(emit);
        }
        let deadline = if req.ack { timeout.map(|t| cx.now + t) } else { None };
        let pending = Pending { emit, event: req.event, args: req.args, ack: req.ack, deadline, timeout: req.timeout };
        if cx.config.retries > 0 {
            self.buffer_or_reject(cx, pending, true)?;
            self.drain_queue(cx, engine);
            return Ok(emit);
        }
        if connected {
            self.send_pending(cx, engine, pending);
        } else {
            self.buffer_or_reject(cx, pending, false)?;
        }
        Ok(emit)
    }

    fn register_ack(&mut self, cx: &Cx<'_>, emit: EmitId, timeout: Option<Duration>) -> u64 {
        let deadline = timeout.map(|t| cx.now + t);
        let id = self.take_ack_id();
        self.acks.insert(id, AckWait::User { emit, deadline });
        id
    }

    fn send_pending(&mut self, cx: &mut Cx<'_>, engine: &mut Engine, p: Pending) {
        if let Some(e) = self.too_large(engine, &p.event, &p.args) {
            settle(cx, p.emit, Err(e));
            return;
        }
        let ack_id = p.ack.then(|| {
            let id = self.take_ack_id();
            self.acks.insert(id, AckWait::User { emit: p.emit, deadline: p.deadline });
            id
        });
        self.send_event(cx, engine, &p.event, &p.args, ack_id);
    }

    /// Puts an emit in the send buffer (or the reliable queue), within the configured limits.
    fn buffer_or_reject(&mut self, cx: &mut Cx<'_>, p: Pending, reliable: bool) -> Result<(), EmitError> {
        for emit in self.outbox.push(cx.config.send_buffer, p, reliable)? {
            settle(cx, emit, Err(EmitError::SendBufferFull));
        }
        Ok(())
    }

    fn flush_buffer(&mut self, cx: &mut Cx<'_>, engine: &mut Engine) {
        for p in self.outbox.take_buffered() {
            self.send_pending(cx, engine, p);
        }
    }

    /// At-least-once delivery: one packet in flight, a new ack id per try, order kept.
    fn drain_queue(&mut self, cx: &mut Cx<'_>, engine: &mut Engine) {
        if !self.is_connected() {
            return;
        }
        let Some(head) = self.outbox.next_try() else { return };
        let deadline = cx.now + head.timeout.or(cx.config.ack_timeout).unwrap_or(Duration::from_secs(10));
        let (event, args) = (head.event.clone(), head.args.clone());
        let id = self.take_ack_id();
        self.acks.insert(id, AckWait::Reliable);
        self.outbox.sent(id, deadline);
        self.send_event(cx, engine, &event, &args, Some(id));
    }

    /// Answers a server's ack request.
    pub(super) fn send_ack(&mut self, cx: &mut Cx<'_>, engine: &mut Engine, req: &AckRequest, args: Args) {
        if !self.is_connected() {
            return;
        }
        let n = args.attachments().len();
        let kind = if n > 0 { PacketType::BinaryAck } else { PacketType::Ack };
        let text = socketio::encode(kind, &req.namespace, Some(req.id), Some(&args.to_json_array()), n);
        engine.send(cx, text, args.attachments());
    }

    // ---------------------------------------------------------------- rooms

    /// Joins (or leaves) `room`; answered by one [`Output::Room`] carrying the returned id.
    pub(super) fn room(&mut self, cx: &mut Cx<'_>, engine: &mut Engine, room: &str, join: bool) -> RoomRequestId {
        let id = RoomRequestId(cx.ids.next());
        self.room_requests.push((id, room.to_string(), join));
        let changed = if join { self.rooms.insert(room.to_string()) } else { self.rooms.remove(room) };
        if self.is_connected() {
            self.send_room(cx, engine, room, join);
            return id;
        }
        // Disconnected: remember the change for the next connection, and answer every request
        // that will never reach the server, so no caller waits forever.
        let mut done = Vec::new();
        match (changed, self.unsynced.get(room).copied()) {
            // The opposite change was still waiting: they cancel out; both are done.
            (true, Some(pending)) if pending != join => {
                self.unsynced.remove(room);
                done.push(pending);
                done.push(join);
            }
            (true, _) => {
                self.unsynced.insert(room.to_string(), join);
            }
            // The same change is already waiting: its answer will serve this request too.
            (false, Some(pending)) if pending == join => {}
            // Already so (joined, or never joined): nothing to send.
            (false, _) => done.push(join),
        }
        for join in done {
            self.room_done(cx, room, join, Ok(Args::empty()));
        }
        id
    }

    /// Answers every open request to join (or leave) `room` with `result`; with none open, says
    /// it anyway (the client's own re-join after a reconnect).
    fn room_done(&mut self, cx: &mut Cx<'_>, room: &str, join: bool, result: Result<Args, EmitError>) {
        // One `Output::Room` built in one place: each open request in turn, or `None` when there
        // was none. The search starts over after each removal, which finds the requests in the
        // order a single pass with `swap_remove` would.
        let mut answered = false;
        loop {
            let open = self.room_requests.iter().position(|(_, r, j)| *j == join && r == room);
            let request = match open {
                Some(i) => Some(self.room_requests.swap_remove(i).0),
                None if answered => return,
                None => None,
            };
            answered = true;
            let (namespace, room) = (self.nsp.clone(), room.to_string());
            cx.out.push_back(Output::Room { request, namespace, room, join, result: result.clone() });
            if request.is_none() {
                return;
            }
        }
    }

    fn send_room(&mut self, cx: &mut Cx<'_>, engine: &mut Engine, room: &str, join: bool) {
        let deadline = cx.now + cx.config.ack_timeout.unwrap_or(ROOM_ACK_TIMEOUT);
        let events = &cx.config.room_events;
        let event = if join { events.join.clone() } else { events.leave.clone() };
        // `[<room as a JSON string>]`: valid by construction, so its one element is known.
        let mut text = String::from("[");
        json::write_string(&mut text, room);
        text.push(']');
        let end = text.len() - 1;
        #[allow(clippy::single_range_in_vec_init)] // one element: the range of the literal
        let args = Args::from_parts(text, vec![1..end], Vec::new());
        let id = self.take_ack_id();
        self.acks.insert(id, AckWait::Room { room: room.to_string(), join, deadline });
        self.send_event(cx, engine, &event, &args, Some(id));
    }

    fn sync_rooms(&mut self, cx: &mut Cx<'_>, engine: &mut Engine, recovered: bool) {
        let unsynced = std::mem::take(&mut self.unsynced);
        if recovered {
            for (room, join) in unsynced {
                self.send_room(cx, engine, &room, join);
            }
            return;
        }
        // A new session is in no room: a leave made while disconnected is done already.
        for (room, join) in unsynced {
            if !join {
                self.room_done(cx, &room, false, Ok(Args::empty()));
            }
        }
        let rooms: Vec<String> = self.rooms.iter().cloned().collect();
        for room in rooms {
            self.send_room(cx, engine, &room, true);
        }
    }

    // ---------------------------------------------------------------- timers

    /// Whatever is due at `cx.now`: an auth retry, a CONNECT never answered, acks and buffered
    /// emits that timed out, the next try of a reliable emit.
    pub(super) fn timeouts(&mut self, cx: &mut Cx<'_>, engine: &mut Engine) -> After {
        let now = cx.now;
        if matches!(self.phase, SocketPhase::AuthRetry { deadline } if deadline <= now) {
            self.begin_connect(cx, engine);
        }
        if matches!(self.phase, SocketPhase::Connecting { deadline, .. } if deadline <= now) {
            // The namespace never answered: treat the connection as broken and start over.
            return After::Broken(Fault::NamespaceTimeout(self.nsp.clone()));
        }
        let expired: Vec<u64> = self
            .acks
            .iter()
            .filter(|(_, a)| match a {
                AckWait::User { deadline, .. } => deadline.is_some_and(|d| d <= now),
                AckWait::Room { deadline, .. } => *deadline <= now,
                AckWait::Reliable => false,
            })
            .map(|(id, _)| *id)
            .collect();
        let mut rooms = Vec::new();
        for id in expired {
            match self.acks.remove(&id) {
                Some(AckWait::User { emit, .. }) => settle(cx, emit, Err(EmitError::Timeout)),
                Some(AckWait::Room { room, join, .. }) => rooms.push((room, join)),
                _ => {}
            }
        }
        let expired = self.outbox.expire(now, cx.config.retries);
        for emit in expired.emits {
            settle(cx, emit, Err(EmitError::Timeout));
        }
        if let Some(id) = expired.ack {
            self.acks.remove(&id);
        }
        for (room, join) in rooms {
            self.room_done(cx, &room, join, Err(EmitError::Timeout));
        }
        if expired.resend {
            self.drain_queue(cx, engine);
        }
        After::Nothing
    }
}

/// Adds `"idempotencyKey":KEY` as the first member of the first argument, which must be an object.
fn with_idempotency_key(args: &Args, key: &str) -> Result<Args, InvalidEmit> {
    let first = args.get(0).filter(|a| a.starts_with('{')).ok_or(InvalidEmit::IdempotencyKeyNeedsObject)?;
    // The array text written directly (what `Args::from_values` would join).
    let mut text = String::with_capacity(args.inner_len() + key.len() + 22);
    text.push_str("[{\"idempotencyKey\":");
    json::write_string(&mut text, key);
    // Valid JSON: only JSON whitespace can follow the brace.
    let rest = first.get(json::skip_ws(first.as_bytes(), 1)..).unwrap_or("}");
    if !rest.starts_with('}') {
        text.push(',');
    }
    text.push_str(rest);
    for value in args.iter().skip(1) {
        text.push(',');
        text.push_str(value);
    }
    text.push(']');
    Args::from_json_array(text, args.attachments().to_vec()).map_err(InvalidEmit::InvalidArgs)
}

/// An event packet's name and arguments (the name is not one of the arguments).
fn event_parts(data: socketio::RawJson, attachments: Vec<Vec<u8>>) -> Option<(String, Args)> {
    let (text, range, elements) = data.into_elements();
    let mut items = match elements {
        Some(items) => items,
        None => json::array_elements_in(&text, range)?,
    };
    if items.is_empty() {
        return None;
    }
    let name_range = items.remove(0);
    let name_raw = text.get(name_range).unwrap_or_default();
    let name = match json::parse_string(name_raw) {
        Ok(n) => n.into_owned(),
        Err(_) => name_raw.to_string(),
    };
    Some((name, Args::from_parts(text, items, attachments)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_data_orders_pid_offset_then_auth() {
        assert_eq!(connect_data(None, None, None), None);
        assert_eq!(connect_data(None, None, Some(r#"{"token":"abc"}"#)).as_deref(), Some(r#"{"token":"abc"}"#));
        assert_eq!(
            connect_data(Some("P"), Some("O"), Some(r#"{"token":"t1"}"#)).as_deref(),
            Some(r#"{"pid":"P","offset":"O","token":"t1"}"#)
        );
        assert_eq!(connect_data(Some("P"), None, None).as_deref(), Some(r#"{"pid":"P"}"#));
        // auth keys override pid/offset in place, as Object.assign does
        assert_eq!(
            connect_data(Some("P"), Some("O"), Some(r#"{"offset":"mine","a":1}"#)).as_deref(),
            Some(r#"{"pid":"P","offset":"mine","a":1}"#)
        );
    }

    #[test]
    fn connect_error_payloads() {
        assert_eq!(
            connect_error_of(Some(r#"{"message":"not authorized","data":{"code":42}}"#)),
            ("not authorized".to_string(), Some(r#"{"code":42}"#.to_string()))
        );
        assert_eq!(connect_error_of(Some(r#""nope""#)), ("nope".to_string(), None));
        assert!(looks_like_auth_failure("invalid token", None));
        assert!(!looks_like_auth_failure("Invalid namespace", None));
    }

    #[test]
    fn idempotency_key_goes_first() {
        let args = Args::from_json_array(r#"[{"a":1},2]"#.to_string(), vec![]).unwrap();
        assert_eq!(with_idempotency_key(&args, "k").unwrap().to_json_array(), r#"[{"idempotencyKey":"k","a":1},2]"#);
        let empty = Args::from_json_array(r#"[{}]"#.to_string(), vec![]).unwrap();
        assert_eq!(with_idempotency_key(&empty, "k").unwrap().to_json_array(), r#"[{"idempotencyKey":"k"}]"#);
        let bad = Args::from_json_array(r#"[1]"#.to_string(), vec![]).unwrap();
        assert_eq!(with_idempotency_key(&bad, "k"), Err(InvalidEmit::IdempotencyKeyNeedsObject));
    }
}
