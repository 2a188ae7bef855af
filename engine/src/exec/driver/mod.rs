//! The driver of one run: owns its records, schedules ready steps, commits each round's
//! transitions durably before acting on them, and ends the run.
//!
//! `build` rebuilds a driver from the stored records, `schedule` decides what starts,
//! `approval` handles people's decisions, `finish` ends phases and the run; this file holds
//! the records, the transitions and the loop.

mod approval;
mod build;
mod finish;
mod invariants;
mod kept;
mod messages;
mod schedule;
mod skip_note;
mod teardown;
use build::item_id;
pub(crate) use teardown::teardown_result;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use phoenix_plugins::LogLine;
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::attempt::{self, Unit};
use super::context::{Context, Secrets};
use super::engine::{Engine, Outcome, RunError, step_view};
use super::lifecycle;
use super::observer::UiEvent;
use super::prepare::{self, now_ms};
use super::trace;
use crate::runbook::{Plan, Runbook};
use crate::state::{Approval, Batch, EventKind, LevelHistory, PlanKind, RunRecord, RunStatus, StepRecord, StepStatus};
use crate::template::{Redactor, to_mj};

/// A runnable unit: a step, or one item of a `for_each` step.
pub(crate) type UnitKey = (PlanKind, usize, Option<usize>);

/// How an attempt (with its retries) ended.
#[derive(Debug)]
pub(crate) enum UnitResult {
    Ok(Value),
    /// `uncertain`: why a non-idempotent step's effect may have begun and not ended (its
    /// timeout stopped it): resume asks the operator before running it again.
    Failed {
        error: String,
        outputs: Option<Value>,
        uncertain: Option<String>,
    },
    /// Stopped (cancel, Ctrl-C, SIGTERM); `uncertain` as for `Failed`.
    Cancelled {
        why: String,
        uncertain: Option<String>,
    },
    /// A child run halted: the step stays running, the parent halts with it.
    Halted(String),
}

/// Where an operator's request (approve, cancel) is answered.
pub(crate) type Reply = oneshot::Sender<Result<(), String>>;

/// What the driver hears from attempts and operators.
pub(crate) enum Msg {
    Retry {
        key: UnitKey,
        attempt: u32,
        error: String,
        delay: Duration,
        ack: oneshot::Sender<()>,
    },
    Done {
        key: UnitKey,
        result: UnitResult,
        inputs: Option<Value>,
        history: Option<LevelHistory>,
    },
    Log {
        step: String,
        line: LogLine,
    },
    Child {
        key: UnitKey,
        run_id: String,
        ack: oneshot::Sender<()>,
    },
    Approve {
        step: String,
        approval: Approval,
        reply: oneshot::Sender<Result<(), String>>,
    },
    ApprovalTimeout {
        step: String,
    },
    Cancel {
        by: String,
        reply: oneshot::Sender<Result<(), String>>,
    },
    /// An event from outside the run (`phoenix serve`: an alert notification about it).
    Event {
        kind: EventKind,
        reply: oneshot::Sender<Result<(), String>>,
    },
    /// This process may no longer write (a deposed cluster leader): stop every step and
    /// write nothing more (`Engine::abandon_all`).
    Abandon {
        why: String,
    },
    /// The invariants around main step `step` were checked.
    Checked {
        step: usize,
        phase: crate::exec::invariant_check::Phase,
        verdicts: Vec<crate::exec::invariant_check::Verdict>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    Interrupt,
    Cancel,
}

/// What a step's needs allow, given how they ended and its trigger rule.
#[derive(Debug, PartialEq, Eq)]
enum Need {
    Wait,
    Run,
    /// Not run, nothing failed: a need was skipped (and the rule asks for success).
    Skip,
    /// Not run because of a failure: the failed (or cancelled) step it comes from, and the
    /// need it came through.
    UpstreamFailed {
        origin: String,
        via: String,
    },
}

pub(crate) struct Driver {
    engine: Engine,
    rb: Arc<Runbook>,
    run: RunRecord,
    main: Vec<StepRecord>,
    fail: Vec<StepRecord>,
    /// The on_abort steps' records (`phoenix resume --abort`).
    abort: Vec<StepRecord>,
    /// A drill's teardown steps' records (none for a production run).
    teardown: Vec<StepRecord>,
    /// The plan of no steps: a production run's teardown.
    no_teardown: Plan,
    /// Set when the run is being aborted: "aborted by X: why", the run's end.
    aborting: Option<String>,
    items: HashMap<(PlanKind, usize), Vec<StepRecord>>,
    lists: HashMap<(PlanKind, usize), Vec<Value>>,
    ctx: Context,
    redactor: Arc<RwLock<Redactor>>,
    batch: Batch,
    durable: bool,
    seq_e: u64,
    seq_l: u64,
    /// How much of each step's output the store still holds.
    kept: HashMap<String, kept::Kept>,
    running: HashMap<UnitKey, CancellationToken>,
    tx: mpsc::UnboundedSender<Msg>,
    rx: mpsc::UnboundedReceiver<Msg>,
    phase: PlanKind,
    stopping: Option<Stop>,
    no_wait: bool,
    acks: Vec<oneshot::Sender<()>>,
    /// Answers to operators (approve, cancel), sent once what they decided is durable.
    replies: Vec<(Reply, Result<(), String>)>,
    waiting: HashSet<(PlanKind, usize)>,
    halted: Vec<String>,
    halted_units: HashSet<UnitKey>,
    cancel_all: CancellationToken,
    pending_spawn: Vec<Unit>,
    /// What scheduling looks at, so a round costs what changed, not the size of the plan.
    frontier: schedule::Frontier,
    /// Set by `Msg::Abandon`: the next turn of the loop stops everything, writing nothing.
    abandoned: Option<String>,
    /// The invariants' checks in this process.
    guard: invariants::Guard,
}

impl Driver {
    /// Drives the on_abort steps instead of the main plan (`phoenix resume --abort`); the
    /// run ends `cancelled` with `why` ("aborted by X: reason").
    pub(crate) fn aborting(mut self, why: String) -> Self {
        self.phase = PlanKind::OnAbort;
        self.aborting = Some(why);
        self
    }

