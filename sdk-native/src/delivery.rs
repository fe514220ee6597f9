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
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll};

use futures_util::Stream;
use tidings_core::Event;
use tokio::sync::{Notify, mpsc};

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
///
/// Only the driver takes from it and consumers only give back, so taking is a load and an add,
/// and giving back is a subtraction (plus a wake-up only while the driver waits): no lock on the
/// path of every event.
#[derive(Clone, Debug)]
pub(crate) struct Budget(Arc<BudgetInner>);

#[derive(Debug)]
struct BudgetInner {
    limit: usize,
    used: AtomicUsize,
    /// Set by a driver about to wait in [`Budget::wait_for`].
    waiting: AtomicBool,
    notify: Notify,
}

impl Budget {
    pub(crate) fn new(bytes: usize) -> Self {
        Budget(Arc::new(BudgetInner {
            limit: bytes.max(1),
            used: AtomicUsize::new(0),
            waiting: AtomicBool::new(false),
            notify: Notify::new(),
        }))
    }

    /// What `cost` bytes ask of the budget: never more than the whole of it, so an item larger
    /// than the budget still passes, alone.
    fn charge_of(&self, cost: usize) -> usize {
        cost.min(self.0.limit)
    }

    fn fits(&self, cost: usize) -> bool {
        let used = self.0.used.load(Ordering::SeqCst);
        used == 0 || used.saturating_add(self.charge_of(cost)) <= self.0.limit
    }

    /// Takes `cost` bytes if they are free now; returns what was charged (give it back with a
    /// [`Charge`]). Only the driver calls this, so nothing takes between the check and the add.
    pub(crate) fn try_take(&self, cost: usize) -> Option<usize> {
        if !self.fits(cost) {
            return None;
        }
        let charged = self.charge_of(cost);
        self.0.used.fetch_add(charged, Ordering::SeqCst);
        Some(charged)
    }

    fn release(&self, bytes: usize) {
        if bytes == 0 {
            return;
        }
        self.0.used.fetch_sub(bytes, Ordering::SeqCst);
        if self.0.waiting.swap(false, Ordering::SeqCst) {
            self.0.notify.notify_one();
        }
    }

    /// Waits until `cost` bytes are free (without taking them).
    pub(crate) async fn wait_for(&self, cost: usize) {
        loop {
            let notified = self.0.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            self.0.waiting.store(true, Ordering::SeqCst);
            // Checked after saying so: a release from now on wakes us.
            if self.fits(cost) {
                self.0.waiting.store(false, Ordering::SeqCst);
                return;
            }
            notified.await;
        }
    }

    /// Bytes held by queued items now.
    #[cfg(test)]
    pub(crate) fn used(&self) -> usize {
        self.0.used.load(Ordering::SeqCst)
    }
}

/// Bytes of the budget held by queued items; they go back when it is dropped, or piecemeal with
/// [`Charge::give_back`] as the items are taken.
#[derive(Debug)]
pub(crate) struct Charge {
    budget: Budget,
    bytes: usize,
}

impl Charge {
    pub(crate) fn new(budget: &Budget, bytes: usize) -> Self {
        Charge { budget: budget.clone(), bytes }
    }

    /// Gives back `bytes` of this charge now.
    fn give_back(&mut self, bytes: usize) {
        let bytes = bytes.min(self.bytes);
        self.bytes -= bytes;
        self.budget.release(bytes);
    }

    /// Splits `bytes` off into a charge of its own.
    pub(crate) fn split(&mut self, bytes: usize) -> Charge {
        let bytes = bytes.min(self.bytes);
        self.bytes -= bytes;
        Charge { budget: self.budget.clone(), bytes }
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.budget.release(self.bytes);
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

/// An event in a subscription's queue.
#[derive(Debug)]
pub(crate) enum Queued {
    /// The only queue that has it (the usual case: no shared pointer). `usize`: its bytes, part
    /// of the charge of the batch it came in.
    Owned(Event, usize),
    /// In several queues; its bytes return to the budget when the last reader has taken it.
    Shared(Arc<Shared>),
}

/// An event shared by several queues.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) ev: Event,
    _charge: Option<Charge>,
}

impl Shared {
    pub(crate) fn new(ev: Event, charge: Option<Charge>) -> Arc<Self> {
        Arc::new(Shared { ev, _charge: charge })
    }
}

/// What a subscription receives.
#[derive(Debug)]
pub(crate) enum Delivery {
    Event(Queued),
    /// Lossless events handed over together, with the bytes of the `Owned` ones: one queue
    /// operation (and at most one wake-up of the reader) per turn of the driver's loop instead of
    /// one per event.
    Batch(Vec<Queued>, Option<Charge>),
    /// A lossy subscription skipped this many events because its queue was full.
    Skipped(u64),
}

/// Where a subscription's events go.
pub(crate) enum Sink {
    /// Every event, in the shared budget; collected in `batch` (whose `Owned` events hold
    /// `charged` bytes) until [`Sink::flush`].
    Lossless { tx: mpsc::UnboundedSender<Delivery>, batch: Vec<Queued>, charged: usize },
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

    /// Hands over what a lossless sink collected; its bytes were taken from `budget`. (A closed
    /// queue drops the batch, and with it the charge.)
    pub(crate) fn flush(&mut self, budget: &Budget) {
        if let Sink::Lossless { tx, batch, charged } = self
            && !batch.is_empty()
        {
            let charge = (*charged > 0).then(|| Charge::new(budget, std::mem::take(charged)));
            // The next batch starts at this one's size: one allocation per batch, never a regrowth
            // (each would copy every event again).
            let next = Vec::with_capacity(batch.len());
            let _ = tx.send(Delivery::Batch(std::mem::replace(batch, next), charge));
        }
    }

