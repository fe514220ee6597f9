//! The vocabulary between a driver and the core: ids, inputs, outputs, states and errors.

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use crate::args::{Args, ArgsError};
use crate::config::TransportKind;
use crate::engineio::Frame;
use crate::text;
use crate::time::Instant;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub(crate) u64);
        impl $name {
            /// The number behind the id (unique per client, never reused).
            pub fn get(self) -> u64 {
                self.0
            }
            /// The id behind a number [`Self::get`] gave, for a driver whose other half keeps
            /// ids as numbers (the browser driver's JavaScript). Pass only a number `get` gave
            /// on the same client: the core trusts it (a stale connection or request id is
            /// ignored, but a `DeliveryId` not yet handed out would count later events as
            /// delivered).
            pub fn from_raw(n: u64) -> Self {
                Self(n)
            }
        }
    };
}

id_type!(
    /// A WebSocket the core asked the driver to open. Inputs about a socket that is no longer
    /// current are ignored (generation id).
    ConnId
);
id_type!(
    /// An HTTP request the core asked the driver to make.
    RequestId
);
id_type!(
    /// An emit accepted by [`crate::Client::emit`].
    EmitId
);
id_type!(
    /// A request for fresh auth ([`Output::NeedAuth`]).
    AuthRequestId
);
id_type!(
    /// A room join or leave ([`crate::Client::join`], [`crate::Client::leave`]), answered once by
    /// an [`Output::Room`] that carries it.
    RoomRequestId
);
id_type!(
    /// An event handed to the driver ([`Output::Event`]); report it with
    /// [`crate::Client::delivered`] once every consumer that matches it has it.
    DeliveryId
);

impl DeliveryId {
    /// An id made up, for tests of code that handles events without a core behind them.
    #[doc(hidden)]
    pub fn for_tests(n: u64) -> Self {
        DeliveryId(n)
    }
}

/// Something that happened, stamped by the driver with the time it happened.
#[derive(Debug)]
pub enum Input {
    /// The WebSocket finished its opening handshake.
    WsOpened(ConnId),
    /// A text frame arrived.
    WsText(ConnId, String),
    /// A binary frame arrived.
    WsBinary(ConnId, Vec<u8>),
    /// The WebSocket closed, failed to open, or failed. `error` is set for failures.
    WsClosed {
        /// Which socket.
        conn: ConnId,
        /// The close code, if a close frame was received.
        code: Option<u16>,
        /// What failed, for failures (not for clean closes).
        error: Option<String>,
    },
    /// Frames of `SendWebSocket` that the driver never wrote (still in its own queue when the
    /// socket failed), reported just before that socket's `WsClosed`. They were never sent, so
    /// the emits among them go out again on the next connection. A driver that cannot tell (a
    /// browser's WebSocket keeps its buffer) never reports it. Ignored without the
    /// `unsent-frames` feature (on by default).
    WsUnsent {
        /// Which socket.
        conn: ConnId,
        /// The frames, in the order they were to be written.
        frames: Vec<crate::engineio::Frame>,
    },
    /// An HTTP request completed with a status (any status, including errors).
    HttpResponse {
        /// Which request.
        id: RequestId,
        /// HTTP status.
        status: u16,
        /// Response body (the driver enforces [`HttpRequest::max_body`]).
        body: Vec<u8>,
    },
    /// An HTTP request failed without a usable response.
    HttpFailed {
        /// Which request.
        id: RequestId,
        /// What failed.
        error: HttpError,
    },
    /// The network came back (`online` event).
    Online,
    /// The network went away (`offline` event).
    Offline,
    /// The page became visible.
    Visible,
    /// The page became hidden.
    Hidden,
    /// The driver's timer fired. A spurious timeout is harmless.
    Timeout,
}

/// HTTP methods the core uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// GET
    Get,
    /// POST
    Post,
}

/// Why a request is made: drivers may treat them differently (e.g. timeouts, credentials).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestPurpose {
    /// Engine.IO long-polling GET (receive).
    PollReceive,
    /// Engine.IO long-polling POST (send).
    PollSend,
    /// REST feed fallback GET.
    FeedPoll,
    /// REST feed acknowledgement POST.
    FeedAck,
    /// A page of history the application asked for ([`crate::Client::history_request`]): its
    /// answer goes to [`crate::client::history_page`], not back to the client.
    FeedHistory,
}

