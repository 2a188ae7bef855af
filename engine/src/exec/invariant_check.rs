//! One invariant's check: render its `with`, run its read-only action under its timeout, and
//! evaluate `that` on what it read. A check that cannot read (an error, a timeout, a
//! condition that cannot be evaluated) does not hold: invariants fail closed.

use std::sync::{Arc, RwLock};

use phoenix_plugins::{ActionCtx, ActionError, LogLine, find};
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::context::Context;
use super::engine::Engine;
use crate::runbook::Runbook;
use crate::template::{Redactor, eval_condition, render_tree};

/// Whether to check before or after the guarded step's action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    Before,
    After,
}

impl Phase {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Phase::Before => "before",
            Phase::After => "after",
        }
    }
}

/// How one check went. `saw` went through the run's redactor.
#[derive(Debug)]
pub(crate) struct Verdict {
    /// The invariant's index in `Runbook::invariants`.
    pub(crate) invariant: usize,
    pub(crate) held: bool,
    /// What the condition read (`outputs = …`), or why the check could not read it.
    pub(crate) saw: String,
}

/// The most of what a check read that an event keeps.
const SAW_MAX: usize = 600;

pub(crate) async fn run(
    engine: &Engine,
    rb: &Runbook,
    run_id: &str,
    invariant: usize,
    ctx: &Context,
    redactor: &RwLock<Redactor>,
    cancel: CancellationToken,
) -> Verdict {
    let inv = &rb.invariants[invariant];
    let text = |s: &str| redactor.read().expect("poisoned").text(s);
    let fail = |why: String| Verdict {
        invariant,
        held: false,
        saw: text(&format!("the check could not read the world, so it counts as failing: {why}")),
    };
    let Some(action) = find(&inv.uses) else { return fail(format!("no action `{}`", inv.uses)) };
    let with = match render_tree(&inv.with, &ctx.value(None), action.shell_fields(), action.expression_fields()) {
        Ok(w) => w,
        Err((path, e)) => return fail(format!("check.with.{path}: {e}")),
    };
    if let Some(error) = super::destinations::refusal(action, &inv.with, &with, &ctx.secrets) {
        return fail(error);
    }
    let (log, mut lines) = mpsc::unbounded_channel::<LogLine>();
    // A check's output lines are not the run's: read and dropped (what it saw is in `saw`).
    let drain = tokio::spawn(async move { while lines.recv().await.is_some() {} });
    let actx = ActionCtx {
        run_id: run_id.to_string(),
        step_id: format!("invariant {}", inv.name),
        cancel: cancel.clone(),
        grace: engine.inner.opts.grace,
        log,
        pace: Arc::new(tokio::sync::Semaphore::new(phoenix_plugins::PACE_LINES)),
        work_dir: engine.inner.opts.state_dir.join("work").join(run_id),
        env_remove: super::sensitive_env::for_runbook(rb),
        fence: engine.fence(),
        // A check only reads (PHX0306).
        read_only: true,
    };
    let result = tokio::select! {
        r = action.run(&actx, with) => Some(r),
        _ = tokio::time::sleep(inv.timeout) => None,
    };
    cancel.cancel();
    drop(actx);
    let _ = drain.await;
    let outputs = match result {
        None => return fail(format!("no answer within {}", phoenix_plugins::duration::format_duration(inv.timeout))),
        Some(Ok(v)) => v,
        Some(Err(ActionError::Failed { message, .. })) => return fail(message),
        Some(Err(ActionError::Input(m))) => return fail(format!("invalid input: {m}")),
        Some(Err(ActionError::Cancelled(m))) => return fail(format!("stopped: {m}")),
    };
    let saw = format!("outputs = {}", cut(&redactor.read().expect("poisoned").json(&outputs)));
    match eval_condition(&inv.that, &ctx.with_outputs(&outputs)) {
        Ok(held) => Verdict { invariant, held, saw },
        Err(e) => Verdict { invariant, held: false, saw: text(&format!("`that` could not be evaluated ({e}); {saw}")) },
    }
}

fn cut(v: &Value) -> String {
    let s = v.to_string();
    if s.len() <= SAW_MAX {
        return s;
    }
    let mut end = SAW_MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes in all)", &s[..end], s.len())
}
