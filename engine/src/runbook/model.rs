//! The compiled runbook: checked, with typed step ids and the DAG built once.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use indexmap::IndexMap;
use serde_json::Value;

pub use super::raw::{Backoff, Cond, ParamType, TriggerRule};
use crate::dag::Dag;

/// A step's index in its [`Plan`].
pub type StepId = usize;

/// A checked runbook, ready to run.
#[derive(Debug, Clone)]
pub struct Runbook {
    /// The runbook's name.
    pub name: String,
    /// What it does.
    pub description: Option<String>,
    /// The file it was read from.
    pub file: PathBuf,
    /// The text it was read from (stored with each run).
    pub source: Arc<str>,
    /// Inputs.
    pub params: IndexMap<String, Param>,
    /// Values rendered when the run starts (template trees), in order.
    pub vars: IndexMap<String, Value>,
    /// Where secrets come from, and where they may go.
    pub secrets: IndexMap<String, SecretSpec>,
    /// The lock key template.
    pub lock: Option<String>,
    /// Steps at once.
    pub max_parallel: usize,
    /// Signal probes, `score`, and the runbook's steps.
    pub main: Plan,
    /// Steps run when the run fails.
    pub on_failure: Plan,
    /// Steps run when an operator aborts the run (`phoenix resume --abort`).
    pub on_abort: Plan,
    /// How long a decision from the signals stays good before a resume evaluates them again.
    pub decision_ttl: Duration,
    /// What `phoenix drill` changes (`drill:`); none: the runbook cannot be drilled.
    pub drill: Option<Drill>,
    /// A drill's teardown steps (`drill.teardown`), run when a drill ends, however it ended.
    pub teardown: Plan,
    /// The health signals, in file order.
    pub signals: Vec<Signal>,
    /// The levels, ascending.
    pub levels: Vec<Level>,
    /// The run's outputs (template trees).
    pub outputs: IndexMap<String, Value>,
    /// Safety rules checked around steps of the main plan, in file order.
    pub invariants: Vec<Invariant>,
}

/// A drill of the runbook: the same steps with `params` overlaid, never touching `protect`.
#[derive(Debug, Clone, Default)]
pub struct Drill {
    /// Params overlaid on the given ones (typed: validation checked them).
    pub params: IndexMap<String, Value>,
    /// Templates of params and vars naming production targets.
    pub protect: Vec<String>,
}

/// A safety rule (`invariants:`): a read-only check and a condition on what it read, checked
/// before and after each step it is around.
#[derive(Debug, Clone)]
pub struct Invariant {
    /// Its name (`resume --override NAME`).
    pub name: String,
    /// What must hold, for people.
    pub description: Option<String>,
    /// The check's action (its effect is `read`).
    pub uses: String,
    /// The check's inputs (a template tree).
    pub with: Value,
    /// How long the check may take.
    pub timeout: Duration,
    /// The expression on `outputs` that must be true.
    pub that: String,
    /// The main-plan steps it guards.
    pub around: Vec<StepId>,
}

impl Runbook {
    /// The invariants around main-plan step `step`, in file order.
    pub fn invariants_around(&self, step: StepId) -> impl Iterator<Item = (usize, &Invariant)> {
        self.invariants.iter().enumerate().filter(move |(_, inv)| inv.around.contains(&step))
    }
}

/// A set of steps and their DAG.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// The steps; a [`StepId`] indexes this.
    pub steps: Vec<Step>,
    /// Who needs whom.
    pub dag: Dag,
}

impl Runbook {
    /// The plan of this kind.
    pub fn plan_of(&self, kind: crate::state::PlanKind) -> &Plan {
        match kind {
            crate::state::PlanKind::Main => &self.main,
            crate::state::PlanKind::OnFailure => &self.on_failure,
            crate::state::PlanKind::OnAbort => &self.on_abort,
            crate::state::PlanKind::Teardown => &self.teardown,
        }
    }
}

impl Plan {
    /// The step with this id string.
    pub fn find(&self, id: &str) -> Option<StepId> {
        self.steps.iter().position(|s| s.id == id)
    }
}

/// An input of the runbook.
#[derive(Debug, Clone)]
pub struct Param {
    /// Its type.
    pub ty: ParamType,
    /// Its default; none means required.
    pub default: Option<Value>,
    /// Allowed values.
    pub choices: Option<Vec<Value>>,
    /// What it means.
    pub description: Option<String>,
    /// Only an operator may set it; the HTTP API may not.
    pub operator_only: bool,
}

