//! Semantic checks on a raw runbook. Each pass appends diagnostics; none stops at the first.

pub(crate) mod actions;
pub(crate) mod decision;
pub(crate) mod defs;
pub(crate) mod drill;
pub(crate) mod effects;
pub(crate) mod invariants;
pub(crate) mod levels;
pub(crate) mod names;
pub(crate) mod needs;
pub(crate) mod params;
mod schema_check;
mod secrets;
pub(crate) mod templates;
pub(crate) mod weight_rules;
