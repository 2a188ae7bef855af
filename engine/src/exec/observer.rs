//! What the engine tells a watcher (the terminal display, `phoenix serve`) as a run goes.

use crate::state::{RunStatus, StepStatus};

/// A notable moment of a run.
#[derive(Debug, Clone)]
pub enum UiEvent {
    /// A run started or resumed.
    RunStarted {
        /// The run.
        run: String,
        /// The runbook.
        runbook: String,
        /// Steps in the main plan.
        total: usize,
        /// Steps already done (on resume).
        done: usize,
        /// A drill (`phoenix drill`).
        drill: bool,
    },
    /// A step (or item) changed state.
    Step {
        /// The run.
        run: String,
        /// The step.
        step: String,
        /// Its state.
        status: StepStatus,
        /// Its attempt.
        attempt: u32,
        /// How long it ran (ms), once ended.
        elapsed_ms: Option<u64>,
        /// Why it failed.
        error: Option<String>,
    },
    /// An attempt failed and will be retried.
    Retry {
        /// The run.
        run: String,
        /// The step.
        step: String,
        /// The failed attempt.
        attempt: u32,
        /// Why.
        error: String,
        /// When the next one starts (ms).
        delay_ms: u64,
    },
    /// A line of step output.
    Log {
        /// The run.
        run: String,
        /// The step.
        step: String,
        /// The text (redacted).
        text: String,
        /// Whether it came from stderr.
        stderr: bool,
    },
    /// A step waits for approval.
    ApprovalRequested {
        /// The run.
        run: String,
        /// The step.
        step: String,
        /// The question.
        message: String,
    },
    /// The run ended or halted.
    RunFinished {
        /// The run.
        run: String,
        /// Its state.
        status: RunStatus,
        /// Why, if not succeeded.
        error: Option<String>,
    },
}

/// Receives [`UiEvent`]s.
pub trait Observer: Send + Sync {
    /// Called for each event, from the engine's driver (keep it quick).
    fn on(&self, event: &UiEvent);
    /// Whether approvals can be asked for on this terminal.
    fn interactive(&self) -> bool {
        false
    }
    /// Asks a person about an approval; `None` when nobody can be asked.
    fn ask_approval(&self, _run: &str, _step: &str, _message: &str) -> Option<(bool, Option<String>)> {
        None
    }
}

/// An observer that ignores everything.
pub struct Silent;

impl Observer for Silent {
    fn on(&self, _event: &UiEvent) {}
}
