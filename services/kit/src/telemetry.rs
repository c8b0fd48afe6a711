//! Logs and traces: `tracing` everywhere, exported over OTLP when an endpoint is configured,
//! and the W3C trace context taken from and put into gRPC metadata.

use std::sync::OnceLock;

use opentelemetry::{
    propagation::{Extractor, Injector, TextMapPropagator},
    trace::{TraceContextExt, TracerProvider as _},
};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::{
    Resource,
    metrics::{PeriodicReader, SdkMeterProvider},
    propagation::TraceContextPropagator,
    trace::SdkTracerProvider,
};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::{EnvFilter, Layer, layer::SubscriberExt, util::SubscriberInitExt};

static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();
static METERS: OnceLock<SdkMeterProvider> = OnceLock::new();

/// Flushes pending spans when dropped; keep it alive for the life of the process.
#[must_use = "dropping the guard flushes and stops trace export"]
pub struct Guard(());

impl Drop for Guard {
    fn drop(&mut self) {
        flush();
    }
}

/// Installs the global subscriber once per process: a formatter writing to `writer` (stderr in
/// production; tests pass their own), the env filter, and the OpenTelemetry layer.
pub fn init<W>(service: &str, settings: &TelemetrySettings, writer: W) -> anyhow::Result<Guard>
where
    W: for<'a> tracing_subscriber::fmt::MakeWriter<'a> + Send + Sync + 'static,
{
    let resource = Resource::builder()
        .with_service_name(format!("crm-{service}"))
        .build();
    let mut builder = SdkTracerProvider::builder().with_resource(resource.clone());
    let mut meters = None;
    if !settings.otlp_endpoint.is_empty() {
        let exporter = opentelemetry_otlp::MetricExporter::builder()
            .with_tonic()
            .with_endpoint(settings.otlp_endpoint.clone())
            .build()?;
        meters = Some(
            SdkMeterProvider::builder()
                .with_resource(resource)
                .with_reader(
                    PeriodicReader::builder(exporter)
                        .with_interval(std::time::Duration::from_secs(15))
                        .build(),
                )
                .build(),
        );
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(settings.otlp_endpoint.clone())
            .build()?;
        builder = builder.with_batch_exporter(exporter);
    }
    let provider = builder.build();
    let tracer = provider.tracer("crm");
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());

    // One global filter for logs and traces. (Per-layer filters on both layers lose events:
    // an event both filters reject leaves state behind that hides the next one.) The call
    // span lives in this module and is kept at INFO, so trace ids and parents survive a quiet
    // log unless the filter names this module itself.
    let directives = if settings.log_filter.contains("crm_kit::telemetry") {
        settings.log_filter.clone()
    } else {
        format!("{},crm_kit::telemetry=info", settings.log_filter)
    };
    let filter = EnvFilter::try_new(&directives)?;
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(writer)
        .with_target(true)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let fmt = match settings.log_format.as_str() {
        "json" => fmt.json().with_current_span(true).boxed(),
        "text" => fmt.boxed(),
        other => anyhow::bail!("telemetry.log_format must be text or json, not {other}"),
    };
    let installed = tracing_subscriber::registry()
        .with(filter)
        .with(fmt)
        .with(tracing_opentelemetry::layer().with_tracer(tracer))
        .try_init()
        .is_ok();
    if installed {
        let _ = PROVIDER.set(provider);
        if let Some(meters) = meters {
            opentelemetry::global::set_meter_provider(meters.clone());
            let _ = METERS.set(meters);
        }
    }
    Ok(Guard(()))
}

struct HeaderExtractor<'a>(&'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

struct MetadataInjector<'a>(&'a mut tonic::metadata::MetadataMap);

impl Injector for MetadataInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(key), Ok(value)) = (
            tonic::metadata::MetadataKey::from_bytes(key.as_bytes()),
            tonic::metadata::MetadataValue::try_from(value.as_str()),
        ) {
            self.0.insert(key, value);
        }
    }
}

