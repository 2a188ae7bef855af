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
        batch.event(&id, 0, now, EventKind::RunStarted { attempt: 1, by: Some(self.inner.opts.operator.clone()) });
        store.commit(batch, true)?;
        Driver::new(self.clone(), rb, run, records, opts.no_wait, 1)?.drive().await
    }
}

pub(crate) fn step_view(r: &StepRecord) -> Value {
    serde_json::json!({ "status": r.status.as_str(), "outputs": r.outputs.clone().unwrap_or(Value::Object(Default::default())), "error": r.error, "attempts": r.attempts })
}
