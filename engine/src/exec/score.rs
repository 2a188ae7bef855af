//! The implicit `score` step: weights from the probes, the total, and the level with `for:`.

use serde_json::{Map, Value, json};

use super::context::Context;
use crate::runbook::{Cond, Runbook};
use crate::state::LevelHistory;
use crate::template::{check_expression, eval_condition, to_mj};

/// One signal's outcome.
fn signal_weight(rb: &Runbook, idx: usize, view: Option<minijinja::Value>, ctx: &Context) -> (f64, Value) {
    let sig = &rb.signals[idx];
    let view: Value =
        view.and_then(|v| serde_json::to_value(&v).ok()).unwrap_or(json!({"status": "failed", "error": "the probe did not run"}));
    let status = view["status"].as_str().unwrap_or("failed").to_string();
    let outputs = view.get("outputs").cloned().unwrap_or(Value::Null);
    let error = view.get("error").cloned().unwrap_or(Value::Null);
    let mut rule_error = None;
    let mut weight = sig.rules.last().map_or(0.0, |r| r.weight);
    {
        let mut base = ctx.value(None);
        let extra = to_mj(&json!({ "outputs": outputs, "status": status, "error": error }));
        base = super::context::map(
            ["params", "vars", "env", "run"]
                .into_iter()
                .filter_map(|k| base.get_attr(k).ok().map(|v| (k, v)))
                .chain(["outputs", "status", "error"].into_iter().map(|k| (k, extra.get_attr(k).unwrap_or_default())))
                .collect(),
        );
        // A failed probe is weighed only by rules that ask about failure (they read `status`
        // or `error`); a rule written for an answer never lends it a low weight by accident.
        let tried = sig.rules.iter().filter(|r| status == "succeeded" || r.when.as_ref().is_none_or(reads_outcome));
        for rule in tried {
            let holds = match &rule.when {
                None => Ok(true),
                Some(Cond::Bool(b)) => Ok(*b),
                Some(Cond::Expr(e)) => eval_condition(e, &base),
            };
            match holds {
                Ok(true) => {
                    weight = rule.weight;
                    break;
                }
                Ok(false) => {}
                Err(e) => {
                    // A rule that cannot be evaluated (an output is missing) does not match.
                    rule_error.get_or_insert(e);
                }
            }
        }
    }
    let mut detail = json!({ "weight": weight, "status": status, "outputs": outputs, "error": error });
    if let Some(e) = rule_error {
        detail["rule_error"] = Value::String(e);
    }
    (weight, detail)
}

/// Whether a rule's `when` reads the probe's `status` or `error` (how it ended).
pub(crate) fn reads_outcome(when: &Cond) -> bool {
    match when {
        Cond::Bool(_) => false,
        Cond::Expr(e) => check_expression(e).is_ok_and(|refs| refs.iter().any(|r| r.root == "status" || r.root == "error")),
    }
}

/// The level a score takes: the first whose `max` is at least the score.
pub(crate) fn level_for(rb: &Runbook, total: f64) -> usize {
    rb.levels.iter().position(|l| l.max.is_none_or(|m| total <= m)).unwrap_or(rb.levels.len().saturating_sub(1))
}

/// Computes the score outputs and the next level history.
pub(crate) fn evaluate(rb: &Runbook, ctx: &Context, history: Option<&LevelHistory>, now: u64) -> (Value, LevelHistory) {
    let mut total = 0.0;
    let mut signals = Map::new();
    for (i, sig) in rb.signals.iter().enumerate() {
        let (w, mut detail) = signal_weight(rb, i, ctx.steps.get(&sig.name), ctx);
        if sig.vantage {
            // The observer's own check measures this machine, not production.
            detail["vantage"] = Value::Bool(true);
        } else {
            total += w;
        }
        signals.insert(sig.name.clone(), detail);
    }
    let raw_idx = level_for(rb, total);
    let raw = rb.levels[raw_idx].name.clone();
    let prev = history.cloned().unwrap_or_default();
    if let Some(why) = super::vantage::degraded(rb, &signals) {
        return unknown(rb, total, raw, signals, why, prev, now);
    }
    let streak = if prev.raw_level.as_deref() == Some(raw.as_str()) { prev.streak + 1 } else { 1 };
    // `for:` holds a level back until it has been seen that many times in a row; a level
    // below the confirmed one (or without `for`) is taken at once.
    let prev_idx = prev.level.as_deref().and_then(|n| rb.levels.iter().position(|l| l.name == n));
    let confirmed_idx = if streak >= rb.levels[raw_idx].hold || prev_idx.is_some_and(|p| raw_idx <= p) {
        raw_idx
    } else {
        prev_idx.map_or(0, |p| p.min(raw_idx)).max(highest_confirmed_below(rb, raw_idx, streak, prev_idx))
    };
    let level = rb.levels[confirmed_idx].name.clone();
    let outputs = json!({
        "total": total,
        "level": level,
        "raw_level": raw,
        "streak": streak,
        "signals": signals,
        "levels": rb.levels.iter().map(|l| json!({"name": l.name, "max": l.max, "for": l.hold})).collect::<Vec<_>>(),
    });
    let next = LevelHistory { raw_level: Some(raw), streak, level: Some(level), total: Some(total), at: now };
    (outputs, next)
}

/// An evaluation the observer cannot trust: level `unknown`, so no level's step starts; the
/// confirmed level stays as it was and the streak toward any level is broken, so `for:`
/// counts only evaluations that saw production.
fn unknown(
    rb: &Runbook,
    total: f64,
    raw: String,
    signals: Map<String, Value>,
    why: String,
    prev: LevelHistory,
    now: u64,
) -> (Value, LevelHistory) {
    let outputs = json!({
        "total": total,
        "level": super::vantage::UNKNOWN,
        "raw_level": raw,
        "streak": 0,
        "degraded": why,
        "last_level": prev.level,
        "signals": signals,
        "levels": rb.levels.iter().map(|l| json!({"name": l.name, "max": l.max, "for": l.hold})).collect::<Vec<_>>(),
    });
    let next = LevelHistory { raw_level: None, streak: 0, level: prev.level, total: prev.total, at: now };
    (outputs, next)
}

/// While a high level waits out its `for`, the levels under it that need no wait apply.
fn highest_confirmed_below(rb: &Runbook, raw_idx: usize, streak: u32, prev_idx: Option<usize>) -> usize {
    (0..raw_idx).rev().find(|&i| rb.levels[i].hold <= streak || prev_idx == Some(i)).unwrap_or(0)
}
