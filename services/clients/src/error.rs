//! The clients service's errors and their one mapping to what callers see.

use fitflow_error::ApiError;
use tonic::Code;

use crate::domain::{PurgeRefusal, Shortfall};

/// Everything that can go wrong in the clients service.
#[derive(Debug, thiserror::Error)]
pub enum ClientsError {
    /// Already classified (bad input, role checks).
    #[error(transparent)]
    Rejected(#[from] ApiError),
    /// A platform contract rule (etag, soft delete, request id).
    #[error(transparent)]
    Contract(#[from] fitflow_api::ContractError),
    /// No client the caller may see.
    #[error("client not found")]
    ClientNotFound,
    /// The caller sees the client but may not do this.
    #[error("access level insufficient")]
    AccessLevelInsufficient,
    /// Health information without recorded consent.
    #[error("consent required")]
    ConsentRequired,
    /// A share naming the owner.
    #[error("share with owner")]
    ShareWithOwner,
    /// No share for that trainer.
    #[error("share not found")]
    ShareNotFound,
    /// The caller does not act for the new owner.
    #[error("transfer target not allowed")]
    TransferTargetNotAllowed,
    /// Purge refused.
    #[error("purge refused: {0:?}")]
    PurgeRefused(PurgeRefusal),
    /// Scheduling could not give the client's appointments (export).
    #[error("scheduling unavailable")]
    SchedulingUnavailable,
    /// Documentation could not give the client's notes and plans (export).
    #[error("documentation unavailable")]
    DocumentationUnavailable,
    /// Billing could not give the client's invoices and payments (export).
    #[error("billing unavailable")]
    BillingUnavailable,
    /// Identity could not say whose account an email is (share by email).
    #[error("identity unavailable")]
    IdentityUnavailable,
    /// Tenancy could not say whether an account has a trainer profile
    /// (share by email).
    #[error("tenancy unavailable")]
    TenancyUnavailable,
    /// No active account with a trainer profile uses the email given.
    #[error("trainer not found")]
    TrainerNotFound,
    /// The client's documentation or billing records are more than one
    /// export holds.
    #[error("export too large")]
    ExportTooLarge,
    /// PostgreSQL failed.
    #[error(transparent)]
    Database(#[from] fitflow_db::DbError),
    /// Sealing, opening or OpenBao failed.
    #[error(transparent)]
    Crypto(#[from] fitflow_crypto::CryptoError),
    /// Writing the audit event failed.
    #[error(transparent)]
    Outbox(#[from] fitflow_outbox::OutboxError),
    /// A stored value could not be read back (a bug or a manual edit).
    #[error("corrupt row: {0}")]
    Corrupt(&'static str),
}

impl From<sqlx::Error> for ClientsError {
    fn from(error: sqlx::Error) -> Self {
        ClientsError::Database(error.into())
    }
}

impl From<Shortfall> for ClientsError {
    fn from(shortfall: Shortfall) -> Self {
        match shortfall {
            Shortfall::Invisible => ClientsError::ClientNotFound,
            Shortfall::Insufficient => ClientsError::AccessLevelInsufficient,
        }
    }
}

impl From<ClientsError> for ApiError {
    fn from(error: ClientsError) -> Self {
        match error {
            ClientsError::Rejected(api) => api,
            ClientsError::Contract(contract) => contract.into(),
            ClientsError::ClientNotFound => {
                ApiError::not_found("CLIENT_NOT_FOUND", "no such client")
            }
            ClientsError::AccessLevelInsufficient => ApiError::permission_denied(
                "ACCESS_LEVEL_INSUFFICIENT",
                "the caller's access to this client does not allow this",
            ),
            ClientsError::ConsentRequired => ApiError::new(
                Code::FailedPrecondition,
                "CONSENT_REQUIRED",
                "health information needs the client's recorded consent (health_consent)",
            ),
            ClientsError::ShareWithOwner => ApiError::new(
                Code::FailedPrecondition,
                "SHARE_WITH_OWNER",
                "a client cannot be shared with its owner",
            ),
            ClientsError::ShareNotFound => {
                ApiError::not_found("SHARE_NOT_FOUND", "the trainer has no share of this client")
            }
            ClientsError::TransferTargetNotAllowed => ApiError::permission_denied(
                "TRANSFER_TARGET_NOT_ALLOWED",
                "only someone who acts for both trainers moves a client between them",
            ),
            ClientsError::PurgeRefused(PurgeRefusal::NotDeleted) => ApiError::new(
                Code::FailedPrecondition,
                "RESOURCE_NOT_DELETED",
                "only a soft-deleted client can be purged",
            ),
            ClientsError::PurgeRefused(PurgeRefusal::RetentionNotElapsed) => ApiError::new(
                Code::FailedPrecondition,
                "RETENTION_NOT_ELAPSED",
                "the client was deleted less than the retention period ago",
            ),
            ClientsError::SchedulingUnavailable => ApiError::unavailable(
                "DEPENDENCY_UNAVAILABLE",
                "scheduling cannot be reached for the client's appointments; retry with backoff",
            ),
            ClientsError::DocumentationUnavailable => ApiError::unavailable(
                "DEPENDENCY_UNAVAILABLE",
                "documentation cannot be reached for the client's notes; retry with backoff",
            ),
            ClientsError::BillingUnavailable => ApiError::unavailable(
                "DEPENDENCY_UNAVAILABLE",
                "billing cannot be reached for the client's invoices; retry with backoff",
            ),
            ClientsError::IdentityUnavailable => ApiError::unavailable(
                "DEPENDENCY_UNAVAILABLE",
                "identity cannot be reached to find the trainer by email; retry with backoff",
            ),
            ClientsError::TenancyUnavailable => ApiError::unavailable(
                "DEPENDENCY_UNAVAILABLE",
                "tenancy cannot be reached to find the trainer by email; retry with backoff",
            ),
            ClientsError::TrainerNotFound => {
                ApiError::not_found("TRAINER_NOT_FOUND", "no trainer uses this email address")
            }
            ClientsError::ExportTooLarge => ApiError::new(
                Code::FailedPrecondition,
                "EXPORT_TOO_LARGE",
                "the client's documentation (over 256 MiB) or billing records (over 64 MiB) are more than one export holds",
            ),
            ClientsError::Database(error) => error.into(),
            ClientsError::Crypto(error) => error.into(),
            ClientsError::Outbox(error) => error.into(),
            ClientsError::Corrupt(_) => ApiError::internal(&error),
        }
    }
}

impl From<ClientsError> for tonic::Status {
    fn from(error: ClientsError) -> Self {
        ApiError::from(error).into_status(crate::ERROR_DOMAIN)
    }
}
