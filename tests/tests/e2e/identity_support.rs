//! Reading identity's error details in tests.

use tonic_types::StatusExt as _;

/// The `google.rpc.ErrorInfo` reason of `status`.
pub(crate) fn reason(status: &tonic::Status) -> String {
    status
        .get_error_details()
        .error_info()
        .map(|info| info.reason.clone())
        .unwrap_or_default()
}

/// The fields named by `google.rpc.BadRequest`.
pub(crate) fn violated_fields(status: &tonic::Status) -> Vec<String> {
    status
        .get_error_details()
        .bad_request()
        .map(|bad| {
            bad.field_violations
                .iter()
                .map(|violation| violation.field.clone())
                .collect()
        })
        .unwrap_or_default()
}

/// The `google.rpc.RetryInfo` delay of `status`.
pub(crate) fn retry_delay(status: &tonic::Status) -> Option<std::time::Duration> {
    status
        .get_error_details()
        .retry_info()
        .and_then(|info| info.retry_delay)
}
