//! The revocation stream (`WatchRevocations`): every subscriber reads
//! `revocations` after its position, then waits for the next commit. One
//! listener per process hears PostgreSQL's notifications and wakes every
//! subscriber; each also polls, so a lost notification delays an entry by
//! at most [`POLL_INTERVAL`]. The listener also deletes expired entries.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::Stream;
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::IdentityError;
use crate::domain::RevocationKind;
use crate::repo;

/// Entries per response, at most.
const BATCH_SIZE: i64 = 500;
/// How often a subscriber looks for new entries without a notification.
const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// The longest silence on a stream: then an empty response tells the
/// subscriber it is still alive (verifiers give up after 45 s).
const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(15);
/// How often expired entries are deleted.
const PURGE_INTERVAL: Duration = Duration::from_secs(60);
/// How long the listener waits before listening again after a failure.
const RELISTEN_DELAY: Duration = Duration::from_secs(5);

/// One stored entry, as streamed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevocationEntry {
    /// Its position.
    pub position: i64,
    /// What it refuses.
    pub kind: RevocationKind,
    /// The session or user id.
    pub subject_id: Uuid,
    /// Tokens issued before it are refused.
    pub issued_before: DateTime<Utc>,
    /// When it can be forgotten.
    pub expires_at: DateTime<Utc>,
}

/// One response of the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevocationBatch {
    /// New entries, oldest first; none in a heartbeat.
    pub entries: Vec<RevocationEntry>,
    /// The position reached.
    pub position: i64,
    /// Everything committed before the subscription has been sent.
    pub caught_up: bool,
}

/// The stream's shared state: the pool, the wake-up signal and shutdown.
#[derive(Clone)]
pub struct RevocationFeed {
    pool: PgPool,
    /// Bumped by the listener; held here too, so waiting on it never fails
    /// while a feed exists (a feed without a listener just polls).
    wake: Arc<watch::Sender<u64>>,
    shutdown: CancellationToken,
}

impl RevocationFeed {
    /// A feed over `pool` whose streams end when `shutdown` is cancelled,
    /// and the listener task to run beside it (it wakes subscribers and
    /// deletes expired entries).
    pub fn new(
        pool: PgPool,
        shutdown: CancellationToken,
    ) -> (Self, impl Future<Output = ()> + Send + 'static) {
        let wake = Arc::new(watch::Sender::new(0u64));
        let listener = listen(pool.clone(), Arc::clone(&wake), shutdown.clone());
        (
            Self {
                pool,
                wake,
                shutdown,
            },
            listener,
        )
    }

    /// A feed that only polls and never shuts down (use cases built
    /// without the platform, such as the API tests).
    pub(crate) fn polling(pool: PgPool) -> Self {
        Self {
            pool,
            wake: Arc::new(watch::Sender::new(0u64)),
            shutdown: CancellationToken::new(),
        }
    }

    /// The entries after `after`, then new ones as they commit, until
    /// shutdown (the stream ends) or a database failure (its last item).
    pub fn subscribe(
        &self,
        after: i64,
    ) -> impl Stream<Item = Result<RevocationBatch, IdentityError>> + Send + 'static {
        let subscriber = Subscriber {
            wake: self.wake.subscribe(),
            feed: self.clone(),
            position: after,
            started: false,
            caught_up: false,
            last_sent: Instant::now(),
        };
        futures::stream::unfold(Some(subscriber), |state| async move {
            let mut subscriber = state?;
            match subscriber.next_batch().await {
                Ok(Some(batch)) => Some((Ok(batch), Some(subscriber))),
                Ok(None) => None,
                Err(error) => Some((Err(error), None)),
            }
        })
    }
}

/// One subscription's place in the stream.
struct Subscriber {
    feed: RevocationFeed,
    wake: watch::Receiver<u64>,
    position: i64,
    started: bool,
    caught_up: bool,
    last_sent: Instant,
}

impl Subscriber {
    /// The next response; `None` at shutdown.
    async fn next_batch(&mut self) -> Result<Option<RevocationBatch>, IdentityError> {
        if !self.started {
            self.started = true;
            let newest = repo::newest_revocation_id(&mut *self.feed.pool.acquire().await?).await?;
            if self.position > newest {
                // From before a restore of the database: replay it all.
                self.position = 0;
            }
        }
        loop {
            // Seen before reading, so a commit after the read still wakes us.
            self.wake.borrow_and_update();
            let rows = repo::revocations_after(
                &mut *self.feed.pool.acquire().await?,
                self.position,
                BATCH_SIZE,
            )
            .await?;
            let announce = !self.caught_up && (rows.len() as i64) < BATCH_SIZE;
            let heartbeat = self.last_sent.elapsed() >= HEARTBEAT_INTERVAL;
            if !rows.is_empty() || announce || heartbeat {
                self.caught_up |= announce;
                let entries = rows.into_iter().map(entry).collect::<Result<Vec<_>, _>>()?;
                if let Some(last) = entries.last() {
                    self.position = last.position;
                }
                self.last_sent = Instant::now();
                return Ok(Some(RevocationBatch {
                    entries,
                    position: self.position,
                    caught_up: self.caught_up,
                }));
            }
            tokio::select! {
                () = self.feed.shutdown.cancelled() => return Ok(None),
                _ = self.wake.changed() => {}
                () = tokio::time::sleep(POLL_INTERVAL) => {}
            }
        }
    }
}

fn entry(row: repo::RevocationRow) -> Result<RevocationEntry, IdentityError> {
    Ok(RevocationEntry {
        position: row.id,
        kind: RevocationKind::parse(&row.kind).ok_or(IdentityError::Corrupt("revocation kind"))?,
        subject_id: row.subject_id,
        issued_before: row.issued_before,
        expires_at: row.expires_at,
    })
}

/// Hears the notifications of new entries and wakes every subscriber;
/// deletes expired entries now and then. Returns at shutdown.
async fn listen(pool: PgPool, notify: Arc<watch::Sender<u64>>, shutdown: CancellationToken) {
    let mut purge = tokio::time::interval(PURGE_INTERVAL);
    loop {
        let mut listener = match connect(&pool).await {
            Ok(listener) => Some(listener),
            Err(error) => {
                tracing::warn!(%error, "revocation stream polls: cannot listen");
                None
            }
        };
        let listening = listener.is_some();
        loop {
            let heard = async {
                match listener.as_mut() {
                    Some(listening) => listening.recv().await.map(drop),
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = purge.tick() => purge_expired(&pool).await,
                heard = heard => match heard {
                    Ok(()) => notify.send_modify(|count| *count = count.wrapping_add(1)),
                    Err(error) => {
                        tracing::warn!(%error, "revocation listener lost; listening again");
                        break;
                    }
                },
                // Without a listener, try again now and then.
                () = tokio::time::sleep(RELISTEN_DELAY), if !listening => break,
            }
        }
        // Entries may have committed unheard: let subscribers look.
        notify.send_modify(|count| *count = count.wrapping_add(1));
    }
}

async fn connect(pool: &PgPool) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(repo::REVOCATIONS_CHANNEL).await?;
    Ok(listener)
}

async fn purge_expired(pool: &PgPool) {
    let purged = async {
        let mut conn = pool.acquire().await?;
        repo::delete_expired_revocations(&mut conn).await
    }
    .await;
    match purged {
        Ok(0) => {}
        Ok(count) => tracing::debug!(count, "expired revocations deleted"),
        Err(error) => tracing::warn!(%error, "cannot delete expired revocations"),
    }
}
