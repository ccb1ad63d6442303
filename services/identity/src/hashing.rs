//! The one gate every argon2id computation passes through: login,
//! registration, password change and reset, MFA disable, and the decoy for
//! unknown emails. Each hash takes 19 MiB for about 15 ms of one core, so
//! at most one per core runs at once, a short queue waits behind them, and
//! beyond the queue a call is refused at once with RESOURCE_EXHAUSTED and a
//! retry hint — memory stays bounded (cores × 19 MiB) however many requests
//! arrive, and no caller holds a database connection or row lock meanwhile
//! (the use cases hash outside their transactions).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

use crate::IdentityError;
use crate::domain;

/// How long a refused caller is told to wait.
const RETRY_AFTER: Duration = Duration::from_secs(1);
/// Waiting calls allowed per running one.
const QUEUE_PER_WORKER: usize = 8;

/// Bounds concurrent argon2id work.
#[derive(Debug, Clone)]
pub(crate) struct PasswordHashing {
    /// One permit per hash allowed to run.
    running: Arc<Semaphore>,
    /// One permit per hash allowed to run or wait.
    admitted: Arc<Semaphore>,
}

impl PasswordHashing {
    /// `workers` hashes at once and `queue` more waiting.
    pub(crate) fn new(workers: usize, queue: usize) -> Self {
        let workers = workers.max(1);
        Self {
            running: Arc::new(Semaphore::new(workers)),
            admitted: Arc::new(Semaphore::new(workers + queue)),
        }
    }

    /// One worker per core, a queue of eight per worker.
    pub(crate) fn for_this_machine() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
        Self::new(cores, cores * QUEUE_PER_WORKER)
    }

    /// Whether `password` matches the PHC string `stored_hash`.
    pub(crate) async fn verify(
        &self,
        password: String,
        stored_hash: String,
    ) -> Result<bool, IdentityError> {
        self.run(move || domain::verify_password(&password, &stored_hash))
            .await
    }

    /// A new PHC string for `password`.
    pub(crate) async fn hash(&self, password: String) -> Result<String, IdentityError> {
        self.run(move || domain::hash_password(&password))
            .await?
            .map_err(|_| IdentityError::Credentials)
    }

    /// Runs `work` on a blocking thread once a worker is free; refuses at
    /// once when the queue is full. The permits travel with the work, so a
    /// caller that gives up does not free a slot its hash still occupies.
    pub(crate) async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, IdentityError> {
        let admitted = Arc::clone(&self.admitted)
            .try_acquire_owned()
            .map_err(|_| IdentityError::HashingBusy {
                retry_after: RETRY_AFTER,
            })?;
        let running = Arc::clone(&self.running)
            .acquire_owned()
            .await
            .map_err(|_| IdentityError::Credentials)?;
        tokio::task::spawn_blocking(move || {
            let _permits = (admitted, running);
            work()
        })
        .await
        .map_err(|_| IdentityError::Credentials)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use super::*;

    #[tokio::test]
    async fn calls_beyond_the_workers_and_the_queue_are_refused_at_once() {
        let hashing = PasswordHashing::new(1, 1);
        let (release, released) = mpsc::channel::<()>();
        let released = Arc::new(std::sync::Mutex::new(released));
        let (started, mut started_rx) = tokio::sync::mpsc::unbounded_channel();
        // One runs (and blocks until released), one waits in the queue.
        let mut held = Vec::new();
        for _ in 0..2 {
            let hashing = hashing.clone();
            let released = Arc::clone(&released);
            let started = started.clone();
            held.push(tokio::spawn(async move {
                hashing
                    .run(move || {
                        let _ = started.send(());
                        let _ = released.lock().map(|receiver| receiver.recv());
                    })
                    .await
            }));
        }
        started_rx.recv().await.expect("the first call runs");
        // Let the second call take its queue slot.
        while hashing.admitted.available_permits() > 0 {
            tokio::task::yield_now().await;
        }
        let refused = hashing.run(|| ()).await;
        assert!(matches!(refused, Err(IdentityError::HashingBusy { .. })));

        for _ in 0..2 {
            release.send(()).expect("release a call");
        }
        for call in held {
            assert!(call.await.expect("the task").is_ok());
        }
        assert!(hashing.run(|| ()).await.is_ok(), "freed slots admit again");
    }

    #[tokio::test]
    async fn at_most_one_hash_per_worker_runs_at_once() {
        let hashing = PasswordHashing::new(2, 100);
        let running = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let peak = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let calls: Vec<_> = (0..40)
            .map(|_| {
                let hashing = hashing.clone();
                let running = Arc::clone(&running);
                let peak = Arc::clone(&peak);
                tokio::spawn(async move {
                    hashing
                        .run(move || {
                            use std::sync::atomic::Ordering::SeqCst;
                            let now = running.fetch_add(1, SeqCst) + 1;
                            peak.fetch_max(now, SeqCst);
                            std::thread::sleep(Duration::from_millis(2));
                            running.fetch_sub(1, SeqCst);
                        })
                        .await
                })
            })
            .collect();
        for call in calls {
            assert!(call.await.expect("the task").is_ok());
        }
        assert!(peak.load(std::sync::atomic::Ordering::SeqCst) <= 2);
    }
}
