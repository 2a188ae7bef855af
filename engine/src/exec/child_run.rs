//! A step `uses: runbook`: its child run started (its id recorded in the parent's step
//! first, so a crash never starts it twice) or, on a resume, resumed; waited for, and its
//! outcome made the step's.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

use super::attempt::{Attempt, Effect, Unit};
use super::driver::Msg;
use super::engine::{Engine, Outcome, ResumeOptions, StartOptions};
use crate::runbook::{Runbook, Step};

/// A child run: started (its id recorded in the parent first) or resumed; `drill` when the
/// parent is a drill (the child is one too).
#[allow(clippy::too_many_arguments)] // the attempt's parts, as `one` has them
pub(super) async fn child(
    engine: &Engine,
    rb: &Runbook,
    run_id: &str,
    step: &Step,
    unit: &Unit,
    with: &Value,
    tx: &mpsc::UnboundedSender<Msg>,
    drill: Option<super::drill_child::ChildOfDrill>,
) -> Attempt {
    let file = with.get("file").and_then(Value::as_str).unwrap_or_default();
    let path = match crate::runbook::confine::inside(&crate::runbook::confine::root_of(rb), file, "the child runbook") {
        Ok(p) => p,
        Err(error) => return Attempt::Fail { error, outputs: None, retryable: false, effect: Effect::None },
    };
    let loaded = crate::runbook::load_file(&path);
    let Some(child_rb) = loaded.runbook else {
        return Attempt::Fail {
            error: format!("the child runbook {} is not valid:\n{}", path.display(), loaded.render()),
            outputs: None,
            retryable: false,
            effect: Effect::None,
        };
    };
    let store = engine.store();
    let existing = unit.child_run.as_ref().and_then(|id| store.run(id).ok().flatten());
    let work = async move {
        match existing {
            Some(r) if r.status == crate::state::RunStatus::Succeeded => Ok(Outcome::Succeeded),
            Some(r) if r.status != crate::state::RunStatus::Cancelled => {
                let e = engine.clone();
                let id = r.id.clone();
                let fut: Pin<Box<dyn Future<Output = _> + Send>> = Box::pin(async move { e.resume(&id, ResumeOptions::default()).await });
                fut.await.map(|o| (r.id.clone(), o)).map(|(_, o)| o)
            }
            _ => {
                let params = super::drill_child::params_of(with);
                let e = engine.clone();
                let parent = Some((run_id.to_string(), step.id.clone()));
                let tx = tx.clone();
                let key = unit.key;
                let on_id = move |id: String| {
                    let (ack, acked) = oneshot::channel();
                    let _ = tx.send(Msg::Child { key, run_id: id, ack });
                    acked
                };
                let fut: Pin<Box<dyn Future<Output = _> + Send>> = Box::pin(async move {
                    let (drill, production_params) = match drill {
                        Some(d) => (true, d.production),
                        None => (false, None),
                    };
                    let opts = StartOptions { params, no_wait: true, parent, drill, production_params, ..StartOptions::default() };
                    e.start_with(Arc::new(child_rb), opts, on_id).await
                });
                fut.await
            }
        }
    };
    // A step timeout cancels the child run (as `phoenix cancel` would) and waits for it to stop.
    let mut work = std::pin::pin!(work);
    let mut timed_out = None;
    let result = match step.timeout {
        None => work.await,
        Some(t) => tokio::select! {
            r = &mut work => r,
            _ = tokio::time::sleep(t) => {
                timed_out = Some(t);
                loop {
                    if let Some(id) = child_of(store, run_id, &step.id) {
                        engine.inner.registry.cancel(&id, "timeout");
                    }
                    tokio::select! {
                        r = &mut work => break r,
                        _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                    }
                }
            }
        },
    };
    let child_id = match &result {
        Ok(_) => child_of(store, run_id, &step.id),
        Err(_) => None,
    };
    let child_rec = child_id.as_ref().and_then(|id| store.run(id).ok().flatten());
    let outputs = json!({
        "run_id": child_id,
        "status": child_rec.as_ref().map(|r| r.status.as_str()),
        "outputs": child_rec.as_ref().and_then(|r| r.outputs.clone()),
    });
    if let Some(t) = timed_out {
        let id = child_id.unwrap_or_default();
        let t = phoenix_plugins::duration::format_duration(t);
        return Attempt::Fail {
            error: format!("timed out after {t}: the child run {id} was cancelled"),
            outputs: Some(outputs),
            retryable: false,
            effect: Effect::Cut,
        };
    }
    match result {
        Ok(Outcome::Succeeded) => Attempt::Ok(outputs, None),
        Ok(Outcome::Failed(e)) => {
            Attempt::Fail { error: format!("child run failed: {e}"), outputs: Some(outputs), retryable: false, effect: Effect::Maybe }
        }
        Ok(Outcome::Halted(why)) => Attempt::Halted(format!("child run {} halted: {why}", child_id.unwrap_or_default())),
        Ok(Outcome::Cancelled) => {
            Attempt::Fail { error: "child run was cancelled".into(), outputs: Some(outputs), retryable: false, effect: Effect::Maybe }
        }
        Ok(Outcome::Interrupted) => Attempt::Cancelled("child run interrupted".into()),
        Err(e) => Attempt::Fail { error: format!("child run could not start: {e}"), outputs: None, retryable: false, effect: Effect::None },
    }
}

/// The child run a step of this run started, if any.
fn child_of(store: &crate::state::Store, run_id: &str, step: &str) -> Option<String> {
    let runs = store.runs().ok()?;
    runs.into_iter().find(|r| r.parent.as_ref().is_some_and(|(p, s)| p == run_id && s == step)).map(|r| r.id)
}
