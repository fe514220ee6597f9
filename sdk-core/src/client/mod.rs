//! The connection state machine: one engine session, any number of namespaces, the feed fallback.
//!
//! See the crate documentation for the driving contract.

mod engine;
mod feed;
mod inbox;
mod socket;
mod types;

use std::collections::VecDeque;
use std::time::Duration;

pub use types::*;

use crate::args::Args;
use crate::config::{AuthMode, Config, ConfigError};
use crate::rng::Rng;
use crate::time::Instant;

use engine::{Engine, Polled, Schedule, Step};
use feed::Feed;
use inbox::Inbox;
use socket::Socket;

/// The sans-IO Socket.IO client: feed it [`Input`]s and commands, drain [`Output`]s.
#[derive(Debug)]
pub struct Client {
    config: Config,
    rng: Rng,
    ids: Ids,
    engine: Engine,
    sockets: crate::vecmap::VecMap<String, Socket>,
    inbox: Inbox,
    feed: Feed,
    outputs: VecDeque<Output>,
    now: Instant,
}

impl Client {
    /// A client for `config`, not yet connecting (call [`Client::connect`]).
    pub fn new(config: Config) -> Result<Self, ConfigError> {
        config.validate()?;
        let main = config.url.namespace.clone();
        let mut sockets = crate::vecmap::VecMap::new();
        sockets.insert(main.clone(), Socket::new(main, config.auth.clone()));
        Ok(Self {
            rng: Rng::new(config.seed),
            ids: Ids(1),
            engine: Engine::default(),
            inbox: Inbox::new(config.dedup_window),
            feed: Feed::default(),
            outputs: VecDeque::new(),
            now: Instant::default(),
            sockets,
            config,
        })
    }

    /// The configuration in use.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The namespace given by the URL.
    pub fn main_namespace(&self) -> &str {
        &self.config.url.namespace
    }

    fn next_id(&mut self) -> u64 {
        self.ids.next()
    }

    fn push(&mut self, o: Output) {
        self.outputs.push_back(o);
    }

    fn tick(&mut self, now: Instant) {
        // Time never goes backwards for the core, whatever the driver's clock does.
        if now > self.now {
            self.now = now;
        }
    }

    /// Opens (or re-opens) `namespace` with `auth`, multiplexed over the same engine session.
    pub fn open_namespace(&mut self, now: Instant, namespace: &str, auth: AuthMode) -> Result<(), CommandError> {
        self.tick(now);
        if !namespace.starts_with('/') {
            return Err(CommandError::InvalidNamespace(namespace.to_string()));
        }
        if let AuthMode::Static(a) = &auth
            && crate::json::validate(a) != Ok(crate::json::JsonKind::Object)
        {
            return Err(CommandError::InvalidAuth);
        }
        let sock =
            self.sockets.get_or_insert_with(namespace.to_string(), || Socket::new(namespace.to_string(), auth.clone()));
        sock.auth = auth;
        self.activate(namespace);
        Ok(())
    }

    /// How `namespace` authenticates (as opened), if it was opened.
    pub fn namespace_auth(&self, namespace: &str) -> Option<&AuthMode> {
        self.sockets.get(namespace).map(|s| &s.auth)
    }

    /// Connects the URL's namespace (and any namespace opened before), like `socket.connect()`.
    /// Also the way back after "io server disconnect", a CONNECT_ERROR or a client disconnect.
    pub fn connect(&mut self, now: Instant) {
        self.tick(now);
        let main = self.config.url.namespace.clone();
        self.activate(&main);
    }

    /// Disconnects one namespace (sends DISCONNECT). The engine closes when no namespace is left.
    pub fn disconnect_namespace(&mut self, now: Instant, namespace: &str) -> Result<(), CommandError> {
        self.tick(now);
        if !self.sockets.contains_key(namespace) {
            return Err(CommandError::UnknownNamespace(namespace.to_string()));
        }
        self.socket_client_disconnect(namespace);
        self.close_engine_if_unused();
        self.update_feed();
        Ok(())
    }

    /// Disconnects every namespace and closes the engine ("io client disconnect"). No reconnect.
    pub fn disconnect(&mut self, now: Instant) {
        self.tick(now);
        let names: Vec<String> = self.sockets.keys().cloned().collect();
        for n in names {
            self.socket_client_disconnect(&n);
        }
        self.close_engine_if_unused();
        self.update_feed();
    }

