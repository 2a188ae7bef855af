//! Every Azure Blob request is a client span, made by the pipeline's last policy (which also
//! sends it): `HTTP {METHOD}` with `az.namespace = Microsoft.Storage`, `server.address`,
//! `server.port`, the container, the status and the response's size; errors marked. Never
//! the path past the container (blob names), the query (a SAS is there), or a header (the
//! Shared Key signature is one).
//!
//! The W3C `traceparent` of the span is added here, after the Shared Key policy signed the
//! request: Shared Key signs only the standard headers and the `x-ms-*` ones, so a
//! `traceparent` would never be part of the signature wherever it was added.

use std::sync::Arc;

use azure_core::{Context, HttpClient, Policy, PolicyResult, Request};
use tracing::Instrument;
use tracing::field::Empty;

use crate::telemetry::{client_span, fail, traceparent_of};

/// The transport policy: spans, `traceparent`, then the HTTP client.
#[derive(Debug)]
pub(crate) struct Traced {
    http: Arc<dyn HttpClient>,
    /// How many segments of a request's path are the endpoint's own (Azurite's account:
    /// `http://127.0.0.1:10000/devstoreaccount1`); the next one is the container.
    prefix: usize,
}

impl Traced {
    /// For an account whose blob endpoint is `endpoint`.
    pub(crate) fn new(endpoint: &str) -> Traced {
        let prefix = reqwest::Url::parse(endpoint).map_or(0, |u| u.path_segments().map_or(0, |s| s.filter(|s| !s.is_empty()).count()));
        Traced { http: azure_core::new_http_client(), prefix }
    }
}

#[async_trait::async_trait]
impl Policy for Traced {
    async fn send(&self, _ctx: &Context, request: &mut Request, _next: &[Arc<dyn Policy>]) -> PolicyResult {
        let url = request.url();
        let method = request.method().as_ref().to_ascii_uppercase();
        let container = url.path_segments().and_then(|mut s| s.nth(self.prefix)).filter(|c| !c.is_empty()).unwrap_or_default();
        let span = client_span!(
            "azure_blob.request",
            otel.name = format!("HTTP {method}"),
            az.namespace = "Microsoft.Storage",
            http.request.method = method,
            server.address = url.host_str().unwrap_or_default(),
            server.port = url.port_or_known_default().unwrap_or_default(),
            azure.storage.container = Empty,
            http.response.status_code = Empty,
            http.response.body.size = Empty,
        );
        if !container.is_empty() {
            span.record("azure.storage.container", container);
        }
        if let Some(value) = traceparent_of(&span) {
            request.insert_header("traceparent", value);
        }
        let result = self.http.execute_request(request).instrument(span.clone()).await;
        match &result {
            Ok(resp) => {
                let status = u16::from(resp.status());
                span.record("http.response.status_code", status);
                if let Some(n) = resp.headers().get_optional_str(&"content-length".into()).and_then(|v| v.parse::<u64>().ok()) {
                    span.record("http.response.body.size", n);
                }
                if status >= 400 {
                    fail(&span, &status.to_string());
                }
            }
            Err(e) => fail(&span, error_type(e.kind())),
        }
        result
    }
}

