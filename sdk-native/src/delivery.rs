//! Lossless delivery from the driver to its consumers, bounded in bytes.
//!
//! Every event, and every notice, waits in one queue per consumer (a subscription, a notices
//! receiver). The queues are unbounded in count but share one byte budget (the client's receive
//! buffer): an item holds its share of the budget until its consumer takes it. When the budget is
//! spent, the driver stops reading its transports (see `Driver::run`), so TCP pushes back on the
//! server, and resumes as soon as consumers catch up. Nothing is dropped, except for a
//! subscription that asked for lossy delivery ([`crate::Tidings::on_lossy`]): it gets a bounded
//! queue of its own outside the budget, and is told how many events it skipped.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::Stream;
use tidings_core::Event;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

use crate::driver::Notice;

/// The receive buffer by default: 4 MiB. Four times socket.io's default `maxHttpBufferSize`
/// (1 MB), so one event of the largest size a default server accepts always fits with room to
/// spare, and enough for tens of thousands of small events (a replayed recovery backlog) before
/// the transport is paused; yet a client whose consumers stall holds at most this much.
pub const DEFAULT_RECEIVE_BUFFER: usize = 4 << 20;

/// What an event costs besides its text: the event, its queue slots and the shared pointer.
const EVENT_OVERHEAD: usize = 192;
/// What a notice costs.
const NOTICE_COST: usize = 256;

/// The byte budget shared by every consumer queue of one client.
#[derive(Clone, Debug)]
pub(crate) struct Budget {
    sem: Arc<Semaphore>,
    bytes: usize,
}

impl Budget {
    pub(crate) fn new(bytes: usize) -> Self {
        // Semaphore::MAX_PERMITS is usize::MAX >> 3; a budget is far below that in practice.
        let bytes = bytes.clamp(1, Semaphore::MAX_PERMITS);
        Budget { sem: Arc::new(Semaphore::new(bytes)), bytes }
    }

    /// What `cost` bytes ask of the budget: never more than the whole of it, so an item larger
    /// than the budget still passes, alone.
    fn permits(&self, cost: usize) -> u32 {
        u32::try_from(cost.min(self.bytes)).unwrap_or(u32::MAX)
    }

    /// Takes `cost` bytes if they are free now.
    pub(crate) fn try_take(&self, cost: usize) -> Option<OwnedSemaphorePermit> {
        self.sem.clone().try_acquire_many_owned(self.permits(cost)).ok()
    }

    /// Waits until `cost` bytes are free (without taking them).
    pub(crate) async fn wait_for(&self, cost: usize) {
        if let Ok(p) = self.sem.acquire_many(self.permits(cost)).await {
            drop(p);
        }
    }

    /// Bytes held by queued items now.
    #[cfg(test)]
    pub(crate) fn used(&self) -> usize {
        self.bytes.saturating_sub(self.sem.available_permits())
    }
}

/// What one event costs in the budget, for `readers` queues.
pub(crate) fn event_cost(ev: &Event, readers: usize) -> usize {
    let text = ev.args.byte_size() + ev.name.len() + ev.namespace.len() + ev.offset.as_ref().map_or(0, String::len);
    text + EVENT_OVERHEAD + 16 * readers.saturating_sub(1)
}

/// What `readers` notices cost.
pub(crate) fn notice_cost(readers: usize) -> usize {
    NOTICE_COST * readers.max(1)
}

/// An event shared by every queue it was put in; its bytes return to the budget when the last
/// consumer has taken it.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) ev: Event,
    _permit: Option<OwnedSemaphorePermit>,
}

impl Shared {
    pub(crate) fn new(ev: Event, permit: Option<OwnedSemaphorePermit>) -> Arc<Self> {
        Arc::new(Shared { ev, _permit: permit })
    }

    /// The event; its bytes go back to the budget now.
    pub(crate) fn into_event(self) -> Event {
        self.ev
    }
}

