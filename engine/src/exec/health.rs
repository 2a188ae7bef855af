//! `phoenix health`: the signals alone (probes + score), with no run record and no lock.

use std::sync::Arc;

use serde_json::Value;

use super::engine::{Engine, RunError, StartOptions};
use crate::runbook::{Role, Runbook};
use crate::state::Batch;

impl Engine {
    /// Evaluates a runbook's signals once and returns the `score` step's outputs.
    ///
    /// The probes and the score run as a throwaway run on an in-memory store, so nothing
    /// about the evaluation (run, steps, events, lock) is recorded. Only the level history
    /// is real: it is copied into the scratch store before and written back to this
    /// engine's store after, so `for:` counts across evaluations and runs.
    pub async fn evaluate(&self, rb: &Runbook, params: &[(String, String)]) -> Result<Value, RunError> {
        self.evaluate_signals(rb, params, true).await
    }

    /// As [`Engine::evaluate`]; `keep`: write the level history back (false: the store is
    /// left as it was, for a look that decides nothing by itself, as a stale resume's).
    pub(crate) async fn evaluate_signals(&self, rb: &Runbook, params: &[(String, String)], keep: bool) -> Result<Value, RunError> {
        if rb.signals.is_empty() {
            return Err(RunError::BadInput(format!("runbook `{}` has no signals to evaluate", rb.name)));
        }
        let signals_only = Arc::new(signals_only(rb)?);
        let (engine, scratch) = self.throwaway(&rb.name)?;
        let opts = StartOptions { params: params.to_vec(), ..StartOptions::default() };
        let (id, _) = engine.start(signals_only, opts).await?;
        let score = scratch.step(&id, "score")?.and_then(|s| s.outputs);
        let (Some(score), Some(h)) = (score, scratch.history(&rb.name)?) else {
            return Err(RunError::BadInput("the evaluation was interrupted before the score was computed".into()));
        };
        if keep {
            let mut b = Batch::default();
            b.history(&rb.name, &h);
            self.inner.store.commit(b, true)?;
        }
        Ok(score)
    }
}

/// The runbook cut down to its probe steps and `score` (`cut`: nothing that acts or guards).
fn signals_only(rb: &Runbook) -> Result<Runbook, RunError> {
    super::cut::cut(rb, |s| !matches!(s.role, Role::Action))
        .ok_or_else(|| RunError::BadInput("the runbook has no signals to evaluate".into()))
}
