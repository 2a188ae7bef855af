//! `phoenix resume RUN --abort`: end a halted, failed or interrupted run on purpose. What
//! was left of its plans is cancelled, its `on_abort` steps run (leave the primary serving,
//! clean up what was built), and the run ends `cancelled`, "aborted by X: why". Also the
//! halt of a resume refused by the stale-decision guard (`stale.rs`).

use std::sync::Arc;

use super::driver::Driver;
use super::engine::{Engine, Outcome, ResumeOptions, RunError};
use super::observer::UiEvent;
use super::prepare::now_ms;
use crate::state::{Batch, EventKind, PlanKind, RunRecord, RunStatus, Seen, StepRecord, StepStatus};

impl Engine {
    /// Aborts run `id` (`opts.abort`), or carries on an abort that was interrupted.
    pub(crate) async fn abort(&self, id: &str, opts: &ResumeOptions) -> Result<Outcome, RunError> {
        let store = &self.inner.store;
        let (mut run, seen) = store
            .run_seen(id)?
            .ok_or_else(|| RunError::BadInput(format!("there is no run `{id}` in this state directory (`phoenix runs` lists them)")))?;
        match run.status {
            RunStatus::Succeeded => return Err(RunError::BadInput(format!("run {id} has succeeded: there is nothing to abort"))),
            RunStatus::Cancelled => return Err(RunError::BadInput(format!("run {id} was cancelled already: there is nothing to abort"))),
            _ if self.in_progress(id) => {
                return Err(RunError::BadInput(format!("run {id} is in progress here: stop it with phoenix cancel {id}, or let it halt")));
            }
            _ => {}
        }
        if opts.runbook.is_some() || !opts.retry.is_empty() || !opts.skip.is_empty() || !opts.rerun.is_empty() || !opts.keep.is_empty() {
            return Err(RunError::BadInput(
                "--abort runs the stored runbook's on_abort steps and nothing else: leave out --runbook, --retry, --skip, --rerun and --keep".into(),
            ));
        }
        let text = store.source(id)?.ok_or_else(|| RunError::BadInput(format!("run {id} has no stored runbook text")))?;
        let rb = crate::runbook::load_str(&text, std::path::Path::new(&run.file)).runbook.ok_or_else(|| {
            RunError::BadInput(format!(
                "the runbook stored with run {id} no longer validates with this phoenix: abort it with the phoenix version that started it"
            ))
        })?;
        let orphans =
            if run.status == RunStatus::Running { super::orphans::stop(id, self.inner.opts.grace).await } else { Default::default() };
        let by = opts.by.clone().unwrap_or_else(|| self.inner.opts.operator.clone());
        let mut records: Vec<StepRecord> = store.steps(id)?;
        let under_way = records.iter().any(|r| r.plan == PlanKind::OnAbort);
        // The reason of an abort under way is the one it was asked with.
        let reason = match (&opts.reason, under_way) {
            (Some(r), _) => r.clone(),
            (None, true) => last_abort_reason(store, id)?.unwrap_or_default(),
            (None, false) => String::new(),
        };
        let why = if reason.trim().is_empty() { format!("aborted by {by}") } else { format!("aborted by {by}: {reason}") };
        let (mut seq, _) = store.next_seqs(id)?;
        let now = now_ms();
        let mut batch = Batch::default();
        let mut event = |batch: &mut Batch, kind: EventKind| {
            batch.event(id, seq, now, kind);
            seq += 1;
        };
        if !orphans.is_empty() {
            let list: Vec<String> = orphans.into_iter().collect();
            let detail = format!("processes of {} outlived the crash and were stopped", list.join(", "));
            event(&mut batch, EventKind::Operator { action: "stop-orphans".into(), by: "phoenix".into(), detail: Some(detail) });
        }
        // What the run had left to do will not be done: cancelled, saying so.
        // (A drill's teardown is not left: it runs after the on_abort steps.)
        for r in records.iter_mut().filter(|r| !matches!(r.plan, PlanKind::OnAbort | PlanKind::Teardown)) {
            if matches!(r.status, StepStatus::Pending | StepStatus::Waiting | StepStatus::Running) {
                let in_flight = r.status == StepStatus::Running && r.child_run.is_none();
                super::lifecycle::check(&r.id, r.status, StepStatus::Cancelled).map_err(|e| RunError::BadInput(e.to_string()))?;
                r.status = StepStatus::Cancelled;
                r.finished_at = Some(now);
                r.error = Some(if in_flight {
                    format!("{why}; it was in flight after a crash: its effect is uncertain")
                } else {
                    format!("not run: {why}")
                });
                batch.put_step(id, r);
                event(
                    &mut batch,
                    EventKind::Step { step: r.id.clone(), status: StepStatus::Cancelled, attempt: r.attempts, error: r.error.clone() },
                );
            }
        }
        // The on_abort steps: new, or (an abort interrupted) as far as they got.
        for (n, s) in rb.on_abort.steps.iter().enumerate() {
            match records.iter_mut().find(|r| r.id == s.id && r.plan == PlanKind::OnAbort) {
                Some(r) if matches!(r.status, StepStatus::Running | StepStatus::Cancelled | StepStatus::Failed) && s.idempotent => {
                    r.status = StepStatus::Pending;
                    r.error = None;
                    r.uncertain = None;
                    batch.put_step(id, r);
                }
                // Found running after a crash during the abort and not safe to run twice:
                // failed, saying so, rather than run again or counted as done.
                Some(r) if r.status == StepStatus::Running && r.child_run.is_none() => {
                    r.status = StepStatus::Failed;
                    r.finished_at = Some(now);
                    r.error = Some(
                        "in flight when the abort was interrupted and not idempotent: its effect is uncertain; check it by hand".into(),
                    );
                    batch.put_step(id, r);
                }
                Some(_) => {}
                None => {
                    let r = StepRecord { order: n as u32, ..StepRecord::pending(&s.id, PlanKind::OnAbort, &s.fingerprint) };
                    batch.put_step(id, &r);
                    records.push(r);
                }
            }
        }
        if !under_way || opts.abort {
            event(&mut batch, EventKind::Operator { action: "abort".into(), by: by.clone(), detail: Some(reason.clone()) });
        }
        run.attempt += 1;
        run.status = RunStatus::Running;
        run.error = None;
        run.finished_at = None;
        run.updated_at = now;
        run.pid = Some(std::process::id());
        run.owner = self.node().map(str::to_string);
        batch.put_run(&run);
        event(&mut batch, EventKind::RunStarted { attempt: run.attempt, by: Some(by) });
        batch.unchanged(&seen);
        if !store.try_commit(batch, true)? {
            return Err(RunError::BadInput(format!(
                "run {id} changed while it was being aborted (resumed or cancelled by someone else); this abort wrote nothing: see phoenix status {id}"
            )));
        }
        let attempt = run.attempt;
        Driver::new(self.clone(), Arc::new(rb), run, records, opts.no_wait, attempt)?.aborting(why).drive().await
    }

