//! The one gate every argon2id computation passes through: login,
//! registration, password change and reset, MFA disable, and the decoy for
//! unknown emails. Each hash takes 19 MiB for about 15 ms of one core, so
//! at most one per two cores runs at once, a short queue waits behind them,
//! and beyond the queue a call is refused at once with RESOURCE_EXHAUSTED
//! and a retry hint — memory stays bounded (workers × 19 MiB) however many
//! requests arrive, other users keep at least half the cores, and no caller
//! holds a database connection or row lock meanwhile (the use cases hash
//! outside their transactions).

use std::panic::AssertUnwindSafe;
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::IdentityError;
use crate::domain::{self, HashMemory};

/// How long a refused caller is told to wait.
const RETRY_AFTER: Duration = Duration::from_secs(1);
/// Waiting calls allowed per running one.
const QUEUE_PER_WORKER: usize = 8;

/// A hash (or a test's stand-in) for a worker thread to run.
type Job = Box<dyn FnOnce(&mut HashMemory) + Send>;

/// Bounds concurrent argon2id work.
///
/// The hashes run on the gate's own threads, one per worker, each hashing
/// in the one [`HashMemory`] it keeps: argon2id's 19 MiB allocated per hash
/// stayed resident after each (measured: 30 logins took the process from
/// 68 to 392 MiB, never returned), so memory is allocated once per worker
/// and stays at workers × 19 MiB however many hashes run.
#[derive(Debug, Clone)]
pub(crate) struct PasswordHashing {
    /// One permit per hash allowed to run or wait.
    admitted: Arc<Semaphore>,
    /// The workers' queue; they stop when the last clone is dropped.
    jobs: Sender<Job>,
}

impl PasswordHashing {
    /// `workers` hashes at once and `queue` more waiting.
    pub(crate) fn new(workers: usize, queue: usize) -> Self {
        let workers = workers.max(1);
        let (jobs, waiting) = std::sync::mpsc::channel::<Job>();
        let waiting = Arc::new(Mutex::new(waiting));
        for index in 0..workers {
            let waiting = Arc::clone(&waiting);
            let spawned = std::thread::Builder::new()
                .name(format!("argon2id-{index}"))
                .spawn(move || work_through(&waiting));
            if let Err(error) = spawned {
                // Fewer workers only slow hashing down; with none, every
                // call fails (the queue has no reader) instead of hanging.
                tracing::error!(%error, "could not start a password hashing thread");
            }
        }
        Self {
            admitted: Arc::new(Semaphore::new(workers + queue)),
            jobs,
        }
    }

    /// One worker per two cores (at least one), so hashing never takes more
    /// than half the machine from everyone else's requests — measured on 2
    /// cores, a login flood with a worker per core took another user's
    /// GetCurrentUser to a p99 of 390 ms — and a queue of eight per core.
    pub(crate) fn for_this_machine() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
        Self::new(cores.div_ceil(2), cores * QUEUE_PER_WORKER)
    }

    /// A place in the gate, or RESOURCE_EXHAUSTED at once when it is full.
    /// Callers take it before their other work (limits, lookups), so a
    /// flood beyond the queue costs no database work.
    pub(crate) fn admit(&self) -> Result<Admission, IdentityError> {
        let permit = Arc::clone(&self.admitted)
            .try_acquire_owned()
            .map_err(|_| IdentityError::HashingBusy {
                retry_after: RETRY_AFTER,
            })?;
        Ok(Admission {
            permit,
            jobs: self.jobs.clone(),
        })
    }

    /// Whether `password` matches the PHC string `stored_hash`.
    pub(crate) async fn verify(
        &self,
        password: String,
        stored_hash: String,
    ) -> Result<bool, IdentityError> {
        self.admit()?.verify(password, stored_hash).await
    }

    /// A new PHC string for `password`.
    pub(crate) async fn hash(&self, password: String) -> Result<String, IdentityError> {
        self.admit()?.hash(password).await
    }

    /// Runs `work` on a worker thread once one is free; refuses at once
    /// when the queue is full. The tests' stand-in for a hash.
    #[cfg(test)]
    pub(crate) async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut HashMemory) -> T + Send + 'static,
    ) -> Result<T, IdentityError> {
        self.admit()?.run(work).await
    }
}

/// A call's place in the gate: one hash, run or waiting.
pub(crate) struct Admission {
    permit: OwnedSemaphorePermit,
    jobs: Sender<Job>,
}

