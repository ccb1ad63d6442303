//! The read use cases: a page of events, the EXPORT event an export leaves,
//! and chain verification.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use crate::domain::{self, ChainLink, ChainReport, EventDraft, EventFilter, PageCursor};
use crate::grpc::codec;
use crate::repo::{self, ListedEvent, VisitedLink};
use crate::{AuditError, ingest};

/// One page of a listing.
#[derive(Debug)]
pub(crate) struct Page {
    /// At most the filter's page size of rows, newest first.
    pub(crate) rows: Vec<ListedEvent>,
    /// Where the next page starts, if there is one.
    pub(crate) next: Option<PageCursor>,
}

/// The page of events `filter` selects.
pub(crate) async fn list_page(pool: &PgPool, filter: &EventFilter) -> Result<Page, AuditError> {
    let mut rows = repo::list_events(pool, filter).await?;
    let next = cut_page(&mut rows, filter.page_size);
    Ok(Page { rows, next })
}

/// Cuts `rows` (at most `page_size + 1`) to a page; returns the cursor of the
/// next page, if there is one.
fn cut_page(rows: &mut Vec<ListedEvent>, page_size: u32) -> Option<PageCursor> {
    let page_size = usize::try_from(page_size).unwrap_or(usize::MAX);
    if rows.len() <= page_size {
        return None;
    }
    rows.truncate(page_size);
    rows.last().map(|last| PageCursor {
        occurred_at: last.occurred_at,
        event_id: last.event_id,
    })
}

/// Validates and stores the EXPORT access event of an export (built by
/// [`domain::export_event`]) in the audit service's own chain; returns its id.
pub(crate) async fn record_export(
    pool: &PgPool,
    event: &EventDraft,
    now: DateTime<Utc>,
) -> Result<Uuid, AuditError> {
    let valid = domain::validate_event(event, 0, now).map_err(AuditError::InvalidArgument)?;
    let event_id = valid.event_id;
    ingest::store(pool, &[valid]).await?;
    Ok(event_id)
}

/// Recomputes the hash chain of `source` (a source service) in sequence order
/// from one consistent snapshot, streaming rows in constant memory, and
/// reports the first break, if any.
pub async fn verify_chain(pool: &PgPool, source: &str) -> Result<ChainReport, AuditError> {
    let mut verifier = domain::ChainVerifier::new(source);
    let mut snapshot = repo::begin_snapshot(pool).await?;
    let head = repo::chain_head(&mut snapshot, source).await?;
    repo::visit_chain(&mut snapshot, source, |link| match link {
        VisitedLink::Stored(link) => verifier.push(ChainLink {
            sequence: link.sequence,
            prev_hash: link.prev_hash,
            hash: link.hash,
            event: codec::stored_event_draft(&link.event),
            columns: link.columns,
        }),
        VisitedLink::Archived { sequence, hash } => verifier.push_archived(sequence, hash),
    })
    .await?;
    snapshot.commit().await?;
    let report = verifier.finish(head);
    if let Some(broken) = report.first_break {
        tracing::error!(chain = source, sequence = broken.sequence, kind = ?broken.kind, "audit chain is broken");
    }
    Ok(report)
}

/// Verifies the chain of `source`, or of every source with a chain when
/// `None`, one after another; reports in source name order.
pub async fn verify_chains(
    pool: &PgPool,
    source: Option<&str>,
) -> Result<Vec<ChainReport>, AuditError> {
    let sources = match source {
        Some(source) => vec![source.to_owned()],
        None => repo::chains(pool).await?,
    };
    let mut reports = Vec::with_capacity(sources.len());
    for source in &sources {
        reports.push(verify_chain(pool, source).await?);
    }
    Ok(reports)
}
