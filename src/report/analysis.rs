//! What the analysis saw and decided: the notes the `llm` and `incident.analyze` steps write
//! to the event log, and the `score` step's table of signals.

use phoenix_engine::state::EventKind;
use serde::Serialize;
use serde_json::{Map, Value};

use super::Time;
use super::run::{Event, StepReport};

/// One analysis: who decided (a model, its fallback, or the built-in rules) and what.
#[derive(Debug, Serialize)]
pub(crate) struct Analysis {
    pub(crate) at: Time,
    pub(crate) step: Option<String>,
    /// `llm`, `fallback` (the step's own decision, when the model gave none) or `rules`.
    pub(crate) source: String,
    pub(crate) model: Option<String>,
    pub(crate) provider: Option<String>,
    pub(crate) latency_ms: Option<u64>,
    pub(crate) requests: Option<u64>,
    pub(crate) prompt_sha256: Option<String>,
    pub(crate) fallback_reason: Option<String>,
    /// The model's reply as received (secrets redacted).
    pub(crate) raw: Option<String>,
    /// `root_cause_category`, `confidence`, `recommended_action`, `evidence`, `reasoning`…
    pub(crate) decision: Map<String, Value>,
}

/// The analyses noted in the run's events, in time order.
pub(crate) fn analyses(events: &[Event]) -> Vec<Analysis> {
    events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Note { step, data: Some(data), .. } => from_note(e.at, step.clone(), data),
            _ => None,
        })
        .collect()
}

fn from_note(at: Time, step: Option<String>, data: &Value) -> Option<Analysis> {
    let text = |k: &str| data[k].as_str().map(str::to_string);
    let analysis = |source: String, decision: &Map<String, Value>| Analysis {
        at,
        step: step.clone(),
        source,
        model: text("model"),
        provider: text("provider"),
        latency_ms: data["latency_ms"].as_u64(),
        requests: data["requests"].as_u64(),
        prompt_sha256: text("prompt_sha256"),
        fallback_reason: text("fallback_reason"),
        raw: text("raw"),
        decision: decision.clone(),
    };
    // The `llm` action notes its metadata with the decision inside; `incident.analyze`
    // notes the decision itself. Other notes (a DNS record before its change…) are not analyses.
    match (data["decision"].as_object(), data.as_object()) {
        (Some(decision), _) => Some(analysis(text("source").unwrap_or_else(|| "llm".into()), decision)),
        (None, Some(decision)) if decision.contains_key("recommended_action") => {
            Some(analysis(text("analyzer").unwrap_or_else(|| "rules".into()), decision))
        }
        _ => None,
    }
}

/// The `score` step's outputs: each signal's part, the total and the level.
#[derive(Debug, Serialize)]
pub(crate) struct Score {
    pub(crate) step: String,
    pub(crate) total: Value,
    pub(crate) level: Option<String>,
    /// The level the total gives, before `for:` confirms it.
    pub(crate) raw_level: Option<String>,
    pub(crate) streak: Option<u64>,
    pub(crate) signals: Vec<Signal>,
}

/// One signal of the score.
#[derive(Debug, Serialize)]
pub(crate) struct Signal {
    pub(crate) name: String,
    /// How its probe ended.
    pub(crate) status: String,
    /// Its weight, which is what it adds to the total.
    pub(crate) weight: Value,
    pub(crate) error: Option<String>,
}

/// The score, when the run has a `score` step that produced one.
pub(crate) fn score(steps: &[StepReport]) -> Option<Score> {
    let step = steps.iter().find(|s| (s.role.as_deref() == Some("score") || s.id == "score") && s.outputs["total"].is_number())?;
    let out = &step.outputs;
    let signals = out["signals"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(name, s)| Signal {
            name: name.clone(),
            status: s["status"].as_str().unwrap_or("").to_string(),
            weight: s["weight"].clone(),
            error: s["error"].as_str().map(str::to_string),
        })
        .collect();
    Some(Score {
        step: step.id.clone(),
        total: out["total"].clone(),
        level: out["level"].as_str().map(str::to_string),
        raw_level: out["raw_level"].as_str().map(str::to_string),
        streak: out["streak"].as_u64(),
        signals,
    })
}
