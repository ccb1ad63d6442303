//! Serving one service's routes on its own mTLS port.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::service::Routes;
use tonic_health::ServingStatus;

use crate::GuardLayer;
use crate::incoming::tls_incoming;
use crate::tls::ReloadingCertResolver;

/// How often certificates are re-read from disk, so renewed ones take effect.
const CERT_RELOAD_INTERVAL: Duration = Duration::from_secs(300);

/// Limits and identity of one served port.
pub struct ServeOptions {
    /// The service's name (`identity`, `audit`, ...).
    pub service: &'static str,
    /// The fully-qualified gRPC service names it exposes, for health.
    pub grpc_services: Vec<&'static str>,
    /// Encoded descriptor sets beyond FitFlow's own contracts, for
    /// reflection (a service whose contracts live outside `fitflow-proto`).
    pub extra_descriptors: Vec<&'static [u8]>,
    /// The mTLS server config.
    pub tls: Arc<rustls::ServerConfig>,
    /// The resolver to reload certificates through.
    pub cert_resolver: Arc<ReloadingCertResolver>,
    /// Peer policy, token verification and metrics.
    pub guard: GuardLayer,
    /// At most this many RPCs run at once on one connection.
    pub concurrency_per_connection: usize,
    /// Upper bound on any RPC; a shorter `grpc-timeout` from the caller wins.
    pub request_timeout: Duration,
}

/// Serves `routes` plus health and reflection on `listener` until `shutdown`
/// is cancelled, then reports NOT_SERVING and drains in-flight RPCs.
pub async fn serve(
    listener: TcpListener,
    routes: Routes,
    options: ServeOptions,
    shutdown: CancellationToken,
) -> Result<(), tonic::transport::Error> {
    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    for name in options.grpc_services.iter().copied().chain([""]) {
        health_reporter
            .set_service_status(name, ServingStatus::Serving)
            .await;
    }
    // tonic-types' descriptors let grpcurl decode ErrorInfo and BadRequest details.
    let reflection = || {
        let mut builder = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(fitflow_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET);
        for descriptors in &options.extra_descriptors {
            builder = builder.register_encoded_file_descriptor_set(descriptors);
        }
        builder
    };
    let reflection_v1 = reflection()
        .build_v1()
        .map_err(|error| tracing::error!(%error, "reflection v1 unavailable"))
        .ok();
    let reflection_v1alpha = reflection()
        .build_v1alpha()
        .map_err(|error| tracing::error!(%error, "reflection v1alpha unavailable"))
        .ok();

    let mut routes = routes.add_service(health_service);
    if let Some(reflection) = reflection_v1 {
        routes = routes.add_service(reflection);
    }
    if let Some(reflection) = reflection_v1alpha {
        routes = routes.add_service(reflection);
    }

    let local_addr: Option<SocketAddr> = listener.local_addr().ok();
    let incoming = tls_incoming(listener, Arc::clone(&options.tls), shutdown.child_token());
    spawn_cert_reloader(
        Arc::clone(&options.cert_resolver),
        options.service,
        shutdown.clone(),
    );

    let service = options.service;
    let grpc_services = options.grpc_services.clone();
    let drain_signal = {
        let shutdown = shutdown.clone();
        async move {
            shutdown.cancelled().await;
            for name in grpc_services.iter().copied().chain([""]) {
                health_reporter
                    .set_service_status(name, ServingStatus::NotServing)
                    .await;
            }
            tracing::info!(service, "draining in-flight requests");
        }
    };

    tracing::info!(service, addr = ?local_addr, "serving");
    tonic::transport::Server::builder()
        .concurrency_limit_per_connection(options.concurrency_per_connection)
        .timeout(options.request_timeout)
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .http2_keepalive_timeout(Some(Duration::from_secs(10)))
        .layer(options.guard)
        .add_routes(routes)
        .serve_with_incoming_shutdown(incoming, drain_signal)
        .await
}

fn spawn_cert_reloader(
    resolver: Arc<ReloadingCertResolver>,
    service: &'static str,
    shutdown: CancellationToken,
) {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(CERT_RELOAD_INTERVAL);
        ticks.tick().await;
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = ticks.tick() => {}
            }
            if let Err(error) = resolver.reload() {
                tracing::warn!(service, %error, "certificate reload failed; keeping the current one");
            }
        }
    });
}
