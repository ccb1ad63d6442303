//! With `OTEL_EXPORTER_OTLP_ENDPOINT` set, `fitflow serve` exports its RPC
//! spans and metrics over OTLP: a real collector endpoint (an in-test OTLP
//! gRPC server) receives them from the real binary.

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use secrecy::ExposeSecret as _;
use tokio::sync::mpsc;

/// Forwards the names of exported spans and metrics to the test.
#[derive(Clone)]
struct Collector {
    received: mpsc::UnboundedSender<String>,
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        for resource in request.into_inner().resource_spans {
            for scope in resource.scope_spans {
                for span in scope.spans {
                    let _ = self.received.send(format!("span {}", span.name));
                }
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

#[tonic::async_trait]
impl MetricsService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        for resource in request.into_inner().resource_metrics {
            for scope in resource.scope_metrics {
                for metric in scope.metrics {
                    let _ = self.received.send(format!("metric {}", metric.name));
                }
            }
        }
        Ok(tonic::Response::new(ExportMetricsServiceResponse {
            partial_success: None,
        }))
    }
}

fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
}

#[tokio::test]
async fn rpc_spans_and_duration_metrics_reach_the_otlp_collector() {
    fitflow_server::install_crypto_provider();
    let (received, mut names) = mpsc::unbounded_channel();
    let collector = Collector { received };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let collector_addr = listener.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(collector.clone()))
            .add_service(MetricsServiceServer::new(collector))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );

    let certs = fitflow_testkit::certs(&["identity", "operator"]);
    let db = fitflow_testkit::database(&[fitflow_testkit::MigratedSchema {
        schema: fitflow_identity::SCHEMA,
        migrator: &fitflow_identity::MIGRATOR,
    }])
    .await;
    let bao = fitflow_testkit::openbao().await;
    let identity_addr = free_addr();
    let mut server = tokio::process::Command::new(env!("CARGO_BIN_EXE_fitflow"))
        .args(["serve", "identity"])
        .env_clear()
        .env("FITFLOW_TLS_DIR", &certs.dir)
        // The test OpenBao speaks http:// and the test database has no TLS.
        .env("FITFLOW_DEV_INSECURE", "1")
        // Identity needs a mail server to start; this test sends no mail.
        .env("FITFLOW_SMTP_URL", "smtp://127.0.0.1:1")
        .env("FITFLOW_VAULT_ADDR", &bao.addr)
        .env("FITFLOW_VAULT_TOKEN", bao.root_token.expose_secret())
        .env(
            "FITFLOW_IDENTITY_DATABASE_URL",
            db.runtime_url("identity").expose_secret(),
        )
        .env(
            "FITFLOW_IDENTITY_SYSTEM_DATABASE_URL",
            db.system_url("identity").expose_secret(),
        )
        .env("FITFLOW_IDENTITY_LISTEN", identity_addr.to_string())
        .env(
            "FITFLOW_IDENTITY_ENDPOINT",
            format!("https://{identity_addr}"),
        )
        .env("FITFLOW_LOG", "warn")
        .env(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            format!("http://{collector_addr}"),
        )
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start fitflow serve identity");

    let paths = fitflow_server::tls::TlsPaths::in_dir(&certs.dir, "operator");
    let channel =
        fitflow_server::client::channel(&format!("https://{identity_addr}"), "identity", &paths)
            .unwrap();
    let mut served = false;
    for _ in 0..100 {
        let request = tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        };
        if tonic_health::pb::health_client::HealthClient::new(channel.clone())
            .check(request)
            .await
            .is_ok()
        {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(served, "fitflow serve identity never answered");

    // SIGTERM: a graceful stop flushes the exporters.
    let pid = server.id().expect("the server's pid");
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = tokio::time::timeout(Duration::from_secs(30), server.wait())
        .await
        .expect("it stops")
        .unwrap();
    assert!(exit.success(), "fitflow exited with {exit}");

    let mut seen = Vec::new();
    while let Ok(Some(name)) = tokio::time::timeout(Duration::from_secs(2), names.recv()).await {
        seen.push(name);
    }
    assert!(
        seen.iter()
            .any(|name| name == "span grpc.health.v1.Health/Check"),
        "spans seen: {seen:?}"
    );
    assert!(
        seen.iter().any(|name| name == "metric rpc.server.duration"),
        "metrics seen: {seen:?}"
    );
}