    /// The teardown plan this run drives: a drill's, or none.
    fn teardown_plan(&self) -> &Plan {
        if self.run.drill { &self.rb.teardown } else { &self.no_teardown }
    }

    pub(super) fn plan(&self, k: PlanKind) -> &Plan {
        match k {
            PlanKind::Main => &self.rb.main,
            PlanKind::OnFailure => &self.rb.on_failure,
            PlanKind::OnAbort => &self.rb.on_abort,
            PlanKind::Teardown => self.teardown_plan(),
        }
    }

    pub(super) fn recs(&self, k: PlanKind) -> &Vec<StepRecord> {
        match k {
            PlanKind::Main => &self.main,
            PlanKind::OnFailure => &self.fail,
            PlanKind::OnAbort => &self.abort,
            PlanKind::Teardown => &self.teardown,
        }
    }

    pub(super) fn rec_mut(&mut self, key: UnitKey) -> &mut StepRecord {
        match key {
            (k, i, Some(j)) => &mut self.items.get_mut(&(k, i)).expect("items expanded")[j],
            (PlanKind::Main, i, None) => &mut self.main[i],
            (PlanKind::OnFailure, i, None) => &mut self.fail[i],
            (PlanKind::OnAbort, i, None) => &mut self.abort[i],
            (PlanKind::Teardown, i, None) => &mut self.teardown[i],
        }
    }

    pub(super) fn event(&mut self, kind: EventKind) {
        trace::event(&kind);
        self.batch.event(&self.run.id, self.seq_e, now_ms(), kind);
        self.seq_e += 1;
        self.durable = true;
    }

    /// Moves a step or item to a new state, in memory and in the batch.
    pub(super) fn transition(&mut self, key: UnitKey, to: StepStatus, error: Option<String>) {
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
                rec.uncertain = None;
            }
            StepStatus::Succeeded | StepStatus::Failed | StepStatus::Cancelled | StepStatus::Skipped | StepStatus::UpstreamFailed => {
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
        if key.2.is_none() {
            let recs = match key.0 {
                PlanKind::Main => &self.main,
                PlanKind::OnFailure => &self.fail,
                PlanKind::OnAbort => &self.abort,
                PlanKind::Teardown => &self.teardown,
            };
            self.frontier.moved(self.rb.plan_of(key.0), recs, key.0, key.1, to);
        }
        if to.is_done() && key.2.is_none() {
            self.ctx.steps.set(&rec.id, &step_view(&rec));
        }
        self.engine.inner.observer.on(&UiEvent::Step { run: run_id, step: rec.id, status: to, attempt: rec.attempts, elapsed_ms, error });
    }

