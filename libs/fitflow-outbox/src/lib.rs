//! The audit outbox of a FitFlow service.
//!
//! A service writes each audit or access event into its own `audit_outbox`
//! table with [`record`], inside the transaction that does the work: no
//! event, no change. A [`Relay`] streams the outbox to the audit service over
//! `AuditIngestService.Ingest` and deletes rows only once the audit service
//! has acknowledged (or definitively rejected) them, so audit may be down
//! without blocking writes, and nothing is lost or stored twice.
//!
//! A read of health data that finds its row records its access event in the
//! same statement with [`recorded_read`].
//!
//! [`command`] does the same for commands to other services' idempotent
//! internal RPCs. What a receiver refuses for good goes to
//! `outbox_dead_letters` ([`dead_letters`], [`replay_dead_letter`]).
//!
//! The platform's migrations create the table in every service schema:
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
pub mod command;
mod doorbell;
mod error;
mod read;
mod relay;
mod store;
mod wake;

pub use builder::{AuditEventBuilder, client_ip};
pub use command::{CommandRelay, accept_once, command_id, send, spawn_command_relay};
pub use doorbell::ring;
pub use error::OutboxError;
pub use fitflow_proto::audit::{Action, AuditEvent, Purpose};
pub use read::{bind_event, recorded_read};
pub use relay::{Relay, RelayConfig, spawn_relay};
pub use store::{
    DeadLetter, NOTIFY_CHANNEL, dead_letters, record, replay_dead_letter, try_lead_as,
};
pub use wake::Wakeups;

/// Counts a message moved to the dead letters (metric
/// `fitflow.outbox.dead_lettered`, by kind), so alerting sees it.
fn dead_lettered(kind: &'static str) {
    use std::sync::OnceLock;
    static COUNTER: OnceLock<opentelemetry::metrics::Counter<u64>> = OnceLock::new();
    COUNTER
        .get_or_init(|| {
            opentelemetry::global::meter("fitflow-outbox")
                .u64_counter("fitflow.outbox.dead_lettered")
                .with_description("messages a relay moved to outbox_dead_letters")
                .build()
        })
        .add(1, &[opentelemetry::KeyValue::new("kind", kind)]);
}
