//! What every service's gRPC handlers do first and last: take the caller's
//! verified principal, refuse invalid fields, and turn an error into the
//! status callers see in the service's error domain.
//!
//! A handler module binds its domain once with [`handler_helpers!`], which
//! gives it `reject`, `principal` and `done`.

pub use fitflow_auth::Principal;
pub use fitflow_error::{ApiError, Violations};
pub use tonic::{Request, Status};

/// `error` as the status callers see, with `ErrorInfo` in `domain`.
pub fn reject(domain: &str, error: ApiError) -> Status {
    error.into_status(domain)
}

/// The principal the token layer verified for `request`; UNAUTHENTICATED
/// (`TOKEN_REQUIRED`) when the request carried no token.
pub fn principal<T>(domain: &str, request: &Request<T>) -> Result<Principal, Status> {
    fitflow_auth::principal(request)
        .cloned()
        .map_err(|error| reject(domain, error))
}

/// INVALID_ARGUMENT naming every field in `violations`, or `Ok` when there
/// is none.
pub fn done(domain: &str, violations: Violations) -> Result<(), Status> {
    violations
        .into_result()
        .map_err(|error| reject(domain, error))
}

/// Defines `reject`, `principal` and `done` (see [`reject`], [`principal`]
/// and [`done`]) in the calling module for the error domain `$domain`.
#[macro_export]
macro_rules! handler_helpers {
    ($domain:expr) => {
        /// `error` as the status callers see, in this service's error domain.
        fn reject(error: $crate::handler::ApiError) -> $crate::handler::Status {
            $crate::handler::reject($domain, error)
        }

        /// The caller's verified principal; UNAUTHENTICATED without a token.
        fn principal<T>(
            request: &$crate::handler::Request<T>,
        ) -> ::std::result::Result<$crate::handler::Principal, $crate::handler::Status> {
            $crate::handler::principal($domain, request)
        }

        /// INVALID_ARGUMENT naming every violated field, or nothing.
        fn done(
            violations: $crate::handler::Violations,
        ) -> ::std::result::Result<(), $crate::handler::Status> {
            $crate::handler::done($domain, violations)
        }
    };
}

#[cfg(test)]
mod tests {
    use tonic::Code;
    use tonic_types::StatusExt as _;

    use super::*;

    const DOMAIN: &str = "fitflow.widgets";

    crate::handler_helpers!(DOMAIN);

    #[test]
    fn a_request_without_a_principal_is_unauthenticated_in_the_services_domain() {
        let status = principal(&Request::new(())).expect_err("no token was verified");
        assert_eq!(status.code(), Code::Unauthenticated);
        let details = status.get_error_details();
        let info = details.error_info().expect("error info");
        assert_eq!(info.reason, "TOKEN_REQUIRED");
        assert_eq!(info.domain, DOMAIN);
    }

    #[test]
    fn violations_refuse_the_request_naming_every_field_and_none_let_it_pass() {
        assert!(done(Violations::new()).is_ok());
        let mut violations = Violations::new();
        violations.add("widget.name", "must not be empty");
        violations.add("request_id", "must be a UUID");
        let status = done(violations).expect_err("two violations");
        assert_eq!(status.code(), Code::InvalidArgument);
        let details = status.get_error_details();
        assert_eq!(details.error_info().expect("error info").domain, DOMAIN);
        let fields: Vec<_> = details
            .bad_request()
            .expect("field violations")
            .field_violations
            .iter()
            .map(|violation| violation.field.clone())
            .collect();
        assert_eq!(fields, ["widget.name", "request_id"]);
    }

    #[test]
    fn a_rejected_error_keeps_its_code_and_reason() {
        // A shared reason: the error_reasons test holds platform code to those.
        let status = reject(ApiError::permission_denied(
            "PEER_NOT_ALLOWED",
            "this peer may not call this method",
        ));
        assert_eq!(status.code(), Code::PermissionDenied);
        assert_eq!(
            status
                .get_error_details()
                .error_info()
                .expect("info")
                .reason,
            "PEER_NOT_ALLOWED"
        );
    }
}
