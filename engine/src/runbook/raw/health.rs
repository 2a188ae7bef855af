//! The health part of a runbook as written: signals, their weight rules, and levels.

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

use phoenix_plugins::duration::Dur;

use super::{Cond, RawRetry};

/// A health signal: a probe and the weight its outcome contributes to the score.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSignal {
    /// The probe action (`http`, `postgres.replication_lag`, `exec`, …).
    pub uses: String,
    /// The probe's inputs.
    #[serde(default)]
    pub with: Option<Value>,
    /// Weight rules: the first whose `when` holds wins; the last has no `when` and is the
    /// fallback, also taken when the probe fails.
    pub weight: Vec<RawWeightRule>,
    /// Per-attempt timeout of the probe.
    #[serde(default)]
    pub timeout: Option<Dur>,
    /// Retry policy of the probe.
    #[serde(default)]
    pub retry: Option<RawRetry>,
    /// What the signal measures, for people.
    #[serde(default)]
    pub description: Option<String>,
    /// The observer's own check (can this machine reach a reference it trusts?), not a
    /// measure of production: when it fails, the evaluation is `unknown` and nothing acts.
    /// Its weight is not added to the score.
    #[serde(default)]
    pub vantage: bool,
}

/// A weight rule of a signal.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawWeightRule {
    /// An expression over the probe's `outputs` (and `status`); omitted on the fallback.
    #[serde(default)]
    pub when: Option<Cond>,
    /// The weight this outcome adds to the score.
    pub weight: f64,
}

/// A level: what the score calls for.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawLevel {
    /// The level's name (`no_action`, `dr_failover`, …).
    pub name: String,
    /// The highest score that takes this level; the last level has none.
    #[serde(default)]
    pub max: Option<f64>,
    /// Consecutive evaluations the level must hold before it is confirmed (like
    /// Prometheus `for:`); until then the confirmed level is the previous one.
    #[serde(rename = "for", default)]
    pub hold: Option<u32>,
    /// What the level means, for people.
    #[serde(default)]
    pub description: Option<String>,
}
