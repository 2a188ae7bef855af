//! One unit of work (a step or a `for_each` item): render its inputs, run the action with
//! its timeout, retry as its policy says, and report to the driver.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use phoenix_plugins::{ActionCtx, ActionError, LogLine, find};
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::context::Context;
use super::driver::{Msg, UnitKey, UnitResult};
use super::engine::Engine;
use super::prepare::now_ms;
use super::retry_policy::next_delay;
use super::score;
use super::trace;
use crate::runbook::{Role, Runbook, Step};
use crate::state::{LevelHistory, PlanKind};
use crate::template::{eval_condition, render_text, render_tree};

/// What the driver hands to an attempt.
pub(crate) struct Unit {
    pub(crate) key: UnitKey,
    pub(crate) item: Option<(usize, Value)>,
    pub(crate) attempt: u32,
    pub(crate) child_run: Option<String>,
    pub(crate) history: Option<LevelHistory>,
    pub(crate) token: CancellationToken,
}

pub(super) enum Attempt {
    Ok(Value, Option<LevelHistory>),
    Fail { error: String, outputs: Option<Value>, retryable: bool, effect: Effect },
    Cancelled(String),
    Halted(String),
}

/// What a failed attempt may have done: whether a non-idempotent step may be tried again
/// without an operator's word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Effect {
    /// It failed before any effect: nothing was sent or started (bad input, a connection
    /// refused, a program not found).
    None,
    /// It failed, and its effect may have begun (a program that exited 1, an error after the
    /// request was sent).
    Maybe,
    /// It was stopped mid-way (its `timeout`): its effect may have begun and not ended.
    Cut,
}

pub(crate) fn spawn(engine: Engine, rb: Arc<Runbook>, run_id: String, unit: Unit, ctx: Context, tx: mpsc::UnboundedSender<Msg>) {
    // A child of the run's span: the driver spawns from inside it.
    let span = trace::step_span(step_of(&rb, unit.key), &display_id(step_of(&rb, unit.key), &unit));
    let fut: Pin<Box<dyn Future<Output = ()> + Send>> = Box::pin(run_unit(engine, rb, run_id, unit, ctx, tx).instrument(span));
    tokio::spawn(fut);
}

fn step_of(rb: &Runbook, key: UnitKey) -> &Step {
    match key.0 {
        PlanKind::Main => &rb.main.steps[key.1],
        PlanKind::OnFailure => &rb.on_failure.steps[key.1],
        PlanKind::OnAbort => &rb.on_abort.steps[key.1],
        PlanKind::Teardown => &rb.teardown.steps[key.1],
    }
}

/// A step's id, with the item's index for a `for_each` item.
fn display_id(step: &Step, unit: &Unit) -> String {
    match &unit.item {
        Some((j, _)) => format!("{}[{j}]", step.id),
        None => step.id.clone(),
    }
}

