//! The public handle and its builder.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::Stream;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tidings_core::config::{ReconnectConfig, SendBufferConfig};
use tidings_core::event::EventPattern;
use tidings_core::{
    AckRequest, AuthMode, Config, ConnectionState, EmitRequest, EventSource, FeedConfig, TransportConfig,
};
use tokio::sync::{mpsc, oneshot, watch};

use crate::delivery::{DEFAULT_RECEIVE_BUFFER, Item, Notices, Queued, Source, queue};
use crate::driver::{Command, Driver, DriverRef, EmitReply, Notice, Subscriber, Validator, perform_now};
use crate::error::ConfigError;
use crate::payload::{texts_to_args, values_to_args};
use crate::transport::Net;
use crate::{Error, Payload};

/// An async auth provider: called before every connection attempt with the namespace, it returns
/// the CONNECT payload (a JSON object, for example `{"token": "…"}`).
pub type AuthProvider =
    Arc<dyn Fn(String) -> Pin<Box<dyn Future<Output = Result<serde_json::Value, String>> + Send>> + Send + Sync>;

/// Configures and starts a [`Tidings`] client.
///
/// ```no_run
/// # async fn run() -> Result<(), tidings::Error> {
/// use std::time::Duration;
/// let client = tidings::Tidings::builder("https://realtime.example.com")
///     .token("eyJhbGciOi…")
///     .ack_timeout(Duration::from_secs(5))
///     .connect()
///     .await?;
/// # Ok(()) }
/// ```
#[must_use]
pub struct ClientBuilder {
    config: Result<Config, Error>,
    provider: Option<AuthProvider>,
    validator: Option<Validator>,
    roots: Vec<Vec<u8>>,
    receive_buffer: usize,
}

impl std::fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Config's Debug redacts auth; the provider is opaque.
        f.debug_struct("ClientBuilder")
            .field("config", &self.config)
            .field("provider", &self.provider.is_some())
            .field("validator", &self.validator.is_some())
            .finish()
    }
}

impl ClientBuilder {
    fn map(mut self, f: impl FnOnce(&mut Config)) -> Self {
        if let Ok(c) = &mut self.config {
            f(c);
        }
        self
    }

    /// Connects to this namespace instead of the one in the URL's path.
    pub fn namespace(self, namespace: &str) -> Self {
        let ns = tidings_core::url::namespace_path(namespace);
        self.map(|c| c.url.namespace = ns)
    }

    /// Another server to try when the preferred one (the builder's URL) fails; repeatable, tried
    /// in the order given (at most 16). Every series of reconnection attempts starts at the
    /// preferred server and moves to the next after each failed attempt; a healthy connection to
    /// a fallback is kept, and the next reconnection starts at the preferred one again
    /// (docs/RELIABILITY.md, "Several servers"). Its path must be empty or the same namespace.
    pub fn fallback_url(mut self, url: &str) -> Self {
        match tidings_core::url::ServerUrl::parse(url) {
            Ok(u) => self.map(|c| c.fallback_urls.push(u)),
            Err(e) => {
                self.config = Err(Error::Config(ConfigError::Url(e)));
                self
            }
        }
    }

    /// Sends this JSON object as the CONNECT payload (`handshake.auth` on the server).
    pub fn auth(mut self, auth: serde_json::Value) -> Self {
        if !auth.is_object() {
            self.config = Err(Error::Config(ConfigError::AuthNotObject));
            return self;
        }
        self.map(|c| c.auth = AuthMode::Static(auth.to_string()))
    }

    /// Sends `{"token": token}` as the CONNECT payload. The token never appears in logs or URLs.
    pub fn token(self, token: impl Into<String>) -> Self {
        self.auth(serde_json::json!({ "token": token.into() }))
    }

    /// Calls `provider` before every connection attempt (and once more after an auth failure), so
    /// an expired token can be refreshed.
    ///
    /// ```no_run
    /// # async fn fresh_token() -> Result<String, String> { Ok("t".into()) }
    /// let builder = tidings::Tidings::builder("https://rt.example.com")
    ///     .auth_provider(|_namespace| async { Ok(serde_json::json!({ "token": fresh_token().await? })) });
    /// ```
    pub fn auth_provider<F, Fut>(mut self, provider: F) -> Self
    where
        F: Fn(String) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<serde_json::Value, String>> + Send + 'static,
    {
        self.provider = Some(Arc::new(move |ns| Box::pin(provider(ns))));
        self.map(|c| c.auth = AuthMode::Provider)
    }

