//! Namespaces: CONNECT with auth and recovery, emits, acks, retries, buffers, rooms, event delivery.

use std::collections::VecDeque;

use crate::vecmap::{VecMap, VecSet};
use std::time::Duration;

use super::inbox::Retired;
use super::{
    AckRequest, AuthRequestId, Client, CommandError, ConnectError, ConnectionState, DisconnectReason, EmitError,
    EmitId, EmitRequest, Event, EventSource, IdempotencyKey, Output, RoomRequestId,
};
use crate::args::Args;
use crate::config::{AuthMode, OverflowPolicy, TransportKind};
use crate::dedup::DedupKey;
use crate::engineio::Packet as EioPacket;
use crate::json::{self, JsonKind};
use crate::socketio::{self, Packet, PacketType};
use crate::time::Instant;

const V2_SERVER: &str = "It seems you are trying to reach a Socket.IO server in v2.x with a v3.x client, but they are not compatible (more information here: https://socket.io/docs/v3/migrating-from-2-x-to-3-0/)";

/// Room acks wait this long when no `ack_timeout` is configured.
const ROOM_ACK_TIMEOUT: Duration = Duration::from_secs(10);

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
    buffer: VecDeque<Pending>,
    buffer_bytes: usize,
    queue: VecDeque<Reliable>,
    pub(super) rooms: VecSet<String>,
    /// Room changes made while not connected, to send after a recovered reconnect.
    unsynced: VecMap<String, bool>,
    /// Failures of the auth provider in a row (the backoff attempt of the next retry).
    auth_failures: u32,
    /// Room requests not answered yet: (id, room, join).
    room_requests: Vec<(RoomRequestId, String, bool)>,
    auth_refreshed: bool,
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
struct Pending {
    emit: EmitId,
    event: String,
    args: Args,
    ack: bool,
    deadline: Option<Instant>,
    /// The emit's own ack timeout; with retries, each try waits this long.
    timeout: Option<Duration>,
}

#[derive(Debug)]
struct Reliable {
    p: Pending,
    tries: u32,
    in_flight: Option<(u64, Instant)>,
}

#[derive(Debug)]
enum AckWait {
    User { emit: EmitId, deadline: Option<Instant> },
    Reliable,
    Room { room: String, join: bool, deadline: Instant },
}

