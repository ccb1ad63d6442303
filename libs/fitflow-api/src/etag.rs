//! Resource freshness (AIP-154): strong etags and the check of a request's `etag`.
//!
//! An etag is derived from what changes on every write of the row — its id
//! and either a version integer or its `updated_at` — hashed, so it reveals
//! neither and callers cannot build one. It is strong: equal etags mean the
//! same write of the same resource. It is quoted, as RFC 7232 and AIP-154 ask
//! (`"…"`), and compared exactly.
//!
//! **Prefer a version integer** bumped by every UPDATE. `updated_at` works only
//! if every write moves it forward: two writes in the same microsecond (or
//! with `now()`, which is the transaction's start time) would share an etag.
//! If you use it, set it with
//! `GREATEST(clock_timestamp(), updated_at + interval '1 microsecond')`.
//!
//! The check must see the row as the write will change it: read it `FOR
//! UPDATE` in the write's transaction (or update `WHERE version = $expected`),
//! else two writers can both pass the check.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use ring::digest;
use uuid::Uuid;

use crate::ContractError;

/// Separates etag hashes from any other SHA-256 of the same bytes.
const ETAG_CONTEXT: &[u8] = b"fitflow.etag.v1";
/// 128 bits of the hash: collisions between two writes of one row are out of reach.
const ETAG_HASH_BYTES: usize = 16;

/// A resource's current etag.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Etag(String);

impl Etag {
    /// The etag of resource `id` at row version `version`.
    pub fn of_version(id: Uuid, version: i64) -> Self {
        Self::hash(id, b"version", version)
    }

    /// The etag of resource `id` last written at `updated_at` (microsecond
    /// precision, as PostgreSQL keeps it; finer digits are ignored so the
    /// etag of a row is the same before and after it is stored).
    pub fn of_updated_at(id: Uuid, updated_at: DateTime<Utc>) -> Self {
        Self::hash(id, b"updated_at", updated_at.timestamp_micros())
    }

    fn hash(id: Uuid, kind: &[u8], value: i64) -> Self {
        let mut context = digest::Context::new(&digest::SHA256);
        context.update(ETAG_CONTEXT);
        context.update(id.as_bytes());
        // The kind keeps version 5 and the instant 5 µs after the epoch apart.
        context.update(kind);
        context.update(&value.to_be_bytes());
        let hash = context.finish();
        let encoded = URL_SAFE_NO_PAD.encode(&hash.as_ref()[..ETAG_HASH_BYTES]);
        Self(format!("\"{encoded}\""))
    }

    /// The etag as sent to callers, quotes included.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Checks the `etag` a request sent against this current etag: an empty
    /// one asks for no check (AIP-154 lets callers omit it); any other value
    /// that is not exactly this etag is [`ContractError::EtagMismatch`]
    /// (ABORTED, reason `ETAG_MISMATCH`).
    pub fn check(&self, requested: &str) -> Result<(), ContractError> {
        if requested.is_empty() || requested == self.0 {
            Ok(())
        } else {
            Err(ContractError::EtagMismatch)
        }
    }
}

impl fmt::Display for Etag {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

impl From<Etag> for String {
    fn from(etag: Etag) -> Self {
        etag.0
    }
}

#[cfg(test)]
mod tests {
    use fitflow_error::ApiError;
    use tonic::Code;

    use super::*;

    fn instant(micros: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_micros(micros).expect("instant")
    }

    #[test]
    fn an_etag_changes_with_the_version_and_the_resource() {
        let id = Uuid::new_v4();
        assert_eq!(Etag::of_version(id, 3), Etag::of_version(id, 3));
        assert_ne!(Etag::of_version(id, 3), Etag::of_version(id, 4));
        assert_ne!(Etag::of_version(id, 3), Etag::of_version(Uuid::new_v4(), 3));
        assert_ne!(
            Etag::of_updated_at(id, instant(1_000_000)),
            Etag::of_updated_at(id, instant(1_000_001))
        );
    }

    #[test]
    fn a_version_and_an_instant_with_the_same_number_have_different_etags() {
        let id = Uuid::new_v4();
        assert_ne!(Etag::of_version(id, 5), Etag::of_updated_at(id, instant(5)));
    }

    #[test]
    fn nanoseconds_postgresql_does_not_keep_do_not_change_the_etag() {
        let id = Uuid::new_v4();
        let stored = instant(1_700_000_000_123_456);
        let in_memory = DateTime::from_timestamp(1_700_000_000, 123_456_789).expect("instant");
        assert_eq!(
            Etag::of_updated_at(id, stored),
            Etag::of_updated_at(id, in_memory)
        );
    }

    #[test]
    fn an_etag_is_a_quoted_opaque_string() {
        let etag = Etag::of_version(Uuid::new_v4(), 1);
        let text = etag.as_str();
        assert!(text.starts_with('"') && text.ends_with('"'), "{text}");
        assert_eq!(text.len(), 24);
        assert_eq!(etag.to_string(), text);
    }

    #[test]
    fn an_empty_etag_asks_for_no_check_and_the_current_one_passes() {
        let etag = Etag::of_version(Uuid::new_v4(), 1);
        assert!(etag.check("").is_ok());
        assert!(etag.check(etag.as_str()).is_ok());
    }

    #[test]
    fn a_stale_or_altered_etag_is_aborted_with_etag_mismatch() {
        let id = Uuid::new_v4();
        let current = Etag::of_version(id, 2);
        let stale = Etag::of_version(id, 1);
        let unquoted = current.as_str().trim_matches('"').to_owned();
        for sent in [stale.as_str(), unquoted.as_str(), "W/\"x\"", "*"] {
            let error = ApiError::from(current.check(sent).expect_err("mismatch"));
            assert_eq!(error.code, Code::Aborted);
            assert_eq!(error.reason, "ETAG_MISMATCH");
        }
    }
}