    /// Transports and upgrade/fallback behaviour (default: WebSocket first, polling fallback).
    pub fn transports(self, t: TransportConfig) -> Self {
        self.map(|c| c.transports = t)
    }

    /// Reconnection settings.
    pub fn reconnect(self, r: ReconnectConfig) -> Self {
        self.map(|c| c.reconnect = r)
    }

    /// Time allowed to open the connection (default 20 s).
    pub fn connect_timeout(self, d: Duration) -> Self {
        self.map(|c| c.connect_timeout = d)
    }

    /// Default timeout for acks.
    pub fn ack_timeout(self, d: Duration) -> Self {
        self.map(|c| c.ack_timeout = Some(d))
    }

    /// At-least-once delivery: each emit is retried `retries` times, `ack_timeout` apart, one in flight.
    pub fn retries(self, retries: u32, ack_timeout: Duration) -> Self {
        self.map(|c| {
            c.retries = retries;
            c.ack_timeout = Some(ack_timeout);
        })
    }

    /// Send buffer limits while disconnected.
    pub fn send_buffer(self, b: SendBufferConfig) -> Self {
        self.map(|c| c.send_buffer = b)
    }

    /// Event names used to join and leave rooms (default `room:join` / `room:leave`).
    pub fn room_events(self, join: &str, leave: &str) -> Self {
        self.map(|c| {
            c.room_events = tidings_core::config::RoomEvents { join: join.to_string(), leave: leave.to_string() }
        })
    }

    /// How many bytes of received events and notices may wait for consumers (default
    /// [`DEFAULT_RECEIVE_BUFFER`], 4 MiB; each event counts its JSON text plus ~200 bytes).
    /// Nothing is dropped when it is full: the client stops reading the connection until the
    /// consumers catch up, so the server is slowed by TCP. A consumer stalled for longer than
    /// the server's ping timeout gets a reconnect with recovery, and then every event once
    /// (docs/RELIABILITY.md).
    pub fn receive_buffer(mut self, bytes: usize) -> Self {
        self.receive_buffer = bytes.max(1);
        self
    }

    /// The REST feed fallback.
    pub fn feed(self, feed: FeedConfig) -> Self {
        self.map(|c| c.feed = Some(feed))
    }

    /// Checks every server event (from the socket or the feed, every namespace) before any
    /// subscription sees it, e.g. with an event catalogue's validator: `Err(problems)` and the
    /// event goes to no subscription, `on_any` and `wait_for` included; it is reported as
    /// [`Notice::Invalid`] (and logged at `warn` with its name and problems, never its data) and
    /// still counts as received, so the cursor moves past it and it is not asked for again. The
    /// check runs on the client's task: keep it quick and free of IO.
    ///
    /// ```no_run
    /// # fn build() -> tidings::ClientBuilder {
    /// tidings::Tidings::builder("http://127.0.0.1:3000").validate(|ev| match ev.args.get(0) {
    ///     Some(raw) if raw.starts_with('{') => Ok(()),
    ///     _ => Err(vec![format!("{}: the payload must be an object", ev.name)]),
    /// })
    /// # }
    /// ```
    pub fn validate<F>(mut self, check: F) -> Self
    where
        F: Fn(&crate::Event) -> Result<(), Vec<String>> + Send + Sync + 'static,
    {
        self.validator = Some(Arc::new(check));
        self
    }

    /// The Engine.IO path (default `/socket.io/`; a trailing `/` is added, as socket.io-client
    /// does). It must start with `/`.
    pub fn path(self, path: &str) -> Self {
        let path = if path.ends_with('/') { path.to_string() } else { format!("{path}/") };
        self.map(|c| c.path = path)
    }

    /// Trusts this extra root certificate (DER) besides the web PKI roots.
    pub fn add_root_certificate(mut self, der: Vec<u8>) -> Self {
        self.roots.push(der);
        self
    }

    /// Adjusts any core option directly.
    pub fn configure(self, f: impl FnOnce(&mut Config)) -> Self {
        self.map(f)
    }

