//! The event log: what happened to a run, in order, one record per event (`e/RUN/SEQ`).
//! The timeline, the report and `logs` read it back.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::records::{RunStatus, StepStatus};

/// What happened, in an append-only log per run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EventKind {
    /// The run started or resumed.
    RunStarted {
        /// 1 for the first start.
        attempt: u32,
        /// Who started or resumed it (`--as`, default `$USER`); none in older stores.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<String>,
    },
    /// The run ended or halted.
    RunFinished {
        /// The state it reached.
        status: RunStatus,
        /// Why, if not succeeded.
        error: Option<String>,
    },
    /// A step changed state.
    Step {
        /// The step.
        step: String,
        /// Its new state.
        status: StepStatus,
        /// Its attempt number.
        attempt: u32,
        /// The error, for failures.
        error: Option<String>,
    },
    /// An attempt failed and will be retried.
    Retry {
        /// The step.
        step: String,
        /// The attempt that failed.
        attempt: u32,
        /// Why.
        error: String,
        /// The delay before the next attempt (ms).
        delay_ms: u64,
    },
    /// Approval was requested, given or refused.
    Approval {
        /// The step.
        step: String,
        /// The decision; none when requested.
        approved: Option<bool>,
        /// Who.
        by: Option<String>,
        /// Why.
        comment: Option<String>,
    },
    /// An operator action (cancel, resume with changes, skip, retry).
    Operator {
        /// What was done.
        action: String,
        /// Who did it.
        by: String,
        /// Details.
        detail: Option<String>,
    },
    /// An invariant was checked before or after a step it is around.
    Invariant {
        /// The invariant.
        name: String,
        /// The step it guards.
        step: String,
        /// `before` or `after` the step's action.
        when: String,
        /// Whether its condition held (a check that erred did not hold).
        held: bool,
        /// It did not hold, and `resume --override` let the run go on.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        overridden: bool,
        /// What the condition read (redacted), or why the check could not read it.
        saw: String,
    },
    /// A note (for example the analysis of an LLM step).
    Note {
        /// The step, if any.
        step: Option<String>,
        /// The text.
        text: String,
        /// Structured data.
        data: Option<Value>,
    },
}

/// One event.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EventRecord {
    /// Its number in the run.
    pub seq: u64,
    /// When (ms).
    pub at: u64,
    /// What.
    #[serde(flatten)]
    pub kind: EventKind,
}
