//! Outbox errors.

use fitflow_error::ApiError;

/// A failure writing to or relaying from the outbox.
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    /// The event cannot be recorded as built (a bug in the calling service).
    #[error("the audit event is incomplete: {0}")]
    InvalidEvent(&'static str),
    /// PostgreSQL failed; its text is only logged.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
}

impl From<OutboxError> for ApiError {
    fn from(error: OutboxError) -> Self {
        ApiError::internal(&error)
    }
}
