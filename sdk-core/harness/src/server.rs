//! A fake Engine.IO v4 + Socket.IO v5 server, sans-IO like the client: it is handed what arrived
//! (a WebSocket opening, a frame, an HTTP request) with the virtual time, and answers with
//! [`ServerOut`]s that the world carries back over the link. It is strict: whatever the real Node
//! server would punish (a client ping, two GETs at once, a packet for a namespace that is not
//! connected, a duplicate CONNECT) is recorded in [`Server::violations`] and closes the session.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use tidings_core::engineio::{self, Handshake, Packet as EioPacket};
use tidings_core::json;
use tidings_core::rng::Rng;
use tidings_core::socketio::{self, Decoder, PacketType};

/// What the server sends back (ids are the client's `ConnId`/`RequestId` numbers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerOut {
    /// The WebSocket opening handshake succeeded.
    WsAccept(u64),
    /// The WebSocket opening failed (HTTP error on the upgrade request).
    WsRefuse(u64, String),
    /// A text frame.
    WsText(u64, String),
    /// The server closes the WebSocket (close code as seen by the client).
    WsClose(u64, Option<u16>),
    /// An HTTP response.
    Http(u64, u16, String),
}

/// A namespace the server serves.
#[derive(Debug, Clone, Default)]
pub struct NsRule {
    /// The `token` member the auth must carry (`None`: anything goes).
    pub token: Option<String>,
    /// A middleware that always refuses with this message (and `data:{"code":42}`).
    pub refuse: Option<String>,
}

/// Server options (Node socket.io names in comments).
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// `pingInterval`
    pub ping_interval: u64,
    /// `pingTimeout`
    pub ping_timeout: u64,
    /// `maxHttpBufferSize`, sent as `maxPayload`
    pub max_payload: u64,
    /// Offer `["websocket"]` in a polling handshake.
    pub offer_upgrade: bool,
    /// `connectionStateRecovery` on.
    pub recovery: bool,
    /// `connectionStateRecovery.maxDisconnectionDuration`
    pub max_disconnection: u64,
    /// Also replay this many events from before the client's offset (an at-least-once adapter):
    /// exercises the client's de-duplication.
    pub replay_overlap: usize,
    /// Namespaces served; any other gets "Invalid namespace".
    pub namespaces: BTreeMap<String, NsRule>,
    /// Room join / leave event names.
    pub room_events: tidings_core::RoomEvents,
}

impl Default for ServerConfig {
    fn default() -> Self {
        let mut namespaces = BTreeMap::new();
        namespaces.insert("/".to_string(), NsRule::default());
        Self {
            ping_interval: 25_000,
            ping_timeout: 20_000,
            max_payload: 1_000_000,
            offer_upgrade: true,
            recovery: true,
            max_disconnection: 120_000,
            replay_overlap: 0,
            namespaces,
            room_events: tidings_core::RoomEvents::default(),
        }
    }
}

/// An event the server received from the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// Virtual time.
    pub at: u64,
    /// Namespace.
    pub nsp: String,
    /// Event name.
    pub event: String,
    /// The arguments as a JSON array text.
    pub args: String,
    /// The ack id the client asked for.
    pub ack_id: Option<u64>,
    /// Whether the server answered the ack (false when the ack policy dropped it).
    pub acked: bool,
    /// Binary attachments, reassembled.
    pub attachments: Vec<Vec<u8>>,
}

/// A successful CONNECT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    /// Virtual time.
    pub at: u64,
    /// Namespace.
    pub nsp: String,
    /// Socket id given.
    pub sid: String,
    /// Recovery session id given.
    pub pid: Option<String>,
    /// The session was restored.
    pub recovered: bool,
    /// The CONNECT payload as sent.
    pub auth: Option<String>,
    /// The engine session and its transport at the time.
    pub transport: &'static str,
}

/// One event emitted by the server (kept for recovery replay and the REST feed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    /// Order in the log (1-based).
    pub seq: u64,
    /// Virtual time.
    pub at: u64,
    /// Namespace.
    pub nsp: String,
    /// Event name.
    pub event: String,
    /// Arguments without brackets (`"a",1`), offset not included.
    pub args: String,
    /// The recovery offset (`o<seq>`).
    pub offset: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transport {
    Ws(u64),
    Poll,
}

#[derive(Debug)]
struct Sock {
    sid: String,
    pid: Option<String>,
    rooms: BTreeSet<String>,
    next_ack: u64,
}

#[derive(Debug)]
struct Session {
    sid: String,
    transport: Transport,
    /// Probe WebSocket and whether `3probe` was sent.
    probe: Option<(u64, bool)>,
    pending_get: Option<u64>,
    outbox: VecDeque<String>,
    next_ping: Option<u64>,
    pong_deadline: Option<u64>,
    sockets: BTreeMap<String, Sock>,
    decoder: Decoder,
}

