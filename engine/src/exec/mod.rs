//! The executor: runs a runbook's DAG on tokio, checkpointing every transition.
//!
//! The driver (one per run) owns the run's records; attempts run as tasks and report back
//! on a channel; each scheduling round gathers its transitions in one batch and flushes it
//! before anything it decided is acted on (group commit).

mod abort;
mod adopt;
pub mod approvers;
mod attempt;
mod context;
pub mod control;
pub mod decided;
pub(crate) mod destinations;
mod driver;
mod engine;
mod health;
pub mod identity;
pub mod lifecycle;
mod observer;
pub mod orphans;
mod plan;
mod prepare;
mod resume;
pub mod retry_policy;
mod score;
mod sensitive_env;
mod stale;
mod vantage;
pub mod views;
pub mod votes;

pub use adopt::Adoption;
pub use engine::{Engine, EngineOptions, Membership, Outcome, ResumeOptions, RunError, StartOptions};
pub use observer::{Observer, Silent, UiEvent};
pub use sensitive_env::declare_sensitive_env;
