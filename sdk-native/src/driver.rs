//! The driver task: owns the core `Client`, turns IO and timers into inputs and outputs into IO.
//! No protocol decisions are made here.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tidings_core::event::EventPattern;
use tidings_core::{
    AckRequest, Args, Client as Core, ConnId, ConnectError, ConnectionState, EmitId, EmitRequest, Event, EventSource,
    FeedStatus, Input, Output, RequestId, RequestPurpose, RoomRequestId,
};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant as TokioInstant;

use crate::delivery::{Budget, Charge, Queued, Shared, Sink, event_cost, notice_cost};
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
    Listen(String, mpsc::UnboundedSender<(Notice, Charge)>),
    /// Opens another namespace on the same engine session, reporting its state to `state`.
    OpenNamespace {
        namespace: String,
        state: watch::Sender<ConnectionState>,
    },
    /// Connects a namespace again (the main one also re-activates every namespace opened before).
    Connect(String),
    /// Disconnects one namespace, or every namespace (`None`).
    Disconnect(String, oneshot::Sender<()>),
    /// Where the main namespace stands (`Client::cursor`).
    Cursor(oneshot::Sender<Option<String>>),
    /// A page of the feed's history.
    History {
        since: Option<String>,
        limit: u32,
        reply: oneshot::Sender<Result<tidings_core::HistoryPage, Error>>,
    },
    Shutdown(oneshot::Sender<()>),
    Network(Input),
}

/// An event subscription: events whose name matches go to `sink`.
pub(crate) struct Subscriber {
    pub(crate) namespace: Option<String>,
    pub(crate) pattern: EventPattern,
    pub(crate) sink: Sink,
}

/// What waits for the consumers' budget, in the order the core produced it.
enum Pending {
    Event(Event),
    /// An event the validator refused, with its problems: reported as [`Notice::Invalid`] to its
    /// namespace's listeners, then recorded as delivered like any other.
    Invalid(Event, Vec<String>),
    /// A notice for the listeners of a namespace (`None`: every listener).
    Notice(Option<String>, Notice),
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
    /// The client closed its connection because of this (a `Disconnected` state with reason
    /// `ParseError` or `TransportError` follows; the client reconnects as usual).
    Fault(tidings_core::Fault),
    /// A server event that [`ClientBuilder::validate`](crate::ClientBuilder::validate) refused:
    /// no subscription got it. It still counts as received (the cursor moves past it).
    Invalid(InvalidEvent),
}

/// A server event refused by the client's validator, with what the validator found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidEvent {
    /// The namespace it came to.
    pub namespace: String,
    /// The event's name.
    pub event: String,
    /// The arguments as the server sent them (with recovery on, the offset last).
    pub args: Payload,
    /// The recovery offset, when the event carried one.
    pub offset: Option<String>,
    /// Socket or feed.
    pub source: EventSource,
    /// What the validator returned.
    pub problems: Vec<String>,
}

/// Checks a server event before any subscription sees it (see
/// [`ClientBuilder::validate`](crate::ClientBuilder::validate)).
pub(crate) type Validator = Arc<dyn Fn(&Event) -> Result<(), Vec<String>> + Send + Sync>;

/// A notice listener: its namespace and its queue.
type NoticeReader = (String, mpsc::UnboundedSender<(Notice, Charge)>);

/// What ended one wait of the driver task.
enum Turn {
    Io(IoEvent),
    Sockets(Vec<(ConnId, WsIo)>),
    Budget,
    Command(Option<Command>),
    Timer,
}

