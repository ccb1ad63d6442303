//! Completing a truncated token (DESIGN.md §4): a token carries at most 256
//! supervised trainer ids and 256 studio ids; beyond, it says
//! `claims_truncated`, and the verifier replaces its lists with tenancy's
//! answer for that user (`GetActingFor`), remembered per user for at most
//! [`STRUCTURE_TTL`].
//!
//! An answer is used only for a token issued before it was fetched, so a
//! token refreshed after a team change never meets an answer from before
//! it. A token's `iat` counts whole seconds, so "before" means an earlier
//! second — or the fetch was made for a request carrying that very token
//! (its session and `iat`), which was issued by then. When tenancy cannot
//! answer, the token's own (shorter) lists stand: fewer rights, never more.
//!
//! Requests that need the same user's answer while it is being fetched wait
//! for that one fetch: a flood of one user's requests asks tenancy once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use futures::FutureExt as _;
use futures::future::{BoxFuture, Shared};
use tokio::time::Instant;
use uuid::Uuid;

use crate::Principal;
use crate::revocation::unix_now;

/// Most ids of each kind a verifier asks tenancy for (tenancy's
/// `GetActingFor` admits up to this `limit`); a user acting for more keeps
/// `claims_truncated` and the first this many.
pub const MAX_ACTING_FOR_IDS: i32 = 10_000;
/// How long an answer from tenancy is used.
pub const STRUCTURE_TTL: Duration = Duration::from_secs(2);
/// After tenancy failed to answer, how long truncated tokens keep their own
/// lists without asking again, so an outage costs every request nothing.
const FAILURE_BACKOFF: Duration = Duration::from_secs(1);
/// Most users remembered (memory bound; a full memory starts again).
const CAPACITY: usize = 4_096;

/// What a user acts for, as tenancy answers it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ActingFor {
    /// The trainers they act for (themselves and everyone below them).
    pub trainer_ids: Vec<Uuid>,
    /// The studios they manage.
    pub studio_ids: Vec<Uuid>,
    /// Whether even this answer was cut.
    pub truncated: bool,
}

/// Asks tenancy what a user acts for.
pub type StructureSource =
    Arc<dyn Fn(Uuid) -> BoxFuture<'static, Result<ActingFor, String>> + Send + Sync>;

/// The token a fetch was made for: its session and `iat`.
type TokenKey = (Uuid, i64);

/// An answer fetched when `fetched_unix` began, for a request with token
/// `fetched_for`: usable for that token and for tokens of earlier seconds.
#[derive(Clone, Copy)]
struct Freshness {
    fetched_unix: i64,
    fetched_for: TokenKey,
}

impl Freshness {
    fn serves(self, token: TokenKey) -> bool {
        self.fetched_unix > token.1 || self.fetched_for == token
    }
}

struct Remembered {
    /// When it was fetched, for [`STRUCTURE_TTL`].
    fetched_at: Instant,
    freshness: Freshness,
    answer: Arc<ActingFor>,
}

/// One fetch from tenancy, awaited by every request that needs it.
type Fetch = Shared<BoxFuture<'static, Result<Arc<ActingFor>, String>>>;

struct InFlight {
    started_at: Instant,
    freshness: Freshness,
    fetch: Fetch,
}

/// Tenancy's answers by user.
pub(crate) struct Structure {
    source: StructureSource,
    answers: RwLock<HashMap<Uuid, Remembered>>,
    in_flight: Mutex<HashMap<Uuid, InFlight>>,
    failed_at: Mutex<Option<Instant>>,
}

impl Structure {
    pub(crate) fn new(source: StructureSource) -> Self {
        Self {
            source,
            answers: RwLock::new(HashMap::new()),
            in_flight: Mutex::new(HashMap::new()),
            failed_at: Mutex::new(None),
        }
    }

    /// Replaces the lists of `principal` (a truncated token issued at
    /// `issued_at`) with tenancy's; leaves them when tenancy cannot say.
    pub(crate) async fn complete(&self, principal: &mut Principal, issued_at: i64) {
        let token = (principal.session_id, issued_at);
        let Some(answer) = self.answer(principal.user_id, token).await else {
            return;
        };
        let user_id = principal.user_id;
        principal.supervised_trainer_ids = answer
            .trainer_ids
            .iter()
            .copied()
            .filter(|id| *id != user_id)
            .collect();
        principal.studio_ids.clone_from(&answer.studio_ids);
        principal.claims_truncated = answer.truncated;
    }

    async fn answer(&self, user_id: Uuid, token: TokenKey) -> Option<Arc<ActingFor>> {
        if let Some(answer) = self.remembered(user_id, token) {
            return Some(answer);
        }
        if self.backing_off() {
            return None;
        }
        let (freshness, fetch) = self.join_or_start(user_id, token);
        let outcome = fetch.clone().await;
        self.finish(user_id, freshness, &fetch, &outcome);
        outcome.ok()
    }