async fn run_unit(engine: Engine, rb: Arc<Runbook>, run_id: String, unit: Unit, ctx: Context, tx: mpsc::UnboundedSender<Msg>) {
    let step = step_of(&rb, unit.key).clone();
    let display_id = display_id(&step, &unit);
    let mut attempt = unit.attempt;
    let mut inputs = None;
    let (log_tx, mut log_rx) = mpsc::unbounded_channel::<LogLine>();
    let fwd_tx = tx.clone();
    let fwd_id = display_id.clone();
    let forwarder = tokio::spawn(async move {
        while let Some(line) = log_rx.recv().await {
            let _ = fwd_tx.send(Msg::Log { step: fwd_id.clone(), line });
        }
    });
    let actx = ActionCtx {
        run_id: run_id.clone(),
        step_id: display_id.clone(),
        cancel: unit.token.clone(),
        grace: engine.inner.opts.grace,
        log: log_tx,
        pace: Arc::new(tokio::sync::Semaphore::new(phoenix_plugins::PACE_LINES)),
        work_dir: engine.inner.opts.state_dir.join("work").join(&run_id),
        env_remove: super::sensitive_env::for_runbook(&rb),
        fence: engine.fence(),
        read_only: step.effect == phoenix_plugins::Effect::Read,
    };
    let result = loop {
        let span = trace::attempt_span(attempt);
        let r = one(&engine, &rb, &run_id, &step, &unit, &ctx, &actx, &tx, &mut inputs).instrument(span.clone()).await;
        match &r {
            Attempt::Ok(..) => trace::end(&span, "succeeded", true),
            Attempt::Fail { .. } => trace::end(&span, "failed", false),
            Attempt::Cancelled(_) => trace::end(&span, "cancelled", true),
            Attempt::Halted(_) => trace::end(&span, "halted", true),
        }
        drop(span);
        match r {
            Attempt::Ok(v, h) => break (UnitResult::Ok(v), h),
            Attempt::Cancelled(why) => {
                let uncertain = guarded(&step).then(|| format!("stopped while running ({why}): its effect may have begun"));
                break (UnitResult::Cancelled { why, uncertain }, None);
            }
            Attempt::Halted(why) => break (UnitResult::Halted(why), None),
            Attempt::Fail { error, outputs, retryable, effect } => {
                let delay = if retryable && !unit.token.is_cancelled() { next_delay(&step.retry, attempt, &mut rand::rng()) } else { None };
                let uncertain =
                    (guarded(&step) && effect == Effect::Cut).then(|| format!("{error} while running: its effect may have begun"));
                let (delay, error) = match delay {
                    Some(_) if guarded(&step) && effect != Effect::None => (None, format!("{error} {}", not_retried(&step.id))),
                    d => (d, error),
                };
                let Some(delay) = delay else { break (UnitResult::Failed { error, outputs, uncertain }, None) };
                let (ack, acked) = oneshot::channel();
                if tx.send(Msg::Retry { key: unit.key, attempt, error, delay, ack }).is_err() {
                    return;
                }
                let _ = acked.await;
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    // The failed attempt ended before any effect (or the step is idempotent):
                    // nothing is uncertain.
                    _ = unit.token.cancelled() => break (UnitResult::Cancelled { why: "stopped while waiting to retry".into(), uncertain: None }, None),
                }
                attempt += 1;
            }
        }
    };
    drop(actx);
    let _ = forwarder.await;
    let (outcome, ok) = match &result.0 {
        UnitResult::Ok(_) => ("succeeded", true),
        UnitResult::Failed { .. } => ("failed", false),
        UnitResult::Cancelled { .. } => ("cancelled", true),
        UnitResult::Halted(_) => ("halted", true),
    };
    trace::end(&tracing::Span::current(), outcome, ok);
    let _ = tx.send(Msg::Done { key: unit.key, result: result.0, inputs, history: result.1 });
}

/// Whether running the step twice may do harm, so that an attempt stopped or failed after its
/// effect may have begun is never tried again without an operator's word. A `runbook` step
/// is left to its child run, whose own steps are guarded when it resumes.
fn guarded(step: &Step) -> bool {
    !step.idempotent && step.uses != "runbook"
}

/// Why a failure of a non-idempotent step was not retried.
fn not_retried(step: &str) -> String {
    format!(
        "(not retried: `{step}` is not idempotent and this failure may have come after its effect began; `retry` tries a non-idempotent step again only when the action can tell it failed before any effect, such as a connection refused. Check, then `phoenix resume` runs it again; or set `idempotent: true` if running it twice is harmless)"
    )
}

