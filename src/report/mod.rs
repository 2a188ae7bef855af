//! The post-incident report of a run: what ran, when, for how long, with which retries, who
//! decided, what the analysis saw and what changed, for the run and its child runs.
//!
//! ```text
//! status, logs, definitions views (JSON, per run)   RunViews (cmd/report.rs fetches them)
//!   │  run.rs        RunReport: the run, its steps and its events, typed
//!   │  spans.rs      each step's attempt spans: start → end, retries, approval waits
//!   │  timeline.rs   every event in time order, in words; who did what
//!   │  analysis.rs   the analysis notes (llm, incident.analyze) and the score table
//!   │  changes.rs    what the known actions changed (DNS, rows, objects, commands)
//!   ▼
//! Report ── document.rs (headings, tables, lists) ──► markdown.rs | html.rs
//!        └─ gantt.rs (the SVG chart)
//! ```

pub(crate) mod analysis;
pub(crate) mod changes;
mod document;
mod drill;
mod gantt;
pub(crate) mod html;
pub(crate) mod markdown;
pub(crate) mod run;
pub(crate) mod spans;
mod time;
pub(crate) mod timeline;
mod xml;

use serde::Serialize;
use serde_json::Value;

pub(crate) use run::RunReport;
pub(crate) use time::{Time, now};

/// What a report is made from: one run's views, as `phoenix status`, `phoenix logs` and the
/// control socket's `definitions` give them, and its child runs' by the step that started them.
pub(crate) struct RunViews {
    pub(crate) status: Value,
    pub(crate) logs: Value,
    pub(crate) definitions: Value,
    pub(crate) children: Vec<(String, RunViews)>,
}

/// The report: the top run (its child runs inside it) and the time the chart spans.
#[derive(Serialize)]
pub(crate) struct Report {
    /// When the report was made.
    pub(crate) generated_at: Time,
    /// The top run's start: offsets (`+1.5s`) count from it.
    pub(crate) start: Time,
    /// The last thing recorded, or now while a run is in progress.
    pub(crate) end: Time,
    pub(crate) run: RunReport,
}

impl Report {
    /// Builds the report from the views; `now` ends the chart of a run still in progress.
    pub(crate) fn build(views: &RunViews, now: Time) -> Result<Report, String> {
        let run = RunReport::build(views, None)?;
        let start = run.started_at.unwrap_or(now);
        let end = if run.in_progress() { now } else { run.last_time().unwrap_or(start) };
        Ok(Report { generated_at: now, start, end: end.max(start), run })
    }
}
