//! Tenancy's errors and their one mapping to what callers see.

use fitflow_error::ApiError;
use tonic::Code;

use crate::domain::ContractRefusal;

/// Everything that can go wrong in the tenancy service.
#[derive(Debug, thiserror::Error)]
pub enum TenancyError {
    /// Already classified (bad input, role or tenant checks).
    #[error(transparent)]
    Rejected(#[from] ApiError),
    /// A platform contract rule (etag, soft delete, request id).
    #[error(transparent)]
    Contract(#[from] fitflow_api::ContractError),
    /// No trainer profile the caller may see.
    #[error("trainer not found")]
    TrainerNotFound,
    /// The user has a profile already.
    #[error("trainer exists")]
    TrainerExists,
    /// The account is suspended or deleted.
    #[error("user not active")]
    UserNotActive,
    /// No such studio (or a soft-deleted one the caller does not manage).
    #[error("studio not found")]
    StudioNotFound,
    /// The caller manages neither the studio nor one above it.
    #[error("studio not managed by the caller")]
    StudioNotManaged,
    /// A cycle, too deep, a deleted or foreign parent.
    #[error("chain invalid: {0}")]
    ChainInvalid(&'static str),
    /// Live locations or contracts remain.
    #[error("studio in use")]
    StudioInUse,
    /// No contract the caller is a party to.
    #[error("contract not found")]
    ContractNotFound,
    /// A live contract exists for the pair.
    #[error("contract exists")]
    ContractExists,
    /// The contract's state or a date refuses the change.
    #[error("contract refused: {0:?}")]
    ContractRefused(ContractRefusal),
    /// The studio is inactive: no new contracts.
    #[error("studio inactive")]
    StudioInactive,
    /// Only the trainer's side answers an invitation.
    #[error("not the trainer")]
    NotTheTrainer,
    /// A version takes effect on that date already.
    #[error("rate version exists")]
    RateVersionExists,
    /// No contract covers the date.
    #[error("no contract on date")]
    NoContractOnDate,
    /// A team change would break the tree.
    #[error("team invalid: {0}")]
    TeamInvalid(&'static str),
    /// A pending invitation exists for the pair.
    #[error("team invitation exists")]
    TeamInvitationExists,
    /// No pending invitation for the caller.
    #[error("team invitation not found")]
    TeamInvitationNotFound,
    /// Identity could not be asked.
    #[error("identity unavailable: {0}")]
    IdentityUnavailable(String),
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

impl From<sqlx::Error> for TenancyError {
    fn from(error: sqlx::Error) -> Self {
        TenancyError::Database(error.into())
    }
}

impl From<TenancyError> for ApiError {
    fn from(error: TenancyError) -> Self {
        match error {
            TenancyError::Rejected(api) => api,
            TenancyError::Contract(contract) => contract.into(),
            TenancyError::TrainerNotFound => {
                ApiError::not_found("TRAINER_NOT_FOUND", "no such trainer")
            }
            TenancyError::TrainerExists => ApiError::new(
                Code::AlreadyExists,
                "TRAINER_EXISTS",
                "the user already has a trainer profile",
            ),
            TenancyError::UserNotActive => ApiError::new(
                Code::FailedPrecondition,
                "USER_NOT_ACTIVE",
                "the account is not active",
            ),
            TenancyError::StudioNotFound => {
                ApiError::not_found("STUDIO_NOT_FOUND", "no such studio")
            }
            TenancyError::StudioNotManaged => ApiError::permission_denied(
                "STUDIO_NOT_MANAGED",
                "the caller does not manage this studio",
            ),
            TenancyError::ChainInvalid(why) => ApiError::new(
                Code::FailedPrecondition,
                "CHAIN_INVALID",
                format!("the chain would be invalid: {why}"),
            ),
            TenancyError::StudioInUse => ApiError::new(
                Code::FailedPrecondition,
                "STUDIO_IN_USE",
                "the studio has live locations or contracts",
            ),
            TenancyError::ContractNotFound => {
                ApiError::not_found("CONTRACT_NOT_FOUND", "no such contract")
            }
            TenancyError::ContractExists => ApiError::new(
                Code::AlreadyExists,
                "CONTRACT_EXISTS",
                "the trainer already has a live contract with this studio",
            ),
            TenancyError::ContractRefused(ContractRefusal::WrongState) => ApiError::new(
                Code::FailedPrecondition,
                "CONTRACT_STATE",
                "the contract's state does not allow this",
            ),
            TenancyError::ContractRefused(ContractRefusal::Backdated) => ApiError::new(
                Code::FailedPrecondition,
                "RATE_BACKDATED",
                "the date lies before today in the studio's time zone or outside the contract",
            ),
            TenancyError::StudioInactive => ApiError::new(
                Code::FailedPrecondition,
                "STUDIO_INACTIVE",
                "the studio is inactive and takes no new contracts",
            ),
            TenancyError::NotTheTrainer => ApiError::permission_denied(
                "NOT_THE_TRAINER",
                "only the trainer answers an invitation; the studio withdraws it with EndContract",
            ),
            TenancyError::RateVersionExists => ApiError::new(
                Code::AlreadyExists,
                "RATE_VERSION_EXISTS",
                "a rate version already takes effect on this date",
            ),
            TenancyError::NoContractOnDate => ApiError::not_found(
                "NO_CONTRACT_ON_DATE",
                "no contract between this trainer and studio covers the date",
            ),
            TenancyError::TeamInvalid(why) => ApiError::new(
                Code::FailedPrecondition,
                "TEAM_INVALID",
                format!("the team would be invalid: {why}"),
            ),
            TenancyError::TeamInvitationExists => ApiError::new(
                Code::AlreadyExists,
                "TEAM_INVITATION_EXISTS",
                "a pending invitation for this trainer exists",
            ),
            TenancyError::TeamInvitationNotFound => ApiError::not_found(
                "TEAM_INVITATION_NOT_FOUND",
                "no pending invitation with this id for the caller",
            ),
            TenancyError::IdentityUnavailable(_) => ApiError::unavailable(
                "DEPENDENCY_UNAVAILABLE",
                "identity cannot be reached; retry with backoff",
            ),
            TenancyError::Database(error) => error.into(),
            TenancyError::Crypto(error) => error.into(),
            TenancyError::Outbox(error) => error.into(),
            TenancyError::Corrupt(_) => ApiError::internal(&error),
        }
    }
}

impl From<TenancyError> for tonic::Status {
    fn from(error: TenancyError) -> Self {
        ApiError::from(error).into_status(crate::ERROR_DOMAIN)
    }
}
