//! Invariants around steps: the before-check runs while the step is still `pending` (a
//! crash during it leaves nothing uncertain), the after-check once the step's success is
//! durable as `acted` (a crash during it never runs the action again). See docs/runbooks.md,
//! "Invariants", for the crash windows.

use std::collections::HashSet;

use super::{Driver, Msg, UnitKey};
use crate::exec::invariant_check::{self, Phase, Verdict};
use crate::exec::observer::UiEvent;
use crate::state::{EventKind, PlanKind, StepStatus};

/// What the driver knows of the invariants of its run, in this process.
#[derive(Debug, Default)]
pub(super) struct Guard {
    /// Main-plan steps whose checks are in flight.
    pub(super) checking: HashSet<usize>,
    /// Steps whose before-checks held (or were overridden) in this process.
    cleared: HashSet<usize>,
    /// Steps whose before-check failed: not started until the run is resumed.
    blocked: HashSet<usize>,
    /// Invariants `resume --override` lets the run pass this time.
    overrides: Vec<String>,
}

impl Driver {
    /// The invariants `phoenix resume --override` names: checked and recorded as always, but a
    /// failure does not stop the run during this resume.
    pub(crate) fn with_overrides(mut self, names: Vec<String>) -> Self {
        self.guard.overrides = names;
        self
    }

    fn guarded(&self, k: PlanKind, i: usize) -> bool {
        k == PlanKind::Main && self.rb.invariants_around(i).next().is_some()
    }

    /// Whether main step `i` may start now: its before-checks have held in this process.
    /// Otherwise they are started (once), and the step stays `pending` meanwhile.
    pub(super) fn may_start(&mut self, k: PlanKind, i: usize) -> bool {
        if !self.guarded(k, i) || self.guard.cleared.contains(&i) {
            return true;
        }
        if !self.guard.checking.contains(&i) && !self.guard.blocked.contains(&i) {
            self.spawn_checks(i, Phase::Before);
        }
        false
    }

    /// A unit succeeded. For a guarded step, its success is recorded as `acted` (durable with
    /// this round) and its after-checks start; it ends when they are in. Returns whether it
    /// did so (otherwise the caller records the success).
    pub(super) fn hold_for_after_check(&mut self, key: UnitKey) -> bool {
        let (k, i, item) = key;
        if item.is_some() || !self.guarded(k, i) {
            return false;
        }
        if self.rec_mut(key).acted {
            // Already recorded (a `for_each` step looked at again): its checks are under way.
            self.after_check_again(k, i);
            return true;
        }
        let run_id = self.run.id.clone();
        let rec = self.rec_mut(key);
        rec.acted = true;
        let rec = rec.clone();
        self.batch.put_step(&run_id, &rec);
        self.durable = true;
        self.spawn_checks(i, Phase::After);
        true
    }

    /// A resumed run's step found `acted`: its after-checks again (never its action).
    pub(super) fn after_check_again(&mut self, k: PlanKind, i: usize) {
        if k == PlanKind::Main && !self.guard.checking.contains(&i) && self.stopping.is_none() {
            self.spawn_checks(i, Phase::After);
        }
    }

    fn spawn_checks(&mut self, i: usize, phase: Phase) {
        self.guard.checking.insert(i);
        let (engine, rb, run_id, ctx, tx) = (self.engine.clone(), self.rb.clone(), self.run.id.clone(), self.ctx.clone(), self.tx.clone());
        let redactor = self.redactor.clone();
        let token = self.cancel_all.child_token();
        tokio::spawn(async move {
            let mut verdicts = Vec::new();
            for (n, _) in rb.invariants_around(i) {
                verdicts.push(invariant_check::run(&engine, &rb, &run_id, n, &ctx, &redactor, token.child_token()).await);
            }
            let _ = tx.send(Msg::Checked { step: i, phase, verdicts });
        });
    }

    /// The checks around main step `i` are in: each is an event; then the step starts, the
    /// run halts (before), or the step succeeds or fails (after).
    pub(super) fn checked(&mut self, i: usize, phase: Phase, verdicts: Vec<Verdict>) {
        self.guard.checking.remove(&i);
        let step = self.rb.main.steps[i].id.clone();
        let mut failed = Vec::new();
        for v in verdicts {
            let inv = &self.rb.invariants[v.invariant];
            let (name, that) = (inv.name.clone(), inv.that.clone());
            let what = inv.description.as_ref().map_or(String::new(), |d| format!(" ({d})"));
            let saw = self.redactor.read().expect("poisoned").text(&v.saw);
            let overridden = !v.held && self.guard.overrides.contains(&name);
            self.event(EventKind::Invariant {
                name: name.clone(),
                step: step.clone(),
                when: phase.as_str().into(),
                held: v.held,
                overridden,
                saw: saw.clone(),
            });
            let verdict = if v.held {
                "holds"
            } else if overridden {
                "does NOT hold (overridden)"
            } else {
                "does NOT hold"
            };
            self.engine.inner.observer.on(&UiEvent::Log {
                run: self.run.id.clone(),
                step: step.clone(),
                text: format!("invariant `{name}` {verdict} {} `{step}`: it saw {}", phase.as_str(), shortened(&saw)),
                stderr: !v.held,
            });
            if !v.held && !overridden {
                failed.push(format!(
                    "invariant `{name}`{what} does not hold {} `{step}`: `{that}` is not true; it saw {saw}",
                    phase.as_str()
                ));
            }
        }
        if self.stopping.is_some() {
            // Stopping: the step stays as it is (pending, or running and acted) and resume checks again.
            return;
        }
        let id = self.run.id.clone();
        match phase {
            Phase::Before if failed.is_empty() => {
                self.guard.cleared.insert(i);
            }
            Phase::Before => {
                self.guard.blocked.insert(i);
                let names: Vec<String> = self
                    .rb
                    .invariants_around(i)
                    .map(|(_, inv)| inv.name.clone())
                    .filter(|n| failed.iter().any(|f| f.contains(&format!("`{n}`"))))
                    .collect();
                self.halted.push(format!(
                    "{}. `{step}` did not start (nothing was changed by it). Check the world, then either: phoenix resume {id} (checks again), or, knowing why it is safe: phoenix resume {id} --override {} --reason \"…\"",
                    failed.join("; "),
                    names.join(" --override ")
                ));
            }
            Phase::After => {
                let rec = self.rec_mut((PlanKind::Main, i, None));
                rec.acted = false;
                if failed.is_empty() {
                    self.transition((PlanKind::Main, i, None), StepStatus::Succeeded, None);
                } else {
                    let error = format!("its action succeeded, but {}", failed.join("; "));
                    self.transition((PlanKind::Main, i, None), StepStatus::Failed, Some(error));
                }
            }
        }
    }
}

/// What a check saw, for one terminal line (the whole of it is in the event).
fn shortened(saw: &str) -> String {
    const MAX: usize = 200;
    match saw.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}… (phoenix logs has all of it)", &saw[..cut]),
        None => saw.to_string(),
    }
}
