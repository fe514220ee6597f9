//! A deterministic world for the sans-IO client: the real [`Client`], a fake Engine.IO/Socket.IO
//! [`Server`], a seeded [`Link`] between them (latency, jitter, loss that drops the transport,
//! partitions, a WebSocket-blocking proxy) and a virtual clock. Nothing here sleeps or reads a
//! clock: [`World::run_until`] jumps from one deadline or delivery to the next, so a minute of
//! reconnection takes microseconds.
//!
//! The link is connection-oriented like TCP: frames on one WebSocket (and the request/response of
//! one HTTP exchange) arrive in order. A *drop* resets a connection (both ends are told); a
//! *partition* black-holes every connection that tries to send during it (nobody is told; the
//! heartbeat must notice) and makes new connections fail.

//!
//! A crate of its own (`tidings-harness`, never published) so that the core's scenario and
//! property tests, and any driver's tests, share one copy.

// Test support: a broken expectation is a panic, and the world's many fields speak for themselves.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

pub mod server;

use std::collections::{BTreeMap, HashMap, VecDeque};

pub use server::{Connection, LogEntry, NsRule, Received, Server, ServerConfig, ServerOut, query_param, str_member};
use tidings_core::engineio::{self, Frame};
use tidings_core::rng::Rng;
use tidings_core::{
    Args, Client, Config, ConnId, ConnectError, ConnectionState, EmitError, EmitId, EmitRefused, EmitRequest, Event,
    FeedStatus, HttpRequest, Input, Instant, Method, Output, RequestId, RequestPurpose,
};

/// Link timings and loss.
#[derive(Debug, Clone, Copy)]
pub struct LinkConfig {
    /// One-way latency in ms.
    pub latency: u64,
    /// Extra random latency in `0..=jitter` ms per message (order per connection is kept).
    pub jitter: u64,
    /// Probability that sending a message resets its connection instead.
    pub loss: f64,
}

