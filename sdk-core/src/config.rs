//! Client configuration: every option with its default and its validation.

use std::fmt;
use std::time::Duration;

use crate::backoff::BackoffStrategy;
use crate::url::{ServerUrl, UrlError};

/// A transport Engine.IO can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransportKind {
    /// HTTP long-polling.
    Polling,
    /// WebSocket.
    WebSocket,
}

impl TransportKind {
    /// The Engine.IO name (`polling` / `websocket`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Polling => "polling",
            Self::WebSocket => "websocket",
        }
    }
}

impl fmt::Display for TransportKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a namespace authenticates its CONNECT.
#[derive(Clone, Default, PartialEq, Eq)]
pub enum AuthMode {
    /// No CONNECT payload.
    #[default]
    None,
    /// The same JSON object on every attempt.
    Static(String),
    /// Ask the driver before every attempt ([`crate::Output::NeedAuth`]), so a token provider can refresh it.
    Provider,
}

impl fmt::Debug for AuthMode {
    // Tokens never reach Debug output.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::None => f.write_str("None"),
            Self::Static(_) => f.write_str("Static(<redacted>)"),
            Self::Provider => f.write_str("Provider"),
        }
    }
}

/// What happens to an emit that does not fit in the send buffer while disconnected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OverflowPolicy {
    /// `emit` returns [`crate::EmitError::SendBufferFull`] (default).
    #[default]
    Reject,
    /// The oldest buffered emit is dropped and reported as failed with the same error.
    DropOldest,
}

/// Limits on what is kept while disconnected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendBufferConfig {
    /// Most packets buffered per namespace (default 1000).
    pub max_packets: usize,
    /// Most bytes of JSON and attachments buffered per namespace (default 4 MiB).
    pub max_bytes: usize,
    /// What to do when full.
    pub overflow: OverflowPolicy,
}

impl Default for SendBufferConfig {
    fn default() -> Self {
        Self { max_packets: 1000, max_bytes: 4 << 20, overflow: OverflowPolicy::Reject }
    }
}

/// Reconnection settings (defaults match socket.io-client, but attempts reset only after a stable connection).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReconnectConfig {
    /// Reconnect at all (default true).
    pub enabled: bool,
    /// Give up after this many attempts (default `None`: never).
    pub max_attempts: Option<u32>,
    /// Delay strategy (default socket.io's: 1000 ms, max 5000 ms, factor 2, randomization 0.5).
    pub backoff: BackoffStrategy,
    /// A connection that lasts this long resets the attempt counter (default 5 s), so a server that
    /// accepts and drops at once is met with growing delays rather than a tight loop.
    pub stable_after: Duration,
}

impl Default for ReconnectConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            max_attempts: None,
            backoff: BackoffStrategy::default(),
            stable_after: Duration::from_secs(5),
        }
    }
}

/// The events that join and leave a room (the server's handlers answer them with an ack).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomEvents {
    /// Joins the room named by the argument (default `room:join`).
    pub join: String,
    /// Leaves it (default `room:leave`).
    pub leave: String,
}

impl Default for RoomEvents {
    fn default() -> Self {
        RoomEvents { join: "room:join".to_string(), leave: "room:leave".to_string() }
    }
}

/// The REST feed fallback: `GET {url}/events?since=CURSOR`, `POST {url}/events/acknowledge`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedConfig {
    /// Base URL of the feed (`https://api.example.com/api/polling/tenant-1`).
    pub url: String,
    /// Start polling once the socket has been down this long (default 10 s).
    pub after: Duration,
    /// Interval between polls (default 10 s, at least `min_interval`).
    pub interval: Duration,
    /// Lower bound for the interval (default 5 s).
    pub min_interval: Duration,
    /// Upper bound for the interval after backoff (default 60 s).
    pub max_interval: Duration,
    /// Backoff multiplier after a failed poll, in percent (default 150 = x1.5).
    pub backoff_percent: u32,
    /// Stop polling after this many consecutive failures (default 5).
    pub max_failures: u32,
    /// Largest `limit` requested per poll (default 100).
    pub limit: u32,
    /// Largest response body accepted, in bytes (default 1 MiB).
    pub max_body: usize,
    /// A feed request not answered within this long is aborted and counts as a failed poll
    /// (default 30 s): a feed that accepts and never answers cannot stall the fallback.
    pub request_timeout: Duration,
    /// Where to resume while the client has delivered nothing yet: a cursor or the envelope id
    /// of the last event the application handled in an earlier run (default none). The first
    /// connection then reads every event after it from the feed, before the socket's own (see
    /// docs/RELIABILITY.md, "Catching up from the feed"), so a service restarted from a stored
    /// position misses nothing and gets nothing twice.
    pub since: Option<String>,
}