    /// Leaves a resume the stale-decision guard refused: only the re-evaluation is written;
    /// a run found `running` (crashed, or taken over from a node that is gone) is halted, as
    /// nothing drives it.
    pub(crate) fn halt_stale(
        &self,
        id: &str,
        mut run: RunRecord,
        seen: &Seen,
        events: Vec<EventKind>,
        why: &str,
        takeover_from: Option<&str>,
    ) -> Result<(), RunError> {
        let store = &self.inner.store;
        let (mut seq, _) = store.next_seqs(id)?;
        let now = now_ms();
        let mut batch = Batch::default();
        for kind in events {
            batch.event(id, seq, now, kind);
            seq += 1;
        }
        if run.status == RunStatus::Running {
            let me = self.node().unwrap_or("this node").to_string();
            run.status = RunStatus::Halted;
            run.error = Some(why.to_string());
            run.updated_at = now;
            run.pid = None;
            if let Some(from) = takeover_from {
                run.owner = Some(me.clone());
                let detail = format!("taken over by {me} from {from}; halted before anything ran again: the decision is stale");
                batch.event(id, seq, now, EventKind::Operator { action: "takeover".into(), by: me, detail: Some(detail) });
            }
            batch.put_run(&run);
        }
        batch.unchanged(seen);
        if !store.try_commit(batch, true)? {
            return Err(RunError::BadInput(format!("run {id} changed while its decision was evaluated again; nothing was written")));
        }
        Ok(())
    }

    /// Shows lines to whoever watches (the terminal, serve's log).
    pub(crate) fn show(&self, id: &str, lines: &[String]) {
        for text in lines {
            let e = UiEvent::Log { run: id.to_string(), step: "decision".into(), text: text.clone(), stderr: true };
            self.inner.observer.on(&e);
        }
    }
}

/// The reason the last `abort` event of a run gave.
fn last_abort_reason(store: &crate::state::Store, id: &str) -> Result<Option<String>, RunError> {
    let events = store.events(id, 0)?;
    Ok(events.iter().rev().find_map(|e| match &e.kind {
        EventKind::Operator { action, detail, .. } if action == "abort" => Some(detail.clone().unwrap_or_default()),
        _ => None,
    }))
}
