//! The audit service's errors, mapped once into [`ApiError`].

use fitflow_db::DbError;
use fitflow_error::{ApiError, FieldViolation};

/// Everything that can go wrong in the audit service.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The request has invalid fields.
    #[error("invalid request")]
    InvalidArgument(Vec<FieldViolation>),
    /// The caller lacks the operator role.
    #[error("the operator role is required")]
    OperatorRequired,
    /// PostgreSQL failed; its text is only logged.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
}

impl From<AuditError> for ApiError {
    fn from(error: AuditError) -> Self {
        match error {
            AuditError::InvalidArgument(violations) => ApiError::invalid_argument(violations),
            AuditError::OperatorRequired => ApiError::permission_denied(
                "OPERATOR_ROLE_REQUIRED",
                "listing audit events needs the operator role",
            ),
            AuditError::Database(error) => DbError::from(error).into(),
        }
    }
}
