//! What operators see of the hub: OpenTelemetry traces and metrics, the Prometheus
//! endpoint of the admin port ([`admin`]), and the process's log lines.
//!
//! - **Traces.** One span per RPC ([`rpc_span`], continuing the caller's W3C trace
//!   context) and one per pipeline stage (`validate`, `adapt`, `commit`, `resolve`),
//!   exported over OTLP/gRPC when an endpoint is configured. Only the hub's own spans go
//!   to the exporter (a `Targets` filter): h2, tower and tonic internals stay out.
//!   Spans are queued for a background exporter and dropped when the queue is full: a
//!   slow or absent collector never holds up a push.
//! - **Metrics** ([`metrics`]): counters and histograms through the OpenTelemetry API,
//!   read by an OTLP exporter and by the Prometheus registry behind `/metrics`.
//! - **Logs**: JSON lines (or text) on stderr, each carrying the trace ID of the RPC it
//!   belongs to.
//!
//! **Invariant: no span attribute, log field, metric label or error message carries a
//! name, an identity or passport number, a phone number or an address.** Attributes are
//! departments, record types, counts, outcomes and durations; the privacy test
//! (`gateway/tests/telemetry.rs`) pushes records and searches everything produced.

pub mod admin;
pub mod metrics;

use std::time::Duration;

use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{BatchConfigBuilder, BatchSpanProcessor, Sampler, SdkTracerProvider};
use opentelemetry_sdk::Resource;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::filter::{filter_fn, EnvFilter, FilterExt, LevelFilter, Targets};
use tracing_subscriber::layer::Filter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

use crate::config::{LogFormat, TelemetryConfig};

/// The log filter of a serving hub unless `RUST_LOG` says otherwise.
pub const SERVER_LOG_FILTER: &str = "info,h2=warn,tower=warn";

/// The log filter of every `tongban` command: RUST_LOG, else `default_filter`, and
/// never the PostgreSQL driver's debug lines, which carry statements with their
/// parameters (payloads, names, identity numbers), whatever RUST_LOG asks.
pub fn log_filter<S>(default_filter: &str) -> impl Filter<S> + Send + Sync + 'static
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    filter_of(std::env::var("RUST_LOG").ok().as_deref(), default_filter)
}

/// [`log_filter`] for the directives `rust_log`. The driver's lines are held back by a
/// filter of their own, beside the directives: a directive naming a module of the driver
/// (`tokio_postgres::query=debug`) or a span (`[call]=debug`) would outrank anything
/// added among them.
fn filter_of<S>(rust_log: Option<&str>, default_filter: &str) -> impl Filter<S> + Send + Sync + 'static
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    let directives = rust_log
        .and_then(|text| EnvFilter::try_new(text).ok())
        .unwrap_or_else(|| EnvFilter::new(default_filter));
    directives.and(filter_fn(|metadata| {
        let driver = ["tokio_postgres", "postgres_protocol"]
            .iter()
            .any(|crate_name| metadata.target().starts_with(crate_name));
        !(driver && *metadata.level() > tracing::Level::INFO)
    }))
}

/// Spans queued for export at most; beyond, new spans are dropped rather than waited for.
const SPAN_QUEUE: usize = 4096;

/// Why telemetry could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("OTLP exporter for {endpoint}: {message}")]
    Exporter { endpoint: String, message: String },
    #[error("Prometheus registry: {0}")]
    Prometheus(String),
    #[error("a logger is already installed in this process")]
    AlreadyInstalled,
}

/// The installed providers; [`Telemetry::shutdown`] flushes what is queued.
pub struct Telemetry {
    tracer: SdkTracerProvider,
    meter: SdkMeterProvider,
    /// What `/metrics` on the admin port renders.
    pub registry: prometheus::Registry,
}

