//! The Engine.IO session: opening, heartbeat, long-polling request/response, upgrade, reconnection.

use std::collections::VecDeque;

use super::{
    Client, ConnId, ConnectionState, DisconnectReason, Fault, HttpError, HttpRequest, Method, Output, RequestId,
    RequestPurpose, ms,
};
use crate::config::TransportKind;
use crate::engineio::{self, Handshake, Packet};
use crate::socketio;
use crate::time::Instant;

/// Most bytes accepted in one long-polling response (the server's maxPayload is about what it accepts,
/// not what it sends; this bounds memory against a misbehaving server).
pub(super) const MAX_POLL_BODY: usize = 16 << 20;

/// The longest a connection may stay silent (no ping) before it is taken for dead, whatever the
/// server's `pingInterval + pingTimeout` say: one hour.
const MAX_PING_WINDOW_MS: u64 = 3_600_000;

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
    /// Waiting to make reconnection attempt `attempt`.
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
    pub(super) fn queued(&self) -> usize {
        match &self.phase {
            EnginePhase::Open(s) => s.queue.len(),
            _ => 0,
        }
    }
}

impl Client {
    // ---------------------------------------------------------------- state queries

    pub(super) fn engine_is_open(&self) -> bool {
        matches!(self.engine.phase, EnginePhase::Open(_))
    }

    pub(super) fn engine_transport(&self) -> Option<TransportKind> {
        match &self.engine.phase {
            EnginePhase::Open(s) => Some(match s.transport {
                Active::Ws(_) => TransportKind::WebSocket,
                Active::Poll { .. } => TransportKind::Polling,
            }),
            _ => None,
        }
    }

    /// Whether a packet written now goes out at once (socket.io's `transport.writable`).
    pub(super) fn engine_writable(&self) -> bool {
        match &self.engine.phase {
            EnginePhase::Open(s) => match (s.transport, s.upgrade) {
                (_, Upgrade::Pausing { .. }) => false,
                (Active::Ws(_), _) => true,
                (Active::Poll { post, .. }, _) => post.is_none(),
            },
            _ => false,
        }
    }

    pub(super) fn engine_max_payload(&self) -> Option<u64> {
        match &self.engine.phase {
            EnginePhase::Open(s) => Some(s.max_payload),
            _ => None,
        }
    }

