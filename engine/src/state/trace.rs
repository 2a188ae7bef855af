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

#[cfg(test)]
mod tests {
    use crate::state::RunRecord;

    #[test]
    fn a_run_stored_before_traces_reads_back_without_one() {
        let mut v = serde_json::to_value(RunRecord::sample("r", 1)).unwrap();
        assert!(v.get("trace").is_none(), "no trace, no field");
        v.as_object_mut().unwrap().remove("trace");
        let r: RunRecord = serde_json::from_value(v).unwrap();
        assert_eq!(r.trace, None);
    }
}
