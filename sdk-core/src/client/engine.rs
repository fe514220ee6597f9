//! The Engine.IO session, a sub-machine of its own: opening (with the transport fallback and the
//! fallback servers), heartbeat, long-polling request/response, upgrade, closing, and the
//! reconnection schedule.
//!
//! It knows nothing of namespaces. Each method takes what it needs and a [`Cx`] (the
//! configuration, the time, the RNG, the id counter and the output queue it writes its IO to),
//! and returns a [`Step`] or a [`Schedule`]: what the namespaces must hear. [`super::Client`]
//! routes those to its sockets (`Client::route`), so the engine can be read on its own.

use std::collections::VecDeque;
use std::time::Duration;

use super::{ConnId, Cx, DisconnectReason, Fault, HttpError, HttpRequest, Method, Output, RequestId, RequestPurpose};
use crate::config::{Config, TransportKind};
use crate::engineio::{self, Handshake, Packet};
use crate::socketio;
use crate::time::Instant;
use crate::url::ServerUrl;

/// Most bytes accepted in one long-polling response (the server's maxPayload is about what it accepts,
/// not what it sends; this bounds memory against a misbehaving server).
pub(super) const MAX_POLL_BODY: usize = 16 << 20;

/// The first packet of a connection is not the Engine.IO handshake (`0{...}`).
const NOT_A_HANDSHAKE: &str = "the first packet is not the Engine.IO handshake";
/// A long-polling answer that is not UTF-8.
const NOT_UTF8: &str = "polling payload is not UTF-8";

/// The longest a connection may stay silent (no ping) before it is taken for dead, whatever the
/// server's `pingInterval + pingTimeout` say: one hour.
const MAX_PING_WINDOW_MS: u64 = 3_600_000;

/// Packets a polling response carried, decoded; an error ends the session at that packet.
pub(super) type Polled = Vec<Result<Packet<'static>, engineio::Error>>;

