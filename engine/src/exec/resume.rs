//! `phoenix resume`: continue a run from its checkpoint, optionally adopting an edited runbook.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;

use super::adopt::{self, Adoption};
use super::driver::Driver;
use super::engine::{Engine, Outcome, ResumeOptions, RunError};
use super::in_doubt::{ask_operator, check_in_flight, in_doubt, uncertain_steps};
use super::lifecycle;
use super::prepare::now_ms;
use crate::runbook::Runbook;
use crate::state::{Batch, EventKind, PlanKind, RunRecord, RunStatus, SkipReason, StepRecord, StepStatus};

/// A resume decided but not yet written: what `resume` commits, and `plan_resume` shows.
struct Prepared {
    run: RunRecord,
    seen: crate::state::Seen,
    rb: Runbook,
    records: HashMap<String, StepRecord>,
    batch: Batch,
    seq: u64,
    blocked: Vec<(String, String)>,
    adoption: Adoption,
    by: String,
}

impl Engine {
    /// What `resume` would do, step by step, without doing or writing anything (`--dry-run`,
    /// and the confirmation before an edited runbook is adopted). `Err` as `resume` would.
    pub async fn plan_resume(&self, id: &str, opts: &ResumeOptions) -> Result<Adoption, RunError> {
        let p = self.prepare_resume(id, opts, false).await?;
        let mut adoption = p.adoption;
        if !p.blocked.is_empty() {
            adoption.asks = Some(ask_operator(id, &p.blocked));
        }
        Ok(adoption)
    }

    /// Resumes a run from its checkpoint.
    pub async fn resume(&self, id: &str, opts: ResumeOptions) -> Result<Outcome, RunError> {
        let store = &self.inner.store;
        if opts.abort {
            return self.abort(id, &opts).await;
        }
        if opts.confirm && opts.reason.as_deref().is_none_or(|r| r.trim().is_empty()) {
            return Err(RunError::BadInput(format!(
                "--confirm needs --reason: say why the run goes on although the signals no longer call for it (phoenix resume {id} --confirm --reason \"…\")"
            )));
        }
        let Prepared { mut run, seen, mut rb, records, mut batch, mut seq, blocked, adoption, by } =
            self.prepare_resume(id, &opts, true).await?;
        // An abort under way (interrupted): its on_abort steps go on, never the main plan.
        if records.values().any(|r| r.plan == PlanKind::OnAbort) {
            return self.abort(id, &opts).await;
        }
        if opts.confirmed.as_ref().is_some_and(|c| *c != adoption.confirmed()) {
            return Err(RunError::BadInput(format!(
                "run {id} changed after its plan was shown (another operator, or a run that ended meanwhile): this resume wrote nothing; look again: phoenix resume {id} --dry-run"
            )));
        }
        if !blocked.is_empty() {
            let why = ask_operator(id, &blocked);
            if let Some(from) = &opts.takeover_from {
                // Nothing drives it now: say so in the store (halted, waiting for an operator),
                // not `running` under a node that is gone.
                let me = self.node().unwrap_or("this node").to_string();
                let from = from.clone();
                run.status = RunStatus::Halted;
                run.error = Some(why.clone());
                run.updated_at = now_ms();
                run.pid = None;
                run.owner = Some(me.clone());
                batch.put_run(&run);
                let detail = format!("taken over by {me} from {from}; halted before anything ran again: {why}");
                batch.event(id, seq, run.updated_at, EventKind::Operator { action: "takeover".into(), by: me, detail: Some(detail) });
                batch.unchanged(&seen);
                if !store.try_commit(batch, true)? {
                    return Err(RunError::BadInput(format!("run {id} changed while it was being taken over; nothing was written")));
                }
            }
            return Ok(Outcome::Halted(why));
        }
        let reevaluated = match self.guard_decision(id, &run, &seen, &rb, &records, &opts, &by).await? {
            super::stale::Guard::Go(events) => events,
            super::stale::Guard::Stop(why) => return Ok(Outcome::Halted(why)),
        };
        for kind in reevaluated {
            batch.event(id, seq, now_ms(), kind);
            seq += 1;
        }
        let now = now_ms();
        let mut event = |batch: &mut Batch, kind: EventKind| {
            batch.event(id, seq, now, kind);
            seq += 1;
        };
        run.attempt += 1;
        run.status = RunStatus::Running;
        run.error = None;
        run.finished_at = None;
        run.updated_at = now;
        run.pid = Some(std::process::id());
        run.owner = self.node().map(str::to_string);
        let here = super::prepare::working_dir();
        let moved = match (&run.dir, &here) {
            (Some(before), Some(now)) if before != now => {
                Some(format!("resumed in {now}; the run worked in {before} before: relative paths in its steps now resolve in {now}"))
            }
            _ => None,
        };
        run.dir = here;
        batch.put_run(&run);
        event(&mut batch, EventKind::RunStarted { attempt: run.attempt, by: Some(by) });
        if let (Some(from), Some(node)) = (&opts.takeover_from, self.node()) {
            let detail = format!("taken over by {node} from {from}");
            event(&mut batch, EventKind::Operator { action: "takeover".into(), by: node.to_string(), detail: Some(detail) });
        }
        if let Some(text) = moved {
            event(&mut batch, EventKind::Note { step: None, text, data: None });
        }
        batch.unchanged(&seen);
        if !store.try_commit(batch, true)? {
            let now = store.run(id)?.map_or("gone", |r| r.status.as_str());
            return Err(RunError::BadInput(format!(
                "run {id} changed while it was being resumed (it is {now} now: cancelled, or resumed by someone else); this resume wrote nothing: see phoenix status {id}"
            )));
        }
        let attempt = run.attempt;
        // A step that runs again waits for every ancestor that runs again, also through a
        // kept step between them (in this process only: the stored runbook text is as written).
        adopt::order_after_ancestors(&mut rb, &records);
        let mut ordered: Vec<StepRecord> = records.into_values().collect();
        ordered.sort_by(|a, b| a.id.cmp(&b.id));
        let overrides = opts.overrides.iter().map(|o| o.invariant.clone()).collect();
        Driver::new(self.clone(), Arc::new(rb), run, ordered, opts.no_wait, attempt)?.with_overrides(overrides).drive().await
    }

