//! The driver of one run: owns its records, schedules ready steps, commits each round's
//! transitions durably before acting on them, and ends the run.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use phoenix_plugins::LogLine;
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::attempt::{self, Unit};
use super::context::{Context, Secrets};
use super::engine::{Engine, Outcome, RunError, step_view};
use super::lifecycle;
use super::observer::UiEvent;
use super::prepare::{self, now_ms};
use crate::runbook::{Cond, Plan, Role, Runbook};
use crate::state::{
    Approval, Batch, EventKind, LevelHistory, LogRecord, PlanKind, RunRecord, RunStatus, SkipReason, StepRecord, StepStatus,
};
use crate::template::{Redactor, eval_condition, eval_value, render_tree, to_mj};

/// A runnable unit: a step, or one item of a `for_each` step.
pub(crate) type UnitKey = (PlanKind, usize, Option<usize>);

/// How an attempt (with its retries) ended.
#[derive(Debug)]
pub(crate) enum UnitResult {
    Ok(Value),
    Failed {
        error: String,
        outputs: Option<Value>,
    },
    Cancelled(String),
    /// A child run halted: the step stays running, the parent halts with it.
    Halted(String),
}

/// What the driver hears from attempts and operators.
pub(crate) enum Msg {
    Retry { key: UnitKey, attempt: u32, error: String, delay: Duration, ack: oneshot::Sender<()> },
    Done { key: UnitKey, result: UnitResult, inputs: Option<Value>, history: Option<LevelHistory> },
    Log { step: String, line: LogLine },
    Child { key: UnitKey, run_id: String, ack: oneshot::Sender<()> },
    Approve { step: String, approval: Approval, reply: oneshot::Sender<Result<(), String>> },
    ApprovalTimeout { step: String },
    Cancel { by: String, reply: oneshot::Sender<Result<(), String>> },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    Interrupt,
    Cancel,
}

enum Need {
    Wait,
    Run,
    Skip,
}

pub(crate) struct Driver {
    engine: Engine,
    rb: Arc<Runbook>,
    run: RunRecord,
    main: Vec<StepRecord>,
    fail: Vec<StepRecord>,
    items: HashMap<(PlanKind, usize), Vec<StepRecord>>,
    lists: HashMap<(PlanKind, usize), Vec<Value>>,
    ctx: Context,
    redactor: Arc<RwLock<Redactor>>,
    batch: Batch,
    durable: bool,
    seq_e: u64,
    seq_l: u64,
    running: HashMap<UnitKey, CancellationToken>,
    tx: mpsc::UnboundedSender<Msg>,
    rx: mpsc::UnboundedReceiver<Msg>,
    phase: PlanKind,
    stopping: Option<Stop>,
    no_wait: bool,
    acks: Vec<oneshot::Sender<()>>,
    waiting: HashSet<(PlanKind, usize)>,
    halted: Vec<String>,
    halted_units: HashSet<UnitKey>,
    cancel_all: CancellationToken,
    pending_spawn: Vec<Unit>,
}

fn item_id(step: &str, i: usize) -> String {
    format!("{step}[{i}]")
}

