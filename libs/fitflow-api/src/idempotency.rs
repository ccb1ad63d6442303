//! Idempotent creates with `request_id` (AIP-155, DESIGN.md §11).
//!
//! The same `request_id` from the same caller to the same method within
//! [`RETENTION`] (24 h) returns the first result. The platform table
//! `idempotency_keys` in every service schema holds, per create, the caller,
//! the method, the request id, a SHA-256 of the request and the created
//! resource's id — never the request itself, so no PHI lands outside sealed
//! columns; a replay re-reads the resource by id and answers with its current
//! state (AIP-155 allows that "stale success" form). The hash is salted with
//! the request id, a random UUID, so it cannot be matched against guessed
//! requests.
//!
//! A create handler, inside its own transaction (READ COMMITTED, the
//! default — `fitflow_db::tx`):
//! ```text
//! let resource_id = Uuid::now_v7();
//! match idempotency::claim(&mut tx, &key, &hash, resource_id).await? {
//!     Claim::New => { insert the resource with resource_id, outbox, commit }
//!     Claim::Replay(existing) => { read `existing`, commit, answer with it }
//! }
//! ```
//! The claim names the id the create will use, so a record never exists
//! without its resource: both commit together or neither does, and a failed
//! create leaves the request id free for a retry.
//!
//! A create that asks other services before its transaction (whose answers
//! may change: a contract ended, a share revoked) first reads
//! [`committed`], so a retry of a create that committed answers its first
//! result instead of a new refusal; the claim still settles races.
//!
//! Concurrency: two creates with the same key race on the table's primary key.
//! The second's insert waits on the first's uncommitted row; when the first
//! commits, the second finds the row and answers Replay (or
//! `REQUEST_ID_REUSED` if its request differs); when the first rolls back, the
//! second becomes the New one. Exactly one resource results. Under REPEATABLE
//! READ or SERIALIZABLE the waiting side gets a serialization failure instead,
//! which is why the transaction must be READ COMMITTED.
//!
//! Records older than [`RETENTION`] count as absent (a claim takes the key
//! over) and [`prune_expired`] deletes them.

use chrono::TimeDelta;
use fitflow_auth::Caller;
use fitflow_error::Violations;
use ring::digest;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::{ContractError, caller_subject};

/// How long a request id is remembered.
pub const RETENTION: TimeDelta = TimeDelta::hours(24);

/// Separates request hashes from any other SHA-256 of the same bytes.
const HASH_CONTEXT: &[u8] = b"fitflow.idempotency.request.v1";

/// The `request_id` field: `None` when empty (the create is not idempotent).
/// Otherwise it must be a UUID in its canonical 36-character form and not the
/// nil UUID, else a violation on `field` is recorded.
pub fn request_id(violations: &mut Violations, field: &str, value: &str) -> Option<Uuid> {
    if value.is_empty() {
        return None;
    }
    // One spelling per id: a braced or unhyphenated form of the same UUID
    // would hash differently and look like a reused request id.
    let parsed = (value.len() == 36)
        .then(|| Uuid::try_parse(value).ok())
        .flatten()
        .filter(|id| !id.is_nil());
    violations.check(
        parsed.is_some(),
        field,
        "must be a random UUID in its 36-character form, or empty",
    );
    parsed
}

/// The idempotency record of a create carrying a `request_id` (AIP-155):
/// its key (caller, method, the parsed id) and the hash of the request
/// without its id, so that every spelling of one id (Swift sends capitals)
/// replays the same create. `None` when the field is empty, or invalid (then
/// a violation on `request_id` is recorded).
pub fn record<M: prost::Message + Clone>(
    violations: &mut Violations,
    caller: &Caller,
    method: &'static str,
    request: &M,
    request_id_field: fn(&mut M) -> &mut String,
) -> Option<(IdempotencyKey, RequestHash)> {
    let mut without_id = request.clone();
    let value = std::mem::take(request_id_field(&mut without_id));
    let id = request_id(violations, "request_id", &value)?;
    let key = IdempotencyKey::new(caller, method, id);
    let hash = RequestHash::of(&key, &without_id.encode_to_vec());
    Some((key, hash))
}

/// Who sent which request id to which method: the record's primary key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey {
    principal: String,
    method: &'static str,
    request_id: Uuid,
}

impl IdempotencyKey {
    /// The key of `request_id` sent by `caller` to `method`, the full gRPC
    /// method path (`/fitflow.clients.v1.ClientService/CreateClient`).
    /// Anonymous callers share one namespace; that is safe because request
    /// ids are random and a replay must carry the identical request.
    pub fn new(caller: &Caller, method: &'static str, request_id: Uuid) -> Self {
        Self {
            principal: caller_subject(caller),
            method,
            request_id,
        }
    }

