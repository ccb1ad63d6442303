//! One request that crosses two services is one trace. Its own test binary,
//! because it installs the process-wide tracing subscriber.

use fitflow_e2e::{AUDIT, IDENTITY};
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
    let stack = sandbox.start(&[IDENTITY, AUDIT]).await;
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

    // A change made inside a traced request carries its trace id into the audit trail.
    let traced_change = tracing::info_span!("e2e.register");
    let register_trace = {
        use opentelemetry::trace::TraceContextExt as _;
        use tracing_opentelemetry::OpenTelemetrySpanExt as _;
        traced_change
            .context()
            .span()
            .span_context()
            .trace_id()
            .to_string()
    };
    let user_id = async {
        let mut request = tonic::Request::new(fitflow_proto::identity::RegisterRequest {
            email: format!("traced-{}@example.com", uuid::Uuid::new_v4()),
            password: fitflow_e2e::PASSWORD.into(),
            display_name: "Traced".into(),
            roles: vec![],
            request_id: String::new(),
        });
        fitflow_telemetry::inject_current_context(request.metadata_mut());
        sandbox
            .identity()
            .register(request)
            .await
            .unwrap()
            .into_inner()
            .user
            .unwrap()
            .id
    }
    .instrument(traced_change)
    .await;
    stack.shutdown().await;
    let admin = sandbox.db.admin_pool().await;
    let stored_trace: String =
        sqlx::query_scalar("SELECT trace_id FROM audit.audit_log WHERE resource_id = $1::uuid")
            .bind(&user_id)
            .fetch_one(&admin)
            .await
            .expect("the registration's audit event is stored");
    assert_eq!(stored_trace, register_trace);
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
