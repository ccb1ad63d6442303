//! Revocations pushed by identity (DESIGN.md §4): the set a verifier keeps
//! in memory, and the task that follows identity's stream into it.
//!
//! Identity streams revoked sessions, disabled (suspended or deleted)
//! accounts and users whose structure claims went stale, each with the last
//! moment a token it refuses could still be valid. A [`RevocationFollower`]
//! subscribes with the last position it applied, so after any break (identity
//! restarting, a network fault, a silent stream) it resubscribes with backoff
//! and is replayed what it missed. Until the first replay has arrived the
//! verifier cannot tell a revoked token from a good one, so it fails closed.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use futures::StreamExt as _;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use tokio::sync::watch;
use uuid::Uuid;

use crate::verifier::{Claims, TokenError};

/// How long a stream may stay silent before it is taken for dead (identity
/// sends a heartbeat at least every 15 seconds).
pub const STREAM_IDLE_LIMIT: Duration = Duration::from_secs(45);
/// The first delay before resubscribing after a failure.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
/// The longest delay between two attempts.
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// How long subscribing may take before the attempt counts as failed.
const SUBSCRIBE_TIMEOUT: Duration = Duration::from_secs(10);
/// How often expired entries are swept out of memory, at most.
const PRUNE_EVERY_SECONDS: i64 = 30;

/// One entry of identity's stream, as the verifier uses it. Times are
/// seconds since the epoch, like a token's `iat` and `exp`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revocation {
    /// Every token of this session (`sid`) is refused: TOKEN_REVOKED.
    SessionRevoked {
        /// The session.
        session_id: Uuid,
        /// When the entry can be forgotten.
        expires_at: i64,
    },
    /// Tokens of this user (`sub`) issued before `issued_before` are
    /// refused: the account was suspended or deleted (TOKEN_REVOKED).
    UserDisabled {
        /// The user.
        user_id: Uuid,
        /// Tokens whose `iat` is earlier are refused.
        issued_before: i64,
        /// When the entry can be forgotten.
        expires_at: i64,
    },
    /// Tokens of this user issued before `issued_before` carry stale
    /// structure claims (TOKEN_STALE).
    ClaimsStale {
        /// The user.
        user_id: Uuid,
        /// Tokens whose `iat` is earlier are refused.
        issued_before: i64,
        /// When the entry can be forgotten.
        expires_at: i64,
    },
}

/// One response of the stream: new entries (none in a heartbeat) and the
/// position to resubscribe from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RevocationBatch {
    /// New entries, oldest first.
    pub revocations: Vec<Revocation>,
    /// The position reached; pass it when resubscribing.
    pub position: i64,
    /// Every entry committed before the subscription has now been sent.
    pub caught_up: bool,
}

/// An open subscription: batches until it ends or fails.
pub type RevocationStream = BoxStream<'static, Result<RevocationBatch, String>>;

/// Subscribes to identity's stream after a position (over gRPC for every
/// service; a test may feed its own).
pub type RevocationSource =
    Arc<dyn Fn(i64) -> BoxFuture<'static, Result<RevocationStream, String>> + Send + Sync>;

/// A "tokens issued before" mark and how long it matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Mark {
    issued_before: i64,
    expires_at: i64,
}

impl Mark {
    /// Two marks of one user in one: the later cut-off, kept as long as
    /// either matters.
    fn merge(self, other: Mark) -> Mark {
        Mark {
            issued_before: self.issued_before.max(other.issued_before),
            expires_at: self.expires_at.max(other.expires_at),
        }
    }

    fn refuses(self, issued_at: i64, now: i64) -> bool {
        issued_at < self.issued_before && now < self.expires_at
    }
}

/// The revocations a verifier knows, and the position it reached.
#[derive(Debug, Default)]
pub(crate) struct RevocationSet {
    sessions: HashMap<Uuid, i64>,
    disabled: HashMap<Uuid, Mark>,
    stale: HashMap<Uuid, Mark>,
    position: i64,
    caught_up: bool,
    pruned_at: i64,
    /// Whether stale claims are refused here (not in services that never
    /// authorize from them).
    refuse_stale: bool,
}

