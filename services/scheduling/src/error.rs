//! Scheduling's errors and their one mapping to what callers see.

use fitflow_error::ApiError;
use tonic::Code;
use uuid::Uuid;

/// Everything that can go wrong in the scheduling service.
#[derive(Debug, thiserror::Error)]
pub enum SchedulingError {
    /// Already classified (bad input, role checks).
    #[error(transparent)]
    Rejected(#[from] ApiError),
    /// A platform contract rule (etag, request id).
    #[error(transparent)]
    Contract(#[from] fitflow_api::ContractError),
    /// The caller does not act for the trainer.
    #[error("trainer not found")]
    TrainerNotFound,
    /// No class type the caller may see.
    #[error("class type not found")]
    ClassTypeNotFound,
    /// No appointment the caller may see.
    #[error("appointment not found")]
    AppointmentNotFound,
    /// The trainer has an overlapping appointment.
    #[error("trainer busy")]
    TrainerBusy(Option<Uuid>),
    /// The class type takes no bookings.
    #[error("class type inactive")]
    ClassTypeInactive,
    /// An individual or trial class without a client.
    #[error("client required")]
    ClientRequired,
    /// Clients says no (or there is no such client).
    #[error("client not found")]
    ClientNotFound,
    /// The appointment's state refuses the change.
    #[error("appointment state")]
    AppointmentState,
    /// The clients service could not be asked.
    #[error("clients unavailable: {0}")]
    ClientsUnavailable(String),
    /// PostgreSQL failed.
    #[error(transparent)]
    Database(#[from] fitflow_db::DbError),
    /// Writing the audit event failed.
    #[error(transparent)]
    Outbox(#[from] fitflow_outbox::OutboxError),
    /// A stored value could not be read back.
    #[error("corrupt row: {0}")]
    Corrupt(&'static str),
}

impl From<sqlx::Error> for SchedulingError {
    fn from(error: sqlx::Error) -> Self {
        SchedulingError::Database(error.into())
    }
}

impl From<SchedulingError> for ApiError {
    fn from(error: SchedulingError) -> Self {
        match error {
            SchedulingError::Rejected(api) => api,
            SchedulingError::Contract(contract) => contract.into(),
            SchedulingError::TrainerNotFound => {
                ApiError::not_found("TRAINER_NOT_FOUND", "no such trainer")
            }
            SchedulingError::ClassTypeNotFound => {
                ApiError::not_found("CLASS_TYPE_NOT_FOUND", "no such class type")
            }
            SchedulingError::AppointmentNotFound => {
                ApiError::not_found("APPOINTMENT_NOT_FOUND", "no such appointment")
            }
            SchedulingError::TrainerBusy(conflict) => ApiError::new(
                Code::FailedPrecondition,
                "TRAINER_BUSY",
                match conflict {
                    Some(id) => format!("the trainer is booked at that time (appointment {id})"),
                    None => "the trainer is booked at that time".to_owned(),
                },
            ),
            SchedulingError::ClassTypeInactive => ApiError::new(
                Code::FailedPrecondition,
                "CLASS_TYPE_INACTIVE",
                "the class type takes no bookings",
            ),
            SchedulingError::ClientRequired => ApiError::new(
                Code::FailedPrecondition,
                "CLIENT_REQUIRED",
                "an individual or trial class needs a client",
            ),
            SchedulingError::ClientNotFound => {
                ApiError::not_found("CLIENT_NOT_FOUND", "no such client the caller may book")
            }
            SchedulingError::AppointmentState => ApiError::new(
                Code::FailedPrecondition,
                "APPOINTMENT_STATE",
                "the appointment is not scheduled",
            ),
            SchedulingError::ClientsUnavailable(_) => ApiError::unavailable(
                "DEPENDENCY_UNAVAILABLE",
                "the clients service cannot be reached; retry with backoff",
            ),
            SchedulingError::Database(error) => error.into(),
            SchedulingError::Outbox(error) => error.into(),
            SchedulingError::Corrupt(_) => ApiError::internal(&error),
        }
    }
}

impl From<SchedulingError> for tonic::Status {
    fn from(error: SchedulingError) -> Self {
        ApiError::from(error).into_status(crate::ERROR_DOMAIN)
    }
}
