//! Phoenix's engine: the runbook model, loader, validation, templates, DAG, executor and
//! state store.

pub mod dag;
pub mod diag;
pub mod exec;
pub mod graph;
pub mod runbook;
pub mod schema;
pub mod state;
pub mod suggest;
pub mod template;
pub(crate) mod validate;
pub mod yaml;

pub use diag::{Code, Diagnostic};
pub use runbook::{Loaded, Runbook, load_file, load_str};
pub use validate::params::coerce as coerce_param;
pub use validate::weight_rules::never_matching_rules;
