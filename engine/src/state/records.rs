//! What is stored, as serde types. Every record carries the format version it was written
//! with; fields added later are `#[serde(default)]` so older stores still read.

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use super::events::{EventKind, EventRecord};
pub use super::origin::AlertOrigin;
pub use super::trace::TraceContext;

/// A run's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Hash)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    /// Steps are being run (or the process died while they were).
    Running,
    /// Every step succeeded or was skipped.
    Succeeded,
    /// A step failed.
    Failed,
    /// Interrupted, crashed, or waiting for approval: `phoenix resume` continues it.
    Halted,
    /// Cancelled by an operator.
    Cancelled,
}

impl RunStatus {
    /// Every state.
    pub const ALL: [RunStatus; 5] = [RunStatus::Running, RunStatus::Succeeded, RunStatus::Failed, RunStatus::Halted, RunStatus::Cancelled];

    /// Whether the run is over for good.
    pub fn is_final(self) -> bool {
        matches!(self, RunStatus::Succeeded | RunStatus::Cancelled)
    }
    /// Whether a lock held by a run in this state still blocks others.
    pub fn holds_lock(self) -> bool {
        matches!(self, RunStatus::Running | RunStatus::Halted | RunStatus::Failed)
    }
    /// The lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::Halted => "halted",
            RunStatus::Cancelled => "cancelled",
        }
    }
}

/// A step's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Hash)]
#[serde(rename_all = "lowercase")]
pub enum StepStatus {
    /// Not started.
    Pending,
    /// An attempt is under way.
    Running,
    /// Done.
    Succeeded,
    /// Failed (after its retries).
    Failed,
    /// Not run, with nothing failed: `when` was false, or a need was itself skipped.
    Skipped,
    /// Waiting for a person (approval).
    Waiting,
    /// Stopped by cancel or Ctrl-C.
    Cancelled,
    /// Not run because a need failed (or was cancelled, or was itself not run for a failure):
    /// Airflow's `upstream_failed`. It counts as a failure for every trigger rule but
    /// `all_done`; [`StepRecord::upstream`] names the step the failure comes from.
    #[serde(rename = "upstream_failed")]
    UpstreamFailed,
}

impl StepStatus {
    /// The lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            StepStatus::Pending => "pending",
            StepStatus::Running => "running",
            StepStatus::Succeeded => "succeeded",
            StepStatus::Failed => "failed",
            StepStatus::Skipped => "skipped",
            StepStatus::Waiting => "waiting",
            StepStatus::Cancelled => "cancelled",
            StepStatus::UpstreamFailed => "upstream_failed",
        }
    }
    /// Whether the step has ended (for this run attempt).
    pub fn is_done(self) -> bool {
        matches!(
            self,
            StepStatus::Succeeded | StepStatus::Failed | StepStatus::Skipped | StepStatus::Cancelled | StepStatus::UpstreamFailed
        )
    }
}

/// Why a step was skipped: resume re-runs steps skipped for a need, not for `when`. (Stores
/// written before `upstream_failed` existed also say `upstream` for a step not run because a
/// need failed.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    /// `when` was false.
    When,
    /// A need did not succeed.
    Upstream,
}

/// Which plan a step belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, Hash)]
#[serde(rename_all = "snake_case")]
pub enum PlanKind {
    /// The main DAG.
    #[default]
    Main,
    /// The on_failure steps.
    OnFailure,
    /// The on_abort steps (`phoenix resume --abort`).
    OnAbort,
    /// A drill's teardown steps (`drill.teardown`): run when the drill ends, however.
    Teardown,
}

/// An approval decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Approval {
    /// Approved or rejected.
    pub approved: bool,
    /// Who decided.
    pub by: String,
    /// Why.
    #[serde(default)]
    pub comment: Option<String>,
    /// When (ms since the epoch).
    pub at: u64,
    /// Through what the decision came and as which user: `socket, uid 1000 (bob)`,
    /// `http, token oncall`, `terminal, uid 0 (root)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<String>,
}

