//! In-process wake-ups of a schema's relay when an event is recorded.
//!
//! Recording used to `NOTIFY` inside the recording transaction. PostgreSQL
//! serialises every committing transaction that notifies on one database-wide
//! lock held through its WAL flush, and signals every listening backend of
//! the database: audited requests queued behind each other's commits
//! (`pgbench` of GetClient's statement: 745 tx/s at 8 connections with the
//! `NOTIFY`, 2,805 without), and each event woke all seven relays of a
//! one-database stack. Now recording rings this process's bell for its
//! schema instead, and the relay polls as before: an event recorded by a
//! replica whose relay stands by reaches the leading relay at its next poll.
//!
//! [`record`](crate::record) rings before its transaction commits, so a
//! relay woken by a ring that finds nothing looks again shortly after (see
//! the relay's recheck).

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, Weak};

use tokio::sync::Notify;

/// The relays listening in this process, by schema.
static BELLS: LazyLock<Mutex<HashMap<String, Vec<Weak<Notify>>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// Wakes every relay of `schema`'s outbox in this process (a pending wake-up
/// if one is busy). Called after an event was recorded in `schema`.
pub fn ring(schema: &str) {
    let bells = BELLS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(listeners) = bells.get(schema) {
        for listener in listeners.iter().filter_map(Weak::upgrade) {
            listener.notify_one();
        }
    }
}

/// A relay's bell for `schema`; it stops ringing when dropped.
pub(crate) fn listen(schema: &str) -> Arc<Notify> {
    let bell = Arc::new(Notify::new());
    let mut bells = BELLS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let listeners = bells.entry(schema.to_owned()).or_default();
    listeners.retain(|listener| listener.strong_count() > 0);
    listeners.push(Arc::downgrade(&bell));
    bell
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_ring_wakes_every_relay_of_its_schema_and_no_other() {
        let (first, second, other) = (listen("bell_a"), listen("bell_a"), listen("bell_b"));
        ring("bell_a");
        let woken = |bell: &Arc<Notify>| {
            let bell = Arc::clone(bell);
            async move {
                tokio::time::timeout(Duration::from_millis(50), bell.notified())
                    .await
                    .is_ok()
            }
        };
        assert!(woken(&first).await);
        assert!(woken(&second).await);
        assert!(!woken(&other).await);
    }

    #[test]
    fn a_dropped_bell_is_forgotten_at_the_next_listen() {
        drop(listen("bell_c"));
        let _kept = listen("bell_c");
        let bells = BELLS.lock().unwrap();
        assert_eq!(bells["bell_c"].len(), 1);
    }
}
