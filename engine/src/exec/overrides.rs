//! `phoenix resume --override INV --reason TEXT`: each names an invariant of the run's
//! runbook and gives a reason, or the resume is refused before anything is written.

use super::engine::{Override, RunError};
use crate::runbook::Runbook;

pub(crate) fn check(id: &str, rb: &Runbook, overrides: &[Override]) -> Result<(), RunError> {
    let names: Vec<&str> = rb.invariants.iter().map(|i| i.name.as_str()).collect();
    for o in overrides {
        if !names.contains(&o.invariant.as_str()) {
            let hint = if names.is_empty() {
                "its runbook has no `invariants:`".to_string()
            } else {
                crate::suggest::hint(&o.invariant, names.iter().copied())
            };
            return Err(RunError::BadInput(format!(
                "--override {}: run {id} has no invariant `{}` ({hint}); nothing was written",
                o.invariant, o.invariant
            )));
        }
        if o.reason.trim().is_empty() {
            return Err(RunError::BadInput(format!(
                "--override {} needs --reason \"…\": why it is safe to go on is recorded with who overrode it; nothing was written",
                o.invariant
            )));
        }
    }
    Ok(())
}
