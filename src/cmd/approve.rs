//! `approve` (and `--reject`): a decision on a waiting approval step, sent to the process
//! that drives the run, or recorded in the store for the resume to apply. One decision per
//! gate: a second is refused naming the first; a mistyped step name gets the closest.

use std::path::PathBuf;

use phoenix_engine::exec::identity::Peer;
use phoenix_engine::exec::{approvers, decided};
use phoenix_engine::state::{Approval, Batch, EventKind, RunStatus, StepStatus};
use serde_json::json;

use super::ops::{now_ms, report, with_store};
use super::state;
use crate::cli::Output;
use crate::exit::Exit;

pub(crate) fn approve(
    state_dir: &Option<PathBuf>,
    run: &str,
    step: &str,
    approved: bool,
    comment: Option<String>,
    operator: Option<String>,
    out: Output,
) -> Exit {
    let dir = state::dir(state_dir);
    let verdict = if approved { "approved" } else { "rejected" };
    // Over the socket `by` is a claim the owner checks against this process's uid.
    let req = json!({"op": "approve", "run": run, "step": step, "approved": approved, "by": operator, "comment": comment});
    let r = with_store(
        &dir,
        &req,
        |_| format!("{verdict} `{step}` of run {run}; the run continues"),
        |store| {
            let by = state::claim(operator.clone())?;
            decide_stored(store, run, step, approved, &by, comment.clone(), Some(Peer::me().via("cli")))
        },
    );
    // A refusal quotes the first decision's comment and the typed step name: shown, not sent
    // to the terminal (an escape sequence in them is drawn as text).
    report(r.map_err(|e| crate::visible::visible(&e).into_owned()), out)
}

/// The rules of an approval step, as the run's stored runbook states them: only its
/// approvers decide, and only before its timeout (after it, the step counts as rejected).
/// The process that owns a run checks the same itself.
fn may_decide(
    store: &phoenix_engine::state::Store,
    run: &phoenix_engine::state::RunRecord,
    rec: &phoenix_engine::state::StepRecord,
    by: &str,
) -> Result<(), String> {
    let text = store.source(&run.id).map_err(|e| e.to_string())?.ok_or_else(|| format!("run {} has no stored runbook", run.id))?;
    let rb = phoenix_engine::load_str(&text, std::path::Path::new(&run.file))
        .runbook
        .ok_or_else(|| format!("the runbook stored with run {} no longer validates", run.id))?;
    let Some(step) =
        rb.main.find(&rec.id).map(|i| &rb.main.steps[i]).or_else(|| rb.on_failure.find(&rec.id).map(|i| &rb.on_failure.steps[i]))
    else {
        return Err(format!("the runbook of run {} has no step `{}`", run.id, rec.id));
    };
    // The list rendered and recorded when the step started waiting; a literal list of a
    // step never asked (stopped first) is its own; a template never rendered decides nothing.
    let approvers = match approvers::recorded(rec.inputs.as_ref()) {
        Some(list) => list?,
        None => match step.with.get("approvers") {
            None => None,
            Some(v) if !v.to_string().contains("{{") && !v.to_string().contains("{%") => approvers::approvers_in(v)?,
            Some(_) => {
                return Err(format!(
                    "the approvers of `{}` are a template not rendered yet (the run stopped before asking): `phoenix resume {}` asks again, then decide",
                    rec.id, run.id
                ));
            }
        },
    };
    if let Some(list) = approvers.filter(|l| !l.iter().any(|a| a == by)) {
        return Err(format!("`{by}` may not decide on `{}`: approvers are {}", rec.id, list.join(", ")));
    }
    if let (Some(t), Some(since)) = (step.timeout, rec.waiting_since) {
        if now_ms() > since + t.as_millis() as u64 {
            return Err(format!(
                "the approval of `{}` timed out (no decision within {}): it counts as rejected; `phoenix resume {}` records that",
                rec.id,
                phoenix_plugins::duration::format_duration(t),
                run.id
            ));
        }
    }
    Ok(())
}

/// Records a decision on a waiting approval of a run that no process drives (it applies when
/// the run resumes).
pub(crate) fn decide_stored(
    store: &phoenix_engine::state::Store,
    run: &str,
    step: &str,
    approved: bool,
    by: &str,
    comment: Option<String>,
    via: Option<String>,
) -> Result<String, String> {
    let verdict = if approved { "approved" } else { "rejected" };
    let r = store.run(run).map_err(|e| e.to_string())?.ok_or_else(|| format!("no run `{run}`"))?;
    crate::cluster::refuse_if_driven(&r)?;
    let Some(s) = store.step(run, step).map_err(|e| e.to_string())? else {
        let steps = store.steps(run).map_err(|e| e.to_string())?;
        let waiting: Vec<&str> = steps.iter().filter(|s| s.status == StepStatus::Waiting).map(|s| s.id.as_str()).collect();
        let all: Vec<&str> = steps.iter().map(|s| s.id.as_str()).collect();
        return Err(decided::no_such_step(run, step, &waiting, &all));
    };
    // One decision per gate: a second one (approve or reject) is refused, naming the first —
    // recorded and waiting for the resume, or already applied.
    if let Some(first) = store.approval(run, step).map_err(|e| e.to_string())? {
        return Err(format!(
            "`{step}` was already {}, applied when the run resumes (phoenix resume {run}); a second decision is not recorded",
            decided::describe(&first)
        ));
    }
    if let Some(first) = s.approval.as_ref().filter(|_| s.status != StepStatus::Waiting) {
        return Err(decided::already(step, first));
    }
    if s.status != StepStatus::Waiting {
        return Err(format!("step `{step}` is {}, not waiting for approval", s.status.as_str()));
    }
    if r.status != RunStatus::Halted && r.status != RunStatus::Running {
        return Err(format!("run {run} is {}", r.status.as_str()));
    }
    may_decide(store, &r, &s, by)?;
    let (seq, _) = store.next_seqs(run).map_err(|e| e.to_string())?;
    let mut b = Batch::default();
    b.approval(run, step, &Approval { approved, by: by.to_string(), comment: comment.clone(), at: now_ms(), via });
    b.event(
        run,
        seq,
        now_ms(),
        // The step, then the comment: the log tells why at the time it was decided.
        EventKind::Operator {
            action: format!("approval {verdict}"),
            by: by.to_string(),
            detail: Some(decided::step_and_comment(step, comment.as_deref())),
        },
    );
    if !store.try_commit(b, true).map_err(|e| e.to_string())? {
        let first = store.approval(run, step).map_err(|e| e.to_string())?;
        return Err(first
            .map_or_else(|| format!("`{step}` was decided meanwhile; a second decision is not recorded"), |a| decided::already(step, &a)));
    }
    Ok(format!("{verdict} `{step}` of run {run}; continue it with: phoenix resume {run}"))
}
