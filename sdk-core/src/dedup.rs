//! A bounded window of recently seen event keys, so a handler never sees the same event twice
//! after a reconnect, a connection state recovery or a REST feed catch-up replays it.

use std::collections::VecDeque;

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
    seen: KeySet,
}

impl DedupWindow {
    /// A window of `capacity` keys. A capacity of 0 disables de-duplication: every key is new.
    pub fn new(capacity: usize) -> Self {
        Self::with_seed(capacity, 0)
    }

    /// A window whose hash is keyed with `seed` (the client passes its random seed, so which keys
    /// collide depends on a value the server does not know). [`DedupWindow::new`] uses 0.
    pub(crate) fn with_seed(capacity: usize, seed: u64) -> Self {
        DedupWindow { capacity, order: VecDeque::new(), seen: KeySet::new(seed) }
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

/// A hash set of keys: open addressing with linear probing in a power-of-two table at most half
/// full; each entry keeps its hash, so a probe compares text only on a full hash match and growing
/// or removing never hashes again. Removal shifts the entries after the hole back (no tombstones).
///
/// It replaces `std::collections::HashSet`, whose SipHash and hashbrown code cost about 3.5 KB of
/// the browser build for the only two sets the core keeps (this window and the inbox's keys in
/// flight). Look-ups stay O(1) on average. The hash (not a cryptographic one) reads eight bytes
/// at a time and is keyed with a seed the client draws, so a server cannot simply choose keys that
/// share a slot; even if it could, a probe is bounded by the window's size.
#[derive(Debug, Clone, Default)]
pub(crate) struct KeySet {
    /// Empty, or a power of two long: each key with its hash.
    slots: Vec<Option<(usize, DedupKey)>>,
    len: usize,
    seed: u64,
}

impl KeySet {
    pub(crate) fn new(seed: u64) -> Self {
        KeySet { slots: Vec::new(), len: 0, seed }
    }

    fn hash(&self, key: &DedupKey) -> usize {
        const K: u64 = 0x9e37_79b9_7f4a_7c15;
        let (tag, text) = match key {
            DedupKey::Offset(s) => (1, s),
            DedupKey::EnvelopeId(s) => (2, s),
        };
        let mix = |h: u64, w: u64| (h.rotate_left(26) ^ w).wrapping_mul(K);
        let mut h = mix(self.seed, tag);
        let mut words = text.as_bytes().chunks_exact(8);
        for w in &mut words {
            h = mix(h, u64::from_le_bytes(<[u8; 8]>::try_from(w).unwrap_or_default()));
        }
        let tail = words.remainder().iter().fold(0, |t, &b| t << 8 | u64::from(b));
        h = mix(h, tail ^ (text.len() as u64) << 56);
        // A multiply carries only upwards: fold the high half into the bits the mask keeps.
        #[allow(clippy::cast_possible_truncation)]
        let h = (h ^ (h >> 32)) as usize;
        h
    }

    /// The slot holding `key` (hashed `h`), or the empty slot that ends its probe.
    fn probe(&self, key: &DedupKey, h: usize) -> (usize, bool) {
        let mask = self.slots.len().wrapping_sub(1);
        let mut i = h & mask;
        // At most half the slots are taken, so an empty one ends every probe.
        while let Some(Some((kh, k))) = self.slots.get(i) {
            if *kh == h && k == key {
                return (i, true);
            }
            i = (i + 1) & mask;
        }
        (i, false)
    }

    pub(crate) fn contains(&self, key: &DedupKey) -> bool {
        !self.slots.is_empty() && self.probe(key, self.hash(key)).1
    }

    /// Adds `key`; false when it was there already.
    pub(crate) fn insert(&mut self, key: DedupKey) -> bool {
        if (self.len + 1) * 2 > self.slots.len() {
            self.grow();
        }
        let h = self.hash(&key);
        let (i, found) = self.probe(&key, h);
        if found {
            return false;
        }
        if let Some(slot) = self.slots.get_mut(i) {
            *slot = Some((h, key));
            self.len += 1;
        }
        true
    }

    fn grow(&mut self) {
        let size = (self.slots.len() * 2).max(8);
        let old = std::mem::take(&mut self.slots);
        self.slots.resize_with(size, || None);
        for (h, key) in old.into_iter().flatten() {
            // The keys are distinct: the probe ends at an empty slot.
            let (i, _) = self.probe(&key, h);
            if let Some(slot) = self.slots.get_mut(i) {
                *slot = Some((h, key));
            }
        }
    }

    /// Removes `key`; false when it was not there.
    pub(crate) fn remove(&mut self, key: &DedupKey) -> bool {
        if self.slots.is_empty() {
            return false;
        }
        let (mut hole, found) = self.probe(key, self.hash(key));
        if !found {
            return false;
        }
        if let Some(slot) = self.slots.get_mut(hole) {
            *slot = None;
        }
        self.len -= 1;
        // Move back each following entry of the run whose probe passes the hole, so every probe
        // still reaches its key before an empty slot.
        let mask = self.slots.len() - 1;
        let mut j = hole;
        loop {
            j = (j + 1) & mask;
            let Some(Some((h, _))) = self.slots.get(j) else { break };
            if (j.wrapping_sub(*h) & mask) >= (j.wrapping_sub(hole) & mask) {
                let moved = self.slots.get_mut(j).and_then(Option::take);
                if let Some(slot) = self.slots.get_mut(hole) {
                    *slot = moved;
                }
                hole = j;
            }
        }
        true
    }

    pub(crate) fn clear(&mut self) {
        self.slots.iter_mut().for_each(|s| *s = None);
        self.len = 0;
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

    #[test]
    fn key_set_grows_and_removes_within_runs() {
        let mut set = KeySet::new(7);
        for i in 0..1000 {
            assert!(set.insert(k(i)));
        }
        assert!(!set.insert(k(999)) && set.len == 1000);
        for i in (0..1000).step_by(2) {
            assert!(set.remove(&k(i)));
        }
        assert!(!set.remove(&k(0)));
        for i in 0..1000 {
            assert_eq!(set.contains(&k(i)), i % 2 == 1, "{i}");
        }
        set.clear();
        assert!(!set.contains(&k(1)) && set.len == 0);
    }

    #[cfg(not(target_arch = "wasm32"))]
    proptest::proptest! {
        /// Against `std::collections::HashSet`, over few keys (long probe runs, many shifts on removal).
        #[test]
        fn key_set_is_a_set(ops in proptest::collection::vec((0u8..3, 0u32..40, proptest::bool::ANY), 0..600), seed in proptest::num::u64::ANY) {
            let mut ours = KeySet::new(seed);
            let mut theirs = std::collections::HashSet::new();
            for (op, n, envelope) in ops {
                let key = if envelope { DedupKey::EnvelopeId(n.to_string()) } else { k(n) };
                match op {
                    0 => proptest::prop_assert_eq!(ours.insert(key.clone()), theirs.insert(key)),
                    1 => proptest::prop_assert_eq!(ours.remove(&key), theirs.remove(&key)),
                    _ => proptest::prop_assert_eq!(ours.contains(&key), theirs.contains(&key)),
                }
                proptest::prop_assert_eq!(ours.len, theirs.len());
            }
            for key in &theirs {
                proptest::prop_assert!(ours.contains(key));
            }
        }

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
