//! Soft delete (AIP-164): which rows a read shows and what Delete, Undelete
//! and Update may do, from a row's `deleted_at`.
//!
//! The rules, after AIP-164:
//! - List hides deleted resources unless `show_deleted` is true; Get returns a
//!   deleted resource (its `delete_time` says so) rather than NOT_FOUND.
//! - Delete of a live resource marks it deleted. Delete of a deleted one is
//!   NOT_FOUND (`RESOURCE_ALREADY_DELETED`), or a success that changes nothing
//!   when the request sets `allow_missing`.
//! - Undelete of a deleted resource restores it; of a live one it is
//!   ALREADY_EXISTS (`RESOURCE_NOT_DELETED`).
//! - Update (and any other mutation) of a deleted resource is
//!   FAILED_PRECONDITION (`RESOURCE_DELETED`): undelete it first.
//!
//! Take these decisions on the row read `FOR UPDATE` in the write's transaction.

use chrono::{DateTime, Utc};

use crate::ContractError;

/// Which rows a List shows, from its `show_deleted` field. In SQL:
/// `WHERE ($n OR deleted_at IS NULL)` bound to [`ShowDeleted::includes_deleted`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShowDeleted(pub bool);

impl ShowDeleted {
    /// Whether deleted rows are shown too.
    pub fn includes_deleted(self) -> bool {
        self.0
    }

    /// Whether a row deleted at `deleted_at` (`None`: live) is shown.
    pub fn shows(self, deleted_at: Option<DateTime<Utc>>) -> bool {
        self.0 || deleted_at.is_none()
    }
}

/// What a Delete does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteStep {
    /// Mark the live resource deleted.
    MarkDeleted,
    /// It is deleted already and the caller allowed that: change nothing,
    /// answer with the resource as it is.
    AlreadyDeleted,
}

/// The Delete of a `resource` (e.g. `client`) deleted at `deleted_at`
/// (`None`: live); `allow_missing` is the request's field (false when the
/// method has none).
pub fn check_delete(
    resource: &'static str,
    deleted_at: Option<DateTime<Utc>>,
    allow_missing: bool,
) -> Result<DeleteStep, ContractError> {
    match (deleted_at, allow_missing) {
        (None, _) => Ok(DeleteStep::MarkDeleted),
        (Some(_), true) => Ok(DeleteStep::AlreadyDeleted),
        (Some(_), false) => Err(ContractError::AlreadyDeleted { resource }),
    }
}

/// Whether an Undelete may restore a `resource` deleted at `deleted_at`.
pub fn check_undelete(
    resource: &'static str,
    deleted_at: Option<DateTime<Utc>>,
) -> Result<(), ContractError> {
    match deleted_at {
        Some(_) => Ok(()),
        None => Err(ContractError::NotDeleted { resource }),
    }
}

/// Whether an Update or other mutation may change a `resource` deleted at `deleted_at`.
pub fn check_mutable(
    resource: &'static str,
    deleted_at: Option<DateTime<Utc>>,
) -> Result<(), ContractError> {
    match deleted_at {
        None => Ok(()),
        Some(_) => Err(ContractError::Deleted { resource }),
    }
}

#[cfg(test)]
mod tests {
    use fitflow_error::ApiError;
    use tonic::Code;

    use super::*;

    fn deleted() -> Option<DateTime<Utc>> {
        DateTime::from_timestamp(1_764_300_000, 0)
    }

    fn code_and_reason(error: ContractError) -> (Code, &'static str) {
        let api = ApiError::from(error);
        (api.code, api.reason)
    }

    #[test]
    fn a_list_hides_deleted_rows_unless_show_deleted() {
        assert!(ShowDeleted(false).shows(None));
        assert!(!ShowDeleted(false).shows(deleted()));
        assert!(ShowDeleted(true).shows(deleted()));
        assert!(ShowDeleted(true).includes_deleted());
    }

    #[test]
    fn deleting_a_live_resource_marks_it_deleted() {
        assert_eq!(
            check_delete("client", None, false).expect("allowed"),
            DeleteStep::MarkDeleted
        );
    }

    #[test]
    fn deleting_a_deleted_resource_is_not_found_unless_allow_missing() {
        let error = check_delete("client", deleted(), false).expect_err("refused");
        assert_eq!(
            code_and_reason(error),
            (Code::NotFound, "RESOURCE_ALREADY_DELETED")
        );
        assert_eq!(
            check_delete("client", deleted(), true).expect("allowed"),
            DeleteStep::AlreadyDeleted
        );
    }

    #[test]
    fn undeleting_a_live_resource_is_already_exists() {
        let error = check_undelete("client", None).expect_err("refused");
        assert_eq!(
            code_and_reason(error),
            (Code::AlreadyExists, "RESOURCE_NOT_DELETED")
        );
        assert!(check_undelete("client", deleted()).is_ok());
    }

    #[test]
    fn updating_a_deleted_resource_is_a_failed_precondition() {
        let error = check_mutable("client", deleted()).expect_err("refused");
        assert_eq!(
            code_and_reason(error),
            (Code::FailedPrecondition, "RESOURCE_DELETED")
        );
        assert!(check_mutable("client", None).is_ok());
    }
}
