//! The one mapping from FitFlow errors to `tonic::Status`.
//!
//! Every service defines its own `thiserror` enum and converts it into an
//! [`ApiError`]; [`ApiError::into_status`] is the only place a status is built,
//! so every error a caller sees carries `google.rpc.ErrorInfo` (reason and
//! domain) and, for bad input, `google.rpc.BadRequest` field violations.

use std::fmt;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// One invalid request field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    /// The field path, e.g. `email` or `events[3].event_id`.
    pub field: String,
    /// What is wrong, in lowercase without a trailing period.
    pub description: String,
}

/// An error as the caller will see it: a canonical code, a machine-readable
/// reason, a message safe to show (no PHI, no secrets, no database text).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code:?} {reason}: {message}")]
pub struct ApiError {
    /// The canonical gRPC code.
    pub code: Code,
    /// UPPER_SNAKE reason for `google.rpc.ErrorInfo`.
    pub reason: &'static str,
    /// A human-readable message that is safe to return.
    pub message: String,
    /// Field violations, for INVALID_ARGUMENT.
    pub violations: Vec<FieldViolation>,
    /// `ErrorInfo.metadata`: values a caller may act on (a balance, a
    /// limit), never PHI or secrets.
    pub metadata: Vec<(&'static str, String)>,
}

impl ApiError {
    /// Builds an error with a code, reason and safe message.
    pub fn new(code: Code, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            reason,
            message: message.into(),
            violations: Vec::new(),
            metadata: Vec::new(),
        }
    }

    /// INVALID_ARGUMENT with field violations.
    pub fn invalid_argument(violations: Vec<FieldViolation>) -> Self {
        Self {
            code: Code::InvalidArgument,
            reason: "INVALID_ARGUMENT",
            message: "the request has invalid fields".to_owned(),
            violations,
            metadata: Vec::new(),
        }
    }

    /// UNAUTHENTICATED: no usable credentials.
    pub fn unauthenticated(reason: &'static str, message: impl Into<String>) -> Self {
        Self::new(Code::Unauthenticated, reason, message)
    }

    /// PERMISSION_DENIED: authenticated but not allowed.
    pub fn permission_denied(reason: &'static str, message: impl Into<String>) -> Self {
        Self::new(Code::PermissionDenied, reason, message)
    }

    /// NOT_FOUND.
    pub fn not_found(reason: &'static str, message: impl Into<String>) -> Self {
        Self::new(Code::NotFound, reason, message)
    }

    /// UNAVAILABLE: a dependency is down; the caller may retry.
    pub fn unavailable(reason: &'static str, message: impl Into<String>) -> Self {
        Self::new(Code::Unavailable, reason, message)
    }

    /// INTERNAL: a bug or an unexpected failure. The detail goes to the log
    /// (never to the caller), so pass only text free of PHI and secrets.
    pub fn internal(detail: &dyn fmt::Display) -> Self {
        tracing::error!(error = %detail, "internal error");
        Self::new(Code::Internal, "INTERNAL", "internal error")
    }

    /// Adds `key` = `value` to the error's `ErrorInfo.metadata`.
    #[must_use]
    pub fn with_metadata(mut self, key: &'static str, value: impl Into<String>) -> Self {
        self.metadata.push((key, value.into()));
        self
    }

    /// Converts into a status carrying `ErrorInfo` for `domain` (e.g.
    /// `fitflow.identity`) and `BadRequest` when there are field violations.
    pub fn into_status(self, domain: &str) -> Status {
        let mut details = ErrorDetails::with_error_info(
            self.reason,
            domain,
            self.metadata
                .iter()
                .map(|(key, value)| ((*key).to_owned(), value.clone()))
                .collect::<std::collections::HashMap<String, String>>(),
        );
        if !self.violations.is_empty() {
            let violations = self
                .violations
                .into_iter()
                .map(|v| tonic_types::FieldViolation::new(v.field, v.description))
                .collect::<Vec<_>>();
            details.set_bad_request(violations);
        }
        if matches!(
            self.code,
            Code::Internal | Code::Unavailable | Code::DataLoss
        ) {
            tracing::warn!(code = ?self.code, reason = self.reason, "request failed");
        } else {
            tracing::debug!(code = ?self.code, reason = self.reason, "request refused");
        }
        Status::with_error_details(self.code, self.message, details)
    }
}

/// Collects field violations while validating a request.
#[derive(Debug, Default)]
pub struct Violations(Vec<FieldViolation>);

impl Violations {
    /// An empty collection.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a violation of `field`.
    pub fn add(&mut self, field: impl Into<String>, description: impl Into<String>) {
        self.0.push(FieldViolation {
            field: field.into(),
            description: description.into(),
        });
    }

    /// Records a violation unless `ok`.
    pub fn check(&mut self, ok: bool, field: &str, description: &str) {
        if !ok {
            self.add(field, description);
        }
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many violations were recorded.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The violated fields' paths, in the order recorded.
    pub fn fields(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|violation| violation.field.as_str())
    }

    /// `Ok(())` when empty, else INVALID_ARGUMENT with every violation.
    pub fn into_result(self) -> Result<(), ApiError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ApiError::invalid_argument(self.0))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_argument_status_carries_every_field_violation_and_the_domain() {
        let mut violations = Violations::new();
        violations.add("email", "must be an email address");
        violations.check(false, "password", "must be at least 12 characters");
        let status = violations
            .into_result()
            .unwrap_err()
            .into_status("fitflow.identity");

        assert_eq!(status.code(), Code::InvalidArgument);
        let details = status.get_error_details();
        let info = details.error_info().expect("error info");
        assert_eq!(info.domain, "fitflow.identity");
        assert_eq!(info.reason, "INVALID_ARGUMENT");
        let fields: Vec<_> = details
            .bad_request()
            .expect("bad request")
            .field_violations
            .iter()
            .map(|v| v.field.as_str())
            .collect();
        assert_eq!(fields, ["email", "password"]);
    }

    #[test]
    fn metadata_travels_in_the_error_info() {
        let status = ApiError::new(Code::Aborted, "ETAG_MISMATCH", "changed meanwhile")
            .with_metadata("version", "12")
            .into_status("fitflow.billing");
        let details = status.get_error_details();
        let info = details.error_info().expect("error info");
        assert_eq!(info.metadata.get("version").map(String::as_str), Some("12"));
        assert_eq!(info.metadata.len(), 1);
    }

    #[test]
    fn internal_error_hides_its_detail_from_the_caller() {
        let status = ApiError::internal(&"duplicate key value violates users_email_key")
            .into_status("fitflow.identity");
        assert_eq!(status.code(), Code::Internal);
        assert!(!status.message().contains("users_email_key"));
    }
}
