//! Completing a truncated token (DESIGN.md §4): a token carries at most 256
//! supervised trainer ids and 256 studio ids; beyond, it says
//! `claims_truncated`, and the verifier replaces its lists with tenancy's
//! answer for that user (`GetActingFor`), remembered per user for at most
//! [`STRUCTURE_TTL`].
//!
//! An answer is used only when it was fetched no earlier than the token was
//! issued, so a token refreshed after a team change never meets an answer
//! from before it. When tenancy cannot answer, the token's own (shorter)
//! lists stand: fewer rights, never more.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use futures::future::BoxFuture;
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

struct Remembered {
    /// When it was fetched, for [`STRUCTURE_TTL`].
    fetched_at: Instant,
    /// The same, in Unix seconds, to compare with a token's `iat`.
    fetched_unix: i64,
    answer: Arc<ActingFor>,
}

/// Tenancy's answers by user.
pub(crate) struct Structure {
    source: StructureSource,
    answers: RwLock<HashMap<Uuid, Remembered>>,
    failed_at: Mutex<Option<Instant>>,
}

impl Structure {
    pub(crate) fn new(source: StructureSource) -> Self {
        Self {
            source,
            answers: RwLock::new(HashMap::new()),
            failed_at: Mutex::new(None),
        }
    }

    /// Replaces the lists of `principal` (a truncated token issued at
    /// `issued_at`) with tenancy's; leaves them when tenancy cannot say.
    pub(crate) async fn complete(&self, principal: &mut Principal, issued_at: i64) {
        let Some(answer) = self.answer(principal.user_id, issued_at).await else {
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

    async fn answer(&self, user_id: Uuid, issued_at: i64) -> Option<Arc<ActingFor>> {
        if let Some(answer) = self.remembered(user_id, issued_at) {
            return Some(answer);
        }
        if self.backing_off() {
            return None;
        }
        let fetched_unix = unix_now();
        match (self.source)(user_id).await {
            Ok(answer) => {
                let answer = Arc::new(answer);
                self.remember(user_id, fetched_unix, Arc::clone(&answer));
                Some(answer)
            }
            Err(error) => {
                tracing::warn!(%error, "tenancy's GetActingFor failed; a truncated token keeps its own claims");
                *self
                    .failed_at
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = Some(Instant::now());
                None
            }
        }
    }

    fn remembered(&self, user_id: Uuid, issued_at: i64) -> Option<Arc<ActingFor>> {
        let answers = self.answers.read().unwrap_or_else(PoisonError::into_inner);
        answers
            .get(&user_id)
            .filter(|remembered| {
                remembered.fetched_at.elapsed() < STRUCTURE_TTL
                    && remembered.fetched_unix >= issued_at
            })
            .map(|remembered| Arc::clone(&remembered.answer))
    }

    fn remember(&self, user_id: Uuid, fetched_unix: i64, answer: Arc<ActingFor>) {
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
                fetched_unix,
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

    #[tokio::test(start_paused = true)]
    async fn an_answer_is_reused_for_two_seconds_and_never_for_a_token_issued_after_it() {
        let user = Uuid::new_v4();
        let calls = Arc::new(AtomicUsize::new(0));
        let structure = Structure::new(source(Some(ActingFor::default()), Arc::clone(&calls)));
        let issued = unix_now();
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
}
