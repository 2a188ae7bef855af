//! `phoenix drill`: the runbook's own steps with its `drill.params` overlaid on the given
//! params, refused before anything is written when a mutating step would change a target in
//! `protect` or one that production (the same params without the overlay) changes.
//!
//! Both resolutions render every step whose effect is above `read` (main, on_failure and
//! on_abort steps; the teardown in the drill's only) with params, vars and secrets (a
//! `for_each` list known now: item by item), as far as each can be before the run: a
//! step whose inputs read step outputs or `item` gets its targets from the inputs that did
//! render, and is named in [`DrillCheck::unresolved`]. `protect` entries are rendered with
//! production's params (they name production targets). The pure comparison is
//! [`super::protect::collisions`].

use std::sync::{Arc, RwLock};

use serde_json::{Map, Value};

use super::context::{Context, Secrets};
use super::engine::RunError;
use super::prepare::{self, now_ms};
use super::protect::{self, Collision, StepTargets};
use crate::runbook::{Role, Runbook};
use crate::template::{Redactor, render_text, to_mj};

/// A param the drill's overlay sets: its name, the drill's value, and the value given
/// (`--param`) or defaulted that it replaces (none when the param had no value).
#[derive(Debug, Clone, PartialEq)]
pub struct Overlaid {
    /// The param.
    pub name: String,
    /// The drill's value.
    pub drill: Value,
    /// The value production would have had.
    pub production: Option<Value>,
}

/// What checking a drill found.
#[derive(Debug, Clone)]
pub struct DrillCheck {
    /// The params the drill runs with (typed, the overlay applied).
    pub params: Value,
    /// The params production runs with (typed, without the overlay): what `protect` is
    /// rendered with, and what a drill's child run is compared with.
    pub production: Value,
    /// Which params the overlay changed.
    pub overlaid: Vec<Overlaid>,
    /// Steps checked (effect above `read`).
    pub checked: usize,
    /// Steps whose targets could not all be known before the run, and why.
    pub unresolved: Vec<String>,
    /// Targets the drill must not touch: any one refuses the drill.
    pub collisions: Vec<Collision>,
}

/// Checks a drill of `rb` with the params `given`: bad input (no `drill:`, a param wrong)
/// is an error; collisions are in the result, for the caller to refuse and list.
pub fn check(rb: &Runbook, given: &[(String, String)]) -> Result<DrillCheck, RunError> {
    check_as(rb, given, Against::Given)
}

/// What a drill's resolution is compared with.
#[derive(Debug, Clone, Copy)]
pub enum Against<'a> {
    /// A drill started by hand: production runs with the same params, which the overlay
    /// overrides.
    Given,
    /// A drill's child run (`uses: runbook`): the params the parent's `with` gives win over
    /// the child's overlay, which fills the rest; production is the child as the parent's
    /// production run would start it (these params), or not known (`None`: only `protect`
    /// guards it, said in `unresolved`).
    Parent(Option<&'a [(String, String)]>),
}