impl FeedConfig {
    /// A feed at `url` with the default timings.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            after: Duration::from_secs(10),
            interval: Duration::from_secs(10),
            min_interval: Duration::from_secs(5),
            max_interval: Duration::from_secs(60),
            backoff_percent: 150,
            max_failures: 5,
            limit: 100,
            max_body: 1 << 20,
            request_timeout: Duration::from_secs(30),
            since: None,
        }
    }
}

/// Moving between WebSocket and long-polling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransportConfig {
    /// Transports in order of preference (default `[WebSocket, Polling]`).
    pub order: [Option<TransportKind>; 2],
    /// Upgrade a polling session to WebSocket when the server offers it (default true).
    pub upgrade: bool,
    /// On a transport error while opening, try the next transport at once (default false, as socket.io-client).
    pub try_all_transports: bool,
    /// After this many consecutive WebSocket failures, open with polling instead (default 2; 0 = never).
    pub fallback_after: u32,
    /// While on polling after a fallback, probe WebSocket again this often (default 30 s).
    pub reprobe_every: Duration,
    /// Give up on an upgrade probe after this long (default 10 s, the server's upgradeTimeout).
    pub probe_timeout: Duration,
}

impl TransportConfig {
    /// Only this transport.
    pub fn only(kind: TransportKind) -> Self {
        Self { order: [Some(kind), None], ..Self::default() }
    }
    /// Polling first, then upgrade: the socket.io-client default.
    pub fn polling_first() -> Self {
        Self { order: [Some(TransportKind::Polling), Some(TransportKind::WebSocket)], ..Self::default() }
    }
    /// Whether `kind` may be used.
    pub fn allows(&self, kind: TransportKind) -> bool {
        self.order.contains(&Some(kind))
    }
    /// The first transport.
    pub fn first(&self) -> Option<TransportKind> {
        self.order.iter().flatten().next().copied()
    }
}

impl Default for TransportConfig {
    fn default() -> Self {
        Self {
            order: [Some(TransportKind::WebSocket), Some(TransportKind::Polling)],
            upgrade: true,
            try_all_transports: false,
            fallback_after: 2,
            reprobe_every: Duration::from_secs(30),
            probe_timeout: Duration::from_secs(10),
        }
    }
}

/// Everything the core needs to know; build with [`Config::new`] and adjust the fields.
#[derive(Debug, Clone)]
pub struct Config {
    /// The server (the preferred one when there are fallbacks).
    pub url: ServerUrl,
    /// Other servers to try when the preferred one fails (default none). Only their scheme,
    /// host, port and query are used; the namespace is `url`'s. The policy (docs/RELIABILITY.md,
    /// "Several servers"): every series of reconnection attempts starts at the preferred server
    /// and each failed attempt moves to the next in the list, wrapping around; a connection to a
    /// fallback is kept while it is healthy (dropping it on purpose could lose events in flight),
    /// and the next reconnection starts at the preferred server again.
    pub fallback_urls: Vec<ServerUrl>,
    /// Engine.IO path (default `/socket.io/`).
    pub path: String,
    /// Auth of the URL's namespace.
    pub auth: AuthMode,
    /// Transports.
    pub transports: TransportConfig,
    /// Time allowed to open the engine (default 20 s, socket.io-client's `timeout`).
    pub connect_timeout: Duration,
    /// Time allowed for the CONNECT ack once the engine is open (default 20 s; socket.io-client has none).
    pub namespace_timeout: Duration,
    /// Reconnection.
    pub reconnect: ReconnectConfig,
    /// Extra tries of a non-volatile emit whose ack did not come in `ack_timeout` (default 0).
    /// Greater than zero turns on at-least-once delivery: one packet in flight, order kept.
    pub retries: u32,
    /// Default ack timeout for emits that ask for an ack (default none).
    pub ack_timeout: Option<Duration>,
    /// Send buffer limits.
    pub send_buffer: SendBufferConfig,
    /// Most events buffered before a CONNECT ack (recovered events), per namespace (default 10 000).
    pub max_receive_buffer: usize,
    /// Binary attachments allowed per packet (default 10).
    pub max_attachments: usize,
    /// Room join/leave event names (default `room:join` / `room:leave`).
    pub room_events: RoomEvents,
    /// Ask the driver for fresh auth once and retry when a CONNECT_ERROR looks like an auth failure (default true).
    pub refresh_auth_on_error: bool,
    /// Size of the de-duplication window (default 1024 keys; 0 disables).
    pub dedup_window: usize,
    /// REST feed fallback (default none).
    pub feed: Option<FeedConfig>,
    /// Seed of the RNG used for jitter and cache-busting (drivers pass a random one).
    pub seed: u64,
}

