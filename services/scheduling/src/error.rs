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
    /// Participants join group classes only.
    #[error("not a group class")]
    NotAGroupClass,
    /// The client is in the class already.
    #[error("participant exists")]
    ParticipantExists,
    /// The client is not in the class.
    #[error("participant not found")]
    ParticipantNotFound,
    /// No fee to waive.
    #[error("no fee")]
    NoFee,
    /// No availability rule the caller may see.
    #[error("availability rule not found")]
    AvailabilityRuleNotFound,
    /// The trainer has a rule that overlaps.
    #[error("availability rule overlap")]
    AvailabilityRuleOverlap(Option<Uuid>),
    /// The trainer already has as many rules as one may hold whose dates
    /// meet a new rule's.
    #[error("availability rule limit")]
    AvailabilityRuleLimit(usize),
    /// No availability exception the caller may see.
    #[error("availability exception not found")]
    AvailabilityExceptionNotFound,
    /// A series scope on an appointment of no series.
    #[error("not in series")]
    NotInSeries,
    /// An export's range holds more than it may carry.
    #[error("export too large")]
    ExportTooLarge,
    /// No such live studio in tenancy.
    #[error("studio not found")]
    StudioNotFound,
    /// The trainer's contracts with the studio do not cover that date.
    #[error("no studio contract")]
    NoStudioContract(chrono::NaiveDate),
    /// The caller does not manage the studio.
    #[error("studio not managed")]
    StudioNotManaged,
    /// The studio set no cancellation policy of its own.
    #[error("no studio policy")]
    NoStudioPolicy,
    /// Too many costly reads at once (free slots, exports); retry later.
    #[error(transparent)]
    Busy(#[from] fitflow_api::gate::Busy),
    /// The clients service could not be asked.
    #[error("clients unavailable: {0}")]
    ClientsUnavailable(String),
    /// The tenancy service could not be asked.
    #[error("tenancy unavailable: {0}")]
    TenancyUnavailable(String),
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
            SchedulingError::NotAGroupClass => ApiError::new(
                Code::FailedPrecondition,
                "NOT_A_GROUP_CLASS",
                "participants join group classes only",
            ),
            SchedulingError::ParticipantExists => ApiError::new(
                Code::AlreadyExists,
                "PARTICIPANT_EXISTS",
                "the client is already in this class",
            ),
            SchedulingError::ParticipantNotFound => {
                ApiError::not_found("PARTICIPANT_NOT_FOUND", "the client is not in this class")
            }
            SchedulingError::NoFee => ApiError::new(
                Code::FailedPrecondition,
                "NO_FEE",
                "the appointment owes no fee to waive",
            ),
            SchedulingError::AvailabilityRuleNotFound => {
                ApiError::not_found("AVAILABILITY_RULE_NOT_FOUND", "no such availability rule")
            }
            SchedulingError::AvailabilityRuleOverlap(conflict) => ApiError::new(
                Code::FailedPrecondition,
                "AVAILABILITY_RULE_OVERLAP",
                match conflict {
                    Some(id) => format!(
                        "the trainer has a rule on that weekday whose hours and dates overlap (rule {id})"
                    ),
                    None => "the trainer has a rule on that weekday whose hours and dates overlap"
                        .to_owned(),
                },
            ),
            SchedulingError::AvailabilityRuleLimit(limit) => ApiError::new(
                Code::FailedPrecondition,
                "AVAILABILITY_RULE_LIMIT",
                format!(
                    "the trainer has {limit} rules whose effective dates meet this one's, \
                     the most one may hold; end or delete some first"
                ),
            ),
            SchedulingError::AvailabilityExceptionNotFound => ApiError::not_found(
                "AVAILABILITY_EXCEPTION_NOT_FOUND",
                "no such availability exception",
            ),
            SchedulingError::NotInSeries => ApiError::new(
                Code::FailedPrecondition,
                "NOT_IN_SERIES",
                "the appointment belongs to no series: edit it alone (scope THIS)",
            ),
            SchedulingError::ExportTooLarge => ApiError::new(
                Code::FailedPrecondition,
                "EXPORT_TOO_LARGE",
                format!(
                    "the range holds more than {} appointments; export shorter ranges",
                    crate::domain::MAX_EXPORT_EVENTS
                ),
            ),
            SchedulingError::StudioNotFound => {
                ApiError::not_found("STUDIO_NOT_FOUND", "no such studio")
            }
            SchedulingError::NoStudioContract(date) => ApiError::new(
                Code::FailedPrecondition,
                "NO_STUDIO_CONTRACT",
                format!(
                    "the trainer holds no contract with the studio covering {date} \
                     (the studio's local date)"
                ),
            ),
            SchedulingError::StudioNotManaged => ApiError::new(
                Code::PermissionDenied,
                "STUDIO_NOT_MANAGED",
                "only the studio's managers see its roster",
            ),
            SchedulingError::NoStudioPolicy => ApiError::not_found(
                "NO_STUDIO_POLICY",
                "the studio set no cancellation policy; each trainer's own applies",
            ),
            SchedulingError::Busy(_) => ApiError::new(
                Code::ResourceExhausted,
                "SCHEDULING_BUSY",
                "too many of these requests at once; retry after the hinted delay",
            ),
            SchedulingError::TenancyUnavailable(_) => ApiError::unavailable(
                "DEPENDENCY_UNAVAILABLE",
                "the tenancy service cannot be reached; retry with backoff",
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
        use tonic_types::StatusExt as _;
        let retry_after = match &error {
            SchedulingError::Busy(busy) => Some(busy.retry_after),
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
