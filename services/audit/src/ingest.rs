//! The ingestion use case: admit a batch, then append its new events to
//! their sources' chains in one transaction.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use crate::AuditError;
use crate::domain::{self, EventDraft, Log, Rejection, ValidEvent};
use crate::repo::{self, ChainHead, NewLink};

/// The outcome of one batch.
#[derive(Debug)]
pub(crate) struct IngestOutcome {
    /// Every stored event id, stored now or before, in batch order.
    pub(crate) acknowledged: Vec<Uuid>,
    /// The events refused, each with its reason.
    pub(crate) rejected: Vec<Rejection>,
}

/// Validates every event of a batch from `peer` on its own and stores the
/// valid ones; a refused event never holds up the rest of its batch.
pub(crate) async fn ingest_batch(
    pool: &PgPool,
    peer: &str,
    drafts: &[EventDraft],
    now: DateTime<Utc>,
) -> Result<IngestOutcome, AuditError> {
    let batch =
        domain::admit_batch(drafts, Some(peer), now).map_err(AuditError::InvalidArgument)?;
    for rejected in &batch.rejected {
        tracing::warn!(
            event_id = ?rejected.event_id,
            index = rejected.index,
            reason = %rejected.reason,
            "audit event rejected"
        );
    }
    let acknowledged = store(pool, &batch.valid).await?;
    Ok(IngestOutcome {
        acknowledged,
        rejected: batch.rejected,
    })
}

/// Stores `events` in one transaction, each as the next link of its source's
/// chain, skipping events already stored (before, or earlier in the same
/// batch). An event is known by its source and its id, so one source cannot
/// suppress another's event by sending its id first. Returns every event
/// id, stored now or before.
///
/// Round trips per batch, whatever its size: one per chain to lock its head
/// (in name order, so concurrent batches of one source serialise and batches
/// of several never deadlock), one to claim the event ids, one multi-row
/// insert per log, one per chain to move its head, and the commit.
pub(crate) async fn store(pool: &PgPool, events: &[ValidEvent]) -> Result<Vec<Uuid>, AuditError> {
    if events.is_empty() {
        return Ok(Vec::new());
    }
    let mut transaction = pool.begin().await?;
    let chains: BTreeSet<&str> = events
        .iter()
        .map(|event| event.source_service.as_str())
        .collect();
    let mut heads: BTreeMap<&str, ChainHead> = BTreeMap::new();
    for chain in chains {
        heads.insert(chain, repo::lock_chain_head(&mut transaction, chain).await?);
    }

    let claimed = repo::claim_event_ids(&mut transaction, events).await?;
    let mut first_time: HashSet<(String, Uuid)> = claimed.into_iter().collect();
    let mut links: BTreeMap<Log, Vec<NewLink<'_>>> = BTreeMap::new();
    for event in events {
        // `remove` makes a repeat of an id within the batch a duplicate too.
        if !first_time.remove(&(event.source_service.clone(), event.event_id)) {
            continue;
        }
        let head = heads
            .get_mut(event.source_service.as_str())
            .ok_or(AuditError::Invariant("a chain head was not locked"))?;
        let sequence = head.sequence + 1;
        let hash = domain::chain_hash(&head.hash, sequence, event).to_vec();
        links.entry(event.log()).or_default().push(NewLink {
            event,
            sequence,
            prev_hash: std::mem::replace(&mut head.hash, hash.clone()),
            hash,
        });
        head.sequence = sequence;
    }
    for (log, links) in &links {
        repo::insert_links(&mut transaction, *log, links).await?;
    }
    for (chain, head) in &heads {
        repo::move_chain_head(&mut transaction, chain, head).await?;
    }
    transaction.commit().await?;
    Ok(events.iter().map(|event| event.event_id).collect())
}
