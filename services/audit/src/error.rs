//! The audit service's errors, mapped once into [`ApiError`].

use fitflow_db::DbError;
use fitflow_error::{ApiError, FieldViolation};

/// Everything that can go wrong in the audit service.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The request has invalid fields.
    #[error("invalid request")]
    InvalidArgument(Vec<FieldViolation>),
    /// Writing or checking an archive file failed.
    #[error("archive: {0}")]
    Archive(String),
    /// A file operation failed.
    #[error("file: {0}")]
    Io(#[from] std::io::Error),
    /// PostgreSQL failed; its text is only logged.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
}

impl From<AuditError> for ApiError {
    fn from(error: AuditError) -> Self {
        match error {
            AuditError::InvalidArgument(violations) => ApiError::invalid_argument(violations),
            AuditError::Archive(_) | AuditError::Io(_) => ApiError::internal(&error),
            AuditError::Database(error) => DbError::from(error).into(),
        }
    }
}
