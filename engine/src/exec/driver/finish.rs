//! Ending a phase or the run: success, failure (then on_failure), halt, cancel, abort (the
//! on_abort steps, then `cancelled`).

use serde_json::{Value, json};

use super::{Driver, Stop};
use crate::exec::engine::{Outcome, RunError};
use crate::exec::observer::UiEvent;
use crate::exec::prepare::now_ms;
use crate::runbook::{Plan, Role};
use crate::state::{EventKind, PlanKind, RunStatus, StepRecord, StepStatus};
use crate::template::render_tree;

impl Driver {
    pub(super) fn can_progress(&self) -> bool {
        !self.waiting.is_empty() && !self.no_wait && self.engine.inner.observer.interactive()
    }

    /// Nothing runs and nothing can start: the phase (or the run) is over.
    pub(super) fn settle(&mut self) -> Result<Option<Outcome>, RunError> {
        if let Some(stop) = self.stopping {
            return self.finish_stopped(stop);
        }
        if !self.waiting.is_empty() {
            if self.can_progress() {
                return Ok(None);
            }
            let steps: Vec<String> = self.waiting.iter().map(|&(k, i)| self.plan(k).steps[i].id.clone()).collect();
            let cmds: Vec<String> = steps.iter().map(|s| format!("phoenix approve {} {s}", self.run.id)).collect();
            let why =
                format!("waiting for approval of {}:\n  {}\n  then: phoenix resume {}", steps.join(", "), cmds.join("\n  "), self.run.id);
            return self.finish(RunStatus::Halted, Some(why.clone())).map(|_| Some(Outcome::Halted(why)));
        }
        if !self.halted.is_empty() {
            let why = self.halted.join("; ");
            return self.finish(RunStatus::Halted, Some(why.clone())).map(|_| Some(Outcome::Halted(why)));
        }
        let failed = |plan: &Plan, recs: &[StepRecord]| -> Vec<String> {
            recs.iter()
                .enumerate()
                .filter(|(i, r)| {
                    r.status == StepStatus::Failed && !plan.steps[*i].continue_on_error && !matches!(plan.steps[*i].role, Role::Probe(_))
                })
                .map(|(_, r)| r.id.clone())
                .collect()
        };
        match self.phase {
            PlanKind::Main => {
                let failed = failed(&self.rb.main, &self.main);
                // Nothing runs and nothing can start: every step must have ended. If one has
                // not, that is an engine bug, and the run must not claim success.
                let undecided: Vec<String> = self.main.iter().filter(|r| !r.status.is_done()).map(|r| r.id.clone()).collect();
                if !undecided.is_empty() {
                    let why = format!(
                        "internal error: the run stopped with step(s) never decided: {} (resume it to continue)",
                        undecided.join(", ")
                    );
                    return self.finish(RunStatus::Halted, Some(why.clone())).map(|_| Some(Outcome::Halted(why)));
                }
                // Steps not run because of a failure: named in the run's error, and never a
                // success even if their failed ancestor was not found above (an old store).
                let not_run: Vec<String> =
                    self.main.iter().filter(|r| r.status == StepStatus::UpstreamFailed).map(|r| r.id.clone()).collect();
                if failed.is_empty() && !not_run.is_empty() {
                    let why = format!("step(s) not run because a need failed: {}", not_run.join(", "));
                    return self.begin_on_failure(why, &[]);
                }
                if failed.is_empty() {
                    // The runbook's outputs are part of success: one that cannot be rendered
                    // fails the run, and on_failure runs as for a failed step.
                    let outputs = match self.render_outputs() {
                        Ok(o) => o,
                        Err(e) => return self.begin_on_failure(e, &[]),
                    };
                    // The on_failure steps will not run: say so rather than leave them pending.
                    for i in 0..self.fail.len() {
                        if self.fail[i].status == StepStatus::Pending {
                            self.fail[i].skip = Some(crate::state::SkipReason::When);
                            self.transition((PlanKind::OnFailure, i, None), StepStatus::Skipped, Some("the run did not fail".into()));
                        }
                    }
                    self.run.outputs = Some(outputs);
                    return self.end(RunStatus::Succeeded, None);
                }
                let why = match not_run.len() {
                    0 => format!("step(s) failed: {}", failed.join(", ")),
                    _ => format!("step(s) failed: {}; not run because of it: {}", failed.join(", "), not_run.join(", ")),
                };
                self.begin_on_failure(why, &failed)
            }
            PlanKind::OnFailure => {
                let why = self.run.error.clone().unwrap_or_else(|| "a step failed".into());
                let also = failed(&self.rb.on_failure, &self.fail);
                let why = if also.is_empty() { why } else { format!("{why}; on_failure step(s) failed too: {}", also.join(", ")) };
                self.end(RunStatus::Failed, Some(why))
            }
            PlanKind::OnAbort => {
                let why = self.aborting.clone().unwrap_or_else(|| "aborted by an operator".into());
                let also = failed(&self.rb.on_abort, &self.abort);
                let not_run: Vec<String> = self.abort.iter().filter(|r| !r.status.is_done()).map(|r| r.id.clone()).collect();
                let why = match (also.is_empty(), not_run.is_empty()) {
                    (true, true) => why,
                    _ => format!(
                        "{why}; on_abort step(s) failed: {}{}: check what they were to undo by hand",
                        also.join(", "),
                        if not_run.is_empty() { String::new() } else { format!("; never decided: {}", not_run.join(", ")) }
                    ),
                };
                self.end(RunStatus::Cancelled, Some(why))
            }
            PlanKind::Teardown => {
                let also = failed(&self.rb.teardown, &self.teardown);
                self.torn_down(also)
            }
        }
    }

