//! The audit service's errors, mapped once into [`ApiError`].

use fitflow_db::DbError;
use fitflow_error::{ApiError, FieldViolation};

/// Everything that can go wrong in the audit service.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The request has invalid fields.
    #[error("invalid request")]
    InvalidArgument(Vec<FieldViolation>),
    /// An ingest stream came without an mTLS peer identity, so its events
    /// cannot be tied to a source.
    #[error("the calling peer is not identified")]
    PeerRequired,
    /// Writing or checking an archive file failed.
    #[error("archive: {0}")]
    Archive(String),
    /// A file operation failed.
    #[error("file: {0}")]
    Io(#[from] std::io::Error),
    /// A rule the code itself keeps was broken: a bug.
    #[error("invariant: {0}")]
    Invariant(&'static str),
    /// The process already runs as many exports as it allows at once.
    #[error("too many exports at once")]
    ExportsBusy {
        /// When the caller may try again.
        retry_after: std::time::Duration,
    },
    /// PostgreSQL failed; its text is only logged.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
}

impl From<AuditError> for ApiError {
    fn from(error: AuditError) -> Self {
        match error {
            AuditError::InvalidArgument(violations) => ApiError::invalid_argument(violations),
            AuditError::PeerRequired => ApiError::unauthenticated(
                "PEER_UNIDENTIFIED",
                "audit ingestion needs a FitFlow service's client certificate",
            ),
            AuditError::ExportsBusy { .. } => ApiError::new(
                tonic::Code::ResourceExhausted,
                "EXPORTS_BUSY",
                "too many exports at once; try again shortly",
            ),
            AuditError::Archive(_) | AuditError::Io(_) | AuditError::Invariant(_) => {
                ApiError::internal(&error)
            }
            AuditError::Database(error) => DbError::from(error).into(),
        }
    }
}
