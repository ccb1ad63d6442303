//! End-to-end tests of the FitFlow stack: real services in-process over real
//! mTLS, a throwaway PostgreSQL database and an OpenBao dev server.

mod audit_trail;
mod database;
mod sealed_fields;
mod tokens;
mod transport;
