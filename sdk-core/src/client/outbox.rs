//! A namespace's emits that are not on the wire yet, a sub-machine of its own: the send buffer
//! (emits made while disconnected, sent in order on connect) and the reliable queue
//! (at-least-once emits: one in flight at a time, tried again until acknowledged or out of
//! tries), both within the configured limits ([`SendBufferConfig`]).
//!
//! It decides what waits, what is dropped or expires and what is tried next; the socket owns the
//! ack ids and does the sending.

use std::collections::VecDeque;
use std::time::Duration;

use super::EmitId;
use crate::args::Args;
use crate::config::{OverflowPolicy, SendBufferConfig};
use crate::time::{Instant, earliest};

/// An emit waiting to be sent.
#[derive(Debug)]
pub(super) struct Pending {
    pub(super) emit: EmitId,
    pub(super) event: String,
    pub(super) args: Args,
    pub(super) ack: bool,
    pub(super) deadline: Option<Instant>,
    /// The emit's own ack timeout; with retries, each try waits this long.
    pub(super) timeout: Option<Duration>,
}

impl Pending {
    fn size(&self) -> usize {
        self.args.byte_size() + self.event.len()
    }
}

#[derive(Debug)]
struct Reliable {
    p: Pending,
    tries: u32,
    /// The ack id of the try on the wire, and when it times out.
    in_flight: Option<(u64, Instant)>,
}

/// What expired at a given time ([`Outbox::expire`]).
#[derive(Debug, Default)]
pub(super) struct Expired {
    /// Emits that timed out (buffered ones, and a reliable one out of tries).
    pub(super) emits: Vec<EmitId>,
    /// The ack id of a reliable try that timed out (forget it).
    pub(super) ack: Option<u64>,
    /// The reliable queue has a head to try (again).
    pub(super) resend: bool,
}

#[derive(Debug, Default)]
pub(super) struct Outbox {
    buffer: VecDeque<Pending>,
    queue: VecDeque<Reliable>,
    /// Bytes held by both.
    bytes: usize,
}

impl Outbox {
    /// Emits held (buffered and queued).
    pub(super) fn len(&self) -> usize {
        self.buffer.len() + self.queue.len()
    }

    /// The earliest deadline: a buffered emit's ack timeout, or the try in flight's.
    pub(super) fn deadline(&self) -> Option<Instant> {
        let reliable = self.queue.front().and_then(|r| r.in_flight.map(|(_, d)| d));
        self.buffer.iter().fold(reliable, |d, p| earliest(d, p.deadline))
    }

    /// Holds `p` (in the reliable queue when `reliable`), within `limits`. With the
    /// drop-oldest policy, the emits dropped to make room are returned (never one on the wire).
    pub(super) fn push(
        &mut self,
        limits: SendBufferConfig,
        p: Pending,
        reliable: bool,
    ) -> Result<Vec<EmitId>, super::EmitError> {
        let size = p.size();
        let mut dropped = Vec::new();
        loop {
            let count = self.len();
            if count < limits.max_packets && self.bytes + size <= limits.max_bytes {
                break;
            }
            if limits.overflow == OverflowPolicy::Reject || count == 0 {
                return Err(super::EmitError::SendBufferFull);
            }
            // Drop the oldest that is not on the wire.
            let victim = if self.buffer.is_empty() {
                let in_flight = self.queue.front().is_some_and(|r| r.in_flight.is_some());
                if self.queue.len() <= usize::from(in_flight) {
                    return Err(super::EmitError::SendBufferFull);
                }
                // The head, or the one after a head on the wire (`VecDeque::remove` would bring
                // its general wrap-around copy into the browser build for this).
                let head = if in_flight { self.queue.pop_front() } else { None };
                let victim = self.queue.pop_front().map(|r| r.p);
                if let Some(h) = head {
                    self.queue.push_front(h);
                }
                victim
            } else {
                self.buffer.pop_front()
            };
            if let Some(v) = victim {
                self.bytes = self.bytes.saturating_sub(v.size());
                dropped.push(v.emit);
            }
        }
        self.bytes += size;
        if reliable {
            self.queue.push_back(Reliable { p, tries: 0, in_flight: None });
        } else {
            self.buffer.push_back(p);
        }
        Ok(dropped)
    }

    /// The buffered emits, oldest first, to send now.
    pub(super) fn take_buffered(&mut self) -> VecDeque<Pending> {
        // Kept a `VecDeque`: turning it into a `Vec` would compile the deque's rotation code.
        let buffered = std::mem::take(&mut self.buffer);
        let sent: usize = buffered.iter().map(Pending::size).sum();
        self.bytes = self.bytes.saturating_sub(sent);
        buffered
    }

    /// Everything held, buffered then queued, to fail.
    pub(super) fn take_all(&mut self) -> VecDeque<Pending> {
        let mut all = self.take_buffered();
        for r in std::mem::take(&mut self.queue) {
            all.push_back(r.p);
        }
        self.bytes = 0;
        all
    }

