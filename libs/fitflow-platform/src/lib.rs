//! The FitFlow platform: what every service shares.
//!
//! [`table`] is the one table of services (`deploy/services.tsv`): names,
//! ports, schemas, SPIFFE ids and callers. Everything else that lists
//! services derives from it or is checked against it; [`drift`] is that check.

pub mod drift;
pub mod table;

pub use table::{ServiceSpec, TableError, services_table};
