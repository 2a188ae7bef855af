//! Deciding what starts: needs, `when`, `for_each` items, capacity.

use serde_json::{Value, json};

use super::{Driver, Need, UnitKey, item_id};
use crate::exec::attempt::Unit;
use crate::exec::prepare::now_ms;
use crate::runbook::{Cond, Role, TriggerRule};
use crate::state::{PlanKind, SkipReason, StepRecord, StepStatus};
use crate::template::{eval_condition, eval_value, render_tree};

impl Driver {
    /// Whether step `i` of plan `k` runs, waits, or is not run, from how its needs ended and
    /// its `trigger_rule` (the table is in docs/runbooks.md, "When a step runs"). A need
    /// that failed, was cancelled, or was itself not run for a failure counts as a failure
    /// for every rule but `all_done`; a failure outweighs a skip.
    pub(super) fn needs(&self, k: PlanKind, i: usize) -> Need {
        let plan = self.plan(k);
        let recs = self.recs(k);
        let rule = plan.steps[i].trigger_rule;
        let (mut wait, mut skip) = (false, false);
        for &n in &plan.steps[i].needs {
            let tolerated = plan.steps[n].continue_on_error || matches!(plan.steps[n].role, Role::Probe(_));
            let via = plan.steps[n].id.clone();
            match (recs[n].status, rule) {
                (StepStatus::Pending | StepStatus::Running | StepStatus::Waiting, _) => wait = true,
                (StepStatus::Succeeded, _) | (_, TriggerRule::AllDone) => {}
                (StepStatus::Failed, _) if tolerated => {}
                (StepStatus::Failed | StepStatus::Cancelled, _) => return Need::UpstreamFailed { origin: via.clone(), via },
                // Not run for a failure further up: still that failure, not an optional gate.
                (StepStatus::UpstreamFailed, _) => {
                    let origin = recs[n].upstream.clone().unwrap_or_else(|| via.clone());
                    return Need::UpstreamFailed { origin, via };
                }
                // `none_failed`: a need skipped with nothing failed (an optional gate) counts as done.
                (StepStatus::Skipped, TriggerRule::NoneFailed) => {}
                (StepStatus::Skipped, TriggerRule::AllSuccess) => skip = true,
            }
        }
        if wait {
            Need::Wait
        } else if skip {
            Need::Skip
        } else {
            Need::Run
        }
    }

    /// Whether `max_parallel` leaves room for another step. Signal probes do not count: all
    /// of a runbook's probes run at once, so a slow probe never delays the others.
    pub(super) fn capacity(&self) -> bool {
        let probes = self.running.keys().filter(|&&(k, i, _)| self.is_probe(k, i)).count();
        self.running.len() - probes < self.rb.max_parallel
    }

    fn is_probe(&self, k: PlanKind, i: usize) -> bool {
        matches!(self.plan(k).steps[i].role, Role::Probe(_))
    }

