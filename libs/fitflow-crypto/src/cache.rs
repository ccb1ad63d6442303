//! A small in-memory cache with a time to live and a size bound.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

/// Entries live for `ttl`; when full, an insert first drops expired entries
/// and then, if still full, the oldest one.
#[derive(Debug)]
pub(crate) struct TtlCache<K, V> {
    entries: HashMap<K, (Instant, V)>,
    ttl: Duration,
    capacity: usize,
}

impl<K: Eq + Hash + Clone, V: Clone> TtlCache<K, V> {
    /// An empty cache holding at most `capacity` entries (at least one).
    pub(crate) fn new(ttl: Duration, capacity: usize) -> Self {
        Self {
            entries: HashMap::new(),
            ttl,
            capacity: capacity.max(1),
        }
    }

    /// The live value for `key`, if any.
    pub(crate) fn get(&mut self, key: &K, now: Instant) -> Option<V> {
        let (inserted, value) = self.entries.get(key)?;
        if now.saturating_duration_since(*inserted) < self.ttl {
            return Some(value.clone());
        }
        self.entries.remove(key);
        None
    }

    /// Stores `value` under `key` from `now`.
    pub(crate) fn insert(&mut self, key: K, value: V, now: Instant) {
        if self.ttl.is_zero() {
            return;
        }
        if !self.entries.contains_key(&key) && self.entries.len() >= self.capacity {
            let ttl = self.ttl;
            self.entries
                .retain(|_, (inserted, _)| now.saturating_duration_since(*inserted) < ttl);
            if self.entries.len() >= self.capacity {
                let oldest = self
                    .entries
                    .iter()
                    .min_by_key(|(_, (inserted, _))| *inserted)
                    .map(|(key, _)| key.clone());
                if let Some(oldest) = oldest {
                    self.entries.remove(&oldest);
                }
            }
        }
        self.entries.insert(key, (now, value));
    }

    /// Drops every entry whose key matches.
    pub(crate) fn remove_where(&mut self, mut matches: impl FnMut(&K) -> bool) {
        self.entries.retain(|key, _| !matches(key));
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn an_entry_expires_after_its_time_to_live() {
        let start = Instant::now();
        let mut cache = TtlCache::new(10 * SECOND, 10);
        cache.insert("k", 1, start);
        assert_eq!(cache.get(&"k", start + 9 * SECOND), Some(1));
        assert_eq!(cache.get(&"k", start + 10 * SECOND), None);
        assert_eq!(cache.len(), 0);
    }

    #[test]
    fn a_full_cache_evicts_expired_entries_before_live_ones() {
        let start = Instant::now();
        let mut cache = TtlCache::new(10 * SECOND, 3);
        cache.insert("old", 1, start);
        cache.insert("live-a", 2, start + 8 * SECOND);
        cache.insert("live-b", 3, start + 9 * SECOND);
        let now = start + 11 * SECOND;
        cache.insert("new", 4, now);
        assert_eq!(cache.len(), 3);
        assert_eq!(cache.get(&"live-a", now), Some(2));
        assert_eq!(cache.get(&"live-b", now), Some(3));
        assert_eq!(cache.get(&"new", now), Some(4));
    }

    #[test]
    fn a_full_cache_of_live_entries_evicts_the_oldest() {
        let start = Instant::now();
        let mut cache = TtlCache::new(100 * SECOND, 2);
        cache.insert("first", 1, start);
        cache.insert("second", 2, start + SECOND);
        cache.insert("third", 3, start + 2 * SECOND);
        let now = start + 3 * SECOND;
        assert_eq!(cache.get(&"first", now), None);
        assert_eq!(cache.get(&"second", now), Some(2));
        assert_eq!(cache.get(&"third", now), Some(3));
    }

    #[test]
    fn a_zero_time_to_live_caches_nothing() {
        let now = Instant::now();
        let mut cache = TtlCache::new(Duration::ZERO, 2);
        cache.insert("k", 1, now);
        assert_eq!(cache.get(&"k", now), None);
    }

    #[test]
    fn remove_where_drops_only_matching_entries() {
        let now = Instant::now();
        let mut cache = TtlCache::new(SECOND, 10);
        cache.insert((1, "seal"), 1, now);
        cache.insert((1, "index"), 2, now);
        cache.insert((2, "seal"), 3, now);
        cache.remove_where(|(tenant, _)| *tenant == 1);
        assert_eq!(cache.len(), 1);
        assert_eq!(cache.get(&(2, "seal"), now), Some(3));
    }
}
