//! The outbox and its relay against a real PostgreSQL and a real in-process
//! audit service (plaintext on 127.0.0.1; mTLS is covered end to end).

mod helpers;
mod read;
mod record;
mod relay;
