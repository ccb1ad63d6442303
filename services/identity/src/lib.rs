//! The identity service: accounts, passwords, access and refresh tokens,
//! sessions. It owns the `identity` schema and is the only issuer of user
//! tokens in FitFlow; access tokens are signed by an OpenBao transit key, so
//! no process ever holds the private key.

mod accounts;
pub mod bootstrap;
pub mod domain;
mod error;
mod grpc;
mod hashing;
pub mod letters;
mod repo;
pub mod revocations;
mod service;
mod signing;
pub mod structure;

use fitflow_server::{EDGE_PEERS, PeerPolicy, SERVICE_PEERS};

pub use accounts::Accounts;
pub use error::IdentityError;
pub use grpc::IdentityGrpc;
pub use letters::Letters;
pub use revocations::RevocationFeed;
pub use service::IdentityService;
pub use signing::{SIGNING_KEY, TokenSigner};

/// The service's name, schema and audit source.
pub const SERVICE: &str = "identity";
/// The PostgreSQL schema it owns.
pub const SCHEMA: &str = "identity";
/// `google.rpc.ErrorInfo` domain of its errors.
pub const ERROR_DOMAIN: &str = "fitflow.identity";
/// Its migrations (reversible).
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// RPCs that wield operator powers over other accounts, or read any of
/// them (the operator directory): only the operator peer may call them,
/// never the gateway (a stolen operator token replayed through the public
/// edge must not reach them).
pub const OPERATOR_RPCS: &[&str] = &[
    "SuspendUser",
    "RestoreUser",
    "DeleteUser",
    "GrantRole",
    "RevokeRole",
    "ResetUserMfa",
    "GetUser",
    "ListUsers",
];

/// The mTLS peer of the tenancy service, the only caller of
/// [`INVALIDATE_CLAIMS_RPC`] and one of [`LOOKUP_PEERS`].
pub const TENANCY_PEER: &str = "tenancy";

/// The peers that may call [`INTERNAL_LOOKUP_RPC`]: tenancy (invitations by
/// email) and clients (shares by email).
pub const LOOKUP_PEERS: &[&str] = &[TENANCY_PEER, "clients"];

/// The revocation stream every FitFlow service's verifier follows; no edge
/// peer may call it.
pub const WATCH_REVOCATIONS_RPC: &str = "WatchRevocations";

/// Tenancy's report of users whose structure claims went stale (a reliable
/// command from its outbox); tenancy only.
pub const INVALIDATE_CLAIMS_RPC: &str = "InvalidateClaims";

/// The internal user lookup, for tenancy's invitations and clients' shares
/// by email: no edge peer may call it (it finds any account by email
/// without a user token).
pub const INTERNAL_LOOKUP_RPC: &str = "LookupUser";

/// Who may call what: the gateway and operators use every RPC but the
/// operator powers ([`OPERATOR_RPCS`], operator peer only), the internal
/// user lookup ([`INTERNAL_LOOKUP_RPC`], tenancy and clients only) and
/// claims invalidation ([`INVALIDATE_CLAIMS_RPC`], tenancy only) and the revocation stream
/// ([`WATCH_REVOCATIONS_RPC`], FitFlow services only); other FitFlow
/// services may otherwise only fetch the token verification keys
/// (`ListPublicKeys`, `GetJwks`).
pub fn peer_policy() -> PeerPolicy {
    let key_readers: Vec<&str> = EDGE_PEERS.iter().chain(SERVICE_PEERS).copied().collect();
    let mut policy = PeerPolicy::new(EDGE_PEERS)
        .allow(
            "/fitflow.identity.v1.IdentityService/ListPublicKeys",
            &key_readers,
        )
        .allow("/fitflow.identity.v1.IdentityService/GetJwks", &key_readers)
        .allow(
            &format!("/fitflow.identity.v1.IdentityService/{INTERNAL_LOOKUP_RPC}"),
            LOOKUP_PEERS,
        )
        .allow(
            &format!("/fitflow.identity.v1.IdentityService/{INVALIDATE_CLAIMS_RPC}"),
            &[TENANCY_PEER],
        )
        .allow(
            &format!("/fitflow.identity.v1.IdentityService/{WATCH_REVOCATIONS_RPC}"),
            SERVICE_PEERS,
        );
    for rpc in OPERATOR_RPCS {
        policy = policy.allow(
            &format!("/fitflow.identity.v1.IdentityService/{rpc}"),
            &[fitflow_auth::OPERATOR_PEER],
        );
    }
    policy
}
