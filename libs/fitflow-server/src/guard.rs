//! The layer in front of every RPC: a server span continuing the caller's
//! trace, the peer allow-list, bearer-token verification, and the RPC
//! duration histogram.

use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use fitflow_auth::TokenVerifier;
use fitflow_error::ApiError;
use futures::future::BoxFuture;
use opentelemetry::KeyValue;
use opentelemetry::metrics::Histogram;
use tonic::body::Body;
use tracing::Instrument as _;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use crate::PeerInfo;
use crate::policy::PeerPolicy;

struct GuardState {
    service: &'static str,
    policy: PeerPolicy,
    verifier: Option<Arc<TokenVerifier>>,
    duration: Histogram<f64>,
}

/// Wraps a service's routes with tracing, peer policy, token checks and metrics.
#[derive(Clone)]
pub struct GuardLayer {
    state: Arc<GuardState>,
}

impl GuardLayer {
    /// A guard for `service` with `policy`; tokens are verified when `verifier` is set.
    pub fn new(
        service: &'static str,
        policy: PeerPolicy,
        verifier: Option<Arc<TokenVerifier>>,
    ) -> Self {
        let duration = opentelemetry::global::meter("fitflow")
            .f64_histogram("rpc.server.duration")
            .with_unit("s")
            .with_description("Duration of inbound RPCs")
            .build();
        Self {
            state: Arc::new(GuardState {
                service,
                policy,
                verifier,
                duration,
            }),
        }
    }
}

impl<S> tower::Layer<S> for GuardLayer {
    type Service = Guard<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Guard {
            inner,
            state: Arc::clone(&self.state),
        }
    }
}

/// The service [`GuardLayer`] produces.
#[derive(Clone)]
pub struct Guard<S> {
    inner: S,
    state: Arc<GuardState>,
}

impl<S> tower::Service<http::Request<Body>> for Guard<S>
where
    S: tower::Service<http::Request<Body>, Response = http::Response<Body>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<Body>) -> Self::Future {
        // The clone is not ready; keep the ready one for this call.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let state = Arc::clone(&self.state);
        Box::pin(async move {
            let method = request.uri().path().to_owned();
            let span = tracing::info_span!(
                "grpc.server",
                otel.name = %method.trim_start_matches('/'),
                otel.kind = "server",
                rpc.system = "grpc",
                rpc.service = state.service,
                rpc.grpc.status_code = tracing::field::Empty,
                enduser.id = tracing::field::Empty,
            );
            let _ = span.set_parent(fitflow_telemetry::extract_parent(request.headers()));
            let started = Instant::now();
            let deadline = crate::deadline::from_headers(request.headers());
            let serve = async {
                if let Err(error) = admit(&state, &mut request).await {
                    return Ok(error
                        .into_status(&format!("fitflow.{}", state.service))
                        .into_http());
                }
                inner.call(request).await
            };
            let response = crate::deadline::scope(deadline, serve.instrument(span.clone()))
                .await
                .map(oversize_is_resource_exhausted);
            let status_code = response.as_ref().map_or("2", |response| {
                // Errors answered without a body carry grpc-status in the headers;
                // otherwise it arrives in trailers, and the call itself succeeded.
                response
                    .headers()
                    .get("grpc-status")
                    .and_then(|value| value.to_str().ok())
                    .unwrap_or("0")
            });
            span.record("rpc.grpc.status_code", status_code);
            state.duration.record(
                started.elapsed().as_secs_f64(),
                &[
                    KeyValue::new("rpc.system", "grpc"),
                    KeyValue::new("rpc.service", state.service),
                    KeyValue::new("rpc.method", method),
                    KeyValue::new("rpc.grpc.status_code", status_code.to_owned()),
                ],
            );
            response
        })
    }
}

/// tonic refuses a request over a service's `max_decoding_message_size`
/// with OUT_OF_RANGE; gRPC's status code table names RESOURCE_EXHAUSTED for
/// a message larger than the server accepts, which is what clients (and the
/// contracts) expect, so every service answers it the same way. A unary
/// refusal is a trailers-only response: its status is in the headers. The
/// message text is how tonic's refusal is told apart from a handler's own
/// OUT_OF_RANGE; `huge_inputs_…` in the tenancy e2e tests would show a tonic
/// upgrade that changed it.
fn oversize_is_resource_exhausted(mut response: http::Response<Body>) -> http::Response<Body> {
    let headers = response.headers_mut();
    let out_of_range = headers
        .get("grpc-status")
        .is_some_and(|status| status == "11");
    // grpc-message is percent-encoded on the wire.
    let too_large = headers.get("grpc-message").is_some_and(|message| {
        message.to_str().is_ok_and(|message| {
            message
                .replace("%20", " ")
                .contains("message length too large")
        })
    });
    if out_of_range && too_large {
        headers.insert(
            "grpc-status",
            http::HeaderValue::from(tonic::Code::ResourceExhausted as i32),
        );
    }
    response
}

/// Checks the peer and the bearer token, and puts what it learned in the
/// request's extensions for the handlers.
async fn admit(state: &GuardState, request: &mut http::Request<Body>) -> Result<(), ApiError> {
    let peer = request
        .extensions()
        .get::<PeerInfo>()
        .and_then(|info| info.identity.clone());
    state.policy.check(request.uri().path(), peer.as_ref())?;
    if let Some(peer) = peer {
        request.extensions_mut().insert(peer);
    }

    let Some(header) = request.headers().get(http::header::AUTHORIZATION) else {
        return Ok(());
    };
    let token = header
        .to_str()
        .ok()
        .and_then(|value| value.strip_prefix("Bearer "))
        .ok_or_else(|| {
            ApiError::unauthenticated("TOKEN_INVALID", "authorization must be `Bearer <token>`")
        })?;
    let Some(verifier) = &state.verifier else {
        return Err(ApiError::unauthenticated(
            "TOKENS_NOT_ACCEPTED",
            "this service does not accept user tokens",
        ));
    };
    let principal = verifier.verify(token.trim()).await?;
    tracing::Span::current().record("enduser.id", tracing::field::display(principal.user_id));
    request.extensions_mut().insert(principal);
    Ok(())
}