/// [`check`], for a drill started by hand or as a drill's child run.
pub fn check_as(rb: &Runbook, given: &[(String, String)], against: Against<'_>) -> Result<DrillCheck, RunError> {
    let Some(drill) = &rb.drill else {
        let child = if matches!(against, Against::Parent(_)) {
            " (it is started by a drill's `uses: runbook` step, so it runs as a drill too)"
        } else {
            ""
        };
        return Err(RunError::BadInput(format!(
            "runbook `{}`{child} has no `drill:` section, so a drill cannot tell what to change instead of production\n  add one next to `params:`, e.g.\n    drill:\n      params: {{ record: drill-app.example.com }}   # the drill's targets, overlaid on --param\n      protect: [ \"{{{{ params.record }}}}\" ]          # production targets a drill must never touch\n  see docs/runbooks.md, \"Drills\"",
            rb.name
        )));
    };
    let (prod_given, child) = match against {
        Against::Given => (Some(given), false),
        Against::Parent(p) => (p, true),
    };
    let production = typed(rb, prod_given.unwrap_or(given))?;
    let mut params = typed(rb, given)?.as_object().cloned().unwrap_or_default();
    let mut overlaid = Vec::new();
    for (k, v) in &drill.params {
        // A child's params given by its parent's `with` stay as given.
        if child && given.iter().any(|(g, _)| g == k) {
            continue;
        }
        let before = params.insert(k.clone(), v.clone());
        if before.as_ref() != Some(v) {
            overlaid.push(Overlaid { name: k.clone(), drill: v.clone(), production: before });
        }
    }
    let params = Value::Object(params);
    let run = prepare::run_value(rb, "drill-check", now_ms(), 1, false);
    let drill_ctx = context(rb, &params, &run)?;
    let mut unresolved = Vec::new();
    let drill_targets = targets(rb, &drill_ctx, Some(&mut unresolved));
    if prod_given.is_none() {
        unresolved.push("production (the parent's production run) is not known for this child run: only `protect` guards it".into());
    }
    let (prod_targets, protect_ctx) = match context(rb, &production, &run) {
        Ok(prod) => (
            if prod_given.is_some() { targets(rb, &prod, None) } else { Vec::new() },
            Context::for_vars(&production, prod.vars.as_object().unwrap_or(&Map::new()), &run),
        ),
        Err(e) => {
            unresolved.push(format!("production (without the overlay) cannot be resolved ({e}): only `protect` guards this drill"));
            (Vec::new(), Context::for_vars(&production, &Map::new(), &run))
        }
    };
    let mut protect_list = Vec::new();
    for (i, entry) in drill.protect.iter().enumerate() {
        let rendered = render_text(entry, &protect_ctx).map_err(|e| RunError::BadInput(format!("drill.protect[{i}]: {e}")))?;
        protect_list.push(rendered);
    }
    let collisions = protect::collisions(&drill_targets, &prod_targets, &protect_list);
    Ok(DrillCheck { params, production, overlaid, checked: drill_targets.len(), unresolved, collisions })
}

/// Typed params from `given`; a param the drill sets need not be given: without the overlay,
/// production's resolution then leaves it out (its steps render as far as they can).
fn typed(rb: &Runbook, given: &[(String, String)]) -> Result<Value, RunError> {
    let drill_sets = |k: &str| rb.drill.as_ref().is_some_and(|d| d.params.contains_key(k));
    let defaults = || rb.params.iter().filter_map(|(k, p)| p.default.clone().map(|d| (k.clone(), d)));
    match prepare::params(rb, given) {
        Ok(p) => Ok(p),
        Err(e) if e.lines().all(|l| rb.params.keys().any(|k| drill_sets(k) && l.contains(&format!("the param `{k}` is required")))) => {
            let mut m: Map<String, Value> = defaults().collect();
            for (k, v) in given {
                if let Some(p) = rb.params.get(k) {
                    m.insert(k.clone(), crate::validate::params::coerce(p.ty, v).map_err(RunError::BadInput)?);
                }
            }
            Ok(Value::Object(m))
        }
        Err(e) => Err(RunError::BadInput(e)),
    }
}

/// The template context of one resolution (params, vars, secrets; no step has run).
struct Resolution {
    ctx: Context,
    vars: Value,
}

fn context(rb: &Runbook, params: &Value, run: &Value) -> Result<Resolution, RunError> {
    let (vars, _) = prepare::vars_and_lock(rb, params, run).map_err(RunError::BadInput)?;
    let redactor = Arc::new(RwLock::new(Redactor::default()));
    let ctx = Context {
        params: to_mj(params),
        vars: to_mj(&vars),
        run: run.clone(),
        secrets: Arc::new(Secrets::new(rb, redactor)),
        steps: Arc::default(),
    };
    Ok(Resolution { ctx, vars })
}