impl Config {
    /// A configuration for `url` (its path names the namespace) with every default.
    pub fn new(url: &str) -> Result<Self, UrlError> {
        Ok(Self {
            url: ServerUrl::parse(url)?,
            fallback_urls: Vec::new(),
            path: "/socket.io/".to_string(),
            auth: AuthMode::None,
            transports: TransportConfig::default(),
            connect_timeout: Duration::from_secs(20),
            namespace_timeout: Duration::from_secs(20),
            reconnect: ReconnectConfig::default(),
            retries: 0,
            ack_timeout: None,
            send_buffer: SendBufferConfig::default(),
            max_receive_buffer: 10_000,
            max_attachments: crate::socketio::DEFAULT_MAX_ATTACHMENTS,
            room_events: RoomEvents::default(),
            refresh_auth_on_error: true,
            dedup_window: 1024,
            feed: None,
            seed: 0,
        })
    }

    /// Checks the options against each other; the client refuses an invalid configuration.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.transports.first().is_none() {
            return Err(ConfigError("at least one transport is needed"));
        }
        if self.transports.order[0] == self.transports.order[1] {
            return Err(ConfigError("a transport is listed twice"));
        }
        self.reconnect.backoff.validate().map_err(ConfigError)?;
        if self.retries > 0 && self.ack_timeout.is_none() {
            return Err(ConfigError(
                "retries need an ack_timeout (otherwise a lost ack would block the queue forever)",
            ));
        }
        if self.send_buffer.max_packets == 0 {
            return Err(ConfigError("send_buffer.max_packets must be at least 1"));
        }
        if !self.path.starts_with('/') {
            return Err(ConfigError("path must start with '/'"));
        }
        if !self.url.namespace.starts_with('/') {
            return Err(ConfigError("namespace must start with '/'"));
        }
        if self.fallback_urls.iter().any(|u| u.namespace != "/" && u.namespace != self.url.namespace) {
            return Err(ConfigError("a fallback url names another namespace than the url"));
        }
        if self.fallback_urls.len() > MAX_FALLBACK_URLS {
            return Err(ConfigError("at most 16 fallback urls"));
        }
        if let AuthMode::Static(a) = &self.auth
            && crate::json::validate(a) != Ok(crate::json::JsonKind::Object)
        {
            return Err(ConfigError("auth must be a JSON object"));
        }
        if let Some(feed) = &self.feed {
            if crate::url::ServerUrl::parse(&feed.url).is_err() {
                return Err(ConfigError("feed url must be an http(s) URL"));
            }
            if feed.min_interval.is_zero() || feed.interval < feed.min_interval || feed.max_interval < feed.interval {
                return Err(ConfigError("feed intervals must satisfy 0 < min <= interval <= max"));
            }
            if feed.backoff_percent < 100 {
                return Err(ConfigError("feed backoff must be at least 100%"));
            }
        }
        Ok(())
    }
}

/// Most [`Config::fallback_urls`].
pub const MAX_FALLBACK_URLS: usize = 16;

/// An invalid combination of options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub &'static str);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Two `write_str`s rather than `write!`: no `core::fmt` argument machinery.
        f.write_str("invalid configuration: ")?;
        f.write_str(self.0)
    }
}

impl std::error::Error for ConfigError {}
