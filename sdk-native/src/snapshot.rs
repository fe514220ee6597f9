//! Subscribe with a snapshot: send a subscribe emit, get the subscription's initial state (the
//! ack's payload, or an `<topic>:initial` event), then its live events, in that order; and send
//! the subscription again after a reconnect that did not recover the session (the server forgot
//! it), which brings a new snapshot. The dashboards' pattern (`subscribe:dashboard`, then
//! `dashboard:initial`, then `dashboard:update`s to the room it joined).

use std::time::Duration;

use futures_util::StreamExt;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::sync::mpsc;

use crate::{ConnectionState, Error, Notice, Payload, Received, Tidings};

/// Where the snapshot comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnapshotSource {
    /// The server answers the subscribe emit's ack with it.
    Ack,
    /// The server emits it as this event after the subscribe (e.g. `dashboard:initial`).
    Event(String),
}

/// What to subscribe to ([`Tidings::subscribe_with_snapshot`]).
#[derive(Debug, Clone)]
pub struct SnapshotRequest {
    subscribe: String,
    args: Option<Value>,
    source: SnapshotSource,
    live: String,
    timeout: Duration,
}

impl SnapshotRequest {
    /// Emits `subscribe` (e.g. `subscribe:dashboard`); the live events are those matching `live`
    /// (an event name or a pattern, e.g. `dashboard:update` or `dashboard:*`); the snapshot is the
    /// event `<topic>:initial` where `subscribe` is `subscribe:<topic>` (else the ack; change it
    /// with [`SnapshotRequest::snapshot_event`] or [`SnapshotRequest::snapshot_in_ack`]).
    pub fn new(subscribe: impl Into<String>, live: impl Into<String>) -> Self {
        let subscribe = subscribe.into();
        let source = match subscribe.strip_prefix("subscribe:") {
            Some(topic) => SnapshotSource::Event(format!("{topic}:initial")),
            None => SnapshotSource::Ack,
        };
        SnapshotRequest { subscribe, args: None, source, live: live.into(), timeout: Duration::from_secs(10) }
    }

    /// The subscribe emit's argument (none by default).
    pub fn args(mut self, args: Value) -> Self {
        self.args = Some(args);
        self
    }

    /// The snapshot is this event.
    pub fn snapshot_event(mut self, event: impl Into<String>) -> Self {
        self.source = SnapshotSource::Event(event.into());
        self
    }

    /// The snapshot is the subscribe emit's ack.
    pub fn snapshot_in_ack(mut self) -> Self {
        self.source = SnapshotSource::Ack;
        self
    }

    /// How long a snapshot may take (default 10 s): past it the stream yields
    /// [`Error::Timeout`], and the live events that waited for the snapshot follow.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

/// One item of a [`SnapshotStream`].
#[derive(Debug)]
pub enum Snapshotted<S, T> {
    /// The subscription's state: the first item, and again after each reconnect that did not
    /// recover (replace what you have).
    Snapshot(S),
    /// A live event of the subscription, after the snapshot it follows.
    Live(Received<T>),
}

/// The snapshot, then the live events ([`Tidings::subscribe_with_snapshot`]). Dropping it stops
/// the subscription on this side (the server keeps the room until the connection ends).
#[derive(Debug)]
pub struct SnapshotStream<S, T> {
    rx: mpsc::Receiver<Result<Snapshotted<S, T>, Error>>,
    task: tokio::task::JoinHandle<()>,
}

impl<S, T> futures_util::Stream for SnapshotStream<S, T> {
    type Item = Result<Snapshotted<S, T>, Error>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx)
    }
}

