//! The tenancy service: trainer profiles and teams, studios and chains, and
//! the contracts between them with rates versioned by date. It owns the
//! `tenancy` schema and is the authority on who acts for which trainer and
//! who manages which studio.
//!
//! Reads top-down: [`grpc`] (handlers; with `convert`, the only place proto
//! types appear) → `directory` (use cases; each owns its transaction and
//! writes its audit event in it) → [`domain`] and [`formats`] (pure rules)
//! and `repo` (every SQL statement). Row-level security (`FORCE`) repeats the
//! handlers' checks: a trainer row is visible to whoever acts for it, a
//! studio's directory card to everyone and its changes to its managers, a
//! contract to its parties; rate versions can only be inserted.

pub mod bench;
mod convert;
mod directory;
pub mod domain;
mod error;
pub mod formats;
pub mod grpc;
mod identity;
mod letters;
mod repo;
mod service;

use fitflow_server::{EDGE_PEERS, PeerPolicy};

pub use directory::Directory;
pub use error::TenancyError;
pub use grpc::TenancyGrpc;
pub use identity::Accounts;
pub use letters::Letters;
pub use service::TenancyService;

/// The service's name, schema and audit source.
pub const SERVICE: &str = "tenancy";
/// `google.rpc.ErrorInfo` domain of its errors.
pub const ERROR_DOMAIN: &str = "fitflow.tenancy";
/// Its migrations (reversible).
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

const RPC: &str = "/fitflow.tenancy.v1.TenancyService/";

/// Who may call what: the gateway and operators use the public RPCs;
/// billing alone reads tax profiles; what a user acts for is read by
/// identity (for tokens) and by every service that authorizes from a
/// token's structure (to complete a truncated one); `GetRate` admits
/// billing, and `GetTrainer` scheduling, documentation and billing (free
/// slots, a note's or an invoice's date are in the trainer's zone), and
/// `GetStudio` billing and scheduling (a session's province of supply and
/// date are its studio's), and `ListContracts` scheduling (a booking at a
/// studio needs the trainer's contract there), beside the edge.
pub fn peer_policy() -> PeerPolicy {
    PeerPolicy::new(EDGE_PEERS)
        .allow(&format!("{RPC}GetTaxProfile"), &["billing"])
        .allow(
            &format!("{RPC}GetActingFor"),
            &[
                "identity",
                "clients",
                "scheduling",
                "documentation",
                "billing",
                "audit",
            ],
        )
        .allow(
            &format!("{RPC}GetTrainer"),
            &[
                "gateway",
                "operator",
                "scheduling",
                "documentation",
                "billing",
            ],
        )
        .allow(
            &format!("{RPC}GetRate"),
            &["gateway", "operator", "billing"],
        )
        .allow(
            &format!("{RPC}GetStudio"),
            &["gateway", "operator", "billing", "scheduling"],
        )
        .allow(
            &format!("{RPC}ListContracts"),
            &["gateway", "operator", "scheduling"],
        )
}