/// What the namespaces must hear after an engine method, in the order given.
#[must_use]
#[derive(Debug)]
pub(super) enum Step {
    /// Nothing for them.
    Nothing,
    /// A connection attempt started: they are connecting.
    Started,
    /// The handshake is done: they may send their CONNECTs; then [`Engine::poll`] keeps a GET in
    /// flight, then the packets that came with the handshake are handled ([`Engine::on_packet`]).
    Opened(Polled),
    /// A long-polling GET was answered: these packets are handled ([`Engine::on_packet`]), then
    /// [`Engine::after_poll`].
    Polled(Polled),
    /// The attempt failed: they get a connect error, then the engine schedules the next attempt
    /// ([`Engine::schedule_reconnect`], reason "transport error").
    OpenFailed { message: &'static str, cause: Option<Fault>, will_retry: bool, fallback_pending: bool },
    /// The session is gone: they are disconnected for `reason`, then the engine schedules the
    /// next attempt ([`Engine::schedule_reconnect`]). `unsent`: the packets still waiting in the
    /// session's outgoing queue (never written, so never received), which they may send again.
    Closed { reason: DisconnectReason, unsent: VecDeque<Packet<'static>> },
    /// A Socket.IO packet for them.
    Packet(socketio::Packet),
    /// The session moved from long-polling to WebSocket.
    Upgraded,
}

/// What [`Engine::schedule_reconnect`] decided.
#[derive(Debug)]
pub(super) enum Schedule {
    /// Nothing wants an engine: idle.
    Idle,
    /// No more attempts: the namespaces give up, for this reason.
    GiveUp(DisconnectReason),
    /// Attempt `attempt` starts after `delay`.
    Waiting { attempt: u32, delay: Duration },
}

#[derive(Debug, Default)]
pub(super) struct Engine {
    phase: EnginePhase,
    /// Consecutive connections that failed or did not last `stable_after`.
    attempts: u32,
    /// Consecutive WebSocket failures, for the polling fallback.
    ws_failures: u32,
    /// The server the next (or current) connection goes to: 0 is `Config::url`, `i` is
    /// `Config::fallback_urls[i - 1]`.
    server: usize,
    /// A polling session being closed: its last packets and the `1` still to POST.
    draining: Option<Drain>,
}

#[derive(Debug)]
struct Drain {
    sid: String,
    max_payload: u64,
    post: Option<RequestId>,
    queue: VecDeque<Packet<'static>>,
}

#[derive(Debug, Default)]
enum EnginePhase {
    /// No engine and none wanted.
    #[default]
    Idle,
    /// Opening a transport; `tried` counts transports tried in this attempt (tryAllTransports).
    Opening { kind: TransportKind, link: Link, deadline: Instant, tried: u8 },
    /// Handshake done.
    Open(Box<Session>),
    /// Waiting to make the next reconnection attempt.
    Waiting { until: Instant },
}

#[derive(Debug, Clone, Copy)]
enum Link {
    Ws { conn: ConnId },
    Poll { get: RequestId },
}

#[derive(Debug)]
struct Session {
    sid: String,
    max_payload: u64,
    ping_window: u64,
    ping_deadline: Instant,
    opened_at: Instant,
    transport: Active,
    upgrade: Upgrade,
    /// Packets waiting for a polling POST (or for the end of an upgrade pause).
    queue: VecDeque<Packet<'static>>,
    decoder: socketio::Decoder,
    can_upgrade: bool,
}

#[derive(Debug, Clone, Copy)]
enum Active {
    Ws(ConnId),
    Poll { get: Option<RequestId>, post: Option<RequestId> },
}

#[derive(Debug, Clone, Copy)]
enum Upgrade {
    /// Not upgrading (on WebSocket, or the server offers no upgrade).
    None,
    /// Probe WebSocket opened; `2probe` sent once it is open.
    Probing { conn: ConnId, deadline: Instant },
    /// `3probe` received: waiting for the in-flight GET and POST before sending `5`.
    Pausing { conn: ConnId },
    /// The last probe failed; try again at this time.
    RetryAt(Instant),
}

impl Engine {
    // ---------------------------------------------------------------- state queries

    /// Packets waiting in the session's outgoing queue.
    pub(super) fn queued(&self) -> usize {
        match &self.phase {
            EnginePhase::Open(s) => s.queue.len(),
            _ => 0,
        }
    }

    pub(super) fn is_open(&self) -> bool {
        matches!(self.phase, EnginePhase::Open(_))
    }

    pub(super) fn is_idle(&self) -> bool {
        matches!(self.phase, EnginePhase::Idle)
    }

    pub(super) fn transport(&self) -> Option<TransportKind> {
        match &self.phase {
            EnginePhase::Open(s) => Some(match s.transport {
                Active::Ws(_) => TransportKind::WebSocket,
                Active::Poll { .. } => TransportKind::Polling,
            }),
            _ => None,
        }
    }

    /// Whether a packet written now goes out at once (socket.io's `transport.writable`).
    pub(super) fn writable(&self) -> bool {
        match &self.phase {
            EnginePhase::Open(s) => match (s.transport, s.upgrade) {
                (_, Upgrade::Pausing { .. }) => false,
                (Active::Ws(_), _) => true,
                (Active::Poll { post, .. }, _) => post.is_none(),
            },
            _ => false,
        }
    }

    pub(super) fn max_payload(&self) -> Option<u64> {
        match &self.phase {
            EnginePhase::Open(s) => Some(s.max_payload),
            _ => None,
        }
    }

    pub(super) fn deadline(&self) -> Option<Instant> {
        match &self.phase {
            EnginePhase::Idle => None,
            EnginePhase::Opening { deadline, .. } => Some(*deadline),
            EnginePhase::Waiting { until } => Some(*until),
            EnginePhase::Open(s) => {
                let up = match s.upgrade {
                    Upgrade::Probing { deadline, .. } => Some(deadline),
                    Upgrade::RetryAt(t) => Some(t),
                    Upgrade::None | Upgrade::Pausing { .. } => None,
                };
                Some(up.map_or(s.ping_deadline, |u| u.min(s.ping_deadline)))
            }
        }
    }

    /// The sid of the session (not a namespace's socket id).
    pub(super) fn sid(&self) -> Option<&str> {
        match &self.phase {
            EnginePhase::Open(s) => Some(&s.sid),
            _ => None,
        }
    }

    /// True while a closed polling session still has packets to POST.
    pub(super) fn is_flushing(&self) -> bool {
        self.draining.is_some()
    }

    /// When the next reconnection attempt starts, if waiting for one.
    pub(super) fn waiting_until(&self) -> Option<Instant> {
        match self.phase {
            EnginePhase::Waiting { until } => Some(until),
            _ => None,
        }
    }

    // ---------------------------------------------------------------- URLs

    /// The server the current (or next) connection goes to.
    pub(super) fn server<'c>(&self, config: &'c Config) -> &'c ServerUrl {
        match self.server.checked_sub(1) {
            Some(i) => config.fallback_urls.get(i).unwrap_or(&config.url),
            None => &config.url,
        }
    }

    /// Moves to the next server after a failed attempt (or back to the preferred one).
    fn next_server(&mut self, config: &Config, failed: bool) {
        let n = config.fallback_urls.len() + 1;
        self.server = if failed { (self.server + 1) % n } else { 0 };
    }