    /// The fetch of `user_id`'s answer that serves `token`: the one under
    /// way, or a new one.
    fn join_or_start(&self, user_id: Uuid, token: TokenKey) -> (Freshness, Fetch) {
        let mut in_flight = self
            .in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(fetching) = in_flight.get(&user_id).filter(|fetching| {
            fetching.freshness.serves(token) && fetching.started_at.elapsed() < STRUCTURE_TTL
        }) {
            return (fetching.freshness, fetching.fetch.clone());
        }
        if in_flight.len() >= CAPACITY {
            in_flight.retain(|_, fetching| fetching.started_at.elapsed() < STRUCTURE_TTL);
        }
        let freshness = Freshness {
            fetched_unix: unix_now(),
            fetched_for: token,
        };
        let fetch = (self.source)(user_id)
            .map(|outcome| outcome.map(Arc::new))
            .boxed()
            .shared();
        in_flight.insert(
            user_id,
            InFlight {
                started_at: Instant::now(),
                freshness,
                fetch: fetch.clone(),
            },
        );
        (freshness, fetch)
    }

    /// Records the outcome of `fetch` once: the first of its waiters to
    /// finish remembers the answer (or starts the backoff).
    fn finish(
        &self,
        user_id: Uuid,
        freshness: Freshness,
        fetch: &Fetch,
        outcome: &Result<Arc<ActingFor>, String>,
    ) {
        {
            let mut in_flight = self
                .in_flight
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let ours = in_flight
                .get(&user_id)
                .is_some_and(|fetching| Shared::ptr_eq(&fetching.fetch, fetch));
            if !ours {
                return;
            }
            in_flight.remove(&user_id);
        }
        match outcome {
            Ok(answer) => self.remember(user_id, freshness, Arc::clone(answer)),
            Err(error) => {
                tracing::warn!(%error, "tenancy's GetActingFor failed; a truncated token keeps its own claims");
                *self
                    .failed_at
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = Some(Instant::now());
            }
        }
    }

    fn remembered(&self, user_id: Uuid, token: TokenKey) -> Option<Arc<ActingFor>> {
        let answers = self.answers.read().unwrap_or_else(PoisonError::into_inner);
        answers
            .get(&user_id)
            .filter(|remembered| {
                remembered.fetched_at.elapsed() < STRUCTURE_TTL
                    && remembered.freshness.serves(token)
            })
            .map(|remembered| Arc::clone(&remembered.answer))
    }

    fn remember(&self, user_id: Uuid, freshness: Freshness, answer: Arc<ActingFor>) {
        let mut answers = self.answers.write().unwrap_or_else(PoisonError::into_inner);
        if answers.len() >= CAPACITY {
            answers.retain(|_, remembered| remembered.fetched_at.elapsed() < STRUCTURE_TTL);
        }
        if answers.len() >= CAPACITY {
            answers.clear();
        }
        answers.insert(
            user_id,
            Remembered {
                fetched_at: Instant::now(),
                freshness,
                answer,
            },
        );
    }

