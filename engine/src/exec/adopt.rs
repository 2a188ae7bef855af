//! What a resume does to each step, decided before anything runs: the edit of an adopted
//! runbook, the operator's `--rerun` and `--keep`, and staleness (a step that runs again
//! makes its descendants run again after it). The rule table is in docs/operating.md,
//! "Adopting an edited runbook".

use std::collections::HashMap;

use crate::dag::Dag;
use crate::runbook::{Plan, Runbook};
use crate::state::{Batch, PlanKind, StepRecord, StepStatus};

/// What happens to one step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Verdict {
    New,
    Changed,
    /// Changed, but stopped mid-way and not idempotent: resume asks (`--retry`/`--skip`).
    ChangedInDoubt,
    /// Changed, succeeded, not idempotent: kept.
    KeptNotIdempotent,
    /// `--rerun`: runs again.
    Rerun,
    /// `--keep`: keeps its result although it would run again (changed or stale).
    KeptByOperator,
    /// Runs again after `after`, which runs again.
    Stale {
        after: String,
    },
    /// Would be stale after `after`, but succeeded and is not idempotent: kept.
    StaleKept {
        after: String,
    },
}

/// The decisions of one resume, for showing (and confirming) before it runs.
#[derive(Debug, Clone, Default)]
pub struct Adoption {
    /// One line per step of the runbook (and per removed step): what happens to it.
    pub diff: Vec<String>,
    /// The steps that run, in order, each with the steps it waits for.
    pub plan: Vec<String>,
    /// How many steps of the main plan run.
    pub runs: usize,
    /// Set when resume would halt before running anything, asking the operator (exit 3).
    pub asks: Option<String>,
}

impl Adoption {
    /// What the operator confirms: the diff and the plan, as one list of lines.
    pub fn confirmed(&self) -> Vec<String> {
        self.diff.iter().chain(&self.plan).cloned().collect()
    }
}

/// Applies an edited runbook to a run's records: new steps are added, removed ones dropped,
/// changed ones reset unless kept (not idempotent and succeeded, or `--keep`) or in doubt.
#[allow(clippy::too_many_arguments)]
pub(super) fn apply_edit(
    old: &Runbook,
    new: &Runbook,
    records: &mut HashMap<String, StepRecord>,
    in_doubt: &dyn Fn(&HashMap<String, StepRecord>, &str) -> bool,
    keep: &[String],
    rerun: &[String],
    run: &str,
    batch: &mut Batch,
) -> (HashMap<String, Verdict>, Vec<String>) {
    let mut verdicts = HashMap::new();
    let mut removed = Vec::new();
    for (plan, old_plan, kind) in [(&new.main, &old.main, PlanKind::Main), (&new.on_failure, &old.on_failure, PlanKind::OnFailure)] {
        for s in &plan.steps {
            let verdict = match old_plan.find(&s.id).map(|i| &old_plan.steps[i]) {
                None => {
                    records.insert(s.id.clone(), StepRecord::pending(&s.id, kind, &s.fingerprint));
                    Verdict::New
                }
                Some(o) if o.fingerprint == s.fingerprint => continue,
                // Editing a step does not undo what its stopped attempt may have done: unless
                // the edit makes it idempotent, resume still asks.
                Some(_) if !s.idempotent && in_doubt(records, &s.id) => Verdict::ChangedInDoubt,
                Some(_) if rerun.contains(&s.id) => continue,
                Some(_) if succeeded(records, &s.id) && keep.contains(&s.id) => Verdict::KeptByOperator,
                // What a succeeded mutation did is done: a new text is no reason to do it twice.
                Some(_) if succeeded(records, &s.id) && !s.idempotent => Verdict::KeptNotIdempotent,
                Some(_) => {
                    reset(records, &s.id, run, batch);
                    Verdict::Changed
                }
            };
            verdicts.insert(s.id.clone(), verdict);
        }
        for o in &old_plan.steps {
            if plan.find(&o.id).is_none() {
                removed.push(o.id.clone());
                records.remove(&o.id);
                batch.delete_step(run, &o.id);
            }
        }
    }
    (verdicts, removed)
}

/// `--rerun STEP`: a succeeded (or `when`-skipped) step runs again.
pub(super) fn apply_rerun(
    rb: &Runbook,
    records: &mut HashMap<String, StepRecord>,
    rerun: &[String],
    run: &str,
    batch: &mut Batch,
    verdicts: &mut HashMap<String, Verdict>,
) -> Result<(), String> {
    for name in rerun {
        let status = records.get(name).map_or(StepStatus::Pending, |r| r.status);
        if !matches!(status, StepStatus::Succeeded | StepStatus::Skipped) {
            return Err(format!(
                "--rerun {name}: `{name}` is {}, not a finished step; --rerun runs again a step that succeeded (the run was not changed)",
                status.as_str()
            ));
        }
        if rb.main.find(name).is_none() {
            return Err(format!("--rerun {name}: `{name}` is not a step of the main plan (on_failure steps run again when the run fails)"));
        }
        reset(records, name, run, batch);
        verdicts.insert(name.clone(), Verdict::Rerun);
    }
    Ok(())
}