    /// One scheduling round: decides what can start, and returns the units to spawn.
    pub(super) fn schedule(&mut self) -> Vec<Unit> {
        let mut out = Vec::new();
        if self.stopping.is_some() {
            return out;
        }
        let k = self.phase;
        // Approvals not yet asked for in this process (a resumed run) first: a decision
        // recorded meanwhile, or a timeout that passed, ends them and readies their dependents.
        let unasked: Vec<usize> =
            self.frontier.active(k).filter(|&i| self.recs(k)[i].status == StepStatus::Waiting && !self.waiting.contains(&(k, i))).collect();
        for i in unasked {
            self.request_approval(k, i);
        }
        // Steps whose needs have all ended, in plan order; a skip can add more this round.
        let mut seen = std::collections::HashSet::new();
        loop {
            let next: Vec<usize> = self.frontier.ready(k).filter(|i| !seen.contains(i)).collect();
            if next.is_empty() {
                break;
            }
            for i in next {
                seen.insert(i);
                if self.recs(k)[i].status != StepStatus::Pending {
                    continue;
                }
                match self.needs(k, i) {
                    Need::Wait => {}
                    Need::Skip => {
                        self.rec_mut((k, i, None)).skip = Some(SkipReason::Upstream);
                        self.transition((k, i, None), StepStatus::Skipped, Some("a need was skipped".into()));
                    }
                    Need::UpstreamFailed { origin, via } => {
                        let why = upstream_failed_why(&origin, &via, self.recs(k).iter().find(|r| r.id == origin).map(|r| r.status));
                        self.rec_mut((k, i, None)).upstream = Some(origin);
                        self.transition((k, i, None), StepStatus::UpstreamFailed, Some(why));
                    }
                    // Without room, only approvals and skips can still be decided.
                    Need::Run if self.capacity() || self.plan(k).steps[i].uses == "approval" || self.is_probe(k, i) => {
                        self.start_step(k, i, &mut out)
                    }
                    Need::Run => {}
                }
            }
        }
        let active: Vec<usize> = self.frontier.active(k).collect();
        for i in active {
            match self.recs(k)[i].status {
                // Its action (or every item) succeeded before a crash; its after-checks were not all in.
                StepStatus::Running if self.recs(k)[i].acted => self.after_check_again(k, i),
                StepStatus::Running if self.items.contains_key(&(k, i)) => self.start_items(k, i, &mut out),
                // A child run to resume.
                StepStatus::Running
                    if !self.running.contains_key(&(k, i, None)) && !self.halted_units.contains(&(k, i, None)) && self.capacity() =>
                {
                    out.push(self.unit((k, i, None)));
                }
                _ => {}
            }
        }
        out
    }

    pub(super) fn start_step(&mut self, k: PlanKind, i: usize, out: &mut Vec<Unit>) {
        let rb = self.rb.clone();
        let step = &rb.plan_of(k).steps[i];
        if let Some(cond) = &step.when {
            let holds = match cond {
                Cond::Bool(b) => Ok(*b),
                Cond::Expr(e) => eval_condition(e, &self.ctx.value(None)),
            };
            match holds {
                Ok(true) => {}
                Ok(false) => {
                    let note = match cond {
                        Cond::Expr(e) => super::skip_note::when_false(e, &self.ctx.value(None), &self.redactor.read().expect("poisoned")),
                        Cond::Bool(_) => "`when` is false".to_string(),
                    };
                    self.rec_mut((k, i, None)).skip = Some(SkipReason::When);
                    self.transition((k, i, None), StepStatus::Skipped, Some(note));
                    return;
                }
                Err(e) => {
                    self.transition((k, i, None), StepStatus::Running, None);
                    self.transition((k, i, None), StepStatus::Failed, Some(format!("`when` could not be evaluated: {e}")));
                    return;
                }
            }
        }
        if !self.may_start(k, i) {
            return;
        }
        if step.uses == "approval" {
            self.transition((k, i, None), StepStatus::Waiting, None);
            let now = now_ms();
            let run_id = self.run.id.clone();
            let rec = self.rec_mut((k, i, None));
            rec.waiting_since = Some(now);
            rec.attempts += 1;
            // A new wait (a first ask, or again after a rejection and a resume) renders its
            // approvers again, from the runbook the run now uses.
            rec.inputs = None;
            let rec = rec.clone();
            self.batch.put_step(&run_id, &rec);
            self.request_approval(k, i);
            return;
        }
        if let Some(fe) = &step.for_each {
            let list = match fe {
                Value::String(s) => eval_value(crate::template::whole_expression(s).unwrap_or(s), &self.ctx.value(None)),
                other => render_tree(other, &self.ctx.value(None), &[], &[]).map_err(|(_, e)| e),
            };
            self.transition((k, i, None), StepStatus::Running, None);
            match list {
                Ok(Value::Array(items)) => {
                    let n = items.len();
                    let run_id = self.run.id.clone();
                    self.rec_mut((k, i, None)).items = Some(n);
                    let parent = self.rec_mut((k, i, None)).clone();
                    self.batch.put_step(&run_id, &parent);
                    // On resume, items that succeeded keep their results; the others run again.
                    let old = self.items.remove(&(k, i)).filter(|o| o.len() == n);
                    let recs: Vec<StepRecord> = (0..n)
                        .map(|j| match old.as_ref().map(|o| &o[j]) {
                            Some(r) if r.status == StepStatus::Succeeded => r.clone(),
                            Some(r) => StepRecord { status: StepStatus::Pending, error: None, ..r.clone() },
                            None => StepRecord { order: i as u32, ..StepRecord::pending(item_id(&step.id, j), k, &step.fingerprint) },
                        })
                        .collect();
                    for r in &recs {
                        self.batch.put_step(&run_id, r);
                    }
                    self.items.insert((k, i), recs);
                    self.lists.insert((k, i), items);
                    self.start_items(k, i, out);
                }
                Ok(other) => {
                    self.transition((k, i, None), StepStatus::Failed, Some(format!("`for_each` gave {other}, not a list")));
                }
                Err(e) => self.transition((k, i, None), StepStatus::Failed, Some(format!("`for_each` could not be evaluated: {e}"))),
            }
            return;
        }
        if self.capacity() {
            self.transition((k, i, None), StepStatus::Running, None);
            out.push(self.unit((k, i, None)));
        }
    }

