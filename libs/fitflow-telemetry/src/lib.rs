//! Telemetry for every FitFlow process: JSON logs always, OpenTelemetry spans
//! and metrics over OTLP when `OTEL_EXPORTER_OTLP_ENDPOINT` is set, and W3C
//! `traceparent` propagation so a request across services is one trace.

mod propagation;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::subscriber::Interest;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer as _;
use tracing_subscriber::filter::{DynFilterFn, FilterExt as _, LevelFilter};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

pub use propagation::{current_trace_id, extract_parent, inject_current_context};

/// The environment variable that turns on OTLP export.
pub const OTLP_ENDPOINT_VAR: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";
/// The environment variable holding the log filter (default `info`); it
/// filters logs only, never the spans exported over OTLP.
pub const LOG_FILTER_VAR: &str = "FITFLOW_LOG";

/// Why telemetry could not start.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// `FITFLOW_LOG` is not a valid filter.
    #[error("FITFLOW_LOG is not a valid log filter: {0}")]
    Filter(String),
    /// The OTLP exporter could not be built.
    #[error("OTEL_EXPORTER_OTLP_ENDPOINT: cannot build the OTLP exporter: {0}")]
    Exporter(String),
    /// A global subscriber was already installed.
    #[error("a tracing subscriber is already installed")]
    AlreadyInstalled,
}

/// Keeps exporters alive; flushes pending spans and metrics when dropped.
pub struct TelemetryGuard {
    tracer_provider: Option<SdkTracerProvider>,
    meter_provider: Option<SdkMeterProvider>,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.tracer_provider.take() {
            let _ = provider.shutdown();
        }
        if let Some(provider) = self.meter_provider.take() {
            let _ = provider.shutdown();
        }
    }
}

/// Installs the global subscriber for a process named `service_name`.
pub fn init(service_name: &'static str) -> Result<TelemetryGuard, TelemetryError> {
    install_propagator();
    let filter = match std::env::var(LOG_FILTER_VAR) {
        Ok(value) => {
            EnvFilter::try_new(value).map_err(|e| TelemetryError::Filter(e.to_string()))?
        }
        Err(_) => EnvFilter::new("info"),
    };
    let json_logs = tracing_subscriber::fmt::layer()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(false);

    let otlp_enabled = std::env::var_os(OTLP_ENDPOINT_VAR).is_some_and(|v| !v.is_empty());
    let (tracer_provider, meter_provider) = if otlp_enabled {
        let (tracer, meter) = otlp_providers(service_name)?;
        (Some(tracer), Some(meter))
    } else {
        (None, None)
    };
    // Spans go to the collector at INFO whatever the log filter says: quieting
    // the logs must not blind the traces.
    let otel_layer = tracer_provider.as_ref().map(|provider| {
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("fitflow"))
            .with_filter(tracing_subscriber::filter::LevelFilter::INFO)
    });
    if let Some(meter_provider) = &meter_provider {
        opentelemetry::global::set_meter_provider(meter_provider.clone());
    }

    // The logs print no span (`with_current_span` and `with_span_list` are
    // off), so the log layer takes events only: given spans, it would format
    // every span's fields to JSON when it opens and on each `record`, once
    // per request, for nothing; and without OTLP no layer wants a span, so
    // none is built at all. (Span-scoped FITFLOW_LOG directives such as
    // `[grpc.server]=debug` therefore select nothing.)
    // Decided once per callsite (never per call), and no limit on the level,
    // so the log filter's level stays the process's maximum: a filter
    // without a hint would raise it to TRACE and wake every `trace!` and
    // `log::trace!` (rustls logs per TLS record) on every request.
    let events_only = DynFilterFn::new(|metadata, _| metadata.is_event())
        .with_callsite_filter(|metadata| {
            if metadata.is_event() {
                Interest::always()
            } else {
                Interest::never()
            }
        })
        .with_max_level_hint(LevelFilter::TRACE);
    tracing_subscriber::registry()
        .with(json_logs.with_filter(filter.and(events_only)))
        .with(otel_layer)
        .try_init()
        .map_err(|_| TelemetryError::AlreadyInstalled)?;
    Ok(TelemetryGuard {
        tracer_provider,
        meter_provider,
    })
}

/// Installs the W3C trace-context propagator (idempotent).
pub fn install_propagator() {
    opentelemetry::global::set_text_map_propagator(
        opentelemetry_sdk::propagation::TraceContextPropagator::new(),
    );
}

fn otlp_providers(
    service_name: &'static str,
) -> Result<(SdkTracerProvider, SdkMeterProvider), TelemetryError> {
    use opentelemetry_otlp::WithExportConfig as _;
    let resource = Resource::builder().with_service_name(service_name).build();
    let span_exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_protocol(opentelemetry_otlp::Protocol::Grpc)
        .build()
        .map_err(|e| TelemetryError::Exporter(e.to_string()))?;
    let tracer_provider = SdkTracerProvider::builder()
        .with_batch_exporter(span_exporter)
        .with_resource(resource.clone())
        .build();
    let metric_exporter = opentelemetry_otlp::MetricExporter::builder()
        .with_tonic()
        .build()
        .map_err(|e| TelemetryError::Exporter(e.to_string()))?;
    let meter_provider = SdkMeterProvider::builder()
        .with_periodic_exporter(metric_exporter)
        .with_resource(resource)
        .build();
    Ok((tracer_provider, meter_provider))
}
