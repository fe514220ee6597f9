//! The driver task: owns the core `Client`, turns IO and timers into inputs and outputs into IO.
//! No protocol decisions are made here.

use std::collections::HashMap;
use std::time::Duration;

use tidings_core::event::EventPattern;
use tidings_core::{
    AckRequest, Args, Client as Core, ConnId, ConnectError, ConnectionState, EmitId, EmitRequest, Event, FeedStatus,
    Input, Output, RequestId,
};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant as TokioInstant;

use crate::transport::{IoEvent, Net, Ws, WsIo, poll_sockets, spawn_http, spawn_ws_open};
use crate::{AuthProvider, Error, Payload};

/// Where an ack (or a room ack) is delivered.
pub(crate) type Reply = oneshot::Sender<Result<Payload, Error>>;

/// Where the outcome of an emit goes.
pub(crate) enum EmitReply {
    /// No ack asked: whether the core took the emit (sent, or buffered until connected).
    Accepted(oneshot::Sender<Result<EmitId, Error>>),
    /// The server's ack, or why the emit was refused or failed: one wait for the caller.
    Ack(Reply),
}

/// What the handle asks the driver.
pub(crate) enum Command {
    Emit {
        req: EmitRequest,
        reply: EmitReply,
    },
    Ack {
        req: AckRequest,
        args: Args,
    },
    Room {
        namespace: String,
        room: String,
        join: bool,
        done: Option<oneshot::Sender<Result<Payload, Error>>>,
    },
    Subscribe(Subscriber),
    /// Notices about one namespace (and feed notices).
    Listen(String, Lossy<Notice>),
    /// Opens another namespace on the same engine session, reporting its state to `state`.
    OpenNamespace {
        namespace: String,
        state: watch::Sender<ConnectionState>,
    },
    /// Connects a namespace again (the main one also re-activates every namespace opened before).
    Connect(String),
    /// Disconnects one namespace, or every namespace (`None`).
    Disconnect(Option<String>, oneshot::Sender<()>),
    Shutdown(oneshot::Sender<()>),
    Network(Input),
}

/// What a subscription receives.
pub(crate) enum Delivery {
    Event(Event),
    /// This many events were dropped for this subscriber because its buffer was full.
    Lagged(u64),
}

/// An item of a [`Lossy`] channel: it can say how many of its kind a reader missed.
pub(crate) trait Lossable {
    /// Names the reader in the log line written when it starts to fall behind.
    const READER: &'static str;
    /// The item that tells the reader it missed `n` items.
    fn missed(n: u64) -> Self;
}

impl Lossable for Delivery {
    const READER: &'static str = "event subscription";
    fn missed(n: u64) -> Self {
        Delivery::Lagged(n)
    }
}

impl Lossable for Notice {
    const READER: &'static str = "notices";
    fn missed(n: u64) -> Self {
        Notice::Missed(n)
    }
}

/// A bounded sender to a reader that may fall behind: an item that does not fit is dropped and
/// counted, and the reader is told how many it missed before the next item that fits. The driver
/// never waits on a slow reader, and a reader that never reads costs at most its buffer.
pub(crate) struct Lossy<T> {
    tx: mpsc::Sender<T>,
    missed: u64,
}

impl<T: Lossable> Lossy<T> {
    pub(crate) fn new(tx: mpsc::Sender<T>) -> Self {
        Lossy { tx, missed: 0 }
    }

    /// Sends `item`, or counts it as missed when the buffer is full; false when the reader is gone.
    fn offer(&mut self, item: T) -> bool {
        use mpsc::error::TrySendError;
        if self.missed > 0 {
            match self.tx.try_send(T::missed(self.missed)) {
                Ok(()) => self.missed = 0,
                Err(TrySendError::Full(_)) => {
                    self.missed = self.missed.saturating_add(1);
                    return true;
                }
                Err(TrySendError::Closed(_)) => return false,
            }
        }
        match self.tx.try_send(item) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) => {
                self.missed = 1;
                tracing::warn!(
                    reader = T::READER,
                    "a reader is not keeping up; items are dropped for it until it does"
                );
                true
            }
            Err(TrySendError::Closed(_)) => false,
        }
    }

    fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }
}