    pub(super) fn start_items(&mut self, k: PlanKind, i: usize, out: &mut Vec<Unit>) {
        if !self.lists.contains_key(&(k, i)) {
            // Resumed: the list is evaluated again (its inputs are the same finished steps).
            let step = &self.plan(k).steps[i];
            let list = match &step.for_each {
                Some(Value::String(s)) => eval_value(crate::template::whole_expression(s).unwrap_or(s), &self.ctx.value(None)).ok(),
                Some(other) => render_tree(other, &self.ctx.value(None), &[], &[]).ok(),
                None => None,
            };
            match list {
                Some(Value::Array(a)) if a.len() == self.items[&(k, i)].len() => {
                    self.lists.insert((k, i), a);
                }
                _ => {
                    self.transition(
                        (k, i, None),
                        StepStatus::Failed,
                        Some("`for_each` no longer gives the same list; resume with an edited runbook".into()),
                    );
                    return;
                }
            }
        }
        let limit = self.plan(k).steps[i].max_parallel.unwrap_or(usize::MAX);
        let n = self.items[&(k, i)].len();
        let mut active = self.running.keys().filter(|(pk, pi, item)| *pk == k && *pi == i && item.is_some()).count();
        for j in 0..n {
            if active >= limit || !self.capacity() {
                break;
            }
            if self.items[&(k, i)][j].status == StepStatus::Pending {
                self.transition((k, i, Some(j)), StepStatus::Running, None);
                out.push(self.unit((k, i, Some(j))));
                active += 1;
            }
        }
        self.finish_items(k, i);
    }

    /// Ends a `for_each` step once all its items have ended.
    pub(super) fn finish_items(&mut self, k: PlanKind, i: usize) {
        let items = &self.items[&(k, i)];
        if items.iter().any(|r| !r.status.is_done()) || self.recs(k)[i].status != StepStatus::Running {
            return;
        }
        let failed: Vec<String> = items.iter().filter(|r| r.status != StepStatus::Succeeded).map(|r| r.id.clone()).collect();
        let outputs: Vec<Value> = items.iter().map(|r| r.outputs.clone().unwrap_or(Value::Null)).collect();
        let total = items.len();
        let rec = self.rec_mut((k, i, None));
        rec.outputs = Some(json!({ "items": outputs, "count": outputs.len() }));
        if failed.is_empty() {
            if !self.hold_for_after_check((k, i, None)) {
                self.transition((k, i, None), StepStatus::Succeeded, None);
            }
        } else {
            self.transition(
                (k, i, None),
                StepStatus::Failed,
                Some(format!("{} of {total} items failed: {}", failed.len(), failed.join(", "))),
            );
        }
    }

