//! Starting, resuming and dry-running runs.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::control;
use super::driver::Driver;
use super::observer::Observer;
use super::prepare::{self, now_ms};
use crate::runbook::Runbook;
use crate::state::{Batch, EventKind, PlanKind, RunRecord, RunStatus, StepRecord, Store, StoreError};

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
    /// The store failed while run `run` was in progress: the run and its running steps were
    /// stopped, and the store still says they are running (resume carries on from there).
    #[error("{source}")]
    Stopped { run: String, source: StoreError },
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
    /// Who starts it, when not the engine's operator (`phoenix serve`: the API token's name);
    /// recorded in the `RunStarted` event.
    pub by: Option<String>,
    /// A drill (`phoenix drill`): the runbook's `drill.params` overlaid on `params`, refused
    /// before anything is written if a step would touch a protected or production target.
    pub drill: bool,
    /// The alert the run is started for (`phoenix serve`'s webhook): recorded in the run,
    /// and its RTO counts from the alert's start.
    pub alert: Option<crate::state::AlertOrigin>,
    /// For a drill's child run (`drill` and `parent` set): the params the parent's production
    /// run would give it. The parent's params then win over the child's overlay, and the
    /// child's targets are compared with these (`None`: not known; only `protect` guards it).
    pub production_params: Option<Vec<(String, String)>>,
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
    /// Succeeded steps to run again (`--rerun`): a changed or stale step that is not
    /// idempotent is otherwise kept.
    pub rerun: Vec<String>,
    /// Succeeded steps that keep their result although changed or stale (`--keep`).
    pub keep: Vec<String>,
    /// The plan the operator confirmed (`Adoption::confirmed`): if the resume would now do
    /// anything else (the run changed meanwhile), it is refused and nothing is written.
    pub confirmed: Option<Vec<String>>,
    /// Halt at an approval instead of waiting.
    pub no_wait: bool,
    /// Who resumes it, when not the engine's operator; recorded in the `RunStarted` event.
    pub by: Option<String>,
    /// A cluster's new leader taking the run over from the node that drove it (its name):
    /// recorded as "taken over by NODE from NODE".
    pub takeover_from: Option<String>,
    /// Go on although the run's decision is stale and the signals no longer call for it
    /// (`--confirm`; needs `reason`). Recorded with who, when, why, then and now.
    pub confirm: bool,
    /// End the run instead: its on_abort steps run, then it is `cancelled` (`--abort`).
    pub abort: bool,
    /// Why (`--reason`): required with `confirm`, recorded with `abort`.
    pub reason: Option<String>,
    /// Invariants whose failing checks do not stop the run during this resume
    /// (`--override`), each with the operator's reason; recorded with who gave them.
    pub overrides: Vec<Override>,
}

/// `phoenix resume --override NAME --reason TEXT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Override {
    /// The invariant.
    pub invariant: String,
    /// Why the operator knows it is safe to go on (required, never empty).
    pub reason: String,
}

/// This process as a member of a cluster (`phoenix serve --store etcd://…`): its node name,
/// recorded as the owner of every run it starts or resumes, and its fencing token (0 for
/// none), which steps see as `run.fence` and actions as `ActionCtx::fence`.
#[derive(Debug, Clone)]
pub struct Membership {
    /// The node's name.
    pub node: String,
    /// The leader key's create revision while this node leads; 0 otherwise.
    pub fence: Arc<std::sync::atomic::AtomicU64>,
}

pub(crate) struct Inner {
    pub(crate) store: Store,
    pub(crate) opts: EngineOptions,
    pub(crate) observer: Arc<dyn Observer>,
    pub(crate) registry: control::Registry,
    pub(crate) shutdown: CancellationToken,
    /// Answers the control socket's requests the engine does not know (`phoenix serve`:
    /// starting and resuming runs for the command line).
    pub(crate) extension: std::sync::OnceLock<Arc<dyn control::Extension>>,
    /// This process in a cluster (set once, before any run).
    pub(crate) membership: std::sync::OnceLock<Membership>,
    /// The throwaway engine of `--dry-run`'s reads: templates see `run.dry_run` true.
    pub(crate) dry_run: std::sync::atomic::AtomicBool,
}

/// Runs runbooks against a store.
#[derive(Clone)]
pub struct Engine {
    pub(crate) inner: Arc<Inner>,
}

impl Engine {
    /// An engine over a store. `shutdown` is fired on Ctrl-C / SIGTERM.
    pub fn new(store: Store, opts: EngineOptions, observer: Arc<dyn Observer>, shutdown: CancellationToken) -> Self {
        Engine {
            inner: Arc::new(Inner {
                store,
                opts,
                observer,
                registry: control::Registry::default(),
                shutdown,
                extension: std::sync::OnceLock::new(),
                membership: std::sync::OnceLock::new(),
                dry_run: std::sync::atomic::AtomicBool::new(false),
            }),
        }
    }

