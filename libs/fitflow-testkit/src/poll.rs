//! The one polling helper: tests wait for an outcome, never for a duration.

use std::time::{Duration, Instant};

/// How often [`eventually`] looks again.
const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// Waits until `condition` returns true, looking every 50 ms, and panics
/// naming `what` once `deadline` has passed. Give a generous deadline: it
/// bounds a failing test, it is not a performance assertion.
pub async fn eventually(what: &str, deadline: Duration, mut condition: impl AsyncFnMut() -> bool) {
    let started = Instant::now();
    loop {
        if condition().await {
            return;
        }
        if started.elapsed() > deadline {
            panic!("timed out after {deadline:?} waiting until {what}");
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}