    fn eio_url(&self, cx: &mut Cx<'_>, kind: TransportKind, sid: Option<&str>) -> String {
        let u = self.server(cx.config);
        let mut url = match kind {
            TransportKind::WebSocket => u.ws_origin(),
            TransportKind::Polling => u.http_origin(),
        };
        url.push_str(&cx.config.path);
        url.push('?');
        for (k, v) in &u.query {
            url.push_str(k);
            url.push('=');
            url.push_str(v);
            url.push('&');
        }
        url.push_str("EIO=4&transport=");
        url.push_str(kind.as_str());
        if kind == TransportKind::Polling {
            url.push_str("&t=");
            url.push_str(&cx.rng.token(8));
        }
        if let Some(sid) = sid {
            url.push_str("&sid=");
            crate::url::encode_component(sid, &mut url);
        }
        url
    }

    // ---------------------------------------------------------------- opening

    /// Starts a connection attempt if the engine is idle (call it when a namespace wants one).
    pub(super) fn ensure(&mut self, cx: &mut Cx<'_>) -> Step {
        if self.is_idle() { self.start(cx, None, 0) } else { Step::Nothing }
    }

    fn start(&mut self, cx: &mut Cx<'_>, kind: Option<TransportKind>, tried: u8) -> Step {
        let t = &cx.config.transports;
        let kind = kind.unwrap_or_else(|| {
            let fallback =
                t.fallback_after > 0 && self.ws_failures >= t.fallback_after && t.allows(TransportKind::Polling);
            if fallback { TransportKind::Polling } else { t.first().unwrap_or(TransportKind::WebSocket) }
        });
        let url = self.eio_url(cx, kind, None);
        let id = cx.ids.next();
        let link = match kind {
            TransportKind::WebSocket => {
                cx.out.push_back(Output::OpenWebSocket { conn: ConnId(id), url });
                Link::Ws { conn: ConnId(id) }
            }
            TransportKind::Polling => {
                cx.out.push_back(Output::Http(poll_get(RequestId(id), url)));
                Link::Poll { get: RequestId(id) }
            }
        };
        let deadline = cx.now + cx.config.connect_timeout;
        self.phase = EnginePhase::Opening { kind, link, deadline, tried: tried + 1 };
        Step::Started
    }

    fn on_handshake(&mut self, cx: &mut Cx<'_>, kind: TransportKind, link: Link, h: Handshake, rest: Polled) -> Step {
        // A server's figures are clamped: an absurd pingInterval must not switch off the
        // detection of a dead connection.
        let ping_window = h.ping_interval.saturating_add(h.ping_timeout).min(MAX_PING_WINDOW_MS);
        let transport = match link {
            Link::Ws { conn } => Active::Ws(conn),
            Link::Poll { .. } => Active::Poll { get: None, post: None },
        };
        if kind == TransportKind::WebSocket {
            self.ws_failures = 0;
        }
        let t = &cx.config.transports;
        let can_upgrade = kind == TransportKind::Polling
            && t.upgrade
            && t.allows(TransportKind::WebSocket)
            && h.upgrades.iter().any(|u| u == "websocket");
        self.phase = EnginePhase::Open(Box::new(Session {
            sid: h.sid,
            max_payload: h.max_payload,
            ping_window,
            ping_deadline: cx.now.plus_millis(ping_window),
            opened_at: cx.now,
            transport,
            upgrade: Upgrade::None,
            queue: VecDeque::new(),
            decoder: socketio::Decoder::new(cx.config.max_attachments),
            can_upgrade,
        }));
        if can_upgrade {
            self.start_probe(cx);
        }
        Step::Opened(rest)
    }

    fn open_failed(&mut self, cx: &mut Cx<'_>, message: &'static str, cause: Option<Fault>) -> Step {
        let EnginePhase::Opening { kind, tried, .. } = self.phase else { return Step::Nothing };
        self.phase = EnginePhase::Idle;
        if kind == TransportKind::WebSocket {
            self.ws_failures = self.ws_failures.saturating_add(1);
        }
        let t = cx.config.transports;
        if t.try_all_transports && usize::from(tried) < t.order.iter().flatten().count() {
            let next = t.order.iter().flatten().find(|k| **k != kind).copied();
            if next.is_some() {
                return self.start(cx, next, tried);
            }
        }
        self.next_server(cx.config, true);
        let will_retry = cx.config.reconnect.enabled && !self.reconnect_exhausted(cx.config);
        let fallback_pending =
            will_retry && kind == TransportKind::WebSocket && t.fallback_after > 0 && t.allows(TransportKind::Polling);
        Step::OpenFailed { message, cause, will_retry, fallback_pending }
    }

    fn reconnect_exhausted(&self, config: &Config) -> bool {
        config.reconnect.max_attempts.is_some_and(|m| self.attempts >= m)
    }

