//! The runbook exactly as written: mirrors the YAML, one type per mapping.
//!
//! These types are read from the spanned YAML tree, checked, and compiled once into
//! [`crate::runbook::Runbook`]; nothing after compilation touches them. Their doc comments
//! are the descriptions editors show through `schemas/runbook.schema.json`.

use std::fmt;

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

use phoenix_plugins::duration::Dur;

mod drill;
mod health;
mod invariant;
mod retry;
mod secret;
pub use drill::RawDrill;
pub use health::{RawLevel, RawSignal, RawWeightRule};
pub use invariant::{RawCheck, RawInvariant};
pub use retry::{Backoff, Jitter, RawDefaults, RawRetry};
pub use secret::RawSecret;

/// A Phoenix runbook: parameters, health signals, levels and a DAG of steps.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "Phoenix runbook")]
pub struct RawRunbook {
    /// The format version. Always `1`.
    pub version: u32,
    /// The runbook's name: `[a-z0-9][a-z0-9_-]*`. Level history and locks are kept under it.
    pub name: String,
    /// What the runbook does, for people.
    #[serde(default)]
    pub description: Option<String>,
    /// Inputs, given with `--param name=value`. A param without `default` is required.
    #[serde(default)]
    pub params: IndexMap<String, RawParam>,
    /// Values rendered once, in order, when the run starts. A var may use params, `run`,
    /// `env` and the vars above it; never secrets (vars are stored).
    #[serde(default)]
    pub vars: IndexMap<String, Value>,
    /// Secrets, resolved only when a step renders them; never stored, never logged.
    #[serde(default)]
    pub secrets: IndexMap<String, RawSecret>,
    /// One unfinished run per lock key, across runbooks. A template of params and vars.
    #[serde(default)]
    pub lock: Option<String>,
    /// How many steps run at once (default 8).
    #[serde(default)]
    pub max_parallel: Option<u32>,
    /// Settings every step gets unless it sets its own.
    #[serde(default)]
    pub defaults: Option<RawDefaults>,
    /// Health signals: probe steps that all run in parallel, each mapped to a weight.
    #[serde(default)]
    pub signals: IndexMap<String, RawSignal>,
    /// Score thresholds, ascending: a score at or below `max` takes the level; the last
    /// level has no `max`.
    #[serde(default)]
    pub levels: Vec<RawLevel>,
    /// The DAG: a map keyed by step id. File order is display order.
    #[serde(default)]
    pub steps: IndexMap<String, RawStep>,
    /// Steps run when the run fails (notify, roll back). Same schema as `steps`; they may
    /// read any step's status and outputs.
    #[serde(default)]
    pub on_failure: IndexMap<String, RawStep>,
    /// The run's own outputs, rendered when it succeeds.
    #[serde(default)]
    pub outputs: IndexMap<String, Value>,
    /// Safety rules checked before and after the steps they name: a read-only check and a
    /// condition (`one_active_region: { check: …, that: …, around: [switch_dns] }`).
    #[serde(default)]
    pub invariants: IndexMap<String, RawInvariant>,
    /// How long a decision taken from the signals (the `score` step, or a child run's) stays
    /// good (default 15m): `phoenix resume` of a run that decided longer ago evaluates the
    /// signals again first and stops if the level no longer calls for the action.
    #[serde(default)]
    pub decision_ttl: Option<Dur>,
    /// Steps run by `phoenix resume RUN --abort` (leave the primary serving, clean up what
    /// was built). Same schema as `steps`; they may read any step's status and outputs.
    #[serde(default)]
    pub on_abort: IndexMap<String, RawStep>,
    /// What `phoenix drill` changes: params overlaid for a drill, and production targets it
    /// must never touch.
    #[serde(default)]
    pub drill: Option<RawDrill>,
}

/// The top-level keys, in schema order (the loader reads sections one by one).
pub(crate) const TOP_LEVEL_KEYS: &[&str] = &[
    "version",
    "name",
    "description",
    "params",
    "vars",
    "secrets",
    "lock",
    "max_parallel",
    "defaults",
    "signals",
    "levels",
    "steps",
    "on_failure",
    "outputs",
    "invariants",
    "decision_ttl",
    "on_abort",
    "drill",
];

/// A param's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, JsonSchema, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ParamType {
    /// Text (the default).
    #[default]
    String,
    /// A whole number.
    Int,
    /// A number.
    Float,
    /// `true` or `false`.
    Bool,
    /// A list; on the command line, JSON (`["a","b"]`) or comma-separated.
    List,
    /// A mapping; on the command line, JSON.
    Object,
}

impl fmt::Display for ParamType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ParamType::String => "string",
            ParamType::Int => "int",
            ParamType::Float => "float",
            ParamType::Bool => "bool",
            ParamType::List => "list",
            ParamType::Object => "object",
        })
    }
}

