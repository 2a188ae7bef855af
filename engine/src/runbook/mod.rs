//! Runbooks: the raw YAML mirror, the compiled model, and the loader between them.

mod compile;
pub(crate) mod confine;
mod load;
mod model;
pub mod raw;
mod sections;
pub(crate) use sections::diag_from;

pub use load::{Loaded, load_file, load_str};
pub use model::{
    Backoff, Cond, Invariant, Level, Param, ParamType, Plan, RetryPolicy, Role, Runbook, SecretSource, SecretSpec, Signal, Step, StepId,
    TriggerRule, WeightRule,
};