    /// After a failed attempt or a lost session: waits before the next attempt, or gives up.
    /// `wanted`: whether any namespace still wants an engine.
    pub(super) fn schedule_reconnect(&mut self, cx: &mut Cx<'_>, wanted: bool, reason: DisconnectReason) -> Schedule {
        if !wanted {
            self.phase = EnginePhase::Idle;
            return Schedule::Idle;
        }
        let reconnect = &cx.config.reconnect;
        if !reconnect.enabled || self.reconnect_exhausted(cx.config) {
            self.phase = EnginePhase::Idle;
            return Schedule::GiveUp(if reconnect.enabled { DisconnectReason::ReconnectFailed } else { reason });
        }
        let delay = reconnect.backoff.delay_ms(self.attempts, cx.rng);
        self.attempts = self.attempts.saturating_add(1);
        self.phase = EnginePhase::Waiting { until: cx.now.plus_millis(delay) };
        Schedule::Waiting { attempt: self.attempts, delay: Duration::from_millis(delay) }
    }

    /// Online or visible again: skip the rest of the backoff delay.
    pub(super) fn retry_now(&mut self, cx: &mut Cx<'_>) -> Step {
        match self.phase {
            EnginePhase::Waiting { .. } => self.start(cx, None, 0),
            _ => Step::Nothing,
        }
    }

    pub(super) fn on_offline(&mut self, cx: &mut Cx<'_>) -> Step {
        match self.phase {
            EnginePhase::Open(_) | EnginePhase::Opening { .. } => self.close(cx, DisconnectReason::TransportClose),
            _ => Step::Nothing,
        }
    }

    // ---------------------------------------------------------------- closing

    /// Closes the session because of `fault`, which is reported first.
    pub(super) fn fail(&mut self, cx: &mut Cx<'_>, fault: Fault) -> Step {
        let reason = match fault {
            Fault::Engine(_) | Fault::Socket(_) | Fault::Protocol(_) => DisconnectReason::ParseError,
            _ => DisconnectReason::TransportError,
        };
        cx.out.push_back(Output::Fault(fault));
        self.close(cx, reason)
    }

    /// Drops the transport(s) without a goodbye.
    fn close(&mut self, cx: &mut Cx<'_>, reason: DisconnectReason) -> Step {
        let phase = std::mem::take(&mut self.phase);
        let mut stable = false;
        let mut unsent = VecDeque::new();
        match phase {
            EnginePhase::Open(mut s) => {
                stable = cx.now.since(s.opened_at) >= cx.config.reconnect.stable_after;
                release_session(cx, &s);
                unsent = std::mem::take(&mut s.queue);
            }
            EnginePhase::Opening { link, .. } => release_link(cx, link),
            EnginePhase::Idle | EnginePhase::Waiting { .. } => return Step::Nothing,
        }
        if stable {
            self.attempts = 0;
        }
        // A stable connection that is lost starts a new series at the preferred server; one
        // that did not last counts as a failed attempt of its server.
        self.next_server(cx.config, !stable);
        Step::Closed { reason, unsent }
    }

    /// Closes the engine politely because no namespace wants it any more (POST `1` over
    /// polling). Nothing follows for the namespaces.
    pub(super) fn close_unused(&mut self, cx: &mut Cx<'_>) {
        let phase = std::mem::take(&mut self.phase);
        match phase {
            EnginePhase::Open(s) => {
                if let Active::Poll { get, post } = s.transport {
                    // The official client POSTs `1` after what is still queued (its DISCONNECTs).
                    self.goodbye(cx, s.sid, s.max_payload, post, s.queue);
                    if let Some(g) = get {
                        cx.out.push_back(Output::AbortHttp(g));
                    }
                    if let Upgrade::Probing { conn, .. } | Upgrade::Pausing { conn } = s.upgrade {
                        cx.out.push_back(Output::CloseWebSocket(conn));
                    }
                } else {
                    release_session(cx, &s);
                }
            }
            EnginePhase::Opening { link, .. } => release_link(cx, link),
            EnginePhase::Idle | EnginePhase::Waiting { .. } => {}
        }
        self.attempts = 0;
        self.next_server(cx.config, false);
    }

    /// Leaves polling session `sid`: POSTs what is still in `queue`, then `1`. Only one POST may
    /// be in flight, so the session drains in the background, after `post` (if any) is answered.
    fn goodbye(
        &mut self,
        cx: &mut Cx<'_>,
        sid: String,
        max_payload: u64,
        post: Option<RequestId>,
        mut queue: VecDeque<Packet<'static>>,
    ) {
        queue.push_back(Packet::Close);
        self.draining = Some(Drain { sid, max_payload, post, queue });
        self.drain_next(cx);
    }

    /// Sends the next POST of a closing polling session once the previous one is answered.
    fn drain_next(&mut self, cx: &mut Cx<'_>) {
        let Some(d) = &mut self.draining else { return };
        if d.post.is_some() {
            return;
        }
        let Some(body) = engineio::take_polling_batch(&mut d.queue, d.max_payload) else {
            self.draining = None;
            return;
        };
        let id = RequestId(cx.ids.next());
        d.post = Some(id);
        let sid = d.sid.clone();
        let url = self.eio_url(cx, TransportKind::Polling, Some(&sid));
        cx.out.push_back(Output::Http(poll_post(id, url, body)));
    }

