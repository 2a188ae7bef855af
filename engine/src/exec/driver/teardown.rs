//! A drill's teardown (`drill.teardown`): when a drill ends — succeeded, failed, cancelled
//! or aborted — its teardown steps run as the driver's last phase before the run ends. How
//! the drill ended is durable first (`RunRecord::ending`), so a crash during the teardown is
//! resumed into the teardown, never into the main plan again. A teardown that failed fails
//! the run, saying so: the drill's targets may be left as the drill made them.

use serde_json::json;

use super::Driver;
use crate::exec::engine::{Outcome, RunError};
use crate::state::{EventKind, PlanKind, RunStatus, StepStatus};

impl Driver {
    /// The run ends with `status` and `error` — after its teardown, for a drill that has one.
    pub(super) fn end(&mut self, status: RunStatus, error: Option<String>) -> Result<Option<Outcome>, RunError> {
        if self.phase != PlanKind::Teardown {
            self.measure();
        }
        if self.run.drill && self.phase != PlanKind::Teardown && !self.teardown.is_empty() {
            self.run.ending = Some((status, error.clone()));
            self.batch.put_run(&self.run);
            let text = match &error {
                Some(e) => format!("drill: tearing down (the drill {}: {e})", status.as_str()),
                None => format!("drill: tearing down (the drill {})", status.as_str()),
            };
            self.event(EventKind::Note { step: None, text, data: Some(json!({ "kind": "teardown", "drill": status.as_str() })) });
            self.ctx.run["status"] = json!(status.as_str());
            self.phase = PlanKind::Teardown;
            return Ok(None);
        }
        let outcome = match status {
            RunStatus::Succeeded => Outcome::Succeeded,
            RunStatus::Cancelled => Outcome::Cancelled,
            _ => Outcome::Failed(error.clone().unwrap_or_else(|| "the drill failed".into())),
        };
        self.finish(status, error).map(|_| Some(outcome))
    }

    /// The teardown has ended; `failed` names its steps that failed (or were cancelled).
    pub(super) fn torn_down(&mut self, failed: Vec<String>) -> Result<Option<Outcome>, RunError> {
        let (status, error) = self.run.ending.clone().unwrap_or((RunStatus::Failed, None));
        let undecided: Vec<String> = self.teardown.iter().filter(|r| !r.status.is_done()).map(|r| r.id.clone()).collect();
        if failed.is_empty() && undecided.is_empty() {
            return self.end(status, error);
        }
        let mut why = format!("the drill {}", status.as_str());
        if let Some(e) = &error {
            why += &format!(" ({e})");
        }
        why += &format!("; teardown failed: {}", failed.iter().chain(&undecided).cloned().collect::<Vec<_>>().join(", "));
        why += &format!(
            ": the drill's targets may be left as the drill made them; fix them, then phoenix resume {} runs the teardown's failed steps again",
            self.run.id
        );
        self.end(RunStatus::Failed, Some(why))
    }
}

impl Driver {
    /// Stores the run's RTO, stages and RPO in its record (written with the next commit, with
    /// the phase's end): measured once, when its main plan (and on_failure, on_abort) ended and
    /// before a drill's teardown, never again at a resume of the teardown.
    fn measure(&mut self) {
        let items = self.items.iter().filter(|((k, _), _)| *k == PlanKind::Main).flat_map(|(_, v)| v.iter().cloned());
        let records: Vec<_> = self.main.iter().cloned().chain(items).collect();
        let mut m = crate::exec::drill_measure::measure(&self.rb, &self.run, &records);
        m["measured_at"] = json!(crate::exec::prepare::now_ms());
        self.run.measure = Some(m);
    }
}

/// What a run's teardown came to, from its steps' statuses: `succeeded`, `failed`,
/// `running` (not ended yet), or `None` without teardown steps.
pub(crate) fn teardown_result(statuses: &[StepStatus]) -> Option<&'static str> {
    if statuses.is_empty() {
        return None;
    }
    Some(if statuses.iter().any(|s| matches!(s, StepStatus::Failed | StepStatus::Cancelled | StepStatus::UpstreamFailed)) {
        "failed"
    } else if statuses.iter().all(|s| s.is_done()) {
        "succeeded"
    } else {
        "pending"
    })
}
