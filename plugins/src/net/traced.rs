//! Every outgoing reqwest request goes through [`send`]: a client span named `HTTP {METHOD}`
//! with the OpenTelemetry semantic conventions' attributes, and the W3C `traceparent` header
//! of that span.
//!
//! The span carries the method, `server.address`, `server.port`, `url.scheme`, `url.path`
//! (or nothing of the path, [`Path::Hidden`], where the path is the credential: a Slack or
//! Teams webhook), the status and the response body's size. Never the query string, the user
//! info, a header value or a body: a presigned URL's signature, a token in a query, a
//! password in the URL do not reach a span.
//!
//! A `traceparent` the caller set (an `http` step's own `headers:`) is kept: the runbook's
//! author asked for that value, and a service may be joining a trace of its own.

use tracing::field::Empty;
use tracing::{Instrument, Span};

use crate::telemetry::{client_span, fail, traceparent_of};

/// Whether a request's path may be shown on its span.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Path {
    /// `url.path` is recorded.
    Shown,
    /// The path is a credential (a webhook's): `url.path` is left out.
    Hidden,
}

/// A request's span, open until it is dropped: the caller reads the body within it and
/// records its size.
#[derive(Debug)]
pub(crate) struct HttpSpan(Span);

impl HttpSpan {
    /// Records the size of the response body read, in bytes.
    pub(crate) fn body_bytes(&self, n: usize) {
        self.0.record("http.response.body.size", n as u64);
    }
    /// Marks the request failed while its body was read.
    pub(crate) fn body_failed(&self, e: &reqwest::Error) {
        fail(&self.0, kind(e));
    }
    /// The span, to run the reading of the body in.
    pub(crate) fn span(&self) -> &Span {
        &self.0
    }
}

/// Sends `req` within a new client span (a child of the current span), with `traceparent`.
/// An error status (4xx, 5xx) marks the span failed with the status as `error.type`.
pub(crate) async fn send(req: reqwest::RequestBuilder, path: Path) -> (Result<reqwest::Response, reqwest::Error>, HttpSpan) {
    let (client, req) = req.build_split();
    let mut req = match req {
        Ok(req) => req,
        Err(e) => {
            let span = client_span!("http.request", otel.name = "HTTP", http.request.method = Empty);
            fail(&span, kind(&e));
            return (Err(e), HttpSpan(span));
        }
    };
    let url = req.url();
    let method = req.method().as_str().to_string();
    let span = client_span!(
        "http.request",
        otel.name = format!("HTTP {method}"),
        http.request.method = method,
        server.address = url.host_str().unwrap_or_default(),
        server.port = url.port_or_known_default().unwrap_or_default(),
        url.scheme = url.scheme(),
        url.path = Empty,
        http.response.status_code = Empty,
        http.response.body.size = Empty,
    );
    if path == Path::Shown {
        span.record("url.path", url.path());
    }
    if !req.headers().contains_key("traceparent") {
        if let Some(value) = traceparent_of(&span).and_then(|v| reqwest::header::HeaderValue::from_str(&v).ok()) {
            req.headers_mut().insert("traceparent", value);
        }
    }
    let result = client.execute(req).instrument(span.clone()).await;
    match &result {
        Ok(resp) => {
            let status = resp.status().as_u16();
            span.record("http.response.status_code", status);
            if status >= 400 {
                fail(&span, &status.to_string());
            }
        }
        Err(e) => fail(&span, kind(e)),
    }
    (result, HttpSpan(span))
}

