//! Clients for calling other FitFlow services over mTLS, carrying the trace
//! context and the caller's deadline.
//!
//! tonic starts a request's own timeout only once its connection is ready, so
//! connecting and the TLS handshake are bounded here, once, for every
//! channel: a peer that accepts the TCP connection and never answers (a hung
//! process, a port held by something else) fails the call as UNAVAILABLE
//! instead of holding it.

use std::time::Duration;

use tonic::metadata::MetadataValue;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};

use crate::tls::{TlsError, TlsPaths, client_tls};

/// The user's token could not be forwarded: it is not a valid header value
/// (the token layer admits only tokens that are, so a caller never sees it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the bearer token is not a valid header value")]
pub struct UnforwardableToken;

/// A call to a peer made while serving a request: `message` with a timeout
/// of what that request has left, at most `limit` (connecting and the
/// handshake are bounded by the channel).
pub fn peer_request<T>(message: T, limit: Duration) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.set_timeout(crate::deadline::remaining().map_or(limit, |left| left.min(limit)));
    request
}

/// The same, carrying the user's `bearer` token (as
/// `fitflow_auth::forwarded_bearer` read it) to a peer that decides for
/// that user.
pub fn forwarding_request<T>(
    message: T,
    bearer: &str,
    limit: Duration,
) -> Result<tonic::Request<T>, UnforwardableToken> {
    let value =
        MetadataValue::try_from(format!("Bearer {bearer}")).map_err(|_| UnforwardableToken)?;
    let mut request = peer_request(message, limit);
    request.metadata_mut().insert("authorization", value);
    Ok(request)
}

/// Why a client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The endpoint URL is invalid.
    #[error("invalid endpoint {0}")]
    Endpoint(String),
    /// The TLS files are unusable.
    #[error(transparent)]
    Tls(#[from] TlsError),
}

/// Longest wait for a peer to accept the TCP connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Longest wait for a peer's TLS handshake once TCP is connected.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(3);

/// Longest wait for the answer to an HTTP/2 keep-alive ping before the
/// connection is closed and its calls fail as UNAVAILABLE: bounds a peer
/// that falls silent after the handshake, even under a stream with no deadline.
pub const KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(10);

/// A lazily-connecting mTLS channel to `server_name` at `endpoint`, presenting
/// the certificate in `paths`; connecting and the handshake are bounded by
/// [`CONNECT_TIMEOUT`] and [`HANDSHAKE_TIMEOUT`].
pub fn channel(
    endpoint: &str,
    server_name: &str,
    paths: &TlsPaths,
) -> Result<Channel, ClientError> {
    let endpoint = Endpoint::from_shared(endpoint.to_owned())
        .map_err(|_| ClientError::Endpoint(endpoint.to_owned()))?
        .tls_config(client_tls(paths, server_name)?.timeout(HANDSHAKE_TIMEOUT))
        .map_err(|error| ClientError::Endpoint(error.to_string()))?
        .connect_timeout(CONNECT_TIMEOUT)
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(30))
        .keep_alive_timeout(KEEP_ALIVE_TIMEOUT)
        .keep_alive_while_idle(true);
    Ok(endpoint.connect_lazy())
}

/// Adds the current trace context to every outgoing request and caps its
/// timeout at what the request being served has left.
pub fn trace_context(mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
    fitflow_telemetry::inject_current_context(request.metadata_mut());
    crate::deadline::propagate(request.metadata_mut());
    Ok(request)
}

/// A channel whose requests carry the current trace context and deadline.
pub type TracedChannel = InterceptedService<
    Channel,
    fn(tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status>,
>;

/// Wraps `channel` so that every request carries the current trace context and deadline.
pub fn traced(channel: Channel) -> TracedChannel {
    InterceptedService::new(channel, trace_context)
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    fn timeout_of<T>(request: &tonic::Request<T>) -> Option<Duration> {
        let value = request.metadata().get("grpc-timeout")?.to_str().ok()?;
        crate::deadline::parse_grpc_timeout(value)
    }

    #[test]
    fn a_peer_call_outside_any_request_waits_its_limit() {
        let request = peer_request((), Duration::from_secs(3));
        assert_eq!(timeout_of(&request), Some(Duration::from_secs(3)));
    }

    #[tokio::test]
    async fn a_peer_call_never_outlives_the_request_being_served() {
        let deadline = Instant::now() + Duration::from_secs(1);
        let request = crate::deadline::scope(Some(deadline), async {
            peer_request((), Duration::from_secs(3))
        })
        .await;
        let timeout = timeout_of(&request).expect("a timeout");
        assert!(timeout <= Duration::from_secs(1), "{timeout:?}");
    }

    #[test]
    fn a_forwarded_token_travels_as_the_bearer_and_a_token_that_is_no_header_value_is_refused() {
        let request = forwarding_request((), "abc.def.ghi", Duration::from_secs(3)).unwrap();
        assert_eq!(
            request.metadata().get("authorization").unwrap(),
            "Bearer abc.def.ghi"
        );
        assert_eq!(timeout_of(&request), Some(Duration::from_secs(3)));
        assert_eq!(
            forwarding_request((), "abc\ndef", Duration::from_secs(3)).unwrap_err(),
            UnforwardableToken
        );
    }
}
