//! The caller's deadline, carried through a request so that downstream calls
//! made while serving it never outlive it (DESIGN §5).

use std::time::{Duration, Instant};

use tonic::metadata::MetadataMap;

tokio::task_local! {
    static DEADLINE: Instant;
}

/// The `grpc-timeout` header's name.
const GRPC_TIMEOUT: &str = "grpc-timeout";

/// Parses a `grpc-timeout` value: up to 8 digits and a unit (H, M, S, m, u, n).
pub fn parse_grpc_timeout(value: &str) -> Option<Duration> {
    let (digits, unit) = value.split_at(value.len().checked_sub(1)?);
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let amount: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(amount * 3600),
        "M" => Duration::from_secs(amount * 60),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    })
}

/// The deadline an incoming request's headers carry, if any.
pub(crate) fn from_headers(headers: &http::HeaderMap) -> Option<Instant> {
    let timeout = parse_grpc_timeout(headers.get(GRPC_TIMEOUT)?.to_str().ok()?)?;
    Instant::now().checked_add(timeout)
}

/// Runs `future` with `deadline` as the current request's deadline.
pub(crate) async fn scope<F: std::future::Future>(
    deadline: Option<Instant>,
    future: F,
) -> F::Output {
    match deadline {
        Some(deadline) => DEADLINE.scope(deadline, future).await,
        None => future.await,
    }
}

/// Time left before the request being served must be answered, if it has a deadline.
pub fn remaining() -> Option<Duration> {
    DEADLINE
        .try_with(|deadline| deadline.saturating_duration_since(Instant::now()))
        .ok()
}

/// Shortens an outgoing request's timeout to the time the current request has
/// left; an explicit shorter timeout is kept.
pub fn propagate(metadata: &mut MetadataMap) {
    let Some(left) = remaining() else {
        return;
    };
    let explicit = metadata
        .get(GRPC_TIMEOUT)
        .and_then(|value| value.to_str().ok())
        .and_then(parse_grpc_timeout);
    if explicit.is_some_and(|explicit| explicit <= left) {
        return;
    }
    // Milliseconds, rounded up so a nearly spent deadline still reads as 1m, not 0.
    let millis = left.as_millis().clamp(1, 99_999_999);
    if let Ok(value) = format!("{millis}m").parse() {
        metadata.insert(GRPC_TIMEOUT, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeouts_parse_in_every_unit_and_garbage_does_not() {
        assert_eq!(parse_grpc_timeout("2S"), Some(Duration::from_secs(2)));
        assert_eq!(
            parse_grpc_timeout("1500m"),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(parse_grpc_timeout("3H"), Some(Duration::from_secs(10_800)));
        assert_eq!(parse_grpc_timeout("7n"), Some(Duration::from_nanos(7)));
        for bad in ["", "S", "12", "123456789S", "-1S", "1x", "1.5S"] {
            assert_eq!(parse_grpc_timeout(bad), None, "{bad:?}");
        }
    }

    fn outgoing_timeout(explicit: Option<&str>) -> Option<Duration> {
        let mut metadata = MetadataMap::new();
        if let Some(explicit) = explicit {
            metadata.insert(GRPC_TIMEOUT, explicit.parse().unwrap());
        }
        propagate(&mut metadata);
        metadata
            .get(GRPC_TIMEOUT)
            .and_then(|value| parse_grpc_timeout(value.to_str().unwrap()))
    }

    #[tokio::test]
    async fn a_downstream_call_never_outlives_the_callers_deadline() {
        let deadline = Instant::now() + Duration::from_secs(2);
        scope(Some(deadline), async {
            let unbounded = outgoing_timeout(None).unwrap();
            assert!(unbounded <= Duration::from_secs(2) && unbounded > Duration::ZERO);
            let longer = outgoing_timeout(Some("5S")).unwrap();
            assert!(longer <= Duration::from_secs(2));
            assert_eq!(
                outgoing_timeout(Some("100m")),
                Some(Duration::from_millis(100))
            );
        })
        .await;
    }

    #[tokio::test]
    async fn without_a_caller_deadline_outgoing_timeouts_are_left_alone() {
        assert_eq!(outgoing_timeout(None), None);
        assert_eq!(outgoing_timeout(Some("5S")), Some(Duration::from_secs(5)));
    }
}