/// An event subscription: events whose name matches go to `tx` (bounded: a subscriber that
/// does not keep up loses events, and is told how many before its next event).
pub(crate) struct Subscriber {
    pub(crate) namespace: Option<String>,
    pub(crate) pattern: EventPattern,
    pub(crate) tx: Lossy<Delivery>,
}

impl Subscriber {
    /// Delivers `ev`, or counts it as lost when the buffer is full; false when the subscriber is gone.
    fn deliver(&mut self, ev: Event) -> bool {
        self.tx.offer(Delivery::Event(ev))
    }
}

/// A state change or a connect error, for `state_changes()` listeners.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// The namespace's state changed.
    State(ConnectionState),
    /// A connection attempt failed.
    ConnectError(ConnectError),
    /// The REST feed fallback changed state.
    Feed(FeedStatus),
    /// This many notices were dropped because this receiver's buffer was full (it was not read
    /// while the connection changed state many times).
    Missed(u64),
}

/// A WebSocket being opened (by a task) or open (read and written here).
enum Sock {
    Opening(JoinHandle<()>),
    Open(Ws),
}

pub(crate) struct Driver {
    core: Core,
    net: Net,
    start: TokioInstant,
    io_tx: mpsc::Sender<IoEvent>,
    io_rx: mpsc::Receiver<IoEvent>,
    cmds: mpsc::UnboundedReceiver<Command>,
    sockets: HashMap<ConnId, Sock>,
    requests: HashMap<RequestId, JoinHandle<()>>,
    closing: Vec<JoinHandle<()>>,
    subscribers: Vec<Subscriber>,
    acks: HashMap<EmitId, oneshot::Sender<Result<Payload, Error>>>,
    rooms: HashMap<(String, String, bool), Vec<Reply>>,
    states: HashMap<String, watch::Sender<ConnectionState>>,
    notices: Vec<(String, Lossy<Notice>)>,
    auth: Option<AuthProvider>,
    main: String,
}

impl Driver {
    pub(crate) fn new(
        core: Core,
        net: Net,
        cmds: mpsc::UnboundedReceiver<Command>,
        state: watch::Sender<ConnectionState>,
        auth: Option<AuthProvider>,
    ) -> Self {
        let (io_tx, io_rx) = mpsc::channel(256);
        let main = core.main_namespace().to_string();
        Self {
            core,
            net,
            start: TokioInstant::now(),
            io_tx,
            io_rx,
            cmds,
            sockets: HashMap::new(),
            requests: HashMap::new(),
            closing: Vec::new(),
            subscribers: Vec::new(),
            acks: HashMap::new(),
            rooms: HashMap::new(),
            states: HashMap::from([(main.clone(), state)]),
            notices: Vec::new(),
            auth,
            main,
        }
    }