    /// Answers for the draining session's POSTs; true when `id` was one.
    fn drain_answered(&mut self, cx: &mut Cx<'_>, id: RequestId, ok: bool) -> bool {
        let Some(d) = &mut self.draining else { return false };
        if d.post != Some(id) {
            return false;
        }
        d.post = None;
        if ok {
            self.drain_next(cx);
        } else {
            // The session is gone anyway; nothing more to say to it.
            self.draining = None;
        }
        true
    }

    // ---------------------------------------------------------------- sending

    /// Sends the packets of one Socket.IO packet (its text, then its binary attachments) together
    /// on the current transport: over polling they share one POST body when they fit under
    /// `maxPayload`, as in the official client (queued while a POST is in flight or an upgrade
    /// pauses).
    pub(super) fn send(&mut self, cx: &mut Cx<'_>, text: String, attachments: &[Vec<u8>]) {
        self.send_packet(cx, Packet::Message(text.into()), attachments.is_empty());
        for (i, a) in attachments.iter().enumerate() {
            self.send_packet(cx, Packet::Binary(a.clone().into()), i + 1 == attachments.len());
        }
    }

    /// Sends one Engine.IO packet; over polling it is queued, and the queue is flushed after the
    /// `last` packet of a group. One packet at a time rather than an iterator of them: a generic
    /// `send_all` was compiled once per kind of iterator.
    fn send_packet(&mut self, cx: &mut Cx<'_>, packet: Packet<'static>, last: bool) {
        let EnginePhase::Open(s) = &mut self.phase else { return };
        if let Active::Ws(conn) = s.transport {
            let frame = engineio::encode_ws(&packet);
            cx.out.push_back(Output::SendWebSocket { conn, frame });
        } else {
            s.queue.push_back(packet);
            if last {
                self.flush_poll(cx);
            }
        }
    }

    fn flush_poll(&mut self, cx: &mut Cx<'_>) {
        let EnginePhase::Open(s) = &mut self.phase else { return };
        let Active::Poll { post: None, .. } = s.transport else { return };
        if matches!(s.upgrade, Upgrade::Pausing { .. }) {
            return;
        }
        let Some(body) = engineio::take_polling_batch(&mut s.queue, s.max_payload) else { return };
        let id = RequestId(cx.ids.next());
        if let Active::Poll { post, .. } = &mut s.transport {
            *post = Some(id);
        }
        let sid = s.sid.clone();
        let url = self.eio_url(cx, TransportKind::Polling, Some(&sid));
        cx.out.push_back(Output::Http(poll_post(id, url, body)));
    }

    /// Keeps one GET in flight while on polling and not pausing for an upgrade.
    pub(super) fn poll(&mut self, cx: &mut Cx<'_>) {
        let EnginePhase::Open(s) = &mut self.phase else { return };
        let Active::Poll { get: None, .. } = s.transport else { return };
        if matches!(s.upgrade, Upgrade::Pausing { .. }) {
            return;
        }
        let id = RequestId(cx.ids.next());
        if let Active::Poll { get, .. } = &mut s.transport {
            *get = Some(id);
        }
        let sid = s.sid.clone();
        let url = self.eio_url(cx, TransportKind::Polling, Some(&sid));
        cx.out.push_back(Output::Http(poll_get(id, url)));
    }

    /// After the packets of a GET were handled: the next GET, and the upgrade if the pause was
    /// only waiting for that one.
    pub(super) fn after_poll(&mut self, cx: &mut Cx<'_>) -> Step {
        self.poll(cx);
        self.finish_upgrade(cx)
    }

    // ---------------------------------------------------------------- upgrade

    fn start_probe(&mut self, cx: &mut Cx<'_>) {
        let EnginePhase::Open(s) = &self.phase else { return };
        if !s.can_upgrade {
            return;
        }
        let sid = s.sid.clone();
        let url = self.eio_url(cx, TransportKind::WebSocket, Some(&sid));
        let conn = ConnId(cx.ids.next());
        let deadline = cx.now + cx.config.transports.probe_timeout;
        if let EnginePhase::Open(s) = &mut self.phase {
            s.upgrade = Upgrade::Probing { conn, deadline };
        }
        cx.out.push_back(Output::OpenWebSocket { conn, url });
    }

    fn abort_probe(&mut self, cx: &mut Cx<'_>) {
        let retry = cx.now + cx.config.transports.reprobe_every;
        let EnginePhase::Open(s) = &mut self.phase else { return };
        let (Upgrade::Probing { conn, .. } | Upgrade::Pausing { conn }) = s.upgrade else { return };
        s.upgrade = Upgrade::RetryAt(retry);
        cx.out.push_back(Output::CloseWebSocket(conn));
        // A pause may have held back the GET and POST.
        self.poll(cx);
        self.flush_poll(cx);
    }

