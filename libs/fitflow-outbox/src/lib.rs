//! The audit outbox of a FitFlow service.
//!
//! A service writes each audit or access event into its own `audit_outbox`
//! table with [`record`], inside the transaction that does the work: no
//! event, no change. A [`Relay`] streams the outbox to the audit service over
//! `AuditIngestService.Ingest` and deletes rows only once the audit service
//! has acknowledged (or definitively rejected) them, so audit may be down
//! without blocking writes, and nothing is lost or stored twice.
//!
//! Every service's first migration creates the table:
//!
//! ```sql
//! CREATE TABLE audit_outbox (
//!     id         bigserial   PRIMARY KEY,
//!     event_id   uuid        NOT NULL UNIQUE,
//!     payload    bytea       NOT NULL, -- prost-encoded fitflow.audit.v1.AuditEvent
//!     created_at timestamptz NOT NULL DEFAULT now()
//! );
//! ```

mod builder;
mod error;
mod relay;
mod store;

pub use builder::AuditEventBuilder;
pub use error::OutboxError;
pub use fitflow_proto::audit::{Action, AuditEvent, Purpose};
pub use relay::{Relay, RelayConfig, spawn_relay};
pub use store::{NOTIFY_CHANNEL, record};