#[derive(Debug)]
struct Saved {
    nsp: String,
    sid: String,
    pid: String,
    rooms: BTreeSet<String>,
    at: u64,
}

/// The fake server. Fields are public so that tests can read what happened and flip behaviours.
#[derive(Debug)]
pub struct Server {
    /// Options.
    pub cfg: ServerConfig,
    /// Send pings (false: the "server stops pinging" fault; pong deadlines are not enforced either).
    pub pinging: bool,
    /// The Socket.IO endpoint is down: WebSocket openings fail, polling gets 503. The feed still works.
    pub engine_down: bool,
    /// Drop the acks of the next N acked events.
    pub drop_next_acks: u32,
    /// Never ack these events.
    pub drop_acks_for: BTreeSet<String>,
    /// Drop each ack with this probability.
    pub ack_drop_rate: f64,
    /// The REST feed answers with this status instead (e.g. 503).
    pub feed_status: Option<u16>,
    /// Every event received from the client, retries included.
    pub received: Vec<Received>,
    /// Every successful CONNECT.
    pub connections: Vec<Connection>,
    /// Every socket that went away: (time, namespace, sid, reason).
    pub disconnects: Vec<(u64, String, String, String)>,
    /// Protocol violations by the client (should stay empty).
    pub violations: Vec<String>,
    /// Acks the client sent for server events: (time, ack id, args JSON).
    pub client_acks: Vec<(u64, u64, String)>,
    /// Every event the server emitted.
    pub log: Vec<LogEntry>,
    /// Engine handshakes: (time, transport name).
    pub handshakes: Vec<(u64, &'static str)>,
    /// Completed upgrades to WebSocket.
    pub upgrades: Vec<u64>,
    /// Feed GET URLs and `Authorization` values.
    pub feed_polls: Vec<(u64, String, Option<String>)>,
    /// Event ids acknowledged through the feed.
    pub feed_acked: Vec<String>,
    rng: Rng,
    next_id: u64,
    sessions: BTreeMap<String, Session>,
    saved: Vec<Saved>,
    out: Vec<ServerOut>,
    now: u64,
}

/// The value of `key` in a URL's query string.
pub fn query_param<'a>(url: &'a str, key: &str) -> Option<&'a str> {
    let q = url.split_once('?')?.1;
    q.split('&').find_map(|kv| kv.split_once('=').filter(|(k, _)| *k == key).map(|(_, v)| v))
}

/// The string member `key` of a JSON object text.
pub fn str_member(obj: &str, key: &str) -> Option<String> {
    let members = json::object_members(obj).ok()?;
    let (_, r) = members.into_iter().rev().find(|(k, _)| k == key)?;
    json::parse_string(obj.get(r)?).ok().map(|s| s.into_owned())
}

fn json_str(s: &str) -> String {
    let mut out = String::new();
    json::write_string(&mut out, s);
    out
}

fn eio_record(p: &EioPacket<'_>) -> String {
    let mut out = String::new();
    engineio::encode_polling_record(p, &mut out);
    out
}

fn msg(text: String) -> String {
    eio_record(&EioPacket::Message(text.into()))
}

impl Server {
    /// A server with `cfg`, its randomness (ack drops) seeded with `seed`.
    pub fn new(cfg: ServerConfig, seed: u64) -> Self {
        Self {
            cfg,
            pinging: true,
            engine_down: false,
            drop_next_acks: 0,
            drop_acks_for: BTreeSet::new(),
            ack_drop_rate: 0.0,
            feed_status: None,
            received: Vec::new(),
            connections: Vec::new(),
            disconnects: Vec::new(),
            violations: Vec::new(),
            client_acks: Vec::new(),
            log: Vec::new(),
            handshakes: Vec::new(),
            upgrades: Vec::new(),
            feed_polls: Vec::new(),
            feed_acked: Vec::new(),
            rng: Rng::new(seed ^ 0x5EED_5EED),
            next_id: 1,
            sessions: BTreeMap::new(),
            saved: Vec::new(),
            out: Vec::new(),
            now: 0,
        }
    }

    fn id(&mut self, prefix: &str) -> String {
        let n = self.next_id;
        self.next_id += 1;
        format!("{prefix}{n}")
    }

    fn take(&mut self) -> Vec<ServerOut> {
        std::mem::take(&mut self.out)
    }

    /// Number of live engine sessions.
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// The socket id of the namespace on the live session, if connected.
    pub fn socket_sid(&self, nsp: &str) -> Option<String> {
        self.sessions.values().find_map(|s| s.sockets.get(nsp).map(|k| k.sid.clone()))
    }