    /// Decides a resume. `act`: stop a crashed run's orphans first (not for a plan).
    async fn prepare_resume(&self, id: &str, opts: &ResumeOptions, act: bool) -> Result<Prepared, RunError> {
        let store = &self.inner.store;
        // Written back only if still as read: a cancel (or another resume) that commits while
        // this one stops orphans wins, and this one writes nothing.
        let (mut run, seen) = store
            .run_seen(id)?
            .ok_or_else(|| RunError::BadInput(format!("there is no run `{id}` in this state directory (`phoenix runs` lists them)")))?;
        match run.status {
            RunStatus::Succeeded => return Err(RunError::BadInput(format!("run {id} has succeeded: there is nothing to resume"))),
            RunStatus::Cancelled => return Err(RunError::BadInput(format!("run {id} was cancelled: start a new run instead"))),
            _ => {}
        }
        // A drill's steps were checked against `protect` and production when it started; an
        // edited runbook's were not.
        if run.drill && opts.runbook.is_some() {
            return Err(RunError::BadInput(format!(
                "run {id} is a drill: it adopts no edited runbook (its steps were checked against production when it started, the new ones were not)\n  resume it as it is:  phoenix resume {id}\n  or cancel it and start a new drill:  phoenix cancel {id}; phoenix drill FILE"
            )));
        }
        // Steps of a crashed run may still be running as orphans: stop them first.
        let orphans = if act && run.status == RunStatus::Running {
            super::orphans::stop(id, self.inner.opts.grace).await
        } else {
            Default::default()
        };
        let stored_text = store.source(id)?.ok_or_else(|| RunError::BadInput(format!("run {id} has no stored runbook text")))?;
        let loaded = crate::runbook::load_str(&stored_text, std::path::Path::new(&run.file));
        let old = loaded.runbook.ok_or_else(|| {
            let why = loaded.diagnostics.first().map_or(String::new(), |d| format!(" (at {}: {})", d.path, d.message));
            RunError::BadInput(format!(
                "the runbook stored with run {id} no longer validates with this phoenix{why}: resume it with the phoenix version that started it"
            ))
        })?;
        let (rb, adopted) = match &opts.runbook {
            Some(new) => (new.clone(), true),
            None => (old.clone(), false),
        };
        let mut records: HashMap<String, StepRecord> = store.steps(id)?.into_iter().map(|r| (r.id.clone(), r)).collect();
        let mut batch = Batch::default();
        let (mut seq, _) = store.next_seqs(id)?;
        let now = now_ms();
        let mut event = |batch: &mut Batch, kind: EventKind| {
            batch.event(id, seq, now, kind);
            seq += 1;
        };
        if !orphans.is_empty() {
            let list: Vec<String> = orphans.into_iter().collect();
            event(
                &mut batch,
                EventKind::Operator {
                    action: "stop-orphans".into(),
                    by: "phoenix".into(),
                    detail: Some(format!("processes of {} outlived the crash and were stopped", list.join(", "))),
                },
            );
        }
        let bad = RunError::BadInput;
        adopt::check_names(&rb, "--keep", &opts.keep).map_err(bad)?;
        adopt::check_names(&rb, "--rerun", &opts.rerun).map_err(bad)?;
        let mut verdicts = HashMap::new();
        let mut removed = Vec::new();
        if adopted {
            if rb.name != old.name {
                return Err(RunError::BadInput(format!("run {id} is of runbook `{}`, not `{}`", old.name, rb.name)));
            }
            let uncertain = uncertain_steps(&records);
            let doubt = |r: &HashMap<String, StepRecord>, s: &str| in_doubt(r, &uncertain, s);
            (verdicts, removed) = adopt::apply_edit(&old, &rb, &mut records, &doubt, &opts.keep, &opts.rerun, id, &mut batch);
            batch.source(id, &rb.source);
            // The edited runbook's params and vars: a new param takes its default (resume has
            // no --param to supply one), a removed one goes, and vars are rendered again from
            // the same params and run, so unchanged ones keep their values.
            let mut params = run.params.as_object().cloned().unwrap_or_default();
            params.retain(|k, _| rb.params.contains_key(k));
            for (k, p) in &rb.params {
                if !params.contains_key(k) {
                    let Some(d) = &p.default else {
                        return Err(RunError::BadInput(format!(
                            "the edited runbook adds the param `{k}` without a default; resume cannot supply it: give it a default"
                        )));
                    };
                    params.insert(k.clone(), d.clone());
                }
            }
            run.params = Value::Object(params);
            let run_value = super::prepare::run_value(&rb, id, run.started_at, run.attempt + 1, false);
            let (vars, _) = super::prepare::vars_and_lock(&rb, &run.params, &run_value).map_err(RunError::BadInput)?;
            run.vars = vars;
        }
        adopt::apply_rerun(&rb, &mut records, &opts.rerun, id, &mut batch, &mut verdicts).map_err(bad)?;
        let uncertain = uncertain_steps(&records);
        check_in_flight(id, &rb, &records, &uncertain, &opts.retry, &opts.skip)?;
        super::overrides::check(id, &rb, &opts.overrides)?;
        let by = opts.by.clone().unwrap_or_else(|| self.inner.opts.operator.clone());
        for o in &opts.overrides {
            let detail = format!("invariant `{}` overridden for this resume: {}", o.invariant, o.reason);
            event(&mut batch, EventKind::Operator { action: "override".into(), by: by.clone(), detail: Some(detail) });
        }
        // Decide what runs again.
        let mut blocked: Vec<(String, String)> = Vec::new();
        let mut touched: Vec<String> = Vec::new();
        for (plan, kind) in [(&rb.main, PlanKind::Main), (&rb.on_failure, PlanKind::OnFailure)] {
            for (n, s) in plan.steps.iter().enumerate() {
                let rec = records.entry(s.id.clone()).or_insert_with(|| StepRecord::pending(&s.id, kind, &s.fingerprint));
                rec.order = n as u32;
                let before = rec.status;
                // Its effect is uncertain: found running after a crash, or stopped mid-way
                // (interrupted, timed out) while not idempotent.
                let doubt = match rec.status {
                    StepStatus::Running if rec.child_run.is_none() && !rec.acted => Some(
                        uncertain
                            .get(&s.id)
                            .cloned()
                            .unwrap_or_else(|| "running when the run stopped (phoenix was killed or crashed)".into()),
                    ),
                    StepStatus::Failed | StepStatus::Cancelled => uncertain.get(&s.id).cloned(),
                    _ => None,
                };
                let again = match rec.status {
                    // The operator's word first: an idempotent step they checked is done too.
                    // Counted as done once its invariants' after-checks hold (the driver runs them).
                    StepStatus::Running
                        if doubt.is_some()
                            && opts.skip.contains(&s.id)
                            && kind == PlanKind::Main
                            && rb.invariants_around(n).next().is_some() =>
                    {
                        rec.acted = true;
                        rec.error = Some("skipped by the operator after a crash: counted as done if its invariants hold after it".into());
                        rec.uncertain = None;
                        event(&mut batch, EventKind::Operator { action: "skip".into(), by: by.clone(), detail: Some(s.id.clone()) });
                        false
                    }
                    _ if doubt.is_some() && opts.skip.contains(&s.id) => {
                        lifecycle::check_operator_done(&rec.id, rec.status, true).map_err(|e| RunError::BadInput(e.to_string()))?;
                        let was = if rec.status == StepStatus::Running { "after a crash" } else { "after it was stopped mid-way" };
                        rec.status = StepStatus::Succeeded;
                        rec.error = Some(format!("skipped by the operator {was}: counted as done"));
                        rec.uncertain = None;
                        event(&mut batch, EventKind::Operator { action: "skip".into(), by: by.clone(), detail: Some(s.id.clone()) });
                        false
                    }
                    _ if doubt.is_some() && opts.retry.contains(&s.id) => {
                        event(&mut batch, EventKind::Operator { action: "retry".into(), by: by.clone(), detail: Some(s.id.clone()) });
                        true
                    }
                    StepStatus::Running if rec.child_run.is_some() => false,
                    // Its action succeeded; the driver checks its invariants again.
                    StepStatus::Running if rec.acted => false,
                    StepStatus::Running | StepStatus::Failed | StepStatus::Cancelled if s.idempotent => true,
                    _ if doubt.is_some() => {
                        blocked.push((s.id.clone(), doubt.unwrap_or_default()));
                        false
                    }
                    StepStatus::Failed | StepStatus::Cancelled => true,
                    StepStatus::Skipped => rec.skip != Some(SkipReason::When),
                    // Not run for a failed need: decided again from how its needs end this time
                    // (they run if the failed step now succeeds or the operator counts it done).
                    StepStatus::UpstreamFailed => true,
                    _ => false,
                };
                // On failure steps run again only if the run fails again.
                if again || (kind == PlanKind::OnFailure && rec.status.is_done()) {
                    lifecycle::check(&rec.id, rec.status, StepStatus::Pending).map_err(|e| RunError::BadInput(e.to_string()))?;
                    rec.status = StepStatus::Pending;
                    rec.skip = None;
                    rec.upstream = None;
                    rec.error = None;
                    rec.uncertain = None;
                }
                if again || rec.status != before || rec.fingerprint != s.fingerprint || adopted {
                    rec.fingerprint.clone_from(&s.fingerprint);
                    touched.push(s.id.clone());
                }
            }
        }
        // Items of for_each steps that run again start over only where they did not succeed.
        let item_ids: Vec<String> = records.keys().filter(|k| k.contains('[')).cloned().collect();
        for k in item_ids {
            let parent = k.split('[').next().unwrap_or_default().to_string();
            let parent_pending = records.get(&parent).is_some_and(|p| p.status == StepStatus::Pending);
            let rec = records.get_mut(&k).expect("listed");
            if parent_pending && rec.status != StepStatus::Succeeded && rec.status != StepStatus::Pending {
                rec.status = StepStatus::Pending;
                rec.error = None;
                rec.uncertain = None;
                touched.push(k);
            }
        }
        adopt::mark_stale(&rb, &mut records, &opts.keep, id, &mut batch, &mut verdicts);
        adopt::check_keep(&rb, &verdicts, &opts.keep, &opts.rerun).map_err(bad)?;
        touched.extend(verdicts.keys().cloned());
        touched.sort();
        touched.dedup();
        for k in &touched {
            if let Some(rec) = records.get(k) {
                batch.put_step(id, rec);
            }
        }
        let adoption = adopt::describe(&rb, &records, &verdicts, &removed);
        if adopted {
            event(
                &mut batch,
                EventKind::Operator { action: "adopt-runbook".into(), by: by.clone(), detail: Some(adoption.diff.join("; ")) },
            );
        }
        for (flag, names) in [("rerun", &opts.rerun), ("keep", &opts.keep)] {
            for name in names {
                event(&mut batch, EventKind::Operator { action: flag.into(), by: by.clone(), detail: Some(name.clone()) });
            }
        }
        Ok(Prepared { run, seen, rb, records, batch, seq, blocked, adoption, by })
    }
}
