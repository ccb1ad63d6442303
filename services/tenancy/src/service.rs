//! Tenancy as a platform service.

use fitflow_platform::{Service, ServiceContext, ServiceRoutes, StartFuture};
use fitflow_proto::tenancy::tenancy_service_server::TenancyServiceServer;
use fitflow_server::PeerPolicy;
use sqlx::migrate::Migrator;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use tonic::server::NamedService;

use crate::{Accounts, Directory, MIGRATOR, SERVICE, TenancyGrpc};

/// Largest request message: profiles and studios are small.
const MAX_MESSAGE: usize = 64 * 1024;

/// The tenancy service, for the platform's registry.
#[derive(Debug, Clone, Copy, Default)]
pub struct TenancyService;

impl Service for TenancyService {
    fn name(&self) -> &'static str {
        SERVICE
    }

    fn migrations(&self) -> &'static Migrator {
        &MIGRATOR
    }

    fn peer_policy(&self) -> PeerPolicy {
        crate::peer_policy()
    }

    fn start(&self, context: ServiceContext) -> StartFuture<'_> {
        Box::pin(async move {
            let identity = context.peers.channel("identity").map_err(|error| {
                anyhow::anyhow!("cannot prepare the channel to identity: {error}")
            })?;
            let directory = Directory::new(context.pool, context.keyring, Accounts::new(identity));
            Ok(
                ServiceRoutes::new().add_service(OversizeIsResourceExhausted(
                    TenancyServiceServer::new(TenancyGrpc::new(directory))
                        .max_decoding_message_size(MAX_MESSAGE),
                )),
            )
        })
    }
}

/// tonic refuses a request over `max_decoding_message_size` with OUT_OF_RANGE;
/// gRPC's status code table names RESOURCE_EXHAUSTED for a message larger
/// than the server accepts, and that is what clients (and the contract)
/// expect. A unary refusal is a trailers-only response, so its status is in
/// the headers.
#[derive(Debug, Clone)]
struct OversizeIsResourceExhausted<S>(S);

impl<S: NamedService> NamedService for OversizeIsResourceExhausted<S> {
    const NAME: &'static str = S::NAME;
}

impl<S, B> tower::Service<http::Request<tonic::body::Body>> for OversizeIsResourceExhausted<S>
where
    S: tower::Service<
            http::Request<tonic::body::Body>,
            Response = http::Response<B>,
            Error = Infallible,
        >,
    S::Future: Send + 'static,
{
    type Response = http::Response<B>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, context: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.0.poll_ready(context)
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        let response = self.0.call(request);
        Box::pin(async move {
            let mut response = response.await?;
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
            Ok(response)
        })
    }
}
