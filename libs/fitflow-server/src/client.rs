//! Clients for calling other FitFlow services over mTLS, carrying the trace
//! context and the caller's deadline.

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

/// A lazily-connecting mTLS channel to `server_name` at `endpoint`, presenting
/// the certificate in `paths`.
pub fn channel(
    endpoint: &str,
    server_name: &str,
    paths: &TlsPaths,
) -> Result<Channel, ClientError> {
    let endpoint = Endpoint::from_shared(endpoint.to_owned())
        .map_err(|_| ClientError::Endpoint(endpoint.to_owned()))?
        .tls_config(client_tls(paths, server_name)?)
        .map_err(|error| ClientError::Endpoint(error.to_string()))?
        .connect_timeout(Duration::from_secs(5))
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(30))
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
