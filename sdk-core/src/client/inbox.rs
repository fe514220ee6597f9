//! The inbox: events handed to the driver but not yet delivered, and the de-duplication window.
//!
//! An event counts as received when the driver has handed it to every consumer that matches it
//! ([`super::Client::delivered`]), not when it was decoded. Until then it is *in flight*: its keys
//! block a replay of the same event (a recovery replays what the client had not delivered when
//! the connection dropped), but they enter the de-duplication window, and its offset becomes the
//! namespace's recovery offset, only on delivery. So a connection lost while events are queued in
//! the driver recovers from the last delivered event: nothing queued is skipped, and the replay of
//! what is still queued is recognised and dropped (see docs/PROTOCOL.md, "Offsets").

use std::collections::VecDeque;

use super::DeliveryId;
use crate::dedup::{DedupKey, DedupWindow, KeySet};

/// What [`Inbox::delivered`] hands back for each event it retires.
#[derive(Debug)]
pub(super) struct Retired {
    /// The namespace the event arrived on.
    pub(super) namespace: String,
    /// For a socket event with an offset: the session (pid) it was received in, and the offset.
    pub(super) socket_offset: Option<(String, String)>,
    /// The envelope id of a socket event of the main namespace (where the feed resumes).
    pub(super) envelope: Option<String>,
}

#[derive(Debug)]
struct InFlight {
    id: u64,
    keys: Vec<DedupKey>,
    /// `None` when delivery changes nothing but the window (no offset, no envelope).
    retired: Option<Retired>,
}

/// Events in flight and the window of delivered keys.
#[derive(Debug)]
pub(super) struct Inbox {
    next: u64,
    in_flight: VecDeque<InFlight>,
    in_flight_keys: KeySet,
    window: DedupWindow,
}

impl Inbox {
    /// An inbox de-duplicating over the last `window` delivered events; `seed` keys its hashes.
    pub(super) fn new(window: usize, seed: u64) -> Self {
        Inbox {
            next: 1,
            in_flight: VecDeque::new(),
            in_flight_keys: KeySet::new(seed),
            window: DedupWindow::with_seed(window, seed),
        }
    }

    /// Whether an event with these keys was delivered or is in flight. `offset_counts`: whether
    /// an offset key may prove a duplicate (see `Client::deliver_event`); envelope ids always do.
    pub(super) fn seen(&self, keys: &[DedupKey], offset_counts: bool) -> bool {
        keys.iter()
            .filter(|k| offset_counts || !matches!(k, DedupKey::Offset(_)))
            .any(|k| self.window.contains(k) || self.in_flight_keys.contains(k))
    }

    /// Puts an event in flight; the driver reports it delivered with the returned id.
    pub(super) fn admit(&mut self, keys: Vec<DedupKey>, retired: Option<Retired>) -> DeliveryId {
        let id = self.next;
        self.next += 1;
        for k in &keys {
            self.in_flight_keys.insert(k.clone());
        }
        self.in_flight.push_back(InFlight { id, keys, retired });
        DeliveryId(id)
    }

    /// Retires every event up to and including `id` (the driver delivers in order), oldest first.
    pub(super) fn delivered(&mut self, id: DeliveryId) -> Vec<Retired> {
        let mut out = Vec::new();
        while self.in_flight.front().is_some_and(|f| f.id <= id.0) {
            let Some(f) = self.in_flight.pop_front() else { break };
            for k in f.keys {
                self.in_flight_keys.remove(&k);
                self.window.insert(k);
            }
            out.extend(f.retired);
        }
        out
    }

    /// Events handed out and not yet delivered.
    pub(super) fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Keys in the de-duplication window.
    pub(super) fn window_len(&self) -> usize {
        self.window.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r() -> Option<Retired> {
        Some(Retired { namespace: "/".into(), socket_offset: None, envelope: None })
    }

    #[test]
    fn keys_block_while_in_flight_and_enter_the_window_on_delivery() {
        let mut inbox = Inbox::new(10, 0);
        let k = |s: &str| vec![DedupKey::Offset(s.into()), DedupKey::EnvelopeId(format!("e{s}"))];
        let a = inbox.admit(k("1"), r());
        let b = inbox.admit(k("2"), r());
        assert!(inbox.seen(&k("1"), true));
        assert_eq!(inbox.window_len(), 0);
        // Offsets prove nothing outside a recovery replay; envelope ids always do.
        assert!(inbox.seen(&k("2"), false));
        assert!(!inbox.seen(&[DedupKey::Offset("2".into())], false));
        assert_eq!(inbox.delivered(a).len(), 1);
        assert_eq!((inbox.in_flight(), inbox.window_len()), (1, 2));
        assert!(inbox.seen(&k("1"), true), "delivered keys stay in the window");
        assert_eq!(inbox.delivered(b).len(), 1);
        assert_eq!(inbox.delivered(b).len(), 0, "a repeated report is a no-op");
        assert_eq!(inbox.in_flight(), 0);
    }

    #[test]
    fn delivery_reports_retire_everything_before_them() {
        let mut inbox = Inbox::new(10, 0);
        let ids: Vec<_> = (0..5).map(|_| inbox.admit(Vec::new(), r())).collect();
        assert_eq!(inbox.delivered(ids[2]).len(), 3);
        assert_eq!(inbox.delivered(ids[4]).len(), 2);
    }
}
