//! Starting, resuming and dry-running runs.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::context::Context;
use super::driver::Driver;
use super::observer::Observer;
use super::prepare::{self, now_ms};
use super::{control, lifecycle};
use crate::runbook::{Plan, Runbook};
use crate::state::{Batch, EventKind, PlanKind, RunRecord, RunStatus, SkipReason, StepRecord, StepStatus, Store, StoreError};
use crate::template::{Redactor, render_tree};

/// Settings of an engine.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// The state directory (its socket answers other `phoenix` processes).
    pub state_dir: PathBuf,
    /// Between SIGTERM and SIGKILL for a step's processes.
    pub grace: Duration,
    /// Who is operating (recorded with approvals and operator actions).
    pub operator: String,
}

/// How a run ended (this time).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Every step succeeded or was skipped.
    Succeeded,
    /// A step failed.
    Failed(String),
    /// Waiting for approval or for an operator decision: resumable.
    Halted(String),
    /// Cancelled by an operator.
    Cancelled,
    /// Stopped by Ctrl-C / SIGTERM after checkpointing: resumable.
    Interrupted,
}

/// Why a run could not start or resume.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RunError {
    /// Bad input: nothing ran, nothing was written.
    #[error("{0}")]
    BadInput(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Options of `phoenix run`.
#[derive(Debug, Clone, Default)]
pub struct StartOptions {
    /// `--param name=value` pairs.
    pub params: Vec<(String, String)>,
    /// Halt at an approval instead of waiting.
    pub no_wait: bool,
    /// The parent run and step, for a child run.
    pub parent: Option<(String, String)>,
}

/// Options of `phoenix resume`.
#[derive(Debug, Clone, Default)]
pub struct ResumeOptions {
    /// An edited runbook to adopt.
    pub runbook: Option<Runbook>,
    /// Non-idempotent steps found in flight to run again.
    pub retry: Vec<String>,
    /// Non-idempotent steps found in flight to count as done.
    pub skip: Vec<String>,
    /// Halt at an approval instead of waiting.
    pub no_wait: bool,
}

pub(crate) struct Inner {
    pub(crate) store: Store,
    pub(crate) opts: EngineOptions,
    pub(crate) observer: Arc<dyn Observer>,
    pub(crate) registry: control::Registry,
    pub(crate) shutdown: CancellationToken,
}

/// Runs runbooks against a store.
#[derive(Clone)]
pub struct Engine {
    pub(crate) inner: Arc<Inner>,
}

impl Engine {
    /// An engine over a store. `shutdown` is fired on Ctrl-C / SIGTERM.
    pub fn new(store: Store, opts: EngineOptions, observer: Arc<dyn Observer>, shutdown: CancellationToken) -> Self {
        Engine { inner: Arc::new(Inner { store, opts, observer, registry: control::Registry::default(), shutdown }) }
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// Serves other `phoenix` processes (status, logs, approve, cancel) on the state
    /// directory's socket until the engine is dropped.
    pub fn serve_control(&self) -> std::io::Result<control::ServerGuard> {
        control::serve(self.clone())
    }

    /// Starts a new run and drives it to its end (or halt).
    pub async fn start(&self, rb: Arc<Runbook>, opts: StartOptions) -> Result<(String, Outcome), RunError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let _ = tx.send(());
        let mut rx = Some(rx);
        let mut id_out = String::new();
        let outcome = self
            .start_child(rb, opts, |id| {
                id_out = id;
                rx.take().expect("called once")
            })
            .await?;
        Ok((id_out, outcome))
    }

    /// Starts a run, telling `on_id` its id (and waiting for it to be recorded) first.
    pub(crate) async fn start_child<F>(&self, rb: Arc<Runbook>, opts: StartOptions, on_id: F) -> Result<Outcome, RunError>
    where
        F: FnOnce(String) -> tokio::sync::oneshot::Receiver<()>,
    {
        let store = &self.inner.store;
        let params = prepare::params(&rb, &opts.params).map_err(RunError::BadInput)?;
        let now = now_ms();
        let id = prepare::new_run_id(now);
        let _ = on_id(id.clone()).await;
        let run_v = prepare::run_value(&rb, &id, now, 1, false);
        let (vars, lock) = prepare::vars_and_lock(&rb, &params, &run_v).map_err(RunError::BadInput)?;
        if let Some(l) = &lock {
            if let Some(holder) = store.lock_holder(l)? {
                if let Some(h) = store.run(&holder)?.filter(|h| h.status.holds_lock()) {
                    return Err(RunError::BadInput(format!(
                        "the lock `{l}` is held by run {} ({}, runbook `{}`): nothing ever runs two at once\n  resume it:  phoenix resume {}\n  or cancel it:  phoenix cancel {}",
                        h.id,
                        h.status.as_str(),
                        h.runbook,
                        h.id,
                        h.id
                    )));
                }
            }
        }
        let run = RunRecord {
            format: crate::state::FORMAT_VERSION,
            id: id.clone(),
            runbook: rb.name.clone(),
            file: rb.file.display().to_string(),
            status: RunStatus::Running,
            params,
            vars,
            attempt: 1,
            started_at: now,
            updated_at: now,
            finished_at: None,
            error: None,
            outputs: None,
            lock: lock.clone(),
            parent: opts.parent.clone(),
            pid: Some(std::process::id()),
        };
        let mut records = Vec::new();
        let mut batch = Batch::default();
        batch.put_run(&run);
        batch.source(&id, &rb.source);
        if let Some(l) = &lock {
            batch.lock(l, &id);
        }
        for (plan, kind) in [(&rb.main, PlanKind::Main), (&rb.on_failure, PlanKind::OnFailure)] {
            for (n, s) in plan.steps.iter().enumerate() {
                let r = StepRecord { order: n as u32, ..StepRecord::pending(&s.id, kind, &s.fingerprint) };
                batch.put_step(&id, &r);
                records.push(r);
            }
        }
        batch.event(&id, 0, now, EventKind::RunStarted { attempt: 1 });
        store.commit(batch, true)?;
        Driver::new(self.clone(), rb, run, records, opts.no_wait, 1)?.drive().await
    }

    /// Resumes a run from its checkpoint.
    pub async fn resume(&self, id: &str, opts: ResumeOptions) -> Result<Outcome, RunError> {
        let store = &self.inner.store;
        let mut run = store
            .run(id)?
            .ok_or_else(|| RunError::BadInput(format!("there is no run `{id}` in this state directory (`phoenix runs` lists them)")))?;
        match run.status {
            RunStatus::Succeeded => return Err(RunError::BadInput(format!("run {id} has succeeded: there is nothing to resume"))),
            RunStatus::Cancelled => return Err(RunError::BadInput(format!("run {id} was cancelled: start a new run instead"))),
            _ => {}
        }
        let stored_text = store.source(id)?.ok_or_else(|| RunError::BadInput(format!("run {id} has no stored runbook text")))?;
        let old = crate::runbook::load_str(&stored_text, std::path::Path::new(&run.file))
            .runbook
            .ok_or_else(|| RunError::BadInput(format!("the runbook stored with run {id} no longer validates with this phoenix")))?;
        let (rb, adopted) = match opts.runbook {
            Some(new) => (new, true),
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
        if adopted {
            if rb.name != old.name {
                return Err(RunError::BadInput(format!("run {id} is of runbook `{}`, not `{}`", old.name, rb.name)));
            }
            let diff = diff_plans(&old, &rb, &mut records, id, &mut batch);
            event(
                &mut batch,
                EventKind::Operator { action: "adopt-runbook".into(), by: self.inner.opts.operator.clone(), detail: Some(diff.join("; ")) },
            );
            batch.source(id, &rb.source);
        }
        // Decide what runs again.
        let mut blocked = Vec::new();
        for (plan, kind) in [(&rb.main, PlanKind::Main), (&rb.on_failure, PlanKind::OnFailure)] {
            for (n, s) in plan.steps.iter().enumerate() {
                let rec = records.entry(s.id.clone()).or_insert_with(|| StepRecord::pending(&s.id, kind, &s.fingerprint));
                rec.order = n as u32;
                let before = rec.status;
                let again = match rec.status {
                    StepStatus::Failed | StepStatus::Cancelled => true,
                    StepStatus::Skipped => rec.skip != Some(SkipReason::When),
                    StepStatus::Running if rec.child_run.is_some() => false,
                    StepStatus::Running if s.idempotent || opts.retry.contains(&s.id) => true,
                    StepStatus::Running if opts.skip.contains(&s.id) => {
                        rec.status = StepStatus::Succeeded;
                        rec.error = Some("skipped by the operator after a crash".into());
                        event(
                            &mut batch,
                            EventKind::Operator { action: "skip".into(), by: self.inner.opts.operator.clone(), detail: Some(s.id.clone()) },
                        );
                        false
                    }
                    StepStatus::Running => {
                        blocked.push(s.id.clone());
                        false
                    }
                    _ => false,
                };
                // On failure steps run again only if the run fails again.
                if again || (kind == PlanKind::OnFailure && rec.status.is_done()) {
                    lifecycle::check(&rec.id, rec.status, StepStatus::Pending).map_err(|e| RunError::BadInput(e.to_string()))?;
                    rec.status = StepStatus::Pending;
                    rec.skip = None;
                    rec.error = None;
                }
                if again || rec.status != before || rec.fingerprint != s.fingerprint || adopted {
                    rec.fingerprint.clone_from(&s.fingerprint);
                    batch.put_step(id, rec);
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
                batch.put_step(id, rec);
            }
        }
        if !blocked.is_empty() {
            let list = blocked.join(", ");
            let flags: Vec<String> = blocked.iter().map(|s| format!("--retry {s}")).collect();
            let skips: Vec<String> = blocked.iter().map(|s| format!("--skip {s}")).collect();
            return Ok(Outcome::Halted(format!(
                "step(s) {list} were running when the run stopped and are not idempotent: they may or may not have taken effect.\n  check, then either run them again:  phoenix resume {id} {}\n  or count them as done:  phoenix resume {id} {}",
                flags.join(" "),
                skips.join(" ")
            )));
        }
        run.attempt += 1;
        run.status = RunStatus::Running;
        run.error = None;
        run.finished_at = None;
        run.updated_at = now;
        run.pid = Some(std::process::id());
        batch.put_run(&run);
        event(&mut batch, EventKind::RunStarted { attempt: run.attempt });
        store.commit(batch, true)?;
        let attempt = run.attempt;
        let mut ordered: Vec<StepRecord> = records.into_values().collect();
        ordered.sort_by(|a, b| a.id.cmp(&b.id));
        Driver::new(self.clone(), Arc::new(rb), run, ordered, opts.no_wait, attempt)?.drive().await
    }

    /// The plan of a run, rendered as far as it can be without running anything.
    pub fn dry_run(&self, rb: &Runbook, params: &[(String, String)]) -> Result<String, RunError> {
        let params = prepare::params(rb, params).map_err(RunError::BadInput)?;
        let run_v = prepare::run_value(rb, "dry-run", now_ms(), 1, true);
        let (vars, lock) = prepare::vars_and_lock(rb, &params, &run_v).map_err(RunError::BadInput)?;
        let redactor = Arc::new(std::sync::RwLock::new(Redactor::default()));
        let ctx = Context {
            params: crate::template::to_mj(&params),
            vars: crate::template::to_mj(&vars),
            run: run_v,
            secrets: Arc::new(super::context::Secrets::new(rb, redactor.clone())),
            steps: Arc::default(),
        };
        let mut out = format!("Plan of `{}` (dry run: nothing is executed)\n", rb.name);
        if let Some(l) = lock {
            out += &format!("lock: {l}\n");
        }
        let mut n = 0;
        for (title, plan) in [("steps", &rb.main), ("on_failure", &rb.on_failure)] {
            if plan.steps.is_empty() {
                continue;
            }
            out += &format!("\n{title}:\n");
            for &i in plan.dag.order() {
                n += 1;
                out += &plan_line(n, plan, i, &ctx, &redactor);
            }
        }
        Ok(out)
    }
}

fn plan_line(n: usize, plan: &Plan, i: usize, ctx: &Context, redactor: &std::sync::RwLock<Redactor>) -> String {
    let s = &plan.steps[i];
    let needs: Vec<&str> = s.needs.iter().map(|&j| plan.steps[j].id.as_str()).collect();
    let mut line = format!("{n:>3}. {} ({})", s.id, s.uses);
    if !needs.is_empty() {
        line += &format!(" after {}", needs.join(", "));
    }
    if let Some(w) = &s.when {
        line += &format!(
            " when {}",
            match w {
                crate::runbook::Cond::Bool(b) => b.to_string(),
                crate::runbook::Cond::Expr(e) => e.clone(),
            }
        );
    }
    if s.for_each.is_some() {
        line += " for each item";
    }
    let action = phoenix_plugins::find(&s.uses);
    let shell = action.map_or(&[][..], |a| a.shell_fields());
    let exprs = action.map_or(&[][..], |a| a.expression_fields());
    let (with, note) = match render_tree(&s.with, &ctx.value(None), shell, exprs) {
        Ok(v) => (v, String::new()),
        Err(_) => (s.with.clone(), " (inputs rendered when it runs)".to_string()),
    };
    let with = redactor.read().expect("poisoned").json(&with);
    let what = match action {
        Some(a) => a.plan(&with),
        None if s.uses == "score" => "sum the signals' weights and pick the level".to_string(),
        None => s.uses.clone(),
    };
    format!("{line}\n       {}{note}\n", what.replace('\n', "\n       "))
}

/// Applies an edited runbook to a run's records; returns the difference, one line per step.
fn diff_plans(old: &Runbook, new: &Runbook, records: &mut HashMap<String, StepRecord>, run: &str, batch: &mut Batch) -> Vec<String> {
    let mut lines = Vec::new();
    for (plan, old_plan, kind) in [(&new.main, &old.main, PlanKind::Main), (&new.on_failure, &old.on_failure, PlanKind::OnFailure)] {
        for s in &plan.steps {
            match old_plan.find(&s.id).map(|i| &old_plan.steps[i]) {
                None => {
                    lines.push(format!("+ {} (new: will run)", s.id));
                    records.insert(s.id.clone(), StepRecord::pending(&s.id, kind, &s.fingerprint));
                }
                Some(o) if o.fingerprint != s.fingerprint => {
                    lines.push(format!("~ {} (changed: will run again)", s.id));
                    if let Some(r) = records.get_mut(&s.id) {
                        r.status = StepStatus::Pending;
                        r.skip = None;
                        r.items = None;
                        r.child_run = None;
                    }
                    let prefix = format!("{}[", s.id);
                    let items: Vec<String> = records.keys().filter(|k| k.starts_with(&prefix)).cloned().collect();
                    for k in items {
                        records.remove(&k);
                        batch.delete_step(run, &k);
                    }
                }
                Some(_) => lines.push(format!("= {} (unchanged: keeps its result)", s.id)),
            }
        }
        for o in &old_plan.steps {
            if plan.find(&o.id).is_none() {
                lines.push(format!("- {} (removed)", o.id));
                records.remove(&o.id);
                batch.delete_step(run, &o.id);
            }
        }
    }
    lines
}

/// What `phoenix resume --runbook` will change, for showing before it runs.
pub fn describe_adoption(old: &Runbook, new: &Runbook) -> Vec<String> {
    let mut records = HashMap::new();
    let mut batch = Batch::default();
    diff_plans(old, new, &mut records, "", &mut batch)
}

pub(crate) fn step_view(r: &StepRecord) -> Value {
    serde_json::json!({ "status": r.status.as_str(), "outputs": r.outputs.clone().unwrap_or(Value::Object(Default::default())), "error": r.error, "attempts": r.attempts })
}