    /// Starts the client in the background (it connects, and reconnects, by itself) and returns
    /// its handle at once. Must be called within a tokio runtime.
    pub fn build(self) -> Result<Tidings, Error> {
        let mut config = self.config?;
        config.seed = rand::random();
        let net = Net::new(&self.roots, 64 << 20)?;
        let core = tidings_core::Client::new(config).map_err(ConfigError::Core)?;
        let main = core.main_namespace().to_string();
        let (tx, rx) = mpsc::unbounded_channel();
        let (state_tx, state_rx) = watch::channel(ConnectionState::Connecting);
        let (driver, io_rx) = Driver::new(core, net, rx, state_tx, self.provider, self.validator, self.receive_buffer);
        let weak = Arc::downgrade(&driver);
        tokio::spawn(Driver::run(driver, io_rx));
        let _ = tx.send(Command::Connect(main.clone()));
        Ok(Tidings { inner: Arc::new(Inner { tx, driver: weak, state: state_rx, namespace: main }) })
    }

    /// Starts the client and waits until it is connected, or fails with the first connect error,
    /// except WebSocket failures that the long-polling fallback may still overcome
    /// ([`ConnectError::fallback_pending`](tidings_core::ConnectError::fallback_pending)).
    /// The client is stopped when it fails.
    pub async fn connect(self) -> Result<Tidings, Error> {
        let client = self.build()?;
        let mut notices = client.notices();
        loop {
            match notices.recv().await {
                Some(Notice::State(ConnectionState::Connected { .. })) => return Ok(client),
                Some(Notice::ConnectError(e)) if e.fallback_pending => {
                    tracing::debug!(message = %e.message, "websocket failed; waiting for the polling fallback");
                }
                Some(Notice::ConnectError(e)) => return Err(Error::Connect(e)),
                Some(_) => {}
                None => return Err(Error::Closed),
            }
        }
    }
}

struct Inner {
    tx: mpsc::UnboundedSender<Command>,
    /// The driver's state, for emits performed by the caller (`driver::perform_now`).
    driver: DriverRef,
    state: watch::Receiver<ConnectionState>,
    /// This handle's namespace.
    namespace: String,
}

/// A connected (or connecting) Socket.IO client. Cheap to clone; `Send + Sync`. The connection
/// closes cleanly when the last clone is dropped.
#[derive(Clone)]
pub struct Tidings {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Tidings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tidings")
            .field("namespace", &self.inner.namespace)
            .field("state", &*self.inner.state.borrow())
            .finish()
    }
}

impl Tidings {
    /// A builder for a client of `url` (`http(s)://` or `ws(s)://`; its path names the namespace).
    pub fn builder(url: &str) -> ClientBuilder {
        ClientBuilder {
            config: Config::new(url).map_err(|e| Error::Config(ConfigError::Url(e))),
            provider: None,
            validator: None,
            roots: Vec::new(),
            receive_buffer: DEFAULT_RECEIVE_BUFFER,
        }
    }

    fn send(&self, c: Command) -> Result<(), Error> {
        self.inner.tx.send(c).map_err(|_| Error::Closed)
    }

    /// An emit: performed at once when the driver is idle, else handed to its task.
    fn send_emit(&self, c: Command) -> Result<(), Error> {
        match perform_now(&self.inner.driver, c) {
            None => Ok(()),
            Some(c) => self.send(c),
        }
    }

    /// The current connection state.
    pub fn state(&self) -> ConnectionState {
        self.inner.state.borrow().clone()
    }

    /// A watch of the connection state.
    pub fn watch_state(&self) -> watch::Receiver<ConnectionState> {
        self.inner.state.clone()
    }

    /// This handle's namespace.
    pub fn namespace(&self) -> &str {
        &self.inner.namespace
    }

    /// A handle on another namespace of the same server, multiplexed over this client's engine
    /// session (one WebSocket for all), like socket.io-client's `manager.socket(nsp)`. It connects
    /// with this client's auth (or auth provider) and has its own state, events, emits and
    /// rooms. Its [`Tidings::disconnect`] sends `41<nsp>,` and leaves the other namespaces alone.
    ///
    /// ```no_run
    /// # async fn run(client: tidings::Tidings) -> Result<(), tidings::Error> {
    /// let admin = client.of("/admin")?;
    /// admin.wait_connected(std::time::Duration::from_secs(5)).await?;
    /// admin.emit("audit", "hello").await?;
    /// # Ok(()) }
    /// ```
    pub fn of(&self, namespace: &str) -> Result<Tidings, Error> {
        let ns = tidings_core::url::namespace_path(namespace);
        if ns == self.inner.namespace {
            return Ok(self.clone());
        }
        let (state_tx, state_rx) = watch::channel(ConnectionState::Connecting);
        self.send(Command::OpenNamespace { namespace: ns.clone(), state: state_tx })?;
        Ok(Tidings {
            inner: Arc::new(Inner {
                tx: self.inner.tx.clone(),
                driver: self.inner.driver.clone(),
                state: state_rx,
                namespace: ns,
            }),
        })
    }