    /// Supplies auth (a JSON object, or `None` for no payload) for a pending CONNECT. Anything
    /// else is `Err(InvalidAuth)` and counts as a failed provider ([`Client::auth_failed`]): the
    /// CONNECT is never sent with it, nor without auth.
    pub fn provide_auth(
        &mut self,
        now: Instant,
        request: AuthRequestId,
        auth: Option<String>,
    ) -> Result<(), CommandError> {
        self.tick(now);
        let nsp = self.awaiting_auth(request)?;
        if let Some(a) = &auth
            && crate::json::validate(a) != Ok(crate::json::JsonKind::Object)
        {
            self.socket_auth_failed(&nsp, "it gave something that is not a JSON object");
            return Err(CommandError::InvalidAuth);
        }
        if nsp == self.config.url.namespace {
            self.feed.token = auth.as_deref().and_then(feed::token_of);
        }
        self.send_connect(&nsp, auth);
        Ok(())
    }

    /// The namespace waiting for the answer to `request`.
    fn awaiting_auth(&self, request: AuthRequestId) -> Result<String, CommandError> {
        self.sockets
            .values()
            .find(|s| s.awaiting_auth() == Some(request))
            .map(|s| s.nsp.clone())
            .ok_or(CommandError::StaleAuthRequest)
    }

    /// The driver could not get auth for a pending CONNECT (the provider failed or gave something
    /// that is not a JSON object): the namespace reports a [`ConnectError`] and asks again after
    /// the reconnect backoff, or gives up when reconnection is off or its attempts are spent.
    pub fn auth_failed(&mut self, now: Instant, request: AuthRequestId, message: &str) -> Result<(), CommandError> {
        self.tick(now);
        let nsp = self.awaiting_auth(request)?;
        self.socket_auth_failed(&nsp, message);
        Ok(())
    }

    /// The last state reported for `namespace` (what its latest [`Output::State`] said), or
    /// `None` for a namespace never opened or not yet reported.
    pub fn state(&self, namespace: &str) -> Option<&ConnectionState> {
        self.sockets.get(namespace).and_then(|s| s.reported())
    }

    /// Emits an event. Returns at once; the ack (or a later failure) comes as [`Output::Settled`].
    pub fn emit(&mut self, now: Instant, request: EmitRequest) -> Result<EmitId, EmitError> {
        self.tick(now);
        self.check_ping_expiry();
        self.socket_emit(request)
    }

    /// Answers a server's ack request ([`Event::ack`]).
    pub fn ack(&mut self, now: Instant, request: &AckRequest, args: Args) -> Result<(), CommandError> {
        self.tick(now);
        args.check_placeholders(self.config.max_attachments).map_err(CommandError::InvalidArgs)?;
        self.check_ping_expiry();
        self.socket_send_ack(request, args);
        Ok(())
    }

    /// Joins `room` on `namespace`: remembered, sent now if connected, and sent again after every
    /// reconnect that did not recover the session. The outcome comes as one [`Output::Room`]
    /// carrying the returned id (at once when nothing needs sending).
    pub fn join(&mut self, now: Instant, namespace: &str, room: &str) -> Result<RoomRequestId, CommandError> {
        self.tick(now);
        self.socket_room(namespace, room, true)
    }

    /// Leaves `room` on `namespace` and forgets it; answered like [`Client::join`].
    pub fn leave(&mut self, now: Instant, namespace: &str, room: &str) -> Result<RoomRequestId, CommandError> {
        self.tick(now);
        self.socket_room(namespace, room, false)
    }

    /// Rooms remembered for `namespace`.
    pub fn rooms(&self, namespace: &str) -> Vec<String> {
        self.sockets.get(namespace).map(|s| s.rooms.iter().cloned().collect()).unwrap_or_default()
    }

    /// Whether `namespace` is connected.
    pub fn is_connected(&self, namespace: &str) -> bool {
        self.sockets.get(namespace).is_some_and(Socket::is_connected)
    }

    /// Reports that the event with this id, and every event handed out before it, has been
    /// handed to every consumer that matches it. Only then does its offset become the recovery
    /// offset, and its keys enter the de-duplication window: a connection lost while events are
    /// still queued in the driver recovers from the last delivered one (see the crate docs).
    pub fn delivered(&mut self, now: Instant, id: DeliveryId) {
        self.tick(now);
        let main = &self.config.url.namespace;
        for r in self.inbox.delivered(id) {
            let Some(s) = self.sockets.get_mut(&r.namespace) else { continue };
            if let Some((pid, offset)) = r.socket_offset {
                s.delivered_offset(&pid, offset);
            }
            if &r.namespace == main
                && let Some(id) = r.envelope
            {
                // Where the feed should resume if the socket goes down now.
                self.feed.last_socket_id = Some(id);
            }
        }
    }