impl Admission {
    /// Whether `password` matches the PHC string `stored_hash`.
    pub(crate) async fn verify(
        self,
        password: String,
        stored_hash: String,
    ) -> Result<bool, IdentityError> {
        self.run(move |memory| domain::verify_password_in(memory, &password, &stored_hash))
            .await
    }

    /// A new PHC string for `password`.
    pub(crate) async fn hash(self, password: String) -> Result<String, IdentityError> {
        self.run(move |memory| domain::hash_password_in(memory, &password))
            .await?
            .map_err(|_| IdentityError::Credentials)
    }

    /// Runs `work` on a worker thread once one is free. The permit travels
    /// with the work, so a caller that gives up does not free a slot its
    /// hash still occupies.
    async fn run<T: Send + 'static>(
        self,
        work: impl FnOnce(&mut HashMemory) -> T + Send + 'static,
    ) -> Result<T, IdentityError> {
        let Self { permit, jobs } = self;
        let (answer, answered) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |memory| {
            let outcome = work(memory);
            drop(permit);
            // The caller may have gone; the hash is simply dropped.
            let _ = answer.send(outcome);
        });
        jobs.send(job).map_err(|_| IdentityError::Credentials)?;
        answered.await.map_err(|_| IdentityError::Credentials)
    }
}

/// A worker's loop: runs queued jobs one at a time until the queue closes.
/// A job that panics fails its own call (its answer is dropped), not the
/// worker.
fn work_through(waiting: &Mutex<Receiver<Job>>) {
    let mut memory = HashMemory::new();
    loop {
        let next = match waiting.lock() {
            Ok(queue) => queue.recv(),
            Err(_) => return,
        };
        let Ok(job) = next else { return };
        let _ = std::panic::catch_unwind(AssertUnwindSafe(|| job(&mut memory)));
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
                    .run(move |_| {
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
        let refused = hashing.run(|_| ()).await;
        assert!(matches!(refused, Err(IdentityError::HashingBusy { .. })));

        for _ in 0..2 {
            release.send(()).expect("release a call");
        }
        for call in held {
            assert!(call.await.expect("the task").is_ok());
        }
        assert!(hashing.run(|_| ()).await.is_ok(), "freed slots admit again");
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
                        .run(move |_| {
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

    #[tokio::test]
    async fn hashes_run_only_on_the_gates_own_threads() {
        let hashing = PasswordHashing::new(2, 100);
        let calls: Vec<_> = (0..40)
            .map(|_| {
                let hashing = hashing.clone();
                tokio::spawn(async move {
                    hashing
                        .run(|_| std::thread::current().name().map(str::to_owned))
                        .await
                })
            })
            .collect();
        let mut threads = std::collections::BTreeSet::new();
        for call in calls {
            let name = call.await.expect("the task").expect("admitted");
            threads.insert(name.expect("a named thread"));
        }
        assert!(threads.len() <= 2, "{threads:?}");
        assert!(threads.iter().all(|name| name.starts_with("argon2id-")));
    }

    #[tokio::test]
    async fn a_panicking_hash_fails_its_call_and_the_worker_goes_on() {
        let hashing = PasswordHashing::new(1, 1);
        let failed = hashing.run::<u8>(|_| panic!("boom")).await;
        assert!(matches!(failed, Err(IdentityError::Credentials)));
        assert_eq!(hashing.run(|_| 7).await.ok(), Some(7));
    }

    /// This process's resident memory in MiB.
    fn resident_mib() -> u64 {
        let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|rest| rest.trim().strip_suffix("kB"))
            .and_then(|kib| kib.trim().parse::<u64>().ok())
            .expect("a VmRSS line")
            / 1024
    }

    #[tokio::test]
    async fn a_worker_hashes_in_the_same_memory_every_time() {
        let hashing = PasswordHashing::new(1, 16);
        let stored = hashing.hash("a password long enough".into()).await.unwrap();
        let before = resident_mib();
        for _ in 0..8 {
            assert!(
                !hashing
                    .verify("a wrong guess".into(), stored.clone())
                    .await
                    .unwrap()
            );
        }
        let grown = resident_mib().saturating_sub(before);
        // Each hash needs 19 MiB; eight fresh allocations left ~150 MiB.
        assert!(
            grown < 19,
            "eight hashes grew resident memory by {grown} MiB"
        );
    }
}