/// An Alertmanager alert group as `phoenix serve` saw it on one route: the run it started,
/// so that repeated notifications never start a second one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertGroup {
    /// The run the group's first `firing` notification started.
    pub run: String,
    /// Whether the group has resolved since (then a new `firing` is a new incident).
    pub resolved: bool,
    /// Notifications received for this run (ms since the epoch of the first and the last).
    pub notifications: u64,
    /// When the first came.
    pub first_at: u64,
    /// When the last came.
    pub last_at: u64,
}

/// A run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunRecord {
    /// The stored format's version.
    pub format: u32,
    /// The run id.
    pub id: String,
    /// The runbook's name.
    pub runbook: String,
    /// The file it was started from.
    pub file: String,
    /// Its state.
    pub status: RunStatus,
    /// The params it runs with.
    pub params: Value,
    /// Its vars, rendered at start.
    pub vars: Value,
    /// How many times it was started (1 + resumes).
    pub attempt: u32,
    /// When it started (ms).
    pub started_at: u64,
    /// Its last change (ms).
    pub updated_at: u64,
    /// When it ended (ms).
    #[serde(default)]
    pub finished_at: Option<u64>,
    /// Why it failed or halted.
    #[serde(default)]
    pub error: Option<String>,
    /// Its outputs, once succeeded.
    #[serde(default)]
    pub outputs: Option<Value>,
    /// The lock key it holds.
    #[serde(default)]
    pub lock: Option<String>,
    /// The parent run and step, for a child run.
    #[serde(default)]
    pub parent: Option<(String, String)>,
    /// The process running it (while `running`).
    #[serde(default)]
    pub pid: Option<u32>,
    /// The working directory it was last started or resumed in: relative paths in its steps
    /// (an `exec` step's `dir` or program, a file to upload) resolve there, and `phoenix
    /// resume` goes back there. Stores older than this field have none.
    #[serde(default)]
    pub dir: Option<String>,
    /// The cluster node that drives it (while `running`), or drove it last: a new leader
    /// takes over a running run whose owner's lease is gone. `None` outside a cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// A drill (`phoenix drill`): the runbook's `drill.params` overlaid, its lock key
    /// prefixed `drill:`. Stores older than this field have none (`false`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub drill: bool,
    /// A drill tearing down: how it ended before its teardown began (its status and error),
    /// applied once the teardown ends. Durable, so a resume carries the teardown on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ending: Option<(RunStatus, Option<String>)>,
    /// The alert `phoenix serve` started the run for (none when a person started it, and in
    /// stores older than this field). Its RTO counts from the alert's start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert: Option<AlertOrigin>,
    /// The run's RTO, stages and RPO, measured once when its main plan ended (a drill's:
    /// before its teardown), so later edits or pruned events never change them
    /// (`exec/drill_measure.rs`). None before then, and in stores older than this field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measure: Option<Value>,
    /// The trace it belongs to (issue 19): stored before its first step starts, read back by
    /// a resume. Stores older than this field have none (a resume starts a new trace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<TraceContext>,
}

#[cfg(test)]
impl RunRecord {
    /// A running run of runbook `rb`, started at `at` (for tests).
    pub(crate) fn sample(id: &str, at: u64) -> RunRecord {
        RunRecord {
            format: 1,
            id: id.into(),
            runbook: "rb".into(),
            file: "rb.yaml".into(),
            status: RunStatus::Running,
            params: serde_json::json!({}),
            vars: serde_json::json!({}),
            attempt: 1,
            started_at: at,
            updated_at: at,
            finished_at: None,
            error: None,
            outputs: None,
            lock: None,
            parent: None,
            pid: None,
            dir: None,
            owner: None,
            drill: false,
            ending: None,
            alert: None,
            measure: None,
            trace: None,
        }
    }
}

