//! Wake-ups from PostgreSQL `NOTIFY`, read by a task of their own (the
//! relays here, and services' own relays of the same shape).
//!
//! A relay used to read its `LISTEN` connection only while it waited for
//! work. During a long delivery or a backoff nobody read it, so a burst of
//! commits filled the socket, the server process blocked writing to it, and
//! a blocked process cannot answer PostgreSQL's process-wide barriers: every
//! `DROP DATABASE` in the cluster waited behind one busy relay (seen under a
//! pgbench load). Here a task drains the connection continuously and turns
//! any number of notifications into one pending wake-up.

use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// One pending wake-up per burst of notifications on a channel.
pub struct Wakeups {
    notify: Arc<Notify>,
    task: JoinHandle<()>,
}

impl Wakeups {
    /// Listens on `channel` until `shutdown`; reconnects after `retry`.
    pub fn spawn(
        pool: PgPool,
        channel: &'static str,
        what: &'static str,
        retry: Duration,
        shutdown: CancellationToken,
    ) -> Self {
        let notify = Arc::new(Notify::new());
        let task = tokio::spawn(listen(
            pool,
            channel,
            what,
            retry,
            shutdown,
            Arc::clone(&notify),
        ));
        Self { notify, task }
    }

    /// Returns once a notification arrived since the last call (at once if
    /// one is pending).
    pub async fn notified(&self) {
        self.notify.notified().await;
    }
}

impl Drop for Wakeups {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn listen(
    pool: PgPool,
    channel: &'static str,
    what: &'static str,
    retry: Duration,
    shutdown: CancellationToken,
    notify: Arc<Notify>,
) {
    while !shutdown.is_cancelled() {
        let connected = async {
            let mut listener = PgListener::connect_with(&pool).await?;
            listener.listen(channel).await?;
            Ok::<_, sqlx::Error>(listener)
        }
        .await;
        match connected {
            Ok(mut listener) => {
                // A commit may have landed before LISTEN took effect: look once.
                notify.notify_one();
                loop {
                    tokio::select! {
                        () = shutdown.cancelled() => return,
                        received = listener.recv() => match received {
                            Ok(_) => {
                                while listener.next_buffered().is_some() {}
                                notify.notify_one();
                            }
                            Err(error) => {
                                tracing::warn!(%error, relay = what, "lost the outbox notification connection; polling until it is back");
                                break;
                            }
                        },
                    }
                }
            }
            Err(error) => {
                tracing::warn!(%error, relay = what, "cannot listen for outbox writes; polling");
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(retry) => {}
        }
    }
}