    /// Every change of this namespace's state, its connect errors and the feed's changes, in
    /// order (with the events around them), from now on. Nothing is skipped: unread notices wait
    /// in the receive buffer, so drop the receiver when you stop reading it.
    pub fn notices(&self) -> Notices {
        let (tx, rx) = mpsc::unbounded_channel();
        let _ = self.send(Command::Listen(self.inner.namespace.clone(), tx));
        Notices { rx }
    }

    /// Waits until connected, at most `timeout`.
    pub async fn wait_connected(&self, timeout: Duration) -> Result<(), Error> {
        let mut w = self.watch_state();
        let fut = w.wait_for(|s| matches!(s, ConnectionState::Connected { .. }));
        match tokio::time::timeout(timeout, fut).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_)) => Err(Error::Closed),
            Err(_) => Err(Error::Timeout),
        }
    }

    fn subscribe<T>(&self, pattern: &str, lossy: Option<usize>, decode: Decoder<T>) -> Subscription<T> {
        let (sink, rx) = queue(lossy);
        let namespace = Some(self.inner.namespace.clone());
        let _ = self.send(Command::Subscribe(Subscriber { namespace, pattern: EventPattern::parse(pattern), sink }));
        Subscription { rx, tx: self.inner.tx.clone(), decode }
    }

    /// Events named `pattern` (exact name, `prefix.*`, or `*`), deserialised into `T` (see
    /// [`Payload::deserialize`]). A payload that does not fit `T` is an error item, not a panic.
    ///
    /// Lossless: every matching event, in order, once. A subscription read slower than events
    /// arrive slows the connection down (see [`ClientBuilder::receive_buffer`]); drop it when you
    /// stop reading. Subscribe before connecting (with [`ClientBuilder::build`]) to see events
    /// the server sends right at connection time. A subscription keeps the client alive while it
    /// exists.
    ///
    /// ```no_run
    /// use futures_util::StreamExt;
    /// # async fn run(client: tidings::Tidings) {
    /// #[derive(serde::Deserialize)]
    /// struct Message { text: String }
    /// let mut chat = client.on::<Message>("chat.*");
    /// while let Some(Ok(m)) = chat.next().await {
    ///     println!("{}: {}", m.event, m.data.text);
    /// }
    /// # }
    /// ```
    pub fn on<T: DeserializeOwned>(&self, pattern: &str) -> Subscription<T> {
        self.subscribe(pattern, None, Payload::deserialize_event::<T>)
    }

    /// Events named `pattern`, lossy by choice: at most `capacity` events wait for the reader;
    /// when it is behind, newer events are skipped and the stream yields [`Error::Lagged`] with
    /// their count before the next event. For readers that only want recent values (a
    /// dashboard gauge); it never slows the connection or other subscriptions down.
    pub fn on_lossy<T: DeserializeOwned>(&self, pattern: &str, capacity: usize) -> Subscription<T> {
        self.subscribe(pattern, Some(capacity), Payload::deserialize_event::<T>)
    }

    /// Events named `pattern`, undecoded (raw JSON arguments and attachments; a recovery offset
    /// is in [`Received::offset`], not in the payload).
    pub fn on_raw(&self, pattern: &str) -> Subscription<Payload> {
        // The event is this subscription's alone (or a copy): its arguments move, uncopied.
        self.subscribe(pattern, None, |ev| Ok(Payload(std::mem::take(&mut ev.args))))
    }

    /// Every event, undecoded.
    pub fn on_any(&self) -> Subscription<Payload> {
        self.on_raw("*")
    }

    /// The next event named `event` (for tests and scripts). It subscribes when called, not
    /// when first polled, so an event that arrives before the future is awaited is not missed:
    ///
    /// ```no_run
    /// # async fn run(client: tidings::Tidings) -> Result<(), tidings::Error> {
    /// use std::time::Duration;
    /// let pong = client.wait_for::<serde_json::Value>("pong", Duration::from_secs(5));
    /// client.emit("ping", &1).await?;
    /// let pong = pong.await?;
    /// # Ok(()) }
    /// ```
    pub fn wait_for<T: DeserializeOwned + Send + 'static>(
        &self,
        event: &str,
        timeout: Duration,
    ) -> impl Future<Output = Result<Received<T>, Error>> + Send + 'static {
        use futures_util::StreamExt;
        let mut sub = self.on::<T>(event);
        async move {
            match tokio::time::timeout(timeout, sub.next()).await {
                Ok(Some(r)) => r,
                Ok(None) => Err(Error::Closed),
                Err(_) => Err(Error::Timeout),
            }
        }
    }

    /// Starts an emit of `event` on this client's namespace.
    ///
    /// ```no_run
    /// # async fn run(client: tidings::Tidings) -> Result<(), tidings::Error> {
    /// use tidings::Bytes;
    /// let ack = client
    ///     .emit_builder("upload")
    ///     .arg(&serde_json::json!({ "name": "a.png" }))
    ///     .arg(&Bytes(vec![0x89, 0x50, 0x4e, 0x47]))
    ///     .idempotent()
    ///     .timeout(std::time::Duration::from_secs(10))
    ///     .ack()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn emit_builder(&self, event: &str) -> Emit {
        Emit {
            client: self.clone(),
            req: EmitRequest::new(event, tidings_core::Args::empty()).namespace(self.inner.namespace.clone()),
            texts: Vec::new(),
            err: None,
        }
    }

    /// Emits `event` with one argument. Resolves once the core accepted it (sent, or buffered
    /// while disconnected).
    pub async fn emit<T: Serialize + ?Sized>(&self, event: &str, data: &T) -> Result<(), Error> {
        self.emit_builder(event).arg(data).send().await
    }

    /// Emits `event` with one argument and waits for the server's ack.
    ///
    /// ```no_run
    /// # async fn run(client: tidings::Tidings) -> Result<(), tidings::Error> {
    /// let ack = client.emit_with_ack("room:join", "chat:42", std::time::Duration::from_secs(5)).await?;
    /// let reply: serde_json::Value = ack.deserialize()?;
    /// # Ok(()) }
    /// ```
    pub async fn emit_with_ack<T: Serialize + ?Sized>(
        &self,
        event: &str,
        data: &T,
        timeout: Duration,
    ) -> Result<Payload, Error> {
        self.emit_builder(event).arg(data).timeout(timeout).ack().await
    }

    /// Emits `event` only if it can be written now; otherwise it is dropped (returns an error).
    pub async fn emit_volatile<T: Serialize + ?Sized>(&self, event: &str, data: &T) -> Result<(), Error> {
        self.emit_builder(event).arg(data).volatile().send().await
    }

    /// Joins `room` (sends the room-join event, and again after every reconnect that did not
    /// recover the session) and waits for the server's ack.
    pub async fn join(&self, room: &str) -> Result<Payload, Error> {
        self.room(room, true).await
    }

    /// Leaves `room` and waits for the server's ack.
    pub async fn leave(&self, room: &str) -> Result<Payload, Error> {
        self.room(room, false).await
    }

    async fn room(&self, room: &str, join: bool) -> Result<Payload, Error> {
        let (tx, rx) = oneshot::channel();
        self.send(Command::Room {
            namespace: self.inner.namespace.clone(),
            room: room.to_string(),
            join,
            done: Some(tx),
        })?;
        rx.await.map_err(|_| Error::Closed)?
    }

    /// Reconnects after a server disconnect, a refused connection or [`Tidings::disconnect`].
    pub fn connect(&self) -> Result<(), Error> {
        self.send(Command::Connect(self.inner.namespace.clone()))
    }

    /// A page of history from the REST feed: the events after `since` (a cursor, an offset or
    /// an envelope id, as the feed takes them; `None`: where the feed starts for this caller),
    /// at most `limit` (1-1000), oldest first, with the cursor of the next page. It reads the
    /// feed only: it does not deliver to subscriptions or move [`Tidings::cursor`]. An event
    /// whose payload does not decode as `T` is an error for the whole page (nothing is skipped).
    ///
    /// ```no_run
    /// # async fn run(client: tidings::Tidings) -> Result<(), tidings::Error> {
    /// let mut since = Some("evt_2f1c...".to_string());
    /// loop {
    ///     let page = client.history::<serde_json::Value>(since.as_deref(), 100).await?;
    ///     for e in &page.events {
    ///         println!("{} {}", e.event, e.data);
    ///     }
    ///     if !page.has_more {
    ///         break;
    ///     }
    ///     since = page.cursor;
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn history<T: DeserializeOwned>(&self, since: Option<&str>, limit: u32) -> Result<History<T>, Error> {
        let (tx, rx) = oneshot::channel();
        self.send(Command::History { since: since.map(str::to_string), limit, reply: tx })?;
        let page = rx.await.map_err(|_| Error::Closed)??;
        let mut events = Vec::with_capacity(page.events.len());
        for e in page.events {
            // The feed's `data` is the event's one argument; its offset is the feed's, never
            // appended to the arguments.
            let data = Payload::deserialize_args::<T>(&e.args)?;
            events.push(Received { event: e.name, data, offset: e.offset, source: EventSource::Feed, ack: None });
        }
        Ok(History { events, cursor: page.cursor, has_more: page.has_more })
    }

    /// Where this client stands in the event stream: the position of the last event delivered
    /// to every subscription (the envelope id of a socket event, the offset or id of a feed
    /// event), else the configured [`FeedConfig::since`](crate::FeedConfig). Persist it once the
    /// events up to it are handled, and start the next run from it with `FeedConfig::since`: that
    /// client reads every later event from the feed, once, before the live ones.
    ///
    /// `None` before any event with an envelope id was delivered, and once the client is closed.
    pub async fn cursor(&self) -> Option<String> {
        let (tx, rx) = oneshot::channel();
        self.send(Command::Cursor(tx)).ok()?;
        rx.await.ok().flatten()
    }

    /// Disconnects this handle's namespace ("io client disconnect"); no reconnection until
    /// [`Tidings::connect`]. Other namespaces opened with [`Tidings::of`] stay connected; the
    /// engine closes when no namespace is left, as socket.io-client's `socket.disconnect()` (the
    /// core's rule, the same in the browser package). [`Tidings::close`] ends them all.
    pub async fn disconnect(&self) -> Result<(), Error> {
        let (tx, rx) = oneshot::channel();
        self.send(Command::Disconnect(self.inner.namespace.clone(), tx))?;
        rx.await.map_err(|_| Error::Closed)
    }

    /// Disconnects, waits (briefly) for the last frames to leave, and stops the client for every
    /// clone and every namespace handle from [`Tidings::of`].
    ///
    /// Queued emits are written before the `41`, but a Socket.IO server dispatches an event on
    /// the next tick and drops it if the disconnect arrived in the same read: when the last emit
    /// must be delivered, emit it with an ack (or wait a moment) before closing.
    pub async fn close(self) {
        let (tx, rx) = oneshot::channel();
        if self.send(Command::Shutdown(tx)).is_ok() {
            let _ = rx.await;
        }
    }

    /// Tells the client the network is back (retry at once) or gone.
    pub fn network_changed(&self, online: bool) -> Result<(), Error> {
        self.send(Command::Network(if online { tidings_core::Input::Online } else { tidings_core::Input::Offline }))
    }
}