impl RevocationSet {
    pub(crate) fn new(refuse_stale: bool) -> Self {
        Self {
            refuse_stale,
            ..Self::default()
        }
    }

    /// Adds a batch's entries and moves to its position; applying an entry
    /// twice changes nothing.
    pub(crate) fn apply(&mut self, batch: RevocationBatch, now: i64) {
        for revocation in batch.revocations {
            match revocation {
                Revocation::SessionRevoked {
                    session_id,
                    expires_at,
                } => {
                    let kept = self.sessions.entry(session_id).or_insert(expires_at);
                    *kept = (*kept).max(expires_at);
                }
                Revocation::UserDisabled {
                    user_id,
                    issued_before,
                    expires_at,
                } => merge_mark(&mut self.disabled, user_id, issued_before, expires_at),
                Revocation::ClaimsStale {
                    user_id,
                    issued_before,
                    expires_at,
                } => merge_mark(&mut self.stale, user_id, issued_before, expires_at),
            }
        }
        self.position = batch.position;
        self.caught_up |= batch.caught_up;
        if now - self.pruned_at >= PRUNE_EVERY_SECONDS {
            self.prune(now);
        }
    }

    /// Forgets entries past their expiry.
    fn prune(&mut self, now: i64) {
        self.sessions.retain(|_, expires_at| *expires_at > now);
        self.disabled.retain(|_, mark| mark.expires_at > now);
        self.stale.retain(|_, mark| mark.expires_at > now);
        self.pruned_at = now;
    }

    /// TOKEN_REVOKED for a revoked session or a disabled account,
    /// TOKEN_STALE for stale claims (where refused), else nothing.
    pub(crate) fn check(&self, claims: &Claims, now: i64) -> Result<(), TokenError> {
        if self
            .sessions
            .get(&claims.sid)
            .is_some_and(|expires_at| now < *expires_at)
        {
            return Err(TokenError::Revoked);
        }
        if self
            .disabled
            .get(&claims.sub)
            .is_some_and(|mark| mark.refuses(claims.iat, now))
        {
            return Err(TokenError::Revoked);
        }
        if self.refuse_stale
            && self
                .stale
                .get(&claims.sub)
                .is_some_and(|mark| mark.refuses(claims.iat, now))
        {
            return Err(TokenError::Stale);
        }
        Ok(())
    }

    pub(crate) fn position(&self) -> i64 {
        self.position
    }

    pub(crate) fn caught_up(&self) -> bool {
        self.caught_up
    }

    /// How many entries are held (sessions, disabled users, stale users).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.sessions.len() + self.disabled.len() + self.stale.len()
    }
}

fn merge_mark(marks: &mut HashMap<Uuid, Mark>, user_id: Uuid, issued_before: i64, expires_at: i64) {
    let mark = Mark {
        issued_before,
        expires_at,
    };
    marks
        .entry(user_id)
        .and_modify(|kept| *kept = kept.merge(mark))
        .or_insert(mark);
}

/// The set shared by a verifier and its follower.
pub(crate) struct SharedRevocations {
    set: RwLock<RevocationSet>,
    /// Turns true once the first replay has been applied.
    caught_up: watch::Sender<bool>,
}

impl SharedRevocations {
    pub(crate) fn new(refuse_stale: bool) -> Self {
        Self {
            set: RwLock::new(RevocationSet::new(refuse_stale)),
            caught_up: watch::Sender::new(false),
        }
    }

    /// Checks `claims`, waiting up to `wait` for the first replay.
    pub(crate) async fn check(&self, claims: &Claims, wait: Duration) -> Result<(), TokenError> {
        if !*self.caught_up.borrow() {
            let mut caught_up = self.caught_up.subscribe();
            let arrived = matches!(
                tokio::time::timeout(wait, caught_up.wait_for(|done| *done)).await,
                Ok(Ok(_))
            );
            if !arrived {
                return Err(TokenError::RevocationsUnavailable);
            }
        }
        self.read().check(claims, unix_now())
    }

