//! The `invariants:` section as written: safety rules checked around the steps they name.

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

use phoenix_plugins::duration::Dur;

/// A safety rule: a read-only check and a condition on what it read, checked before and
/// after each step it is `around` (and on `phoenix resume`). Failing before a step, the step
/// does not start and the run halts; failing after it, the step fails and `on_failure` runs.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawInvariant {
    /// What must hold, for people (shown when it does not).
    #[serde(default)]
    pub description: Option<String>,
    /// What reads the world: an action whose effect is `read` (`route53.get`, `http`,
    /// `postgres.query` with `effect: read`, …).
    pub check: RawCheck,
    /// An expression on the check's `outputs` (and params, vars, run and the steps every
    /// `around` step needs) that must be true: `"outputs.values | length == 1"`.
    pub that: String,
    /// The steps of `steps:` it is checked before and after.
    pub around: Vec<String>,
}

/// The read-only step behind an invariant.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawCheck {
    /// The action. Its effect must be `read`.
    pub uses: String,
    /// The action's inputs; strings may hold templates.
    #[serde(default)]
    pub with: Option<Value>,
    /// For an action whose effect depends on its inputs (`exec`, `http`, `postgres.query`):
    /// `read`, declaring that these inputs only read.
    #[serde(default)]
    pub effect: Option<phoenix_plugins::Effect>,
    /// How long the check may take (default 30s); one that does not answer in time fails.
    #[serde(default)]
    pub timeout: Option<Dur>,
}
