//! A span processor that exports once it is told where: the subscriber is installed before
//! any command runs, but `phoenix serve` learns its OTLP endpoint from serve.yaml later.
//! Until then (and forever, with no endpoint) ended spans are dropped; their ids were
//! generated all the same, so a run stores its trace id either way.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use opentelemetry::Context;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{BatchSpanProcessor, Span, SpanData, SpanProcessor};

/// The processor behind the tracer provider; `set` gives it the batch exporter once.
#[derive(Debug, Clone)]
pub(crate) struct Late {
    inner: Arc<OnceLock<BatchSpanProcessor>>,
    resource: Resource,
}

impl Late {
    pub(crate) fn new(resource: Resource) -> Late {
        Late { inner: Arc::new(OnceLock::new()), resource }
    }

    /// Exports from now on through `p`; false if an exporter was already set.
    pub(crate) fn set(&self, mut p: BatchSpanProcessor) -> bool {
        p.set_resource(&self.resource);
        self.inner.set(p).is_ok()
    }

    /// Whether spans are exported.
    pub(crate) fn is_set(&self) -> bool {
        self.inner.get().is_some()
    }
}

impl SpanProcessor for Late {
    fn on_start(&self, span: &mut Span, cx: &Context) {
        if let Some(p) = self.inner.get() {
            p.on_start(span, cx);
        }
    }

    fn on_end(&self, span: SpanData) {
        if let Some(p) = self.inner.get() {
            p.on_end(span);
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.get().map_or(Ok(()), BatchSpanProcessor::force_flush)
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.get().map_or(Ok(()), |p| p.shutdown_with_timeout(timeout))
    }
}
