//! The executor: runs a runbook's DAG on tokio, checkpointing every transition.
//!
//! The driver (one per run) owns the run's records; attempts run as tasks and report back
//! on a channel; each scheduling round gathers its transitions in one batch and flushes it
//! before anything it decided is acted on (group commit).

mod abort;
mod adopt;
pub mod approvers;
mod attempt;
mod child_run;
mod context;
pub mod control;
mod cut;
pub mod decided;
pub(crate) mod destinations;
pub mod drill;
mod drill_child;
pub mod drill_measure;
mod driver;
mod dry_reads;
mod engine;
mod health;
pub mod identity;
mod in_doubt;
mod invariant_check;
pub mod lifecycle;
mod observer;
pub mod orphans;
mod overrides;
mod plan;
mod prepare;
pub mod protect;
mod resume;
pub mod retry_policy;
mod score;
mod secret_sources;
mod sensitive_env;
mod stale;
mod trace;
mod vantage;
pub mod views;
pub mod votes;

pub use adopt::Adoption;
pub use engine::{Engine, EngineOptions, Membership, Outcome, Override, ResumeOptions, RunError, StartOptions};
pub use observer::{Observer, Silent, UiEvent};
pub use sensitive_env::declare_sensitive_env;
