//! The stale-decision guard: a run whose action was decided from the signals (its `score`
//! step, or a child run's) and is resumed longer than `decision_ttl` after that decision
//! evaluates the signals again before anything acts, and shows then and now side by side.
//! A level now lower than then (or `unknown`: the observer cannot see) stops the resume
//! unless the operator confirms (`--confirm --reason`) or aborts (`--abort`).

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{Value, json};

use super::engine::{Engine, RunError};
use super::prepare::now_ms;
use super::vantage::UNKNOWN;
use crate::runbook::{Role, Runbook};
use crate::state::{EventKind, RunRecord, StepRecord, StepStatus};

/// A decision taken from the signals: when, what the score said, and the runbook and params
/// that evaluate the same signals again.
struct Decision {
    /// When the score step ended (ms).
    at: u64,
    /// The score step's outputs then.
    then: Value,
    /// Whose signals: this run, or `child run ID (step S)`.
    source: String,
    /// The runbook holding the signals and the levels (the run's own, or the child's).
    rb: Runbook,
    /// The params the signals were evaluated with.
    params: Value,
}

/// What the guard lets a resume do.
pub(crate) enum Guard {
    /// Go on, recording these events first (the re-evaluation, the operator's confirmation).
    Go(Vec<EventKind>),
    /// Stopped: the run stays halted (the re-evaluation is written), saying why.
    Stop(String),
}

/// What the guard found.
pub(crate) enum Verdict {
    /// Nothing to check: no decision from signals, nothing of the main plan left to run, or
    /// a decision younger than `decision_ttl`.
    Fresh,
    /// The signals were evaluated again and still call for the action (level now ≥ then):
    /// the event to record, the lines to show.
    Holds { event: EventKind, lines: Vec<String> },
    /// The level now is lower than then, or unknown: nothing may act without the operator.
    Stale { event: EventKind, lines: Vec<String>, then: String, now: String },
}

impl Engine {
    /// The guard of a resume (`records` as the resume would leave them): a stale decision the
    /// signals no longer support stops it, unless `opts.confirm` (recorded with `by`).
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn guard_decision(
        &self,
        id: &str,
        run: &RunRecord,
        seen: &crate::state::Seen,
        rb: &Runbook,
        records: &HashMap<String, StepRecord>,
        opts: &super::engine::ResumeOptions,
        by: &str,
    ) -> Result<Guard, RunError> {
        match self.check_decision(run, rb, records).await? {
            Verdict::Fresh => {
                if opts.confirm {
                    self.show(
                        id,
                        &[unconfirmed(id, "is not stale (younger than its decision_ttl, or nothing of the main plan is left to act)")],
                    );
                }
                Ok(Guard::Go(Vec::new()))
            }
            Verdict::Holds { event, mut lines } => {
                if opts.confirm {
                    lines.push(unconfirmed(id, "still holds (the signals call for the same level or a higher one)"));
                }
                self.show(id, &lines);
                Ok(Guard::Go(vec![event]))
            }
            Verdict::Stale { event, lines, then, now } if !opts.confirm => {
                let why = ask_operator(id, &lines, &then, &now);
                self.halt_stale(id, run.clone(), seen, vec![event], &why, opts.takeover_from.as_deref())?;
                Ok(Guard::Stop(why))
            }
            Verdict::Stale { event, lines, then, now } => {
                self.show(id, &lines);
                let reason = opts.reason.clone().unwrap_or_default();
                let detail = format!("went on although the decision was stale (then `{then}`, now `{now}`): {reason}");
                let confirmed = EventKind::Operator { action: "confirm-stale-decision".into(), by: by.to_string(), detail: Some(detail) };
                Ok(Guard::Go(vec![event, confirmed]))
            }
        }
    }

