//! `--log-format json`: one JSON object a line on stderr, for log shippers. Each line holds
//! `timestamp` (RFC 3339, UTC), `level`, `target`, `message`, `span` (the innermost span's
//! name), the event's fields, and the fields of every span around it, flattened (inner
//! wins): an event inside a step carries `run_id`, `runbook`, `step`, `action`, `attempt`.

use std::io::Write;

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

/// The layer that writes the lines.
pub(crate) struct JsonLayer;

/// A span's fields, kept in its extensions.
struct Fields(Map<String, Value>);

/// Collects fields as JSON values. `otel.*` fields steer the OpenTelemetry layer (span names,
/// statuses) and are left out.
struct Collect<'a>(&'a mut Map<String, Value>);

impl Collect<'_> {
    fn put(&mut self, field: &Field, v: Value) {
        if !field.name().starts_with("otel.") {
            self.0.insert(field.name().to_string(), v);
        }
    }
}

impl Visit for Collect<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, Value::from(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, Value::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, Value::from(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, Value::from(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, Value::from(value));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.put(field, Value::from(value.to_string()));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.put(field, Value::from(format!("{value:?}")));
    }
}

impl<S> Layer<S> for JsonLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = Map::new();
        attrs.record(&mut Collect(&mut fields));
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(Fields(fields));
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id) {
            if let Some(f) = span.extensions_mut().get_mut::<Fields>() {
                values.record(&mut Collect(&mut f.0));
            }
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let meta = event.metadata();
        let mut line = Map::new();
        line.insert("timestamp".into(), Value::from(humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string()));
        line.insert("level".into(), Value::from(meta.level().as_str()));
        line.insert("target".into(), Value::from(meta.target()));
        let mut fields = Map::new();
        let mut innermost = None;
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope.from_root() {
                // A child run's span starts afresh: its events are not its parent step's.
                if span.name() == "run" {
                    fields.clear();
                }
                if let Some(f) = span.extensions().get::<Fields>() {
                    fields.extend(f.0.iter().map(|(k, v)| (k.clone(), v.clone())));
                }
                innermost = Some(span.name());
            }
        }
        let mut own = Map::new();
        event.record(&mut Collect(&mut own));
        let message = own.remove("message").unwrap_or(Value::from(""));
        fields.extend(own);
        line.insert("message".into(), message);
        if let Some(name) = innermost {
            line.insert("span".into(), Value::from(name));
        }
        for (k, v) in fields {
            line.entry(k).or_insert(v);
        }
        write(line);
    }
}

/// One line: `timestamp`, `level`, `target`, `message`.
pub(super) fn write_line(level: &str, target: &str, message: &str) {
    let mut line = Map::new();
    line.insert("timestamp".into(), Value::from(humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string()));
    line.insert("level".into(), Value::from(level));
    line.insert("target".into(), Value::from(target));
    line.insert("message".into(), Value::from(message));
    write(line);
}

fn write(line: Map<String, Value>) {
    let mut text = Value::Object(line).to_string();
    text.push('\n');
    // One write per line, under the lock: lines from threads never interleave.
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}