impl Telemetry {
    /// Installs the process-wide logger, tracer and meter. `default_filter` is the log
    /// filter unless `RUST_LOG` says otherwise; it does not affect which spans export.
    pub fn install(config: &TelemetryConfig, default_filter: &str) -> Result<Telemetry, TelemetryError> {
        let resource = Resource::builder()
            .with_service_name(config.service_name.clone())
            .build();
        let export_timeout = Duration::from_millis(config.export_timeout_ms.max(1));

        // The tracer exists even without a collector: every RPC then still has a trace
        // ID (the caller's or a new one) for the log lines and the audit log, while
        // sampling nothing keeps unexported spans cheap.
        let mut tracer = SdkTracerProvider::builder().with_resource(resource.clone());
        tracer = match &config.otlp_endpoint {
            Some(endpoint) => {
                let exporter = opentelemetry_otlp::SpanExporter::builder()
                    .with_tonic()
                    .with_endpoint(endpoint.clone())
                    .with_timeout(export_timeout)
                    .build()
                    .map_err(|e| exporter_error(endpoint, e))?;
                let batch = BatchConfigBuilder::default()
                    .with_max_queue_size(SPAN_QUEUE)
                    .with_scheduled_delay(Duration::from_millis(500))
                    .build();
                tracer
                    .with_span_processor(BatchSpanProcessor::new(exporter, batch))
                    .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
                        config.sampling_ratio,
                    ))))
            }
            None => tracer.with_sampler(Sampler::AlwaysOff),
        };
        let tracer = tracer.build();

        let registry = prometheus::Registry::new();
        let prometheus_reader = opentelemetry_prometheus::exporter()
            .with_registry(registry.clone())
            .scope_info_enabled(false)
            .without_target_info()
            .build()
            .map_err(|e| TelemetryError::Prometheus(e.to_string()))?;
        let mut meter = SdkMeterProvider::builder()
            .with_resource(resource)
            .with_reader(prometheus_reader);
        if let Some(endpoint) = &config.otlp_endpoint {
            let exporter = opentelemetry_otlp::MetricExporter::builder()
                .with_tonic()
                .with_endpoint(endpoint.clone())
                .with_timeout(export_timeout)
                .build()
                .map_err(|e| exporter_error(endpoint, e))?;
            let reader = opentelemetry_sdk::metrics::PeriodicReader::builder(exporter)
                .with_interval(Duration::from_secs(config.metrics_interval_secs.max(1)))
                .build();
            meter = meter.with_reader(reader);
        }
        let meter = meter.build();
        opentelemetry::global::set_meter_provider(meter.clone());

        let filter = log_filter(default_filter);
        let logs = match config.log_format {
            LogFormat::Json => tracing_subscriber::fmt::layer()
                .json()
                .with_current_span(false)
                .with_span_list(true)
                .with_writer(std::io::stderr)
                .with_filter(filter)
                .boxed(),
            LogFormat::Text => tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_filter(filter)
                .boxed(),
        };
        let traces = tracing_opentelemetry::layer()
            .with_tracer(tracer.tracer("tongban"))
            .with_filter(exported_spans());
        tracing_subscriber::registry()
            .with(logs)
            .with(traces)
            .try_init()
            .map_err(|_| TelemetryError::AlreadyInstalled)?;
        Ok(Telemetry {
            tracer,
            meter,
            registry,
        })
    }

    /// Exports what is still queued (bounded by the export timeout) and stops.
    pub fn shutdown(self) {
        if let Err(e) = self.tracer.shutdown() {
            tracing::debug!(error = %e, "tracer shutdown");
        }
        if let Err(e) = self.meter.shutdown() {
            tracing::debug!(error = %e, "meter shutdown");
        }
    }
}

fn exporter_error(endpoint: &str, error: impl std::fmt::Display) -> TelemetryError {
    TelemetryError::Exporter {
        endpoint: endpoint.to_owned(),
        message: error.to_string(),
    }
}

/// Only the hub's own spans are exported: HTTP/2 and tower internals would drown them.
fn exported_spans() -> Targets {
    Targets::new()
        .with_target("tongban_gateway", LevelFilter::INFO)
        .with_default(LevelFilter::OFF)
}

/// Reads W3C `traceparent`/`tracestate` from gRPC request headers.
struct HeaderExtractor<'a>(&'a tonic::codegen::http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|name| name.as_str()).collect()
    }
}

/// The span of one RPC, child of the caller's trace when its headers carry one. Its
/// attributes are filled as the call learns them: the caller's identity (a department,
/// `platform`, ... — never a person) and the gRPC status.
pub fn rpc_span<B>(request: &tonic::codegen::http::Request<B>) -> tracing::Span {
    let (service, method) = rpc_name(request.uri().path());
    let span = tracing::info_span!(
        "rpc",
        otel.name = %format!("{service}/{method}"),
        otel.kind = "server",
        rpc.system = "grpc",
        rpc.service = %service,
        rpc.method = %method,
        rpc.grpc.status_code = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
        identity = tracing::field::Empty,
        trace_id = tracing::field::Empty,
    );
    let parent = TraceContextPropagator::new().extract(&HeaderExtractor(request.headers()));
    let _ = span.set_parent(parent);
    // The trace ID in every log line of the call (the JSON logs list the spans).
    if let Some(trace_id) = trace_id_of(&span) {
        span.record("trace_id", trace_id.as_str());
    }
    span
}

