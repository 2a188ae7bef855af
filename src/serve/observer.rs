//! What the server hears from its runs: a timestamped log line per notable moment, the
//! step metrics, and the signal that a run it launched has started.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use phoenix_engine::exec::{Observer, UiEvent};
use phoenix_engine::state::StepStatus;
use tokio::sync::oneshot;

use super::metrics::RunMetrics;

pub(crate) struct ServeObserver {
    pub(crate) metrics: Arc<RunMetrics>,
    /// Run id → runbook name, for the metrics' labels.
    runbooks: Mutex<HashMap<String, String>>,
    /// Runs being launched: told when they have started.
    waiters: Mutex<HashMap<String, oneshot::Sender<()>>>,
    /// The cluster, once known: a deposed node's runs still move in memory while they stop,
    /// and their lines say that nothing of it is recorded.
    pub(crate) cluster: std::sync::OnceLock<Arc<crate::cluster::Cluster>>,
}

impl ServeObserver {
    pub(crate) fn new(metrics: Arc<RunMetrics>) -> Self {
        ServeObserver { metrics, runbooks: Mutex::default(), waiters: Mutex::default(), cluster: std::sync::OnceLock::new() }
    }

    /// Resolves once the run's driver has started (its state is durable by then).
    pub(crate) fn expect_start(&self, run: &str) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        self.waiters.lock().expect("poisoned").insert(run.to_string(), tx);
        rx
    }

    /// Appended to a line about a run while this node does not lead: what it says is not in
    /// the store (the driver is stopping and writes nothing).
    fn unrecorded(&self) -> &'static str {
        if self.cluster.get().is_some_and(|c| !c.is_leader()) { " (not recorded: this node no longer leads)" } else { "" }
    }

    fn runbook(&self, run: &str) -> String {
        self.runbooks.lock().expect("poisoned").get(run).cloned().unwrap_or_default()
    }
}

/// `step[3]` → `step`: items share their step's series.
fn base(step: &str) -> &str {
    step.split_once('[').map_or(step, |(s, _)| s)
}

impl Observer for ServeObserver {
    fn on(&self, event: &UiEvent) {
        match event {
            UiEvent::RunStarted { run, runbook, total, done, drill } => {
                self.runbooks.lock().expect("poisoned").insert(run.clone(), runbook.clone());
                let kind = if *drill { "drill run" } else { "run" };
                super::log_line(Some(run), &format!("{kind} {run} `{runbook}` started ({done}/{total} steps done)"));
                if let Some(tx) = self.waiters.lock().expect("poisoned").remove(run) {
                    let _ = tx.send(());
                }
            }
            UiEvent::Step { run, step, status, attempt, elapsed_ms, error } => {
                let took = elapsed_ms.map_or(String::new(), |ms| format!(" in {ms} ms"));
                let why = error.as_ref().map_or(String::new(), |e| format!(": {e}"));
                super::log_line(
                    Some(run),
                    &format!("run {run} step {step} {} (attempt {attempt}){took}{why}{}", status.as_str(), self.unrecorded()),
                );
                if let (Some(ms), true) = (elapsed_ms, matches!(status, StepStatus::Succeeded | StepStatus::Failed)) {
                    self.metrics.step_ended(&self.runbook(run), base(step), *ms);
                }
            }
            UiEvent::Retry { run, step, attempt, error, delay_ms } => {
                super::log_line(Some(run), &format!("run {run} step {step} attempt {attempt} failed, retrying in {delay_ms} ms: {error}"));
                self.metrics.retried(&self.runbook(run), base(step));
            }
            UiEvent::Log { run, step, text, .. } => super::log_line(Some(run), &format!("run {run} [{step}] {text}")),
            UiEvent::ApprovalRequested { run, step, message } => {
                super::log_line(Some(run), &format!("run {run} step {step} waits for approval: {message}"));
            }
            UiEvent::RunFinished { run, status, error } => {
                let why = error.as_ref().map_or(String::new(), |e| format!(": {}", e.lines().next().unwrap_or("")));
                super::log_line(Some(run), &format!("run {run} {}{why}{}", status.as_str(), self.unrecorded()));
                self.runbooks.lock().expect("poisoned").remove(run);
            }
        }
    }

    /// Approvals wait for the API (or `phoenix approve`): nobody is asked at a terminal,
    /// and a run never halts for want of one.
    fn interactive(&self) -> bool {
        true
    }
}