    /// Rooms of the namespace's live socket.
    pub fn rooms(&self, nsp: &str) -> BTreeSet<String> {
        self.sessions.values().find_map(|s| s.sockets.get(nsp).map(|k| k.rooms.clone())).unwrap_or_default()
    }

    /// The transport of the (single) live session.
    pub fn transport(&self) -> Option<&'static str> {
        self.sessions.values().next().map(|s| match s.transport {
            Transport::Ws(_) => "websocket",
            Transport::Poll => "polling",
        })
    }

    /// Events received with this name, in order.
    pub fn received_named(&self, event: &str) -> Vec<&Received> {
        self.received.iter().filter(|r| r.event == event).collect()
    }

    // ------------------------------------------------------------------ timers

    /// The next time [`Server::tick`] has something to do.
    pub fn next_deadline(&self) -> Option<u64> {
        if !self.pinging {
            return None;
        }
        self.sessions.values().flat_map(|s| [s.next_ping, s.pong_deadline]).flatten().min()
    }

    /// Sends due pings and closes sessions whose pong did not come.
    pub fn tick(&mut self, now: u64) -> Vec<ServerOut> {
        self.now = now;
        if self.pinging {
            let sids: Vec<String> = self.sessions.keys().cloned().collect();
            for sid in sids {
                let Some(s) = self.sessions.get_mut(&sid) else { continue };
                if s.pong_deadline.is_some_and(|d| d <= now) {
                    self.close_session(&sid, "ping timeout", true);
                    continue;
                }
                if s.next_ping.is_some_and(|d| d <= now) {
                    s.next_ping = None;
                    s.pong_deadline = Some(now + self.cfg.ping_timeout);
                    self.send(&sid, eio_record(&EioPacket::Ping { probe: false }));
                }
            }
        }
        self.take()
    }

    // ------------------------------------------------------------------ sending

    fn send(&mut self, sid: &str, record: String) {
        let Some(s) = self.sessions.get_mut(sid) else { return };
        match s.transport {
            Transport::Ws(conn) => self.out.push(ServerOut::WsText(conn, record)),
            Transport::Poll => {
                s.outbox.push_back(record);
                if let Some(get) = s.pending_get.take() {
                    let body = drain_outbox(&mut s.outbox);
                    self.out.push(ServerOut::Http(get, 200, body));
                }
            }
        }
    }

    fn send_sio(&mut self, sid: &str, kind: PacketType, nsp: &str, id: Option<u64>, data: Option<&str>) {
        self.send(sid, msg(socketio::encode(kind, nsp, id, data, 0)));
    }

    /// Emits `event` with `args` (JSON values without brackets) to the namespace, appending the
    /// recovery offset; logged for replay even when no client is connected.
    pub fn emit(&mut self, now: u64, nsp: &str, event: &str, args: &str) {
        self.now = now;
        let seq = self.log.len() as u64 + 1;
        let offset = format!("o{seq}");
        self.log.push(LogEntry {
            seq,
            at: now,
            nsp: nsp.to_string(),
            event: event.to_string(),
            args: args.to_string(),
            offset: offset.clone(),
        });
        let target = self.sessions.iter().find(|(_, s)| s.sockets.contains_key(nsp)).map(|(k, _)| k.clone());
        if let Some(sid) = target {
            let data = self.event_data(event, args, Some(&offset));
            self.send_sio(&sid, PacketType::Event, nsp, None, Some(&data));
        }
    }

    /// Sends an EVENT with exactly this data (a JSON array) and nothing appended: what a
    /// volatile emit looks like (never logged, so never replayed).
    pub fn send_raw_event(&mut self, nsp: &str, data: &str) {
        let target = self.sessions.iter().find(|(_, s)| s.sockets.contains_key(nsp)).map(|(k, _)| k.clone());
        if let Some(sid) = target {
            self.send_sio(&sid, PacketType::Event, nsp, None, Some(data));
        }
    }

    /// Emits an event that asks the client for an ack (acks carry no offset).
    pub fn emit_with_ack(&mut self, now: u64, nsp: &str, event: &str, args: &str) -> Option<u64> {
        self.now = now;
        let sid = self.sessions.iter().find(|(_, s)| s.sockets.contains_key(nsp)).map(|(k, _)| k.clone())?;
        let s = self.sessions.get_mut(&sid)?.sockets.get_mut(nsp)?;
        let id = s.next_ack;
        s.next_ack += 1;
        let data = self.event_data(event, args, None);
        self.send_sio(&sid, PacketType::Event, nsp, Some(id), Some(&data));
        Some(id)
    }

    fn event_data(&self, event: &str, args: &str, offset: Option<&str>) -> String {
        let mut data = format!("[{}", json_str(event));
        if !args.is_empty() {
            data.push(',');
            data.push_str(args);
        }
        if let Some(o) = offset.filter(|_| self.cfg.recovery) {
            data.push(',');
            data.push_str(&json_str(o));
        }
        data.push(']');
        data
    }

    /// `socket.disconnect()`: sends DISCONNECT for the namespace (no recovery session is kept).
    pub fn disconnect_socket(&mut self, now: u64, nsp: &str) -> Vec<ServerOut> {
        self.now = now;
        let target = self.sessions.iter().find(|(_, s)| s.sockets.contains_key(nsp)).map(|(k, _)| k.clone());
        if let Some(sid) = target {
            self.send_sio(&sid, PacketType::Disconnect, nsp, None, None);
            if let Some(k) = self.sessions.get_mut(&sid).and_then(|s| s.sockets.remove(nsp)) {
                self.disconnects.push((now, nsp.to_string(), k.sid, "server namespace disconnect".into()));
            }
        }
        self.take()
    }

    /// `socket.conn.close()`: closes every engine session without a DISCONNECT ("forced close").
    pub fn close_transports(&mut self, now: u64) -> Vec<ServerOut> {
        self.now = now;
        let sids: Vec<String> = self.sessions.keys().cloned().collect();
        for sid in sids {
            self.close_session(&sid, "forced close", true);
        }
        self.take()
    }

    // ------------------------------------------------------------------ closing

    fn close_session(&mut self, sid: &str, reason: &str, server_initiated: bool) {
        let Some(s) = self.sessions.remove(sid) else { return };
        let save = self.cfg.recovery
            && ["transport close", "transport error", "ping timeout", "forced close", "parse error"].contains(&reason);
        for (nsp, k) in s.sockets {
            self.disconnects.push((self.now, nsp.clone(), k.sid.clone(), reason.to_string()));
            if save && let Some(pid) = k.pid {
                self.saved.push(Saved { nsp, sid: k.sid, pid, rooms: k.rooms, at: self.now });
            }
        }
        if let Some((probe, _)) = s.probe {
            self.out.push(ServerOut::WsClose(probe, Some(1005)));
        }
        if server_initiated {
            match s.transport {
                Transport::Ws(conn) => self.out.push(ServerOut::WsClose(conn, Some(1005))),
                Transport::Poll => {
                    if let Some(get) = s.pending_get {
                        self.out.push(ServerOut::Http(get, 200, eio_record(&EioPacket::Close)));
                    }
                }
            }
        }
    }

    fn violation(&mut self, sid: &str, what: String) {
        self.violations.push(format!("t={} {what}", self.now));
        self.close_session(sid, "parse error", true);
    }

    // ------------------------------------------------------------------ WebSocket

    /// A WebSocket opening arrived.
    pub fn ws_open(&mut self, now: u64, conn: u64, url: &str) -> Vec<ServerOut> {
        self.now = now;
        if self.engine_down {
            self.out.push(ServerOut::WsRefuse(conn, "503 Service Unavailable".into()));
            return self.take();
        }
        if query_param(url, "EIO") != Some("4") || query_param(url, "transport") != Some("websocket") {
            self.violations.push(format!("t={now} bad websocket url {url}"));
            self.out.push(ServerOut::WsRefuse(conn, "400 Bad Request".into()));
            return self.take();
        }
        match query_param(url, "sid") {
            None => {
                let sid = self.new_session(Transport::Ws(conn));
                self.handshakes.push((now, "websocket"));
                self.out.push(ServerOut::WsAccept(conn));
                let open = self.handshake(&sid, false);
                self.out.push(ServerOut::WsText(conn, open));
            }
            Some(sid) => match self.sessions.get_mut(sid) {
                Some(s) if s.transport == Transport::Poll && s.probe.is_none() => {
                    s.probe = Some((conn, false));
                    self.out.push(ServerOut::WsAccept(conn));
                }
                _ => self.out.push(ServerOut::WsRefuse(conn, "400 Bad Request".into())),
            },
        }
        self.take()
    }

    fn new_session(&mut self, transport: Transport) -> String {
        let sid = self.id("E");
        self.sessions.insert(
            sid.clone(),
            Session {
                sid: sid.clone(),
                transport,
                probe: None,
                pending_get: None,
                outbox: VecDeque::new(),
                next_ping: Some(self.now + self.cfg.ping_interval),
                pong_deadline: None,
                sockets: BTreeMap::new(),
                decoder: Decoder::new(socketio::DEFAULT_MAX_ATTACHMENTS),
            },
        );
        sid
    }

    fn handshake(&self, sid: &str, polling: bool) -> String {
        let upgrades = if polling && self.cfg.offer_upgrade { vec!["websocket".to_string()] } else { vec![] };
        eio_record(&EioPacket::Open(Handshake {
            sid: sid.to_string(),
            upgrades,
            ping_interval: self.cfg.ping_interval,
            ping_timeout: self.cfg.ping_timeout,
            max_payload: self.cfg.max_payload,
        }))
    }

    fn session_of_conn(&self, conn: u64) -> Option<(String, bool)> {
        self.sessions.values().find_map(|s| {
            if s.transport == Transport::Ws(conn) {
                Some((s.sid.clone(), false))
            } else if s.probe.is_some_and(|(p, _)| p == conn) {
                Some((s.sid.clone(), true))
            } else {
                None
            }
        })
    }

    /// A text frame arrived.
    pub fn ws_text(&mut self, now: u64, conn: u64, text: &str) -> Vec<ServerOut> {
        self.now = now;
        let Some((sid, probe)) = self.session_of_conn(conn) else { return self.take() };
        if probe {
            self.on_probe_frame(&sid, conn, text);
        } else {
            self.on_record(&sid, text);
        }
        self.take()
    }

    /// A binary frame arrived.
    pub fn ws_binary(&mut self, now: u64, conn: u64, data: Vec<u8>) -> Vec<ServerOut> {
        self.now = now;
        if let Some((sid, false)) = self.session_of_conn(conn) {
            self.on_binary(&sid, data);
        }
        self.take()
    }

    /// The client closed (or lost) the WebSocket.
    pub fn ws_closed(&mut self, now: u64, conn: u64) -> Vec<ServerOut> {
        self.now = now;
        match self.session_of_conn(conn) {
            Some((sid, false)) => self.close_session(&sid, "transport close", false),
            Some((sid, true)) => {
                if let Some(s) = self.sessions.get_mut(&sid) {
                    s.probe = None;
                }
            }
            None => {}
        }
        self.take()
    }

    fn on_probe_frame(&mut self, sid: &str, conn: u64, text: &str) {
        let packet = engineio::decode_text(text).map(|p| eio_record(&p));
        let Some(s) = self.sessions.get_mut(sid) else { return };
        match packet.as_deref() {
            Ok("2probe") => {
                s.probe = Some((conn, true));
                self.out.push(ServerOut::WsText(conn, "3probe".into()));
                // Force the pending GET to return so the client can pause polling.
                if let Some(get) = s.pending_get.take() {
                    let body = if s.outbox.is_empty() { "6".to_string() } else { drain_outbox(&mut s.outbox) };
                    self.out.push(ServerOut::Http(get, 200, body));
                }
            }
            Ok("5") if s.probe == Some((conn, true)) => {
                s.probe = None;
                s.transport = Transport::Ws(conn);
                if let Some(get) = s.pending_get.take() {
                    self.out.push(ServerOut::Http(get, 200, "6".into()));
                }
                let queued: Vec<String> = s.outbox.drain(..).collect();
                for r in queued {
                    self.out.push(ServerOut::WsText(conn, r));
                }
                self.upgrades.push(self.now);
            }
            _ => {
                s.probe = None;
                self.violations.push(format!("t={} unexpected frame on probe: {text}", self.now));
                self.out.push(ServerOut::WsClose(conn, Some(1002)));
            }
        }
    }

    // ------------------------------------------------------------------ polling

    /// An HTTP request to the Engine.IO endpoint arrived.
    pub fn http(&mut self, now: u64, id: u64, post: bool, url: &str, body: Option<&str>) -> Vec<ServerOut> {
        self.now = now;
        if self.engine_down {
            self.out.push(ServerOut::Http(id, 503, "Service Unavailable".into()));
            return self.take();
        }
        if query_param(url, "EIO") != Some("4") || query_param(url, "transport") != Some("polling") {
            self.violations.push(format!("t={now} bad polling url {url}"));
            self.out.push(ServerOut::Http(id, 400, r#"{"code":0,"message":"Transport unknown"}"#.into()));
            return self.take();
        }
        let Some(sid) = query_param(url, "sid").map(str::to_string) else {
            if post {
                self.out.push(ServerOut::Http(id, 400, r#"{"code":2,"message":"Bad handshake method"}"#.into()));
            } else {
                let sid = self.new_session(Transport::Poll);
                self.handshakes.push((now, "polling"));
                let open = self.handshake(&sid, true);
                self.out.push(ServerOut::Http(id, 200, open));
            }
            return self.take();
        };
        let Some(s) = self.sessions.get_mut(&sid) else {
            self.out.push(ServerOut::Http(id, 400, r#"{"code":1,"message":"Session ID unknown"}"#.into()));
            return self.take();
        };
        if s.transport != Transport::Poll {
            self.out.push(ServerOut::Http(id, 400, r#"{"code":3,"message":"Bad request"}"#.into()));
            return self.take();
        }
        if post {
            self.out.push(ServerOut::Http(id, 200, "ok".into()));
            for record in body.unwrap_or_default().split(engineio::SEPARATOR) {
                if !self.sessions.contains_key(&sid) {
                    break;
                }
                match record.strip_prefix('b') {
                    Some(b64) => match engineio::base64_decode(b64) {
                        Some(data) => self.on_binary(&sid, data),
                        None => self.violation(&sid, format!("bad base64 record {record:?}")),
                    },
                    None => self.on_record(&sid, record),
                }
            }
        } else if s.pending_get.is_some() {
            self.violation(&sid, "overlapping GET".into());
            self.out.push(ServerOut::Http(id, 400, r#"{"code":3,"message":"Bad request"}"#.into()));
        } else if !s.outbox.is_empty() {
            let body = drain_outbox(&mut s.outbox);
            self.out.push(ServerOut::Http(id, 200, body));
        } else if s.probe.is_some_and(|(_, sent)| sent) {
            // Upgrading: answer at once so the client can finish the pause.
            self.out.push(ServerOut::Http(id, 200, "6".into()));
        } else {
            s.pending_get = Some(id);
        }
        self.take()
    }

    /// The client aborted a request (or the link dropped it): an aborted GET kills the session.
    pub fn http_aborted(&mut self, now: u64, id: u64) -> Vec<ServerOut> {
        self.now = now;
        let sid = self.sessions.values().find(|s| s.pending_get == Some(id)).map(|s| s.sid.clone());
        if let Some(sid) = sid {
            if let Some(s) = self.sessions.get_mut(&sid) {
                s.pending_get = None;
            }
            self.close_session(&sid, "transport error", false);
        }
        self.take()
    }

    // ------------------------------------------------------------------ packets

    fn on_record(&mut self, sid: &str, text: &str) {
        let packet = match engineio::decode_text(text) {
            Ok(p) => p,
            Err(e) => return self.violation(sid, format!("bad engine.io packet {text:?}: {e}")),
        };
        match packet {
            EioPacket::Pong { probe: false } => {
                if let Some(s) = self.sessions.get_mut(sid) {
                    s.pong_deadline = None;
                    s.next_ping = Some(self.now + self.cfg.ping_interval);
                }
            }
            EioPacket::Ping { .. } => self.violation(sid, "client sent a ping (invalid heartbeat direction)".into()),
            EioPacket::Close => self.close_session(sid, "transport close", false),
            EioPacket::Message(m) => {
                let decoded = match self.sessions.get_mut(sid) {
                    Some(s) => s.decoder.text(m.into_owned()),
                    None => return,
                };
                match decoded {
                    Ok(Some(p)) => self.on_sio(sid, p),
                    Ok(None) => {}
                    Err(e) => self.violation(sid, format!("bad socket.io packet {text:?}: {e:?}")),
                }
            }
            EioPacket::Noop | EioPacket::Upgrade | EioPacket::Pong { probe: true } => {}
            other => self.violation(sid, format!("unexpected engine.io packet {other:?}")),
        }
    }

    fn on_binary(&mut self, sid: &str, data: Vec<u8>) {
        let decoded = match self.sessions.get_mut(sid) {
            Some(s) => s.decoder.binary(data),
            None => return,
        };
        match decoded {
            Ok(Some(p)) => self.on_sio(sid, p),
            Ok(None) => {}
            Err(e) => self.violation(sid, format!("unexpected binary: {e:?}")),
        }
    }

    fn on_sio(&mut self, sid: &str, p: socketio::Packet) {
        let connected = self.sessions.get(sid).is_some_and(|s| s.sockets.contains_key(&p.nsp));
        let data = p.data.as_ref().map(|d| d.as_str().to_string());
        match p.kind {
            PacketType::Connect if connected => self.violation(sid, format!("duplicate CONNECT for {}", p.nsp)),
            PacketType::Connect => self.on_connect(sid, &p.nsp, data),
            _ if !connected => self.violation(sid, format!("{:?} for {} which is not connected", p.kind, p.nsp)),
            PacketType::Disconnect => {
                if let Some(k) = self.sessions.get_mut(sid).and_then(|s| s.sockets.remove(&p.nsp)) {
                    self.disconnects.push((self.now, p.nsp.clone(), k.sid, "client namespace disconnect".into()));
                }
            }
            PacketType::Event | PacketType::BinaryEvent => {
                self.on_event(sid, &p.nsp, p.id, &data.unwrap_or_default(), p.attachments)
            }
            PacketType::Ack | PacketType::BinaryAck => {
                self.client_acks.push((self.now, p.id.unwrap_or(u64::MAX), data.unwrap_or_default()));
            }
            PacketType::ConnectError => self.violation(sid, "client sent CONNECT_ERROR".into()),
        }
    }

    fn on_connect(&mut self, sid: &str, nsp: &str, auth: Option<String>) {
        let transport = match self.sessions.get(sid).map(|s| s.transport) {
            Some(Transport::Ws(_)) => "websocket",
            _ => "polling",
        };
        let Some(rule) = self.cfg.namespaces.get(nsp).cloned() else {
            return self.send_sio(sid, PacketType::ConnectError, nsp, None, Some(r#"{"message":"Invalid namespace"}"#));
        };
        let pid = auth.as_deref().and_then(|a| str_member(a, "pid"));
        let offset = auth.as_deref().and_then(|a| str_member(a, "offset"));
        if let (true, Some(pid), Some(offset)) = (self.cfg.recovery, &pid, &offset)
            && self.try_restore(sid, nsp, pid, offset, auth.clone(), transport)
        {
            return;
        }
        if let Some(message) = rule.refuse {
            let data = format!(r#"{{"message":{},"data":{{"code":42}}}}"#, json_str(&message));
            return self.send_sio(sid, PacketType::ConnectError, nsp, None, Some(&data));
        }
        if let Some(token) = rule.token
            && auth.as_deref().and_then(|a| str_member(a, "token")).as_deref() != Some(token.as_str())
        {
            return self.send_sio(sid, PacketType::ConnectError, nsp, None, Some(r#"{"message":"invalid token"}"#));
        }
        let socket_sid = self.id("S");
        let pid = self.cfg.recovery.then(|| self.id("P"));
        let mut data = format!("{{\"sid\":{}", json_str(&socket_sid));
        if let Some(p) = &pid {
            data.push_str(&format!(",\"pid\":{}", json_str(p)));
        }
        data.push('}');
        if let Some(s) = self.sessions.get_mut(sid) {
            let k = Sock { sid: socket_sid.clone(), pid: pid.clone(), rooms: BTreeSet::new(), next_ack: 0 };
            s.sockets.insert(nsp.to_string(), k);
        }
        self.connections.push(Connection {
            at: self.now,
            nsp: nsp.to_string(),
            sid: socket_sid,
            pid,
            recovered: false,
            auth,
            transport,
        });
        self.send_sio(sid, PacketType::Connect, nsp, None, Some(&data));
    }

    fn try_restore(
        &mut self,
        sid: &str,
        nsp: &str,
        pid: &str,
        offset: &str,
        auth: Option<String>,
        transport: &'static str,
    ) -> bool {
        let now = self.now;
        let max = self.cfg.max_disconnection;
        self.saved.retain(|s| now.saturating_sub(s.at) <= max);
        let Some(idx) = self.saved.iter().position(|s| s.pid == pid && s.nsp == nsp) else { return false };
        let Some(pos) = self.log.iter().position(|e| e.offset == offset) else { return false };
        let saved = self.saved.remove(idx);
        let from = pos.saturating_add(1).saturating_sub(self.cfg.replay_overlap);
        let missed: Vec<LogEntry> = self.log.iter().skip(from).filter(|e| e.nsp == nsp).cloned().collect();
        for e in missed {
            let data = self.event_data(&e.event, &e.args, Some(&e.offset));
            self.send_sio(sid, PacketType::Event, nsp, None, Some(&data));
        }
        let data = format!("{{\"sid\":{},\"pid\":{}}}", json_str(&saved.sid), json_str(&saved.pid));
        if let Some(s) = self.sessions.get_mut(sid) {
            let k = Sock { sid: saved.sid.clone(), pid: Some(saved.pid.clone()), rooms: saved.rooms, next_ack: 0 };
            s.sockets.insert(nsp.to_string(), k);
        }
        self.connections.push(Connection {
            at: now,
            nsp: nsp.to_string(),
            sid: saved.sid,
            pid: Some(saved.pid),
            recovered: true,
            auth,
            transport,
        });
        self.send_sio(sid, PacketType::Connect, nsp, None, Some(&data));
        true
    }

    fn on_event(&mut self, sid: &str, nsp: &str, ack_id: Option<u64>, data: &str, attachments: Vec<Vec<u8>>) {
        let items = json::array_elements(data).unwrap_or_default();
        let mut values = items.into_iter().filter_map(|r| data.get(r));
        let name = values.next().and_then(|n| json::parse_string(n).ok()).map(|n| n.into_owned()).unwrap_or_default();
        let rest: Vec<&str> = values.collect();
        let args = format!("[{}]", rest.join(","));
        let tidings_core::RoomEvents { join, leave } = self.cfg.room_events.clone();
        if name == join || name == leave {
            let room = rest.first().and_then(|r| json::parse_string(r).ok()).map(|r| r.into_owned());
            if let (Some(room), Some(k)) = (room, self.sessions.get_mut(sid).and_then(|s| s.sockets.get_mut(nsp))) {
                if name == join {
                    k.rooms.insert(room);
                } else {
                    k.rooms.remove(&room);
                }
            }
            if let Some(id) = ack_id {
                self.send_sio(sid, PacketType::Ack, nsp, Some(id), Some("[true]"));
            }
            return;
        }
        let drop = ack_id.is_some()
            && (self.drop_acks_for.contains(&name)
                || self.drop_next_acks > 0
                || (self.ack_drop_rate > 0.0 && self.rng.next_f64() < self.ack_drop_rate));
        if drop && self.drop_next_acks > 0 && !self.drop_acks_for.contains(&name) {
            self.drop_next_acks -= 1;
        }
        self.received.push(Received {
            at: self.now,
            nsp: nsp.to_string(),
            event: name,
            args: args.clone(),
            ack_id,
            acked: ack_id.is_some() && !drop,
            attachments: attachments.clone(),
        });
        if let (Some(id), false) = (ack_id, drop) {
            if attachments.is_empty() {
                self.send_sio(sid, PacketType::Ack, nsp, Some(id), Some(&args));
            } else {
                // Acks with binary are BINARY_ACK; this server answers with the byte counts instead.
                let sizes: Vec<String> = attachments.iter().map(|a| a.len().to_string()).collect();
                self.send_sio(sid, PacketType::Ack, nsp, Some(id), Some(&format!("[{}]", sizes.join(","))));
            }
        }
    }

    // ------------------------------------------------------------------ REST feed

    /// `GET {feed}/events?limit=N[&since=C]` or `POST {feed}/events/acknowledge`, answered from the
    /// event log of the main namespace: `id` is `evt_<seq>`, `offset` the recovery offset.
    pub fn feed(&mut self, now: u64, post: bool, url: &str, auth: Option<String>, body: Option<&str>) -> (u16, String) {
        self.now = now;
        if post {
            if let Some(b) = body
                && let Ok(members) = json::object_members(b)
                && let Some((_, r)) = members.into_iter().find(|(k, _)| k == "eventIds")
                && let Some(arr) = b.get(r)
            {
                for e in json::array_elements(arr).unwrap_or_default() {
                    if let Some(id) = arr.get(e).and_then(|s| json::parse_string(s).ok()) {
                        self.feed_acked.push(id.into_owned());
                    }
                }
            }
            return (200, "{}".into());
        }
        self.feed_polls.push((now, url.to_string(), auth));
        if let Some(status) = self.feed_status {
            return (status, "unavailable".into());
        }
        let limit = query_param(url, "limit").and_then(|l| l.parse::<usize>().ok()).unwrap_or(100);
        // `since`: a cursor this feed returned (`o<seq>`) or an envelope id (`evt_<seq>`).
        let since = query_param(url, "since")
            .and_then(|s| s.strip_prefix('o').or_else(|| s.strip_prefix("evt_")))
            .and_then(|s| s.parse::<u64>().ok());
        let events: Vec<&LogEntry> =
            self.log.iter().filter(|e| e.nsp == "/" && since.is_none_or(|s| e.seq > s)).take(limit).collect();
        let mut body = String::from("{\"events\":[");
        for (i, e) in events.iter().enumerate() {
            if i > 0 {
                body.push(',');
            }
            let arr = format!("[{}]", e.args);
            let first = json::array_elements(&arr).ok().and_then(|v| v.first().cloned());
            let data = first.and_then(|r| arr.get(r)).unwrap_or("null");
            body.push_str(&format!(
                "{{\"id\":\"evt_{}\",\"event\":{},\"data\":{},\"offset\":{}}}",
                e.seq,
                json_str(&e.event),
                data,
                json_str(&e.offset)
            ));
        }
        body.push(']');
        if let Some(last) = events.last() {
            body.push_str(&format!(",\"cursor\":{}", json_str(&last.offset)));
            let more = self.log.iter().any(|e| e.nsp == "/" && e.seq > last.seq);
            body.push_str(if more { ",\"hasMore\":true" } else { ",\"hasMore\":false" });
        }
        body.push('}');
        (200, body)
    }
}

fn drain_outbox(outbox: &mut VecDeque<String>) -> String {
    let records: Vec<String> = outbox.drain(..).collect();
    records.join(&engineio::SEPARATOR.to_string())
}