    /// Queues `ev` (a lossless sink until the next [`Sink::flush`]; a lossy sink may skip it and
    /// say so before its next event). An `Owned` event's bytes must be flushed with this sink.
    pub(crate) fn send(&mut self, ev: Queued) {
        use mpsc::error::TrySendError;
        match self {
            Sink::Lossless { batch, charged, .. } => {
                if let Queued::Owned(_, bytes) = &ev {
                    *charged += bytes;
                }
                batch.push(ev);
            }
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
    batch: std::vec::IntoIter<Queued>,
    /// What the rest of `batch` holds of the budget.
    charge: Option<Charge>,
}

#[derive(Debug)]
enum Rx {
    Lossless(mpsc::UnboundedReceiver<Delivery>),
    Lossy(mpsc::Receiver<Delivery>),
}

/// One item for the reader.
pub(crate) enum Item {
    Event(Queued),
    Skipped(u64),
}

impl Source {
    fn new(rx: Rx) -> Self {
        Source { rx, batch: Vec::new().into_iter(), charge: None }
    }

    pub(crate) fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Item>> {
        loop {
            if let Some(q) = self.batch.next() {
                if let (Queued::Owned(_, bytes), Some(charge)) = (&q, self.charge.as_mut()) {
                    charge.give_back(*bytes);
                }
                return Poll::Ready(Some(Item::Event(q)));
            }
            let next = match &mut self.rx {
                Rx::Lossless(rx) => rx.poll_recv(cx),
                Rx::Lossy(rx) => rx.poll_recv(cx),
            };
            match next {
                Poll::Ready(Some(Delivery::Batch(b, charge))) => {
                    self.batch = b.into_iter();
                    self.charge = charge;
                }
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
            (Sink::Lossless { tx, batch: Vec::new(), charged: 0 }, Source::new(Rx::Lossless(rx)))
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
    pub(crate) rx: mpsc::UnboundedReceiver<(Notice, Charge)>,
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

    fn ev(i: u32) -> Event {
        Event {
            namespace: "/".into(),
            name: "n".into(),
            args: tidings_core::Args::from_json_array(format!("[{i}]"), Vec::new()).unwrap(),
            offset: None,
            ack: None,
            source: tidings_core::EventSource::Socket,
            delivery: tidings_core::DeliveryId::for_tests(u64::from(i)),
        }
    }

    fn item(i: Item) -> String {
        match i {
            Item::Event(Queued::Owned(e, _)) => e.args.get(0).unwrap_or_default().to_string(),
            Item::Event(Queued::Shared(e)) => e.ev.args.get(0).unwrap_or_default().to_string(),
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
            sink.send(Queued::Owned(ev(i), 0));
        }
        let mut next = || poll(&mut source).map(item);
        assert_eq!(next().as_deref(), Some("1"));
        assert_eq!(next().as_deref(), Some("2"));
        assert_eq!(next(), None, "3, 4 and 5 did not fit");
        sink.send(Queued::Shared(Shared::new(ev(6), None)));
        let mut next = || poll(&mut source).map(item);
        assert_eq!(next().as_deref(), Some("skipped 3"));
        assert_eq!(next().as_deref(), Some("6"));
    }

    #[test]
    fn a_lossless_queue_keeps_everything_and_the_budget_comes_back_as_it_is_read() {
        let budget = Budget::new(1000);
        let (mut sink, mut source) = queue(None);
        let shared = budget.try_take(600).expect("free");
        assert!(budget.try_take(600).is_none(), "only 400 left");
        sink.send(Queued::Shared(Shared::new(ev(1), Some(Charge::new(&budget, shared)))));
        for i in 2..=4 {
            let bytes = budget.try_take(100).expect("free");
            sink.send(Queued::Owned(ev(i), bytes));
        }
        assert_eq!(budget.used(), 900);
        assert!(poll(&mut source).is_none(), "nothing is handed over before the flush");
        sink.flush(&budget);
        assert_eq!(poll(&mut source).map(item).as_deref(), Some("1"));
        assert_eq!(budget.used(), 300, "taking the shared event returns its bytes");
        assert_eq!(poll(&mut source).map(item).as_deref(), Some("2"));
        assert_eq!(budget.used(), 200, "each owned event returns its own share of the batch");
        assert!(budget.try_take(5000).is_none(), "an item larger than the budget waits until it is alone");
        assert_eq!((3..=4).filter(|_| poll(&mut source).is_some()).count(), 2);
        assert_eq!(budget.used(), 0);
        assert_eq!(budget.try_take(5000), Some(1000), "then passes, charged the whole budget");
        sink.flush(&budget);
        assert!(poll(&mut source).is_none(), "an empty flush sends nothing");
    }

    #[test]
    fn a_dropped_subscription_returns_what_it_held() {
        let budget = Budget::new(1000);
        let (mut sink, source) = queue(None);
        let bytes = budget.try_take(700).expect("free");
        sink.send(Queued::Owned(ev(1), bytes));
        sink.flush(&budget);
        drop(source);
        assert_eq!(budget.used(), 0);
    }

    #[tokio::test]
    async fn a_waiting_driver_is_woken_when_a_reader_gives_bytes_back() {
        let budget = Budget::new(1000);
        let (mut sink, mut source) = queue(None);
        let bytes = budget.try_take(900).expect("free");
        sink.send(Queued::Owned(ev(1), bytes));
        sink.flush(&budget);
        let waiter = tokio::spawn({
            let budget = budget.clone();
            async move { budget.wait_for(500).await }
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        assert!(poll(&mut source).is_some());
        tokio::time::timeout(std::time::Duration::from_secs(5), waiter).await.expect("woken").expect("ran");
    }
}