/// Why the client closed its connection on its own: the cause behind a
/// [`DisconnectReason::ParseError`] or [`DisconnectReason::TransportError`], reported as
/// [`Output::Fault`] just before the state change. Sorted by who is at fault, as rustls sorts its
/// errors: the peer's packets, the transport, or the server not answering.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// The server sent an Engine.IO packet or polling payload that does not decode.
    Engine(crate::engineio::Error),
    /// The server sent a Socket.IO packet that does not decode (or a binary packet that does not
    /// reassemble).
    Socket(crate::socketio::Error),
    /// The server broke the protocol in a well-formed packet (`what` says how).
    Protocol(&'static str),
    /// A long-polling request answered with this HTTP status instead of 200.
    HttpStatus(u16),
    /// A long-polling request failed.
    Http(HttpError),
    /// The WebSocket failed (the driver's description).
    WebSocket(String),
    /// A namespace's CONNECT got no answer within `namespace_timeout`.
    NamespaceTimeout(String),
}

impl Fault {
    /// What `Display` writes, built without `core::fmt` so that a browser driver can report it
    /// without bringing the formatting machinery into its build.
    pub fn message(&self) -> String {
        match self {
            Fault::Engine(e) => text::concat(&["bad Engine.IO packet: ", &e.message()]),
            Fault::Socket(e) => text::concat(&["bad Socket.IO packet: ", &e.message()]),
            Fault::Protocol(what) => text::concat(&["protocol violation: ", what]),
            Fault::HttpStatus(s) => text::concat(&["polling request answered HTTP ", &text::decimal(u64::from(*s))]),
            Fault::Http(e) => text::concat(&["polling request failed: ", &e.message()]),
            Fault::WebSocket(e) => text::concat(&["websocket error: ", e]),
            Fault::NamespaceTimeout(ns) => text::concat(&["no answer to the CONNECT of ", ns]),
        }
    }
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message())
    }
}

impl std::error::Error for Fault {}

/// Why an HTTP request has no usable response ([`Input::HttpFailed`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpError {
    /// The response body passed [`HttpRequest::max_body`] (the driver stopped reading it).
    TooLarge {
        /// The limit.
        max_body: usize,
    },
    /// No response: the connection failed, was refused or reset (the driver's description).
    Network(String),
}

impl HttpError {
    /// What `Display` writes, built without `core::fmt` so that a browser driver can report it
    /// without bringing the formatting machinery into its build.
    pub fn message(&self) -> Cow<'_, str> {
        match self {
            HttpError::TooLarge { max_body } => Cow::Owned(text::concat(&[
                "response body larger than ",
                &text::decimal(u64::try_from(*max_body).unwrap_or(u64::MAX)),
                " bytes",
            ])),
            HttpError::Network(e) => Cow::Borrowed(e),
        }
    }
}

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message())
    }
}

impl std::error::Error for HttpError {}

/// An HTTP request the driver must perform and answer with [`Input::HttpResponse`] or [`Input::HttpFailed`].
#[derive(Clone, PartialEq, Eq)]
pub struct HttpRequest {
    /// Generation id to answer with.
    pub id: RequestId,
    /// What it is for.
    pub purpose: RequestPurpose,
    /// Method.
    pub method: Method,
    /// Full URL. Never contains a token.
    pub url: String,
    /// `Content-Type` of the body, when there is one.
    pub content_type: Option<&'static str>,
    /// `Authorization` header value, when needed (redacted in `Debug`).
    pub authorization: Option<String>,
    /// Body text.
    pub body: Option<String>,
    /// Largest response body the core will accept; drivers stop reading beyond it and fail the request.
    pub max_body: usize,
}

impl fmt::Debug for HttpRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpRequest")
            .field("id", &self.id)
            .field("purpose", &self.purpose)
            .field("method", &self.method)
            .field("url", &self.url)
            .field("content_type", &self.content_type)
            .field("authorization", &self.authorization.as_ref().map(|_| "<redacted>"))
            .field("body_len", &self.body.as_ref().map(String::len))
            .finish()
    }
}