/// An input of the runbook.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawParam {
    /// `string` (default), `int`, `float`, `bool`, `list` or `object`.
    #[serde(rename = "type", default)]
    pub ty: ParamType,
    /// The value when `--param` does not give one. Without a default the param is required.
    #[serde(default)]
    pub default: Option<Value>,
    /// The only values allowed.
    #[serde(rename = "enum", default)]
    pub choices: Option<Vec<Value>>,
    /// What the param means.
    #[serde(default)]
    pub description: Option<String>,
    /// Only an operator may set it (`phoenix run --param`, serve.yaml's alert routes): the
    /// HTTP API refuses a start that gives it (403). For values that decide what code runs
    /// or where data and credentials go: a tools directory, a terraform directory, an
    /// endpoint.
    #[serde(default)]
    pub operator_only: bool,
}

/// One step id or a list of them.
#[derive(Debug, Clone, Default, PartialEq, JsonSchema)]
#[schemars(untagged)]
pub enum Needs {
    /// No needs.
    #[default]
    #[schemars(skip)]
    None,
    /// One step id.
    One(String),
    /// Several step ids.
    Many(Vec<String>),
}

impl Needs {
    /// The ids, in order.
    pub fn ids(&self) -> Vec<&str> {
        match self {
            Needs::None => vec![],
            Needs::One(s) => vec![s.as_str()],
            Needs::Many(v) => v.iter().map(String::as_str).collect(),
        }
    }
    /// Whether the value was a single string (its path has no index).
    pub fn is_one(&self) -> bool {
        matches!(self, Needs::One(_))
    }
}

impl<'de> Deserialize<'de> for Needs {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Needs;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a step id or a list of step ids")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Needs, E> {
                Ok(Needs::One(s.to_string()))
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<Needs, E> {
                Ok(Needs::None)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Needs, A::Error> {
                let mut out = Vec::new();
                while let Some(s) = seq.next_element::<String>()? {
                    out.push(s);
                }
                Ok(Needs::Many(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// An expression: a string such as `"params.dry_run == false"`, or a literal boolean.
#[derive(Debug, Clone, PartialEq, JsonSchema)]
#[schemars(untagged)]
pub enum Cond {
    /// A literal.
    Bool(bool),
    /// A minijinja expression (no `{{ }}` needed).
    Expr(String),
}

impl<'de> Deserialize<'de> for Cond {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Cond;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an expression such as \"params.dry_run == false\", or true/false")
            }
            fn visit_bool<E: serde::de::Error>(self, b: bool) -> Result<Cond, E> {
                Ok(Cond::Bool(b))
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Cond, E> {
                Ok(Cond::Expr(s.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

/// When a step runs, given how its needs ended (the names are Airflow's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, JsonSchema, serde::Serialize, Hash)]
#[serde(rename_all = "snake_case")]
pub enum TriggerRule {
    /// Every need succeeded (or failed with `continue_on_error`).
    #[default]
    AllSuccess,
    /// No need failed: a need skipped by its `when` counts as done; one not run because a
    /// need of its own failed (`upstream_failed`) counts as failed.
    NoneFailed,
    /// Every need ended, whatever the outcome.
    AllDone,
}

/// One step of the DAG.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawStep {
    /// The action: a built-in (`noop`, `sleep`, `assert`, `approval`, `runbook`) or a plugin
    /// (`exec`, `http`, …). `phoenix plugins` lists them.
    pub uses: String,
    /// The action's inputs; every string may hold templates.
    #[serde(default)]
    pub with: Option<Value>,
    /// Step ids that must finish first. By default a step runs only when all its needs
    /// succeeded; otherwise it is skipped, and so are its dependents.
    #[serde(default)]
    pub needs: Needs,
    /// An expression; false → the step is skipped.
    #[serde(default)]
    pub when: Option<Cond>,
    /// Per-attempt timeout.
    #[serde(default)]
    pub timeout: Option<Dur>,
    /// Retry policy (overrides `defaults.retry` field by field).
    #[serde(default)]
    pub retry: Option<RawRetry>,
    /// A failure is recorded but counts as success for dependents.
    #[serde(default)]
    pub continue_on_error: Option<bool>,
    /// When the step runs, given how its needs ended: `all_success` (default: every need
    /// succeeded), `none_failed` (needs succeeded or were skipped: for steps after an
    /// optional gate), `all_done` (every need ended, however: for cleanup).
    #[serde(default)]
    pub trigger_rule: Option<TriggerRule>,
    /// What running it does to the world: `read`, `idempotent` (running it twice is
    /// harmless), `mutating` or `irreversible`. The action's own effect by default; a runbook
    /// may raise it, not lower it (but for `exec`, `http`, `postgres.query` and `runbook`,
    /// whose effect is whatever their inputs do). A step found running after a crash runs
    /// again only if `read` or `idempotent`; otherwise `phoenix resume` asks for `--retry
    /// STEP` or `--skip STEP`.
    #[serde(default)]
    pub effect: Option<phoenix_plugins::Effect>,
    /// The older spelling: `idempotent: true` is `effect: idempotent`, `false` is
    /// `effect: mutating` (`validate` notes it).
    #[serde(default)]
    pub idempotent: Option<bool>,
    /// An expression giving a list (or a literal list); the step runs once per `item`.
    #[serde(default)]
    pub for_each: Option<Value>,
    /// How many `for_each` items run at once (default: the runbook's `max_parallel`).
    #[serde(default)]
    pub max_parallel: Option<u32>,
    /// What the step does, for people.
    #[serde(default)]
    pub description: Option<String>,
}