    fn now(&self) -> tidings_core::Instant {
        tidings_core::Instant::from_millis(u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX))
    }

    pub(crate) async fn run(mut self) {
        let span = tracing::info_span!("tidings", url = %self.core.config().url.http_origin(), ns = %self.main);
        let _enter = span.enter();
        let mut done = None;
        let mut stopping: Option<TokioInstant> = None;
        loop {
            let deadline = self.drain();
            if let Some(limit) = stopping
                && (!self.core.is_flushing() || TokioInstant::now() >= limit)
            {
                break;
            }
            let deadline = match stopping {
                // While stopping, wake up at least every 50 ms to check the limit.
                Some(_) => Some(deadline.map_or(self.now().plus_millis(50), |d| d.min(self.now().plus_millis(50)))),
                None => deadline,
            };
            let sleep = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(self.start + Duration::from_millis(d.as_millis())).await,
                    None => std::future::pending::<()>().await,
                }
            };
            let sockets = &mut self.sockets;
            let socket_io = std::future::poll_fn(move |cx| {
                let open = sockets.iter_mut().filter_map(|(c, s)| match s {
                    Sock::Open(ws) => Some((c, ws)),
                    Sock::Opening(_) => None,
                });
                poll_sockets(open, cx)
            });
            // Not biased: an inbound flood must not starve commands, nor a flood of emits reads.
            tokio::select! {
                io = self.io_rx.recv() => {
                    // The driver holds a sender, so the channel never closes.
                    if let Some(io) = io { self.on_io(io); }
                }
                batch = socket_io => {
                    for (conn, io) in batch {
                        self.on_ws(conn, io);
                    }
                }
                cmd = self.cmds.recv(), if stopping.is_none() => match cmd {
                    Some(Command::Shutdown(tx)) => {
                        let now = self.now();
                        self.core.disconnect(now);
                        done = Some(tx);
                        stopping = Some(TokioInstant::now() + Duration::from_secs(2));
                    }
                    Some(c) => self.on_command(c),
                    None => {
                        // Every handle was dropped: disconnect cleanly and stop.
                        let now = self.now();
                        self.core.disconnect(now);
                        stopping = Some(TokioInstant::now() + Duration::from_secs(2));
                    }
                },
                () = sleep => {
                    let now = self.now();
                    self.core.handle_input(now, Input::Timeout);
                }
            }
        }
        // Let the sockets flush their last frames and close frames (bounded), then stop every IO task.
        let closing: Vec<_> = self.closing.drain(..).collect();
        let _ = tokio::time::timeout(Duration::from_secs(2), futures_util::future::join_all(closing)).await;
        for (_, sock) in self.sockets.drain() {
            if let Sock::Opening(task) = sock {
                task.abort();
            }
        }
        for (_, task) in self.requests.drain() {
            // Requests already sent (the polling `1`) get a moment to complete.
            let _ = tokio::time::timeout(Duration::from_millis(500), task).await;
        }
        if let Some(tx) = done {
            let _ = tx.send(());
        }
    }

    fn on_io(&mut self, io: IoEvent) {
        let now = self.now();
        let input = match io {
            IoEvent::WsOpened(conn, stream) => {
                match self.sockets.get_mut(&conn) {
                    Some(entry) => *entry = Sock::Open(Ws::new(stream)),
                    None => return, // closed meanwhile; dropping the stream closes it
                }
                Input::WsOpened(conn)
            }
            IoEvent::WsClosed { conn, code, error } => {
                self.sockets.remove(&conn);
                Input::WsClosed { conn, code, error }
            }
            IoEvent::Http { id, result } => {
                self.requests.remove(&id);
                match result {
                    Ok((status, body)) => Input::HttpResponse { id, status, body },
                    Err(error) => Input::HttpFailed { id, error },
                }
            }
            IoEvent::Auth { request, auth } => {
                let auth = auth.unwrap_or_else(|e| {
                    tracing::warn!(error = %e, "the auth provider failed; connecting without auth");
                    None
                });
                if let Err(e) = self.core.provide_auth(now, request, auth) {
                    tracing::warn!(error = %e, "auth not used");
                }
                return;
            }
        };
        self.core.handle_input(now, input);
    }

    fn on_ws(&mut self, conn: ConnId, io: WsIo) {
        let now = self.now();
        let input = match io {
            WsIo::Text(t) => Input::WsText(conn, t),
            WsIo::Binary(b) => Input::WsBinary(conn, b),
            WsIo::Closed { code, error } => {
                self.sockets.remove(&conn);
                Input::WsClosed { conn, code, error }
            }
        };
        self.core.handle_input(now, input);
    }

    fn on_command(&mut self, c: Command) {
        let now = self.now();
        match c {
            Command::Emit { req, reply } => match (self.core.emit(now, req), reply) {
                (Ok(id), EmitReply::Ack(tx)) => {
                    self.acks.insert(id, tx);
                }
                (Err(e), EmitReply::Ack(tx)) => {
                    let _ = tx.send(Err(Error::Emit(e)));
                }
                (r, EmitReply::Accepted(tx)) => {
                    let _ = tx.send(r.map_err(Error::Emit));
                }
            },
            Command::Ack { req, args } => {
                if let Err(e) = self.core.ack(now, &req, args) {
                    tracing::warn!(error = %e, "ack not sent");
                }
            }
            Command::Room { namespace, room, join, done } => {
                let r =
                    if join { self.core.join(now, &namespace, &room) } else { self.core.leave(now, &namespace, &room) };
                match (r, done) {
                    (Err(e), Some(done)) => {
                        let _ = done.send(Err(Error::InvalidArgument(e.to_string())));
                    }
                    (Ok(()), Some(done)) => self.rooms.entry((namespace, room, join)).or_default().push(done),
                    _ => {}
                }
            }
            Command::Subscribe(s) => self.subscribers.push(s),
            Command::Listen(ns, tx) => self.notices.push((ns, tx)),
            Command::OpenNamespace { namespace, state } => {
                self.states.insert(namespace.clone(), state);
                self.open(now, &namespace);
            }
            Command::Connect(ns) if ns == self.main => self.core.connect(now),
            Command::Connect(ns) => self.open(now, &ns),
            Command::Disconnect(ns, done) => {
                match ns {
                    Some(ns) => {
                        if let Err(e) = self.core.disconnect_namespace(now, &ns) {
                            tracing::debug!(error = %e, "disconnect");
                        }
                    }
                    None => self.core.disconnect(now),
                }
                self.drain();
                let _ = done.send(());
            }
            Command::Network(input) => self.core.handle_input(now, input),
            Command::Shutdown(_) => {}
        }
    }

    /// Opens a namespace other than the main one, with the client's auth mode.
    fn open(&mut self, now: tidings_core::Instant, namespace: &str) {
        let auth = self.core.config().auth.clone();
        if let Err(e) = self.core.open_namespace(now, namespace, auth) {
            tracing::warn!(namespace, error = %e, "namespace not opened");
        }
    }

    /// Sends `n` to the listeners of `namespace` (`None`: every listener).
    fn notify(&mut self, namespace: Option<&str>, n: Notice) {
        self.notices.retain_mut(|(ns, tx)| namespace.is_some_and(|n| n != ns) || tx.offer(n.clone()));
    }

    /// Performs every output; returns the next deadline.
    fn drain(&mut self) -> Option<tidings_core::Instant> {
        loop {
            match self.core.poll_output() {
                Output::Wait(deadline) => return deadline,
                Output::OpenWebSocket { conn, url } => {
                    tracing::debug!(conn = conn.get(), "opening websocket");
                    let task = spawn_ws_open(&self.net, conn, url, self.io_tx.clone());
                    self.sockets.insert(conn, Sock::Opening(task));
                }
                Output::SendWebSocket { conn, frame } => {
                    if let Some(Sock::Open(ws)) = self.sockets.get_mut(&conn) {
                        ws.send(frame);
                    }
                }
                Output::CloseWebSocket(conn) => match self.sockets.remove(&conn) {
                    Some(Sock::Opening(task)) => task.abort(),
                    // What is queued, then a close frame, on a task of its own.
                    Some(Sock::Open(ws)) => {
                        self.closing.retain(|t| !t.is_finished());
                        self.closing.push(ws.close());
                    }
                    None => {}
                },
                Output::Http(req) => {
                    tracing::trace!(?req, "http request");
                    let id = req.id;
                    let task = spawn_http(&self.net, req, self.io_tx.clone());
                    self.requests.insert(id, task);
                }
                Output::AbortHttp(id) => {
                    if let Some(task) = self.requests.remove(&id) {
                        task.abort();
                    }
                }
                Output::NeedAuth { namespace, request } => self.fetch_auth(namespace, request),
                Output::Event(ev) => self.dispatch(ev),
                Output::Settled { emit, result } => {
                    if let Some(tx) = self.acks.remove(&emit) {
                        let _ = tx.send(result.map(Payload).map_err(Error::Emit));
                    } else if let Err(e) = result {
                        tracing::warn!(emit = emit.get(), error = %e, "emit failed");
                    }
                }
                Output::Room { namespace, room, join, result } => {
                    match &result {
                        Ok(_) => tracing::debug!(%room, join, "room acknowledged"),
                        Err(e) => tracing::warn!(%room, join, error = %e, "room request failed"),
                    }
                    if let Some(waiters) = self.rooms.remove(&(namespace, room, join)) {
                        for w in waiters {
                            let _ = w.send(result.clone().map(Payload).map_err(Error::Emit));
                        }
                    }
                }
                Output::State { namespace, state } => {
                    tracing::info!(namespace = %namespace, ?state, "state");
                    if let Some(tx) = self.states.get(&namespace) {
                        tx.send_replace(state.clone());
                    }
                    self.notify(Some(&namespace), Notice::State(state));
                }
                Output::ConnectError { namespace, error } => {
                    tracing::warn!(namespace = %namespace, message = %error.message, "connect error");
                    self.notify(Some(&namespace), Notice::ConnectError(error));
                }
                Output::Feed(status) => {
                    tracing::info!(?status, "feed fallback");
                    self.notify(None, Notice::Feed(status));
                }
            }
        }
    }

    fn fetch_auth(&mut self, namespace: String, request: tidings_core::AuthRequestId) {
        let Some(provider) = self.auth.clone() else {
            let now = self.now();
            let _ = self.core.provide_auth(now, request, None);
            return;
        };
        let tx = self.io_tx.clone();
        tokio::spawn(async move {
            let auth = provider(namespace).await.map(|v| Some(v.to_string()));
            let _ = tx.send(IoEvent::Auth { request, auth }).await;
        });
    }

    fn dispatch(&mut self, ev: Event) {
        self.subscribers.retain(|s| !s.tx.is_closed());
        let matching: Vec<usize> = self
            .subscribers
            .iter()
            .enumerate()
            .filter(|(_, s)| s.namespace.as_deref().is_none_or(|n| n == ev.namespace) && s.pattern.matches(&ev.name))
            .map(|(i, _)| i)
            .collect();
        let Some((&last, rest)) = matching.split_last() else {
            tracing::trace!(event = %ev.name, "no subscriber");
            return;
        };
        for &i in rest {
            if let Some(s) = self.subscribers.get_mut(i) {
                s.deliver(ev.clone());
            }
        }
        if let Some(s) = self.subscribers.get_mut(last) {
            s.deliver(ev);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A test item: a number, or the count of missed numbers.
    #[derive(Debug, PartialEq)]
    enum Item {
        N(u32),
        Missed(u64),
    }

    impl Lossable for Item {
        const READER: &'static str = "test";
        fn missed(n: u64) -> Self {
            Item::Missed(n)
        }
    }

    #[test]
    fn lossy_sender_counts_what_did_not_fit_and_says_so_before_the_next_item() {
        let (tx, mut rx) = mpsc::channel(2);
        let mut lossy = Lossy::new(tx);
        for i in 1..=5 {
            assert!(lossy.offer(Item::N(i)));
        }
        assert_eq!((rx.try_recv(), rx.try_recv()), (Ok(Item::N(1)), Ok(Item::N(2))));
        assert!(rx.try_recv().is_err(), "3, 4 and 5 did not fit");
        assert!(lossy.offer(Item::N(6)));
        assert_eq!((rx.try_recv(), rx.try_recv()), (Ok(Item::Missed(3)), Ok(Item::N(6))));
        for i in 7..=9 {
            assert!(lossy.offer(Item::N(i)));
        }
        assert_eq!(rx.try_recv(), Ok(Item::N(7)));
        // One slot free: the count of 9 fits, 10 does not and is counted next.
        assert!(lossy.offer(Item::N(10)));
        assert_eq!((rx.try_recv(), rx.try_recv()), (Ok(Item::N(8)), Ok(Item::Missed(1))));
        assert!(lossy.offer(Item::N(11)));
        assert_eq!((rx.try_recv(), rx.try_recv()), (Ok(Item::Missed(1)), Ok(Item::N(11))));
        assert!(rx.try_recv().is_err());
        drop(rx);
        assert!(!lossy.offer(Item::N(8)), "a gone reader is reported");
    }
}