    fn backing_off(&self) -> bool {
        self.failed_at
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some_and(|failed_at| failed_at.elapsed() < FAILURE_BACKOFF)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    fn principal(user_id: Uuid, supervised: Vec<Uuid>) -> Principal {
        Principal {
            user_id,
            session_id: Uuid::new_v4(),
            roles: vec![],
            supervised_trainer_ids: supervised,
            amr: vec![],
            studio_ids: vec![],
            claims_truncated: true,
            claims_partial: false,
        }
    }

    /// A source answering `answer` (or failing when `None`), counting calls.
    fn source(answer: Option<ActingFor>, calls: Arc<AtomicUsize>) -> StructureSource {
        Arc::new(move |_| {
            calls.fetch_add(1, Ordering::SeqCst);
            let answer = answer.clone();
            Box::pin(async move { answer.ok_or_else(|| "tenancy is down".to_owned()) })
        })
    }

    #[tokio::test]
    async fn a_truncated_token_gets_tenancys_whole_lists_without_the_user_itself() {
        let user = Uuid::new_v4();
        let members: Vec<Uuid> = (0..300).map(|_| Uuid::new_v4()).collect();
        let studio = Uuid::new_v4();
        let mut trainer_ids = vec![user];
        trainer_ids.extend(&members);
        let calls = Arc::new(AtomicUsize::new(0));
        let structure = Structure::new(source(
            Some(ActingFor {
                trainer_ids,
                studio_ids: vec![studio],
                truncated: false,
            }),
            Arc::clone(&calls),
        ));
        let mut truncated = principal(user, members[..10].to_vec());
        structure.complete(&mut truncated, unix_now()).await;
        assert_eq!(truncated.supervised_trainer_ids, members);
        assert_eq!(truncated.studio_ids, vec![studio]);
        assert!(!truncated.claims_truncated, "the lists are whole now");
        assert!(truncated.acts_for(members[299]));
    }

    /// Like [`source`], answering only after `delay`.
    fn slow_source(
        answer: Option<ActingFor>,
        calls: Arc<AtomicUsize>,
        delay: Duration,
    ) -> StructureSource {
        Arc::new(move |_| {
            calls.fetch_add(1, Ordering::SeqCst);
            let answer = answer.clone();
            Box::pin(async move {
                tokio::time::sleep(delay).await;
                answer.ok_or_else(|| "tenancy is down".to_owned())
            })
        })
    }

    #[tokio::test(start_paused = true)]
    async fn an_answer_is_reused_for_two_seconds_and_never_for_a_token_issued_after_it() {
        let user = Uuid::new_v4();
        let calls = Arc::new(AtomicUsize::new(0));
        let structure = Structure::new(source(Some(ActingFor::default()), Arc::clone(&calls)));
        // Issued a second before the answer is fetched.
        let issued = unix_now() - 1;
        structure
            .complete(&mut principal(user, vec![]), issued)
            .await;
        structure
            .complete(&mut principal(user, vec![]), issued)
            .await;
        assert_eq!(calls.load(Ordering::SeqCst), 1, "remembered");
        structure
            .complete(&mut principal(user, vec![]), issued + 60)
            .await;
        assert_eq!(calls.load(Ordering::SeqCst), 2, "a newer token asks again");
        tokio::time::advance(STRUCTURE_TTL).await;
        structure
            .complete(&mut principal(user, vec![]), issued)
            .await;
        assert_eq!(calls.load(Ordering::SeqCst), 3, "forgotten after the TTL");
    }

    #[tokio::test(start_paused = true)]
    async fn when_tenancy_cannot_answer_the_token_keeps_its_own_lists_and_tenancy_is_spared() {
        let user = Uuid::new_v4();
        let own = vec![Uuid::new_v4()];
        let calls = Arc::new(AtomicUsize::new(0));
        let structure = Structure::new(source(None, Arc::clone(&calls)));
        let mut truncated = principal(user, own.clone());
        structure.complete(&mut truncated, unix_now()).await;
        assert_eq!(truncated.supervised_trainer_ids, own);
        assert!(truncated.claims_truncated);
        structure
            .complete(&mut principal(user, own.clone()), unix_now())
            .await;
        assert_eq!(calls.load(Ordering::SeqCst), 1, "backing off");
        tokio::time::advance(FAILURE_BACKOFF).await;
        structure
            .complete(&mut principal(user, own), unix_now())
            .await;
        assert_eq!(
            calls.load(Ordering::SeqCst),
            2,
            "asks again after the backoff"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_token_issued_in_the_second_of_a_fetch_is_not_served_by_it_unless_it_was_for_that_token()
     {
        let user = Uuid::new_v4();
        let calls = Arc::new(AtomicUsize::new(0));
        let structure = Structure::new(source(Some(ActingFor::default()), Arc::clone(&calls)));
        let now = unix_now();
        let fetched_for = principal(user, vec![]);
        structure.complete(&mut fetched_for.clone(), now).await;
        structure.complete(&mut fetched_for.clone(), now).await;
        assert_eq!(calls.load(Ordering::SeqCst), 1, "the same token reuses it");
        // Another token of the same second may have been issued after the
        // fetch (a refresh after a team change): it asks again.
        structure.complete(&mut principal(user, vec![]), now).await;
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_flood_of_one_users_requests_asks_tenancy_once() {
        let (ada, bo) = (Uuid::new_v4(), Uuid::new_v4());
        let members: Vec<Uuid> = (0..300).map(|_| Uuid::new_v4()).collect();
        let calls = Arc::new(AtomicUsize::new(0));
        let structure = Structure::new(slow_source(
            Some(ActingFor {
                trainer_ids: members.clone(),
                studio_ids: vec![],
                truncated: false,
            }),
            Arc::clone(&calls),
            Duration::from_millis(500),
        ));
        let issued = unix_now() - 1;
        let completions = (0..200).map(|index| {
            let structure = &structure;
            async move {
                let mut truncated = principal(if index % 2 == 0 { ada } else { bo }, vec![]);
                structure.complete(&mut truncated, issued).await;
                truncated
            }
        });
        for completed in futures::future::join_all(completions).await {
            assert_eq!(completed.supervised_trainer_ids.len(), 300);
        }
        assert_eq!(calls.load(Ordering::SeqCst), 2, "one fetch per user");
    }

    #[tokio::test(start_paused = true)]
    async fn a_flood_while_tenancy_fails_slowly_asks_once_and_keeps_the_tokens_lists() {
        let user = Uuid::new_v4();
        let own = vec![Uuid::new_v4()];
        let calls = Arc::new(AtomicUsize::new(0));
        let structure = Structure::new(slow_source(
            None,
            Arc::clone(&calls),
            Duration::from_secs(2),
        ));
        let issued = unix_now() - 1;
        let completions = (0..200).map(|_| {
            let structure = &structure;
            let own = own.clone();
            async move {
                let mut truncated = principal(user, own);
                structure.complete(&mut truncated, issued).await;
                truncated
            }
        });
        for completed in futures::future::join_all(completions).await {
            assert_eq!(completed.supervised_trainer_ids, own);
            assert!(completed.claims_truncated);
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}
