//! The documentation service: SOAP session notes that are signed and then
//! only amended, versioned training plans, and progress charted from signed
//! notes — every health field sealed under the client's own key (OpenBao),
//! so purging the client erases their documentation too.
//!
//! Reads top-down: [`grpc`] (handlers; validation in `validate`) → `records`
//! (use cases; each asks clients for the caller's reach, owns its
//! transaction and writes its audit or access event in it) → [`domain`]
//! (pure rules), `peers` (clients, scheduling, tenancy), `seal` and `repo`
//! (every SQL statement). Note and plan content is kept in its protobuf
//! form, sealed: the contract's message is the stored shape, so the use
//! cases hand `fitflow.documentation.v1` messages back as they open them.
//! Row-level security (`FORCE`) repeats the checks: a row is visible to
//! whoever acts for its trainer, and to a caller the clients service
//! admitted to its client in this transaction.

pub mod bench;
pub mod domain;
mod error;
pub mod grpc;
mod peers;
mod records;
mod repo;
mod seal;
mod service;
pub mod validate;

use fitflow_server::{EDGE_PEERS, PeerPolicy};

pub use error::DocumentationError;
pub use grpc::DocumentationGrpc;
pub use peers::Peers;
pub use records::Records;
pub use service::DocumentationService;

/// The service's name, schema and audit source.
pub const SERVICE: &str = "documentation";
/// `google.rpc.ErrorInfo` domain of its errors.
pub const ERROR_DOMAIN: &str = "fitflow.documentation";
/// Its migrations (reversible).
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Who may call what: the gateway and operators use the public RPCs; the
/// clients service alone exports a client's documentation (streamed, or in
/// one message as before).
pub fn peer_policy() -> PeerPolicy {
    PeerPolicy::new(EDGE_PEERS)
        .allow(
            "/fitflow.documentation.v1.DocumentationService/ExportClientDocumentation",
            &["clients"],
        )
        .allow(
            "/fitflow.documentation.v1.DocumentationService/StreamClientDocumentation",
            &["clients"],
        )
}