impl<S, T> Drop for SnapshotStream<S, T> {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The most live events that wait for a snapshot; past it the subscription fails
/// (`Error::Lagged` with the count) rather than grow without bound.
const WAITING_MAX: usize = 10_000;

enum Phase<T> {
    /// A subscribe is out; live events wait here for its snapshot, until `deadline`.
    Waiting { live: Vec<Received<T>>, deadline: tokio::time::Instant },
    /// The snapshot went out: live events go through.
    Live,
}

impl Tidings {
    /// Sends `request`'s subscribe emit, then yields the snapshot, then the subscription's live
    /// events. Live events that arrive before the snapshot (the server joined the room, then
    /// loaded the data) wait for it. After a reconnect that did not recover the session, the
    /// subscribe is sent again and a new snapshot comes first; after one that recovered, the
    /// server still has the subscription and nothing is sent.
    ///
    /// ```no_run
    /// # async fn run(client: tidings::Tidings) -> Result<(), tidings::Error> {
    /// use futures_util::StreamExt;
    /// use tidings::{SnapshotRequest, Snapshotted};
    /// let request = SnapshotRequest::new("subscribe:dashboard", "dashboard:update");
    /// let mut dashboard = client.subscribe_with_snapshot::<serde_json::Value, serde_json::Value>(request);
    /// while let Some(item) = dashboard.next().await {
    ///     match item? {
    ///         Snapshotted::Snapshot(state) => println!("state: {state}"),
    ///         Snapshotted::Live(update) => println!("update: {}", update.data),
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub fn subscribe_with_snapshot<S, T>(&self, request: SnapshotRequest) -> SnapshotStream<S, T>
    where
        S: DeserializeOwned + Send + 'static,
        T: DeserializeOwned + Send + 'static,
    {
        // Subscribed before anything is sent, so nothing is missed.
        let mut live = self.on::<T>(&request.live);
        let mut snapshots = match &request.source {
            SnapshotSource::Event(e) => Some(self.on::<S>(e)),
            SnapshotSource::Ack => None,
        };
        let mut notices = self.notices();
        let (tx, rx) = mpsc::channel(64);
        let client = self.clone();
        let task = tokio::spawn(async move {
            let (acks_tx, mut acks) = mpsc::channel::<Result<Payload, Error>>(4);
            // The session the subscription was last sent in.
            let mut sent_in: Option<String> = None;
            let mut phase: Phase<T> = Phase::Live;
            let subscribe = |sid: String, sent_in: &mut Option<String>, phase: &mut Phase<T>| {
                *sent_in = Some(sid);
                *phase = Phase::Waiting { live: Vec::new(), deadline: tokio::time::Instant::now() + request.timeout };
                let (client, acks_tx, request) = (client.clone(), acks_tx.clone(), request.clone());
                tokio::spawn(async move {
                    let mut emit = client.emit_builder(&request.subscribe);
                    if let Some(a) = &request.args {
                        emit = emit.arg(a);
                    }
                    // The ack is the snapshot, or only a failure to send is worth reporting.
                    let answer = match request.source {
                        SnapshotSource::Ack => Some(emit.timeout(request.timeout).ack().await),
                        SnapshotSource::Event(_) => emit.send().await.err().map(Err),
                    };
                    if let Some(answer) = answer {
                        let _ = acks_tx.send(answer).await;
                    }
                });
            };
            if let ConnectionState::Connected { sid, .. } = client.state() {
                subscribe(sid, &mut sent_in, &mut phase);
            }
            loop {
                let deadline = match &phase {
                    Phase::Waiting { deadline, .. } => Some(*deadline),
                    Phase::Live => None,
                };
                let timer = async {
                    match deadline {
                        Some(d) => tokio::time::sleep_until(d).await,
                        None => std::future::pending().await,
                    }
                };
                // What to hand on, in order.
                let mut out: Vec<Result<Snapshotted<S, T>, Error>> = Vec::new();
                tokio::select! {
                    n = notices.recv() => match n {
                        Some(Notice::State(ConnectionState::Connected { sid, recovered, .. })) => {
                            // A connect that recovered kept the server's subscription; a new
                            // session (not the one it was sent in) needs it again.
                            if !recovered && sent_in.as_deref() != Some(sid.as_str()) {
                                if let Phase::Waiting { live, .. } = std::mem::replace(&mut phase, Phase::Live) {
                                    out.extend(live.into_iter().map(|e| Ok(Snapshotted::Live(e))));
                                }
                                subscribe(sid, &mut sent_in, &mut phase);
                            }
                        }
                        Some(_) => {}
                        None => return,
                    },
                    e = live.next() => match e {
                        Some(Ok(e)) => match &mut phase {
                            Phase::Waiting { live, .. } if live.len() >= WAITING_MAX => {
                                let _ = tx.send(Err(Error::Lagged(live.len() as u64 + 1))).await;
                                return;
                            }
                            Phase::Waiting { live, .. } => live.push(e),
                            Phase::Live => out.push(Ok(Snapshotted::Live(e))),
                        },
                        Some(Err(e)) => out.push(Err(e)),
                        None => return,
                    },
                    s = async { match snapshots.as_mut() { Some(s) => s.next().await, None => std::future::pending().await } } => match s {
                        Some(Ok(s)) => {
                            out.push(Ok(Snapshotted::Snapshot(s.data)));
                            if let Phase::Waiting { live, .. } = std::mem::replace(&mut phase, Phase::Live) {
                                out.extend(live.into_iter().map(|e| Ok(Snapshotted::Live(e))));
                            }
                        }
                        Some(Err(e)) => out.push(Err(e)),
                        None => return,
                    },
                    a = acks.recv() => match a {
                        Some(Ok(payload)) => {
                            out.push(payload.deserialize::<S>().map(Snapshotted::Snapshot));
                            if let Phase::Waiting { live, .. } = std::mem::replace(&mut phase, Phase::Live) {
                                out.extend(live.into_iter().map(|e| Ok(Snapshotted::Live(e))));
                            }
                        }
                        Some(Err(e)) => out.push(Err(e)),
                        None => return,
                    },
                    () = timer => {
                        out.push(Err(Error::Timeout));
                        if let Phase::Waiting { live, .. } = std::mem::replace(&mut phase, Phase::Live) {
                            out.extend(live.into_iter().map(|e| Ok(Snapshotted::Live(e))));
                        }
                    }
                }
                for item in out {
                    if tx.send(item).await.is_err() {
                        return;
                    }
                }
            }
        });
        SnapshotStream { rx, task }
    }
}
