//! A map kept as a vector: the driver's maps hold a handful of entries (two sockets, three
//! requests, the acks in flight), and a linear scan costs far less wasm than a hash table.

/// Insertion-ordered key/value pairs with linear lookup.
pub(crate) struct SmallMap<K, V>(Vec<(K, V)>);

impl<K: PartialEq, V> SmallMap<K, V> {
    pub(crate) fn new() -> Self {
        Self(Vec::new())
    }

    /// Inserts or replaces.
    pub(crate) fn insert(&mut self, key: K, value: V) {
        match self.0.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.0.push((key, value)),
        }
    }

    pub(crate) fn get(&self, key: &K) -> Option<&V> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// `get` by a borrowed form of the key (`&str` for `String` keys).
    pub(crate) fn get_ref<Q: ?Sized + PartialEq>(&self, key: &Q) -> Option<&V>
    where
        K: std::borrow::Borrow<Q>,
    {
        self.0.iter().find(|(k, _)| k.borrow() == key).map(|(_, v)| v)
    }

    pub(crate) fn remove(&mut self, key: &K) -> Option<V> {
        let i = self.0.iter().position(|(k, _)| k == key)?;
        Some(self.0.remove(i).1)
    }

    /// The value for `key`, inserted with `default()` when missing (always `Some`).
    pub(crate) fn get_or_insert_with(&mut self, key: K, default: impl FnOnce() -> V) -> Option<&mut V> {
        let i = match self.0.iter().position(|(k, _)| *k == key) {
            Some(i) => i,
            None => {
                self.0.push((key, default()));
                self.0.len() - 1
            }
        };
        self.0.get_mut(i).map(|(_, v)| v)
    }

    /// Removes and returns every value, in insertion order.
    pub(crate) fn drain_values(&mut self) -> impl Iterator<Item = V> + '_ {
        self.0.drain(..).map(|(_, v)| v)
    }

    pub(crate) fn clear(&mut self) {
        self.0.clear();
    }
}
