//! What the actions tell a tracing system (issue 19): the W3C `traceparent` of the current
//! span for outgoing calls, whether the calls of a bulk action are spans of their own, and
//! how a failed call is marked on its span.
//!
//! The spans themselves are made where the calls are: `net/traced.rs` (every reqwest
//! request), `aws/traced.rs` (every AWS SDK call), `azure/traced.rs` (every Blob request),
//! `postgres/traced.rs` (connections, statements, `pg_dump`/`pg_restore`). None of them ever
//! records a header value, a query string, user info, a DSN or a statement's text.

use opentelemetry::trace::{TraceContextExt, TraceFlags};
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The W3C `traceparent` of the current span (`00-{trace id}-{span id}-{flags}`), or None
/// when it has no OpenTelemetry context (no OpenTelemetry layer is installed).
pub fn traceparent() -> Option<String> {
    traceparent_of(&Span::current())
}

/// The W3C `traceparent` of `span`, or None when it has no valid OpenTelemetry context.
pub fn traceparent_of(span: &Span) -> Option<String> {
    let cx = span.context();
    let sc = cx.span().span_context().clone();
    if !sc.is_valid() {
        return None;
    }
    let flags = sc.trace_flags() & TraceFlags::SAMPLED;
    Some(format!("00-{}-{}-{:02x}", sc.trace_id(), sc.span_id(), flags.to_u8()))
}

/// Filter directives a subscriber should add after the user's own (`RUST_LOG`,
/// `--log-level`), so that even `debug` or `trace` does not let a dependency's log line carry
/// a credential: azure_core 0.21 logs each request's URL (a SAS is in its query) and its
/// headers with `Authorization` shown (its `Debug` redacts every header but that one);
/// aws-sigv4 traces the request it signs; reqwest logs the URLs of redirects (a token may be in
/// their query).
pub const QUIET_TARGETS: &[&str] = &["azure_core=info", "aws_sigv4=info", "reqwest=info"];

tokio::task_local! {
    static BULK: ();
}

/// Runs `fut` as a bulk action (`storage.sync`: thousands of requests): inside it, each
/// request's span is at `debug` level, so an `info` filter keeps the one span of the action
/// and drops the per-request ones.
pub async fn bulk<F: Future>(fut: F) -> F::Output {
    BULK.scope((), fut).await
}

/// Whether the current task is inside [`bulk`].
pub(crate) fn in_bulk() -> bool {
    BULK.try_with(|()| ()).is_ok()
}

/// Marks `span` failed: `otel.status_code = "ERROR"` and `error.type` (a short, fixed kind
/// such as `timeout` or a status code: never a message, which may quote a URL or a value).
pub(crate) fn fail(span: &Span, error_type: &str) {
    span.record("otel.status_code", "ERROR");
    span.record("error.type", error_type);
}

/// Makes a client span at `info`, or at `debug` inside [`bulk`]; the same fields either way.
macro_rules! client_span {
    ($name:literal, $($fields:tt)*) => {
        if $crate::telemetry::in_bulk() {
            ::tracing::debug_span!($name, otel.kind = "client", otel.status_code = ::tracing::field::Empty, "error.type" = ::tracing::field::Empty, $($fields)*)
        } else {
            ::tracing::info_span!($name, otel.kind = "client", otel.status_code = ::tracing::field::Empty, "error.type" = ::tracing::field::Empty, $($fields)*)
        }
    };
}
pub(crate) use client_span;

#[cfg(test)]
pub(crate) mod testing;