    /// The head of the reliable queue, when it is not on the wire: what to try next.
    pub(super) fn next_try(&self) -> Option<&Pending> {
        self.queue.front().filter(|r| r.in_flight.is_none()).map(|r| &r.p)
    }

    /// The head went out with ack id `id`; it times out at `deadline`.
    pub(super) fn sent(&mut self, id: u64, deadline: Instant) {
        if let Some(head) = self.queue.front_mut() {
            head.in_flight = Some((id, deadline));
        }
    }

    /// The ack for `id` came: the head it answers, if it was the try on the wire.
    pub(super) fn acked(&mut self, id: u64) -> Option<Pending> {
        let head = self.queue.front().and_then(|r| r.in_flight).map(|(a, _)| a);
        if head != Some(id) {
            return None;
        }
        let r = self.queue.pop_front()?;
        self.bytes = self.bytes.saturating_sub(r.p.size());
        Some(r.p)
    }

    /// The connection went down: the try on the wire will never be answered (the head stays, to
    /// be tried again).
    pub(super) fn connection_lost(&mut self) {
        if let Some(head) = self.queue.front_mut() {
            head.in_flight = None;
        }
    }

    /// What is due at `now`: buffered emits whose ack timeout passed, and a try on the wire that
    /// timed out (the emit fails once it has had `retries` tries more than the first).
    pub(super) fn expire(&mut self, now: Instant, retries: u32) -> Expired {
        let mut out = Expired::default();
        let mut kept = VecDeque::new();
        for p in std::mem::take(&mut self.buffer) {
            if p.deadline.is_some_and(|d| d <= now) {
                self.bytes = self.bytes.saturating_sub(p.size());
                out.emits.push(p.emit);
            } else {
                kept.push_back(p);
            }
        }
        self.buffer = kept;
        if let Some(head) = self.queue.front_mut()
            && let Some((id, d)) = head.in_flight
            && d <= now
        {
            out.ack = Some(id);
            head.in_flight = None;
            head.tries += 1;
            if head.tries > retries
                && let Some(r) = self.queue.pop_front()
            {
                self.bytes = self.bytes.saturating_sub(r.p.size());
                out.emits.push(r.p.emit);
            }
            out.resend = true;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(emit: u64, deadline: Option<Instant>) -> Pending {
        Pending { emit: EmitId(emit), event: "e".into(), args: Args::empty(), ack: true, deadline, timeout: None }
    }

    fn limits(max_packets: usize, overflow: OverflowPolicy) -> SendBufferConfig {
        SendBufferConfig { max_packets, max_bytes: 1 << 20, overflow }
    }

    #[test]
    fn a_full_outbox_rejects_or_drops_the_oldest_that_is_not_on_the_wire() {
        let mut o = Outbox::default();
        let reject = limits(2, OverflowPolicy::Reject);
        assert!(o.push(reject, pending(1, None), true).unwrap().is_empty());
        assert!(o.push(reject, pending(2, None), true).unwrap().is_empty());
        assert!(o.push(reject, pending(3, None), true).is_err(), "full: rejected");
        o.sent(7, Instant::default().plus_millis(10));
        let drop = limits(2, OverflowPolicy::DropOldest);
        assert_eq!(o.push(drop, pending(3, None), true).unwrap(), vec![EmitId(2)], "1 is on the wire, so 2 goes");
        assert_eq!(o.len(), 2);
        assert!(o.acked(8).is_none(), "not the ack of the try on the wire");
        assert_eq!(o.acked(7).map(|p| p.emit), Some(EmitId(1)));
        assert_eq!(o.next_try().map(|p| p.emit), Some(EmitId(3)));
    }

    #[test]
    fn a_try_that_times_out_is_tried_again_until_the_retries_are_spent() {
        let mut o = Outbox::default();
        let t0 = Instant::default();
        o.push(limits(10, OverflowPolicy::Reject), pending(1, None), true).unwrap();
        o.push(limits(10, OverflowPolicy::Reject), pending(2, Some(t0.plus_millis(5))), false).unwrap();
        o.sent(1, t0.plus_millis(10));
        assert_eq!(o.deadline(), Some(t0.plus_millis(5)));
        let e = o.expire(t0.plus_millis(5), 1);
        assert_eq!((e.emits, e.ack, e.resend), (vec![EmitId(2)], None, false), "the buffered emit expired");
        let e = o.expire(t0.plus_millis(10), 1);
        assert_eq!((e.emits.len(), e.ack, e.resend), (0, Some(1), true), "first try timed out: one retry left");
        assert!(o.next_try().is_some());
        o.sent(2, t0.plus_millis(20));
        o.connection_lost();
        assert!(o.next_try().is_some(), "a lost connection puts the head back, without counting a try");
        o.sent(3, t0.plus_millis(30));
        let e = o.expire(t0.plus_millis(30), 1);
        assert_eq!((e.emits, e.ack), (vec![EmitId(1)], Some(3)), "out of tries: it fails");
        assert_eq!(o.len(), 0);
        assert!(o.take_all().is_empty());
    }
}