    /// Checks a run about to be resumed (`records` as the resume would leave them).
    pub(crate) async fn check_decision(
        &self,
        run: &RunRecord,
        rb: &Runbook,
        records: &HashMap<String, StepRecord>,
    ) -> Result<Verdict, RunError> {
        let to_run = rb.main.steps.iter().any(|s| {
            matches!(s.role, Role::Action)
                && records.get(&s.id).is_some_and(|r| matches!(r.status, StepStatus::Pending | StepStatus::Waiting | StepStatus::Running))
        });
        if !to_run {
            return Ok(Verdict::Fresh);
        }
        let Some(d) = self.decision(run, rb, records)? else { return Ok(Verdict::Fresh) };
        let age = Duration::from_millis(now_ms().saturating_sub(d.at));
        if age <= rb.decision_ttl {
            return Ok(Verdict::Fresh);
        }
        let now = match self.evaluate_signals(&d.rb, &string_params(&d.params), false).await {
            Ok(v) => v,
            // The probes could not be evaluated at all: the observer cannot see (fail safe).
            Err(e) => json!({ "level": UNKNOWN, "degraded": format!("the signals could not be evaluated again: {e}") }),
        };
        let then_level = d.then["level"].as_str().unwrap_or(UNKNOWN).to_string();
        let now_level = now["level"].as_str().unwrap_or(UNKNOWN).to_string();
        let idx = |l: &str| d.rb.levels.iter().position(|x| x.name == l);
        let holds = match (idx(&then_level), idx(&now_level)) {
            (_, None) => false,
            (None, Some(_)) => true,
            (Some(t), Some(n)) => n >= t,
        };
        let ttl = phoenix_plugins::duration::Dur(rb.decision_ttl);
        let shown =
            if age < Duration::from_secs(60) { Duration::from_millis(age.as_millis() as u64) } else { Duration::from_secs(age.as_secs()) };
        let old = phoenix_plugins::duration::Dur(shown);
        let mut lines =
            vec![format!("the decision ({}) is {old} old, past decision_ttl {ttl}: the signals were evaluated again", d.source)];
        lines.extend(table(&d.rb, &d.then, &now));
        let verdict = if holds { "holds" } else { "stale" };
        let data = json!({
            "kind": "decision_reevaluated",
            "verdict": verdict,
            "source": d.source,
            "decided_at": d.at,
            "age_ms": age.as_millis() as u64,
            "decision_ttl_ms": rb.decision_ttl.as_millis() as u64,
            "then": summary(&d.then),
            "now": summary(&now),
        });
        let text = lines.join("\n");
        let event = EventKind::Note { step: None, text, data: Some(data) };
        Ok(if holds { Verdict::Holds { event, lines } } else { Verdict::Stale { event, lines, then: then_level, now: now_level } })
    }

    /// The run's latest decision from signals: its own `score` step, or the score of a child
    /// run one of its `runbook` steps started.
    fn decision(&self, run: &RunRecord, rb: &Runbook, records: &HashMap<String, StepRecord>) -> Result<Option<Decision>, RunError> {
        let store = &self.inner.store;
        let mut best: Option<Decision> = None;
        let mut consider = |d: Decision| {
            if best.as_ref().is_none_or(|b| d.at > b.at) {
                best = Some(d);
            }
        };
        if let Some((at, then)) = records.get(crate::validate::defs::SCORE).and_then(decided) {
            if !rb.signals.is_empty() {
                consider(Decision { at, then, source: "score".into(), rb: rb.clone(), params: run.params.clone() });
            }
        }
        for s in rb.main.steps.iter().filter(|s| s.uses == "runbook") {
            let Some(child) = records.get(&s.id).and_then(|r| r.child_run.clone()) else { continue };
            let Some(score) = store.step(&child, crate::validate::defs::SCORE)? else { continue };
            let Some((at, then)) = decided(&score) else { continue };
            let (Some(crun), Some(text)) = (store.run(&child)?, store.source(&child)?) else { continue };
            let Some(crb) = crate::runbook::load_str(&text, std::path::Path::new(&crun.file)).runbook else { continue };
            consider(Decision { at, then, source: format!("child run {child} (step {})", s.id), rb: crb, params: crun.params });
        }
        Ok(best)
    }
}

