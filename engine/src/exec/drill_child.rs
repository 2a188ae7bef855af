//! A drill's child runs (`uses: runbook` inside a drill): the child is a drill too — its own
//! `drill:` overlay fills the params the parent's `with` does not give, its lock key is
//! `drill:KEY`, its teardown runs — and it is checked against the child as the parent's
//! production run would start it: the step's `with` rendered with production's params
//! (recorded in the parent's first drill note), so a parent that hands the child a
//! production target is refused at the step, before the child starts.

use serde_json::Value;

use super::context::Context;
use crate::runbook::{Runbook, Step};
use crate::state::{EventKind, Store};
use crate::template::{render_tree, to_mj};

/// How a drill starts a child run: the params production would give it (`None`: the
/// parent's record predates this, or production's `with` does not render).
pub(crate) struct ChildOfDrill {
    /// The child's params as the parent's production run would give them.
    pub(crate) production: Option<Vec<(String, String)>>,
}

/// For a step of run `run_id`: `Some` when the run is a drill (its child runs as a drill).
pub(crate) fn of(store: &Store, rb: &Runbook, run_id: &str, step: &Step, ctx: &Context, item: Option<&Value>) -> Option<ChildOfDrill> {
    let run = store.run(run_id).ok().flatten().filter(|r| r.drill)?;
    let production = production_params(store, rb, &run, step, ctx, item);
    Some(ChildOfDrill { production })
}

/// The `params` of a `runbook` step's `with`, as `--param` pairs.
pub(crate) fn params_of(with: &Value) -> Vec<(String, String)> {
    with.get("params")
        .and_then(Value::as_object)
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.as_str().map_or_else(|| v.to_string(), str::to_string))).collect())
        .unwrap_or_default()
}

fn production_params(
    store: &Store,
    rb: &Runbook,
    run: &crate::state::RunRecord,
    step: &Step,
    ctx: &Context,
    item: Option<&Value>,
) -> Option<Vec<(String, String)>> {
    let prod = store.events(&run.id, 0).ok()?.into_iter().find_map(|e| match e.kind {
        EventKind::Note { data: Some(d), .. } if d["kind"] == "drill" => d.get("production_params").cloned(),
        _ => None,
    })?;
    let run_v = ctx.run.clone();
    let (vars, _) = super::prepare::vars_and_lock(rb, &prod, &run_v).ok()?;
    let prod_ctx = Context { params: to_mj(&prod), vars: to_mj(&vars), ..ctx.clone() };
    let with = render_tree(&step.with, &prod_ctx.value(item), &[], &[]).ok()?;
    Some(params_of(&with))
}