/// An emit being built: arguments, ack, timeout, volatile, idempotency key.
#[must_use]
pub struct Emit {
    client: Tidings,
    req: EmitRequest,
    texts: Vec<String>,
    err: Option<Error>,
}

impl Emit {
    /// Adds one argument.
    pub fn arg<T: Serialize + ?Sized>(mut self, value: &T) -> Self {
        match serde_json::to_string(value) {
            Ok(t) => self.texts.push(t),
            Err(e) => self.err = Some(crate::error::serialize(e)),
        }
        self
    }

    /// Sets all arguments from JSON values (`{"$binary": base64}` objects become attachments).
    pub fn args(mut self, values: &[serde_json::Value]) -> Self {
        self.texts = values.iter().map(serde_json::Value::to_string).collect();
        self
    }

    /// Ack timeout for this emit.
    pub fn timeout(mut self, d: Duration) -> Self {
        self.req.timeout = Some(d);
        self
    }

    /// Drop the emit instead of buffering it when it cannot be written at once.
    pub fn volatile(mut self) -> Self {
        self.req.volatile = true;
        self
    }

    /// Adds `"idempotencyKey"` (a fresh random key kept across retries) to the first argument,
    /// which must be an object, so the server can de-duplicate retried emits.
    pub fn idempotent(mut self) -> Self {
        self.req = self.req.new_idempotency_key();
        self
    }