    /// Events handed out in [`Output::Event`] and not yet reported [`Client::delivered`].
    pub fn undelivered(&self) -> usize {
        self.inbox.in_flight()
    }

    /// Feeds one input.
    pub fn handle_input(&mut self, now: Instant, input: Input) {
        self.tick(now);
        match input {
            Input::Timeout => self.handle_timeouts(),
            Input::WsOpened(c) => self.with_engine(|e, cx| e.on_ws_opened(cx, c)),
            Input::WsText(c, t) => self.engine_step(|e, cx| e.on_ws_text(cx, c, t)),
            Input::WsBinary(c, b) => self.engine_step(|e, cx| e.on_ws_binary(cx, c, b)),
            Input::WsClosed { conn, error, .. } => self.engine_step(|e, cx| e.on_ws_closed(cx, conn, error)),
            Input::HttpResponse { id, status, body } => {
                if !self.feed_response(id, Some((status, body.as_slice())), None) {
                    self.engine_step(|e, cx| e.on_http_response(cx, id, status, body));
                }
            }
            Input::HttpFailed { id, error } => {
                if !self.feed_response(id, None, Some(&error)) {
                    self.engine_step(|e, cx| e.on_http_failed(cx, id, error));
                }
            }
            Input::Online => self.engine_step(Engine::retry_now),
            Input::Offline => self.engine_step(Engine::on_offline),
            Input::Visible => {
                self.check_ping_expiry();
                self.engine_step(Engine::retry_now);
            }
            Input::Hidden => {}
        }
    }

    /// The next thing to do. Call until it returns [`Output::Wait`], which carries the next deadline.
    pub fn poll_output(&mut self) -> Output {
        match self.outputs.pop_front() {
            Some(o) => o,
            None => Output::Wait(self.next_deadline()),
        }
    }

    fn handle_timeouts(&mut self) {
        self.check_ping_expiry();
        self.engine_step(Engine::timeouts);
        self.socket_timeouts();
        self.feed_timeouts();
    }

    fn next_deadline(&self) -> Option<Instant> {
        [self.engine.deadline(), self.sockets_deadline(), self.feed.deadline()].into_iter().flatten().min()
    }

    /// Memory held in buffers, for tests and metrics.
    pub fn buffered(&self) -> Buffered {
        let (mut packets, mut pending_acks) = (0, 0);
        for s in self.sockets.values() {
            packets += s.buffered_packets();
            pending_acks += s.pending_acks();
        }
        Buffered {
            packets: packets + self.engine.queued(),
            pending_acks,
            dedup_keys: self.inbox.window_len(),
            undelivered: self.inbox.in_flight(),
        }
    }
}

// ---------------------------------------------------------------- the engine, composed

/// What a sub-machine needs from the client to act: the configuration, the time, the RNG, the
/// id counter (ids are unique across the engine, the namespaces and the feed) and the output
/// queue its IO goes to.
pub(super) struct Cx<'a> {
    config: &'a Config,
    now: Instant,
    rng: &'a mut Rng,
    ids: &'a mut Ids,
    out: &'a mut VecDeque<Output>,
}

/// The id counter of connections, requests, emits and room operations.
#[derive(Debug)]
struct Ids(u64);

impl Ids {
    fn next(&mut self) -> u64 {
        let id = self.0;
        self.0 += 1;
        id
    }
}