    /// Lets `ext` answer the control socket's requests the engine does not know (set once).
    pub fn extend_control(&self, ext: Arc<dyn control::Extension>) {
        let _ = self.inner.extension.set(ext);
    }

    /// Makes this engine a cluster member (set once, before any run).
    pub fn join(&self, m: Membership) {
        let _ = self.inner.membership.set(m);
    }

    /// The node that owns the runs this engine drives (`None` outside a cluster).
    pub fn node(&self) -> Option<&str> {
        self.inner.membership.get().map(|m| m.node.as_str())
    }

    /// The fencing token in force now (0: none).
    pub fn fence(&self) -> u64 {
        self.inner.membership.get().map_or(0, |m| m.fence.load(std::sync::atomic::Ordering::SeqCst))
    }

    /// Stops every run this process drives without writing anything more: the node has lost
    /// the right to write (deposed). Each run's steps are stopped as after a store failure
    /// (SIGTERM, SIGKILL after the grace period); the store still says they are running, so
    /// whoever takes the runs over applies the crash-resume rules.
    pub fn abandon_all(&self, why: &str) -> usize {
        let ids = self.inner.registry.ids();
        for id in &ids {
            if let Some(tx) = self.inner.registry.get(id) {
                let _ = tx.send(super::driver::Msg::Abandon { why: why.to_string() });
            }
        }
        ids.len()
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The state directory.
    pub fn state_dir(&self) -> &std::path::Path {
        &self.inner.opts.state_dir
    }

    /// Serves other `phoenix` processes (status, logs, approve, cancel) on the state
    /// directory's socket until the engine is dropped.
    pub fn serve_control(&self) -> std::io::Result<control::ServerGuard> {
        control::serve(self.clone())
    }

    /// Whether this process drives the run now.
    pub fn in_progress(&self, run: &str) -> bool {
        self.inner.registry.get(run).is_some()
    }

    /// The runs this process drives now (a parent and its child runs), by id.
    pub fn runs_in_progress(&self) -> Vec<String> {
        self.inner.registry.ids()
    }

    /// Decides on a waiting approval of a run this process drives (the driver checks the
    /// approvers and the timeout). `Err` says why not, or that the run is not driven here.
    pub async fn approve(&self, run: &str, step: &str, approval: crate::state::Approval) -> Result<(), String> {
        let tx = self.inner.registry.get(run).ok_or_else(|| "that run is not in progress in this process".to_string())?;
        let (reply, rx) = tokio::sync::oneshot::channel();
        tx.send(super::driver::Msg::Approve { step: step.to_string(), approval, reply }).map_err(|_| "the run has ended".to_string())?;
        rx.await.map_err(|_| "the run ended before the decision was applied".to_string())?
    }

    /// Cancels a run this process drives.
    pub async fn cancel(&self, run: &str, by: &str) -> Result<(), String> {
        let tx = self.inner.registry.get(run).ok_or_else(|| "that run is not in progress in this process".to_string())?;
        let (reply, rx) = tokio::sync::oneshot::channel();
        tx.send(super::driver::Msg::Cancel { by: by.to_string(), reply }).map_err(|_| "the run has ended".to_string())?;
        rx.await.map_err(|_| "the run ended before it could be cancelled".to_string())?
    }

    /// Appends an event to a run's log: through its driver when this process drives it (the
    /// driver numbers events), else straight to the store.
    pub async fn record_event(&self, run: &str, kind: EventKind) -> Result<(), String> {
        if let Some(tx) = self.inner.registry.get(run) {
            let (reply, rx) = tokio::sync::oneshot::channel();
            if tx.send(super::driver::Msg::Event { kind: kind.clone(), reply }).is_ok() {
                if let Ok(r) = rx.await {
                    return r;
                }
            }
        }
        let store = &self.inner.store;
        let (seq, _) = store.next_seqs(run).map_err(|e| e.to_string())?;
        let mut b = Batch::default();
        b.event(run, seq, prepare::now_ms(), kind);
        store.commit(b, true).map_err(|e| e.to_string())
    }

    /// Starts a new run and drives it to its end (or halt).
    pub async fn start(&self, rb: Arc<Runbook>, opts: StartOptions) -> Result<(String, Outcome), RunError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let _ = tx.send(());
        let mut rx = Some(rx);
        let mut id_out = String::new();
        let outcome = self
            .start_with(rb, opts, |id| {
                id_out = id;
                rx.take().expect("called once")
            })
            .await?;
        Ok((id_out, outcome))
    }

