//! The billing service. Built so far: Canadian sales tax as data (the
//! `tax_rates` table, statutory versions with effective dates that only
//! operators extend), the pure tax engine, and client invoices from draft
//! to issued (numbered without gaps, taxed as of their date) or void;
//! trainers' bank accounts (numbers sealed under the trainer's data key);
//! sales-tax remittances of a period (regular or quick method); payments
//! and refunds of invoices, and the overdue sweep.
//!
//! Client invoices are also drafted from scheduling's billable items, each
//! item billed once across the invoices that are not void; a payment that
//! settles one (or a refund that reverses it) tells scheduling through the
//! platform's reliable effects. A client buys a session pack as an invoice
//! line; once issued, the held sessions drafted from the schedule are drawn
//! from it instead of being billed (`packs`, pure; `pack_sales`).
//!
//! Reads top-down: [`grpc`] (handlers and conversion) → `rates` and
//! `invoices`, `drafts`, `payments`, `bank_accounts` and `remittances` (use
//! cases; each owns its transaction and writes its audit event in it) →
//! [`tax`], [`tax_return`] and `schedule` (pure, table-driven tests),
//! `peers` (clients, tenancy, scheduling) and `repo` (every SQL statement).

mod bank_accounts;
mod drafts;
mod error;
mod exports;
pub mod grpc;
mod invoices;
mod pack_sales;
mod packs;
mod payments;
mod pdf;
mod peers;
mod quick_rates;
mod rates;
mod recipient;
mod remittances;
mod repo;
mod schedule;
mod service;
mod studio_drafts;
mod studio_invoices;
pub mod tax;
pub mod tax_return;

use fitflow_server::{EDGE_PEERS, PeerPolicy};

pub use bank_accounts::BankAccounts;
pub use error::BillingError;
pub use grpc::BillingGrpc;
pub use invoices::Invoicing;
pub use payments::{Payments, SWEEP_INTERVAL, overdue_today, sweep_overdue};
pub use peers::Peers;
pub use rates::TaxTable;
pub use remittances::Remittances;
pub use service::BillingService;

/// The service's name, schema and audit source.
pub const SERVICE: &str = "billing";
/// `google.rpc.ErrorInfo` domain of its errors.
pub const ERROR_DOMAIN: &str = "fitflow.billing";
/// Its migrations (reversible).
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The RPCs only the gateway may call: a trainer's own bank accounts and
/// remittances.
const GATEWAY_ONLY: &[&str] = &[
    "/fitflow.billing.v1.BillingService/CreateBankAccount",
    "/fitflow.billing.v1.BillingService/UpdateBankAccount",
    "/fitflow.billing.v1.BillingService/ListBankAccounts",
    "/fitflow.billing.v1.BillingService/RevealBankAccount",
    "/fitflow.billing.v1.BillingService/CloseBankAccount",
    "/fitflow.billing.v1.BillingService/CalculateTaxRemittance",
    "/fitflow.billing.v1.BillingService/GetTaxRemittance",
    "/fitflow.billing.v1.BillingService/ListTaxRemittances",
    "/fitflow.billing.v1.BillingService/FileTaxRemittance",
    "/fitflow.billing.v1.BillingService/MarkTaxRemittancePaid",
];

/// Who may call what: the gateway and operators read the table, quote tax
/// and handle invoices and payments; only operators add rates (tax and
/// quick-method) and run an
/// overdue sweep; only the gateway reaches
/// bank accounts and remittances; only the clients service streams a
/// client's billing records (for its export of the client).
pub fn peer_policy() -> PeerPolicy {
    GATEWAY_ONLY.iter().fold(
        PeerPolicy::new(EDGE_PEERS)
            .allow(
                "/fitflow.billing.v1.BillingService/AddTaxRate",
                &["operator"],
            )
            .allow(
                "/fitflow.billing.v1.BillingService/AddQuickMethodRate",
                &["operator"],
            )
            .allow(
                "/fitflow.billing.v1.BillingService/StreamClientInvoices",
                &["clients"],
            )
            .allow(
                "/fitflow.billing.v1.BillingService/SweepOverdueInvoices",
                &["operator"],
            ),
        |policy, method| policy.allow(method, &["gateway"]),
    )
}