/// Where an event came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventSource {
    /// The socket.
    Socket,
    /// The REST feed fallback.
    Feed,
}

/// A server's request that the client acknowledge an event; answer with [`crate::Client::ack`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AckRequest {
    /// Namespace of the event.
    pub namespace: String,
    /// The server's ack id.
    pub id: u64,
}

/// An event for the application (never twice within the de-duplication window).
///
/// With connection state recovery on, the server appends an offset to most events as their last
/// argument, but not to volatile ones, and the wire does not say which is which (see
/// docs/PROTOCOL.md, "Offsets"). So nothing is removed on a guess: when the last argument may be
/// the offset, `args` holds the arguments before it and `offset` holds it, and
/// [`Event::wire_args`] gives back every argument as sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Namespace.
    pub namespace: String,
    /// Event name (a numeric name is given as its decimal text).
    pub name: String,
    /// The arguments before the offset (all of them when `offset` is `None`).
    pub args: Args,
    /// The last argument, when it is the recovery offset the server appends (a string, on a
    /// namespace with recovery on, in an event that asks for no ack). A volatile event's last
    /// string argument looks the same: it is here too, and in [`Event::wire_args`].
    pub offset: Option<String>,
    /// Report this to [`crate::Client::delivered`] once the event is handed to its consumers.
    pub delivery: DeliveryId,
    /// Set when the server asked for an ack.
    pub ack: Option<AckRequest>,
    /// Socket or feed.
    pub source: EventSource,
}

impl Event {
    /// Every argument as the server sent it: `args`, then the offset when there is one (what
    /// socket.io-client hands its listeners).
    pub fn wire_args(&self) -> Args {
        let Some(offset) = &self.offset else { return self.args.clone() };
        let mut text = self.args.to_json_array();
        text.pop(); // the closing `]`
        if !self.args.is_empty() {
            text.push(',');
        }
        crate::json::write_string(&mut text, offset);
        text.push(']');
        // Built from valid arguments and a string, so it always parses; fall back to the data.
        Args::from_json_array(text, self.args.attachments().to_vec()).unwrap_or_else(|_| self.args.clone())
    }
}

/// socket.io-client's disconnect reasons (exact strings), plus the two terminal cases it reports differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DisconnectReason {
    /// "io server disconnect": the server sent DISCONNECT. No reconnect.
    IoServerDisconnect,
    /// "io client disconnect": the application disconnected. No reconnect.
    IoClientDisconnect,
    /// "ping timeout": no ping within pingInterval + pingTimeout.
    PingTimeout,
    /// "transport close": the connection was closed (server `conn.close()`, network loss, offline).
    TransportClose,
    /// "transport error": the connection failed (HTTP error, WebSocket error).
    TransportError,
    /// "parse error": the server sent something undecodable.
    ParseError,
    /// "connect error": the namespace refused the connection (CONNECT_ERROR). No reconnect.
    ConnectError,
    /// "reconnect failed": reconnection attempts are exhausted.
    ReconnectFailed,
}

impl DisconnectReason {
    /// The exact string socket.io-client uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::IoServerDisconnect => "io server disconnect",
            Self::IoClientDisconnect => "io client disconnect",
            Self::PingTimeout => "ping timeout",
            Self::TransportClose => "transport close",
            Self::TransportError => "transport error",
            Self::ParseError => "parse error",
            Self::ConnectError => "connect error",
            Self::ReconnectFailed => "reconnect failed",
        }
    }

    /// Whether the client reconnects by itself after this reason (socket.io-client's rule).
    pub fn reconnects(self) -> bool {
        matches!(self, Self::PingTimeout | Self::TransportClose | Self::TransportError | Self::ParseError)
    }
}

impl fmt::Display for DisconnectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The connection state of a namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectionState {
    /// Opening the engine or waiting for the CONNECT ack.
    Connecting,
    /// Connected.
    Connected {
        /// The transport in use (changes to WebSocket after an upgrade, reported again).
        transport: TransportKind,
        /// Whether the server restored the previous session (missed events were delivered first).
        recovered: bool,
        /// The socket id the server gave.
        sid: String,
    },
    /// Waiting before reconnection attempt `attempt` (from 1).
    Reconnecting {
        /// Attempt number.
        attempt: u32,
        /// Delay before it.
        delay: Duration,
    },
    /// Disconnected. Terminal unless `reason.reconnects()` (then `Reconnecting` follows).
    Disconnected {
        /// Why.
        reason: DisconnectReason,
    },
}

