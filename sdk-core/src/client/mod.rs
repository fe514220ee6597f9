//! The connection state machine: one engine session, any number of namespaces, the feed fallback.
//!
//! See the crate documentation for the driving contract.

mod engine;
mod feed;
mod inbox;
mod outbox;
mod routing;
mod socket;
mod types;

use std::collections::VecDeque;
use std::time::Duration;

pub use feed::{HistoryEvent, HistoryPage, history_page};
pub use types::*;

use crate::args::Args;
use crate::config::{AuthMode, Config, ConfigError};
use crate::rng::Rng;
use crate::time::Instant;

use engine::Engine;
use feed::Feed;
use inbox::Inbox;
use routing::{Cx, Ids, Parts};
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
        let mut client = Self {
            rng: Rng::new(config.seed),
            ids: Ids(1),
            engine: Engine::default(),
            inbox: Inbox::new(config.dedup_window, config.seed),
            feed: Feed::default(),
            outputs: VecDeque::new(),
            now: Instant::default(),
            sockets,
            config,
        };
        client.static_feed_token();
        Ok(client)
    }

    /// The feed's bearer token comes from the main namespace's auth: a static one is known from
    /// the start (a provider's when it answers, [`Client::provide_auth`]).
    fn static_feed_token(&mut self) {
        if let Some(AuthMode::Static(a)) = self.sockets.get(&self.config.url.namespace).map(|s| &s.auth) {
            self.feed.token = feed::token_of(a);
        }
    }

    /// The configuration in use.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The namespace given by the URL.
    pub fn main_namespace(&self) -> &str {
        &self.config.url.namespace
    }

    /// Not inlined in the browser build: every command and input starts with it, and the
    /// module is smaller with one copy.
    #[cfg_attr(target_arch = "wasm32", inline(never))]
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
        if namespace == self.config.url.namespace {
            self.static_feed_token();
        }
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
        self.with_socket(namespace, Socket::client_disconnect);
        self.close_engine_if_unused();
        self.update_feed();
        Ok(())
    }

    /// Disconnects every namespace and closes the engine ("io client disconnect"). No reconnect.
    pub fn disconnect(&mut self, now: Instant) {
        self.tick(now);
        let names: Vec<String> = self.sockets.keys().cloned().collect();
        for n in names {
            self.with_socket(&n, Socket::client_disconnect);
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
            self.socket_step(&nsp, |s, cx, _| s.auth_failed(cx, "it gave something that is not a JSON object"));
            return Err(CommandError::InvalidAuth);
        }
        if nsp == self.config.url.namespace {
            self.feed.token = auth.as_deref().and_then(feed::token_of);
        }
        self.with_socket(&nsp, |s, cx, e| s.send_connect(cx, e, auth));
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
        self.socket_step(&nsp, |s, cx, _| s.auth_failed(cx, message));
        Ok(())
    }

    /// The last state reported for `namespace` (what its latest [`Output::State`] said;
    /// [`ConnectionState::NOT_CONNECTED`] before its first), or `None` for a namespace never
    /// opened.
    pub fn state(&self, namespace: &str) -> Option<&ConnectionState> {
        self.sockets.get(namespace).map(|s| s.reported().unwrap_or(&ConnectionState::NOT_CONNECTED))
    }

    /// Emits an event. Returns at once; the ack (or a later failure) comes as [`Output::Settled`].
    pub fn emit(&mut self, now: Instant, request: EmitRequest) -> Result<EmitId, EmitRefused> {
        self.tick(now);
        self.check_ping_expiry();
        let nsp = request.namespace.clone();
        self.with_socket(&nsp, |s, cx, e| s.emit(cx, e, request))
            .unwrap_or(Err(InvalidEmit::UnknownNamespace(nsp).into()))
    }

    /// Answers a server's ack request ([`Event::ack`]).
    pub fn ack(&mut self, now: Instant, request: &AckRequest, args: Args) -> Result<(), CommandError> {
        self.tick(now);
        args.check_placeholders(self.config.max_attachments).map_err(CommandError::InvalidArgs)?;
        self.check_ping_expiry();
        self.with_socket(&request.namespace, |s, cx, e| s.send_ack(cx, e, request, args));
        Ok(())
    }

    /// Joins `room` on `namespace`: remembered, sent now if connected, and sent again after every
    /// reconnect that did not recover the session. The outcome comes as one [`Output::Room`]
    /// carrying the returned id (at once when nothing needs sending).
    pub fn join(&mut self, now: Instant, namespace: &str, room: &str) -> Result<RoomRequestId, CommandError> {
        self.tick(now);
        self.with_socket(namespace, |s, cx, e| s.room(cx, e, room, true))
            .ok_or_else(|| CommandError::UnknownNamespace(namespace.to_string()))
    }

    /// Leaves `room` on `namespace` and forgets it; answered like [`Client::join`].
    pub fn leave(&mut self, now: Instant, namespace: &str, room: &str) -> Result<RoomRequestId, CommandError> {
        self.tick(now);
        self.with_socket(namespace, |s, cx, e| s.room(cx, e, room, false))
            .ok_or_else(|| CommandError::UnknownNamespace(namespace.to_string()))
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
                // Where the feed should resume if the socket goes down now, and where the
                // application stands.
                self.feed.delivered = Some(id.clone());
                self.feed.last_socket_id = Some(id);
            }
        }
    }

    /// A request for a page of the feed's history: the events after `since` (a cursor, an
    /// offset or an envelope id, as the feed takes them; `None`: where the feed starts for this
    /// caller), at most `limit` (1-1000). The driver performs it like any other and hands the
    /// answer to [`history_page`]; it does not involve the connection. `None` without a feed.
    pub fn history_request(&mut self, since: Option<&str>, limit: u32) -> Option<HttpRequest> {
        let token = self.feed.token.clone();
        let Parts { mut cx, .. } = self.parts();
        feed::history_request(&mut cx, token.as_deref(), since, limit)
    }

    /// Where the main namespace stands: the position of the last event delivered to every
    /// subscription (the envelope id of a socket event, the offset or id of a feed event), else
    /// the configured [`crate::config::FeedConfig::since`]. Persist it once the events up to it are
    /// handled, and start a later client from it (`FeedConfig::since`): with the REST feed, that
    /// client reads every event after it, once (docs/RELIABILITY.md, "Catching up from the feed").
    /// `None` until an event with an envelope id is delivered (events without one have no
    /// position the feed would know).
    pub fn cursor(&self) -> Option<&str> {
        self.feed.delivered.as_deref().or_else(|| self.config.feed.as_ref().and_then(|f| f.since.as_deref()))
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
            #[cfg(feature = "unsent-frames")]
            Input::WsUnsent { conn, frames } => self.engine.on_ws_unsent(conn, frames),
            #[cfg(not(feature = "unsent-frames"))]
            Input::WsUnsent { .. } => {}
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
        use crate::time::earliest;
        earliest(earliest(self.engine.deadline(), self.sockets_deadline()), self.feed.deadline())
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

impl Client {
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
    crate::time::millis(d)
}