/// The span of one incoming gRPC call on the server of `server` (a service name such as
/// `tickets`), named after the RPC (`crm.tickets.v1.TicketService/CreateTicket`), a child of
/// the caller's W3C `traceparent` when the request carries one. Its `crm.resource` is filled in
/// by the write it makes ([`record_resource`]). Used as the server's `trace_fn`.
pub fn server_span(server: &str, request: &http::Request<()>) -> tracing::Span {
    let path = request.uri().path();
    let span = tracing::info_span!(
        "grpc.request",
        otel.name = %path.trim_start_matches('/'),
        otel.kind = "server",
        otel.status_code = tracing::field::Empty,
        rpc.system = "grpc",
        rpc.method = %path,
        crm.server = %server,
        crm.resource = tracing::field::Empty,
        enduser.id = tracing::field::Empty,
        trace_id = tracing::field::Empty,
    );
    let parent = TraceContextPropagator::new().extract(&HeaderExtractor(request.headers()));
    if parent.span().span_context().is_valid() {
        let _ = span.set_parent(parent);
    }
    record_trace_id(&span);
    span
}

/// Puts the span's trace id among its fields, so every log line inside it (JSON logs include
/// the current span) carries the id a trace viewer finds the case by.
fn record_trace_id(span: &tracing::Span) {
    let context = span.context();
    let span_context = context.span().span_context().clone();
    if span_context.is_valid() {
        span.record("trace_id", span_context.trace_id().to_string());
    }
}

/// The span of one event's handling by a consumer group, named after the event type (its
/// parent is set from the event's `traceparent` with [`set_remote_parent`]). Made here, like
/// the call span, so a quiet log filter keeps it.
pub fn consumer_span(event_type: &str, id: &str, aggregate: &str, group: &str) -> tracing::Span {
    tracing::info_span!(
        "event.consume",
        otel.name = %event_type,
        otel.kind = "consumer",
        event.id = %id,
        event.r#type = %event_type,
        crm.resource = %aggregate,
        group = %group,
        trace_id = tracing::field::Empty,
    )
}

/// Makes `span` a child of the W3C `traceparent` (from an event envelope), if valid.
pub fn set_remote_parent(span: &tracing::Span, traceparent: &str) {
    let mut carrier = std::collections::HashMap::new();
    carrier.insert("traceparent".to_string(), traceparent.to_string());
    let parent = TraceContextPropagator::new().extract(&carrier);
    if parent.span().span_context().is_valid() {
        let _ = span.set_parent(parent);
    }
    record_trace_id(span);
}

/// Records on the current call's span the resource it acted on, e.g. `tickets/<id>` (an id,
/// never personal data).
pub fn record_resource(resource: &str) {
    tracing::Span::current().record("crm.resource", resource);
}

struct HeaderInjector<'a>(&'a mut http::HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(key), Ok(value)) = (
            http::header::HeaderName::from_bytes(key.as_bytes()),
            http::HeaderValue::from_str(&value),
        ) {
            self.0.insert(key, value);
        }
    }
}

/// Replaces the trace context in forwarded HTTP headers with the current span's, so the next
/// hop's span is a child of this one (the gateway's forward).
pub fn inject_into_headers(headers: &mut http::HeaderMap) {
    let context = tracing::Span::current().context();
    if context.span().span_context().is_valid() {
        TraceContextPropagator::new().inject_context(&context, &mut HeaderInjector(headers));
    }
}

/// Exports the spans (and metrics) recorded so far, now.
pub fn flush() {
    if let Some(provider) = PROVIDER.get() {
        let _ = provider.force_flush();
    }
    if let Some(meters) = METERS.get() {
        let _ = meters.force_flush();
    }
}

/// Puts the current span's trace context into outgoing metadata (use as a client interceptor).
pub fn inject_trace_context(
    mut request: tonic::Request<()>,
) -> Result<tonic::Request<()>, tonic::Status> {
    let context = tracing::Span::current().context();
    TraceContextPropagator::new()
        .inject_context(&context, &mut MetadataInjector(request.metadata_mut()));
    Ok(request)
}

/// The trace id of the current span as 32 hex digits, or `None` outside a traced span.
pub fn current_trace_id() -> Option<String> {
    let context = tracing::Span::current().context();
    let span_context = context.span().span_context().clone();
    span_context
        .is_valid()
        .then(|| span_context.trace_id().to_string())
}

/// Logging and tracing settings.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct TelemetrySettings {
    /// `text` or `json`.
    pub log_format: String,
    /// A `tracing` env-filter directive, e.g. `info,crm_customers=debug`.
    pub log_filter: String,
    /// OTLP/gRPC collector endpoint (e.g. `http://otel-collector:4317`); empty disables export.
    pub otlp_endpoint: String,
}
