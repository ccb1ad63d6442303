//! The documentation service's errors and their one mapping to what callers see.

use fitflow_error::ApiError;
use tonic::Code;

/// Everything that can go wrong in the documentation service.
#[derive(Debug, thiserror::Error)]
pub enum DocumentationError {
    /// Already classified (bad input).
    #[error(transparent)]
    Rejected(#[from] ApiError),
    /// A platform contract rule (etag, request id).
    #[error(transparent)]
    Contract(#[from] fitflow_api::ContractError),
    /// The clients service does not admit the caller to the client.
    #[error("client not found")]
    ClientNotFound,
    /// The caller reads the client but may not write.
    #[error("access level insufficient")]
    AccessLevelInsufficient,
    /// No note the caller may see.
    #[error("note not found")]
    NoteNotFound,
    /// No appointment of a trainer the caller acts for, with this client.
    #[error("appointment not found")]
    AppointmentNotFound,
    /// The session was not held with the client present.
    #[error("not attended")]
    NotAttended,
    /// The session already has a note for this client.
    #[error("note exists")]
    NoteExists,
    /// A signed note never changes.
    #[error("note signed")]
    NoteSigned,
    /// A draft cannot be amended or shown to the client.
    #[error("note draft")]
    NoteDraft,
    /// Only the note's trainer signs or accepts.
    #[error("not the note's author")]
    NotNoteAuthor,
    /// No AI summary to accept.
    #[error("no ai summary")]
    NoAiSummary,
    /// No plan (version) the caller may see.
    #[error("plan not found")]
    PlanNotFound,
    /// The caller does not act for the trainer.
    #[error("trainer not found")]
    TrainerNotFound,
    /// The amendment would take the note with its history past its budget.
    #[error("note history too large")]
    NoteHistoryTooLarge,
    /// The one-message export would hold more than its budget.
    #[error("export too large")]
    ExportTooLarge,
    /// Clients, scheduling or tenancy could not answer.
    #[error("dependency unavailable: {0}")]
    DependencyUnavailable(String),
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

impl From<sqlx::Error> for DocumentationError {
    fn from(error: sqlx::Error) -> Self {
        DocumentationError::Database(error.into())
    }
}

impl From<DocumentationError> for ApiError {
    fn from(error: DocumentationError) -> Self {
        use DocumentationError as E;
        match error {
            E::Rejected(api) => api,
            E::Contract(contract) => contract.into(),
            E::ClientNotFound => ApiError::not_found("CLIENT_NOT_FOUND", "no such client"),
            E::AccessLevelInsufficient => ApiError::permission_denied(
                "ACCESS_LEVEL_INSUFFICIENT",
                "the caller's access to this client does not allow this",
            ),
            E::NoteNotFound => ApiError::not_found("NOTE_NOT_FOUND", "no such session note"),
            E::AppointmentNotFound => ApiError::not_found(
                "APPOINTMENT_NOT_FOUND",
                "no such appointment of a trainer the caller acts for, with this client",
            ),
            E::NotAttended => ApiError::new(
                Code::FailedPrecondition,
                "NOT_ATTENDED",
                "the appointment was not held with the client present",
            ),
            E::NoteExists => ApiError::new(
                Code::AlreadyExists,
                "NOTE_EXISTS",
                "the session already has a note for this client",
            ),
            E::NoteSigned => ApiError::new(
                Code::FailedPrecondition,
                "NOTE_SIGNED",
                "a signed note never changes; amend it with AmendSessionNote",
            ),
            E::NoteDraft => ApiError::new(
                Code::FailedPrecondition,
                "NOTE_DRAFT",
                "the note is a draft",
            ),
            E::NotNoteAuthor => ApiError::permission_denied(
                "NOT_NOTE_AUTHOR",
                "only the note's own trainer does this",
            ),
            E::NoAiSummary => ApiError::new(
                Code::FailedPrecondition,
                "NO_AI_SUMMARY",
                "the note has no AI summary",
            ),
            E::PlanNotFound => ApiError::not_found("PLAN_NOT_FOUND", "no such training plan"),
            E::TrainerNotFound => ApiError::not_found(
                "TRAINER_NOT_FOUND",
                "no trainer the caller acts for with this id",
            ),
            E::NoteHistoryTooLarge => ApiError::new(
                Code::FailedPrecondition,
                "NOTE_HISTORY_TOO_LARGE",
                "the note with its whole history would exceed 3.5 MiB; amend it with a shorter text",
            ),
            E::ExportTooLarge => ApiError::new(
                Code::FailedPrecondition,
                "EXPORT_TOO_LARGE",
                "the documentation exceeds one message's 64 MiB; use StreamClientDocumentation",
            ),
            E::DependencyUnavailable(_) => ApiError::unavailable(
                "DEPENDENCY_UNAVAILABLE",
                "a service documentation relies on cannot be reached; retry with backoff",
            ),
            E::Database(error) => error.into(),
            E::Crypto(error) => error.into(),
            E::Outbox(error) => error.into(),
            E::Corrupt(_) => ApiError::internal(&error),
        }
    }
}

impl From<DocumentationError> for tonic::Status {
    fn from(error: DocumentationError) -> Self {
        ApiError::from(error).into_status(crate::ERROR_DOMAIN)
    }
}
