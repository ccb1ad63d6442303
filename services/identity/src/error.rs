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
    /// The email verification token is unknown, used or expired.
    #[error("email verification token invalid")]
    VerificationTokenInvalid,
    /// Too many failed logins for the account or the client address.
    #[error("login rate limited")]
    LoginRateLimited {
        /// How long until the lock ends.
        retry_after: std::time::Duration,
    },
    /// Too many wrong second-factor codes for the account.
    #[error("second factor locked")]
    SecondFactorLocked {
        /// How long until the lock ends.
        retry_after: std::time::Duration,
    },
    /// Too many password hashes are running or waiting; retry shortly.
    #[error("password hashing busy")]
    HashingBusy {
        /// When to try again.
        retry_after: std::time::Duration,
    },
    /// The MFA challenge is unknown, used or expired.
    #[error("mfa challenge invalid")]
    MfaChallengeInvalid,
    /// A wrong, reused or out-of-window TOTP code, or an unknown recovery code.
    #[error("mfa code invalid")]
    MfaCodeInvalid,
    /// MFA is on already.
    #[error("mfa already enabled")]
    MfaAlreadyEnabled,
    /// `ConfirmMfa` before `EnrollMfa`.
    #[error("mfa not enrolled")]
    MfaNotEnrolled,
    /// MFA is off.
    #[error("mfa not enabled")]
    MfaNotEnabled,
    /// No such session of the caller.
    #[error("session not found")]
    SessionNotFound,
    /// The password reset token is unknown, used or expired.
    #[error("password reset token invalid")]
    ResetTokenInvalid,
    /// The account is deleted; restore it first.
    #[error("account deleted")]
    AccountDeleted,
    /// An operator tried to drop their own operator role.
    #[error("cannot revoke own operator role")]
    CannotRevokeOwnOperator,
    /// A contract rule refused the request (a stale etag, a reused
    /// request id), or the idempotency table failed.
    #[error(transparent)]
    Contract(#[from] fitflow_api::ContractError),
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
    /// A stored value is not one the code writes (what, never the value).
    #[error("corrupt stored value: {0}")]
    Corrupt(&'static str),
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
            IdentityError::VerificationTokenInvalid => ApiError::new(
                Code::FailedPrecondition,
                "VERIFICATION_TOKEN_INVALID",
                "the verification token is unknown, used or expired",
            ),
            IdentityError::LoginRateLimited { .. } => ApiError::new(
                Code::ResourceExhausted,
                "LOGIN_RATE_LIMITED",
                "too many failed attempts; try again later",
            ),
            IdentityError::SecondFactorLocked { .. } => ApiError::new(
                Code::ResourceExhausted,
                "SECOND_FACTOR_LOCKED",
                "too many wrong codes; try again later",
            ),
            IdentityError::HashingBusy { .. } => ApiError::new(
                Code::ResourceExhausted,
                "PASSWORD_HASHING_BUSY",
                "too many sign-ins at once; try again shortly",
            ),
            IdentityError::MfaChallengeInvalid => ApiError::unauthenticated(
                "MFA_CHALLENGE_INVALID",
                "the mfa challenge is unknown, used or expired; log in again",
            ),
            IdentityError::MfaCodeInvalid => {
                ApiError::unauthenticated("MFA_CODE_INVALID", "the code is not valid")
            }
            IdentityError::MfaAlreadyEnabled => ApiError::new(
                Code::FailedPrecondition,
                "MFA_ALREADY_ENABLED",
                "mfa is already enabled",
            ),
            IdentityError::MfaNotEnrolled => ApiError::new(
                Code::FailedPrecondition,
                "MFA_NOT_ENROLLED",
                "call EnrollMfa first",
            ),
            IdentityError::MfaNotEnabled => ApiError::new(
                Code::FailedPrecondition,
                "MFA_NOT_ENABLED",
                "mfa is not enabled",
            ),
            IdentityError::SessionNotFound => {
                ApiError::not_found("SESSION_NOT_FOUND", "no such session")
            }
            IdentityError::ResetTokenInvalid => ApiError::new(
                Code::FailedPrecondition,
                "RESET_TOKEN_INVALID",
                "the reset token is unknown, used or expired",
            ),
            IdentityError::AccountDeleted => ApiError::new(
                Code::FailedPrecondition,
                "ACCOUNT_DELETED",
                "the account is deleted",
            ),
            IdentityError::CannotRevokeOwnOperator => ApiError::new(
                Code::FailedPrecondition,
                "CANNOT_REVOKE_OWN_OPERATOR",
                "an operator cannot revoke their own operator role",
            ),
            IdentityError::Contract(error) => error.into(),
            IdentityError::Database(error) => error.into(),
            IdentityError::Crypto(error) => error.into(),
            IdentityError::Outbox(error) => error.into(),
            IdentityError::Credentials | IdentityError::Signing(_) | IdentityError::Corrupt(_) => {
                ApiError::internal(&error)
            }
        }
    }
}

impl From<IdentityError> for tonic::Status {
    fn from(error: IdentityError) -> Self {
        use tonic_types::StatusExt as _;
        let retry_after = match &error {
            IdentityError::LoginRateLimited { retry_after }
            | IdentityError::SecondFactorLocked { retry_after }
            | IdentityError::HashingBusy { retry_after } => Some(*retry_after),
            _ => None,
        };
        let status = ApiError::from(error).into_status(crate::ERROR_DOMAIN);
        let Some(retry_after) = retry_after else {
            return status;
        };
        let mut details = status.get_error_details();
        details.set_retry_info(Some(retry_after));
        tonic::Status::with_error_details(status.code(), status.message(), details)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic_types::StatusExt as _;

    #[test]
    fn a_rate_limited_login_says_when_to_retry() {
        let status = tonic::Status::from(IdentityError::LoginRateLimited {
            retry_after: std::time::Duration::from_secs(90),
        });
        assert_eq!(status.code(), Code::ResourceExhausted);
        let details = status.get_error_details();
        assert_eq!(details.error_info().unwrap().reason, "LOGIN_RATE_LIMITED");
        assert_eq!(
            details.retry_info().unwrap().retry_delay,
            Some(std::time::Duration::from_secs(90))
        );
    }
}