    /// Moves to the probed WebSocket once the pause has no request left in flight.
    fn finish_upgrade(&mut self, cx: &mut Cx<'_>) -> Step {
        let EnginePhase::Open(s) = &mut self.phase else { return Step::Nothing };
        let (Upgrade::Pausing { conn }, Active::Poll { get: None, post: None }) = (s.upgrade, s.transport) else {
            return Step::Nothing;
        };
        s.upgrade = Upgrade::None;
        s.transport = Active::Ws(conn);
        let queued = std::mem::take(&mut s.queue);
        // A WebSocket that works ends the run of consecutive failures: the next reconnect opens
        // with WebSocket again instead of staying on the polling fallback.
        self.ws_failures = 0;
        cx.out.push_back(Output::SendWebSocket { conn, frame: engineio::encode_ws(&Packet::Upgrade) });
        for p in queued {
            let frame = engineio::encode_ws(&p);
            cx.out.push_back(Output::SendWebSocket { conn, frame });
        }
        Step::Upgraded
    }

    // ---------------------------------------------------------------- inputs

    pub(super) fn on_ws_opened(&mut self, cx: &mut Cx<'_>, c: ConnId) {
        match &self.phase {
            EnginePhase::Opening { link: Link::Ws { conn }, .. } if *conn == c => {}
            EnginePhase::Open(s) if matches!(s.upgrade, Upgrade::Probing { conn, .. } if conn == c) => {
                let frame = engineio::encode_ws(&Packet::Ping { probe: true });
                cx.out.push_back(Output::SendWebSocket { conn: c, frame });
            }
            EnginePhase::Open(s) if matches!(s.transport, Active::Ws(conn) if conn == c) => {}
            // A socket we no longer want (stale generation): close it so it does not leak.
            _ => cx.out.push_back(Output::CloseWebSocket(c)),
        }
    }

    pub(super) fn on_ws_text(&mut self, cx: &mut Cx<'_>, c: ConnId, text: String) -> Step {
        match &self.phase {
            EnginePhase::Opening { kind, link, .. } if matches!(link, Link::Ws { conn } if *conn == c) => {
                let (kind, link) = (*kind, *link);
                match engineio::decode_text(&text) {
                    Ok(Packet::Open(h)) => self.on_handshake(cx, kind, link, h, Vec::new()),
                    Ok(_) => self.open_failed(cx, "websocket error", Some(Fault::Protocol(NOT_A_HANDSHAKE))),
                    Err(e) => self.open_failed(cx, "websocket error", Some(Fault::Engine(e))),
                }
            }
            EnginePhase::Open(s) if matches!(s.transport, Active::Ws(conn) if conn == c) => {
                if text.starts_with('4') {
                    // A message (nearly every frame): hand the frame itself on, without its type
                    // byte, instead of copying its text.
                    let mut text = text;
                    text.remove(0);
                    return self.on_packet(cx, Packet::Message(std::borrow::Cow::Owned(text)));
                }
                match engineio::decode_text(&text) {
                    Ok(p) => self.on_packet(cx, p),
                    Err(e) => self.fail(cx, Fault::Engine(e)),
                }
            }
            EnginePhase::Open(s) => match s.upgrade {
                Upgrade::Probing { conn, .. } if conn == c => {
                    if engineio::decode_text(&text) == Ok(Packet::Pong { probe: true }) {
                        if let EnginePhase::Open(s) = &mut self.phase {
                            s.upgrade = Upgrade::Pausing { conn };
                        }
                        self.finish_upgrade(cx)
                    } else {
                        self.abort_probe(cx);
                        Step::Nothing
                    }
                }
                Upgrade::Pausing { conn } if conn == c => {
                    self.abort_probe(cx);
                    Step::Nothing
                }
                _ => Step::Nothing,
            },
            _ => Step::Nothing,
        }
    }

    pub(super) fn on_ws_binary(&mut self, cx: &mut Cx<'_>, c: ConnId, data: Vec<u8>) -> Step {
        match &self.phase {
            EnginePhase::Open(s) if matches!(s.transport, Active::Ws(conn) if conn == c) => {
                self.on_packet(cx, Packet::Binary(data.into()))
            }
            EnginePhase::Opening { link: Link::Ws { conn }, .. } if *conn == c => {
                self.open_failed(cx, "websocket error", Some(Fault::Protocol(NOT_A_HANDSHAKE)))
            }
            EnginePhase::Open(s) if matches!(s.upgrade, Upgrade::Probing { conn, .. } | Upgrade::Pausing { conn } if conn == c) =>
            {
                self.abort_probe(cx);
                Step::Nothing
            }
            _ => Step::Nothing,
        }
    }