/// Staleness: in the main plan, a finished step with a need that runs again (or is stale
/// itself) runs again after it, unless `--keep` (its result stands, and so for what follows
/// it) or it succeeded and is not idempotent (kept; what follows it is still stale).
pub(super) fn mark_stale(
    rb: &Runbook,
    records: &mut HashMap<String, StepRecord>,
    keep: &[String],
    run: &str,
    batch: &mut Batch,
    verdicts: &mut HashMap<String, Verdict>,
) {
    let plan = &rb.main;
    let mut origin: Vec<Option<String>> = vec![None; plan.steps.len()];
    for &i in plan.dag.order() {
        let s = &plan.steps[i];
        let Some(rec) = records.get(&s.id) else { continue };
        if rec.status == StepStatus::Pending {
            origin[i] = Some(s.id.clone());
            continue;
        }
        if verdicts.get(&s.id) == Some(&Verdict::KeptByOperator) {
            continue;
        }
        let Some(after) = s.needs.iter().find_map(|&n| origin[n].clone()) else { continue };
        let finished = matches!(rec.status, StepStatus::Succeeded | StepStatus::Skipped);
        if !finished {
            origin[i] = Some(after);
            continue;
        }
        if keep.contains(&s.id) {
            verdicts.insert(s.id.clone(), Verdict::KeptByOperator);
        } else if rec.status == StepStatus::Succeeded && !s.idempotent {
            if verdicts.get(&s.id) != Some(&Verdict::KeptNotIdempotent) {
                verdicts.insert(s.id.clone(), Verdict::StaleKept { after: after.clone() });
            }
            origin[i] = Some(after);
        } else {
            reset(records, &s.id, run, batch);
            verdicts.insert(s.id.clone(), Verdict::Stale { after: after.clone() });
            origin[i] = Some(s.id.clone());
        }
    }
}

/// `--keep` names steps that would otherwise run again, and nothing else.
pub(super) fn check_keep(rb: &Runbook, verdicts: &HashMap<String, Verdict>, keep: &[String], rerun: &[String]) -> Result<(), String> {
    for name in keep {
        if rerun.contains(name) {
            return Err(format!("`{name}` is given to both --keep and --rerun: choose one"));
        }
        if verdicts.get(name) != Some(&Verdict::KeptByOperator) {
            let why =
                if rb.main.find(name).is_none() { "not a step of the main plan" } else { "not a succeeded step that would run again" };
            return Err(format!(
                "--keep {name}: `{name}` is {why}; --keep applies only to a succeeded step that is changed or stale (the run was not changed)"
            ));
        }
    }
    Ok(())
}

/// The lines shown before a resume runs, and the order it runs in.
pub(super) fn describe(
    rb: &Runbook,
    records: &HashMap<String, StepRecord>,
    verdicts: &HashMap<String, Verdict>,
    removed: &[String],
) -> Adoption {
    let mut out = Adoption::default();
    for plan in [&rb.main, &rb.on_failure] {
        for &i in plan.dag.order() {
            let id = &plan.steps[i].id;
            let status = records.get(id).map_or(StepStatus::Pending, |r| r.status);
            let line = match verdicts.get(id) {
                Some(Verdict::New) => format!("+ {id} (new: will run)"),
                Some(Verdict::Changed) => format!("~ {id} (changed: will run again)"),
                Some(Verdict::ChangedInDoubt) => {
                    format!("~ {id} (changed, but stopped mid-way and not idempotent: resume asks before running it again)")
                }
                Some(Verdict::KeptNotIdempotent) => format!("! {id} (changed, kept: not idempotent; `--rerun {id}` to run it again)"),
                Some(Verdict::Rerun) => format!("~ {id} (--rerun: will run again)"),
                Some(Verdict::KeptByOperator) => format!("= {id} (kept by --keep: keeps its result)"),
                Some(Verdict::Stale { after }) => format!("^ {id} (stale: runs again after {after})"),
                Some(Verdict::StaleKept { after }) => {
                    format!("! {id} (stale after {after}, kept: not idempotent; `--rerun {id}` to run it again)")
                }
                None if status == StepStatus::Pending && std::ptr::eq(plan, &rb.on_failure) => {
                    format!("= {id} (on_failure: runs if the run fails)")
                }
                None if status == StepStatus::Pending => format!("= {id} (unchanged; not done: will run)"),
                None => format!("= {id} (unchanged: keeps its result, {})", status.as_str()),
            };
            out.diff.push(line);
        }
    }
    out.diff.extend(removed.iter().map(|id| format!("- {id} (removed)")));
    let waits = waits(&rb.main, records);
    for &i in rb.main.dag.order() {
        let id = &rb.main.steps[i].id;
        if records.get(id).is_some_and(|r| r.status == StepStatus::Pending) {
            out.runs += 1;
            let after: Vec<&str> = waits[i].iter().map(|&n| rb.main.steps[n].id.as_str()).collect();
            out.plan.push(if after.is_empty() {
                format!("{}. {id}", out.runs)
            } else {
                format!("{}. {id} (after {})", out.runs, after.join(", "))
            });
        }
    }
    out
}

