//! One run of the report, typed from its views: the record, its steps, its events, and what
//! the other modules derive from them. Child runs nest inside.

use phoenix_engine::state::EventKind;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::analysis::{self, Analysis, Score};
use super::changes::{self, Change};
use super::spans::{self, Span};
use super::timeline::{self, Act, Entry};
use super::{RunViews, Time};

/// A run, as `phoenix status RUN --output json` shows it, with what the report adds.
#[derive(Default, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct RunReport {
    pub(crate) id: String,
    pub(crate) runbook: String,
    /// The runbook's description.
    #[serde(skip_deserializing)]
    pub(crate) description: Option<String>,
    pub(crate) status: String,
    /// How many times it was started: 1 + its resumes.
    pub(crate) attempt: u32,
    pub(crate) started_at: Option<Time>,
    pub(crate) finished_at: Option<Time>,
    pub(crate) error: Option<String>,
    /// Marked running, but the process that ran it is gone.
    pub(crate) process_gone: bool,
    pub(crate) params: Value,
    pub(crate) outputs: Value,
    pub(crate) lock: Option<String>,
    /// The working directory it last started or resumed in.
    pub(crate) dir: Option<String>,
    /// The parent's step that started this run (a `runbook` step).
    #[serde(skip_deserializing)]
    pub(crate) parent_step: Option<String>,
    pub(crate) steps: Vec<StepReport>,
    /// A drill (`phoenix drill`).
    pub(crate) drill: bool,
    /// A drill's RTO, stages and RPO, measured from its records (the status view's `measure`).
    pub(crate) measure: Value,
    /// A drill's teardown: `succeeded`, `failed`, `pending`; none without teardown steps.
    pub(crate) teardown: Option<String>,
    /// Who started, resumed, approved, cancelled…
    #[serde(skip_deserializing)]
    pub(crate) operators: Vec<Act>,
    #[serde(skip_deserializing)]
    pub(crate) timeline: Vec<Entry>,
    #[serde(skip_deserializing)]
    pub(crate) analyses: Vec<Analysis>,
    #[serde(skip_deserializing)]
    pub(crate) score: Option<Score>,
    #[serde(skip_deserializing)]
    pub(crate) changes: Vec<Change>,
    #[serde(skip_deserializing)]
    pub(crate) children: Vec<RunReport>,
    #[serde(skip)]
    pub(crate) events: Vec<Event>,
}

/// A step (or a `for_each` item), as the status view shows it, with its action and spans.
#[derive(Default, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct StepReport {
    pub(crate) id: String,
    /// Its action, from the runbook stored with the run.
    #[serde(skip_deserializing)]
    pub(crate) uses: Option<String>,
    #[serde(skip_deserializing)]
    pub(crate) description: Option<String>,
    /// `action`, `probe`, `score` or `on_failure`.
    #[serde(skip_deserializing)]
    pub(crate) role: Option<String>,
    /// What it does to the world (`read`, `idempotent`, `mutating`, `irreversible`), from the
    /// runbook (the stored text, as this phoenix reads it).
    #[serde(skip_deserializing)]
    pub(crate) effect: Option<String>,
    pub(crate) status: String,
    pub(crate) attempts: u32,
    pub(crate) started_at: Option<Time>,
    pub(crate) finished_at: Option<Time>,
    pub(crate) duration_ms: Option<u64>,
    pub(crate) error: Option<String>,
    pub(crate) skip: Option<String>,
    /// For `upstream_failed`: the failed step it comes from.
    pub(crate) upstream: Option<String>,
    /// Why its effect is uncertain (stopped mid-way, not idempotent); resume asks first.
    #[serde(default)]
    pub(crate) uncertain: Option<String>,
    pub(crate) approval: Value,
    /// A decision in words; on a waiting step, one recorded that a resume will apply.
    #[serde(default)]
    pub(crate) decided: Option<String>,
    pub(crate) child_run: Option<String>,
    /// From start to end of each stretch it ran or waited.
    #[serde(skip_deserializing)]
    pub(crate) spans: Vec<Span>,
    #[serde(skip_serializing)]
    pub(crate) inputs: Value,
    #[serde(skip_serializing)]
    pub(crate) outputs: Value,
}

/// One event of the run's log.
#[derive(Clone)]
pub(crate) struct Event {
    pub(crate) at: Time,
    pub(crate) kind: EventKind,
}

impl RunReport {
    /// Types the views of a run (and of its children) and derives the rest.
    pub(crate) fn build(views: &RunViews, parent_step: Option<&str>) -> Result<RunReport, String> {
        let mut run: RunReport = serde_json::from_value(views.status.clone())
            .map_err(|e| format!("the status of run {} cannot be read: {e}", views.status["id"].as_str().unwrap_or("?")))?;
        run.parent_step = parent_step.map(str::to_string);
        run.description = views.definitions["description"].as_str().map(str::to_string);
        run.events = events(&views.logs);
        let mut spans = spans::by_step(&run.events);
        for step in &mut run.steps {
            let def = step.id.split('[').next().map_or(&Value::Null, |base| &views.definitions["steps"][base]);
            step.uses = def["uses"].as_str().map(str::to_string);
            step.description = def["description"].as_str().map(str::to_string);
            step.role = def["role"].as_str().map(str::to_string);
            step.effect = def["effect"].as_str().map(str::to_string);
            step.spans = spans.remove(&step.id).unwrap_or_default();
            spans::settle(&mut step.spans, &step.status, step.finished_at.or(run.finished_at));
        }
        run.operators = timeline::acts(&run.events);
        run.timeline = timeline::entries(&run.events);
        run.analyses = analysis::analyses(&run.events);
        run.score = analysis::score(&run.steps);
        run.changes = changes::changes(&run.steps);
        run.children = views.children.iter().map(|(step, child)| RunReport::build(child, Some(step))).collect::<Result<_, _>>()?;
        Ok(run)
    }

    /// Whether it or a child run is still going.
    pub(crate) fn in_progress(&self) -> bool {
        (self.status == "running" && !self.process_gone) || self.children.iter().any(RunReport::in_progress)
    }

    /// The latest instant recorded in it or its children.
    pub(crate) fn last_time(&self) -> Option<Time> {
        let own = self.events.iter().map(|e| e.at).chain(self.finished_at);
        own.chain(self.children.iter().filter_map(RunReport::last_time)).max()
    }

    /// Its duration: to its end, or to `now` while it goes on.
    pub(crate) fn duration_ms(&self, now: Time) -> Option<u64> {
        let end = if self.status == "running" { Some(now) } else { self.finished_at.or(self.last_time()) };
        Some(end?.since(self.started_at?))
    }

    /// The child run a step started, if the report has it.
    pub(crate) fn child_of(&self, step: &str) -> Option<&RunReport> {
        self.children.iter().find(|c| c.parent_step.as_deref() == Some(step))
    }
}

/// The events of a logs view, typed; an event of a kind this phoenix does not know is left out.
fn events(logs: &Value) -> Vec<Event> {
    let mut out: Vec<Event> = logs["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| {
            let at = serde_json::from_value(e["at"].clone()).ok()?;
            Some(Event { at, kind: serde_json::from_value(e.clone()).ok()? })
        })
        .collect();
    // In sequence order already; an approval recorded by another process may carry an
    // earlier clock, so order by time, keeping the sequence among equals.
    out.sort_by_key(|e| e.at);
    out
}