    /// The request id.
    pub fn request_id(&self) -> Uuid {
        self.request_id
    }
}

/// SHA-256 of a request, salted with its key.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct RequestHash([u8; 32]);

impl RequestHash {
    /// The hash of `request` — the request message as the handler received
    /// it, in a deterministic encoding (prost's encoding of a message without
    /// map fields) — under `key`.
    pub fn of(key: &IdempotencyKey, request: &[u8]) -> Self {
        let mut context = digest::Context::new(&digest::SHA256);
        for part in [
            HASH_CONTEXT,
            key.principal.as_bytes(),
            key.method.as_bytes(),
            key.request_id.as_bytes(),
            request,
        ] {
            let length = u64::try_from(part.len()).unwrap_or(u64::MAX);
            context.update(&length.to_be_bytes());
            context.update(part);
        }
        let mut hash = [0; 32];
        hash.copy_from_slice(context.finish().as_ref());
        Self(hash)
    }
}

// A hash of a request that may hold PHI: nothing to gain from printing it.
impl std::fmt::Debug for RequestHash {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("RequestHash(..)")
    }
}

/// What a create does after claiming its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// First time: create the resource with the id given to [`claim`].
    New,
    /// Seen before with the same request: answer with this resource.
    Replay(Uuid),
}

/// Claims `key` for the create of `resource_id` in the caller's transaction
/// `conn`. Returns [`Claim::New`] (this create goes ahead; the record
/// commits or rolls back with it), [`Claim::Replay`] with the first create's
/// resource, or [`ContractError::RequestIdReused`] (ALREADY_EXISTS) when the
/// key was used for a different request. Waits while another transaction
/// holds the same key.
pub async fn claim(
    conn: &mut PgConnection,
    key: &IdempotencyKey,
    hash: &RequestHash,
    resource_id: Uuid,
) -> Result<Claim, ContractError> {
    // Inserts, or takes over an expired record. On a live record the WHERE
    // is false: nothing changes and no row comes back, but the row stays
    // locked until this transaction ends, so it cannot be pruned before the
    // SELECT below reads it.
    let claimed: Option<bool> = sqlx::query_scalar(
        "INSERT INTO idempotency_keys (principal, method, request_id, request_hash, resource_id) \
         VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (principal, method, request_id) DO UPDATE \
         SET request_hash = EXCLUDED.request_hash, resource_id = EXCLUDED.resource_id, \
             created_at = EXCLUDED.created_at \
         WHERE idempotency_keys.created_at < now() - $6::interval \
         RETURNING true",
    )
    .bind(&key.principal)
    .bind(key.method)
    .bind(key.request_id)
    .bind(hash.0.as_slice())
    .bind(resource_id)
    .bind(RETENTION)
    .fetch_optional(&mut *conn)
    .await?;
    if claimed.is_some() {
        return Ok(Claim::New);
    }
    // A new statement: under READ COMMITTED it sees the record the other
    // transaction committed while we waited.
    let (stored_hash, stored_resource_id): (Vec<u8>, Uuid) = sqlx::query_as(
        "SELECT request_hash, resource_id FROM idempotency_keys \
         WHERE principal = $1 AND method = $2 AND request_id = $3",
    )
    .bind(&key.principal)
    .bind(key.method)
    .bind(key.request_id)
    .fetch_one(&mut *conn)
    .await?;
    if stored_hash.as_slice() == hash.0.as_slice() {
        Ok(Claim::Replay(stored_resource_id))
    } else {
        Err(ContractError::RequestIdReused)
    }
}

/// The resource of a committed create under `key` with this request, if
/// any — a read, outside any claim: a create whose checks ask other
/// services (and could now refuse: a contract ended, a share revoked since)
/// looks here first, so that a retry of a create that committed answers its
/// first result (AIP-155) instead of a new refusal. `None` when the key is
/// free, expired, or held by a create not yet committed: the [`claim`] in
/// the create's transaction then decides, as before, and settles races.
/// [`ContractError::RequestIdReused`] when the key was used for a different
/// request. Keys are per caller, so only the same caller sees a replay.
pub async fn committed(
    conn: &mut PgConnection,
    key: &IdempotencyKey,
    hash: &RequestHash,
) -> Result<Option<Uuid>, ContractError> {
    let stored: Option<(Vec<u8>, Uuid)> = sqlx::query_as(
        "SELECT request_hash, resource_id FROM idempotency_keys \
         WHERE principal = $1 AND method = $2 AND request_id = $3 \
           AND created_at >= now() - $4::interval",
    )
    .bind(&key.principal)
    .bind(key.method)
    .bind(key.request_id)
    .bind(RETENTION)
    .fetch_optional(&mut *conn)
    .await?;
    match stored {
        None => Ok(None),
        Some((stored_hash, resource_id)) if stored_hash.as_slice() == hash.0.as_slice() => {
            Ok(Some(resource_id))
        }
        Some(_) => Err(ContractError::RequestIdReused),
    }
}

