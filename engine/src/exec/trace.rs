//! The spans of a run (issue 19): `run` per run (per process that drives it), `step` per
//! step or `for_each` item, `attempt` per attempt, and one event per stored event. The ids
//! come from OpenTelemetry through `tracing-opentelemetry` when the binary installs its
//! layer (src/telemetry/); without it the spans are plain `tracing` spans and no trace is
//! stored.
//!
//! What a span or event holds: ids, names, numbers, statuses, and the error texts the store
//! holds, which the driver redacted first (`Driver::event`). Never a rendered `with`, an
//! output, or a log line.

use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
use tracing::Span;
use tracing::field::Empty;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::runbook::Step;
use crate::state::{EventKind, RunRecord, TraceContext};

/// The span of a run driven by this process. A run with a stored trace continues it (its
/// span a child of the run span that stored it: a failover across a crash is one trace);
/// a new run's span is a child of the current span (a child run's: the parent's `attempt`).
pub(crate) fn run_span(run: &RunRecord) -> Span {
    let span = tracing::info_span!(
        "run",
        otel.name = %format!("run {}", run.runbook),
        run_id = %run.id,
        runbook = %run.runbook,
        run_attempt = run.attempt,
        drill = run.drill,
        parent_run = run.parent.as_ref().map(|(p, _)| p.as_str()),
        // The Alertmanager fingerprint of an alert-started run (`RunRecord::alert`).
        alert_fingerprint = run.alert.as_ref().map(|a| a.fingerprint.as_str()),
        alertname = run.alert.as_ref().map(|a| a.alertname.as_str()),
        outcome = Empty,
        otel.status_code = Empty,
    );
    if let Some(parent) = run.trace.as_ref().and_then(remote) {
        let _ = span.set_parent(opentelemetry::Context::new().with_remote_span_context(parent));
    }
    span
}

/// The ids of a span, once OpenTelemetry gave it some.
pub(crate) fn context_of(span: &Span) -> Option<TraceContext> {
    let cx = span.context();
    let sc = cx.span().span_context().clone();
    sc.is_valid().then(|| TraceContext { trace_id: sc.trace_id().to_string(), span_id: sc.span_id().to_string() })
}

/// A stored trace as the remote parent of a resumed run's span.
fn remote(t: &TraceContext) -> Option<SpanContext> {
    let trace_id = TraceId::from_hex(&t.trace_id).ok()?;
    let span_id = SpanId::from_hex(&t.span_id).ok()?;
    let sc = SpanContext::new(trace_id, span_id, TraceFlags::SAMPLED, true, TraceState::default());
    sc.is_valid().then_some(sc)
}

/// The span of one step (or item) from its first attempt to its result.
pub(crate) fn step_span(step: &Step, display_id: &str) -> Span {
    tracing::info_span!(
        "step",
        otel.name = %format!("step {display_id}"),
        step = %display_id,
        action = %step.uses,
        effect = %step.effect.as_str(),
        outcome = Empty,
        otel.status_code = Empty,
    )
}

/// The span of one attempt of a step.
pub(crate) fn attempt_span(attempt: u32) -> Span {
    tracing::info_span!("attempt", otel.name = %format!("attempt {attempt}"), attempt, outcome = Empty, otel.status_code = Empty)
}

/// Records how a span's work ended: `outcome`, and OpenTelemetry's status.
pub(crate) fn end(span: &Span, outcome: &str, ok: bool) {
    span.record("outcome", outcome);
    span.record("otel.status_code", if ok { "OK" } else { "ERROR" });
}

/// One stored event as a `tracing` event, inside the run's span. Its texts are the stored
/// ones, redacted by the driver before it stores them.
pub(crate) fn event(kind: &EventKind) {
    match kind {
        EventKind::Step { step, status, attempt, error } => match error {
            Some(error) => {
                tracing::info!(step = %step, status = status.as_str(), attempt, error = %error, "step {step} {}", status.as_str())
            }
            None => tracing::info!(step = %step, status = status.as_str(), attempt, "step {step} {}", status.as_str()),
        },
        EventKind::Retry { step, attempt, error, delay_ms } => {
            tracing::info!(step = %step, attempt, delay_ms, error = %error, "step {step} attempt {attempt} failed, retrying in {delay_ms} ms")
        }
        EventKind::RunStarted { attempt, .. } => tracing::info!(run_attempt = attempt, "run started"),
        EventKind::RunFinished { status, error } => {
            tracing::info!(status = status.as_str(), error = error.as_deref(), "run {}", status.as_str())
        }
        other if tracing::enabled!(tracing::Level::DEBUG) => {
            let json = serde_json::to_value(other).unwrap_or_default();
            let kind = json.get("kind").and_then(serde_json::Value::as_str).unwrap_or("event").to_string();
            tracing::debug!(kind = %kind, event = %json, "run event {kind}");
        }
        _ => {}
    }
}