/// The targets of every step above `read`, in plan order; `unresolved` gets the steps whose
/// targets are not all known before the run.
fn targets(rb: &Runbook, r: &Resolution, mut unresolved: Option<&mut Vec<String>>) -> Vec<StepTargets> {
    let ctx = r.ctx.value(None);
    let mut out = Vec::new();
    // Production never runs the teardown: only a drill's resolution has its targets.
    let teardown = if unresolved.is_some() { Some(&rb.teardown) } else { None };
    for plan in [&rb.main, &rb.on_failure, &rb.on_abort].into_iter().chain(teardown) {
        for s in plan.steps.iter().filter(|s| s.role == Role::Action && s.effect > phoenix_plugins::Effect::Read) {
            let action = phoenix_plugins::find(&s.uses);
            // A `for_each` step whose list is known now: each item's inputs.
            let items = s.for_each.as_ref().and_then(|fe| super::plan::items(fe, &r.ctx));
            let renders: Vec<(Value, bool)> = match &items {
                Some(list) => list.iter().map(|item| super::plan::render(s, &r.ctx.value(Some(item)))).collect(),
                None => vec![super::plan::render(s, &ctx)],
            };
            let complete = renders.iter().all(|(_, c)| *c) && (s.for_each.is_none() || items.is_some());
            let found: Vec<_> = renders.iter().flat_map(|(with, _)| action.map(|a| a.targets(with)).unwrap_or_default()).collect();
            if let Some(u) = unresolved.as_deref_mut() {
                if !complete {
                    u.push(format!(
                        "{}: some inputs cannot be rendered before the run (step outputs, a `for_each` list, or a secret not readable now): its targets are those of the inputs known now",
                        s.id
                    ));
                } else if found.is_empty() {
                    u.push(format!("{}: `{}` does not say what these inputs change: check it by hand", s.id, s.uses));
                }
            }
            out.push(StepTargets { step: s.id.clone(), targets: found });
        }
    }
    out
}

/// Why a drill is refused: every collision, then how to fix it.
pub fn refusal(rb: &Runbook, c: &DrillCheck) -> String {
    let mut out = format!(
        "the drill of `{}` is refused: {} target(s) it must not touch; nothing was run, nothing was written",
        rb.name,
        c.collisions.len()
    );
    for col in &c.collisions {
        out += &format!("\n  ✗ {col}");
    }
    out += "\n  give the drill its own target in `drill.params` (the overlay), or fix `drill.protect` if it names a drill target";
    out
}

/// What the drill changes, in words: `record = drill.example.com (instead of app.example.com)`.
pub fn overlay_lines(c: &DrillCheck) -> Vec<String> {
    c.overlaid
        .iter()
        .map(|o| {
            let show = |v: &Value| v.as_str().map_or_else(|| v.to_string(), str::to_string);
            match &o.production {
                Some(p) => format!("{} = {} (the drill's, instead of {})", o.name, show(&o.drill), show(p)),
                None => format!("{} = {} (the drill's)", o.name, show(&o.drill)),
            }
        })
        .collect()
}

/// The drill's first event: what the overlay changed, what was checked, what could not be.
pub(super) fn started_note(c: &DrillCheck) -> crate::state::EventKind {
    let mut text = format!("drill: {} mutating step(s) checked against `protect` and production: no collision", c.checked);
    for l in overlay_lines(c) {
        text += &format!("\n  overlay: {l}");
    }
    for u in &c.unresolved {
        text += &format!("\n  unresolved: {u}");
    }
    let data = serde_json::json!({
        "kind": "drill",
        "overlay": c.overlaid.iter().map(|o| serde_json::json!({"param": o.name, "drill": o.drill, "production": o.production})).collect::<Vec<_>>(),
        "unresolved": c.unresolved,
        "production_params": c.production,
    });
    crate::state::EventKind::Note { step: None, text, data: Some(data) }
}
