//! A gate in front of a costly read: at most `running` at once per process,
//! at most `queue` more waiting their turn (holding no memory and no
//! database connection), and the rest refused at once with a retry hint.
//! A flood of one RPC then neither takes the whole database pool from
//! everyone else's requests nor waits out its deadline in a line that never
//! ends: 500 concurrent free-slot searches on a pool of 8 connections timed
//! out waiting for a connection (DATABASE_UNAVAILABLE), and 500 calendar
//! exports behind an unbounded semaphore ran into the 30 s request timeout.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Turns for one kind of costly work.
#[derive(Debug)]
pub struct Gate {
    admitted: Arc<Semaphore>,
    running: Arc<Semaphore>,
    retry_after: Duration,
}

/// A turn: the work runs while it is held.
#[derive(Debug)]
pub struct Turn {
    _admitted: OwnedSemaphorePermit,
    _running: OwnedSemaphorePermit,
}

/// Refused: the gate's line is full; try again after `retry_after`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many at once; retry after {retry_after:?}")]
pub struct Busy {
    /// When a retry has a fair chance.
    pub retry_after: Duration,
}

impl Gate {
    /// `running` at once, `queue` more waiting; refusals hint `retry_after`.
    pub fn new(running: usize, queue: usize, retry_after: Duration) -> Self {
        let running = running.max(1);
        Self {
            admitted: Arc::new(Semaphore::new(running + queue)),
            running: Arc::new(Semaphore::new(running)),
            retry_after,
        }
    }

    /// A turn, once one is free; [`Busy`] at once when the line is full.
    pub async fn enter(&self) -> Result<Turn, Busy> {
        let busy = Busy {
            retry_after: self.retry_after,
        };
        let admitted = Arc::clone(&self.admitted)
            .try_acquire_owned()
            .map_err(|_| busy)?;
        // The semaphores are never closed, so a turn always comes.
        let running = Arc::clone(&self.running)
            .acquire_owned()
            .await
            .map_err(|_| busy)?;
        Ok(Turn {
            _admitted: admitted,
            _running: running,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_caller_within_the_queue_waits_for_a_turn_and_beyond_it_is_refused_with_the_hint() {
        let gate = Arc::new(Gate::new(1, 1, Duration::from_millis(750)));
        let running = gate.enter().await.expect("a free turn");
        let queued = tokio::spawn({
            let gate = Arc::clone(&gate);
            async move { gate.enter().await.map(drop) }
        });
        // The queued caller has taken its place once no admission is left.
        while gate.admitted.available_permits() > 0 {
            tokio::task::yield_now().await;
        }
        let refused = gate.enter().await.expect_err("the line is full");
        assert_eq!(refused.retry_after, Duration::from_millis(750));
        assert!(!queued.is_finished(), "the queued caller waits its turn");
        drop(running);
        queued
            .await
            .expect("joined")
            .expect("the queued caller gets the freed turn");
        // Every turn is back: a new caller runs at once.
        let _again = gate.enter().await.expect("a free turn");
    }
}