impl ConnectionState {
    /// The state of a namespace that was opened but has reported none yet (not asked to
    /// connect): socket.io-client's `disconnected` before `connect()`.
    pub const NOT_CONNECTED: Self = Self::Disconnected { reason: DisconnectReason::IoClientDisconnect };
}

/// The REST feed fallback's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeedStatus {
    /// Polling the feed while the socket is down.
    Polling,
    /// Stopped: the socket is back (or the client was disconnected).
    Stopped,
    /// Catching up: the socket is back but its session was not recovered, so the events
    /// published meanwhile are read from the feed first. Socket events of the main namespace wait
    /// until it has caught up, so the consumer gets every event once and in order.
    CatchingUp,
    /// Caught up (the feed had nothing more): the waiting socket events follow.
    CaughtUp,
    /// Gave up after too many consecutive failures; resumes the next time the socket goes down.
    /// During a catch-up: the events between the last one delivered and the socket's first may
    /// be missing, and this says so.
    GaveUp {
        /// The last failure.
        error: String,
    },
}

/// A namespace's refusal (CONNECT_ERROR), or a failure to open the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectError {
    /// The message (`err.message`): the server's, or e.g. "websocket error", "xhr poll error", "timeout".
    pub message: String,
    /// The server's `err.data` as JSON text, if any.
    pub data: Option<String>,
    /// Whether the client will try again by itself.
    pub will_retry: bool,
    /// Whether a WebSocket attempt failed and the client will fall back to HTTP long-polling if
    /// WebSocket keeps failing: the error may go away without the server changing (a proxy that
    /// blocks WebSockets). A driver's "connect and wait" should not give up on such an error.
    pub fallback_pending: bool,
    /// What went wrong below the message, when the client knows (the HTTP status or error of
    /// the handshake request, the WebSocket's error, a handshake that does not decode); `None`
    /// for a timeout and for the server's own refusals (CONNECT_ERROR).
    pub cause: Option<Fault>,
}

/// An emit the caller got wrong: nothing was sent or buffered. Fix the call; trying again as it
/// is fails the same way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InvalidEmit {
    /// The event name is reserved by Socket.IO (`connect`, `disconnect`, ...).
    ReservedName(String),
    /// The arguments are invalid.
    InvalidArgs(ArgsError),
    /// The namespace is not open on this client.
    UnknownNamespace(String),
    /// An idempotency key can only be added to an object first argument.
    IdempotencyKeyNeedsObject,
}

impl InvalidEmit {
    /// What `Display` writes, built without `core::fmt` so that a browser driver can report it
    /// without bringing the formatting machinery into its build.
    pub fn message(&self) -> Cow<'static, str> {
        match self {
            Self::ReservedName(n) => {
                Cow::Owned(text::concat(&["\"", n, "\" is a reserved event name; choose another name"]))
            }
            Self::InvalidArgs(e) => e.message(),
            Self::UnknownNamespace(n) => {
                Cow::Owned(text::concat(&["namespace ", n, " is not open on this client; open it first"]))
            }
            Self::IdempotencyKeyNeedsObject => Cow::Borrowed("an idempotency key needs an object as first argument"),
        }
    }
}

impl fmt::Display for InvalidEmit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())
    }
}

impl std::error::Error for InvalidEmit {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::InvalidArgs(e) => Some(e),
            _ => None,
        }
    }
}

/// Why a well-formed emit did not get through: at once ([`EmitRefused::Failed`]) or later, in
/// [`Output::Settled`] (and a room request in [`Output::Room`]). Each is about the connection or
/// the server, not the call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EmitError {
    /// The send buffer is full (see [`crate::config::SendBufferConfig`]).
    SendBufferFull,
    /// A volatile emit could not be written at once, so it was dropped.
    VolatileDropped,
    /// No ack within the timeout ("operation has timed out").
    Timeout,
    /// The socket disconnected before the ack came ("socket has been disconnected").
    Disconnected,
    /// The encoded packet exceeds the server's maxPayload.
    TooLarge {
        /// Packet size in bytes.
        size: usize,
        /// The server's limit.
        max: u64,
    },
}