    pub(super) fn engine_deadline(&self) -> Option<Instant> {
        match &self.engine.phase {
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

    // ---------------------------------------------------------------- URLs

    /// The server the current (or next) connection goes to.
    pub fn server(&self) -> &crate::url::ServerUrl {
        match self.engine.server.checked_sub(1) {
            Some(i) => self.config.fallback_urls.get(i).unwrap_or(&self.config.url),
            None => &self.config.url,
        }
    }

    /// Moves to the next server after a failed attempt (or back to the preferred one).
    fn next_server(&mut self, failed: bool) {
        let n = self.config.fallback_urls.len() + 1;
        self.engine.server = if failed { (self.engine.server + 1) % n } else { 0 };
    }

    fn eio_url(&mut self, kind: TransportKind, sid: Option<&str>) -> String {
        let u = self.server();
        let mut url = match kind {
            TransportKind::WebSocket => u.ws_origin(),
            TransportKind::Polling => u.http_origin(),
        };
        url.push_str(&self.config.path);
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
            url.push_str(&self.rng.token(8));
        }
        if let Some(sid) = sid {
            url.push_str("&sid=");
            crate::url::encode_component(sid, &mut url);
        }
        url
    }

    // ---------------------------------------------------------------- opening

    /// Starts an engine if none is open or opening and a namespace wants one.
    pub(super) fn ensure_engine(&mut self) {
        if matches!(self.engine.phase, EnginePhase::Idle) && self.any_active() {
            self.start_open(None, 0);
        }
    }

    fn start_open(&mut self, kind: Option<TransportKind>, tried: u8) {
        let t = &self.config.transports;
        let kind = kind.unwrap_or_else(|| {
            let fallback =
                t.fallback_after > 0 && self.engine.ws_failures >= t.fallback_after && t.allows(TransportKind::Polling);
            if fallback { TransportKind::Polling } else { t.first().unwrap_or(TransportKind::WebSocket) }
        });
        let url = self.eio_url(kind, None);
        let id = self.next_id();
        let link = match kind {
            TransportKind::WebSocket => {
                self.push(Output::OpenWebSocket { conn: ConnId(id), url });
                Link::Ws { conn: ConnId(id) }
            }
            TransportKind::Polling => {
                self.push(Output::Http(poll_get(RequestId(id), url)));
                Link::Poll { get: RequestId(id) }
            }
        };
        let deadline = self.now + self.config.connect_timeout;
        self.engine.phase = EnginePhase::Opening { kind, link, deadline, tried: tried + 1 };
        self.sockets_connecting();
    }

    fn on_handshake(&mut self, kind: TransportKind, link: Link, h: Handshake) {
        // A server's figures are clamped: an absurd pingInterval must not switch off the
        // detection of a dead connection.
        let ping_window = h.ping_interval.saturating_add(h.ping_timeout).min(MAX_PING_WINDOW_MS);
        let transport = match link {
            Link::Ws { conn } => Active::Ws(conn),
            Link::Poll { .. } => Active::Poll { get: None, post: None },
        };
        if kind == TransportKind::WebSocket {
            self.engine.ws_failures = 0;
        }
        let t = &self.config.transports;
        let can_upgrade = kind == TransportKind::Polling
            && t.upgrade
            && t.allows(TransportKind::WebSocket)
            && h.upgrades.iter().any(|u| u == "websocket");
        self.engine.phase = EnginePhase::Open(Box::new(Session {
            sid: h.sid,
            max_payload: h.max_payload,
            ping_window,
            ping_deadline: self.now.plus_millis(ping_window),
            opened_at: self.now,
            transport,
            upgrade: Upgrade::None,
            queue: VecDeque::new(),
            decoder: socketio::Decoder::new(self.config.max_attachments),
            can_upgrade,
        }));
        if can_upgrade {
            self.start_probe();
        }
        self.sockets_engine_open();
        self.poll_again();
    }

    fn open_failed(&mut self, message: &str) {
        let EnginePhase::Opening { kind, tried, .. } = self.engine.phase else { return };
        self.engine.phase = EnginePhase::Idle;
        if kind == TransportKind::WebSocket {
            self.engine.ws_failures = self.engine.ws_failures.saturating_add(1);
        }
        let t = self.config.transports;
        if t.try_all_transports && usize::from(tried) < t.order.iter().flatten().count() {
            let next = t.order.iter().flatten().find(|k| **k != kind).copied();
            if next.is_some() {
                self.start_open(next, tried);
                return;
            }
        }
        self.next_server(true);
        let will_retry = self.config.reconnect.enabled && !self.reconnect_exhausted();
        let fallback_pending =
            will_retry && kind == TransportKind::WebSocket && t.fallback_after > 0 && t.allows(TransportKind::Polling);
        self.sockets_connect_error(message, will_retry, fallback_pending);
        self.schedule_reconnect(DisconnectReason::TransportError);
    }

    fn reconnect_exhausted(&self) -> bool {
        self.config.reconnect.max_attempts.is_some_and(|m| self.engine.attempts >= m)
    }

    /// Waits before the next attempt, or gives up.
    fn schedule_reconnect(&mut self, reason: DisconnectReason) {
        if !self.any_active() {
            self.engine.phase = EnginePhase::Idle;
            return;
        }
        if !self.config.reconnect.enabled || self.reconnect_exhausted() {
            self.engine.phase = EnginePhase::Idle;
            let why = if self.config.reconnect.enabled { DisconnectReason::ReconnectFailed } else { reason };
            self.sockets_give_up(why);
            return;
        }
        let delay = self.config.reconnect.backoff.delay_ms(self.engine.attempts, &mut self.rng);
        self.engine.attempts = self.engine.attempts.saturating_add(1);
        let attempt = self.engine.attempts;
        self.engine.phase = EnginePhase::Waiting { until: self.now.plus_millis(delay) };
        self.sockets_state(ConnectionState::Reconnecting { attempt, delay: std::time::Duration::from_millis(delay) });
        self.update_feed();
    }

    /// Online or visible again: skip the rest of the backoff delay.
    pub(super) fn retry_now(&mut self) {
        if let EnginePhase::Waiting { .. } = self.engine.phase {
            self.start_open(None, 0);
        }
    }

    pub(super) fn on_offline(&mut self) {
        if matches!(self.engine.phase, EnginePhase::Open(_) | EnginePhase::Opening { .. }) {
            self.close_engine(DisconnectReason::TransportClose);
        }
    }

    // ---------------------------------------------------------------- closing

    /// Drops the transport(s) without a goodbye and tells every namespace.
    /// Closes the session because of `fault`, which is reported first.
    pub(super) fn fail_engine(&mut self, fault: Fault) {
        let reason = match fault {
            Fault::Engine(_) | Fault::Socket(_) | Fault::Protocol(_) => DisconnectReason::ParseError,
            _ => DisconnectReason::TransportError,
        };
        self.push(Output::Fault(fault));
        self.close_engine(reason);
    }

    pub(super) fn close_engine(&mut self, reason: DisconnectReason) {
        let phase = std::mem::take(&mut self.engine.phase);
        let mut stable = false;
        match phase {
            EnginePhase::Open(s) => {
                stable = self.now.since(s.opened_at) >= self.config.reconnect.stable_after;
                self.release_session(&s);
            }
            EnginePhase::Opening { link, .. } => self.release_link(link),
            EnginePhase::Idle | EnginePhase::Waiting { .. } => return,
        }
        if stable {
            self.engine.attempts = 0;
        }
        // A stable connection that is lost starts a new series at the preferred server; one
        // that did not last counts as a failed attempt of its server.
        self.next_server(!stable);
        self.sockets_engine_closed(reason);
        self.schedule_reconnect(reason);
    }

    fn release_link(&mut self, link: Link) {
        match link {
            Link::Ws { conn } => self.push(Output::CloseWebSocket(conn)),
            Link::Poll { get } => self.push(Output::AbortHttp(get)),
        }
    }

    fn release_session(&mut self, s: &Session) {
        match s.transport {
            Active::Ws(c) => self.push(Output::CloseWebSocket(c)),
            Active::Poll { get, post } => {
                for r in [get, post].into_iter().flatten() {
                    self.push(Output::AbortHttp(r));
                }
            }
        }
        if let Upgrade::Probing { conn, .. } | Upgrade::Pausing { conn } = s.upgrade {
            self.push(Output::CloseWebSocket(conn));
        }
    }

    /// Closes the engine politely when no namespace wants it any more (POST `1` over polling).
    pub(super) fn close_engine_if_unused(&mut self) {
        if self.any_active() {
            return;
        }
        let phase = std::mem::take(&mut self.engine.phase);
        match phase {
            EnginePhase::Open(s) => {
                if let Active::Poll { get, post } = s.transport {
                    // The official client POSTs `1` after what is still queued (its DISCONNECTs);
                    // only one POST may be in flight, so the session drains in the background.
                    let mut queue = s.queue;
                    queue.push_back(Packet::Close);
                    self.engine.draining = Some(Drain { sid: s.sid, max_payload: s.max_payload, post, queue });
                    self.drain_next();
                    if let Some(g) = get {
                        self.push(Output::AbortHttp(g));
                    }
                    if let Upgrade::Probing { conn, .. } | Upgrade::Pausing { conn } = s.upgrade {
                        self.push(Output::CloseWebSocket(conn));
                    }
                } else {
                    self.release_session(&s);
                }
            }
            EnginePhase::Opening { link, .. } => self.release_link(link),
            EnginePhase::Idle | EnginePhase::Waiting { .. } => {}
        }
        self.engine.attempts = 0;
        self.next_server(false);
    }

    /// Sends the next POST of a closing polling session once the previous one is answered.
    fn drain_next(&mut self) {
        let Some(d) = &mut self.engine.draining else { return };
        if d.post.is_some() {
            return;
        }
        let Some(body) = engineio::take_polling_batch(&mut d.queue, d.max_payload) else {
            self.engine.draining = None;
            return;
        };
        let id = RequestId(self.next_id);
        self.next_id += 1;
        d.post = Some(id);
        let sid = d.sid.clone();
        let url = self.eio_url(TransportKind::Polling, Some(&sid));
        self.push(Output::Http(poll_post(id, url, body)));
    }

    /// Answers for the draining session's POSTs; true when `id` was one.
    fn drain_answered(&mut self, id: RequestId, ok: bool) -> bool {
        let Some(d) = &mut self.engine.draining else { return false };
        if d.post != Some(id) {
            return false;
        }
        d.post = None;
        if ok {
            self.drain_next();
        } else {
            // The session is gone anyway; nothing more to say to it.
            self.engine.draining = None;
        }
        true
    }

    // ---------------------------------------------------------------- sending

    /// Sends one Engine.IO packet on the current transport (queued while polling is busy or paused).
    pub(super) fn engine_send(&mut self, packet: Packet<'static>) {
        self.engine_send_all(std::iter::once(packet));
    }

    /// Sends the packets of one Socket.IO packet (a header and its attachments) together: over
    /// polling they share one POST body when they fit under `maxPayload`, as in the official client.
    pub(super) fn engine_send_all(&mut self, packets: impl IntoIterator<Item = Packet<'static>>) {
        let EnginePhase::Open(s) = &mut self.engine.phase else { return };
        match (s.transport, s.upgrade) {
            (Active::Ws(conn), _) => {
                for packet in packets {
                    let frame = engineio::encode_ws(&packet);
                    self.push(Output::SendWebSocket { conn, frame });
                }
            }
            _ => {
                s.queue.extend(packets);
                self.flush_poll();
            }
        }
    }

    fn flush_poll(&mut self) {
        let EnginePhase::Open(s) = &mut self.engine.phase else { return };
        let Active::Poll { post: post @ None, .. } = &mut s.transport else { return };
        if matches!(s.upgrade, Upgrade::Pausing { .. }) {
            return;
        }
        let Some(body) = engineio::take_polling_batch(&mut s.queue, s.max_payload) else { return };
        let id = RequestId(self.next_id);
        self.next_id += 1;
        *post = Some(id);
        let sid = s.sid.clone();
        let url = self.eio_url(TransportKind::Polling, Some(&sid));
        self.push(Output::Http(poll_post(id, url, body)));
    }

    /// Keeps one GET in flight while on polling and not pausing for an upgrade.
    fn poll_again(&mut self) {
        let EnginePhase::Open(s) = &mut self.engine.phase else { return };
        let Active::Poll { get: get @ None, .. } = &mut s.transport else { return };
        if matches!(s.upgrade, Upgrade::Pausing { .. }) {
            return;
        }
        let id = RequestId(self.next_id);
        self.next_id += 1;
        *get = Some(id);
        let sid = s.sid.clone();
        let url = self.eio_url(TransportKind::Polling, Some(&sid));
        self.push(Output::Http(poll_get(id, url)));
    }

    // ---------------------------------------------------------------- upgrade

    fn start_probe(&mut self) {
        let EnginePhase::Open(s) = &self.engine.phase else { return };
        if !s.can_upgrade {
            return;
        }
        let sid = s.sid.clone();
        let url = self.eio_url(TransportKind::WebSocket, Some(&sid));
        let conn = ConnId(self.next_id());
        let deadline = self.now + self.config.transports.probe_timeout;
        if let EnginePhase::Open(s) = &mut self.engine.phase {
            s.upgrade = Upgrade::Probing { conn, deadline };
        }
        self.push(Output::OpenWebSocket { conn, url });
    }

    fn abort_probe(&mut self) {
        let retry = self.now + self.config.transports.reprobe_every;
        let EnginePhase::Open(s) = &mut self.engine.phase else { return };
        let (Upgrade::Probing { conn, .. } | Upgrade::Pausing { conn }) = s.upgrade else { return };
        s.upgrade = Upgrade::RetryAt(retry);
        self.push(Output::CloseWebSocket(conn));
        // A pause may have held back the GET and POST.
        self.poll_again();
        self.flush_poll();
    }

    fn maybe_finish_upgrade(&mut self) {
        let EnginePhase::Open(s) = &mut self.engine.phase else { return };
        let (Upgrade::Pausing { conn }, Active::Poll { get: None, post: None }) = (s.upgrade, s.transport) else {
            return;
        };
        s.upgrade = Upgrade::None;
        s.transport = Active::Ws(conn);
        let queued: Vec<Packet<'static>> = Vec::from(std::mem::take(&mut s.queue));
        // A WebSocket that works ends the run of consecutive failures: the next reconnect opens
        // with WebSocket again instead of staying on the polling fallback.
        self.engine.ws_failures = 0;
        self.push(Output::SendWebSocket { conn, frame: engineio::encode_ws(&Packet::Upgrade) });
        for p in queued {
            let frame = engineio::encode_ws(&p);
            self.push(Output::SendWebSocket { conn, frame });
        }
        self.sockets_transport_changed(TransportKind::WebSocket);
    }

    // ---------------------------------------------------------------- inputs

    pub(super) fn on_ws_opened(&mut self, c: ConnId) {
        match &self.engine.phase {
            EnginePhase::Opening { link: Link::Ws { conn }, .. } if *conn == c => {}
            EnginePhase::Open(s) if matches!(s.upgrade, Upgrade::Probing { conn, .. } if conn == c) => {
                let frame = engineio::encode_ws(&Packet::Ping { probe: true });
                self.push(Output::SendWebSocket { conn: c, frame });
            }
            EnginePhase::Open(s) if matches!(s.transport, Active::Ws(conn) if conn == c) => {}
            // A socket we no longer want (stale generation): close it so it does not leak.
            _ => self.push(Output::CloseWebSocket(c)),
        }
    }

    pub(super) fn on_ws_text(&mut self, c: ConnId, text: String) {
        match &self.engine.phase {
            EnginePhase::Opening { kind, link, .. } if matches!(link, Link::Ws { conn } if *conn == c) => {
                let (kind, link) = (*kind, *link);
                match engineio::decode_text(&text) {
                    Ok(Packet::Open(h)) => self.on_handshake(kind, link, h),
                    _ => self.open_failed("websocket error"),
                }
            }
            EnginePhase::Open(s) if matches!(s.transport, Active::Ws(conn) if conn == c) => {
                if text.starts_with('4') {
                    // A message (nearly every frame): hand the frame itself on, without its type
                    // byte, instead of copying its text.
                    let mut text = text;
                    text.remove(0);
                    self.on_packet(Packet::Message(std::borrow::Cow::Owned(text)));
                    return;
                }
                match engineio::decode_text(&text) {
                    Ok(p) => self.on_packet(p),
                    Err(e) => self.fail_engine(Fault::Engine(e)),
                }
            }
            EnginePhase::Open(s) => match s.upgrade {
                Upgrade::Probing { conn, .. } if conn == c => {
                    if engineio::decode_text(&text) == Ok(Packet::Pong { probe: true }) {
                        if let EnginePhase::Open(s) = &mut self.engine.phase {
                            s.upgrade = Upgrade::Pausing { conn };
                        }
                        self.maybe_finish_upgrade();
                    } else {
                        self.abort_probe();
                    }
                }
                Upgrade::Pausing { conn } if conn == c => self.abort_probe(),
                _ => {}
            },
            _ => {}
        }
    }

    pub(super) fn on_ws_binary(&mut self, c: ConnId, data: Vec<u8>) {
        match &self.engine.phase {
            EnginePhase::Open(s) if matches!(s.transport, Active::Ws(conn) if conn == c) => {
                self.on_packet(Packet::Binary(data.into()));
            }
            EnginePhase::Opening { link: Link::Ws { conn }, .. } if *conn == c => self.open_failed("websocket error"),
            EnginePhase::Open(s) if matches!(s.upgrade, Upgrade::Probing { conn, .. } | Upgrade::Pausing { conn } if conn == c) =>
            {
                self.abort_probe();
            }
            _ => {}
        }
    }

    pub(super) fn on_ws_closed(&mut self, c: ConnId, _code: Option<u16>, error: Option<String>) {
        match &self.engine.phase {
            EnginePhase::Opening { link: Link::Ws { conn }, .. } if *conn == c => self.open_failed("websocket error"),
            EnginePhase::Open(s) if matches!(s.transport, Active::Ws(conn) if conn == c) => match error {
                Some(e) => self.fail_engine(Fault::WebSocket(e)),
                None => self.close_engine(DisconnectReason::TransportClose),
            },
            EnginePhase::Open(s) if matches!(s.upgrade, Upgrade::Probing { conn, .. } | Upgrade::Pausing { conn } if conn == c) =>
            {
                self.abort_probe();
            }
            _ => {}
        }
    }

    pub(super) fn on_http_response(&mut self, id: RequestId, status: u16, body: Vec<u8>) {
        if self.drain_answered(id, status == 200) {
            return;
        }
        match &mut self.engine.phase {
            EnginePhase::Opening { kind, link, .. } if matches!(*link, Link::Poll { get } if get == id) => {
                let (kind, link) = (*kind, *link);
                if status != 200 {
                    return self.open_failed("xhr poll error");
                }
                let Ok(text) = String::from_utf8(body) else { return self.open_failed("xhr poll error") };
                let mut packets = engineio::decode_payload(&text);
                match packets.next() {
                    Some(Ok(Packet::Open(h))) => {
                        let rest: Vec<_> = packets.map(|p| p.map(owned)).collect();
                        self.on_handshake(kind, link, h);
                        self.on_polled(rest);
                    }
                    _ => self.open_failed("xhr poll error"),
                }
            }
            EnginePhase::Open(s) => match &mut s.transport {
                Active::Poll { get, .. } if *get == Some(id) => {
                    *get = None;
                    if status != 200 {
                        return self.fail_engine(Fault::HttpStatus(status));
                    }
                    let Ok(text) = String::from_utf8(body) else {
                        return self.fail_engine(Fault::Protocol("polling payload is not UTF-8"));
                    };
                    let packets: Vec<_> = engineio::decode_payload(&text).map(|p| p.map(owned)).collect();
                    self.on_polled(packets);
                    self.poll_again();
                    self.maybe_finish_upgrade();
                }
                Active::Poll { post, .. } if *post == Some(id) => {
                    *post = None;
                    if status != 200 {
                        return self.fail_engine(Fault::HttpStatus(status));
                    }
                    self.flush_poll();
                    self.maybe_finish_upgrade();
                }
                _ => {}
            },
            _ => {}
        }
    }

    pub(super) fn on_http_failed(&mut self, id: RequestId, error: HttpError) {
        if self.drain_answered(id, false) {
            return;
        }
        match &self.engine.phase {
            EnginePhase::Opening { link: Link::Poll { get }, .. } if *get == id => self.open_failed("xhr poll error"),
            EnginePhase::Open(s) => match s.transport {
                Active::Poll { get, post } if get == Some(id) || post == Some(id) => {
                    self.fail_engine(Fault::Http(error));
                }
                _ => {}
            },
            _ => {}
        }
    }

    fn on_polled(&mut self, packets: Vec<Result<Packet<'static>, engineio::Error>>) {
        for p in packets {
            if !self.engine_is_open() {
                return;
            }
            match p {
                Ok(p) => self.on_packet(p),
                Err(e) => return self.fail_engine(Fault::Engine(e)),
            }
        }
    }

    fn on_packet(&mut self, packet: Packet<'_>) {
        let EnginePhase::Open(s) = &mut self.engine.phase else { return };
        let decoded = match packet {
            Packet::Ping { probe: false } => {
                s.ping_deadline = self.now.plus_millis(s.ping_window);
                self.engine_send(Packet::Pong { probe: false });
                return;
            }
            Packet::Close => return self.close_engine(DisconnectReason::TransportClose),
            Packet::Message(text) => s.decoder.text(text.into_owned()),
            Packet::Binary(data) => s.decoder.binary(data.into_owned()),
            Packet::Noop | Packet::Upgrade | Packet::Pong { .. } | Packet::Ping { probe: true } => return,
            Packet::Open(_) => return self.fail_engine(Fault::Protocol("OPEN packet in an open session")),
        };
        match decoded {
            Ok(Some(p)) => self.socket_packet(p),
            Ok(None) => {}
            Err(e) => self.fail_engine(Fault::Socket(e)),
        }
    }

    /// The wall-clock check socket.io-client makes before each emit: a throttled timer must not
    /// keep a dead connection alive.
    pub(super) fn check_ping_expiry(&mut self) {
        if let EnginePhase::Open(s) = &self.engine.phase
            && self.now >= s.ping_deadline
        {
            self.close_engine(DisconnectReason::PingTimeout);
        }
    }

    pub(super) fn engine_timeouts(&mut self) {
        match &self.engine.phase {
            EnginePhase::Opening { deadline, .. } if self.now >= *deadline => self.open_failed("timeout"),
            EnginePhase::Waiting { until } if self.now >= *until => self.start_open(None, 0),
            EnginePhase::Open(s) => match s.upgrade {
                Upgrade::Probing { deadline, .. } if self.now >= deadline => self.abort_probe(),
                Upgrade::RetryAt(t) if self.now >= t => self.start_probe(),
                _ => {}
            },
            _ => {}
        }
    }

    /// The sid of the engine session (not the namespace's socket id).
    pub fn engine_sid(&self) -> Option<&str> {
        match &self.engine.phase {
            EnginePhase::Open(s) => Some(&s.sid),
            _ => None,
        }
    }

    /// True while a closed polling session still has packets (its DISCONNECTs and `1`) to POST;
    /// a driver that is shutting down keeps running until this is false.
    pub fn is_flushing(&self) -> bool {
        self.engine.draining.is_some()
    }

    /// Milliseconds until the next reconnection attempt, if waiting for one.
    pub fn reconnect_in(&self) -> Option<u64> {
        match self.engine.phase {
            EnginePhase::Waiting { until } => Some(ms(until.since(self.now))),
            _ => None,
        }
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