    /// Starts a run and drives it, telling `on_id` its id first and going on only when the
    /// receiver `on_id` returns is answered (so a caller can get ready to watch the run).
    pub async fn start_with<F>(&self, rb: Arc<Runbook>, opts: StartOptions, on_id: F) -> Result<Outcome, RunError>
    where
        F: FnOnce(String) -> tokio::sync::oneshot::Receiver<()>,
    {
        let store = &self.inner.store;
        let against = match &opts.parent {
            Some(_) => super::drill::Against::Parent(opts.production_params.as_deref()),
            None => super::drill::Against::Given,
        };
        let drill = if opts.drill { Some(super::drill::check_as(&rb, &opts.params, against)?) } else { None };
        if let Some(c) = drill.as_ref().filter(|c| !c.collisions.is_empty()) {
            return Err(RunError::BadInput(super::drill::refusal(&rb, c)));
        }
        let params = match &drill {
            Some(c) => c.params.clone(),
            None => prepare::params(&rb, &opts.params).map_err(RunError::BadInput)?,
        };
        let now = now_ms();
        let id = prepare::new_run_id(now);
        let _ = on_id(id.clone()).await;
        let run_v = prepare::run_value(&rb, &id, now, 1, self.inner.dry_run.load(std::sync::atomic::Ordering::SeqCst));
        let (vars, lock) = prepare::vars_and_lock(&rb, &params, &run_v).map_err(RunError::BadInput)?;
        // A drill never blocks, and is never blocked by, production's run.
        let lock = lock.map(|l| if drill.is_some() { format!("drill:{l}") } else { l });
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
            dir: prepare::working_dir(),
            owner: self.node().map(str::to_string),
            drill: drill.is_some(),
            ending: None,
            alert: opts.alert.clone(),
            measure: None,
            trace: None,
        };
        let mut records = Vec::new();
        let mut batch = Batch::default();
        batch.put_run(&run);
        batch.source(&id, &rb.source);
        let teardown = if drill.is_some() { &rb.teardown } else { &crate::runbook::Plan::default() };
        for (plan, kind) in [(&rb.main, PlanKind::Main), (&rb.on_failure, PlanKind::OnFailure), (teardown, PlanKind::Teardown)] {
            for (n, s) in plan.steps.iter().enumerate() {
                let r = StepRecord { order: n as u32, ..StepRecord::pending(&s.id, kind, &s.fingerprint) };
                batch.put_step(&id, &r);
                records.push(r);
            }
        }
        let by = opts.by.clone().unwrap_or_else(|| self.inner.opts.operator.clone());
        batch.event(&id, 0, now, EventKind::RunStarted { attempt: 1, by: Some(by) });
        if let Some(c) = &drill {
            batch.event(&id, 1, now, super::drill::started_note(c));
        }
        match &lock {
            Some(l) => take_lock(store, l, &id, batch)?,
            None => store.commit(batch, true)?,
        }
        Driver::new(self.clone(), rb, run, records, opts.no_wait, 1)?.drive().await
    }
}

/// Commits a new run's first batch with its lock, in one compare-and-set: the lock is taken
/// only if it is still free (or still held by the finished run read before it) when the
/// batch is written. A start that loses the race to another gets the same refusal as one
/// that came later, and writes nothing.
fn take_lock(store: &crate::state::Store, l: &str, id: &str, batch: Batch) -> Result<(), RunError> {
    // Each lost round means another run took the lock meanwhile: the next round names it.
    for _ in 0..8 {
        let holder = store.lock_holder(l)?;
        if let Some(h) = holder.as_deref().map(|h| store.run(h)).transpose()?.flatten().filter(|h| h.status.holds_lock()) {
            return Err(RunError::BadInput(format!(
                "the lock `{l}` is held by run {} ({}, runbook `{}`): nothing ever runs two at once\n  resume it:  phoenix resume {}\n  or cancel it:  phoenix cancel {}",
                h.id,
                h.status.as_str(),
                h.runbook,
                h.id,
                h.id
            )));
        }
        let mut b = batch.clone();
        b.lock(l, id, holder.as_deref());
        if store.try_commit(b, true)? {
            return Ok(());
        }
    }
    Err(RunError::BadInput(format!("the lock `{l}` kept changing hands while this run tried to take it; nothing was written: try again")))
}

pub(crate) fn step_view(r: &StepRecord) -> Value {
    serde_json::json!({ "status": r.status.as_str(), "outputs": r.outputs.clone().unwrap_or(Value::Object(Default::default())), "error": r.error, "attempts": r.attempts })
}

#[cfg(test)]
#[path = "engine_tests.rs"]
mod tests;
