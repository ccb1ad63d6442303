//! Contract helpers every FitFlow service uses the same way (DESIGN.md §5, §11).
//!
//! - [`canada`]: provinces, postal codes, phone numbers and email addresses.
//! - [`money`]: CAD amounts as the contracts carry them.
//! - [`text`]: every string field refuses NUL and every other control
//!   character (Unicode Cc); free text may hold tab, CR and LF. Lengths are
//!   counted in characters against explicit limits.
//! - [`time`]: `google.protobuf.Timestamp` ⇄ `DateTime<Utc>` and
//!   `google.type.Date` ⇄ `NaiveDate`, within years 1..=9999.
//! - [`page`]: `page_size` clamping and HMAC-signed page tokens bound to the
//!   query and the caller that made them (AIP-158).
//! - [`etag`]: strong etags from a row version and the check of a request's
//!   `etag` (AIP-154).
//! - [`field_mask`]: `update_mask` paths resolved against the updatable fields
//!   (AIP-134).
//! - [`search`]: a search box's words as a PostgreSQL `tsquery` that cannot
//!   carry the caller's operators.
//! - [`soft_delete`]: `show_deleted`, Delete, Undelete and mutation rules (AIP-164).
//! - [`idempotency`]: `request_id` on creates (AIP-155), backed by the platform
//!   table `idempotency_keys` (`libs/fitflow-db/platform/0003_idempotency_keys`).
//!
//! Validation helpers are free functions that take the handler's
//! [`Violations`] (re-exported from `fitflow-error`) and the field's path, so a
//! handler collects every bad field of a request and answers once with
//! `violations.into_result()`. Outcomes that are not bad input are
//! [`ContractError`]s, turned into [`ApiError`] in one `From` impl.
//!
//! # Error reasons
//!
//! Every `google.rpc.ErrorInfo` reason this crate can send, for the services'
//! `ErrorReason` enums:
//!
//! | reason | code | when |
//! |---|---|---|
//! | `INVALID_ARGUMENT` | INVALID_ARGUMENT | any field violation, with `BadRequest` details (bad text, time, date, `page_size`, `page_token`, `update_mask`, `request_id`) |
//! | `ETAG_MISMATCH` | ABORTED | the request's `etag` is not the resource's current etag |
//! | `RESOURCE_ALREADY_DELETED` | NOT_FOUND | Delete of a resource that is already soft-deleted |
//! | `RESOURCE_NOT_DELETED` | ALREADY_EXISTS | Undelete of a resource that is not deleted |
//! | `RESOURCE_DELETED` | FAILED_PRECONDITION | Update (or another mutation) of a soft-deleted resource |
//! | `REQUEST_ID_REUSED` | ALREADY_EXISTS | a `request_id` sent again with a different request |
//! | `DATABASE_UNAVAILABLE` | UNAVAILABLE | PostgreSQL unreachable (via `fitflow-db`) |
//! | `INTERNAL` | INTERNAL | any other database failure (via `fitflow-db`; the detail is only logged) |

mod error;

pub mod canada;
pub mod etag;
pub mod field_mask;
pub mod gate;
pub mod idempotency;
pub mod money;
pub mod page;
pub mod prose;
pub mod search;
pub mod soft_delete;
pub mod text;
pub mod time;

use fitflow_auth::Caller;

pub use error::ContractError;
pub use fitflow_error::{ApiError, FieldViolation, Violations};

/// Every `ErrorInfo` reason this crate sends, as listed in the crate docs.
pub const REASONS: [&str; 8] = [
    "INVALID_ARGUMENT",
    error::ETAG_MISMATCH,
    error::RESOURCE_ALREADY_DELETED,
    error::RESOURCE_NOT_DELETED,
    error::RESOURCE_DELETED,
    error::REQUEST_ID_REUSED,
    "DATABASE_UNAVAILABLE",
    "INTERNAL",
];

/// The stable name of whoever calls, which page tokens and idempotency
/// records are bound to: `user:<uuid>`, `service:<name>` or `anonymous`.
/// A user's tokens survive a token refresh (the session is not part of it).
fn caller_subject(caller: &Caller) -> String {
    match caller {
        Caller::User(principal) => format!("user:{}", principal.user_id),
        Caller::Service(name) => format!("service:{name}"),
        Caller::Anonymous => "anonymous".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use fitflow_auth::Principal;
    use uuid::Uuid;

    use super::*;

    #[test]
    fn callers_are_named_by_user_id_or_service_name_and_never_confused() {
        let user_id = Uuid::new_v4();
        let principal = Principal {
            user_id,
            session_id: Uuid::new_v4(),
            roles: vec![],
            supervised_trainer_ids: vec![],
            amr: vec![],
            studio_ids: Vec::new(),
            claims_truncated: false,
            claims_partial: false,
        };
        assert_eq!(
            caller_subject(&Caller::User(principal)),
            format!("user:{user_id}")
        );
        assert_eq!(
            caller_subject(&Caller::Service("billing")),
            "service:billing"
        );
        assert_eq!(caller_subject(&Caller::Anonymous), "anonymous");
    }
}
