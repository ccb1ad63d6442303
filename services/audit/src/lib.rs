//! The FitFlow audit service: receives audit and access events from every
//! other service over a bidirectional stream and keeps them append-only,
//! partitioned by month and hash-chained per source service, so that an
//! edited or deleted row is detectable ([`verify_chain`]). Operators list
//! events through [`AuditQuery`].
//!
//! Reads top-down: [`grpc`] (handlers) → [`domain`] (rules, no I/O) → `repo` (SQL).

pub mod domain;
mod error;
pub mod grpc;
mod repo;

use chrono::{DateTime, Utc};
use sqlx::PgPool;

pub use domain::{BreakKind, ChainBreak, ChainReport};
pub use error::AuditError;
pub use grpc::{AuditIngest, AuditQuery};

/// The PostgreSQL schema this service owns.
pub const SCHEMA: &str = "audit";

/// The error domain of this service's statuses.
pub const ERROR_DOMAIN: &str = "fitflow.audit";

/// This service's reversible migrations.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Creates, unless they exist, the monthly partitions of both logs for the
/// month of `now` and the next two; returns the audit_log partition names.
/// Runs as the runtime role through a `SECURITY DEFINER` function owned by the
/// schema owner. Call it at start-up and daily.
pub async fn ensure_partitions(pool: &PgPool, now: DateTime<Utc>) -> Result<Vec<String>, AuditError> {
    let months = domain::partition_months(now);
    for month in months {
        repo::ensure_month_partitions(pool, month).await?;
    }
    let names = months
        .iter()
        .map(|month| domain::partition_name(domain::Log::Audit, *month))
        .collect();
    tracing::info!(?names, "audit partitions ensured");
    Ok(names)
}

/// Recomputes the hash chain of `source` (a source service) in sequence order
/// from one consistent snapshot and reports the first break, if any.
pub async fn verify_chain(pool: &PgPool, source: &str) -> Result<ChainReport, AuditError> {
    let (links, head) = repo::chain_links(pool, source).await?;
    let report = domain::verify_links(source, links, head);
    if let Some(broken) = report.first_break {
        tracing::error!(chain = source, sequence = broken.sequence, kind = ?broken.kind, "audit chain is broken");
    }
    Ok(report)
}
