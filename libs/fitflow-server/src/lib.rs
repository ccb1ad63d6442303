//! The gRPC platform every FitFlow service runs on.
//!
//! A service hands [`serve`] its tonic routes and a [`PeerPolicy`]; the
//! platform adds mutual TLS 1.3 with SPIFFE peer identities, the per-RPC peer
//! allow-list, bearer-token verification into a `Principal`, trace-context
//! extraction, RPC duration metrics, request limits, `grpc.health.v1`, server
//! reflection (v1 and v1alpha) and graceful shutdown.

pub mod client;
pub mod config;
pub mod deadline;
mod guard;
pub mod handler;
mod incoming;
mod policy;
mod serve;
pub mod tls;

pub use guard::GuardLayer;
pub use incoming::PeerInfo;
pub use policy::{EDGE_PEERS, PeerPolicy, SERVICE_PEERS};
pub use serve::{ServeOptions, serve};

/// Installs ring as the process-wide rustls crypto provider (idempotent).
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
