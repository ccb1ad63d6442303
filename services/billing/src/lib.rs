//! The billing service. This first part holds Canadian sales tax as data
//! (the `tax_rates` table, statutory versions with effective dates that
//! only operators extend) and the pure tax engine every invoice will use;
//! invoices, payments, bank accounts and remittances build on it.
//!
//! Reads top-down: [`grpc`] (handlers and conversion) → `rates` (use cases;
//! each owns its transaction and writes its audit event in it) → [`tax`]
//! (the engine: pure, table-driven tests) and `repo` (every SQL statement).

mod error;
pub mod grpc;
mod rates;
mod repo;
mod service;
pub mod tax;

use fitflow_server::{EDGE_PEERS, PeerPolicy};

pub use error::BillingError;
pub use grpc::BillingGrpc;
pub use rates::TaxTable;
pub use service::BillingService;

/// The service's name, schema and audit source.
pub const SERVICE: &str = "billing";
/// `google.rpc.ErrorInfo` domain of its errors.
pub const ERROR_DOMAIN: &str = "fitflow.billing";
/// Its migrations (reversible).
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Who may call what: the gateway and operators read the table and quote
/// tax; only operators add rates.
pub fn peer_policy() -> PeerPolicy {
    PeerPolicy::new(EDGE_PEERS).allow(
        "/fitflow.billing.v1.BillingService/AddTaxRate",
        &["operator"],
    )
}
