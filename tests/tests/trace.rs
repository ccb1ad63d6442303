//! One request that crosses two services is one trace. Its own test binary,
//! because it installs the process-wide tracing subscriber.

use fitflow::ServiceName;
use fitflow_e2e::{Sandbox, bearer};
use fitflow_proto::audit::ListEventsRequest;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
use tracing::Instrument as _;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

#[tokio::test]
async fn a_request_that_crosses_two_services_is_one_trace() {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("e2e")))
        .init();
    fitflow_telemetry::install_propagator();

    let sandbox = Sandbox::new().await;
    let stack = sandbox
        .start(&[ServiceName::Identity, ServiceName::Audit])
        .await;
    let (_, email) = sandbox.register("Trace Tester").await;
    let tokens = sandbox.login(&email).await;

    // Audit has never seen a token: verifying this one makes it fetch the
    // signing keys from identity, inside the same request.
    let root = tracing::info_span!("e2e.client");
    async {
        let mut request = bearer(ListEventsRequest::default(), &tokens.access_token);
        fitflow_telemetry::inject_current_context(request.metadata_mut());
        let _ = sandbox.audit().list_events(request).await;
    }
    .instrument(root)
    .await;
    stack.shutdown().await;
    provider.force_flush().expect("flush spans");

    let spans = exporter.get_finished_spans().expect("spans");
    let trace_of = |name: &str| {
        spans
            .iter()
            .find(|span| span.name == name)
            .map(|span| span.span_context.trace_id())
            .unwrap_or_else(|| {
                panic!(
                    "no span {name}; saw {:?}",
                    spans.iter().map(|s| &s.name).collect::<Vec<_>>()
                )
            })
    };
    let client = trace_of("e2e.client");
    let audit = trace_of("fitflow.audit.v1.AuditService/ListEvents");
    let identity = trace_of("fitflow.identity.v1.IdentityService/ListPublicKeys");
    assert_eq!(audit, client, "audit continues the caller's trace");
    assert_eq!(identity, client, "identity continues audit's trace");
}
