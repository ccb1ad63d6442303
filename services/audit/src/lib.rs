//! The FitFlow audit service: receives audit and access events from every
//! other service over a bidirectional stream and keeps them append-only,
//! partitioned by month and hash-chained per source service, so that an
//! edited or deleted row is detectable ([`verify_chain`]). Operators list
//! events through [`AuditQuery`].
//!
//! Reads top-down: [`grpc`] (handlers, the only place proto types appear) →
//! use cases (`ingest`, `trail`, [`retention`], [`bench`]; each owns its
//! transaction) → [`domain`] (rules, no I/O) and `repo` (every SQL statement).
//!
//! Reads: operators read everything; any other user reads only a tenant they
//! act for, named in the request. `ExportEvents` first stores an EXPORT
//! access event in the service's own chain (`audit`), then streams. Plain
//! `ListEvents` reads are not recorded: the trail holds ids, field names and
//! keyed hashes, never PHI, and recording every page would serialise all
//! queries on the `audit` chain head.
//!
//! Retention: [`retention::archive_expired`] exports month partitions past
//! retention to checksummed CSV files, verifies them, and only then detaches
//! and drops them, keeping each dropped link's sequence and hash so the chain
//! still verifies.
//!
//! Storage: `audit_log` (changes, authentication) and `access_log` (view,
//! export, print, read) are range-partitioned by month on the occur time, with
//! a DEFAULT partition; `ingested_events` makes ingestion idempotent across
//! partitions; `chain_heads` holds each source's last link. The runtime role
//! may only insert and read the logs (UPDATE, DELETE and TRUNCATE are revoked
//! on the tables and every partition) and creates partitions only through the
//! `SECURITY DEFINER` function `ensure_month_partitions`. `ListEvents` reads
//! both logs with one `UNION ALL` (each branch filtered, ordered and limited)
//! and pages by keyset on `(occurred_at, event_id)`.
//!
//! The chain is plain SHA-256, so it exposes an edit or deletion by anyone who
//! does not also rewrite every later link and the head; anchoring chain heads
//! outside the database would close that gap.

pub mod bench;
pub mod domain;
mod error;
pub mod grpc;
mod ingest;
mod repo;
pub mod retention;
mod service;
mod trail;

use chrono::{DateTime, Utc};
use sqlx::PgPool;

pub use domain::{BreakKind, ChainBreak, ChainReport};
pub use error::AuditError;
pub use grpc::{AuditIngest, AuditQuery};
pub use service::AuditService;
pub use trail::{verify_chain, verify_chains};

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
pub async fn ensure_partitions(
    pool: &PgPool,
    now: DateTime<Utc>,
) -> Result<Vec<String>, AuditError> {
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
