//! Numbers as a runbook writes them, for the score's tables and lines (`health`, `watch`,
//! `status`, the report).

use serde_json::Value;

/// A weight or a total as the runbook wrote it: `2`, not `2.0`.
pub(crate) fn num(v: &Value) -> String {
    match v.as_f64() {
        Some(f) if f.fract() == 0.0 => format!("{}", f as i64),
        Some(f) => f.to_string(),
        None => v.to_string(),
    }
}
