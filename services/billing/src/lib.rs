//! The billing service. Built so far: Canadian sales tax as data (the
//! `tax_rates` table, statutory versions with effective dates that only
//! operators extend), the pure tax engine, and client invoices from draft
//! to issued (numbered without gaps, taxed as of their date) or void;
//! payments, bank accounts and remittances build on them.
//!
//! Reads top-down: [`grpc`] (handlers and conversion) → `rates` and
//! `invoices` (use cases; each owns its transaction and writes its audit
//! event in it) → [`tax`] (the engine: pure, table-driven tests), `peers`
//! (clients, tenancy) and `repo` (every SQL statement).

mod error;
pub mod grpc;
mod invoices;
mod peers;
mod rates;
mod repo;
mod service;
pub mod tax;

use fitflow_server::{EDGE_PEERS, PeerPolicy};

pub use error::BillingError;
pub use grpc::BillingGrpc;
pub use invoices::Invoicing;
pub use peers::Peers;
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
