//! A run's place in a distributed trace, stored with it so that a resume, in another
//! process after a crash, continues the same trace.

use serde::{Deserialize, Serialize};

/// The trace a run belongs to: its trace id and the span id of the run span that first
/// stored it (lowercase hex, as W3C `traceparent` writes them). A resumed run's span is a
/// child of that span.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceContext {
    /// 32 hex digits.
    pub trace_id: String,
    /// 16 hex digits.
    pub span_id: String,
}
