//! The run's events in words, in time order; and what people did (started, resumed,
//! approved, cancelled…).

use phoenix_engine::state::{EventKind, StepStatus};
use serde::Serialize;

use super::Time;
use super::run::Event;
use super::time::duration;

/// One line of the timeline.
#[derive(Debug, Serialize)]
pub(crate) struct Entry {
    pub(crate) at: Time,
    /// `run`, `step`, `retry`, `approval`, `operator` or `note`.
    pub(crate) kind: &'static str,
    pub(crate) step: Option<String>,
    pub(crate) text: String,
}

/// What a person did.
#[derive(Debug, Serialize)]
pub(crate) struct Act {
    pub(crate) at: Time,
    pub(crate) by: String,
    /// `started`, `resumed`, `approved gate`, `cancel`…
    pub(crate) action: String,
    pub(crate) detail: Option<String>,
}

/// Every event, in words.
pub(crate) fn entries(events: &[Event]) -> Vec<Entry> {
    events
        .iter()
        .map(|e| {
            let (kind, step, text) = describe(&e.kind);
            Entry { at: e.at, kind, step: step.map(str::to_string), text }
        })
        .collect()
}

fn describe(kind: &EventKind) -> (&'static str, Option<&str>, String) {
    match kind {
        EventKind::RunStarted { attempt, by } => {
            let who = by.as_deref().map_or(String::new(), |b| format!(" by {b}"));
            let what = if *attempt > 1 { format!("run resumed (attempt {attempt})") } else { "run started".to_string() };
            ("run", None, what + &who)
        }
        EventKind::RunFinished { status, error } => ("run", None, format!("run {}{}", status.as_str(), because(error.as_deref()))),
        EventKind::Step { step, status, attempt, error } => ("step", Some(step), step_text(*status, *attempt, error.as_deref())),
        EventKind::Retry { step, attempt, error, delay_ms } => {
            ("retry", Some(step), format!("attempt {attempt} failed: {error}; retrying in {}", duration(*delay_ms)))
        }
        EventKind::Approval { step, approved, by, comment } => {
            ("approval", Some(step), approval_text(*approved, by.as_deref(), comment.as_deref()))
        }
        EventKind::Operator { action, by, detail } => {
            ("operator", None, format!("{action} by {by}{}", detail.as_deref().map_or(String::new(), |d| format!(" ({d})"))))
        }
        EventKind::Note { step, text, .. } => ("note", step.as_deref(), format!("note: {text}")),
        EventKind::Invariant { name, step, when, held, overridden, saw } => {
            let verdict = match (held, overridden) {
                (true, _) => "held",
                (false, true) => "did NOT hold (overridden by the operator)",
                (false, false) => "did NOT hold",
            };
            ("invariant", Some(step), format!("invariant `{name}` checked {when} it: {verdict}; saw {saw}"))
        }
    }
}

fn step_text(status: StepStatus, attempt: u32, error: Option<&str>) -> String {
    let nth = if attempt > 1 { format!(" (attempt {attempt})") } else { String::new() };
    match status {
        StepStatus::Running => format!("started{nth}"),
        StepStatus::Waiting => "waits for approval".to_string(),
        StepStatus::Pending => "back to pending".to_string(),
        other => format!("{}{nth}{}", other.as_str(), because(error)),
    }
}

fn approval_text(approved: Option<bool>, by: Option<&str>, comment: Option<&str>) -> String {
    let by = by.unwrap_or("unknown");
    match approved {
        // The request's comment is the question asked.
        None => format!("approval requested{}", because(comment)),
        Some(true) => format!("approved by {by}{}", because(comment)),
        Some(false) => format!("rejected by {by}{}", because(comment)),
    }
}

/// `: why`, or nothing.
fn because(why: Option<&str>) -> String {
    why.filter(|w| !w.is_empty()).map_or(String::new(), |w| format!(": {w}"))
}

/// Who did what: starts and resumes, approval decisions, operator actions.
pub(crate) fn acts(events: &[Event]) -> Vec<Act> {
    let mut acts: Vec<Act> = Vec::new();
    for e in events {
        let (by, action, detail) = match &e.kind {
            EventKind::RunStarted { attempt, by: Some(by) } => {
                (by, if *attempt > 1 { format!("resumed (attempt {attempt})") } else { "started".into() }, None)
            }
            EventKind::Approval { step, approved: Some(ok), by: Some(by), comment } => {
                let verdict = if *ok { "approved" } else { "rejected" };
                // Decided while the run was halted: `phoenix approve` logged the decision
                // then, the resume applied it now. One act, at the time it was decided.
                let logged = acts.iter_mut().find(|a| {
                    a.by == *by
                        && a.action == format!("approval {verdict}")
                        && a.detail.as_deref().is_some_and(|d| phoenix_engine::exec::decided::detail_is_step(d, step))
                });
                if let Some(a) = logged {
                    a.action = format!("{verdict} {step}");
                    a.detail.clone_from(comment);
                    continue;
                }
                (by, format!("{verdict} {step}"), comment.clone())
            }
            EventKind::Operator { action, by, detail } => (by, action.clone(), detail.clone()),
            _ => continue,
        };
        acts.push(Act { at: e.at, by: by.clone(), action, detail });
    }
    acts
}