    /// Sends without asking for an ack.
    pub async fn send(mut self) -> Result<(), Error> {
        self.prepare(false)?;
        let (tx, rx) = oneshot::channel();
        self.client.send_emit(Command::Emit { req: self.req, reply: EmitReply::Accepted(tx) })?;
        rx.await.map_err(|_| Error::Closed)?.map(|_| ())
    }

    /// Sends and waits for the server's ack (or the timeout).
    pub async fn ack(mut self) -> Result<Payload, Error> {
        self.prepare(true)?;
        // One wait: a refused emit is answered on the ack channel too (a separate "accepted"
        // answer would cost the round trip a second task wake-up).
        let (tx, rx) = oneshot::channel();
        self.client.send_emit(Command::Emit { req: self.req, reply: EmitReply::Ack(tx) })?;
        rx.await.map_err(|_| Error::Closed)?
    }

    fn prepare(&mut self, ack: bool) -> Result<(), Error> {
        if let Some(e) = self.err.take() {
            return Err(e);
        }
        self.req.args = texts_to_args(std::mem::take(&mut self.texts))?;
        self.req.ack = ack;
        Ok(())
    }
}

/// A page of history from the REST feed ([`Tidings::history`]).
#[derive(Debug)]
pub struct History<T> {
    /// The events, oldest first (`source` is [`EventSource::Feed`]).
    pub events: Vec<Received<T>>,
    /// What to pass as `since` for the next page.
    pub cursor: Option<String>,
    /// Whether the feed has more after this page.
    pub has_more: bool,
}