impl Default for LinkConfig {
    fn default() -> Self {
        Self { latency: 20, jitter: 0, loss: 0.0 }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Chan {
    Ws(u64),
    Http(u64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dir {
    /// Client to server.
    Up,
    /// Server to client.
    Down,
}

#[derive(Debug)]
struct ChanState {
    up_ok: bool,
    down_ok: bool,
    live: bool,
    last_up: u64,
    last_down: u64,
}

impl Default for ChanState {
    fn default() -> Self {
        Self { up_ok: true, down_ok: true, live: true, last_up: 0, last_down: 0 }
    }
}

/// The network between client and server.
#[derive(Debug)]
pub struct Link {
    /// Timings and loss.
    pub cfg: LinkConfig,
    /// A proxy that refuses WebSocket upgrades: only polling gets through.
    pub ws_blocked: bool,
    /// Time windows `[from, to)` during which the network black-holes traffic.
    pub partitions: Vec<(u64, u64)>,
    /// Hosts (as in URLs: `host:port`) that refuse connections: a server that is down.
    pub down_hosts: Vec<String>,
    rng: Rng,
    chans: HashMap<Chan, ChanState>,
}

impl Link {
    fn new(cfg: LinkConfig, seed: u64) -> Self {
        Self {
            cfg,
            ws_blocked: false,
            partitions: Vec::new(),
            down_hosts: Vec::new(),
            rng: Rng::new(seed ^ 0x11_4E),
            chans: HashMap::new(),
        }
    }

    /// Whether `url` goes to a host that is down.
    pub fn refuses(&self, url: &str) -> bool {
        self.down_hosts
            .iter()
            .any(|h| url.split_once("://").is_some_and(|(_, rest)| rest.starts_with(&format!("{h}/"))))
    }

    /// Whether the network is partitioned at `t`.
    pub fn partitioned(&self, t: u64) -> bool {
        self.partitions.iter().any(|&(a, b)| a <= t && t < b)
    }

    fn latency(&mut self) -> u64 {
        self.cfg.latency + self.rng.below(self.cfg.jitter + 1)
    }

    /// When a message sent now on `chan` in `dir` arrives (never before an earlier one).
    fn arrival(&mut self, chan: Chan, dir: Dir, now: u64) -> u64 {
        let at = now + self.latency();
        let st = self.chans.entry(chan).or_default();
        let last = match dir {
            Dir::Up => &mut st.last_up,
            Dir::Down => &mut st.last_down,
        };
        *last = (*last).max(at);
        *last
    }

    /// Connections that are open (or exchanges in flight).
    fn live(&self) -> Vec<Chan> {
        let mut v: Vec<Chan> = self.chans.iter().filter(|(_, s)| s.live).map(|(c, _)| *c).collect();
        v.sort();
        v
    }
}

#[derive(Debug)]
enum Msg {
    SWsOpen { url: String },
    SWsText(String),
    SWsBinary(Vec<u8>),
    SWsClosed,
    SHttp { purpose: RequestPurpose, post: bool, url: String, body: Option<String>, auth: Option<String> },
    SHttpAbort,
    CWsOpened,
    CWsText(String),
    CWsClosed { code: Option<u16>, error: Option<String> },
    CHttp { status: u16, body: String },
    CHttpFailed(tidings_core::HttpError),
}

#[derive(Debug)]
struct Item {
    chan: Chan,
    /// `None` for notices (resets, refusals) that no connection state can stop.
    dir: Option<Dir>,
    msg: Msg,
}

/// An [`Output::Room`], stamped with the virtual time.
#[derive(Debug)]
pub struct RoomAck {
    pub at: u64,
    pub request: Option<tidings_core::RoomRequestId>,
    pub namespace: String,
    pub room: String,
    pub join: bool,
    pub result: Result<Args, EmitError>,
}

/// Everything the client told the application, stamped with the virtual time.
#[derive(Debug, Default)]
pub struct App {
    pub events: Vec<(u64, Event)>,
    pub settled: Vec<(u64, EmitId, Result<Args, EmitError>)>,
    pub states: Vec<(u64, String, ConnectionState)>,
    pub connect_errors: Vec<(u64, String, ConnectError)>,
    /// Why the client closed a connection on its own.
    pub faults: Vec<(u64, tidings_core::Fault)>,
    pub rooms: Vec<RoomAck>,
    pub need_auth: Vec<(u64, String)>,
    pub feed: Vec<(u64, FeedStatus)>,
}

/// Client, server, link and clock.
#[derive(Debug)]
pub struct World {
    /// Virtual time in ms.
    pub now: u64,
    pub client: Client,
    pub server: Server,
    pub link: Link,
    pub app: App,
    /// Answers to [`Output::NeedAuth`], used in order (none left: the request stays unanswered).
    pub auth_tokens: VecDeque<Option<String>>,
    /// This many [`Output::NeedAuth`] are answered first with `Client::auth_failed`.
    pub auth_failures: u32,
    /// Answer every server ack request with `["ok"]`.
    pub auto_ack: bool,
    /// Every WebSocket the client opened: (time, URL).
    pub ws_opens: Vec<(u64, String)>,
    /// Every HTTP request the client made.
    pub http: Vec<(u64, HttpRequest)>,
    /// Engine.IO records the client wrote (WebSocket text frames and polling records), with time.
    pub sent: Vec<(u64, String)>,
    /// Engine.IO text records handed to the client.
    pub delivered: Vec<(u64, String)>,
    /// Harness-side protocol checks that failed (e.g. two GETs in flight).
    pub violations: Vec<String>,
    /// Largest values of [`Client::buffered`] seen after any step.
    pub max_buffered: (usize, usize, usize),
    /// Largest packet count of [`Client::buffered`] seen while no engine session was open (only
    /// the namespaces' send buffers then: bounded by the configured limit).
    pub max_buffered_closed: usize,
    /// Human-readable timeline of the wire, for failure messages.
    pub trace: Vec<String>,
    /// Keep [`World::trace`] (off for property tests).
    pub tracing: bool,
    /// Feed requests are accepted and never answered.
    pub feed_silent: bool,
    /// When set, events wait here (a consumer slower than the wire) until [`World::release`].
    pub held: Option<VecDeque<Event>>,
    queue: BTreeMap<(u64, u64), Item>,
    seq: u64,
    deadline: Option<u64>,
    conns: HashMap<u64, ConnId>,
    reqs: HashMap<u64, RequestId>,
    /// Polling requests in flight from the client's point of view: id -> (sid, is POST).
    polls: HashMap<u64, (String, bool)>,
}

/// Arguments from a JSON array text.
pub fn args(json: &str) -> Args {
    Args::from_json_array(json.to_string(), Vec::new()).unwrap()
}

/// A client configuration for the fake server at `http://127.0.0.1:3000`.
pub fn config() -> Config {
    let mut c = Config::new("http://127.0.0.1:3000").unwrap();
    c.seed = 7;
    c
}

impl World {
    pub fn new(config: Config, server: ServerConfig, link: LinkConfig, seed: u64) -> Self {
        Self {
            now: 0,
            client: Client::new(config).unwrap(),
            server: Server::new(server, seed),
            link: Link::new(link, seed),
            app: App::default(),
            auth_tokens: VecDeque::new(),
            auth_failures: 0,
            auto_ack: false,
            ws_opens: Vec::new(),
            http: Vec::new(),
            sent: Vec::new(),
            delivered: Vec::new(),
            violations: Vec::new(),
            max_buffered: (0, 0, 0),
            max_buffered_closed: 0,
            trace: Vec::new(),
            tracing: true,
            held: None,
            feed_silent: false,
            queue: BTreeMap::new(),
            seq: 0,
            deadline: None,
            conns: HashMap::new(),
            reqs: HashMap::new(),
            polls: HashMap::new(),
        }
    }

    /// A world with the default link (20 ms each way).
    pub fn with(config: Config, server: ServerConfig) -> Self {
        Self::new(config, server, LinkConfig::default(), 1)
    }

    pub fn at(&self) -> Instant {
        Instant::from_millis(self.now)
    }

    fn log(&mut self, line: impl FnOnce() -> String) {
        if self.tracing {
            let l = line();
            self.trace.push(format!("{:>7} {l}", self.now));
        }
    }

    /// The timeline so far, one line per wire event.
    pub fn dump(&self) -> String {
        self.trace.join("\n")
    }

    // ------------------------------------------------------------------ clock

    /// Advances virtual time to `t`, delivering messages and firing deadlines on the way.
    pub fn run_until(&mut self, t: u64) {
        let mut spins = 0u32;
        loop {
            self.drain();
            let next = [self.deadline, self.server.next_deadline(), self.queue.keys().next().map(|k| k.0)]
                .into_iter()
                .flatten()
                .min();
            let Some(next) = next.filter(|n| *n <= t) else {
                self.now = self.now.max(t);
                return;
            };
            let next = next.max(self.now);
            if next == self.now {
                spins += 1;
                assert!(spins < 100_000, "livelock at t={next}:\n{}", self.tail());
            } else {
                spins = 0;
            }
            self.now = next;
            while let Some(entry) = self.queue.first_entry() {
                if entry.key().0 > self.now {
                    break;
                }
                let item = entry.remove();
                self.deliver(item);
                self.drain();
            }
            let outs = self.server.tick(self.now);
            self.route_server(outs);
            if self.deadline.is_some_and(|d| d <= self.now) {
                self.deadline = None;
                self.client.handle_input(self.at(), Input::Timeout);
                self.drain();
            }
        }
    }

    /// Advances virtual time by `d` ms.
    pub fn run_for(&mut self, d: u64) {
        self.run_until(self.now + d);
    }

    /// Runs until `pred` holds (checked after every step) or `limit` ms have passed; returns whether it held.
    pub fn run_until_cond(&mut self, limit: u64, mut pred: impl FnMut(&World) -> bool) -> bool {
        let end = self.now + limit;
        while self.now < end {
            if pred(self) {
                return true;
            }
            let next = [self.deadline, self.server.next_deadline(), self.queue.keys().next().map(|k| k.0)]
                .into_iter()
                .flatten()
                .filter(|n| *n > self.now)
                .min()
                .unwrap_or(end)
                .min(end);
            self.run_until(next);
        }
        pred(self)
    }

    fn tail(&self) -> String {
        let from = self.trace.len().saturating_sub(40);
        self.trace[from..].join("\n")
    }

    // ------------------------------------------------------------------ client side

    fn drain(&mut self) {
        loop {
            let out = self.client.poll_output();
            match out {
                Output::Wait(d) => {
                    self.deadline = d.map(Instant::as_millis);
                    break;
                }
                other => self.perform(other),
            }
        }
        let b = self.client.buffered();
        let (p, a, d) = (b.packets, b.pending_acks, b.dedup_keys);
        let m = &mut self.max_buffered;
        *m = (m.0.max(p), m.1.max(a), m.2.max(d));
        if self.client.engine_sid().is_none() {
            self.max_buffered_closed = self.max_buffered_closed.max(p);
        }
    }

    fn perform(&mut self, out: Output) {
        let now = self.now;
        match out {
            Output::OpenWebSocket { conn, url } => {
                let id = conn.get();
                self.conns.insert(id, conn);
                self.ws_opens.push((now, url.clone()));
                self.log(|| format!("C>S ws{id} OPEN {url}"));
                let chan = Chan::Ws(id);
                self.link.chans.insert(chan, ChanState::default());
                if self.link.refuses(&url) {
                    self.fail_open(chan, Msg::CWsClosed { code: None, error: Some("connection refused".into()) });
                } else if self.link.ws_blocked || self.link.partitioned(now) {
                    let why = if self.link.ws_blocked { "websocket blocked" } else { "network unreachable" };
                    self.fail_open(chan, Msg::CWsClosed { code: None, error: Some(why.into()) });
                } else {
                    self.send(chan, Dir::Up, Msg::SWsOpen { url });
                }
            }
            Output::SendWebSocket { conn, frame } => {
                let id = conn.get();
                match frame {
                    Frame::Text(t) => {
                        self.log(|| format!("C>S ws{id} {t}"));
                        self.sent.push((now, t.clone()));
                        self.send(Chan::Ws(id), Dir::Up, Msg::SWsText(t));
                    }
                    Frame::Binary(b) => {
                        self.log(|| format!("C>S ws{id} <{} bytes>", b.len()));
                        self.send(Chan::Ws(id), Dir::Up, Msg::SWsBinary(b));
                    }
                }
            }
            Output::CloseWebSocket(conn) => {
                let id = conn.get();
                self.log(|| format!("C>S ws{id} CLOSE"));
                let chan = Chan::Ws(id);
                self.send(chan, Dir::Up, Msg::SWsClosed);
                if let Some(st) = self.link.chans.get_mut(&chan) {
                    st.down_ok = false;
                }
            }
            Output::Http(req) => self.http_request(req),
            Output::AbortHttp(r) => {
                let id = r.get();
                self.log(|| format!("C>S http{id} ABORT"));
                self.polls.remove(&id);
                let chan = Chan::Http(id);
                self.send(chan, Dir::Up, Msg::SHttpAbort);
                if let Some(st) = self.link.chans.get_mut(&chan) {
                    st.down_ok = false;
                    st.live = false;
                }
            }
            Output::NeedAuth { namespace, request } => {
                self.app.need_auth.push((now, namespace));
                if self.auth_failures > 0 {
                    self.auth_failures -= 1;
                    self.client.auth_failed(self.at(), request, "token service unavailable").unwrap();
                } else if let Some(tok) = self.auth_tokens.pop_front() {
                    // A value that is not a JSON object is refused, and the core retries.
                    let not_object = tok.as_deref().is_some_and(|t| !t.trim_start().starts_with('{'));
                    let r = self.client.provide_auth(self.at(), request, tok);
                    assert_eq!(r.is_err(), not_object, "{r:?}");
                }
            }
            Output::Event(e) => {
                self.log(|| format!("APP event {} {:?}", e.name, e.args));
                if self.auto_ack
                    && let Some(req) = &e.ack
                {
                    self.client.ack(self.at(), req, args(r#"["ok"]"#)).unwrap();
                }
                match &mut self.held {
                    // A slow consumer: the event waits in the application's queue.
                    Some(q) => q.push_back(e),
                    None => {
                        self.client.delivered(self.at(), e.delivery);
                        self.app.events.push((now, e));
                    }
                }
            }
            Output::Settled { emit, result } => {
                self.log(|| format!("APP settled {} {result:?}", emit.get()));
                self.app.settled.push((now, emit, result));
            }
            Output::Room { request, namespace, room, join, result } => {
                self.app.rooms.push(RoomAck { at: now, request, namespace, room, join, result });
            }
            Output::State { namespace, state } => {
                self.log(|| format!("APP state {namespace} {state:?}"));
                self.app.states.push((now, namespace, state));
            }
            Output::ConnectError { namespace, error } => {
                self.log(|| format!("APP connect_error {namespace} {error:?}"));
                self.app.connect_errors.push((now, namespace, error));
            }
            Output::Fault(f) => {
                self.log(|| format!("APP fault {f}"));
                self.app.faults.push((now, f));
            }
            Output::Feed(s) => {
                self.log(|| format!("APP feed {s:?}"));
                self.app.feed.push((now, s));
            }
            Output::Wait(_) => {}
        }
    }

    fn http_request(&mut self, req: HttpRequest) {
        let id = req.id.get();
        self.reqs.insert(id, req.id);
        let post = req.method == Method::Post;
        self.log(|| format!("C>S http{id} {:?} {} {}", req.method, req.url, req.body.as_deref().unwrap_or("")));
        if matches!(req.purpose, RequestPurpose::PollReceive | RequestPurpose::PollSend)
            && let Some(sid) = query_param(&req.url, "sid")
        {
            if self.polls.values().any(|(s, p)| s == sid && *p == post) {
                let what = if post { "POST" } else { "GET" };
                self.violations.push(format!("t={} two polling {what}s in flight for {sid}", self.now));
            }
            self.polls.insert(id, (sid.to_string(), post));
            if let Some(body) = &req.body {
                for r in body.split(engineio::SEPARATOR) {
                    self.sent.push((self.now, r.to_string()));
                }
            }
        }
        self.http.push((self.now, req.clone()));
        if self.feed_silent && matches!(req.purpose, RequestPurpose::FeedPoll | RequestPurpose::FeedAck) {
            // A feed that accepts the request and never answers.
            return;
        }
        let chan = Chan::Http(id);
        self.link.chans.insert(chan, ChanState::default());
        if self.link.refuses(&req.url) {
            self.fail_open(chan, Msg::CHttpFailed(tidings_core::HttpError::Network("connection refused".into())));
            return;
        }
        if self.link.partitioned(self.now) {
            self.fail_open(chan, Msg::CHttpFailed(tidings_core::HttpError::Network("network unreachable".into())));
            return;
        }
        let msg = Msg::SHttp { purpose: req.purpose, post, url: req.url, body: req.body, auth: req.authorization };
        self.send(chan, Dir::Up, msg);
    }

    // ------------------------------------------------------------------ link

    fn schedule(&mut self, at: u64, item: Item) {
        self.seq += 1;
        self.queue.insert((at, self.seq), item);
    }

    /// Whether the channel still carries traffic in that direction.
    fn chan_open(&mut self, chan: Chan, dir: Dir) -> bool {
        let st = self.link.chans.entry(chan).or_default();
        match dir {
            Dir::Up => st.up_ok,
            Dir::Down => st.down_ok,
        }
    }

    fn send(&mut self, chan: Chan, dir: Dir, msg: Msg) {
        let now = self.now;
        let partitioned = self.link.partitioned(now);
        if !self.chan_open(chan, dir) {
            return;
        }
        if partitioned {
            let st = self.link.chans.entry(chan).or_default();
            st.up_ok = false;
            st.down_ok = false;
            st.live = false;
            self.log(|| format!("LINK {chan:?} black-holed"));
            return;
        }
        if self.link.cfg.loss > 0.0 && self.link.rng.next_f64() < self.link.cfg.loss {
            self.kill(chan);
            return;
        }
        let at = self.link.arrival(chan, dir, now);
        self.schedule(at, Item { chan, dir: Some(dir), msg });
    }

    fn fail_open(&mut self, chan: Chan, msg: Msg) {
        if let Some(st) = self.link.chans.get_mut(&chan) {
            st.up_ok = false;
            st.down_ok = false;
            st.live = false;
        }
        let at = self.now + self.link.latency();
        self.schedule(at, Item { chan, dir: None, msg });
    }

    /// Resets one connection: both ends are told at once.
    fn kill(&mut self, chan: Chan) {
        let Some(st) = self.link.chans.get_mut(&chan) else { return };
        if !st.live {
            return;
        }
        st.up_ok = false;
        st.down_ok = false;
        st.live = false;
        self.log(|| format!("LINK {chan:?} reset"));
        let at = self.now + 1;
        let (to_client, to_server) = match chan {
            Chan::Ws(_) => (Msg::CWsClosed { code: None, error: Some("connection reset".into()) }, Msg::SWsClosed),
            Chan::Http(_) => {
                (Msg::CHttpFailed(tidings_core::HttpError::Network("connection reset".into())), Msg::SHttpAbort)
            }
        };
        self.schedule(at, Item { chan, dir: None, msg: to_client });
        self.schedule(at, Item { chan, dir: None, msg: to_server });
    }

    /// Resets every open connection (a network blip, a load balancer restart).
    pub fn drop_transports(&mut self) {
        for chan in self.link.live() {
            self.kill(chan);
        }
    }

    /// Black-holes the network from `from` to `to`.
    pub fn partition(&mut self, from: u64, to: u64) {
        self.link.partitions.push((from, to));
    }

    fn route_server(&mut self, outs: Vec<ServerOut>) {
        for o in outs {
            match o {
                ServerOut::WsAccept(c) => self.send(Chan::Ws(c), Dir::Down, Msg::CWsOpened),
                ServerOut::WsRefuse(c, why) => {
                    self.log(|| format!("S>C ws{c} REFUSED {why}"));
                    self.send(Chan::Ws(c), Dir::Down, Msg::CWsClosed { code: None, error: Some(why) });
                }
                ServerOut::WsText(c, t) => {
                    self.log(|| format!("S>C ws{c} {t}"));
                    self.send(Chan::Ws(c), Dir::Down, Msg::CWsText(t));
                }
                ServerOut::WsClose(c, code) => {
                    self.log(|| format!("S>C ws{c} CLOSE {code:?}"));
                    let chan = Chan::Ws(c);
                    self.send(chan, Dir::Down, Msg::CWsClosed { code, error: None });
                    if let Some(st) = self.link.chans.get_mut(&chan) {
                        st.up_ok = false;
                    }
                }
                ServerOut::Http(id, status, body) => {
                    self.log(|| format!("S>C http{id} {status} {body}"));
                    self.send(Chan::Http(id), Dir::Down, Msg::CHttp { status, body });
                }
            }
        }
    }

    fn deliver(&mut self, item: Item) {
        let Item { chan, dir, msg } = item;
        if let Some(dir) = dir
            && !self.chan_open(chan, dir)
        {
            return;
        }
        let now = self.now;
        let id = match chan {
            Chan::Ws(i) | Chan::Http(i) => i,
        };
        let outs = match msg {
            Msg::SWsOpen { url } => self.server.ws_open(now, id, &url),
            Msg::SWsText(t) => self.server.ws_text(now, id, &t),
            Msg::SWsBinary(b) => self.server.ws_binary(now, id, b),
            Msg::SWsClosed => {
                self.finish(chan);
                self.server.ws_closed(now, id)
            }
            Msg::SHttp { purpose, post, url, body, auth } => match purpose {
                RequestPurpose::FeedPoll | RequestPurpose::FeedAck => {
                    let (status, body) = self.server.feed(now, post, &url, auth, body.as_deref());
                    self.log(|| format!("S>C http{id} {status} {body}"));
                    vec![ServerOut::Http(id, status, body)]
                }
                _ => self.server.http(now, id, post, &url, body.as_deref()),
            },
            Msg::SHttpAbort => self.server.http_aborted(now, id),
            Msg::CWsOpened => {
                let conn = self.conns[&id];
                self.client.handle_input(self.at(), Input::WsOpened(conn));
                Vec::new()
            }
            Msg::CWsText(t) => {
                self.delivered.push((now, t.clone()));
                let conn = self.conns[&id];
                self.client.handle_input(self.at(), Input::WsText(conn, t));
                Vec::new()
            }
            Msg::CWsClosed { code, error } => {
                self.finish(chan);
                let conn = self.conns[&id];
                self.client.handle_input(self.at(), Input::WsClosed { conn, code, error });
                Vec::new()
            }
            Msg::CHttp { status, body } => {
                self.finish(chan);
                self.polls.remove(&id);
                if status == 200 && body != "ok" {
                    for r in body.split(engineio::SEPARATOR) {
                        self.delivered.push((now, r.to_string()));
                    }
                }
                let rid = self.reqs[&id];
                // A driver reads at most `max_body` bytes of an answer.
                let max_body =
                    self.http.iter().rev().find(|(_, r)| r.id == rid).map_or(usize::MAX, |(_, r)| r.max_body);
                let input = if body.len() > max_body {
                    Input::HttpFailed { id: rid, error: tidings_core::HttpError::TooLarge { max_body } }
                } else {
                    Input::HttpResponse { id: rid, status, body: body.into_bytes() }
                };
                self.client.handle_input(self.at(), input);
                Vec::new()
            }
            Msg::CHttpFailed(error) => {
                self.finish(chan);
                self.polls.remove(&id);
                let rid = self.reqs[&id];
                self.client.handle_input(self.at(), Input::HttpFailed { id: rid, error });
                Vec::new()
            }
        };
        self.route_server(outs);
    }

    fn finish(&mut self, chan: Chan) {
        if let Some(st) = self.link.chans.get_mut(&chan) {
            st.live = false;
            st.up_ok = false;
            st.down_ok = false;
        }
    }

    // ------------------------------------------------------------------ commands

    /// The client's newest WebSocket (the one a driver would be writing to).
    pub fn last_ws(&self) -> Option<ConnId> {
        self.conns.iter().max_by_key(|(id, _)| **id).map(|(_, c)| *c)
    }

    pub fn connect(&mut self) {
        self.client.connect(self.at());
        self.drain();
    }

    pub fn disconnect(&mut self) {
        self.client.disconnect(self.at());
        self.drain();
    }

    pub fn input(&mut self, input: Input) {
        self.client.handle_input(self.at(), input);
        self.drain();
    }

    pub fn emit(&mut self, req: EmitRequest) -> Result<EmitId, EmitRefused> {
        let r = self.client.emit(self.at(), req);
        self.drain();
        r
    }

    /// Emits `event` with the JSON array `json` and asks for an ack.
    pub fn emit_ack(&mut self, event: &str, json: &str) -> EmitId {
        self.emit(EmitRequest::new(event, args(json)).with_ack()).unwrap()
    }

    pub fn join(&mut self, room: &str) -> tidings_core::RoomRequestId {
        let id = self.client.join(self.at(), "/", room).unwrap();
        self.drain();
        id
    }

    pub fn leave(&mut self, room: &str) -> tidings_core::RoomRequestId {
        let id = self.client.leave(self.at(), "/", room).unwrap();
        self.drain();
        id
    }

    /// The server emits `event` with `args` (JSON values without brackets) on `/`.
    pub fn server_emit(&mut self, event: &str, args: &str) {
        self.server.emit(self.now, "/", event, args);
        let outs = self.server.tick(self.now);
        self.route_server(outs);
        self.drain();
    }

    /// The server sends an EVENT with exactly this data (see [`Server::send_raw_event`]).
    pub fn server_raw_event(&mut self, nsp: &str, data: &str) {
        self.server.send_raw_event(nsp, data);
        let outs = self.server.tick(self.now);
        self.route_server(outs);
        self.drain();
    }

    /// The server emits on another namespace.
    pub fn server_emit_to(&mut self, nsp: &str, event: &str, args: &str) {
        self.server.emit(self.now, nsp, event, args);
        let outs = self.server.tick(self.now);
        self.route_server(outs);
    }

    /// The server emits with an ack request.
    pub fn server_emit_with_ack(&mut self, event: &str, args: &str) -> Option<u64> {
        let id = self.server.emit_with_ack(self.now, "/", event, args);
        let outs = self.server.tick(self.now);
        self.route_server(outs);
        id
    }

    /// `socket.disconnect()` on the server.
    pub fn server_disconnect(&mut self, nsp: &str) {
        let outs = self.server.disconnect_socket(self.now, nsp);
        self.route_server(outs);
    }

    /// `socket.conn.close()` on the server.
    pub fn server_close_transports(&mut self) {
        let outs = self.server.close_transports(self.now);
        self.route_server(outs);
    }

    // ------------------------------------------------------------------ reading

    /// (name, args JSON) of every delivered event on `/`.
    /// Starts holding events in the application's queue instead of delivering them.
    pub fn hold(&mut self) {
        self.held.get_or_insert_with(VecDeque::new);
    }

    /// Delivers up to `n` held events (oldest first) and keeps holding the rest.
    pub fn release(&mut self, n: usize) {
        let now = self.now;
        for _ in 0..n {
            let Some(e) = self.held.as_mut().and_then(VecDeque::pop_front) else { break };
            self.client.delivered(self.at(), e.delivery);
            self.app.events.push((now, e));
        }
        self.drain();
    }

    /// Delivers every held event and stops holding.
    pub fn release_all(&mut self) {
        self.release(usize::MAX);
        self.held = None;
    }

    pub fn events(&self) -> Vec<(String, String)> {
        self.app.events.iter().map(|(_, e)| (e.name.clone(), e.args.to_json_array())).collect()
    }

    /// States reported for `nsp`, with time.
    pub fn states(&self, nsp: &str) -> Vec<(u64, ConnectionState)> {
        self.app.states.iter().filter(|(_, n, _)| n == nsp).map(|(t, _, s)| (*t, s.clone())).collect()
    }

    pub fn last_state(&self, nsp: &str) -> Option<ConnectionState> {
        self.states(nsp).last().map(|(_, s)| s.clone())
    }

    /// Every settlement of `emit`.
    pub fn settlements(&self, emit: EmitId) -> Vec<&Result<Args, EmitError>> {
        self.app.settled.iter().filter(|(_, e, _)| *e == emit).map(|(_, _, r)| r).collect()
    }

    /// Times at which the client tried to open an engine session (WebSocket or polling handshake).
    pub fn open_attempts(&self) -> Vec<u64> {
        let ws = self.ws_opens.iter().filter(|(_, u)| query_param(u, "sid").is_none()).map(|(t, _)| *t);
        let poll = self
            .http
            .iter()
            .filter(|(_, r)| r.purpose == RequestPurpose::PollReceive && query_param(&r.url, "sid").is_none())
            .map(|(t, _)| *t);
        let mut v: Vec<u64> = ws.chain(poll).collect();
        v.sort_unstable();
        v
    }

    pub fn connected(&self) -> bool {
        self.client.is_connected("/")
    }

    /// Client records (Engine.IO text) that start with `prefix`, with time.
    pub fn sent_starting(&self, prefix: &str) -> Vec<(u64, String)> {
        self.sent.iter().filter(|(_, t)| t.starts_with(prefix)).cloned().collect()
    }

    /// No protocol violation on either side.
    pub fn assert_clean(&self) {
        assert!(
            self.server.violations.is_empty(),
            "server saw violations {:?}\n{}",
            self.server.violations,
            self.tail()
        );
        assert!(self.violations.is_empty(), "harness saw violations {:?}\n{}", self.violations, self.tail());
    }
}