impl Socket {
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
            buffer: VecDeque::new(),
            buffer_bytes: 0,
            queue: VecDeque::new(),
            rooms: VecSet::new(),
            unsynced: VecMap::new(),
            room_requests: Vec::new(),
            auth_failures: 0,
            auth_refreshed: false,
        }
    }

    pub(super) fn is_connected(&self) -> bool {
        matches!(self.phase, SocketPhase::Connected { .. })
    }

    pub(super) fn is_active(&self) -> bool {
        self.phase != SocketPhase::Inactive
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
        self.buffer.len() + self.queue.len()
    }

    pub(super) fn pending_acks(&self) -> usize {
        self.acks.len()
    }

    fn take_ack_id(&mut self) -> u64 {
        let id = self.next_ack;
        self.next_ack = self.next_ack.wrapping_add(1);
        id
    }

    fn deadline(&self) -> Option<Instant> {
        let phase = match &self.phase {
            SocketPhase::Connecting { deadline, .. } | SocketPhase::AuthRetry { deadline } => Some(*deadline),
            _ => None,
        };
        let acks = self.acks.values().filter_map(|a| match a {
            AckWait::User { deadline, .. } => *deadline,
            AckWait::Room { deadline, .. } => Some(*deadline),
            AckWait::Reliable => None,
        });
        let buffered = self.buffer.iter().filter_map(|p| p.deadline);
        let reliable = self.queue.front().and_then(|r| r.in_flight.map(|(_, d)| d));
        phase.into_iter().chain(acks).chain(buffered).chain(reliable).min()
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
    let mut written = VecSet::new();
    if pid.is_some() {
        written.insert("pid");
        if offset.is_some() {
            written.insert("offset");
        }
    }
    if let Some((a, m)) = &members {
        for (k, r) in m {
            if written.contains(k.as_ref()) {
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
    let hay = format!("{message} {}", data.unwrap_or_default()).to_ascii_lowercase();
    ["auth", "token", "jwt", "expired", "unauthori", "forbidden", "credential", "401", "403"]
        .iter()
        .any(|w| hay.contains(w))
}

/// The string member `key` of a JSON object text.
fn string_member(obj: &str, key: &str) -> Option<String> {
    let members = json::object_members(obj).ok()?;
    let (_, r) = members.into_iter().rev().find(|(k, _)| k == key)?;
    let raw = obj.get(r)?;
    json::parse_string(raw).ok().map(|s| s.into_owned())
}

impl Client {
    fn sock(&mut self, nsp: &str) -> Option<&mut Socket> {
        self.sockets.get_mut(nsp)
    }

    fn set_state(&mut self, nsp: &str, state: ConnectionState) {
        let Some(s) = self.sockets.get_mut(nsp) else { return };
        if s.reported.as_ref() == Some(&state) {
            return;
        }
        s.reported = Some(state.clone());
        self.push(Output::State { namespace: nsp.to_string(), state });
    }

    fn names(&self, pred: impl Fn(&Socket) -> bool) -> Vec<String> {
        self.sockets.values().filter(|s| pred(s)).map(|s| s.nsp.clone()).collect()
    }

    pub(super) fn any_active(&self) -> bool {
        self.sockets.values().any(Socket::is_active)
    }

    pub(super) fn sockets_deadline(&self) -> Option<Instant> {
        self.sockets.values().filter_map(Socket::deadline).min()
    }

    // ---------------------------------------------------------------- lifecycle

    pub(super) fn activate(&mut self, nsp: &str) {
        let Some(s) = self.sock(nsp) else { return };
        if s.phase != SocketPhase::Inactive {
            return;
        }
        s.phase = SocketPhase::Waiting;
        self.set_state(nsp, ConnectionState::Connecting);
        if self.engine.is_open() {
            self.begin_connect(nsp);
        } else {
            self.ensure_engine();
        }
        self.update_feed();
    }

    pub(super) fn sockets_connecting(&mut self) {
        for n in self.names(Socket::is_active) {
            self.set_state(&n, ConnectionState::Connecting);
        }
    }

    pub(super) fn sockets_engine_open(&mut self) {
        for n in self.names(|s| s.phase == SocketPhase::Waiting) {
            self.begin_connect(&n);
        }
    }

    fn begin_connect(&mut self, nsp: &str) {
        let id = AuthRequestId(self.next_id());
        let Some(s) = self.sock(nsp) else { return };
        s.auth_refreshed = false;
        match s.auth.clone() {
            AuthMode::None => self.send_connect(nsp, None),
            AuthMode::Static(a) => {
                if nsp == self.config.url.namespace {
                    self.feed.token = super::feed::token_of(&a);
                }
                self.send_connect(nsp, Some(a));
            }
            AuthMode::Provider => {
                s.phase = SocketPhase::Auth(id);
                self.push(Output::NeedAuth { namespace: nsp.to_string(), request: id });
            }
        }
    }

    pub(super) fn send_connect(&mut self, nsp: &str, auth: Option<String>) {
        if !self.engine.is_open() {
            if let Some(s) = self.sock(nsp) {
                s.phase = SocketPhase::Waiting;
            }
            return;
        }
        let deadline = self.now + self.config.namespace_timeout;
        let Some(s) = self.sock(nsp) else { return };
        let data = connect_data(s.pid.as_deref(), s.offset.as_deref(), auth.as_deref());
        s.phase = SocketPhase::Connecting { pid_sent: s.pid.clone(), deadline };
        let text = socketio::encode(PacketType::Connect, nsp, None, data.as_deref(), 0);
        self.engine_send(EioPacket::Message(text.into()));
    }

    /// The driver could not get auth for `nsp`'s CONNECT: say so, and ask again after the
    /// reconnect backoff (the engine stays open for the other namespaces). Connecting without
    /// auth instead could give an anonymous session the application never asked for.
    pub(super) fn socket_auth_failed(&mut self, nsp: &str, message: &str) {
        let Some(s) = self.sockets.get(nsp) else { return };
        let attempt = s.auth_failures;
        let reconnect = &self.config.reconnect;
        let give_up = !reconnect.enabled || reconnect.max_attempts.is_some_and(|max| attempt >= max);
        let message = ["the auth provider failed: ", message].concat();
        let error = ConnectError { message, data: None, will_retry: !give_up, fallback_pending: false };
        self.push(Output::ConnectError { namespace: nsp.to_string(), error });
        if give_up {
            self.deactivate(nsp, DisconnectReason::ConnectError);
            self.close_engine_if_unused();
            self.update_feed();
            return;
        }
        let delay = self.config.reconnect.backoff.delay_ms(attempt, &mut self.rng);
        let deadline = self.now.plus_millis(delay);
        if let Some(s) = self.sock(nsp) {
            s.auth_failures = attempt.saturating_add(1);
            s.phase = SocketPhase::AuthRetry { deadline };
        }
    }

    pub(super) fn sockets_engine_closed(&mut self, reason: DisconnectReason) {
        for n in self.names(|s| {
            matches!(
                s.phase,
                SocketPhase::Connected { .. }
                    | SocketPhase::Connecting { .. }
                    | SocketPhase::Auth(_)
                    | SocketPhase::AuthRetry { .. }
            )
        }) {
            let was_connected = self.sockets.get(&n).is_some_and(Socket::is_connected);
            if let Some(s) = self.sock(&n) {
                s.phase = SocketPhase::Waiting;
            }
            self.fail_sent_acks(&n);
            if was_connected {
                self.set_state(&n, ConnectionState::Disconnected { reason });
            }
        }
        self.update_feed();
    }

    pub(super) fn sockets_give_up(&mut self, reason: DisconnectReason) {
        for n in self.names(Socket::is_active) {
            self.deactivate(&n, reason);
        }
        self.update_feed();
    }

    pub(super) fn sockets_connect_error(&mut self, message: &str, will_retry: bool, fallback_pending: bool) {
        for n in self.names(Socket::is_active) {
            let error = ConnectError { message: message.to_string(), data: None, will_retry, fallback_pending };
            self.push(Output::ConnectError { namespace: n, error });
        }
    }

    pub(super) fn sockets_state(&mut self, state: ConnectionState) {
        for n in self.names(Socket::is_active) {
            self.set_state(&n, state.clone());
        }
    }

    pub(super) fn sockets_transport_changed(&mut self, transport: TransportKind) {
        for s in self.sockets.values_mut() {
            if let SocketPhase::Connected { sid, recovered } = &s.phase {
                let state = ConnectionState::Connected { transport, recovered: *recovered, sid: sid.clone() };
                s.reported = Some(state.clone());
                self.outputs.push_back(Output::State { namespace: s.nsp.clone(), state });
            }
        }
    }

    /// Makes a namespace inactive for good and fails everything it still holds.
    fn deactivate(&mut self, nsp: &str, reason: DisconnectReason) {
        let Some(s) = self.sock(nsp) else { return };
        if s.phase == SocketPhase::Inactive {
            return;
        }
        s.phase = SocketPhase::Inactive;
        let buffered: Vec<Pending> = Vec::from(std::mem::take(&mut s.buffer));
        let queued: Vec<Reliable> = Vec::from(std::mem::take(&mut s.queue));
        s.buffer_bytes = 0;
        if reason != DisconnectReason::ReconnectFailed {
            // Neither a client nor a server disconnect keeps a session to recover.
            s.pid = None;
            s.offset = None;
        }
        // Room changes waiting for a connection stay remembered for a later `connect`, but their
        // callers are told now.
        let waiting: Vec<(String, bool)> = s.unsynced.iter().map(|(r, j)| (r.clone(), *j)).collect();
        self.fail_sent_acks(nsp);
        for (room, join) in waiting {
            self.room_done(nsp, &room, join, Err(EmitError::Disconnected));
        }
        for p in buffered.into_iter().chain(queued.into_iter().map(|r| r.p)) {
            self.push(Output::Settled { emit: p.emit, result: Err(EmitError::Disconnected) });
        }
        self.set_state(nsp, ConnectionState::Disconnected { reason });
    }

    /// Acks of packets already sent can no longer come: fail them. Reliable emits stay queued.
    fn fail_sent_acks(&mut self, nsp: &str) {
        let Some(s) = self.sock(nsp) else { return };
        let acks = std::mem::take(&mut s.acks);
        if let Some(head) = s.queue.front_mut() {
            head.in_flight = None;
        }
        for (_, a) in acks {
            match a {
                AckWait::User { emit, .. } => self.push(Output::Settled { emit, result: Err(EmitError::Disconnected) }),
                AckWait::Room { room, join, .. } => self.room_done(nsp, &room, join, Err(EmitError::Disconnected)),
                AckWait::Reliable => {}
            }
        }
    }

    pub(super) fn socket_client_disconnect(&mut self, nsp: &str) {
        let Some(s) = self.sockets.get(nsp) else { return };
        if matches!(s.phase, SocketPhase::Connected { .. } | SocketPhase::Connecting { .. }) {
            let text = socketio::encode(PacketType::Disconnect, nsp, None, None, 0);
            self.engine_send(EioPacket::Message(text.into()));
        }
        self.deactivate(nsp, DisconnectReason::IoClientDisconnect);
    }

    // ---------------------------------------------------------------- packets in

    pub(super) fn socket_packet(&mut self, p: Packet) {
        let Some(s) = self.sockets.get(&p.nsp) else { return };
        if matches!(p.kind, PacketType::Event | PacketType::BinaryEvent) {
            // The hot path: no copy of the phase or the namespace.
            if matches!(s.phase, SocketPhase::Connected { .. } | SocketPhase::Connecting { .. }) {
                // Recovered events arrive before the CONNECT ack; delivering them at once keeps
                // socket.io-client's order (missed events first, then `connect`).
                self.deliver_event(p);
            }
            return;
        }
        let phase = s.phase.clone();
        let nsp = p.nsp.clone();
        match (p.kind, phase) {
            (PacketType::Connect, SocketPhase::Connecting { pid_sent, .. }) => self.on_connect_ack(&nsp, p, pid_sent),
            (PacketType::ConnectError, SocketPhase::Connecting { .. }) => self.on_connect_error(&nsp, p),
            (PacketType::Disconnect, SocketPhase::Connected { .. } | SocketPhase::Connecting { .. }) => {
                self.deactivate(&nsp, DisconnectReason::IoServerDisconnect);
                self.close_engine_if_unused();
                self.update_feed();
            }
            (PacketType::Ack | PacketType::BinaryAck, SocketPhase::Connected { .. }) => self.on_ack(&nsp, p),
            // Anything else is for a namespace in another state; socket.io-client ignores it too.
            _ => {}
        }
    }

    fn on_connect_ack(&mut self, nsp: &str, p: Packet, pid_sent: Option<String>) {
        let data = p.data.as_ref().map(|d| d.as_str().to_string()).unwrap_or_default();
        let sid = string_member(&data, "sid");
        let Some(sid) = sid else {
            let error =
                ConnectError { message: V2_SERVER.to_string(), data: None, will_retry: false, fallback_pending: false };
            self.push(Output::ConnectError { namespace: nsp.to_string(), error });
            self.deactivate(nsp, DisconnectReason::ConnectError);
            self.close_engine_if_unused();
            return;
        };
        let pid = string_member(&data, "pid");
        let recovered = pid.is_some() && pid == pid_sent;
        let transport = self.engine.transport().unwrap_or(TransportKind::WebSocket);
        let Some(s) = self.sock(nsp) else { return };
        if !recovered {
            s.offset = None;
        }
        s.pid = pid;
        s.auth_failures = 0;
        s.phase = SocketPhase::Connected { sid: sid.clone(), recovered };
        self.set_state(nsp, ConnectionState::Connected { transport, recovered, sid });
        self.sync_rooms(nsp, recovered);
        self.flush_buffer(nsp);
        self.drain_queue(nsp);
        self.update_feed();
    }

    fn on_connect_error(&mut self, nsp: &str, p: Packet) {
        let (message, data) = connect_error_of(p.data.as_ref().map(|d| d.as_str()));
        let Some(s) = self.sock(nsp) else { return };
        let refresh = s.auth == AuthMode::Provider && !s.auth_refreshed && self.config.refresh_auth_on_error;
        if refresh && looks_like_auth_failure(&message, data.as_deref()) {
            let id = AuthRequestId(self.ids.next());
            if let Some(s) = self.sock(nsp) {
                s.auth_refreshed = true;
                s.phase = SocketPhase::Auth(id);
            }
            let error = ConnectError { message, data, will_retry: true, fallback_pending: false };
            self.push(Output::ConnectError { namespace: nsp.to_string(), error });
            self.push(Output::NeedAuth { namespace: nsp.to_string(), request: id });
            return;
        }
        let error = ConnectError { message, data, will_retry: false, fallback_pending: false };
        self.push(Output::ConnectError { namespace: nsp.to_string(), error });
        self.deactivate(nsp, DisconnectReason::ConnectError);
        self.close_engine_if_unused();
        self.update_feed();
    }

    fn deliver_event(&mut self, p: Packet) {
        let Packet { nsp, id: ack_id, data, attachments, .. } = p;
        let Some(data) = data else { return };
        let maybe_envelope = data.may_be_envelope();
        let (text, range, elements) = data.into_elements();
        let mut items = match elements {
            Some(items) => items,
            None => {
                let start = range.start;
                let Some(slice) = text.get(range) else { return };
                let Ok(items) = json::array_elements(slice) else { return };
                items.into_iter().map(|r| r.start + start..r.end + start).collect()
            }
        };
        if items.is_empty() {
            return;
        }
        let name_range = items.remove(0);
        let name_raw = text.get(name_range).unwrap_or_default();
        let name = match json::parse_string(name_raw) {
            Ok(n) => n.into_owned(),
            Err(_) => name_raw.to_string(),
        };
        let mut args = Args::from_parts(text, items, attachments);
        let Some(s) = self.sockets.get(&nsp) else { return };
        // The offset rule (docs/PROTOCOL.md, "Offsets"): with recovery on (the CONNECT ack had a
        // pid), a socket.io server appends an offset as the last argument of every event that
        // asks for no ack, except volatile ones, and it is always a string. The candidate moves
        // to `offset`; nothing is dropped because of it (see `offset_counts` below).
        let mut offset = None;
        if ack_id.is_none()
            && s.pid.is_some()
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
        let offset_counts = matches!(s.phase, SocketPhase::Connecting { pid_sent: Some(_), .. });
        let socket_offset = match (&offset, &s.pid) {
            (Some(o), Some(pid)) => Some((pid.clone(), o.clone())),
            _ => None,
        };
        // Only object-looking arguments can be envelopes; skip the scan for the rest (and the
        // decoder already knows when there is no `data` key).
        let env = args.get(0).filter(|a| maybe_envelope && a.starts_with('{')).and_then(crate::event::envelope_id);
        let keys: Vec<DedupKey> = offset
            .iter()
            .map(|o| DedupKey::Offset(o.clone()))
            .chain(env.iter().cloned().map(DedupKey::EnvelopeId))
            .collect();
        if self.inbox.seen(&keys, offset_counts) {
            return;
        }
        let envelope = if nsp == self.config.url.namespace { env } else { None };
        let retired = (socket_offset.is_some() || envelope.is_some()).then(|| Retired {
            namespace: nsp.clone(),
            socket_offset,
            envelope,
        });
        let delivery = self.inbox.admit(keys, retired);
        let ack = ack_id.map(|id| AckRequest { namespace: nsp.clone(), id });
        self.push(Output::Event(Event {
            namespace: nsp,
            name,
            args,
            offset,
            ack,
            source: EventSource::Socket,
            delivery,
        }));
    }

    fn on_ack(&mut self, nsp: &str, p: Packet) {
        let Some(id) = p.id else { return };
        let Some(s) = self.sock(nsp) else { return };
        let Some(wait) = s.acks.remove(&id) else { return };
        let args = match p.data {
            Some(d) => {
                let (text, range, elements) = d.into_elements();
                let items = elements.unwrap_or_else(|| {
                    let start = range.start;
                    let items = text.get(range).and_then(|t| json::array_elements(t).ok()).unwrap_or_default();
                    items.into_iter().map(|r| r.start + start..r.end + start).collect()
                });
                Args::from_parts(text, items, p.attachments)
            }
            None => Args::empty(),
        };
        match wait {
            AckWait::User { emit, .. } => self.push(Output::Settled { emit, result: Ok(args) }),
            AckWait::Room { room, join, .. } => self.room_done(nsp, &room, join, Ok(args)),
            AckWait::Reliable => {
                let head = s.queue.front().and_then(|r| r.in_flight).map(|(a, _)| a);
                if head == Some(id) {
                    if let Some(r) = s.queue.pop_front() {
                        s.buffer_bytes = s.buffer_bytes.saturating_sub(r.p.args.byte_size() + r.p.event.len());
                        self.push(Output::Settled { emit: r.p.emit, result: Ok(args) });
                    }
                    self.drain_queue(nsp);
                }
            }
        }
    }

    // ---------------------------------------------------------------- packets out

    fn send_event(&mut self, nsp: &str, event: &str, args: &Args, ack_id: Option<u64>) {
        let data = event_data(event, args);
        let n = args.attachments().len();
        let kind = if n > 0 { PacketType::BinaryEvent } else { PacketType::Event };
        let text = socketio::encode(kind, nsp, ack_id, Some(&data), n);
        let attachments = args.attachments().iter().map(|a| EioPacket::Binary(a.clone().into()));
        self.engine_send_all(std::iter::once(EioPacket::Message(text.into())).chain(attachments));
    }

    fn too_large(&self, nsp: &str, event: &str, args: &Args) -> Option<EmitError> {
        let max = self.engine.max_payload()?;
        // type + attachments + namespace + ack id + JSON, as the server counts it.
        let size = 1 + 4 + nsp.len() + 1 + 20 + event.len() + 4 + args.inner_len();
        let att = args.attachments().iter().map(Vec::len).max().unwrap_or(0);
        let biggest = size.max(att);
        (u64::try_from(biggest).unwrap_or(u64::MAX) > max).then_some(EmitError::TooLarge { size: biggest, max })
    }

    pub(super) fn socket_emit(&mut self, mut req: EmitRequest) -> Result<EmitId, EmitError> {
        let nsp = req.namespace.clone();
        if !self.sockets.contains_key(&nsp) {
            return Err(EmitError::UnknownNamespace(nsp));
        }
        if socketio::RESERVED_EVENTS.contains(&req.event.as_str()) {
            return Err(EmitError::ReservedName(req.event));
        }
        req.args.check_placeholders(self.config.max_attachments).map_err(EmitError::InvalidArgs)?;
        match req.idempotency_key.take() {
            Some(IdempotencyKey::Given(key)) => req.args = with_idempotency_key(&req.args, &key)?,
            Some(IdempotencyKey::New) => req.args = with_idempotency_key(&req.args, &self.rng.token(20))?,
            None => {}
        }
        if let Some(e) = self.too_large(&nsp, &req.event, &req.args) {
            return Err(e);
        }
        let emit = EmitId(self.next_id());
        let connected = self.sockets.get(&nsp).is_some_and(Socket::is_connected);
        let timeout = req.timeout.or(self.config.ack_timeout);
        if req.volatile {
            if !(connected && self.engine.writable()) {
                return Err(EmitError::VolatileDropped);
            }
            let ack_id = req.ack.then(|| self.register_ack(&nsp, emit, timeout));
            self.send_event(&nsp, &req.event, &req.args, ack_id.flatten());
            return Ok(emit);
        }
        let deadline = if req.ack { timeout.map(|t| self.now + t) } else { None };
        let pending = Pending { emit, event: req.event, args: req.args, ack: req.ack, deadline, timeout: req.timeout };
        if self.config.retries > 0 {
            self.buffer_or_reject(&nsp, pending, true)?;
            self.drain_queue(&nsp);
            return Ok(emit);
        }
        if connected {
            self.send_pending(&nsp, pending);
        } else {
            self.buffer_or_reject(&nsp, pending, false)?;
        }
        Ok(emit)
    }

    fn register_ack(&mut self, nsp: &str, emit: EmitId, timeout: Option<Duration>) -> Option<u64> {
        let deadline = timeout.map(|t| self.now + t);
        let s = self.sock(nsp)?;
        let id = s.take_ack_id();
        s.acks.insert(id, AckWait::User { emit, deadline });
        Some(id)
    }

    fn send_pending(&mut self, nsp: &str, p: Pending) {
        if let Some(e) = self.too_large(nsp, &p.event, &p.args) {
            self.push(Output::Settled { emit: p.emit, result: Err(e) });
            return;
        }
        let ack_id = if p.ack {
            let Some(s) = self.sock(nsp) else { return };
            let id = s.take_ack_id();
            s.acks.insert(id, AckWait::User { emit: p.emit, deadline: p.deadline });
            Some(id)
        } else {
            None
        };
        self.send_event(nsp, &p.event, &p.args, ack_id);
    }

    /// Puts an emit in the send buffer (or the reliable queue), within the configured limits.
    fn buffer_or_reject(&mut self, nsp: &str, p: Pending, reliable: bool) -> Result<(), EmitError> {
        let limits = self.config.send_buffer;
        let size = p.args.byte_size() + p.event.len();
        let Some(s) = self.sock(nsp) else { return Err(EmitError::UnknownNamespace(nsp.to_string())) };
        let mut dropped = Vec::new();
        loop {
            let count = s.buffer.len() + s.queue.len();
            if count < limits.max_packets && s.buffer_bytes + size <= limits.max_bytes {
                break;
            }
            if limits.overflow == OverflowPolicy::Reject || count == 0 {
                return Err(EmitError::SendBufferFull);
            }
            // Drop the oldest that is not on the wire.
            let victim = if s.buffer.is_empty() {
                let in_flight = s.queue.front().is_some_and(|r| r.in_flight.is_some());
                let idx = usize::from(in_flight);
                if idx >= s.queue.len() {
                    return Err(EmitError::SendBufferFull);
                }
                s.queue.remove(idx).map(|r| r.p)
            } else {
                s.buffer.pop_front()
            };
            if let Some(v) = victim {
                s.buffer_bytes = s.buffer_bytes.saturating_sub(v.args.byte_size() + v.event.len());
                dropped.push(v.emit);
            }
        }
        s.buffer_bytes += size;
        if reliable {
            s.queue.push_back(Reliable { p, tries: 0, in_flight: None });
        } else {
            s.buffer.push_back(p);
        }
        for emit in dropped {
            self.push(Output::Settled { emit, result: Err(EmitError::SendBufferFull) });
        }
        Ok(())
    }

    fn flush_buffer(&mut self, nsp: &str) {
        let Some(s) = self.sock(nsp) else { return };
        let buffered: Vec<Pending> = Vec::from(std::mem::take(&mut s.buffer));
        for p in buffered {
            if let Some(s) = self.sock(nsp) {
                s.buffer_bytes = s.buffer_bytes.saturating_sub(p.args.byte_size() + p.event.len());
            }
            self.send_pending(nsp, p);
        }
    }

    /// At-least-once delivery: one packet in flight, a new ack id per try, order kept.
    fn drain_queue(&mut self, nsp: &str) {
        let (now, default_timeout) = (self.now, self.config.ack_timeout);
        let Some(s) = self.sockets.get_mut(nsp) else { return };
        if !s.is_connected() {
            return;
        }
        let Some(head) = s.queue.front_mut() else { return };
        if head.in_flight.is_some() {
            return;
        }
        let deadline = now + head.p.timeout.or(default_timeout).unwrap_or(Duration::from_secs(10));
        let id = s.next_ack;
        s.next_ack = s.next_ack.wrapping_add(1);
        head.in_flight = Some((id, deadline));
        s.acks.insert(id, AckWait::Reliable);
        let (event, args) = (head.p.event.clone(), head.p.args.clone());
        self.send_event(nsp, &event, &args, Some(id));
    }

    pub(super) fn socket_send_ack(&mut self, req: &AckRequest, args: Args) {
        if !self.sockets.get(&req.namespace).is_some_and(Socket::is_connected) {
            return;
        }
        let n = args.attachments().len();
        let kind = if n > 0 { PacketType::BinaryAck } else { PacketType::Ack };
        let text = socketio::encode(kind, &req.namespace, Some(req.id), Some(&args.to_json_array()), n);
        let attachments = args.attachments().iter().map(|a| EioPacket::Binary(a.clone().into()));
        self.engine_send_all(std::iter::once(EioPacket::Message(text.into())).chain(attachments));
    }

    // ---------------------------------------------------------------- rooms

    pub(super) fn socket_room(&mut self, nsp: &str, room: &str, join: bool) -> Result<RoomRequestId, CommandError> {
        let id = RoomRequestId(self.next_id());
        let Some(s) = self.sock(nsp) else { return Err(CommandError::UnknownNamespace(nsp.to_string())) };
        s.room_requests.push((id, room.to_string(), join));
        let changed = if join { s.rooms.insert(room.to_string()) } else { s.rooms.remove(room) };
        if s.is_connected() {
            self.send_room(nsp, room, join);
            return Ok(id);
        }
        // Disconnected: remember the change for the next connection, and answer every request
        // that will never reach the server, so no caller waits forever.
        let mut done = Vec::new();
        match (changed, s.unsynced.get(room).copied()) {
            // The opposite change was still waiting: they cancel out; both are done.
            (true, Some(pending)) if pending != join => {
                s.unsynced.remove(room);
                done.push(pending);
                done.push(join);
            }
            (true, _) => {
                s.unsynced.insert(room.to_string(), join);
            }
            // The same change is already waiting: its answer will serve this request too.
            (false, Some(pending)) if pending == join => {}
            // Already so (joined, or never joined): nothing to send.
            (false, _) => done.push(join),
        }
        for join in done {
            self.room_done(nsp, room, join, Ok(Args::empty()));
        }
        Ok(id)
    }

    /// Answers every open request to join (or leave) `room` with `result`; with none open, says
    /// it anyway (the client's own re-join after a reconnect).
    fn room_done(&mut self, nsp: &str, room: &str, join: bool, result: Result<Args, EmitError>) {
        let Some(s) = self.sockets.get_mut(nsp) else { return };
        let mut none = true;
        let mut i = 0;
        while let Some((id, r, j)) = s.room_requests.get(i) {
            if *j != join || r != room {
                i += 1;
                continue;
            }
            let request = Some(*id);
            s.room_requests.swap_remove(i);
            none = false;
            let (namespace, room) = (nsp.to_string(), room.to_string());
            self.outputs.push_back(Output::Room { request, namespace, room, join, result: result.clone() });
        }
        if none {
            let (namespace, room) = (nsp.to_string(), room.to_string());
            self.push(Output::Room { request: None, namespace, room, join, result });
        }
    }

    fn send_room(&mut self, nsp: &str, room: &str, join: bool) {
        let deadline = self.now + self.config.ack_timeout.unwrap_or(ROOM_ACK_TIMEOUT);
        let events = &self.config.room_events;
        let event = if join { events.join.clone() } else { events.leave.clone() };
        let mut lit = String::new();
        json::write_string(&mut lit, room);
        let Ok(args) = Args::from_values([lit.as_str()], Vec::new()) else { return };
        let Some(s) = self.sock(nsp) else { return };
        let id = s.take_ack_id();
        s.acks.insert(id, AckWait::Room { room: room.to_string(), join, deadline });
        self.send_event(nsp, &event, &args, Some(id));
    }

    fn sync_rooms(&mut self, nsp: &str, recovered: bool) {
        let Some(s) = self.sock(nsp) else { return };
        let unsynced = std::mem::take(&mut s.unsynced);
        let ops: Vec<(String, bool)> = if recovered {
            unsynced.into_iter().collect()
        } else {
            // A new session is in no room: a leave made while disconnected is done already.
            let leaves: Vec<String> = unsynced.into_iter().filter(|(_, join)| !join).map(|(r, _)| r).collect();
            for room in leaves {
                self.room_done(nsp, &room, false, Ok(Args::empty()));
            }
            let Some(s) = self.sock(nsp) else { return };
            s.rooms.iter().map(|r| (r.clone(), true)).collect()
        };
        for (room, join) in ops {
            self.send_room(nsp, &room, join);
        }
    }

    // ---------------------------------------------------------------- timers

    pub(super) fn socket_timeouts(&mut self) {
        let now = self.now;
        let retries = self.config.retries;
        for nsp in self.names(|s| s.deadline().is_some_and(|d| d <= now)) {
            if matches!(self.sockets.get(&nsp).map(|s| &s.phase), Some(SocketPhase::AuthRetry { deadline }) if *deadline <= now)
            {
                self.begin_connect(&nsp);
            }
            if matches!(self.sockets.get(&nsp).map(|s| &s.phase), Some(SocketPhase::Connecting { deadline, .. }) if *deadline <= now)
            {
                // The namespace never answered: treat the connection as broken and start over.
                self.fail_engine(super::Fault::NamespaceTimeout(nsp.clone()));
                continue;
            }
            let Some(s) = self.sock(&nsp) else { continue };
            let expired: Vec<u64> = s
                .acks
                .iter()
                .filter(|(_, a)| match a {
                    AckWait::User { deadline, .. } => deadline.is_some_and(|d| d <= now),
                    AckWait::Room { deadline, .. } => *deadline <= now,
                    AckWait::Reliable => false,
                })
                .map(|(id, _)| *id)
                .collect();
            let mut outs = Vec::new();
            let mut rooms = Vec::new();
            for id in expired {
                match s.acks.remove(&id) {
                    Some(AckWait::User { emit, .. }) => {
                        outs.push(Output::Settled { emit, result: Err(EmitError::Timeout) })
                    }
                    Some(AckWait::Room { room, join, .. }) => rooms.push((room, join)),
                    _ => {}
                }
            }
            let mut kept = VecDeque::new();
            for p in std::mem::take(&mut s.buffer) {
                if p.deadline.is_some_and(|d| d <= now) {
                    s.buffer_bytes = s.buffer_bytes.saturating_sub(p.args.byte_size() + p.event.len());
                    outs.push(Output::Settled { emit: p.emit, result: Err(EmitError::Timeout) });
                } else {
                    kept.push_back(p);
                }
            }
            s.buffer = kept;
            let mut resend = false;
            if let Some(head) = s.queue.front_mut()
                && let Some((id, d)) = head.in_flight
                && d <= now
            {
                s.acks.remove(&id);
                head.in_flight = None;
                head.tries += 1;
                if head.tries > retries
                    && let Some(r) = s.queue.pop_front()
                {
                    s.buffer_bytes = s.buffer_bytes.saturating_sub(r.p.args.byte_size() + r.p.event.len());
                    outs.push(Output::Settled { emit: r.p.emit, result: Err(EmitError::Timeout) });
                }
                resend = true;
            }
            self.outputs.extend(outs);
            for (room, join) in rooms {
                self.room_done(&nsp, &room, join, Err(EmitError::Timeout));
            }
            if resend {
                self.drain_queue(&nsp);
            }
        }
    }
}

/// Adds `"idempotencyKey":KEY` as the first member of the first argument, which must be an object.
fn with_idempotency_key(args: &Args, key: &str) -> Result<Args, EmitError> {
    let first = args.get(0).filter(|a| a.starts_with('{')).ok_or(EmitError::IdempotencyKeyNeedsObject)?;
    let mut obj = String::with_capacity(first.len() + key.len() + 20);
    obj.push_str("{\"idempotencyKey\":");
    json::write_string(&mut obj, key);
    let rest = first.get(1..).unwrap_or("}").trim_start();
    if !rest.starts_with('}') {
        obj.push(',');
    }
    obj.push_str(rest);
    let values: Vec<&str> = std::iter::once(obj.as_str()).chain(args.iter().skip(1)).collect();
    Args::from_values(values, args.attachments().to_vec()).map_err(EmitError::InvalidArgs)
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
        assert_eq!(with_idempotency_key(&bad, "k"), Err(EmitError::IdempotencyKeyNeedsObject));
    }
}