impl EmitError {
    /// What `Display` writes, built without `core::fmt` so that a browser driver can report it
    /// without bringing the formatting machinery into its build.
    pub fn message(&self) -> Cow<'static, str> {
        Cow::Borrowed(match self {
            Self::SendBufferFull => {
                "the send buffer is full while disconnected; wait for the connection or raise the limit"
            }
            Self::VolatileDropped => "volatile emit dropped: the transport was not writable",
            Self::Timeout => "operation has timed out",
            Self::Disconnected => "socket has been disconnected",
            Self::TooLarge { size, max } => {
                return Cow::Owned(text::concat(&[
                    "packet of ",
                    &text::decimal(u64::try_from(*size).unwrap_or(u64::MAX)),
                    " bytes exceeds the server's maxPayload of ",
                    &text::decimal(*max),
                    " bytes; send less per emit",
                ]));
            }
        })
    }
}

impl fmt::Display for EmitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())
    }
}

impl std::error::Error for EmitError {}

/// Why [`crate::Client::emit`] did not take an emit, sorted by fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EmitRefused {
    /// The call is wrong.
    Invalid(InvalidEmit),
    /// The call is right, but it cannot go now (a full send buffer, a volatile emit while the
    /// transport is busy, a packet larger than the server takes).
    Failed(EmitError),
}

impl EmitRefused {
    /// What `Display` writes, built without `core::fmt` so that a browser driver can report it
    /// without bringing the formatting machinery into its build.
    pub fn message(&self) -> Cow<'static, str> {
        match self {
            Self::Invalid(e) => e.message(),
            Self::Failed(e) => e.message(),
        }
    }
}

impl fmt::Display for EmitRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())
    }
}

impl std::error::Error for EmitRefused {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Invalid(e) => Some(e),
            Self::Failed(e) => Some(e),
        }
    }
}

impl From<InvalidEmit> for EmitRefused {
    fn from(e: InvalidEmit) -> Self {
        Self::Invalid(e)
    }
}

impl From<EmitError> for EmitRefused {
    fn from(e: EmitError) -> Self {
        Self::Failed(e)
    }
}

/// Why a command was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandError {
    /// The namespace name must start with `/`.
    InvalidNamespace(String),
    /// The namespace is not open on this client.
    UnknownNamespace(String),
    /// Auth must be a JSON object.
    InvalidAuth,
    /// This auth request is no longer wanted (a newer attempt replaced it).
    StaleAuthRequest,
    /// Ack arguments invalid.
    InvalidArgs(ArgsError),
}

impl CommandError {
    /// What `Display` writes, built without `core::fmt` so that a browser driver can report it
    /// without bringing the formatting machinery into its build.
    pub fn message(&self) -> Cow<'static, str> {
        match self {
            Self::InvalidNamespace(n) => {
                let mut s = String::from("invalid namespace \"");
                text::push_escaped(&mut s, n);
                s.push_str("\": it must start with '/'");
                Cow::Owned(s)
            }
            Self::UnknownNamespace(n) => Cow::Owned(text::concat(&["namespace ", n, " is not open on this client"])),
            Self::InvalidAuth => Cow::Borrowed("auth must be a JSON object"),
            Self::StaleAuthRequest => Cow::Borrowed("this auth request is no longer current"),
            Self::InvalidArgs(e) => e.message(),
        }
    }
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())
    }
}

impl std::error::Error for CommandError {}

