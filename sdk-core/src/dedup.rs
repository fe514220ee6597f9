//! A bounded window of recently seen event keys, so a handler never sees the same event twice
//! after a reconnect, a connection state recovery or a REST feed catch-up replays it.

use std::collections::{HashSet, VecDeque};

/// What identifies one event for de-duplication.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum DedupKey {
    /// The recovery offset the server appended as the event's last argument.
    Offset(String),
    /// The `id` of the event's envelope (see [`crate::event::envelope_id`]).
    EnvelopeId(String),
}

/// The last `capacity` distinct keys; inserting beyond that evicts the oldest.
///
/// Memory is bounded by `capacity` keys (each held twice: once in insertion order, once in a hash
/// set for O(1) look-ups). Seeing a key again does not refresh it: the window is first in, first
/// out, so a key is forgotten `capacity` distinct insertions after it was first seen.
#[derive(Debug, Clone, Default)]
pub struct DedupWindow {
    capacity: usize,
    order: VecDeque<DedupKey>,
    seen: HashSet<DedupKey>,
}

impl DedupWindow {
    /// A window of `capacity` keys. A capacity of 0 disables de-duplication: every key is new.
    pub fn new(capacity: usize) -> Self {
        DedupWindow { capacity, order: VecDeque::new(), seen: HashSet::new() }
    }

    /// Records `key`. Returns true when it was not in the window (the event is new), false for a
    /// duplicate. O(1) amortised.
    pub fn insert(&mut self, key: DedupKey) -> bool {
        if self.capacity == 0 {
            return true;
        }
        if self.seen.contains(&key) {
            return false;
        }
        while self.order.len() >= self.capacity {
            match self.order.pop_front() {
                Some(old) => {
                    self.seen.remove(&old);
                }
                None => break,
            }
        }
        self.seen.insert(key.clone());
        self.order.push_back(key);
        true
    }

    /// Whether `key` is in the window, without recording it.
    pub fn contains(&self, key: &DedupKey) -> bool {
        self.seen.contains(key)
    }

    /// The number of keys in the window (at most the capacity).
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// True when the window holds no key.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// Forgets every key (the capacity stays).
    pub fn clear(&mut self) {
        self.order.clear();
        self.seen.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(i: u32) -> DedupKey {
        DedupKey::Offset(i.to_string())
    }

    #[test]
    fn detects_duplicates() {
        let mut w = DedupWindow::new(10);
        assert!(w.is_empty());
        assert!(w.insert(k(1)));
        assert!(!w.insert(k(1)));
        assert!(w.contains(&k(1)) && !w.contains(&k(2)));
        assert!(w.insert(DedupKey::EnvelopeId("1".into())), "offsets and envelope ids are distinct");
        assert!(!w.insert(DedupKey::EnvelopeId("1".into())));
        assert_eq!(w.len(), 2);
    }

    #[test]
    fn evicts_oldest_first() {
        let mut w = DedupWindow::new(3);
        assert!(w.insert(k(1)) && w.insert(k(2)) && w.insert(k(3)));
        // A duplicate does not refresh k(1).
        assert!(!w.insert(k(1)));
        assert!(w.insert(k(4)));
        assert_eq!(w.len(), 3);
        assert!(!w.contains(&k(1)));
        assert!(w.contains(&k(2)) && w.contains(&k(3)) && w.contains(&k(4)));
        assert!(w.insert(k(5)));
        assert!(!w.contains(&k(2)));
        assert!(w.insert(k(1)), "an evicted key is new again");
        assert!(!w.contains(&k(3)));
        assert_eq!(w.len(), 3);
    }

    #[test]
    fn capacity_zero_disables() {
        let mut w = DedupWindow::new(0);
        assert!(w.insert(k(1)) && w.insert(k(1)));
        assert!(w.is_empty() && !w.contains(&k(1)));
        assert_eq!(DedupWindow::default().len(), 0);
    }

    #[test]
    fn clear_forgets() {
        let mut w = DedupWindow::new(2);
        w.insert(k(1));
        w.insert(k(2));
        w.clear();
        assert!(w.is_empty() && !w.contains(&k(1)));
        assert!(w.insert(k(1)) && w.insert(k(2)) && w.insert(k(3)));
        assert_eq!(w.len(), 2);
    }

    #[cfg(not(target_arch = "wasm32"))]
    proptest::proptest! {
        #[test]
        fn bounded_and_recent_keys_detected(keys in proptest::collection::vec(0u32..60, 0..400), cap in 0usize..25) {
            let mut w = DedupWindow::new(cap);
            // The model: the last `cap` distinct insertions, oldest first.
            let mut recent: VecDeque<u32> = VecDeque::new();
            for key in keys {
                let new = w.insert(k(key));
                proptest::prop_assert_eq!(new, !recent.contains(&key));
                if new && cap > 0 {
                    recent.push_back(key);
                    if recent.len() > cap {
                        recent.pop_front();
                    }
                }
                proptest::prop_assert!(w.len() <= cap);
                proptest::prop_assert_eq!(w.len(), recent.len());
                for r in &recent {
                    proptest::prop_assert!(w.contains(&k(*r)));
                }
            }
        }
    }
}