impl Client {
    /// Runs `f` on the engine with its context.
    fn with_engine<R>(&mut self, f: impl FnOnce(&mut Engine, &mut Cx<'_>) -> R) -> R {
        let mut cx =
            Cx { config: &self.config, now: self.now, rng: &mut self.rng, ids: &mut self.ids, out: &mut self.outputs };
        f(&mut self.engine, &mut cx)
    }

    /// Runs `f` on the engine, then tells the namespaces what came of it.
    fn engine_step(&mut self, f: impl FnOnce(&mut Engine, &mut Cx<'_>) -> Step) {
        let step = self.with_engine(f);
        self.route(step);
    }

    /// Tells the namespaces what an engine step came to (see [`Step`]).
    fn route(&mut self, step: Step) {
        match step {
            Step::Nothing => {}
            Step::Started => self.sockets_connecting(),
            Step::Opened(packets) => {
                self.sockets_engine_open();
                self.with_engine(Engine::poll);
                self.on_polled(packets);
            }
            Step::Polled(packets) => {
                self.on_polled(packets);
                self.with_engine(Engine::poll);
                self.engine_step(Engine::finish_upgrade);
            }
            Step::OpenFailed { message, will_retry, fallback_pending } => {
                self.sockets_connect_error(message, will_retry, fallback_pending);
                self.reconnect_or_give_up(DisconnectReason::TransportError);
            }
            Step::Closed(reason) => {
                self.sockets_engine_closed(reason);
                self.reconnect_or_give_up(reason);
            }
            Step::Packet(p) => self.socket_packet(p),
            Step::Upgraded => self.sockets_transport_changed(crate::config::TransportKind::WebSocket),
        }
    }

    /// Polled packets, one at a time, while the session lasts.
    fn on_polled(&mut self, packets: Polled) {
        for p in packets {
            if !self.engine.is_open() {
                return;
            }
            match p {
                Ok(p) => self.engine_step(|e, cx| e.on_packet(cx, p)),
                Err(e) => return self.fail_engine(Fault::Engine(e)),
            }
        }
    }

    fn reconnect_or_give_up(&mut self, reason: DisconnectReason) {
        let wanted = self.any_active();
        match self.with_engine(|e, cx| e.schedule_reconnect(cx, wanted, reason)) {
            Schedule::Idle => {}
            Schedule::GiveUp(why) => self.sockets_give_up(why),
            Schedule::Waiting { attempt, delay } => {
                self.sockets_state(ConnectionState::Reconnecting { attempt, delay });
                self.update_feed();
            }
        }
    }

    /// Starts an engine if none is open or opening and a namespace wants one.
    fn ensure_engine(&mut self) {
        if self.engine.is_idle() && self.any_active() {
            self.engine_step(Engine::ensure);
        }
    }

    /// Closes the engine politely when no namespace wants it any more (POST `1` over polling).
    fn close_engine_if_unused(&mut self) {
        if !self.any_active() {
            self.with_engine(Engine::close_unused);
        }
    }

    /// Closes the session because of `fault`, which is reported first.
    fn fail_engine(&mut self, fault: Fault) {
        self.engine_step(|e, cx| e.fail(cx, fault));
    }

    /// The wall-clock check socket.io-client makes before each emit.
    fn check_ping_expiry(&mut self) {
        self.engine_step(Engine::check_ping_expiry);
    }

    /// Sends one Engine.IO packet on the current transport.
    fn engine_send(&mut self, packet: crate::engineio::Packet<'static>) {
        self.engine_send_all([packet]);
    }

    /// Sends the packets of one Socket.IO packet together (see [`Engine::send_all`]).
    fn engine_send_all(&mut self, packets: impl IntoIterator<Item = crate::engineio::Packet<'static>>) {
        self.with_engine(|e, cx| e.send_all(cx, packets));
    }

    /// The server the current (or next) connection goes to.
    pub fn server(&self) -> &crate::url::ServerUrl {
        self.engine.server(&self.config)
    }

    /// The sid of the engine session (not the namespace's socket id).
    pub fn engine_sid(&self) -> Option<&str> {
        self.engine.sid()
    }

    /// True while a closed polling session still has packets (its DISCONNECTs and `1`) to POST;
    /// a driver that is shutting down keeps running until this is false.
    pub fn is_flushing(&self) -> bool {
        self.engine.is_flushing()
    }

    /// Milliseconds until the next reconnection attempt, if waiting for one.
    pub fn reconnect_in(&self) -> Option<u64> {
        self.engine.waiting_until().map(|until| ms(until.since(self.now)))
    }
}

/// What [`Client::buffered`] counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Buffered {
    /// Packets waiting to be sent: the namespaces' send buffers and reliable queues, and the
    /// engine's outgoing queue.
    pub packets: usize,
    /// Acks the client waits for.
    pub pending_acks: usize,
    /// Keys in the de-duplication window.
    pub dedup_keys: usize,
    /// Events handed out and not yet reported delivered.
    pub undelivered: usize,
}

pub(crate) fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