    /// The main plan failed (`why`; `failed` names its failed steps): the on_failure steps
    /// run next, seeing the failure in `run`, or the run ends failed when there are none.
    fn begin_on_failure(&mut self, why: String, failed: &[String]) -> Result<Option<Outcome>, RunError> {
        self.run.error = Some(why.clone());
        if self.fail.is_empty() {
            return self.end(RunStatus::Failed, Some(why));
        }
        self.ctx.run["status"] = json!("failed");
        self.ctx.run["failed_steps"] = json!(failed);
        self.ctx.run["error"] = json!(why);
        self.phase = PlanKind::OnFailure;
        Ok(None)
    }

    pub(super) fn render_outputs(&self) -> Result<Value, String> {
        let tree = Value::Object(self.rb.outputs.iter().map(|(k, v)| (k.clone(), v.clone())).collect());
        let v = render_tree(&tree, &self.ctx.value(None), &[], &[]).map_err(|(p, e)| format!("outputs.{p}: {e}"))?;
        Ok(self.redactor.read().expect("poisoned").json(&v))
    }

    pub(super) fn finish_stopped(&mut self, stop: Stop) -> Result<Option<Outcome>, RunError> {
        match stop {
            Stop::Interrupt => {
                self.finish(RunStatus::Halted, Some("interrupted".into()))?;
                Ok(Some(Outcome::Interrupted))
            }
            Stop::Cancel => {
                let aborting = self.aborting.is_some();
                for k in [PlanKind::Main, PlanKind::OnFailure, PlanKind::OnAbort, PlanKind::Teardown] {
                    // A drill's teardown is cancelled only when it is what was running.
                    if k == PlanKind::Teardown && self.phase != PlanKind::Teardown {
                        continue;
                    }
                    // on_abort steps exist in the store only once the run is aborted.
                    if k == PlanKind::OnAbort && !aborting {
                        continue;
                    }
                    for i in 0..self.recs(k).len() {
                        let s = self.recs(k)[i].status;
                        if matches!(s, StepStatus::Pending | StepStatus::Waiting | StepStatus::Running) {
                            self.transition((k, i, None), StepStatus::Cancelled, Some("run cancelled".into()));
                        }
                    }
                }
                if self.phase == PlanKind::Teardown {
                    let left: Vec<String> =
                        self.teardown.iter().filter(|r| r.status == StepStatus::Cancelled).map(|r| r.id.clone()).collect();
                    return self.torn_down(left);
                }
                // A drill tears down all the same (the cancel stopped only what was running).
                self.stopping = None;
                self.end(RunStatus::Cancelled, Some("cancelled by an operator".into()))
            }
        }
    }

    pub(super) fn finish(&mut self, status: RunStatus, error: Option<String>) -> Result<(), RunError> {
        let now = now_ms();
        self.run.status = status;
        self.run.error = error.clone().or(self.run.error.take()).filter(|_| status != RunStatus::Succeeded);
        self.run.updated_at = now;
        self.run.finished_at = Some(now);
        self.run.pid = None;
        self.batch.put_run(&self.run);
        if matches!(status, RunStatus::Succeeded | RunStatus::Cancelled) {
            if let Some(l) = &self.run.lock {
                if self.engine.inner.store.lock_holder(l)?.as_deref() == Some(self.run.id.as_str()) {
                    self.batch.unlock(l);
                }
            }
        }
        self.event(EventKind::RunFinished { status, error: error.clone() });
        self.commit()?;
        self.engine.inner.observer.on(&UiEvent::RunFinished { run: self.run.id.clone(), status, error });
        Ok(())
    }
}