    fn commit(&mut self) -> Result<(), RunError> {
        let batch = std::mem::take(&mut self.batch);
        let durable = std::mem::take(&mut self.durable);
        self.engine.inner.store.commit(batch, durable)?;
        for ack in self.acks.drain(..) {
            let _ = ack.send(());
        }
        for (reply, r) in self.replies.drain(..) {
            let _ = reply.send(r);
        }
        Ok(())
    }

    /// The store failed (a full disk, an I/O error): nothing more can be recorded, so nothing
    /// more may run or be left running. The running steps are stopped as for Ctrl-C (SIGTERM
    /// to their process groups, SIGKILL after the grace period) and what they report is
    /// dropped: the store still says they are running, and `phoenix resume` treats them as
    /// after a crash.
    async fn abandon(&mut self, e: RunError, unstarted: Vec<Unit>) -> RunError {
        for u in &unstarted {
            self.running.remove(&u.key);
        }
        self.stop(Stop::Interrupt);
        while !self.running.is_empty() {
            let Some(m) = self.rx.recv().await else { break };
            self.handle(m);
            // Never committed: whoever waits for an acknowledgement or a reply hears "gone".
            self.acks.clear();
            self.replies.clear();
        }
        self.batch = Batch::default();
        self.pending_spawn.clear();
        match e {
            RunError::Store(source) => RunError::Stopped { run: self.run.id.clone(), source },
            e => e,
        }
    }

    fn spawn(&self, units: Vec<Unit>) {
        for u in units {
            attempt::spawn(self.engine.clone(), self.rb.clone(), self.run.id.clone(), u, self.ctx.clone(), self.tx.clone());
        }
    }

    /// Drives the run until it ends or halts.
    pub(crate) async fn drive(mut self) -> Result<Outcome, RunError> {
        let span = trace::run_span(&self.run);
        if self.run.trace.is_none() {
            // Stored with the first commit, before any step starts: a resume after a crash
            // joins this trace.
            if let Some(t) = trace::context_of(&span) {
                self.run.trace = Some(t);
                self.batch.put_run(&self.run);
                self.durable = true;
            }
        }
        let store_total = self.main.len();
        let done = self.main.iter().filter(|r| r.status.is_done()).count();
        self.engine.inner.observer.on(&UiEvent::RunStarted {
            run: self.run.id.clone(),
            runbook: self.rb.name.clone(),
            total: store_total,
            done,
            drill: self.run.drill,
        });
        self.engine.inner.registry.register(&self.run.id, self.tx.clone());
        let result = self.drive_inner().instrument(span.clone()).await;
        self.engine.inner.registry.unregister(&self.run.id);
        match &result {
            Ok(Outcome::Succeeded) => trace::end(&span, "succeeded", true),
            Ok(Outcome::Failed(_)) => trace::end(&span, "failed", false),
            Ok(Outcome::Halted(_)) => trace::end(&span, "halted", true),
            Ok(Outcome::Cancelled) => trace::end(&span, "cancelled", true),
            Ok(Outcome::Interrupted) => trace::end(&span, "interrupted", true),
            Err(_) => trace::end(&span, "error", false),
        }
        result
    }

    async fn drive_inner(&mut self) -> Result<Outcome, RunError> {
        loop {
            let mut units = std::mem::take(&mut self.pending_spawn);
            units.extend(self.schedule());
            if let Err(e) = self.commit() {
                return Err(self.abandon(e, units).await);
            }
            let started = !units.is_empty();
            self.spawn(units);
            if self.running.is_empty() && self.guard.checking.is_empty() && !started {
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
            if let Some(why) = self.abandoned.take() {
                return Err(self.abandon(RunError::Store(crate::state::StoreError(why)), Vec::new()).await);
            }
        }
    }
}
