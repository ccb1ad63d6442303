//! The clients service: client records with their health information sealed
//! field by field under each client's own key (held in OpenBao only), shared
//! between trainers on purpose, every read accounted for, and erasable for
//! real by destroying that key. It owns the `clients` schema and is the
//! authority other services ask before they touch a client's data.
//!
//! Reads top-down: [`grpc`] (handlers; with `convert`, the only place proto
//! types appear) → `book` (use cases; each owns its transaction and writes
//! its audit or access event in it) → [`domain`] (pure rules), `seal`
//! (sealing and blind indexes) and `repo` (every SQL statement). Row-level
//! security (`FORCE`) repeats the handlers' checks: a client is visible to
//! whoever acts for its owner (the owner and their supervisors, from the
//! token's team claims) and to its grantees; only WRITE and ADMIN grantees
//! may change it.

pub mod bench;
mod billing;
mod book;
mod convert;
mod documentation;
pub mod domain;
mod error;
pub mod grpc;
mod repo;
mod scheduling;
mod seal;
mod section;
mod service;
mod trainers;

use fitflow_server::{EDGE_PEERS, PeerPolicy};

pub use billing::Invoices;
pub use book::{ClientBook, Peers};
pub use documentation::Documentation;
pub use error::ClientsError;
pub use grpc::ClientsGrpc;
pub use scheduling::Appointments;
pub use service::ClientsService;
pub use trainers::Trainers;

/// The service's name, schema and audit source.
pub const SERVICE: &str = "clients";
/// `google.rpc.ErrorInfo` domain of its errors.
pub const ERROR_DOMAIN: &str = "fitflow.clients";
/// Its migrations (reversible).
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

const RPC: &str = "/fitflow.clients.v1.ClientsService/";

/// Who may call what: the gateway and operators use the public RPCs;
/// scheduling, documentation and billing ask for access decisions; billing
/// and scheduling read contacts; only operators purge.
pub fn peer_policy() -> PeerPolicy {
    PeerPolicy::new(EDGE_PEERS)
        .allow(
            &format!("{RPC}CheckClientAccess"),
            &["scheduling", "documentation", "billing"],
        )
        .allow(&format!("{RPC}GetContact"), &["billing", "scheduling"])
        .allow(&format!("{RPC}ListRosterNames"), &["scheduling"])
        .allow(&format!("{RPC}PurgeClient"), &["operator"])
}