/// `error.type` of a request error: its kind, never its text (which holds the URL).
fn kind(e: &reqwest::Error) -> &'static str {
    if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connect"
    } else if e.is_redirect() {
        "redirect"
    } else if e.is_builder() {
        "request"
    } else if e.is_body() || e.is_decode() {
        "body"
    } else {
        "http"
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry::trace::Status;
    use serde_json::json;
    use tracing::{Instrument, Level, info_span};
    use tracing_opentelemetry::OpenTelemetrySpanExt;

    use crate::telemetry::testing::{assert_no_secret, attrs, ctx, install, serve};
    use crate::{ActionError, Plugin};

    async fn http(with: serde_json::Value) -> Result<serde_json::Value, ActionError> {
        crate::net::Http.run(&ctx(), serde_json::from_value(with).expect("valid input")).await
    }

    #[tokio::test]
    async fn a_request_is_a_child_span_that_the_server_sees_as_traceparent_and_holds_no_secret() {
        let traces = install(Level::INFO);
        let (base, seen) = serve(200, "ok").await;
        let url = base.replace("http://", "http://ops:pa55w0rd-user@") + "/v1/health?X-Amz-Signature=presig-abc123&token=q-tok-9z";
        let step = info_span!("step");
        let with = json!({ "url": url, "headers": { "Authorization": "Bearer tok-SECRET-123" } });
        http(with).instrument(step.clone()).await.expect("200 is a success");
        let step_cx = step.context();
        drop(step);

        let span = traces.one("HTTP GET");
        let a = attrs(&span);
        assert_eq!(a["http.request.method"], "GET");
        assert_eq!(a["server.address"], "127.0.0.1");
        assert_eq!(a["server.port"], base.rsplit(':').next().unwrap());
        assert_eq!(a["url.path"], "/v1/health");
        assert_eq!(a["http.response.status_code"], "200");
        assert_eq!(a["http.response.body.size"], "2");
        assert!(!a.contains_key("error.type"), "{a:?}");
        use opentelemetry::trace::TraceContextExt;
        let parent = step_cx.span().span_context().clone();
        assert_eq!(span.parent_span_id, parent.span_id(), "the request's span is a child of the step's");
        assert_eq!(span.span_context.trace_id(), parent.trace_id());

        let got = seen.lock().unwrap().clone();
        assert_eq!(got.len(), 1);
        assert!(got[0].line.contains("token=q-tok-9z"), "the server got the query: {}", got[0].line);
        let expected = format!("00-{}-{}-01", span.span_context.trace_id(), span.span_context.span_id());
        assert_eq!(got[0].headers.get("traceparent"), Some(&expected), "the server is told the request's own span");

        let all = traces.spans();
        for secret in ["pa55w0rd-user", "presig-abc123", "q-tok-9z", "tok-SECRET-123", "X-Amz-Signature"] {
            assert_no_secret(&all, secret);
        }
    }

    #[tokio::test]
    async fn an_error_status_and_a_refused_connection_mark_the_span_failed() {
        let traces = install(Level::INFO);
        let (base, _) = serve(503, "down").await;
        http(json!({ "url": format!("{base}/x") })).await.expect_err("503 is not expected");
        let span = traces.one("HTTP GET");
        assert!(matches!(span.status, Status::Error { .. }), "{:?}", span.status);
        assert_eq!(attrs(&span)["error.type"], "503");
        assert_eq!(attrs(&span)["http.response.status_code"], "503");

        // A port nothing listens on: bound, then closed.
        let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
        http(json!({ "method": "POST", "url": format!("http://{closed}/y"), "body": "b" })).await.expect_err("refused");
        let span = traces.one("HTTP POST");
        assert!(matches!(span.status, Status::Error { .. }), "{:?}", span.status);
        assert_eq!(attrs(&span)["error.type"], "connect");
    }

    #[tokio::test]
    async fn a_traceparent_the_runbook_sets_is_kept() {
        let _traces = install(Level::INFO);
        let (base, seen) = serve(200, "").await;
        let mine = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        http(json!({ "url": base, "headers": { "traceparent": mine } })).instrument(info_span!("step")).await.unwrap();
        assert_eq!(seen.lock().unwrap()[0].headers.get("traceparent").map(String::as_str), Some(mine));
    }

    #[tokio::test]
    async fn without_an_opentelemetry_layer_no_traceparent_is_sent() {
        let (base, seen) = serve(200, "").await;
        http(json!({ "url": base })).instrument(info_span!("step")).await.unwrap();
        assert_eq!(crate::telemetry::traceparent(), None);
        assert!(!seen.lock().unwrap()[0].headers.contains_key("traceparent"));
    }

    #[tokio::test]
    async fn a_webhooks_path_is_its_credential_and_stays_off_the_span() {
        let traces = install(Level::INFO);
        let (base, seen) = serve(200, "ok").await;
        let with = json!({ "to": "slack", "url": format!("{base}/services/T0001/B0002/hook-s3cr3t-XYZ"), "title": "t" });
        crate::net::Notify.run(&ctx(), serde_json::from_value(with).unwrap()).instrument(info_span!("step")).await.unwrap();
        let span = traces.one("HTTP POST");
        assert!(!attrs(&span).contains_key("url.path"));
        assert_eq!(attrs(&span)["http.response.body.size"], "2");
        assert!(seen.lock().unwrap()[0].headers.contains_key("traceparent"));
        assert_no_secret(&traces.spans(), "hook-s3cr3t-XYZ");
    }
}