/// What the core asks the driver to do, or tells the application. Drain with
/// [`crate::Client::poll_output`] until [`Output::Wait`].
#[derive(Debug)]
pub enum Output {
    /// Open a WebSocket to `url` and report with `WsOpened`/`WsText`/`WsBinary`/`WsClosed`.
    OpenWebSocket {
        /// Generation id.
        conn: ConnId,
        /// Full URL (`ws(s)://…/socket.io/?EIO=4&transport=websocket…`).
        url: String,
    },
    /// Send one frame.
    SendWebSocket {
        /// Which socket.
        conn: ConnId,
        /// The frame.
        frame: Frame,
    },
    /// Close the socket with a normal close; no further inputs about it are needed.
    CloseWebSocket(ConnId),
    /// Make an HTTP request.
    Http(HttpRequest),
    /// Abort a request still in flight; its answer, if it comes, is ignored.
    AbortHttp(RequestId),
    /// Supply auth for the next CONNECT of `namespace` with [`crate::Client::provide_auth`].
    NeedAuth {
        /// Namespace.
        namespace: String,
        /// Answer with this id.
        request: AuthRequestId,
    },
    /// An event for the application.
    Event(Event),
    /// The fate of an emit: its ack's arguments, or why it failed.
    Settled {
        /// Which emit.
        emit: EmitId,
        /// Ack arguments, or the failure.
        result: Result<Args, EmitError>,
    },
    /// A room join or leave was acknowledged (or failed). Every request gets exactly one; a
    /// re-join the client makes by itself after a reconnect comes with `request: None`.
    Room {
        /// The request answered, or `None` for the client's own re-join or re-leave.
        request: Option<RoomRequestId>,
        /// Namespace.
        namespace: String,
        /// Room name.
        room: String,
        /// Join (true) or leave.
        join: bool,
        /// The server's ack arguments, or the failure.
        result: Result<Args, EmitError>,
    },
    /// The client is about to close its connection because of this (a state change with reason
    /// `ParseError` or `TransportError` follows): for logs and diagnostics.
    Fault(Fault),
    /// A namespace's connection state changed.
    State {
        /// Namespace.
        namespace: String,
        /// New state.
        state: ConnectionState,
    },
    /// A connection attempt failed (`connect_error`).
    ConnectError {
        /// Namespace.
        namespace: String,
        /// What failed.
        error: ConnectError,
    },
    /// The REST feed fallback changed state.
    Feed(FeedStatus),
    /// Nothing more to do until `Some(deadline)` (call `handle_input(Input::Timeout)` then) or the next input.
    Wait(Option<Instant>),
}

/// An emit, as handed to [`crate::Client::emit`].
#[derive(Debug, Clone)]
pub struct EmitRequest {
    /// Namespace (`/` by default).
    pub namespace: String,
    /// Event name.
    pub event: String,
    /// Arguments.
    pub args: Args,
    /// Ask the server for an ack.
    pub ack: bool,
    /// Ack timeout for this emit (overrides the configured `ack_timeout`).
    pub timeout: Option<Duration>,
    /// Drop instead of buffering when not writable; never retried.
    pub volatile: bool,
    /// Add `"idempotencyKey": KEY` to the first (object) argument, kept across retries.
    pub idempotency_key: Option<IdempotencyKey>,
}

/// The idempotency key of an emit ([`EmitRequest::idempotency_key`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdempotencyKey {
    /// This key (the application's own, e.g. from its database).
    Given(String),
    /// A fresh random key chosen by the client when the emit is accepted (20 characters of
    /// `[A-Za-z0-9]`), the same generator in every driver.
    New,
}

impl EmitRequest {
    /// An emit of `event` with `args` on `/`, no ack.
    pub fn new(event: impl Into<String>, args: Args) -> Self {
        Self {
            namespace: "/".to_string(),
            event: event.into(),
            args,
            ack: false,
            timeout: None,
            volatile: false,
            idempotency_key: None,
        }
    }
    /// On namespace `nsp`.
    pub fn namespace(mut self, nsp: impl Into<String>) -> Self {
        self.namespace = nsp.into();
        self
    }
    /// Ask for an ack.
    pub fn with_ack(mut self) -> Self {
        self.ack = true;
        self
    }
    /// Ask for an ack within `t`.
    pub fn timeout(mut self, t: Duration) -> Self {
        self.ack = true;
        self.timeout = Some(t);
        self
    }
    /// Volatile.
    pub fn volatile(mut self) -> Self {
        self.volatile = true;
        self
    }
    /// With this idempotency key.
    pub fn idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.idempotency_key = Some(IdempotencyKey::Given(key.into()));
        self
    }
    /// With a fresh idempotency key, chosen by the client.
    pub fn new_idempotency_key(mut self) -> Self {
        self.idempotency_key = Some(IdempotencyKey::New);
        self
    }
}
