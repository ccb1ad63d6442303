//! Identity's errors and their one mapping to what callers see.

use fitflow_error::ApiError;
use tonic::Code;

/// Everything that can go wrong in the identity service.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// The request itself is invalid (already classified).
    #[error(transparent)]
    Rejected(#[from] ApiError),
    /// The email is registered already.
    #[error("email already registered")]
    EmailTaken,
    /// Unknown email or wrong password (deliberately indistinguishable).
    #[error("invalid credentials")]
    InvalidCredentials,
    /// The account is suspended.
    #[error("account suspended")]
    AccountSuspended,
    /// The refresh token is unknown, expired or its session revoked.
    #[error("refresh token invalid")]
    RefreshTokenInvalid,
    /// A spent refresh token was presented again: possible theft.
    #[error("refresh token reused")]
    RefreshTokenReused,
    /// The token's user no longer exists or is not active.
    #[error("user not found")]
    UserNotFound,
    /// PostgreSQL failed.
    #[error(transparent)]
    Database(#[from] fitflow_db::DbError),
    /// Sealing, opening or OpenBao failed.
    #[error(transparent)]
    Crypto(#[from] fitflow_crypto::CryptoError),
    /// Writing the audit event failed.
    #[error(transparent)]
    Outbox(#[from] fitflow_outbox::OutboxError),
    /// Password hashing or randomness failed.
    #[error("credential processing failed")]
    Credentials,
    /// Building or signing a token failed.
    #[error("token signing failed: {0}")]
    Signing(String),
}

impl From<sqlx::Error> for IdentityError {
    fn from(error: sqlx::Error) -> Self {
        IdentityError::Database(error.into())
    }
}

impl From<IdentityError> for ApiError {
    fn from(error: IdentityError) -> Self {
        match error {
            IdentityError::Rejected(api) => api,
            IdentityError::EmailTaken => ApiError::new(
                Code::AlreadyExists,
                "EMAIL_TAKEN",
                "an account with this email exists",
            ),
            IdentityError::InvalidCredentials => {
                ApiError::unauthenticated("INVALID_CREDENTIALS", "email or password is incorrect")
            }
            IdentityError::AccountSuspended => ApiError::new(
                Code::FailedPrecondition,
                "ACCOUNT_SUSPENDED",
                "the account is suspended",
            ),
            IdentityError::RefreshTokenInvalid => {
                ApiError::unauthenticated("REFRESH_TOKEN_INVALID", "the refresh token is not valid")
            }
            IdentityError::RefreshTokenReused => ApiError::unauthenticated(
                "REFRESH_TOKEN_REUSED",
                "the refresh token was already used; the session is revoked",
            ),
            IdentityError::UserNotFound => {
                ApiError::not_found("USER_NOT_FOUND", "the user does not exist")
            }
            IdentityError::Database(error) => error.into(),
            IdentityError::Crypto(error) => error.into(),
            IdentityError::Outbox(error) => error.into(),
            IdentityError::Credentials | IdentityError::Signing(_) => ApiError::internal(&error),
        }
    }
}

impl From<IdentityError> for tonic::Status {
    fn from(error: IdentityError) -> Self {
        ApiError::from(error).into_status(crate::ERROR_DOMAIN)
    }
}