#[allow(clippy::too_many_arguments)]
async fn one(
    engine: &Engine,
    rb: &Arc<Runbook>,
    run_id: &str,
    step: &Step,
    unit: &Unit,
    ctx: &Context,
    actx: &ActionCtx,
    tx: &mpsc::UnboundedSender<Msg>,
    inputs: &mut Option<Value>,
) -> Attempt {
    if step.role == Role::Score {
        let (outputs, history) = score::evaluate(rb, ctx, unit.history.as_ref(), now_ms());
        return Attempt::Ok(outputs, Some(history));
    }
    ctx.secrets.prefetch(&step.with).await;
    let tctx = ctx.value(unit.item.as_ref().map(|(_, v)| v));
    let action = find(&step.uses);
    let shell = action.map_or(&[][..], |a| a.shell_fields());
    let exprs = action.map_or(&[][..], |a| a.expression_fields());
    let with = match render_tree(&step.with, &tctx, shell, exprs) {
        Ok(w) => w,
        Err((path, e)) => {
            // "undefined" is all minijinja can say about a secret that cannot be read: say why.
            let why = secret_problem(&step.with, ctx).map_or(String::new(), |p| format!(" ({p})"));
            return Attempt::Fail { error: format!("with.{path}: {e}{why}"), outputs: None, retryable: false, effect: Effect::None };
        }
    };
    let with = match action {
        Some(a) => match finish_inputs(a, rb, with, &tctx, ctx) {
            Ok(w) => w,
            Err(error) => return Attempt::Fail { error, outputs: None, retryable: false, effect: Effect::None },
        },
        None => with,
    };
    *inputs = Some(with.clone());
    match step.uses.as_str() {
        "assert" => {
            let that = with.get("that").and_then(Value::as_str).unwrap_or("false");
            return match eval_condition(that, &tctx) {
                Ok(true) => Attempt::Ok(json!({}), None),
                Ok(false) => {
                    let msg = with
                        .get("message")
                        .and_then(Value::as_str)
                        .map_or_else(|| format!("assertion failed: {that}"), |m| format!("{m} (assertion: {that})"));
                    Attempt::Fail { error: msg, outputs: None, retryable: true, effect: Effect::None }
                }
                Err(e) => Attempt::Fail {
                    error: format!("`that` could not be evaluated: {e}"),
                    outputs: None,
                    retryable: false,
                    effect: Effect::None,
                },
            };
        }
        "runbook" => {
            let drill = super::drill_child::of(engine.store(), rb, run_id, step, ctx, unit.item.as_ref().map(|(_, v)| v));
            return super::child_run::child(engine, rb, run_id, step, unit, &with, tx, drill).await;
        }
        _ => {}
    }
    let Some(action) = action else {
        return Attempt::Fail { error: format!("no action `{}`", step.uses), outputs: None, retryable: false, effect: Effect::None };
    };
    if let Some(error) = super::destinations::refusal(action, &step.with, &with, &ctx.secrets) {
        return Attempt::Fail { error, outputs: None, retryable: false, effect: Effect::None };
    }
    let attempt_token = actx.cancel.child_token();
    let actx = ActionCtx { cancel: attempt_token.clone(), ..actx.clone() };
    let fut = action.run(&actx, with);
    tokio::pin!(fut);
    let r = match step.timeout {
        None => fut.await,
        Some(t) => tokio::select! {
            r = &mut fut => r,
            _ = tokio::time::sleep(t) => {
                attempt_token.cancel();
                // The action stops its work (SIGTERM, then SIGKILL after the grace period).
                let _ = tokio::time::timeout(engine.inner.opts.grace + Duration::from_secs(2), &mut fut).await;
                return Attempt::Fail {
                    error: format!("timed out after {}", phoenix_plugins::duration::format_duration(t)),
                    outputs: None,
                    retryable: true,
                    effect: Effect::Cut,
                };
            }
        },
    };
    match r {
        Ok(v) => Attempt::Ok(v, None),
        Err(ActionError::Failed { message, outputs, retryable, before_effect }) => {
            Attempt::Fail { error: message, outputs, retryable, effect: if before_effect { Effect::None } else { Effect::Maybe } }
        }
        // The action refused its input: nothing was done.
        Err(ActionError::Input(m)) => {
            Attempt::Fail { error: format!("invalid input: {m}"), outputs: None, retryable: false, effect: Effect::None }
        }
        Err(ActionError::Cancelled(m)) => Attempt::Cancelled(m),
    }
}

/// Renders the action's template files into their keys, then scrubs every declared secret
/// from the keys whose text leaves the machine.
fn finish_inputs(
    action: &dyn phoenix_plugins::Action,
    rb: &Runbook,
    mut with: Value,
    tctx: &minijinja::Value,
    ctx: &Context,
) -> Result<Value, String> {
    if let Some(obj) = with.as_object_mut() {
        for &(file_key, into) in action.template_files() {
            let Some(rel) = obj.remove(file_key) else { continue };
            let Some(rel) = rel.as_str() else { return Err(format!("with.{file_key}: a file name is text")) };
            let path = crate::runbook::confine::inside(&crate::runbook::confine::root_of(rb), rel, &format!("with.{file_key}"))?;
            let text = std::fs::read_to_string(&path).map_err(|e| format!("with.{file_key}: cannot read {}: {e}", path.display()))?;
            let rendered = render_text(&text, tctx).map_err(|e| format!("with.{file_key}: {}: {e}", path.display()))?;
            obj.insert(into.to_string(), Value::String(rendered));
        }
        for &key in action.redacted_fields() {
            if let Some(v) = obj.get_mut(key) {
                *v = ctx.secrets.scrub(v);
            }
        }
    }
    Ok(with)
}

/// The first secret named in `with` that cannot be resolved, and why.
fn secret_problem(with: &Value, ctx: &Context) -> Option<String> {
    let text = with.to_string();
    let mut rest = text.as_str();
    while let Some(pos) = rest.find("secrets.") {
        rest = &rest[pos + "secrets.".len()..];
        let name: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
        if let Err(e) = ctx.secrets.resolve(&name) {
            return Some(e);
        }
    }
    None
}