/// A secret: where its value comes from, and where steps may send it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretSpec {
    /// Where its value comes from.
    pub source: SecretSource,
    /// The hosts it may be sent to (`api.example.com`, `*.example.com`, `host:port`);
    /// `None`: any.
    pub hosts: Option<Vec<String>>,
    /// Whether it may go over plain `http://` to a host other than the loopback.
    pub allow_http: bool,
}

/// Where a secret's value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// An environment variable.
    Env(String),
    /// A file.
    File(PathBuf),
    /// AWS Secrets Manager.
    AwsSecretsManager {
        /// Where it is and how to reach it.
        at: phoenix_plugins::aws::SecretsManagerRef,
        /// How long reading it may take.
        timeout: std::time::Duration,
    },
    /// A command that prints it (an argv, run without a shell).
    Exec {
        /// The program and its arguments.
        argv: Vec<String>,
        /// How long it may run.
        timeout: std::time::Duration,
    },
}

impl SecretSource {
    /// Where it comes from, for messages (never the value).
    pub fn describe(&self) -> String {
        match self {
            SecretSource::Env(v) => format!("the environment variable {v}"),
            SecretSource::File(p) => format!("the file {}", p.display()),
            SecretSource::AwsSecretsManager { at, .. } => format!("AWS Secrets Manager `{}`", at.id),
            SecretSource::Exec { argv, .. } => format!("the command `{}`", argv.join(" ")),
        }
    }
}

/// What a step is for.
#[derive(Debug, Clone, PartialEq)]
pub enum Role {
    /// A step of the DAG.
    Action,
    /// The probe of signal N (its failures never fail the run).
    Probe(usize),
    /// The implicit `score` step.
    Score,
}

/// How failed attempts are retried.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in all (1 = no retry).
    pub attempts: u32,
    /// How the delay grows.
    pub backoff: Backoff,
    /// The first delay.
    pub delay: Duration,
    /// The longest delay.
    pub max_delay: Duration,
    /// The fraction of each delay that is random (0 = none, 1 = full jitter).
    pub jitter: f64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { attempts: 1, backoff: Backoff::Fixed, delay: Duration::from_secs(1), max_delay: Duration::from_secs(60), jitter: 0.0 }
    }
}

/// One step.
#[derive(Debug, Clone)]
pub struct Step {
    /// Its id.
    pub id: String,
    /// The action.
    pub uses: String,
    /// What it is for.
    pub role: Role,
    /// The action's inputs (a template tree).
    pub with: Value,
    /// What it needs, as ids in the same plan.
    pub needs: Vec<StepId>,
    /// Its condition.
    pub when: Option<Cond>,
    /// Per-attempt timeout.
    pub timeout: Option<Duration>,
    /// Retries.
    pub retry: RetryPolicy,
    /// Whether a failure counts as success for dependents.
    pub continue_on_error: bool,
    /// When it runs, given how its needs ended.
    pub trigger_rule: TriggerRule,
    /// Whether it may be re-run after a crash (its effect is `read` or `idempotent`).
    pub idempotent: bool,
    /// What running it does to the world.
    pub effect: phoenix_plugins::Effect,
    /// The list it runs over: an expression string or a literal list.
    pub for_each: Option<Value>,
    /// `for_each` items at once.
    pub max_parallel: Option<usize>,
    /// What it does.
    pub description: Option<String>,
    /// A hash of its definition (resume with an edited runbook keeps unchanged steps).
    pub fingerprint: String,
}

/// A compiled health signal.
#[derive(Debug, Clone)]
pub struct Signal {
    /// Its name (also its probe step's id).
    pub name: String,
    /// Its probe step in the main plan.
    pub step: StepId,
    /// The weight rules; the last is the fallback.
    pub rules: Vec<WeightRule>,
    /// What it measures.
    pub description: Option<String>,
    /// The observer's own vantage check: a failure makes the evaluation `unknown`.
    pub vantage: bool,
}

/// A weight rule.
#[derive(Debug, Clone)]
pub struct WeightRule {
    /// The condition, none on the fallback.
    pub when: Option<Cond>,
    /// The weight.
    pub weight: f64,
}

/// A level.
#[derive(Debug, Clone)]
pub struct Level {
    /// Its name.
    pub name: String,
    /// The highest score that takes it; none on the last.
    pub max: Option<f64>,
    /// Consecutive evaluations before it is confirmed.
    pub hold: u32,
    /// What it means.
    pub description: Option<String>,
}
