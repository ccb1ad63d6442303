//! Integration tests of the audit service against a real PostgreSQL.

mod chain;
mod helpers;
mod hostile;
mod ingest;
mod query;
mod reads;
mod retention;
mod storage;