/// A step (or one `for_each` item of a step: `id[3]`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepRecord {
    /// The step id (`id[i]` for an item).
    pub id: String,
    /// Its plan.
    #[serde(default)]
    pub plan: PlanKind,
    /// Its position in the plan (file order), for display.
    #[serde(default)]
    pub order: u32,
    /// Its state.
    pub status: StepStatus,
    /// Attempts started (for this step, across resumes).
    pub attempts: u32,
    /// When the latest attempt started (ms).
    #[serde(default)]
    pub started_at: Option<u64>,
    /// When it ended (ms).
    #[serde(default)]
    pub finished_at: Option<u64>,
    /// The rendered `with`, secrets redacted.
    #[serde(default)]
    pub inputs: Option<Value>,
    /// Its outputs.
    #[serde(default)]
    pub outputs: Option<Value>,
    /// Why it failed.
    #[serde(default)]
    pub error: Option<String>,
    /// Why it was skipped.
    #[serde(default)]
    pub skip: Option<SkipReason>,
    /// For `upstream_failed`: the failed (or cancelled) step the failure comes from, however
    /// far up the DAG.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<String>,
    /// The definition's fingerprint when it ran.
    #[serde(default)]
    pub fingerprint: String,
    /// The approval decision, for `approval` steps: the rejection, the approval that reached
    /// the quorum, or the timeout's (`by: timeout`).
    #[serde(default)]
    pub approval: Option<Approval>,
    /// Every vote cast on an `approval` step while it was asked, in order (its `quorum` counts
    /// the approvals). Absent in older stores, and while nobody voted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub votes: Vec<Approval>,
    /// When approval was requested (ms), for its timeout.
    #[serde(default)]
    pub waiting_since: Option<u64>,
    /// The child run, for `runbook` steps.
    #[serde(default)]
    pub child_run: Option<String>,
    /// The number of items, for a `for_each` step once expanded.
    #[serde(default)]
    pub items: Option<usize>,
    /// Why the effect of a non-idempotent step is uncertain: an attempt was stopped while its
    /// effect may have begun (Ctrl-C, SIGTERM, cancel, its `timeout`). `phoenix resume` runs
    /// it again only with `--retry`, or counts it as done with `--skip`. Absent in older stores.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uncertain: Option<String>,
    /// Its action succeeded (outputs kept) and the after-checks of the invariants around it
    /// are not all recorded yet: the step is still `running`, and `phoenix resume` checks
    /// them again, never running the action again. Absent in older stores.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub acted: bool,
}

impl StepRecord {
    /// A pending step.
    pub fn pending(id: impl Into<String>, plan: PlanKind, fingerprint: &str) -> Self {
        StepRecord {
            id: id.into(),
            plan,
            order: 0,
            status: StepStatus::Pending,
            attempts: 0,
            started_at: None,
            finished_at: None,
            inputs: None,
            outputs: None,
            error: None,
            skip: None,
            upstream: None,
            fingerprint: fingerprint.to_string(),
            approval: None,
            votes: Vec::new(),
            waiting_since: None,
            child_run: None,
            items: None,
            uncertain: None,
            acted: false,
        }
    }
}

/// A line of step output.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LogRecord {
    /// Its number in the run.
    pub seq: u64,
    /// When (ms).
    pub at: u64,
    /// The step.
    pub step: String,
    /// `stdout`, `stderr` or `info`.
    pub stream: phoenix_plugins::Stream,
    /// The text (secrets redacted).
    pub text: String,
}

/// The level history of a runbook, for `for:` across evaluations and runs.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct LevelHistory {
    /// The latest raw level.
    pub raw_level: Option<String>,
    /// How many consecutive evaluations gave it.
    pub streak: u32,
    /// The confirmed level.
    pub level: Option<String>,
    /// The latest score.
    pub total: Option<f64>,
    /// When (ms).
    pub at: u64,
}

#[cfg(test)]
#[path = "records_tests.rs"]
mod tests;
