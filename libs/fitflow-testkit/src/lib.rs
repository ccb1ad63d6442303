//! Test harness for FitFlow integration tests: throwaway migrated databases
//! cloned from a template, one OpenBao dev server per test process, test
//! certificates, an in-process SMTP sink, and a tracing subscriber.
//!
//! Helpers panic with a clear message instead of returning errors: a broken
//! harness should stop the test at once.

mod audit;
mod certs;
mod database;
mod openbao;
mod poll;
mod smtp;

use std::sync::Once;

pub use audit::serve_audit_ingest;
pub use certs::{TestCerts, certs, foreign_certs};
pub use database::{
    MigratedSchema, TEST_DB_PREFIX_VAR, TestDatabase, admin_url, database, test_database_prefix,
};
pub use openbao::{OpenBao, openbao, vault, vault_settings};
pub use poll::eventually;
pub use smtp::{GREYLISTED, ReceivedMail, SmtpSink};

/// Installs a tracing subscriber for tests once (test writer, filter from
/// `FITFLOW_LOG`, default `warn`).
pub fn init_tracing() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        let filter = tracing_subscriber::EnvFilter::try_from_env("FITFLOW_LOG")
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
        // Another subscriber may already be installed by the test itself; keep it.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_test_writer()
            .try_init();
    });
}
