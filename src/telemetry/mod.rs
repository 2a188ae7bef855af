//! Telemetry (issue 19): one `tracing` subscriber, installed in `main` before any command
//! runs. Its layers: the log lines on stderr (text, or `--log-format json`: json.rs),
//! filtered by `RUST_LOG`, else `--log-level` (warn by default, so a terminal shows what it
//! showed before); and OpenTelemetry (`tracing-opentelemetry`), which gives every span of
//! Phoenix's crates its ids and exports them over OTLP once an endpoint is known (otlp.rs,
//! late.rs). The live progress display (display.rs) and the commands' results are printed
//! as before, outside `tracing`.

mod http;
mod json;
mod late;
mod otlp;

use std::sync::OnceLock;
use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::Level;
use tracing_subscriber::filter::{EnvFilter, FilterExt, Targets, filter_fn};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Layer, Registry};

pub(crate) use otlp::Otlp;

use crate::cli::{LogFormat, LogLevel};

/// What `shutdown` flushes.
struct Installed {
    provider: SdkTracerProvider,
    late: late::Late,
}

static INSTALLED: OnceLock<Installed> = OnceLock::new();

static JSON: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether log lines are JSON (`--log-format json`): a command's own activity lines go
/// through `tracing` then, so that stderr holds nothing else.
pub(crate) fn json() -> bool {
    JSON.load(std::sync::atomic::Ordering::Relaxed)
}

/// Installs the subscriber, and the OTLP export if the environment names an endpoint.
/// A bad `RUST_LOG` or endpoint is said on stderr and left out; the command still runs.
pub(crate) fn init(level: Option<LogLevel>, format: LogFormat) {
    let env_filter = match std::env::var("RUST_LOG").ok().filter(|v| !v.trim().is_empty()) {
        Some(v) => EnvFilter::try_new(&v).unwrap_or_else(|e| {
            eprintln!("warning: RUST_LOG=`{v}` is not a filter ({e}); using --log-level");
            EnvFilter::new(level.unwrap_or(LogLevel::Warn).as_str())
        }),
        None => EnvFilter::new(level.unwrap_or(LogLevel::Warn).as_str()),
    };
    // Dependencies whose own debug lines carry what must not be logged (a SAS in a URL, the
    // request being signed): held at info whatever the filter asks (plugins/src/telemetry.rs).
    let env_filter = phoenix_plugins::telemetry::QUIET_TARGETS
        .iter()
        .fold(env_filter, |f, d| f.add_directive(d.parse().expect("QUIET_TARGETS are directives")));
    // Phoenix's spans always reach the log layer, whatever the level, so that a warning
    // inside a step still carries the run's and the step's ids.
    let log_filter = env_filter.or(filter_fn(|m| m.is_span() && m.target().starts_with("phoenix")));
    JSON.store(format == LogFormat::Json, std::sync::atomic::Ordering::Relaxed);
    let log_layer: Box<dyn Layer<Registry> + Send + Sync> = match format {
        LogFormat::Json => Box::new(json::JsonLayer),
        LogFormat::Text => {
            use std::io::IsTerminal;
            Box::new(tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_ansi(std::io::stderr().is_terminal()))
        }
    };
    let resource = Resource::builder()
        .with_service_name("phoenix")
        .with_attributes([
            KeyValue::new("service.version", env!("CARGO_PKG_VERSION")),
            KeyValue::new("host.name", nix::unistd::gethostname().map(|h| h.to_string_lossy().into_owned()).unwrap_or_default()),
        ])
        .build();
    let late = late::Late::new(resource.clone());
    let provider = SdkTracerProvider::builder().with_resource(resource).with_span_processor(late.clone()).build();
    let tracer = provider.tracer("phoenix");
    // Phoenix's own spans (phoenix, phoenix_engine, phoenix_plugins), at info and above;
    // no events: what happened is in the spans' outcomes, the texts (errors) in the logs.
    let spans_only = Targets::new().with_target("phoenix", Level::INFO).and(filter_fn(|m| m.is_span()));
    // Without the per-poll busy/idle clock, the code location and the thread: a span per
    // step and per attempt costs little more than its ids and its few fields.
    let otel_layer = tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_tracked_inactivity(false)
        .with_location(false)
        .with_threads(false)
        .with_filter(spans_only);
    let _ = tracing_subscriber::registry().with(log_layer.with_filter(log_filter)).with(otel_layer).try_init();
    let _ = INSTALLED.set(Installed { provider, late });
    if let Some(o) = otlp::from_env() {
        export_to(&o);
    }
}

/// Exports spans to `o` from now on (serve.yaml's `otlp:`); an endpoint from the
/// environment, set first, wins.
pub(crate) fn export_to(o: &Otlp) {
    let Some(i) = INSTALLED.get() else { return };
    if i.late.is_set() {
        return;
    }
    match otlp::processor(o) {
        Ok(p) => {
            i.late.set(p);
            tracing::info!(endpoint = o.endpoint.as_deref().unwrap_or("(from OTEL_EXPORTER_OTLP_*)"), "exporting spans over OTLP");
        }
        Err(e) => tracing::error!("{e}: spans are not exported; check PHOENIX_OTLP_ENDPOINT or serve.yaml's otlp.endpoint"),
    }
}

/// A line the terminal display would have drawn, as a JSON line on stderr (info, whatever
/// the filter: it is the command's own output, not a log line).
pub(crate) fn json_line(target: &str, text: &str) {
    json::write_line("INFO", target, text);
}

/// The URL spans go to for an endpoint as an operator writes it.
pub(crate) fn traces_url(endpoint: &str) -> String {
    otlp::traces_url(endpoint)
}

/// Sends the spans not yet exported, waiting at most about two seconds (a dead collector
/// never holds the exit longer). Called on every exit through `main`.
pub(crate) fn shutdown() {
    if let Some(i) = INSTALLED.get() {
        if i.late.is_set() {
            let _ = i.provider.shutdown_with_timeout(Duration::from_secs(2));
        }
    }
}
