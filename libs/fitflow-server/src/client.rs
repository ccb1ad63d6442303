//! Clients for calling other FitFlow services over mTLS, carrying the trace
//! context and the caller's deadline.
//!
//! tonic starts a request's own timeout only once its connection is ready, so
//! connecting and the TLS handshake are bounded here, once, for every
//! channel: a peer that accepts the TCP connection and never answers (a hung
//! process, a port held by something else) fails the call as UNAVAILABLE
//! instead of holding it.

use std::time::Duration;

use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};

use crate::tls::{TlsError, TlsPaths, client_tls};

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