impl Driver {
    pub(crate) fn new(
        engine: Engine,
        rb: Arc<Runbook>,
        run: RunRecord,
        records: Vec<StepRecord>,
        no_wait: bool,
        attempt: u32,
    ) -> Result<Self, RunError> {
        let store = engine.inner.store.clone();
        let (seq_e, seq_l) = store.next_seqs(&run.id)?;
        let redactor = Arc::new(RwLock::new(Redactor::default()));
        let mut by_id: HashMap<String, StepRecord> = records.into_iter().map(|r| (r.id.clone(), r)).collect();
        let take = |plan: &Plan, kind: PlanKind, by_id: &mut HashMap<String, StepRecord>| -> Vec<StepRecord> {
            plan.steps.iter().map(|s| by_id.remove(&s.id).unwrap_or_else(|| StepRecord::pending(&s.id, kind, &s.fingerprint))).collect()
        };
        let main = take(&rb.main, PlanKind::Main, &mut by_id);
        let fail = take(&rb.on_failure, PlanKind::OnFailure, &mut by_id);
        let mut items: HashMap<(PlanKind, usize), Vec<StepRecord>> = HashMap::new();
        for (kind, plan, recs) in [(PlanKind::Main, &rb.main, &main), (PlanKind::OnFailure, &rb.on_failure, &fail)] {
            for (i, r) in recs.iter().enumerate() {
                if let Some(n) = r.items {
                    let list = (0..n)
                        .map(|j| {
                            by_id
                                .remove(&item_id(&plan.steps[i].id, j))
                                .unwrap_or_else(|| StepRecord::pending(item_id(&plan.steps[i].id, j), kind, ""))
                        })
                        .collect();
                    items.insert((kind, i), list);
                }
            }
        }
        let run_v = prepare::run_value(&rb, &run.id, run.started_at, attempt, false);
        let ctx = Context {
            params: to_mj(&run.params),
            vars: to_mj(&run.vars),
            run: run_v,
            secrets: Arc::new(Secrets::new(&rb, redactor.clone())),
            steps: Arc::default(),
        };
        for r in main.iter().chain(&fail) {
            if r.status.is_done() {
                ctx.steps.set(&r.id, &step_view(r));
            }
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let cancel_all = engine.inner.shutdown.child_token();
        let phase =
            if fail.iter().any(|r| r.status != StepStatus::Pending && r.status != StepStatus::Skipped) && run.status == RunStatus::Failed {
                PlanKind::OnFailure
            } else {
                PlanKind::Main
            };
        Ok(Driver {
            engine,
            rb,
            run,
            main,
            fail,
            items,
            lists: HashMap::new(),
            ctx,
            redactor,
            batch: Batch::default(),
            durable: false,
            seq_e,
            seq_l,
            running: HashMap::new(),
            tx,
            rx,
            phase,
            stopping: None,
            no_wait,
            acks: Vec::new(),
            waiting: HashSet::new(),
            halted: Vec::new(),
            halted_units: HashSet::new(),
            cancel_all,
            pending_spawn: Vec::new(),
        })
    }

    fn plan(&self, k: PlanKind) -> &Plan {
        match k {
            PlanKind::Main => &self.rb.main,
            PlanKind::OnFailure => &self.rb.on_failure,
        }
    }

    fn recs(&self, k: PlanKind) -> &Vec<StepRecord> {
        match k {
            PlanKind::Main => &self.main,
            PlanKind::OnFailure => &self.fail,
        }
    }

    fn rec_mut(&mut self, key: UnitKey) -> &mut StepRecord {
        match key {
            (k, i, Some(j)) => &mut self.items.get_mut(&(k, i)).expect("items expanded")[j],
            (PlanKind::Main, i, None) => &mut self.main[i],
            (PlanKind::OnFailure, i, None) => &mut self.fail[i],
        }
    }

    fn event(&mut self, kind: EventKind) {
        self.batch.event(&self.run.id, self.seq_e, now_ms(), kind);
        self.seq_e += 1;
        self.durable = true;
    }

    /// Moves a step or item to a new state, in memory and in the batch.
    fn transition(&mut self, key: UnitKey, to: StepStatus, error: Option<String>) {
        let now = now_ms();
        let run_id = self.run.id.clone();
        let rec = self.rec_mut(key);
        debug_assert!(
            lifecycle::allowed(rec.status, to),
            "{}",
            lifecycle::IllegalTransition { step: rec.id.clone(), from: rec.status, to }
        );
        let retrying = rec.status == StepStatus::Running && to == StepStatus::Running;
        rec.status = to;
        match to {
            StepStatus::Running if !retrying => {
                rec.attempts += 1;
                rec.started_at = Some(now);
                rec.finished_at = None;
                rec.error = None;
            }
            StepStatus::Succeeded | StepStatus::Failed | StepStatus::Cancelled | StepStatus::Skipped => {
                rec.finished_at = Some(now);
                rec.error.clone_from(&error);
            }
            _ => {}
        }
        let rec = rec.clone();
        self.batch.put_step(&run_id, &rec);
        let elapsed_ms = match (rec.started_at, rec.finished_at) {
            (Some(s), Some(f)) if to.is_done() => Some(f.saturating_sub(s)),
            _ => None,
        };
        self.event(EventKind::Step { step: rec.id.clone(), status: to, attempt: rec.attempts, error: error.clone() });
        if to.is_done() && key.2.is_none() {
            self.ctx.steps.set(&rec.id, &step_view(&rec));
        }
        self.engine.inner.observer.on(&UiEvent::Step { run: run_id, step: rec.id, status: to, attempt: rec.attempts, elapsed_ms, error });
    }

    fn needs(&self, k: PlanKind, i: usize) -> Need {
        let plan = self.plan(k);
        let recs = self.recs(k);
        let mut need = Need::Run;
        for &n in &plan.steps[i].needs {
            match recs[n].status {
                StepStatus::Succeeded => {}
                StepStatus::Failed if plan.steps[n].continue_on_error || matches!(plan.steps[n].role, Role::Probe(_)) => {}
                StepStatus::Pending | StepStatus::Running | StepStatus::Waiting => need = Need::Wait,
                StepStatus::Failed | StepStatus::Skipped | StepStatus::Cancelled => return Need::Skip,
            }
        }
        need
    }

    fn capacity(&self) -> bool {
        self.running.len() < self.rb.max_parallel
    }

    /// One scheduling round: decides what can start, and returns the units to spawn.
    fn schedule(&mut self) -> Vec<Unit> {
        let mut out = Vec::new();
        if self.stopping.is_some() {
            return out;
        }
        let k = self.phase;
        let order: Vec<usize> = self.plan(k).dag.order().to_vec();
        for i in order {
            let status = self.recs(k)[i].status;
            match status {
                StepStatus::Pending => match self.needs(k, i) {
                    Need::Wait => {}
                    Need::Skip => {
                        self.rec_mut((k, i, None)).skip = Some(SkipReason::Upstream);
                        self.transition((k, i, None), StepStatus::Skipped, Some("a need did not succeed".into()));
                    }
                    Need::Run => self.start_step(k, i, &mut out),
                },
                StepStatus::Running if self.items.contains_key(&(k, i)) => self.start_items(k, i, &mut out),
                // A child run to resume.
                StepStatus::Running
                    if !self.running.contains_key(&(k, i, None)) && !self.halted_units.contains(&(k, i, None)) && self.capacity() =>
                {
                    out.push(self.unit((k, i, None)));
                }
                StepStatus::Waiting if !self.waiting.contains(&(k, i)) => self.request_approval(k, i),
                _ => {}
            }
        }
        out
    }

    fn start_step(&mut self, k: PlanKind, i: usize, out: &mut Vec<Unit>) {
        let step = self.plan(k).steps[i].clone();
        if let Some(cond) = &step.when {
            let holds = match cond {
                Cond::Bool(b) => Ok(*b),
                Cond::Expr(e) => eval_condition(e, &self.ctx.value(None)),
            };
            match holds {
                Ok(true) => {}
                Ok(false) => {
                    self.rec_mut((k, i, None)).skip = Some(SkipReason::When);
                    self.transition((k, i, None), StepStatus::Skipped, None);
                    return;
                }
                Err(e) => {
                    self.transition((k, i, None), StepStatus::Running, None);
                    self.transition((k, i, None), StepStatus::Failed, Some(format!("`when` could not be evaluated: {e}")));
                    return;
                }
            }
        }
        if step.uses == "approval" {
            self.transition((k, i, None), StepStatus::Waiting, None);
            let now = now_ms();
            let run_id = self.run.id.clone();
            let rec = self.rec_mut((k, i, None));
            rec.waiting_since = Some(now);
            rec.attempts += 1;
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
                    let recs: Vec<StepRecord> = (0..n).map(|j| StepRecord::pending(item_id(&step.id, j), k, &step.fingerprint)).collect();
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

    fn start_items(&mut self, k: PlanKind, i: usize, out: &mut Vec<Unit>) {
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
    fn finish_items(&mut self, k: PlanKind, i: usize) {
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
            self.transition((k, i, None), StepStatus::Succeeded, None);
        } else {
            self.transition(
                (k, i, None),
                StepStatus::Failed,
                Some(format!("{} of {total} items failed: {}", failed.len(), failed.join(", "))),
            );
        }
    }

    fn unit(&mut self, key: UnitKey) -> Unit {
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

    fn request_approval(&mut self, k: PlanKind, i: usize) {
        self.waiting.insert((k, i));
        let step = self.plan(k).steps[i].clone();
        let message = step
            .with
            .get("message")
            .map(|m| {
                render_tree(&json!({"m": m}), &self.ctx.value(None), &[], &[])
                    .map_or_else(|_| m.to_string(), |v| v["m"].as_str().map_or_else(|| v["m"].to_string(), str::to_string))
            })
            .unwrap_or_default();
        let run_id = self.run.id.clone();
        // A decision recorded while no process owned the run (approve, then resume).
        if let Ok(Some(decision)) = self.engine.inner.store.approval(&run_id, &step.id) {
            self.batch.clear_approval(&run_id, &step.id);
            let _ = self.apply_approval(&step.id, decision);
            return;
        }
        self.event(EventKind::Approval { step: step.id.clone(), approved: None, by: None, comment: Some(message.clone()) });
        self.engine.inner.observer.on(&UiEvent::ApprovalRequested { run: run_id.clone(), step: step.id.clone(), message: message.clone() });
        if let Some(t) = step.timeout {
            let since = self.recs(k)[i].waiting_since.unwrap_or_else(now_ms);
            let left = Duration::from_millis((since + t.as_millis() as u64).saturating_sub(now_ms()));
            let tx = self.tx.clone();
            let id = step.id.clone();
            tokio::spawn(async move {
                tokio::time::sleep(left).await;
                let _ = tx.send(Msg::ApprovalTimeout { step: id });
            });
        }
        if !self.no_wait && self.engine.inner.observer.interactive() {
            let obs = self.engine.inner.observer.clone();
            let tx = self.tx.clone();
            let operator = self.engine.inner.opts.operator.clone();
            let id = step.id.clone();
            tokio::task::spawn_blocking(move || {
                if let Some((approved, comment)) = obs.ask_approval(&run_id, &id, &message) {
                    let (reply, _) = oneshot::channel();
                    let _ = tx.send(Msg::Approve { step: id, approval: Approval { approved, by: operator, comment, at: now_ms() }, reply });
                }
            });
        }
    }

    fn find(&self, id: &str) -> Option<(PlanKind, usize)> {
        self.rb.main.find(id).map(|i| (PlanKind::Main, i)).or_else(|| self.rb.on_failure.find(id).map(|i| (PlanKind::OnFailure, i)))
    }

    fn apply_approval(&mut self, step: &str, a: Approval) -> Result<(), String> {
        let (k, i) = self.find(step).ok_or_else(|| format!("run {} has no step `{step}`", self.run.id))?;
        if self.recs(k)[i].status != StepStatus::Waiting {
            return Err(format!("step `{step}` is {}, not waiting for approval", self.recs(k)[i].status.as_str()));
        }
        let approvers: Vec<String> = self.plan(k).steps[i]
            .with
            .get("approvers")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect())
            .unwrap_or_default();
        if !approvers.is_empty() && !approvers.contains(&a.by) {
            return Err(format!("`{}` may not decide on `{step}`: approvers are {}", a.by, approvers.join(", ")));
        }
        self.waiting.remove(&(k, i));
        self.event(EventKind::Approval {
            step: step.to_string(),
            approved: Some(a.approved),
            by: Some(a.by.clone()),
            comment: a.comment.clone(),
        });
        let at = humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + Duration::from_millis(a.at)).to_string();
        let rec = self.rec_mut((k, i, None));
        rec.approval = Some(a.clone());
        rec.outputs = Some(json!({ "approved": a.approved, "by": a.by, "comment": a.comment, "at": at }));
        if a.approved {
            self.transition((k, i, None), StepStatus::Succeeded, None);
        } else {
            let why = a.comment.as_deref().map_or(String::new(), |c| format!(": {c}"));
            self.transition((k, i, None), StepStatus::Failed, Some(format!("rejected by {}{why}", a.by)));
        }
        Ok(())
    }

    fn handle(&mut self, msg: Msg) {
        match msg {
            Msg::Log { step, line } => {
                let text = self.redactor.read().expect("poisoned").text(&line.text);
                let rec = LogRecord { seq: self.seq_l, at: now_ms(), step: step.clone(), stream: line.stream, text: text.clone() };
                self.seq_l += 1;
                self.batch.log(&self.run.id, &rec);
                self.engine.inner.observer.on(&UiEvent::Log {
                    run: self.run.id.clone(),
                    step,
                    text,
                    stderr: line.stream == phoenix_plugins::Stream::Stderr,
                });
            }
            Msg::Retry { key, attempt, error, delay, ack } => {
                let error = self.redactor.read().expect("poisoned").text(&error);
                let run_id = self.run.id.clone();
                let rec = self.rec_mut(key);
                rec.attempts = attempt + 1;
                rec.error = Some(error.clone());
                let rec = rec.clone();
                self.batch.put_step(&run_id, &rec);
                self.event(EventKind::Retry { step: rec.id.clone(), attempt, error: error.clone(), delay_ms: delay.as_millis() as u64 });
                self.engine.inner.observer.on(&UiEvent::Retry {
                    run: run_id,
                    step: rec.id,
                    attempt,
                    error,
                    delay_ms: delay.as_millis() as u64,
                });
                self.acks.push(ack);
            }
            Msg::Child { key, run_id, ack } => {
                let parent = self.run.id.clone();
                let rec = self.rec_mut(key);
                rec.child_run = Some(run_id);
                let rec = rec.clone();
                self.batch.put_step(&parent, &rec);
                self.durable = true;
                self.acks.push(ack);
            }
            Msg::Done { key, result, inputs, history } => self.done(key, result, inputs, history),
            Msg::Approve { step, approval, reply } => {
                let r = self.apply_approval(&step, approval);
                let _ = reply.send(r);
            }
            Msg::ApprovalTimeout { step } => {
                if let Some((k, i)) = self.find(&step) {
                    if self.recs(k)[i].status == StepStatus::Waiting {
                        let t = self.plan(k).steps[i].timeout.map(phoenix_plugins::duration::format_duration).unwrap_or_default();
                        self.waiting.remove(&(k, i));
                        self.event(EventKind::Approval {
                            step: step.clone(),
                            approved: Some(false),
                            by: Some("timeout".into()),
                            comment: Some(format!("no decision within {t}")),
                        });
                        self.transition((k, i, None), StepStatus::Failed, Some(format!("approval timed out after {t}: rejected")));
                    }
                }
            }
            Msg::Cancel { by, reply } => {
                self.event(EventKind::Operator { action: "cancel".into(), by, detail: None });
                self.stop(Stop::Cancel);
                let _ = reply.send(Ok(()));
            }
        }
    }

    fn done(&mut self, key: UnitKey, result: UnitResult, inputs: Option<Value>, history: Option<LevelHistory>) {
        self.running.remove(&key);
        let redactor = self.redactor.read().expect("poisoned").clone();
        let run_id = self.run.id.clone();
        {
            let rec = self.rec_mut(key);
            rec.inputs = inputs.map(|v| redactor.json(&v));
        }
        if let Some(h) = history {
            self.batch.history(&self.rb.name, &h);
        }
        match result {
            UnitResult::Ok(outputs) => {
                self.rec_mut(key).outputs = Some(redactor.json(&outputs));
                self.transition(key, StepStatus::Succeeded, None);
            }
            UnitResult::Failed { error, outputs } => {
                self.rec_mut(key).outputs = outputs.map(|o| redactor.json(&o));
                self.transition(key, StepStatus::Failed, Some(redactor.text(&error)));
            }
            UnitResult::Cancelled(why) => {
                if self.stopping == Some(Stop::Interrupt) {
                    // Interrupted: it runs again on resume.
                    self.transition(key, StepStatus::Cancelled, Some(format!("interrupted: {why}")));
                } else {
                    self.transition(key, StepStatus::Cancelled, Some(why));
                }
            }
            UnitResult::Halted(why) => {
                self.halted_units.insert(key);
                self.halted.push(why);
                let rec = self.rec_mut(key).clone();
                self.batch.put_step(&run_id, &rec);
                self.durable = true;
            }
        }
        if let (k, i, Some(_)) = key {
            if self.stopping.is_none() {
                // Start the next items (and end the step once all have ended).
                let mut out = Vec::new();
                self.start_items(k, i, &mut out);
                self.spawn_later(out);
            } else {
                self.finish_items(k, i);
            }
        }
    }

    fn spawn_later(&mut self, units: Vec<Unit>) {
        // Units decided in a message handler are spawned after the next commit.
        self.pending_spawn.extend(units);
    }

    fn stop(&mut self, how: Stop) {
        if self.stopping.is_none() {
            self.stopping = Some(how);
        }
        for t in self.running.values() {
            t.cancel();
        }
    }

    fn commit(&mut self) -> Result<(), RunError> {
        let batch = std::mem::take(&mut self.batch);
        let durable = std::mem::take(&mut self.durable);
        self.engine.inner.store.commit(batch, durable)?;
        for ack in self.acks.drain(..) {
            let _ = ack.send(());
        }
        Ok(())
    }

    fn spawn(&self, units: Vec<Unit>) {
        for u in units {
            attempt::spawn(self.engine.clone(), self.rb.clone(), self.run.id.clone(), u, self.ctx.clone(), self.tx.clone());
        }
    }

    /// Drives the run until it ends or halts.
    pub(crate) async fn drive(mut self) -> Result<Outcome, RunError> {
        let store_total = self.main.len();
        let done = self.main.iter().filter(|r| r.status.is_done()).count();
        self.engine.inner.observer.on(&UiEvent::RunStarted {
            run: self.run.id.clone(),
            runbook: self.rb.name.clone(),
            total: store_total,
            done,
        });
        self.engine.inner.registry.register(&self.run.id, self.tx.clone());
        let result = self.drive_inner().await;
        self.engine.inner.registry.unregister(&self.run.id);
        result
    }

    async fn drive_inner(&mut self) -> Result<Outcome, RunError> {
        loop {
            let mut units = std::mem::take(&mut self.pending_spawn);
            units.extend(self.schedule());
            self.commit()?;
            let started = !units.is_empty();
            self.spawn(units);
            if self.running.is_empty() && !started {
                if let Some(outcome) = self.settle()? {
                    return Ok(outcome);
                }
                if !self.can_progress() {
                    // The phase changed (on_failure starts): schedule again.
                    continue;
                }
            }
            let shutdown = self.engine.inner.shutdown.clone();
            tokio::select! {
                msg = self.rx.recv() => {
                    if let Some(m) = msg {
                        self.handle(m);
                    }
                }
                _ = shutdown.cancelled(), if self.stopping.is_none() => self.stop(Stop::Interrupt),
            }
            while let Ok(m) = self.rx.try_recv() {
                self.handle(m);
            }
        }
    }

    fn can_progress(&self) -> bool {
        !self.waiting.is_empty() && !self.no_wait && self.engine.inner.observer.interactive()
    }

    /// Nothing runs and nothing can start: the phase (or the run) is over.
    fn settle(&mut self) -> Result<Option<Outcome>, RunError> {
        if let Some(stop) = self.stopping {
            return self.finish_stopped(stop).map(Some);
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
                if failed.is_empty() {
                    let outputs = self.render_outputs();
                    return match outputs {
                        Ok(o) => {
                            self.run.outputs = Some(o);
                            self.finish(RunStatus::Succeeded, None).map(|_| Some(Outcome::Succeeded))
                        }
                        Err(e) => self.finish(RunStatus::Failed, Some(e.clone())).map(|_| Some(Outcome::Failed(e))),
                    };
                }
                let why = format!("step(s) failed: {}", failed.join(", "));
                self.run.error = Some(why.clone());
                if self.fail.is_empty() {
                    return self.finish(RunStatus::Failed, Some(why.clone())).map(|_| Some(Outcome::Failed(why)));
                }
                // on_failure steps see the failure in `run`.
                self.ctx.run["status"] = json!("failed");
                self.ctx.run["failed_steps"] = json!(failed);
                self.ctx.run["error"] = json!(why);
                self.phase = PlanKind::OnFailure;
                Ok(None)
            }
            PlanKind::OnFailure => {
                let why = self.run.error.clone().unwrap_or_else(|| "a step failed".into());
                let also = failed(&self.rb.on_failure, &self.fail);
                let why = if also.is_empty() { why } else { format!("{why}; on_failure step(s) failed too: {}", also.join(", ")) };
                self.finish(RunStatus::Failed, Some(why.clone())).map(|_| Some(Outcome::Failed(why)))
            }
        }
    }

    fn render_outputs(&self) -> Result<Value, String> {
        let tree = Value::Object(self.rb.outputs.iter().map(|(k, v)| (k.clone(), v.clone())).collect());
        let v = render_tree(&tree, &self.ctx.value(None), &[], &[]).map_err(|(p, e)| format!("outputs.{p}: {e}"))?;
        Ok(self.redactor.read().expect("poisoned").json(&v))
    }

    fn finish_stopped(&mut self, stop: Stop) -> Result<Outcome, RunError> {
        match stop {
            Stop::Interrupt => {
                self.finish(RunStatus::Halted, Some("interrupted".into()))?;
                Ok(Outcome::Interrupted)
            }
            Stop::Cancel => {
                for k in [PlanKind::Main, PlanKind::OnFailure] {
                    for i in 0..self.recs(k).len() {
                        let s = self.recs(k)[i].status;
                        if matches!(s, StepStatus::Pending | StepStatus::Waiting | StepStatus::Running) {
                            self.transition((k, i, None), StepStatus::Cancelled, Some("run cancelled".into()));
                        }
                    }
                }
                self.finish(RunStatus::Cancelled, Some("cancelled by an operator".into()))?;
                Ok(Outcome::Cancelled)
            }
        }
    }

    fn finish(&mut self, status: RunStatus, error: Option<String>) -> Result<(), RunError> {
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
