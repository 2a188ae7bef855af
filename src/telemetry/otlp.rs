//! Where spans go: `PHOENIX_OTLP_ENDPOINT` (or the standard `OTEL_EXPORTER_OTLP_ENDPOINT`,
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`), or `otlp:` in serve.yaml. OTLP over HTTP with
//! protobuf bodies, through a batch processor.

use std::collections::HashMap;
use std::time::Duration;

use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::trace::BatchSpanProcessor;

/// How long one export may take; also the most a dead collector delays the exit.
pub(crate) const EXPORT_TIMEOUT: Duration = Duration::from_secs(2);

/// An OTLP destination. `endpoint: None`: the OpenTelemetry variables say where.
#[derive(Clone, Default)]
pub(crate) struct Otlp {
    pub(crate) endpoint: Option<String>,
    /// Sent with every export (an API key, a tenant): never logged.
    pub(crate) headers: HashMap<String, String>,
}

impl std::fmt::Debug for Otlp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Otlp").field("endpoint", &self.endpoint).field("headers", &self.headers.keys().collect::<Vec<_>>()).finish()
    }
}

/// The destination the environment names, if any.
pub(crate) fn from_env() -> Option<Otlp> {
    let var = |n: &str| std::env::var(n).ok().filter(|v| !v.trim().is_empty());
    if let Some(e) = var("PHOENIX_OTLP_ENDPOINT") {
        return Some(Otlp { endpoint: Some(traces_url(&e)), headers: HashMap::new() });
    }
    (var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").is_some() || var("OTEL_EXPORTER_OTLP_ENDPOINT").is_some()).then(Otlp::default)
}

/// `http://host:4318` → `http://host:4318/v1/traces`, as the OTLP spec says for a base
/// endpoint; a URL with a path is used as written.
pub(crate) fn traces_url(endpoint: &str) -> String {
    let e = endpoint.trim();
    let after_scheme = e.split_once("://").map_or(e, |(_, rest)| rest);
    match after_scheme.find('/') {
        Some(i) if !after_scheme[i..].trim_end_matches('/').is_empty() => e.to_string(),
        _ => format!("{}/v1/traces", e.trim_end_matches('/')),
    }
}

/// The batch processor exporting to `o`.
pub(crate) fn processor(o: &Otlp) -> Result<BatchSpanProcessor, String> {
    let mut b = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_http_client(super::http::Blocking::new(EXPORT_TIMEOUT))
        .with_timeout(EXPORT_TIMEOUT);
    if let Some(e) = &o.endpoint {
        b = b.with_endpoint(e.clone());
    }
    if !o.headers.is_empty() {
        b = b.with_headers(o.headers.clone());
    }
    let exporter = b.build().map_err(|e| format!("the OTLP exporter: {e}"))?;
    Ok(BatchSpanProcessor::builder(exporter).build())
}

#[cfg(test)]
mod tests {
    use super::traces_url;

    #[test]
    fn a_base_endpoint_gets_the_traces_path() {
        assert_eq!(traces_url("http://127.0.0.1:4318"), "http://127.0.0.1:4318/v1/traces");
        assert_eq!(traces_url("http://127.0.0.1:4318/"), "http://127.0.0.1:4318/v1/traces");
        assert_eq!(traces_url("https://otel.example/custom/traces"), "https://otel.example/custom/traces");
    }
}
