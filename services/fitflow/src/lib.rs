//! The FitFlow binary's library: the registry of services this build hosts,
//! and operator commands. Settings and the stack live in `fitflow-platform`.

pub mod audit_ops;
pub mod bench;
mod bench_booking;
mod bench_clients;
mod bench_compare;
mod bench_cpu;
mod bench_documentation;
mod bench_flood;
mod bench_invoicing;
mod bench_pgbench;
mod bench_revocation;
mod bench_scheduling;
mod bench_tenancy;
pub mod ops;
pub mod registry;

pub use fitflow_platform::{Settings, Stack, settings};
pub use registry::registry;