    /// Frames the driver never wrote to the session's WebSocket `c`: they go back to the front
    /// of the session's queue, which a close hands on as `unsent` ([`Step::Closed`]).
    #[cfg(feature = "unsent-frames")]
    pub(super) fn on_ws_unsent(&mut self, c: ConnId, frames: Vec<engineio::Frame>) {
        let EnginePhase::Open(s) = &mut self.phase else { return };
        if !matches!(s.transport, Active::Ws(conn) if conn == c) {
            return;
        }
        let packets = frames.into_iter().filter_map(|f| match f {
            engineio::Frame::Text(t) => engineio::decode_text(&t).ok().map(owned),
            engineio::Frame::Binary(b) => Some(Packet::Binary(b.into())),
        });
        let mut queue: VecDeque<Packet<'static>> = packets.collect();
        queue.append(&mut s.queue);
        s.queue = queue;
    }

    pub(super) fn on_ws_closed(&mut self, cx: &mut Cx<'_>, c: ConnId, error: Option<String>) -> Step {
        match &self.phase {
            EnginePhase::Opening { link: Link::Ws { conn }, .. } if *conn == c => {
                self.open_failed(cx, "websocket error", error.map(Fault::WebSocket))
            }
            EnginePhase::Open(s) if matches!(s.transport, Active::Ws(conn) if conn == c) => match error {
                Some(e) => self.fail(cx, Fault::WebSocket(e)),
                None => self.close(cx, DisconnectReason::TransportClose),
            },
            EnginePhase::Open(s) if matches!(s.upgrade, Upgrade::Probing { conn, .. } | Upgrade::Pausing { conn } if conn == c) =>
            {
                self.abort_probe(cx);
                Step::Nothing
            }
            _ => Step::Nothing,
        }
    }

    pub(super) fn on_http_response(&mut self, cx: &mut Cx<'_>, id: RequestId, status: u16, body: Vec<u8>) -> Step {
        if self.drain_answered(cx, id, status == 200) {
            return Step::Nothing;
        }
        match &mut self.phase {
            EnginePhase::Opening { kind, link, .. } if matches!(*link, Link::Poll { get } if get == id) => {
                let (kind, link) = (*kind, *link);
                if status != 200 {
                    return self.open_failed(cx, "xhr poll error", Some(Fault::HttpStatus(status)));
                }
                let Ok(text) = String::from_utf8(body) else {
                    return self.open_failed(cx, "xhr poll error", Some(Fault::Protocol(NOT_UTF8)));
                };
                let mut packets = decode_owned(&text).into_iter();
                match packets.next() {
                    Some(Ok(Packet::Open(h))) => self.on_handshake(cx, kind, link, h, packets.collect()),
                    Some(Err(e)) => self.open_failed(cx, "xhr poll error", Some(Fault::Engine(e))),
                    _ => self.open_failed(cx, "xhr poll error", Some(Fault::Protocol(NOT_A_HANDSHAKE))),
                }
            }
            EnginePhase::Open(s) => match &mut s.transport {
                Active::Poll { get, .. } if *get == Some(id) => {
                    *get = None;
                    if status != 200 {
                        return self.fail(cx, Fault::HttpStatus(status));
                    }
                    let Ok(text) = String::from_utf8(body) else {
                        return self.fail(cx, Fault::Protocol(NOT_UTF8));
                    };
                    Step::Polled(decode_owned(&text))
                }
                Active::Poll { post, .. } if *post == Some(id) => {
                    *post = None;
                    if status != 200 {
                        return self.fail(cx, Fault::HttpStatus(status));
                    }
                    self.flush_poll(cx);
                    self.finish_upgrade(cx)
                }
                _ => Step::Nothing,
            },
            _ => Step::Nothing,
        }
    }

    pub(super) fn on_http_failed(&mut self, cx: &mut Cx<'_>, id: RequestId, error: HttpError) -> Step {
        if self.drain_answered(cx, id, false) {
            return Step::Nothing;
        }
        match &self.phase {
            EnginePhase::Opening { link: Link::Poll { get }, .. } if *get == id => {
                self.open_failed(cx, "xhr poll error", Some(Fault::Http(error)))
            }
            EnginePhase::Open(s) => match s.transport {
                Active::Poll { get, post } if get == Some(id) || post == Some(id) => {
                    // The server may not know: a connection cut after it answered, or between two
                    // polls, leaves it nothing to notice until its heartbeat ends the session, and
                    // socket.io restores no session whose socket is still connected. Say goodbye
                    // (`1`, as socket.io-client does when it leaves a polling session), so that it
                    // ends the session now and the next connection can recover it.
                    let (sid, max_payload) = (s.sid.clone(), s.max_payload);
                    let step = self.fail(cx, Fault::Http(error));
                    self.goodbye(cx, sid, max_payload, None, VecDeque::new());
                    step
                }
                _ => Step::Nothing,
            },
            _ => Step::Nothing,
        }
    }