    fn apply(&self, batch: RevocationBatch) {
        let caught_up = {
            let mut set = self.set.write().unwrap_or_else(PoisonError::into_inner);
            set.apply(batch, unix_now());
            set.caught_up()
        };
        if caught_up {
            self.caught_up
                .send_if_modified(|done| !std::mem::replace(done, true));
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, RevocationSet> {
        self.set.read().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Follows identity's revocation stream into a verifier's set; see
/// [`crate::TokenVerifier::with_revocations`].
pub struct RevocationFollower {
    pub(crate) shared: Arc<SharedRevocations>,
    pub(crate) source: RevocationSource,
}

impl RevocationFollower {
    /// Subscribes, applies every batch, and resubscribes from the last
    /// position after any break, with backoff; returns when `shutdown`
    /// completes.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut failures: u32 = 0;
        loop {
            let position = self.shared.read().position();
            let outcome = tokio::select! {
                () = &mut shutdown => return,
                outcome = self.follow_once(position, &mut failures) => outcome,
            };
            match outcome {
                Ok(()) => tracing::info!("the revocation stream ended; resubscribing"),
                Err(error) if failures <= 1 => {
                    tracing::warn!(%error, "the revocation stream broke; resubscribing with backoff");
                }
                Err(error) => tracing::debug!(%error, failures, "resubscribing to revocations"),
            }
            let delay = backoff_delay(failures);
            failures = failures.saturating_add(1);
            tokio::select! {
                () = &mut shutdown => return,
                () = tokio::time::sleep(delay) => {}
            }
        }
    }

    /// One subscription, until it ends (Ok) or fails. A batch received
    /// resets `failures`, so a healthy stream that ends resubscribes at once.
    async fn follow_once(&self, position: i64, failures: &mut u32) -> Result<(), String> {
        let mut stream = tokio::time::timeout(SUBSCRIBE_TIMEOUT, (self.source)(position))
            .await
            .map_err(|_| "subscribing timed out".to_owned())??;
        loop {
            let next = tokio::time::timeout(STREAM_IDLE_LIMIT, stream.next())
                .await
                .map_err(|_| "the stream fell silent".to_owned())?;
            match next {
                None => return Ok(()),
                Some(batch) => {
                    let batch = batch?;
                    *failures = 0;
                    self.shared.apply(batch);
                }
            }
        }
    }
}

/// The delay before attempt `failures + 1`: doubling from [`BACKOFF_MIN`]
/// up to [`BACKOFF_MAX`].
fn backoff_delay(failures: u32) -> Duration {
    BACKOFF_MIN
        .saturating_mul(2u32.saturating_pow(failures.min(16)))
        .min(BACKOFF_MAX)
}

pub(crate) fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(sub: Uuid, sid: Uuid, iat: i64) -> Claims {
        Claims {
            iss: crate::ISSUER.into(),
            aud: crate::AUDIENCE.into(),
            sub,
            sid,
            roles: vec!["trainer".into()],
            sup: vec![],
            iat,
            exp: iat + 900,
            jti: Uuid::new_v4(),
            amr: vec![],
            studios: vec![],
            claims_truncated: false,
            claims_partial: false,
        }
    }

    fn batch(revocations: Vec<Revocation>, position: i64) -> RevocationBatch {
        RevocationBatch {
            revocations,
            position,
            caught_up: true,
        }
    }

    const NOW: i64 = 1_000_000;

    #[test]
    fn every_token_of_a_revoked_session_is_refused_until_the_entry_expires() {
        let (user, session) = (Uuid::new_v4(), Uuid::new_v4());
        let mut set = RevocationSet::new(true);
        set.apply(
            batch(
                vec![Revocation::SessionRevoked {
                    session_id: session,
                    expires_at: NOW + 960,
                }],
                7,
            ),
            NOW,
        );
        assert_eq!(set.position(), 7);
        assert_eq!(
            set.check(&claims(user, session, NOW - 10), NOW),
            Err(TokenError::Revoked)
        );
        assert_eq!(
            set.check(&claims(user, Uuid::new_v4(), NOW - 10), NOW),
            Ok(())
        );
        assert_eq!(set.check(&claims(user, session, NOW), NOW + 960), Ok(()));
    }

    #[test]
    fn a_disabled_user_loses_older_tokens_but_not_those_issued_after_a_restore() {
        let (user, session) = (Uuid::new_v4(), Uuid::new_v4());
        let mut set = RevocationSet::new(true);
        set.apply(
            batch(
                vec![Revocation::UserDisabled {
                    user_id: user,
                    issued_before: NOW,
                    expires_at: NOW + 960,
                }],
                1,
            ),
            NOW,
        );
        assert_eq!(
            set.check(&claims(user, session, NOW - 1), NOW),
            Err(TokenError::Revoked)
        );
        assert_eq!(set.check(&claims(user, session, NOW), NOW), Ok(()));
    }

    #[test]
    fn stale_claims_are_refused_only_where_they_are_used() {
        let user = Uuid::new_v4();
        let stale = Revocation::ClaimsStale {
            user_id: user,
            issued_before: NOW,
            expires_at: NOW + 960,
        };
        let token = claims(user, Uuid::new_v4(), NOW - 1);
        let mut refusing = RevocationSet::new(true);
        refusing.apply(batch(vec![stale.clone()], 1), NOW);
        assert_eq!(refusing.check(&token, NOW), Err(TokenError::Stale));
        assert_eq!(
            refusing.check(&claims(user, Uuid::new_v4(), NOW), NOW),
            Ok(()),
            "a token issued at the mark is fresh"
        );
        let mut ignoring = RevocationSet::new(false);
        ignoring.apply(batch(vec![stale], 1), NOW);
        assert_eq!(ignoring.check(&token, NOW), Ok(()));
    }

    #[test]
    fn two_marks_of_one_user_keep_the_later_cut_off_and_the_longer_life() {
        let user = Uuid::new_v4();
        let mut set = RevocationSet::new(true);
        set.apply(
            batch(
                vec![
                    Revocation::ClaimsStale {
                        user_id: user,
                        issued_before: NOW + 5,
                        expires_at: NOW + 965,
                    },
                    Revocation::ClaimsStale {
                        user_id: user,
                        issued_before: NOW,
                        expires_at: NOW + 960,
                    },
                ],
                2,
            ),
            NOW,
        );
        assert_eq!(
            set.check(&claims(user, Uuid::new_v4(), NOW + 4), NOW + 962),
            Err(TokenError::Stale)
        );
    }

    #[test]
    fn applying_a_replay_again_changes_nothing() {
        let user = Uuid::new_v4();
        let entries = vec![Revocation::UserDisabled {
            user_id: user,
            issued_before: NOW,
            expires_at: NOW + 960,
        }];
        let mut set = RevocationSet::new(true);
        set.apply(batch(entries.clone(), 3), NOW);
        set.apply(batch(entries, 3), NOW);
        assert_eq!(set.len(), 1);
    }

    #[test]
    fn expired_entries_are_swept_out() {
        let mut set = RevocationSet::new(true);
        set.apply(
            batch(
                vec![Revocation::SessionRevoked {
                    session_id: Uuid::new_v4(),
                    expires_at: NOW + 10,
                }],
                1,
            ),
            NOW,
        );
        set.apply(batch(vec![], 1), NOW + PRUNE_EVERY_SECONDS + 11);
        assert_eq!(set.len(), 0);
    }

    #[test]
    fn backoff_doubles_up_to_its_ceiling() {
        assert_eq!(backoff_delay(0), BACKOFF_MIN);
        assert_eq!(backoff_delay(1), BACKOFF_MIN * 2);
        assert_eq!(backoff_delay(40), BACKOFF_MAX);
    }
}
