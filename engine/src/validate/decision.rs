//! `decision_ttl`: how long a decision taken from the signals stays good (positive; 15m by
//! default). `phoenix resume` evaluates the signals again past it (`exec/stale.rs`).

use std::time::Duration;

use crate::diag::{Code, Diagnostic};
use crate::runbook::raw::RawRunbook;
use crate::yaml::Path;

/// The default `decision_ttl`.
pub(crate) const DEFAULT_TTL: Duration = Duration::from_secs(15 * 60);

/// The runbook's `decision_ttl`, or the default; a zero one is reported.
pub(crate) fn ttl(raw: &RawRunbook, out: &mut Vec<Diagnostic>) -> Duration {
    let Some(d) = raw.decision_ttl else { return DEFAULT_TTL };
    if d.get().is_zero() {
        out.push(
            Diagnostic::new(
                Code::Duration,
                Path::root().key("decision_ttl"),
                "a `decision_ttl` of 0 would make every decision stale at once",
            )
            .help("give how long a decision from the signals stays good, e.g. `decision_ttl: 15m` (the default)"),
        );
        return DEFAULT_TTL;
    }
    d.get()
}