/// An event received by a subscription.
#[derive(Debug)]
pub struct Received<T> {
    /// Event name.
    pub event: String,
    /// The decoded payload.
    pub data: T,
    /// The event's last argument when it may be the recovery offset a socket.io server appends
    /// (a string, recovery on, no ack asked). A volatile event's last string argument looks the
    /// same on the wire: [`Tidings::on`] then also tries it as data (docs/PROTOCOL.md, "Offsets").
    pub offset: Option<String>,
    /// Socket or REST feed.
    pub source: EventSource,
    /// Present when the server asked for an ack: answer with [`AckHandle::send`].
    pub ack: Option<AckHandle>,
}

/// Answers a server's ack request.
#[derive(Debug)]
pub struct AckHandle {
    req: AckRequest,
    tx: mpsc::UnboundedSender<Command>,
}

impl AckHandle {
    /// Sends the ack with these arguments (JSON values; `{"$binary":…}` objects become attachments).
    pub fn send(self, args: &[serde_json::Value]) -> Result<(), Error> {
        let args = values_to_args(args)?;
        self.tx.send(Command::Ack { req: self.req, args }).map_err(|_| Error::Closed)
    }
}

/// Turns an event into the subscription's type; it may take the event's parts.
type Decoder<T> = fn(&mut tidings_core::Event) -> Result<T, Error>;

/// A stream of received events of type `T`.
pub struct Subscription<T> {
    rx: Source,
    tx: mpsc::UnboundedSender<Command>,
    decode: Decoder<T>,
}

impl<T> std::fmt::Debug for Subscription<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription").finish_non_exhaustive()
    }
}

impl<T> Unpin for Subscription<T> {}

impl<T> Stream for Subscription<T> {
    type Item = Result<Received<T>, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match self.rx.poll_recv(cx) {
            Poll::Ready(Some(Item::Skipped(n))) => Poll::Ready(Some(Err(Error::Lagged(n)))),
            Poll::Ready(Some(Item::Event(q))) => {
                // The only reader (the usual case) takes the event's parts instead of copying them.
                let mut ev = match q {
                    Queued::Owned(ev, _) => ev,
                    // Several subscriptions have it: this one decodes its own copy.
                    Queued::Shared(s) => s.ev.clone(),
                };
                let data = (self.decode)(&mut ev);
                let tidings_core::Event { name, offset, source, ack, .. } = ev;
                let item = data.map(|data| Received {
                    event: name,
                    data,
                    offset,
                    source,
                    ack: ack.map(|req| AckHandle { req, tx: self.tx.clone() }),
                });
                Poll::Ready(Some(item))
            }
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }
}
