//! Ordered maps and sets kept as sorted vectors.
//!
//! The client's maps are small (a few namespaces, the rooms a user joined, the acks in flight,
//! whose ids only grow so inserts land at the end) and iterate in key order, which keeps the
//! state machine deterministic. A sorted `Vec` with binary search gives the same order as a
//! `BTreeMap` for a fraction of the code: in the browser build, where every instantiation of the
//! B-tree's node code ends up in the `.wasm`, that is about 20 KB.

use std::borrow::Borrow;

/// A map ordered by key: binary-search lookup, in-order iteration.
///
/// Keys and values are kept in two vectors side by side, so the search (and the key vector's
/// code) is compiled once per key type, not once per map: every string-keyed map shares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct VecMap<K, V> {
    keys: Vec<K>,
    values: Vec<V>,
}

impl<K, V> Default for VecMap<K, V> {
    fn default() -> Self {
        VecMap { keys: Vec::new(), values: Vec::new() }
    }
}

/// Where `key` is in the sorted `keys` (`Ok`), or where it would go (`Err`).
fn find<K: Borrow<Q>, Q: Ord + ?Sized>(keys: &[K], key: &Q) -> Result<usize, usize> {
    // Keys usually arrive in order (ack ids): check the end first.
    match keys.last() {
        Some(last) if last.borrow() < key => Err(keys.len()),
        _ => keys.binary_search_by(|k| k.borrow().cmp(key)),
    }
}

impl<K: Ord, V> VecMap<K, V> {
    /// An empty map.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Inserts `value` under `key`; returns the value it replaced.
    pub(crate) fn insert(&mut self, key: K, value: V) -> Option<V> {
        match find(&self.keys, &key) {
            Ok(i) => self.values.get_mut(i).map(|slot| std::mem::replace(slot, value)),
            Err(i) => {
                self.keys.insert(i, key);
                self.values.insert(i, value);
                None
            }
        }
    }

    /// The value under `key`.
    pub(crate) fn get<Q: Ord + ?Sized>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
    {
        self.values.get(find(&self.keys, key).ok()?)
    }

    /// The value under `key`, mutably.
    pub(crate) fn get_mut<Q: Ord + ?Sized>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
    {
        self.values.get_mut(find(&self.keys, key).ok()?)
    }

    /// The value under `key`, inserted with `default()` when missing.
    pub(crate) fn get_or_insert_with(&mut self, key: K, default: impl FnOnce() -> V) -> &mut V {
        let i = match find(&self.keys, &key) {
            Ok(i) => i,
            Err(i) => {
                self.keys.insert(i, key);
                self.values.insert(i, default());
                i
            }
        };
        // `i` is in bounds: it was found or just inserted.
        #[allow(clippy::indexing_slicing)]
        &mut self.values[i]
    }

    /// Whether `key` is in the map.
    pub(crate) fn contains_key<Q: Ord + ?Sized>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
    {
        find(&self.keys, key).is_ok()
    }

    /// Removes `key`; returns its value.
    pub(crate) fn remove<Q: Ord + ?Sized>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
    {
        let i = find(&self.keys, key).ok()?;
        self.keys.remove(i);
        Some(self.values.remove(i))
    }

    /// The number of entries.
    pub(crate) fn len(&self) -> usize {
        self.keys.len()
    }

    /// Entries in key order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.keys.iter().zip(&self.values)
    }

    /// Keys in order.
    pub(crate) fn keys(&self) -> impl Iterator<Item = &K> {
        self.keys.iter()
    }

    /// Values in key order.
    pub(crate) fn values(&self) -> impl Iterator<Item = &V> {
        self.values.iter()
    }

    /// Values in key order, mutably.
    pub(crate) fn values_mut(&mut self) -> impl Iterator<Item = &mut V> {
        self.values.iter_mut()
    }
}

impl<K, V> IntoIterator for VecMap<K, V> {
    type Item = (K, V);
    type IntoIter = std::iter::Zip<std::vec::IntoIter<K>, std::vec::IntoIter<V>>;

    fn into_iter(self) -> Self::IntoIter {
        self.keys.into_iter().zip(self.values)
    }
}

/// A set ordered by value, kept as a sorted vector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct VecSet<T>(VecMap<T, ()>);

impl<T> Default for VecSet<T> {
    fn default() -> Self {
        VecSet(VecMap::default())
    }
}

impl<T: Ord> VecSet<T> {
    /// An empty set.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Adds `value`; false when it was there already.
    pub(crate) fn insert(&mut self, value: T) -> bool {
        self.0.insert(value, ()).is_none()
    }

    /// Removes `value`; false when it was not there.
    pub(crate) fn remove<Q: Ord + ?Sized>(&mut self, value: &Q) -> bool
    where
        T: Borrow<Q>,
    {
        self.0.remove(value).is_some()
    }

    /// Whether `value` is in the set (the client only inserts, removes and lists).
    #[cfg(test)]
    pub(crate) fn contains<Q: Ord + ?Sized>(&self, value: &Q) -> bool
    where
        T: Borrow<Q>,
    {
        self.0.contains_key(value)
    }

    /// Values in order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &T> {
        self.0.keys()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn behaves_like_a_btreemap() {
        // A fixed pseudo-random sequence of inserts and removes, checked against BTreeMap.
        let mut ours = VecMap::new();
        let mut theirs = BTreeMap::new();
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for step in 0..5_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let key = x % 97;
            match x % 3 {
                0 => assert_eq!(ours.remove(&key), theirs.remove(&key), "step {step}"),
                1 => assert_eq!(ours.insert(key, step), theirs.insert(key, step), "step {step}"),
                _ => {
                    *ours.get_or_insert_with(key, || 0) += 1;
                    *theirs.entry(key).or_insert(0) += 1;
                }
            }
            assert_eq!(ours.get(&key), theirs.get(&key));
            assert_eq!(ours.contains_key(&key), theirs.contains_key(&key));
            assert_eq!(ours.len(), theirs.len());
        }
        let a: Vec<_> = ours.iter().map(|(k, v)| (*k, *v)).collect();
        let b: Vec<_> = theirs.iter().map(|(k, v)| (*k, *v)).collect();
        assert_eq!(a, b, "same contents, same order");
        assert_eq!(ours.into_iter().collect::<Vec<_>>(), theirs.into_iter().collect::<Vec<_>>());
    }

    #[test]
    fn set_and_borrowed_lookups() {
        let mut rooms: VecSet<String> = VecSet::new();
        assert!(rooms.insert("b".into()));
        assert!(rooms.insert("a".into()));
        assert!(!rooms.insert("a".into()));
        assert!(rooms.contains("a"));
        assert_eq!(rooms.iter().map(String::as_str).collect::<Vec<_>>(), ["a", "b"]);
        assert!(rooms.remove("a"));
        assert!(!rooms.remove("a"));
        assert_eq!(rooms.iter().count(), 1);
        let mut m: VecMap<String, u8> = VecMap::new();
        m.insert("x".into(), 1);
        assert_eq!(m.get("x"), Some(&1));
        *m.get_mut("x").unwrap_or(&mut 0) = 2;
        assert_eq!(m.values().copied().collect::<Vec<_>>(), [2]);
    }
}