/// `error.type` of a transport error: its kind (the HTTP client reports what it could not
/// send or read as `Io`).
fn error_type(kind: &azure_core::error::ErrorKind) -> &'static str {
    use azure_core::error::ErrorKind;
    match kind {
        ErrorKind::Io => "io",
        ErrorKind::HttpResponse { .. } => "http",
        ErrorKind::DataConversion => "data_conversion",
        ErrorKind::Credential => "credential",
        _ => "error",
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry::trace::{Status, TraceContextExt};
    use serde_json::json;
    use tracing::{Instrument, Level, info_span};
    use tracing_opentelemetry::OpenTelemetrySpanExt;

    use crate::Plugin;
    use crate::telemetry::testing::{assert_no_secret, attrs, ctx, install, serve};

    const KEY: &str = "cGhvZW5peC1henVyZS1rZXktc2VjcmV0LTEyMzQ1Ng==";
    const SIG: &str = "c2FzLXNpZ25hdHVyZS1waG9lbml4LXRlc3Q%3D";

    #[tokio::test]
    async fn a_blob_request_is_a_child_span_with_its_container_and_sends_traceparent() {
        let traces = install(Level::INFO);
        let (base, seen) = serve(200, "hello").await;
        let with = json!({ "account": "devstoreaccount1", "access_key": KEY, "endpoint": format!("{base}/devstoreaccount1"),
                           "container": "dr-backups", "name": "db/2026-12-06.sql" });
        let step = info_span!("step");
        // The stand-in's answer is too bare for the action to succeed: the request is what counts.
        let _ = crate::azure::BlobGet.run(&ctx(), serde_json::from_value(with).unwrap()).instrument(step.clone()).await;
        let step_cx = step.context();
        drop(step);

        let all = traces.spans();
        let span = all.iter().find(|s| s.name == "HTTP GET" || s.name == "HTTP HEAD").expect("a request span").clone();
        let a = attrs(&span);
        assert_eq!(a["az.namespace"], "Microsoft.Storage");
        assert_eq!(a["server.address"], "127.0.0.1");
        assert_eq!(a["azure.storage.container"], "dr-backups");
        assert_eq!(a["http.response.status_code"], "200");
        assert_eq!(span.parent_span_id, step_cx.span().span_context().span_id());
        let got = seen.lock().unwrap().clone();
        let expected = format!("00-{}-{}-01", span.span_context.trace_id(), span.span_context.span_id());
        assert_eq!(got[0].headers.get("traceparent"), Some(&expected));
        let auth = got[0].headers.get("authorization").expect("signed with the key");
        let signature = auth.rsplit(':').next().unwrap();
        for secret in [KEY, signature, "2026-12-06.sql"] {
            assert_no_secret(&all, secret);
        }
    }

    #[tokio::test]
    async fn a_closed_port_is_a_failed_span_of_kind_io() {
        let traces = install(Level::INFO);
        let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
        let with =
            json!({ "account": "acct", "access_key": KEY, "endpoint": format!("http://{closed}"), "container": "dr-backups", "name": "x" });
        crate::azure::BlobGet.run(&ctx(), serde_json::from_value(with).unwrap()).await.expect_err("refused");
        let all = traces.spans();
        let span = all.iter().find(|s| s.name.starts_with("HTTP ")).expect("a request span");
        assert_eq!(attrs(span)["error.type"], "io");
        assert!(!attrs(span).contains_key("http.response.status_code"));
    }

    #[tokio::test]
    async fn a_refused_sas_request_is_a_failed_span_without_the_sas() {
        let traces = install(Level::INFO);
        let (base, seen) = serve(403, "").await;
        let sas = format!("sv=2022-11-02&ss=b&srt=co&sp=rl&se=2030-01-01T00:00:00Z&sig={SIG}");
        let with = json!({ "account": "acct", "sas_token": sas, "endpoint": base, "container": "dr-backups", "name": "x" });
        crate::azure::BlobGet.run(&ctx(), serde_json::from_value(with).unwrap()).instrument(info_span!("step")).await.expect_err("403");
        assert!(seen.lock().unwrap()[0].line.contains("sig="), "the SAS went in the query");
        let all = traces.spans();
        let span = all.iter().find(|s| s.name.starts_with("HTTP ")).expect("a request span");
        assert_eq!(attrs(span)["error.type"], "403");
        assert!(matches!(span.status, Status::Error { .. }));
        for secret in [SIG, "c2FzLXNpZ25hdHVyZS1waG9lbml4LXRlc3Q=", "sig="] {
            assert_no_secret(&all, secret);
        }
    }
}
