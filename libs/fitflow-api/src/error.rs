//! The crate's one error type and its one mapping into [`ApiError`].

use fitflow_db::DbError;
use fitflow_error::ApiError;
use tonic::Code;

pub(crate) const ETAG_MISMATCH: &str = "ETAG_MISMATCH";
pub(crate) const RESOURCE_ALREADY_DELETED: &str = "RESOURCE_ALREADY_DELETED";
pub(crate) const RESOURCE_NOT_DELETED: &str = "RESOURCE_NOT_DELETED";
pub(crate) const RESOURCE_DELETED: &str = "RESOURCE_DELETED";
pub(crate) const REQUEST_ID_REUSED: &str = "REQUEST_ID_REUSED";

/// A contract rule refused the request, or the idempotency table failed.
/// Bad input is not here: it is a field violation in `Violations`.
#[derive(Debug, thiserror::Error)]
pub enum ContractError {
    /// The request's etag is not the resource's current one (AIP-154).
    #[error("etag mismatch")]
    EtagMismatch,
    /// Delete of a resource that is soft-deleted already (AIP-164).
    #[error("{resource} already deleted")]
    AlreadyDeleted {
        /// The kind of resource, lowercase, e.g. `client`.
        resource: &'static str,
    },
    /// Undelete of a resource that is not deleted (AIP-164).
    #[error("{resource} not deleted")]
    NotDeleted {
        /// The kind of resource, lowercase.
        resource: &'static str,
    },
    /// A mutation of a soft-deleted resource (AIP-164).
    #[error("{resource} is deleted")]
    Deleted {
        /// The kind of resource, lowercase.
        resource: &'static str,
    },
    /// A request id sent again with a different request (AIP-155).
    #[error("request id reused for a different request")]
    RequestIdReused,
    /// PostgreSQL failed; its text is only logged.
    #[error(transparent)]
    Database(#[from] DbError),
}

impl From<sqlx::Error> for ContractError {
    fn from(error: sqlx::Error) -> Self {
        ContractError::Database(DbError::from(error))
    }
}

impl From<ContractError> for ApiError {
    fn from(error: ContractError) -> Self {
        match error {
            // ABORTED, not FAILED_PRECONDITION (the 2019 text of AIP-154):
            // gRPC reserves ABORTED for concurrency conflicts that the caller
            // resolves by re-reading and retrying its read-modify-write, which
            // is exactly what a stale etag asks for.
            ContractError::EtagMismatch => ApiError::new(
                Code::Aborted,
                "ETAG_MISMATCH",
                "the resource changed since it was read; read it again and retry with its new etag",
            ),
            ContractError::AlreadyDeleted { resource } => ApiError::new(
                Code::NotFound,
                "RESOURCE_ALREADY_DELETED",
                format!("the {resource} is already deleted"),
            ),
            ContractError::NotDeleted { resource } => ApiError::new(
                Code::AlreadyExists,
                "RESOURCE_NOT_DELETED",
                format!("the {resource} is not deleted"),
            ),
            ContractError::Deleted { resource } => ApiError::new(
                Code::FailedPrecondition,
                "RESOURCE_DELETED",
                format!("the {resource} is deleted; undelete it first"),
            ),
            ContractError::RequestIdReused => ApiError::new(
                Code::AlreadyExists,
                "REQUEST_ID_REUSED",
                "this request_id was already used for a different request; send a new request_id",
            ),
            ContractError::Database(error) => error.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_contract_error_maps_to_its_documented_code_and_a_listed_reason() {
        let cases = [
            (ContractError::EtagMismatch, Code::Aborted),
            (
                ContractError::AlreadyDeleted { resource: "client" },
                Code::NotFound,
            ),
            (
                ContractError::NotDeleted { resource: "client" },
                Code::AlreadyExists,
            ),
            (
                ContractError::Deleted { resource: "client" },
                Code::FailedPrecondition,
            ),
            (ContractError::RequestIdReused, Code::AlreadyExists),
            (
                ContractError::from(sqlx::Error::PoolTimedOut),
                Code::Unavailable,
            ),
            (
                ContractError::from(sqlx::Error::RowNotFound),
                Code::Internal,
            ),
        ];
        for (error, code) in cases {
            let api = ApiError::from(error);
            assert_eq!(api.code, code, "{api}");
            assert!(crate::REASONS.contains(&api.reason), "{}", api.reason);
        }
    }

    #[test]
    fn messages_name_the_kind_of_resource_and_never_database_text() {
        let api = ApiError::from(ContractError::Deleted {
            resource: "invoice",
        });
        assert_eq!(api.message, "the invoice is deleted; undelete it first");
        let api = ApiError::from(ContractError::from(sqlx::Error::Protocol(
            "relation idempotency_keys".to_owned(),
        )));
        assert!(!api.message.contains("idempotency_keys"));
    }
}