    /// One Engine.IO packet of the open session: the heartbeat and a close are handled here, a
    /// message goes through the Socket.IO decoder (which joins binary attachments).
    pub(super) fn on_packet(&mut self, cx: &mut Cx<'_>, packet: Packet<'_>) -> Step {
        let EnginePhase::Open(s) = &mut self.phase else { return Step::Nothing };
        let decoded = match packet {
            Packet::Ping { probe: false } => {
                s.ping_deadline = cx.now.plus_millis(s.ping_window);
                self.send_packet(cx, Packet::Pong { probe: false }, true);
                return Step::Nothing;
            }
            Packet::Close => return self.close(cx, DisconnectReason::TransportClose),
            Packet::Message(text) => s.decoder.text(text.into_owned()),
            Packet::Binary(data) => s.decoder.binary(data.into_owned()),
            Packet::Noop | Packet::Upgrade | Packet::Pong { .. } | Packet::Ping { probe: true } => {
                return Step::Nothing;
            }
            Packet::Open(_) => return self.fail(cx, Fault::Protocol("OPEN packet in an open session")),
        };
        match decoded {
            Ok(Some(p)) => Step::Packet(p),
            Ok(None) => Step::Nothing,
            Err(e) => self.fail(cx, Fault::Socket(e)),
        }
    }

    /// The wall-clock check socket.io-client makes before each emit: a throttled timer must not
    /// keep a dead connection alive.
    pub(super) fn check_ping_expiry(&mut self, cx: &mut Cx<'_>) -> Step {
        match &self.phase {
            EnginePhase::Open(s) if cx.now >= s.ping_deadline => self.close(cx, DisconnectReason::PingTimeout),
            _ => Step::Nothing,
        }
    }

    pub(super) fn timeouts(&mut self, cx: &mut Cx<'_>) -> Step {
        match &self.phase {
            EnginePhase::Opening { deadline, .. } if cx.now >= *deadline => self.open_failed(cx, "timeout", None),
            EnginePhase::Waiting { until } if cx.now >= *until => self.start(cx, None, 0),
            EnginePhase::Open(s) => match s.upgrade {
                Upgrade::Probing { deadline, .. } if cx.now >= deadline => {
                    self.abort_probe(cx);
                    Step::Nothing
                }
                Upgrade::RetryAt(t) if cx.now >= t => {
                    self.start_probe(cx);
                    Step::Nothing
                }
                _ => Step::Nothing,
            },
            _ => Step::Nothing,
        }
    }
}

fn release_link(cx: &mut Cx<'_>, link: Link) {
    match link {
        Link::Ws { conn } => cx.out.push_back(Output::CloseWebSocket(conn)),
        Link::Poll { get } => cx.out.push_back(Output::AbortHttp(get)),
    }
}

fn release_session(cx: &mut Cx<'_>, s: &Session) {
    match s.transport {
        Active::Ws(c) => cx.out.push_back(Output::CloseWebSocket(c)),
        Active::Poll { get, post } => {
            for r in [get, post].into_iter().flatten() {
                cx.out.push_back(Output::AbortHttp(r));
            }
        }
    }
    if let Upgrade::Probing { conn, .. } | Upgrade::Pausing { conn } = s.upgrade {
        cx.out.push_back(Output::CloseWebSocket(conn));
    }
}

fn poll_get(id: RequestId, url: String) -> HttpRequest {
    HttpRequest {
        id,
        purpose: RequestPurpose::PollReceive,
        method: Method::Get,
        url,
        content_type: None,
        authorization: None,
        body: None,
        max_body: MAX_POLL_BODY,
    }
}

fn poll_post(id: RequestId, url: String, body: String) -> HttpRequest {
    HttpRequest {
        id,
        purpose: RequestPurpose::PollSend,
        method: Method::Post,
        url,
        // Never application/octet-stream under EIO=4: the server answers 400 and kills the session.
        content_type: Some("text/plain;charset=UTF-8"),
        authorization: None,
        body: Some(body),
        max_body: 1024,
    }
}

/// Detaches a decoded packet from the buffer it was decoded from.
/// Every record of a polling body, decoded and owned (one loop for the handshake's answer and
/// every later one).
fn decode_owned(text: &str) -> Polled {
    let mut out = Vec::new();
    for p in engineio::decode_payload(text) {
        out.push(p.map(owned));
    }
    out
}

fn owned(p: Packet<'_>) -> Packet<'static> {
    match p {
        Packet::Open(h) => Packet::Open(h),
        Packet::Close => Packet::Close,
        Packet::Ping { probe } => Packet::Ping { probe },
        Packet::Pong { probe } => Packet::Pong { probe },
        Packet::Message(t) => Packet::Message(t.into_owned().into()),
        Packet::Binary(b) => Packet::Binary(b.into_owned().into()),
        Packet::Upgrade => Packet::Upgrade,
        Packet::Noop => Packet::Noop,
    }
}