/// The services the hub serves; any other path is named `unknown` (the path is the
/// caller's text, and span names must stay a small set).
const SERVICES: [&str; 8] = [
    "tongban.v1.Exchange",
    "tongban.v1.Unified",
    "tongban.v1.Stewardship",
    "tongban.v1.Operations",
    "tongban.v1.Quality",
    "grpc.health.v1.Health",
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
];

/// `(service, method)` of a gRPC path, or `("unknown", "unknown")`.
pub fn rpc_name(path: &str) -> (&'static str, String) {
    let known = path
        .strip_prefix('/')
        .and_then(|p| p.split_once('/'))
        .and_then(|(service, method)| {
            let service = SERVICES.into_iter().find(|s| *s == service)?;
            let plain = !method.is_empty() && method.len() <= 64 && method.chars().all(|c| c.is_ascii_alphanumeric());
            plain.then(|| (service, method.to_owned()))
        });
    known.unwrap_or(("unknown", "unknown".to_owned()))
}

/// The trace ID of the current span (hex), or empty when there is none: what the audit
/// log records so an auditor can find the trace of a read.
pub fn current_trace_id() -> String {
    trace_id_of(&tracing::Span::current()).unwrap_or_default()
}

fn trace_id_of(span: &tracing::Span) -> Option<String> {
    let context = span.context();
    let span_context = context.span().span_context().clone();
    span_context.is_valid().then(|| span_context.trace_id().to_string())
}

/// Marks the current RPC span failed with the gRPC status it answered.
pub fn record_status(code: tonic::Code) {
    let span = tracing::Span::current();
    if matches!(code, tonic::Code::Ok) {
        return;
    }
    span.record("rpc.grpc.status_code", code as i32);
    span.record("otel.status_code", "ERROR");
}

#[cfg(test)]
mod tests {
    use super::rpc_name;

    /// Counts the events that get through the filter under test.
    struct Count(std::sync::Arc<std::sync::atomic::AtomicUsize>);

    impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Count {
        fn on_event(&self, _: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }

    #[test]
    fn no_directive_lets_the_drivers_debug_lines_through() {
        use tracing_subscriber::layer::SubscriberExt;
        use tracing_subscriber::Layer;
        for rust_log in [
            "debug",
            "info,tokio_postgres=debug",
            "info,tokio_postgres::query=trace",
            "info,[call]=trace",
            "postgres_protocol::message=debug,debug",
        ] {
            let seen = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
            let subscriber = tracing_subscriber::registry()
                .with(Count(std::sync::Arc::clone(&seen)).with_filter(super::filter_of(Some(rust_log), "warn")));
            tracing::subscriber::with_default(subscriber, || {
                let span = tracing::info_span!("call");
                let _inside = span.enter();
                tracing::debug!(target: "tokio_postgres::query", "executing statement with parameters");
                tracing::trace!(target: "postgres_protocol::message", "a message");
                tracing::info!(target: "tokio_postgres::connection", "connection closed");
            });
            // Only the driver's info line gets through, whatever RUST_LOG asked.
            assert_eq!(seen.load(std::sync::atomic::Ordering::SeqCst), 1, "{rust_log}");
        }
    }

    #[test]
    fn span_names_are_the_hubs_services_or_unknown() {
        assert_eq!(
            rpc_name("/tongban.v1.Exchange/Push"),
            ("tongban.v1.Exchange", "Push".to_owned())
        );
        assert_eq!(rpc_name("/grpc.health.v1.Health/Check").0, "grpc.health.v1.Health");
        for path in [
            "/tongban.v1.Exchange/Push?x",
            "/王伟/Push",
            "/tongban.v1.Exchange/",
            "/",
            "",
            "/a/b/c",
        ] {
            assert_eq!(rpc_name(path), ("unknown", "unknown".to_owned()), "{path}");
        }
    }
}