/// What a subscription receives.
#[derive(Debug)]
pub(crate) enum Delivery {
    Event(Arc<Shared>),
    /// Lossless events handed over together: one queue operation (and at most one wake-up of
    /// the reader) per turn of the driver's loop instead of one per event.
    Batch(Vec<Arc<Shared>>),
    /// A lossy subscription skipped this many events because its queue was full.
    Skipped(u64),
}

/// Where a subscription's events go.
pub(crate) enum Sink {
    /// Every event, in the shared budget; collected in `batch` until [`Sink::flush`].
    Lossless { tx: mpsc::UnboundedSender<Delivery>, batch: Vec<Arc<Shared>> },
    /// At most `capacity` queued events; what does not fit is skipped and counted.
    Lossy { tx: mpsc::Sender<Delivery>, skipped: u64 },
}

impl Sink {
    pub(crate) fn is_closed(&self) -> bool {
        match self {
            Sink::Lossless { tx, .. } => tx.is_closed(),
            Sink::Lossy { tx, .. } => tx.is_closed(),
        }
    }

    pub(crate) fn is_lossless(&self) -> bool {
        matches!(self, Sink::Lossless { .. })
    }

    /// Hands over what a lossless sink collected.
    pub(crate) fn flush(&mut self) {
        if let Sink::Lossless { tx, batch } = self
            && !batch.is_empty()
        {
            let _ = tx.send(Delivery::Batch(std::mem::take(batch)));
        }
    }

    /// Queues `ev` (a lossless sink until the next [`Sink::flush`]; a lossy sink may skip it and
    /// say so before its next event).
    pub(crate) fn send(&mut self, ev: Arc<Shared>) {
        use mpsc::error::TrySendError;
        match self {
            Sink::Lossless { batch, .. } => batch.push(ev),
            Sink::Lossy { tx, skipped } => {
                if *skipped > 0 {
                    match tx.try_send(Delivery::Skipped(*skipped)) {
                        Ok(()) => *skipped = 0,
                        Err(TrySendError::Full(_)) => {
                            *skipped = skipped.saturating_add(1);
                            return;
                        }
                        Err(TrySendError::Closed(_)) => return,
                    }
                }
                if let Err(TrySendError::Full(_)) = tx.try_send(Delivery::Event(ev)) {
                    if *skipped == 0 {
                        tracing::debug!("a lossy subscription is behind; it skips events until it catches up");
                    }
                    *skipped = skipped.saturating_add(1);
                }
            }
        }
    }
}

/// The receiving end of a subscription's queue, with the rest of the batch being read.
#[derive(Debug)]
pub(crate) struct Source {
    rx: Rx,
    batch: std::vec::IntoIter<Arc<Shared>>,
}

#[derive(Debug)]
enum Rx {
    Lossless(mpsc::UnboundedReceiver<Delivery>),
    Lossy(mpsc::Receiver<Delivery>),
}

/// One item for the reader.
pub(crate) enum Item {
    Event(Arc<Shared>),
    Skipped(u64),
}

impl Source {
    fn new(rx: Rx) -> Self {
        Source { rx, batch: Vec::new().into_iter() }
    }

