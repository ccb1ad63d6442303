//! What identity pushes to every verifier: the revocation stream, and the
//! stale-claims marks tenancy asks for when its structure changes.

use chrono::Utc;
use fitflow_outbox::{Action, AuditEventBuilder};
use futures::Stream;
use uuid::Uuid;

use super::Accounts;
use crate::domain::{NewRevocations, RevocationKind};
use crate::repo;
use crate::revocations::RevocationBatch;
use crate::{IdentityError, SERVICE, TENANCY_PEER};

impl Accounts {
    /// The revocation entries after `after`, then new ones as they commit.
    pub fn watch_revocations(
        &self,
        after: i64,
    ) -> impl Stream<Item = Result<RevocationBatch, IdentityError>> + Send + 'static {
        self.revocations.subscribe(after)
    }

    /// Marks the tokens of `user_ids` issued until now stale (their team or
    /// studio claims changed in tenancy), with an audit event per user. A
    /// relayed command (`command_id`) takes effect once.
    pub async fn invalidate_claims(
        &self,
        command_id: Option<Uuid>,
        user_ids: Vec<Uuid>,
    ) -> Result<(), IdentityError> {
        let mut tx = fitflow_db::system_tx(&self.system).await?;
        if let Some(command_id) = command_id
            && !fitflow_outbox::accept_once(&mut tx, command_id, TENANCY_PEER).await?
        {
            tx.commit().await.map_err(fitflow_db::DbError::from)?;
            return Ok(());
        }
        let marks = NewRevocations::at(RevocationKind::ClaimsStale, user_ids, Utc::now());
        repo::insert_revocations(&mut tx, &marks).await?;
        for user_id in &marks.subjects {
            // The actor is identity, which sends the event: audit refuses an
            // event naming another service as its actor (one service cannot
            // speak for another), so tenancy is named as the requester.
            let event = AuditEventBuilder::new(SERVICE, Action::Update, "users", *user_id)
                .actor_service(SERVICE)
                .tenant(*user_id)
                .change("event", "", "claims_invalidated")
                .change("requested_by", "", TENANCY_PEER)
                .build();
            fitflow_outbox::record(&mut tx, &event).await?;
        }
        tx.commit().await.map_err(fitflow_db::DbError::from)?;
        Ok(())
    }
}
