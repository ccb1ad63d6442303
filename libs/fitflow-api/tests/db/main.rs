//! The idempotency table against a real PostgreSQL: the platform migration
//! (`libs/fitflow-db/platform`) applied to a test schema, claims made in
//! real transactions of the schema's runtime role, concurrently.

mod helpers;
mod idempotency;
mod migration;