/// Performs an emit on the caller's thread instead of the driver task's, when the driver is
/// idle: the core takes it and its frame is written at once. Handing it to the task costs the
/// round trip a thread wake-up whenever the caller runs outside the runtime's workers (the main
/// future of `#[tokio::main]`: docs/BENCHMARKS.md, "Round trip"). The core still decides and
/// the same driver code performs, under the same lock, so nothing else changes: a write the
/// socket cannot take yet, a failure, or anything else that needs the task (events or notices
/// to deliver, an earlier deadline) wakes it. Gives the command back, to be sent to the task,
/// when the driver is busy, stopping or gone, or commands are queued before this one (they go
/// first).
pub(crate) fn perform_now(driver: &DriverRef, cmd: Command) -> Option<Command> {
    let Some(shared) = driver.upgrade() else { return Some(cmd) };
    let Ok(mut d) = shared.try_lock() else { return Some(cmd) };
    let Some(waker) = d.waker.clone() else { return Some(cmd) };
    if d.stopping || !d.cmds.is_empty() {
        return Some(cmd);
    }
    let (span, rt) = (d.span.clone(), d.rt.clone());
    let _span = span.enter();
    let _rt = rt.enter();
    d.on_command(cmd);
    let deadline = d.drain();
    // Consumers behind: the task writes nothing either (it polls no socket then, see `run`).
    let mut wake = !d.backlog.is_empty() || !d.deferred.is_empty();
    if !wake {
        let mut cx = Context::from_waker(&waker);
        for sock in d.sockets.values_mut() {
            if let Sock::Open(ws) = sock {
                wake |= ws.poll_write(&mut cx);
            }
        }
    }
    let start = d.start;
    wake |= deadline
        .map(|x| start + Duration::from_millis(x.as_millis()))
        .is_some_and(|at| d.armed.is_none_or(|armed| at < armed));
    drop(d);
    if wake {
        waker.wake();
    }
    None
}

/// A WebSocket being opened (by a task) or open (read and written here).
enum Sock {
    Opening(JoinHandle<()>),
    Open(Ws),
}

/// The driver's state, shared by its task and, for an emit, by the caller (see [`perform_now`]).
pub(crate) type SharedDriver = Arc<Mutex<Driver>>;

/// What the handles keep of the driver: gone once its task ended.
pub(crate) type DriverRef = Weak<Mutex<Driver>>;

fn lock(d: &Mutex<Driver>) -> MutexGuard<'_, Driver> {
    // A panic while the state was held is the driver's bug; its state is still the best there is.
    d.lock().unwrap_or_else(PoisonError::into_inner)
}

pub(crate) struct Driver {
    core: Core,
    net: Net,
    start: TokioInstant,
    io_tx: mpsc::Sender<IoEvent>,
    cmds: mpsc::UnboundedReceiver<Command>,
    /// The driver task's waker, from its last wait (`None` until it first waits).
    waker: Option<Waker>,
    /// When the driver's timer fires, if it is armed. It is moved earlier at once and later only
    /// after it fired (a core woken early finds nothing due and says when to come back), so an
    /// emit's ack deadline rarely needs the driver task.
    armed: Option<TokioInstant>,
    /// Set once the driver is stopping: every command then goes through its task.
    stopping: bool,
    /// The runtime the driver runs on: IO tasks spawned by an emit performed by the caller go
    /// there too.
    rt: tokio::runtime::Handle,
    span: tracing::Span,
    sockets: HashMap<ConnId, Sock>,
    requests: HashMap<RequestId, JoinHandle<()>>,
    closing: Vec<JoinHandle<()>>,
    subscribers: Vec<Subscriber>,
    acks: HashMap<EmitId, oneshot::Sender<Result<Payload, Error>>>,
    /// Room requests waiting for their answer.
    rooms: HashMap<RoomRequestId, Reply>,
    states: HashMap<String, watch::Sender<ConnectionState>>,
    notices: Vec<NoticeReader>,
    auth: Option<AuthProvider>,
    validator: Option<Validator>,
    main: String,
    /// The consumers' byte budget (the receive buffer).
    budget: Budget,
    /// Events and notices the core produced that wait for budget. While it is not empty the
    /// driver reads no transport: that is the backpressure.
    backlog: VecDeque<Pending>,
    /// The cost the head of the backlog waits for.
    blocked: Option<usize>,
    /// Receiving requests (polling GETs, feed GETs) held back while the backlog is not empty.
    deferred: Vec<tidings_core::HttpRequest>,
}

impl Driver {
    pub(crate) fn new(
        core: Core,
        net: Net,
        cmds: mpsc::UnboundedReceiver<Command>,
        state: watch::Sender<ConnectionState>,
        auth: Option<AuthProvider>,
        validator: Option<Validator>,
        receive_buffer: usize,
    ) -> (SharedDriver, mpsc::Receiver<IoEvent>) {
        let (io_tx, io_rx) = mpsc::channel(256);
        let main = core.main_namespace().to_string();
        let span = tracing::info_span!("tidings", url = %core.config().url.http_origin(), ns = %main);
        let driver = Self {
            core,
            net,
            start: TokioInstant::now(),
            io_tx,
            cmds,
            waker: None,
            armed: None,
            stopping: false,
            rt: tokio::runtime::Handle::current(),
            span,
            sockets: HashMap::new(),
            requests: HashMap::new(),
            closing: Vec::new(),
            subscribers: Vec::new(),
            acks: HashMap::new(),
            rooms: HashMap::new(),
            states: HashMap::from([(main.clone(), state)]),
            notices: Vec::new(),
            auth,
            validator,
            main,
            budget: Budget::new(receive_buffer),
            backlog: VecDeque::new(),
            blocked: None,
            deferred: Vec::new(),
        };
        (Arc::new(Mutex::new(driver)), io_rx)
    }

