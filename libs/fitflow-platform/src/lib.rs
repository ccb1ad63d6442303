//! The FitFlow platform: what every service shares.
//!
//! A service crate implements [`Service`] once (its name, migrations,
//! per-RPC peer policy and a start function that receives a
//! [`ServiceContext`]); the binary lists it once in a [`Registry`]. Serving,
//! migrating, health names, reflection, outbox relays and the shutdown
//! order all derive from the registry, and [`table`] — the one table of
//! services, `deploy/services.tsv` — gives every service its port, schema,
//! SPIFFE id and callers. Everything else that lists services derives from
//! the table or is checked against it; [`drift`] is that check.

pub mod drift;
pub mod registry;
mod revocations;
pub mod service;
pub mod settings;
pub mod stack;
mod structure;
pub mod table;

pub use registry::Registry;
pub use service::{Service, ServiceContext, ServiceKind, ServiceRoutes, StartFuture};
pub use settings::{Served, Settings};
pub use stack::Stack;
pub use table::{ServiceSpec, TableError, services_table};