/// Deletes up to `max_rows` records older than [`RETENTION`]; returns how
/// many. Run it periodically (e.g. hourly) with a bound that keeps each
/// transaction short; a record being claimed concurrently is skipped.
pub async fn prune_expired(conn: &mut PgConnection, max_rows: i64) -> Result<u64, ContractError> {
    let deleted = sqlx::query(
        "DELETE FROM idempotency_keys \
         WHERE (principal, method, request_id) IN ( \
             SELECT principal, method, request_id FROM idempotency_keys \
             WHERE created_at < now() - $1::interval \
             LIMIT $2 FOR UPDATE SKIP LOCKED) \
         AND created_at < now() - $1::interval",
    )
    .bind(RETENTION)
    .bind(max_rows)
    .execute(&mut *conn)
    .await?;
    Ok(deleted.rows_affected())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A create request with an id and a body.
    #[derive(Clone, PartialEq, prost::Message)]
    struct Create {
        #[prost(string, tag = "1")]
        request_id: String,
        #[prost(string, tag = "2")]
        name: String,
    }

    fn recorded(request_id: &str, name: &str) -> Option<(IdempotencyKey, RequestHash)> {
        let request = Create {
            request_id: request_id.to_owned(),
            name: name.to_owned(),
        };
        let mut violations = Violations::new();
        let record = record(
            &mut violations,
            &Caller::Service("billing"),
            "/fitflow.billing.v1.BillingService/CreateInvoice",
            &request,
            |request| &mut request.request_id,
        );
        assert!(violations.is_empty());
        record
    }

    #[test]
    fn one_id_in_capitals_or_not_is_one_record_and_another_body_is_not() {
        let lower = recorded("0b8f6a2e-53d4-4c1e-9c55-2f1a2b3c4d5e", "a").expect("record");
        let upper = recorded("0B8F6A2E-53D4-4C1E-9C55-2F1A2B3C4D5E", "a").expect("record");
        assert_eq!(lower.0, upper.0);
        assert!(lower.1 == upper.1, "same request, same hash");
        let other = recorded("0b8f6a2e-53d4-4c1e-9c55-2f1a2b3c4d5e", "b").expect("record");
        assert!(lower.1 != other.1, "another body under the same id");
        assert!(recorded("", "a").is_none());
    }

    fn key(request_id: Uuid) -> IdempotencyKey {
        IdempotencyKey::new(
            &Caller::Service("billing"),
            "/fitflow.billing.v1.BillingService/CreateInvoice",
            request_id,
        )
    }

    fn parse(value: &str) -> Result<Option<Uuid>, ()> {
        let mut violations = Violations::new();
        let parsed = request_id(&mut violations, "request_id", value);
        violations.into_result().map(|()| parsed).map_err(|_| ())
    }

    #[test]
    fn an_empty_request_id_means_no_idempotency() {
        assert_eq!(parse(""), Ok(None));
    }

    #[test]
    fn a_request_id_must_be_a_canonical_non_nil_uuid() {
        let id = Uuid::new_v4();
        assert_eq!(parse(&id.to_string()), Ok(Some(id)));
        assert_eq!(parse(&id.to_string().to_uppercase()), Ok(Some(id)));
        assert!(parse(&id.simple().to_string()).is_err());
        assert!(parse(&id.braced().to_string()).is_err());
        assert!(parse(&Uuid::nil().to_string()).is_err());
        assert!(parse("create-invoice-42").is_err());
    }

    #[test]
    fn the_request_hash_depends_on_the_request_and_every_part_of_the_key() {
        let id = Uuid::new_v4();
        let base = RequestHash::of(&key(id), b"request");
        assert!(base == RequestHash::of(&key(id), b"request"));
        assert!(base != RequestHash::of(&key(id), b"request2"));
        assert!(base != RequestHash::of(&key(Uuid::new_v4()), b"request"));
        let other_caller = IdempotencyKey::new(
            &Caller::Service("clients"),
            "/fitflow.billing.v1.BillingService/CreateInvoice",
            id,
        );
        assert!(base != RequestHash::of(&other_caller, b"request"));
        let other_method = IdempotencyKey::new(
            &Caller::Service("billing"),
            "/fitflow.billing.v1.BillingService/CreatePayment",
            id,
        );
        assert!(base != RequestHash::of(&other_method, b"request"));
    }

    #[test]
    fn a_request_hash_never_prints_its_bytes() {
        let hash = RequestHash::of(&key(Uuid::new_v4()), b"request");
        assert_eq!(format!("{hash:?}"), "RequestHash(..)");
    }
}
