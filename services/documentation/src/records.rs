//! Documentation's use cases. Each asks the clients service how far the
//! caller reaches the client, opens one transaction as the caller (admitting
//! the client's rows only when clients said yes), writes its audit or access
//! event in that transaction, and commits only when all of it worked.
//!
//! Who may do what, beside the clients service's answer: the note's trainer
//! (and whoever acts for them) always reads and writes their own notes and
//! plans, even after the client moved to another trainer; everyone else
//! needs READ to read and WRITE to write.

mod export;
mod notes;
mod plans;
mod progress;

pub(crate) use export::{ExportPosition, Exported};
pub(crate) use notes::{AiSummaryDraft, NoteDraft};
pub(crate) use plans::PlanDraft;

use fitflow_api::idempotency::{IdempotencyKey, RequestHash};
use fitflow_api::page::PageTokens;
use fitflow_auth::{Caller, Principal};
use fitflow_db::SystemPool;
use fitflow_outbox::{Action, AuditEventBuilder};
use sqlx::PgPool;
use uuid::Uuid;

use crate::peers::{Level, Peers};
use crate::seal::Sealer;
use crate::{DocumentationError, SERVICE, repo};

/// A create's idempotency record (AIP-155).
#[derive(Debug, Default)]
pub(crate) struct Idempotency(pub Option<(IdempotencyKey, RequestHash)>);

/// The service's state: its pool, its peers, the sealer, page tokens.
pub struct Records {
    pool: PgPool,
    /// The system role's pool: exports and summaries for peers that checked
    /// the user's access themselves.
    system: SystemPool,
    peers: Peers,
    sealer: Sealer,
    page_tokens: PageTokens,
}

/// The user's request: who they are and the token to forward.
#[derive(Clone, Copy)]
pub(crate) struct Asker<'a> {
    pub principal: &'a Principal,
    pub bearer: &'a str,
}

fn user(principal: &Principal) -> Caller {
    Caller::User(principal.clone())
}

async fn commit(tx: fitflow_db::Tx) -> Result<(), DocumentationError> {
    tx.commit().await.map_err(fitflow_db::DbError::from)?;
    Ok(())
}

/// An audit event by the user about a row of `trainer`'s.
fn event(
    principal: &Principal,
    action: Action,
    resource_type: &str,
    id: Uuid,
    trainer: Uuid,
) -> AuditEventBuilder {
    AuditEventBuilder::new(SERVICE, action, resource_type, id)
        .actor_user(principal.user_id)
        .tenant(trainer)
}

/// How far a caller reaches one client's documentation.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Reach {
    level: Level,
}

impl Reach {
    /// Whether the caller may read a row of `trainer`'s.
    fn reads(self, principal: &Principal, trainer: Uuid) -> bool {
        self.level >= Level::Read || principal.acts_for(trainer)
    }

    /// Refuses a write to a row of `trainer`'s the caller may only read.
    fn check_write(self, principal: &Principal, trainer: Uuid) -> Result<(), DocumentationError> {
        if self.level >= Level::Write || principal.acts_for(trainer) {
            Ok(())
        } else {
            Err(DocumentationError::AccessLevelInsufficient)
        }
    }

    /// The error for a row the caller does not see: the client itself is
    /// unknown to a caller clients refused.
    fn missing(self, otherwise: DocumentationError) -> DocumentationError {
        if self.level == Level::None {
            DocumentationError::ClientNotFound
        } else {
            otherwise
        }
    }
}

impl Records {
    /// The use cases over `pool`, asking `peers`, sealing with `sealer`.
    /// Page tokens are signed with a key drawn once per process.
    pub(crate) fn new(pool: PgPool, system: SystemPool, peers: Peers, sealer: Sealer) -> Self {
        Self {
            pool,
            system,
            peers,
            sealer,
            page_tokens: PageTokens::with_random_key(),
        }
    }

    /// The page-token issuer, for the gRPC layer's List methods.
    pub(crate) fn page_tokens(&self) -> &PageTokens {
        &self.page_tokens
    }

    /// Asks clients how far the caller reaches `client_id`, then opens the
    /// caller's transaction, admitting the client's rows when clients said
    /// at least READ.
    async fn begin(
        &self,
        asker: Asker<'_>,
        client_id: Uuid,
    ) -> Result<(fitflow_db::Tx, Reach), DocumentationError> {
        let level = self.peers.access(asker.bearer, client_id).await?;
        let mut tx = fitflow_db::tx(&self.pool, &user(asker.principal)).await?;
        if level >= Level::Read {
            repo::grant_client(&mut tx, client_id).await?;
        }
        Ok((tx, Reach { level }))
    }
}