/// When a score step decided and what it said: it succeeded with outputs.
fn decided(r: &StepRecord) -> Option<(u64, Value)> {
    match (r.status, r.finished_at, &r.outputs) {
        (StepStatus::Succeeded, Some(at), Some(o)) => Some((at, o.clone())),
        _ => None,
    }
}

/// A run's params as `--param` text: strings as they are, anything else as JSON.
fn string_params(params: &Value) -> Vec<(String, String)> {
    params.as_object().into_iter().flatten().map(|(k, v)| (k.clone(), v.as_str().map_or_else(|| v.to_string(), str::to_string))).collect()
}

/// What is recorded of a score: each signal's weight and status, the total, the level.
fn summary(score: &Value) -> Value {
    let signals: serde_json::Map<String, Value> = score["signals"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), json!({ "weight": v["weight"], "status": v["status"] })))
        .collect();
    json!({ "total": score["total"], "level": score["level"], "signals": signals, "degraded": score.get("degraded") })
}

/// Then and now side by side: each signal's weight (and how its probe ended), the total,
/// the level.
fn table(rb: &Runbook, then: &Value, now: &Value) -> Vec<String> {
    let cell = |v: &Value, name: &str| {
        let s = &v["signals"][name];
        match (s["weight"].as_f64(), s["status"].as_str()) {
            (Some(w), Some("succeeded")) => num(w),
            (Some(w), Some(st)) => format!("{} ({st})", num(w)),
            _ => "-".into(),
        }
    };
    let mut rows: Vec<(String, String, String)> = vec![("".into(), "then".into(), "now".into())];
    for sig in &rb.signals {
        rows.push((sig.name.clone(), cell(then, &sig.name), cell(now, &sig.name)));
    }
    let total = |v: &Value| v["total"].as_f64().map_or_else(|| "-".into(), num);
    rows.push(("total".into(), total(then), total(now)));
    let level = |v: &Value| v["level"].as_str().unwrap_or(UNKNOWN).to_string();
    rows.push(("level".into(), level(then), level(now)));
    let w0 = rows.iter().map(|r| r.0.chars().count()).max().unwrap_or(0);
    let w1 = rows.iter().map(|r| r.1.chars().count()).max().unwrap_or(0);
    let mut out: Vec<String> = rows.iter().map(|(a, b, c)| format!("  {a:<w0$}  {b:<w1$}  {c}").trim_end().to_string()).collect();
    if let Some(why) = now["degraded"].as_str() {
        out.push(format!("  now unknown: {why}"));
    }
    out
}

/// `2`, not `2.0`.
fn num(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 { format!("{}", x as i64) } else { format!("{x}") }
}

/// `--confirm` given where nothing was stale: said, so an operator does not believe a
/// confirmation was recorded (none is).
fn unconfirmed(id: &str, why: &str) -> String {
    format!("note: --confirm had nothing to confirm: run {id}'s decision {why}; no confirmation was recorded")
}

/// The halt of a stale resume: why, then the two ways on.
pub(crate) fn ask_operator(id: &str, lines: &[String], then: &str, now: &str) -> String {
    let why = if now == UNKNOWN {
        format!("the level now is `{UNKNOWN}` (the observer cannot see production), the decision was `{then}`")
    } else {
        format!("the level now is `{now}`, lower than `{then}` decided then: it no longer calls for the action")
    };
    format!(
        "{}\n{why}; nothing was run.\n  go on anyway:  phoenix resume {id} --confirm --reason \"…\"\n  or abort (runs its on_abort steps, then the run is cancelled):  phoenix resume {id} --abort --reason \"…\"",
        lines.join("\n")
    )
}