/// Per step of `plan`: the steps that run this time it must wait for — its pending
/// ancestors, also those reached through a kept step in between.
fn waits(plan: &Plan, records: &HashMap<String, StepRecord>) -> Vec<Vec<usize>> {
    let pending: Vec<bool> = plan.steps.iter().map(|s| records.get(&s.id).is_some_and(|r| r.status == StepStatus::Pending)).collect();
    let anc = plan.dag.all_ancestors();
    (0..plan.steps.len())
        .map(
            |i| {
                if pending[i] {
                    plan.dag.order().iter().copied().filter(|&a| anc[i].contains(a) && pending[a]).collect()
                } else {
                    Vec::new()
                }
            },
        )
        .collect()
}

/// Makes every pending step of the main plan wait for its pending ancestors also through
/// steps that are kept (a kept need would otherwise let it start at once). Only those
/// through a need that does not run are added: a need that runs waits for its own.
pub(super) fn order_after_ancestors(rb: &mut Runbook, records: &HashMap<String, StepRecord>) {
    let waits = waits(&rb.main, records);
    let pending = |i: usize| records.get(&rb.main.steps[i].id).is_some_and(|r| r.status == StepStatus::Pending);
    let anc = rb.main.dag.all_ancestors();
    let mut needs: Vec<Vec<usize>> = rb.main.steps.iter().map(|s| s.needs.clone()).collect();
    let mut added = false;
    for (i, w) in waits.into_iter().enumerate() {
        let kept: Vec<usize> = needs[i].iter().copied().filter(|&n| !pending(n)).collect();
        for a in w {
            if !needs[i].contains(&a) && kept.iter().any(|&n| anc[n].contains(a)) {
                needs[i].push(a);
                added = true;
            }
        }
    }
    if !added {
        return;
    }
    // Ancestors only: no cycle can appear.
    if let Ok(dag) = Dag::build(&needs) {
        for (s, n) in rb.main.steps.iter_mut().zip(needs) {
            s.needs = n;
        }
        rb.main.dag = dag;
    }
}

fn succeeded(records: &HashMap<String, StepRecord>, id: &str) -> bool {
    records.get(id).is_some_and(|r| r.status == StepStatus::Succeeded)
}

/// Back to pending, with its `for_each` items, child run and approval decision dropped: it
/// runs from scratch (a gate asks again; the decision before stays in the events).
fn reset(records: &mut HashMap<String, StepRecord>, id: &str, run: &str, batch: &mut Batch) {
    if let Some(r) = records.get_mut(id) {
        r.status = StepStatus::Pending;
        r.skip = None;
        r.upstream = None;
        r.items = None;
        r.child_run = None;
        r.approval = None;
        r.error = None;
    }
    // A decision recorded while the run was halted was made on the gate as it was.
    batch.clear_approval(run, id);
    let prefix = format!("{id}[");
    let items: Vec<String> = records.keys().filter(|k| k.starts_with(&prefix)).cloned().collect();
    for k in items {
        records.remove(&k);
        batch.delete_step(run, &k);
    }
}

/// `--keep` and `--rerun` name steps of the runbook: a typo would otherwise be ignored while
/// the operator believes they decided something.
pub(super) fn check_names(rb: &Runbook, flag: &str, names: &[String]) -> Result<(), String> {
    let ids: Vec<&str> = rb.main.steps.iter().chain(&rb.on_failure.steps).map(|s| s.id.as_str()).collect();
    for name in names {
        if !ids.contains(&name.as_str()) {
            return Err(format!("{flag} {name}: the runbook has no step `{name}` ({})", crate::suggest::hint(name, ids.iter().copied())));
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "adopt_tests.rs"]
mod tests;
