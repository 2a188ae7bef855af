//! A runbook cut down to some of its main steps, for the throwaway runs that only look
//! (`phoenix health`, a stale resume's re-evaluation, `--dry-run`'s reads): the steps kept,
//! their needs renumbered, and nothing else that acts or guards — no `on_failure`, no
//! `on_abort`, no drill or teardown, no invariants (they name steps of the whole plan), no lock, no outputs.

use std::sync::Arc;

use super::engine::{Engine, RunError};
use super::observer::Silent;
use crate::dag::Dag;
use crate::runbook::{Plan, Runbook, Step};
use crate::state::{Batch, MemKv, Store};

impl Engine {
    /// An engine over a store in memory, for a throwaway run: nothing it does is recorded
    /// here but what the caller copies back. The level history of `runbook` is copied in, so
    /// `for:` counts as it would.
    pub(crate) fn throwaway(&self, runbook: &str) -> Result<(Engine, Store), RunError> {
        let scratch = Store::new(Arc::new(MemKv::default()))?;
        if let Some(h) = self.inner.store.history(runbook)? {
            let mut b = Batch::default();
            b.history(runbook, &h);
            scratch.commit(b, false)?;
        }
        let engine = Engine::new(scratch.clone(), self.inner.opts.clone(), Arc::new(Silent), self.inner.shutdown.child_token());
        Ok((engine, scratch))
    }
}

/// The main steps `keep` takes whose needs are all kept too; `None` when none is.
pub(crate) fn cut(rb: &Runbook, keep: impl Fn(&Step) -> bool) -> Option<Runbook> {
    let plan = &rb.main;
    let mut kept = vec![false; plan.steps.len()];
    for &i in plan.dag.order() {
        kept[i] = keep(&plan.steps[i]) && plan.steps[i].needs.iter().all(|&n| kept[n]);
    }
    // Each kept step's place in the cut plan.
    let mut index = vec![None; kept.len()];
    for (next, (i, _)) in kept.iter().enumerate().filter(|(_, k)| **k).enumerate() {
        index[i] = Some(next);
    }
    let steps: Vec<Step> = plan
        .steps
        .iter()
        .zip(&kept)
        .filter(|(_, k)| **k)
        .map(|(s, _)| Step { needs: s.needs.iter().filter_map(|&n| index[n]).collect(), ..s.clone() })
        .collect();
    if steps.is_empty() {
        return None;
    }
    let needs: Vec<Vec<usize>> = steps.iter().map(|s| s.needs.clone()).collect();
    let dag = Dag::build(&needs).ok()?;
    let mut out = rb.clone();
    out.main = Plan { steps, dag };
    out.on_failure = Plan::default();
    out.on_abort = Plan::default();
    out.teardown = Plan::default();
    out.drill = None;
    out.invariants = Vec::new();
    out.lock = None;
    out.outputs = Default::default();
    Some(out)
}