    pub(crate) fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Item>> {
        loop {
            if let Some(ev) = self.batch.next() {
                return Poll::Ready(Some(Item::Event(ev)));
            }
            let next = match &mut self.rx {
                Rx::Lossless(rx) => rx.poll_recv(cx),
                Rx::Lossy(rx) => rx.poll_recv(cx),
            };
            match next {
                Poll::Ready(Some(Delivery::Batch(b))) => self.batch = b.into_iter(),
                Poll::Ready(Some(Delivery::Event(ev))) => return Poll::Ready(Some(Item::Event(ev))),
                Poll::Ready(Some(Delivery::Skipped(n))) => return Poll::Ready(Some(Item::Skipped(n))),
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

/// A new subscription queue: `None` for lossless, `Some(capacity)` for lossy.
pub(crate) fn queue(lossy: Option<usize>) -> (Sink, Source) {
    match lossy {
        None => {
            let (tx, rx) = mpsc::unbounded_channel();
            (Sink::Lossless { tx, batch: Vec::new() }, Source::new(Rx::Lossless(rx)))
        }
        Some(cap) => {
            let (tx, rx) = mpsc::channel(cap.max(1));
            (Sink::Lossy { tx, skipped: 0 }, Source::new(Rx::Lossy(rx)))
        }
    }
}

/// Every state change, connect error and feed change of a namespace, in order with its events,
/// from when it was created. Nothing is skipped: notices wait in the client's receive buffer
/// until read, so drop a `Notices` you no longer read (an unread one eventually pauses the client).
#[derive(Debug)]
pub struct Notices {
    pub(crate) rx: mpsc::UnboundedReceiver<(Notice, OwnedSemaphorePermit)>,
}

impl Notices {
    /// The next notice; `None` once the client has stopped.
    pub async fn recv(&mut self) -> Option<Notice> {
        self.rx.recv().await.map(|(n, _permit)| n)
    }

    /// The next notice if one is queued.
    pub fn try_recv(&mut self) -> Option<Notice> {
        self.rx.try_recv().ok().map(|(n, _permit)| n)
    }
}

impl Stream for Notices {
    type Item = Notice;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Notice>> {
        self.rx.poll_recv(cx).map(|o| o.map(|(n, _permit)| n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(i: u32) -> Arc<Shared> {
        let e = Event {
            namespace: "/".into(),
            name: "n".into(),
            args: tidings_core::Args::from_json_array(format!("[{i}]"), Vec::new()).unwrap(),
            offset: None,
            ack: None,
            source: tidings_core::EventSource::Socket,
            delivery: tidings_core::DeliveryId::for_tests(u64::from(i)),
        };
        Shared::new(e, None)
    }

    fn item(i: Item) -> String {
        match i {
            Item::Event(e) => e.ev.args.get(0).unwrap_or_default().to_string(),
            Item::Skipped(n) => format!("skipped {n}"),
        }
    }

    fn poll(source: &mut Source) -> Option<Item> {
        let waker = futures_util::task::noop_waker();
        match source.poll_recv(&mut Context::from_waker(&waker)) {
            Poll::Ready(i) => i,
            Poll::Pending => None,
        }
    }

    #[test]
    fn a_lossy_queue_counts_what_did_not_fit_and_says_so_before_the_next_event() {
        let (mut sink, mut source) = queue(Some(2));
        for i in 1..=5 {
            sink.send(ev(i));
        }
        let mut next = || poll(&mut source).map(item);
        assert_eq!(next().as_deref(), Some("1"));
        assert_eq!(next().as_deref(), Some("2"));
        assert_eq!(next(), None, "3, 4 and 5 did not fit");
        sink.send(ev(6));
        let mut next = || poll(&mut source).map(item);
        assert_eq!(next().as_deref(), Some("skipped 3"));
        assert_eq!(next().as_deref(), Some("6"));
    }

    #[test]
    fn a_lossless_queue_keeps_everything_and_the_budget_comes_back_when_read() {
        let budget = Budget::new(1000);
        let (mut sink, mut source) = queue(None);
        let p = budget.try_take(600).expect("free");
        assert!(budget.try_take(600).is_none(), "only 400 left");
        let e = ev(1);
        let shared = Shared::new(e.ev.clone(), Some(p));
        sink.send(shared);
        for i in 2..=100 {
            sink.send(ev(i));
        }
        assert!(poll(&mut source).is_none(), "nothing is handed over before the flush");
        sink.flush();
        assert_eq!(budget.used(), 600);
        assert_eq!(poll(&mut source).map(item).as_deref(), Some("1"));
        assert_eq!(budget.used(), 0, "taking the event returns its bytes");
        assert!(budget.try_take(5000).is_some(), "an item larger than the budget passes alone");
        assert_eq!((2..=100).filter(|_| poll(&mut source).is_some()).count(), 99);
        sink.flush();
        assert!(poll(&mut source).is_none(), "an empty flush sends nothing");
    }
}