    fn now(&self) -> tidings_core::Instant {
        tidings_core::Instant::from_millis(u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX))
    }

    /// The driver task. The state is locked for each step and never across a wait, so an emit
    /// can be performed by its caller while the task waits (see [`perform_now`]).
    pub(crate) async fn run(shared: SharedDriver, mut io_rx: mpsc::Receiver<IoEvent>) {
        let (span, start, budget) = {
            let d = lock(&shared);
            (d.span.clone(), d.start, d.budget.clone())
        };
        let _enter = span.enter();
        let mut done = None;
        let mut stopping: Option<TokioInstant> = None;
        // One timer for the whole life of the driver, moved when the core's deadline comes
        // earlier (see `Driver::armed`): a fresh `sleep` per loop turn would register and cancel
        // a timer for every frame batch.
        let timer = tokio::time::sleep_until(start);
        tokio::pin!(timer);
        // Which branch is tried first, rotated every wait: an inbound flood must not starve
        // commands, nor a flood of emits reads.
        let mut first = 0usize;
        loop {
            let (reading, wanted) = {
                let mut d = lock(&shared);
                let deadline = d.drain();
                if let Some(limit) = stopping
                    && (!d.core.is_flushing() || TokioInstant::now() >= limit)
                {
                    break;
                }
                let deadline = match stopping {
                    // While stopping, wake up at least every 50 ms to check the limit.
                    Some(_) => Some(deadline.map_or(d.now().plus_millis(50), |x| x.min(d.now().plus_millis(50)))),
                    None => deadline,
                };
                if let Some(x) = deadline {
                    let at = start + Duration::from_millis(x.as_millis());
                    if d.armed.is_none_or(|armed| at < armed) {
                        timer.as_mut().reset(at);
                        d.armed = Some(at);
                    }
                }
                // Backpressure: while consumers are behind, no transport is read (the HTTP
                // requests that receive are deferred in `drain`); commands and timers go on.
                (d.backlog.is_empty(), d.blocked)
            };
            let budget_ready = budget.wait_for(wanted.unwrap_or(0));
            tokio::pin!(budget_ready);
            first = (first + 1) % 5;
            // What ended the wait is handled under the same lock: a command taken from the
            // channel is performed before any emit a caller performs itself (see `perform_now`),
            // so one caller's commands keep their order.
            std::future::poll_fn(|cx| {
                let mut d = lock(&shared);
                if !d.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                    d.waker = Some(cx.waker().clone());
                }
                let d = &mut *d;
                for branch in (0..5).map(|i| (first + i) % 5) {
                    let ready = match branch {
                        // The driver holds a sender, so the channel never closes.
                        0 => io_rx.poll_recv(cx).map(|io| io.map(Turn::Io)),
                        1 if reading => {
                            let open = d.sockets.iter_mut().filter_map(|(c, s)| match s {
                                Sock::Open(ws) => Some((c, ws)),
                                Sock::Opening(_) => None,
                            });
                            poll_sockets(open, cx).map(|batch| Some(Turn::Sockets(batch)))
                        }
                        2 if wanted.is_some() => budget_ready.as_mut().poll(cx).map(|()| Some(Turn::Budget)),
                        3 if stopping.is_none() => d.cmds.poll_recv(cx).map(|c| Some(Turn::Command(c))),
                        4 if d.armed.is_some() => timer.as_mut().poll(cx).map(|()| Some(Turn::Timer)),
                        _ => Poll::Pending,
                    };
                    if let Poll::Ready(Some(turn)) = ready {
                        d.on_turn(turn, &mut done, &mut stopping);
                        return Poll::Ready(());
                    }
                }
                Poll::Pending
            })
            .await;
        }
        let (closing, sockets, requests) = {
            let mut d = lock(&shared);
            d.stopping = true;
            let closing: Vec<_> = d.closing.drain(..).collect();
            let sockets: Vec<_> = d.sockets.drain().map(|(_, s)| s).collect();
            let requests: Vec<_> = d.requests.drain().map(|(_, t)| t).collect();
            (closing, sockets, requests)
        };
        // Let the sockets flush their last frames and close frames (bounded), then stop every IO task.
        let _ = tokio::time::timeout(Duration::from_secs(2), futures_util::future::join_all(closing)).await;
        for sock in sockets {
            if let Sock::Opening(task) = sock {
                task.abort();
            }
        }
        for task in requests {
            // Requests already sent (the polling `1`) get a moment to complete.
            let _ = tokio::time::timeout(Duration::from_millis(500), task).await;
        }
        if let Some(tx) = done {
            let _ = tx.send(());
        }
    }

    fn on_turn(&mut self, turn: Turn, done: &mut Option<oneshot::Sender<()>>, stopping: &mut Option<TokioInstant>) {
        match turn {
            Turn::Io(io) => self.on_io(io),
            Turn::Sockets(batch) => {
                // A whole batch (at most 64 frames, already read) goes to the core; what it
                // decodes waits in the backlog if the budget is spent.
                for (conn, io) in batch {
                    self.on_ws(conn, io);
                }
            }
            // Consumers took enough: `drain` delivers the backlog's head now.
            Turn::Budget => self.blocked = None,
            Turn::Command(Some(Command::Shutdown(tx))) => {
                let now = self.now();
                self.core.disconnect(now);
                self.stopping = true;
                *done = Some(tx);
                *stopping = Some(TokioInstant::now() + Duration::from_secs(2));
            }
            Turn::Command(Some(c)) => self.on_command(c),
            Turn::Command(None) => {
                // Every handle was dropped: disconnect cleanly and stop.
                let now = self.now();
                self.core.disconnect(now);
                self.stopping = true;
                *stopping = Some(TokioInstant::now() + Duration::from_secs(2));
            }
            Turn::Timer => {
                self.armed = None;
                let now = self.now();
                self.core.handle_input(now, Input::Timeout);
            }
        }
    }

    fn on_io(&mut self, io: IoEvent) {
        let now = self.now();
        let input = match io {
            IoEvent::WsOpened(conn, stream) => {
                match self.sockets.get_mut(&conn) {
                    // The outgoing queue is bounded like the send buffer (4 MiB by default).
                    Some(entry) => *entry = Sock::Open(Ws::new(stream, self.core.config().send_buffer.max_bytes)),
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
                // What a failure means (retry after the backoff, never connect without auth) is
                // the core's decision; a value that is not a JSON object is one too.
                let r = match auth {
                    Ok(auth) => self.core.provide_auth(now, request, auth),
                    Err(e) => {
                        tracing::warn!(error = %e, "the auth provider failed");
                        self.core.auth_failed(now, request, &e)
                    }
                };
                if let Err(e) = r {
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
                // What was never handed to the socket was never sent: the core sends the emits
                // among it again on the next connection.
                if let Some(Sock::Open(mut ws)) = self.sockets.remove(&conn) {
                    let frames = ws.take_unsent();
                    if !frames.is_empty() {
                        tracing::debug!(conn = conn.get(), frames = frames.len(), "frames never written");
                        self.core.handle_input(now, Input::WsUnsent { conn, frames });
                    }
                }
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
                    let _ = tx.send(Err(e.into()));
                }
                (r, EmitReply::Accepted(tx)) => {
                    let _ = tx.send(r.map_err(Error::from));
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
                        let _ = done.send(Err(Error::InvalidArgument(crate::error::ArgumentError::Command(e))));
                    }
                    (Ok(id), Some(done)) => {
                        self.rooms.insert(id, done);
                    }
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
                if let Err(e) = self.core.disconnect_namespace(now, &ns) {
                    tracing::debug!(error = %e, "disconnect");
                }
                self.drain();
                let _ = done.send(());
            }
            Command::Network(input) => self.core.handle_input(now, input),
            Command::Cursor(reply) => {
                let _ = reply.send(self.core.cursor().map(str::to_string));
            }
            Command::History { since, limit, reply } => match self.core.history_request(since.as_deref(), limit) {
                None => {
                    let _ = reply.send(Err(Error::Feed("no feed is configured (ClientBuilder::feed)".into())));
                }
                // Not the connection's business: its own task, answered to the caller.
                Some(req) => {
                    let http = self.net.http.clone();
                    tokio::spawn(async move {
                        let page = match crate::transport::perform(http, req).await {
                            Ok((status, body)) => tidings_core::history_page(status, &body, limit).map_err(Error::Feed),
                            Err(e) => Err(Error::Feed(e.to_string())),
                        };
                        let _ = reply.send(page);
                    });
                }
            },
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

    /// Performs every output and delivers what the budget allows; returns the next deadline.
    fn drain(&mut self) -> Option<tidings_core::Instant> {
        loop {
            let deadline = self.drain_outputs();
            self.pump();
            if !self.backlog.is_empty() || self.deferred.is_empty() {
                return deadline;
            }
            // Consumers caught up: ask for more, then perform what that produces.
            for req in std::mem::take(&mut self.deferred) {
                self.spawn_request(req);
            }
        }
    }

    fn spawn_request(&mut self, req: tidings_core::HttpRequest) {
        tracing::trace!(?req, "http request");
        let id = req.id;
        let task = spawn_http(&self.net, req, self.io_tx.clone());
        self.requests.insert(id, task);
    }

    fn drain_outputs(&mut self) -> Option<tidings_core::Instant> {
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
                    let receives = matches!(req.purpose, RequestPurpose::PollReceive | RequestPurpose::FeedPoll);
                    if receives && !self.backlog.is_empty() {
                        self.deferred.push(req);
                    } else {
                        self.spawn_request(req);
                    }
                }
                Output::AbortHttp(id) => {
                    if let Some(task) = self.requests.remove(&id) {
                        task.abort();
                    }
                }
                Output::NeedAuth { namespace, request } => self.fetch_auth(namespace, request),
                Output::Event(ev) => {
                    let checked = self.validator.as_ref().map_or(Ok(()), |v| v(&ev));
                    self.backlog.push_back(match checked {
                        Ok(()) => Pending::Event(ev),
                        Err(problems) => {
                            tracing::warn!(event = %ev.name, ?problems, "an event failed validation; no subscription gets it");
                            Pending::Invalid(ev, problems)
                        }
                    });
                }
                Output::Settled { emit, result } => {
                    if let Some(tx) = self.acks.remove(&emit) {
                        let _ = tx.send(result.map(Payload).map_err(Error::Emit));
                    } else if let Err(e) = result {
                        tracing::warn!(emit = emit.get(), error = %e, "emit failed");
                    }
                }
                Output::Room { request, room, join, result, .. } => {
                    match &result {
                        Ok(_) => tracing::debug!(%room, join, "room acknowledged"),
                        Err(e) => tracing::warn!(%room, join, error = %e, "room request failed"),
                    }
                    if let Some(w) = request.and_then(|id| self.rooms.remove(&id)) {
                        let _ = w.send(result.map(Payload).map_err(Error::Emit));
                    }
                }
                Output::State { namespace, state } => {
                    tracing::info!(namespace = %namespace, ?state, "state");
                    if let Some(tx) = self.states.get(&namespace) {
                        tx.send_replace(state.clone());
                    }
                    self.backlog.push_back(Pending::Notice(Some(namespace), Notice::State(state)));
                }
                Output::ConnectError { namespace, error } => {
                    tracing::warn!(namespace = %namespace, message = %error.message, "connect error");
                    self.backlog.push_back(Pending::Notice(Some(namespace), Notice::ConnectError(error)));
                }
                Output::Fault(fault) => {
                    tracing::warn!(%fault, "closing the connection");
                    self.backlog.push_back(Pending::Notice(None, Notice::Fault(fault)));
                }
                Output::Feed(status) => {
                    tracing::info!(?status, "feed fallback");
                    self.backlog.push_back(Pending::Notice(None, Notice::Feed(status)));
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

    /// Hands the backlog to consumers, oldest first, while the budget allows; then reports the
    /// events delivered to the core (every matching subscription has them).
    fn pump(&mut self) {
        let mut last = None;
        self.blocked = None;
        while let Some(head) = self.backlog.front() {
            let cost = match head {
                Pending::Event(ev) => {
                    let lossless = self.subscribers.iter().filter(|s| s.sink.is_lossless() && s.wants(ev)).count();
                    (lossless > 0).then(|| event_cost(ev, lossless))
                }
                Pending::Notice(ns, _) => notice_readers(&mut self.notices, ns.as_deref()),
                Pending::Invalid(ev, _) => notice_readers(&mut self.notices, Some(&ev.namespace)),
            };
            let charged = match cost.map(|c| self.budget.try_take(c).ok_or(c)).transpose() {
                Ok(p) => p,
                Err(cost) => {
                    self.blocked = Some(cost);
                    break;
                }
            };
            match self.backlog.pop_front() {
                Some(Pending::Event(ev)) => last = Some(self.dispatch(ev, charged)),
                Some(Pending::Notice(ns, n)) => self.notify(ns.as_deref(), n, charged),
                Some(Pending::Invalid(ev, problems)) => {
                    last = Some(ev.delivery);
                    let invalid = InvalidEvent {
                        args: Payload(ev.wire_args()),
                        namespace: ev.namespace,
                        event: ev.name,
                        offset: ev.offset,
                        source: ev.source,
                        problems,
                    };
                    let ns = invalid.namespace.clone();
                    self.notify(Some(&ns), Notice::Invalid(invalid), charged);
                }
                None => {}
            }
        }
        for s in &mut self.subscribers {
            s.sink.flush(&self.budget);
        }
        if let Some(id) = last {
            let now = self.now();
            self.core.delivered(now, id);
        }
        self.subscribers.retain(|s| !s.sink.is_closed());
    }

    /// Puts `ev` in the queue of every subscription that wants it (handed over at the flush);
    /// `charged`: the bytes it took from the budget.
    fn dispatch(&mut self, ev: Event, charged: Option<usize>) -> tidings_core::DeliveryId {
        let id = ev.delivery;
        let (mut lossless, mut lossy) = (0usize, 0usize);
        for s in self.subscribers.iter().filter(|s| s.wants(&ev)) {
            if s.sink.is_lossless() { lossless += 1 } else { lossy += 1 }
        }
        if lossless + lossy == 0 {
            tracing::trace!(event = %ev.name, "no subscriber");
            return id;
        }
        let charged = charged.unwrap_or(0);
        if lossless + lossy == 1 {
            // One reader (the usual case): the event itself, no shared pointer.
            if let Some(s) = self.subscribers.iter_mut().find(|s| s.wants(&ev)) {
                s.sink.send(Queued::Owned(ev, charged));
            }
            return id;
        }
        // Lossy subscriptions hold a copy outside the budget, so they can never stall it.
        let lossy_copy = (lossy > 0 && lossless > 0).then(|| Shared::new(ev.clone(), None));
        let shared = Shared::new(ev, (charged > 0).then(|| Charge::new(&self.budget, charged)));
        let for_lossy = lossy_copy.unwrap_or_else(|| Arc::clone(&shared));
        for s in self.subscribers.iter_mut().filter(|s| s.wants(&shared.ev)) {
            let q = if s.sink.is_lossless() { Arc::clone(&shared) } else { Arc::clone(&for_lossy) };
            s.sink.send(Queued::Shared(q));
        }
        id
    }

    /// Sends `n` to the listeners of `namespace` (`None`: every listener), each with its share
    /// of the `charged` bytes.
    fn notify(&mut self, namespace: Option<&str>, n: Notice, charged: Option<usize>) {
        let Some(charged) = charged else { return };
        let mut charge = Charge::new(&self.budget, charged);
        let readers = self.notices.iter().filter(|(ns, _)| namespace.is_none_or(|n| n == ns));
        for (_, tx) in readers {
            // Each reader's share: a part of the charge, the rest for the last.
            let share = charge.split(notice_cost(1));
            let _ = tx.send((n.clone(), share));
        }
    }
}

/// What a notice for the listeners of `namespace` (`None`: every listener) costs, if anybody
/// listens (closed listeners are dropped first).
fn notice_readers(notices: &mut Vec<NoticeReader>, namespace: Option<&str>) -> Option<usize> {
    notices.retain(|(_, tx)| !tx.is_closed());
    let readers = notices.iter().filter(|(n, _)| namespace.is_none_or(|ns| ns == n)).count();
    (readers > 0).then(|| notice_cost(readers))
}

impl Subscriber {
    fn wants(&self, ev: &Event) -> bool {
        self.namespace.as_deref().is_none_or(|n| n == ev.namespace) && self.pattern.matches(&ev.name)
    }
}