    pub(super) fn unit(&mut self, key: UnitKey) -> Unit {
        let token = self.cancel_all.child_token();
        self.running.insert(key, token.clone());
        let rec = match key {
            (k, i, Some(j)) => &self.items[&(k, i)][j],
            (k, i, None) => &self.recs(k)[i],
        };
        let history = match self.plan(key.0).steps[key.1].role {
            Role::Score => self.engine.inner.store.history(&self.rb.name).ok().flatten(),
            _ => None,
        };
        Unit {
            key,
            item: key.2.map(|j| (j, self.lists.get(&(key.0, key.1)).and_then(|l| l.get(j).cloned()).unwrap_or(Value::Null))),
            attempt: rec.attempts.max(1),
            child_run: rec.child_run.clone(),
            history,
            token,
        }
    }
}

/// `not run: `deploy` failed` or `not run: `deploy` failed (through `rollout`)`.
fn upstream_failed_why(origin: &str, via: &str, status: Option<StepStatus>) -> String {
    let how = if status == Some(StepStatus::Cancelled) { "was cancelled" } else { "failed" };
    if origin == via { format!("not run: `{origin}` {how}") } else { format!("not run: `{origin}` {how} (through `{via}`)") }
}

/// The steps worth looking at: pending steps whose needs have all ended (`ready`), and
/// steps that are running or waiting (`active`: items to start, children to resume,
/// approvals to ask for), per plan, in plan order.
#[derive(Debug, Default)]
pub(super) struct Frontier {
    /// Needs not yet ended, per step.
    blocked: [Vec<usize>; 4],
    /// A step's position in its plan's order.
    pos: [Vec<usize>; 4],
    ready: [std::collections::BTreeMap<usize, usize>; 4],
    active: [std::collections::BTreeMap<usize, usize>; 4],
}

fn slot(k: PlanKind) -> usize {
    match k {
        PlanKind::Main => 0,
        PlanKind::OnFailure => 1,
        PlanKind::OnAbort => 2,
        PlanKind::Teardown => 3,
    }
}

impl Frontier {
    pub(super) fn build(d: &Driver) -> Self {
        let mut f = Frontier::default();
        for k in [PlanKind::Main, PlanKind::OnFailure, PlanKind::OnAbort, PlanKind::Teardown] {
            let (plan, recs) = (d.plan(k), d.recs(k));
            let s = slot(k);
            f.pos[s] = vec![0; plan.steps.len()];
            for (p, &i) in plan.dag.order().iter().enumerate() {
                f.pos[s][i] = p;
            }
            f.blocked[s] = plan.steps.iter().map(|st| st.needs.iter().filter(|&&n| !recs[n].status.is_done()).count()).collect();
            for (i, r) in recs.iter().enumerate() {
                f.place(s, i, r.status);
            }
        }
        f
    }

    fn place(&mut self, s: usize, i: usize, status: StepStatus) {
        let p = self.pos[s][i];
        self.ready[s].remove(&p);
        self.active[s].remove(&p);
        match status {
            StepStatus::Pending if self.blocked[s][i] == 0 => {
                self.ready[s].insert(p, i);
            }
            StepStatus::Running | StepStatus::Waiting => {
                self.active[s].insert(p, i);
            }
            _ => {}
        }
    }

    /// A step of plan `k` moved to `to`.
    pub(super) fn moved(&mut self, plan: &crate::runbook::Plan, recs: &[StepRecord], k: PlanKind, i: usize, to: StepStatus) {
        let s = slot(k);
        self.place(s, i, to);
        if to.is_done() {
            for d in plan.dag.dependents(i) {
                self.blocked[s][d] = self.blocked[s][d].saturating_sub(1);
                if self.blocked[s][d] == 0 && recs[d].status == StepStatus::Pending {
                    self.ready[s].insert(self.pos[s][d], d);
                }
            }
        }
    }

    pub(super) fn ready(&self, k: PlanKind) -> impl Iterator<Item = usize> + '_ {
        self.ready[slot(k)].values().copied()
    }

    pub(super) fn active(&self, k: PlanKind) -> impl Iterator<Item = usize> + '_ {
        self.active[slot(k)].values().copied()
    }
}
