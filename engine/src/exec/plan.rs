//! `phoenix run --dry-run`: the plan, rendered as far as it can be without running anything.

use std::sync::{Arc, RwLock};

use super::context::Context;
use super::engine::{Engine, RunError};
use super::prepare::{self, now_ms};
use crate::runbook::{Plan, Runbook};
use serde_json::Value;

use crate::template::{Redactor, eval_value, render_tree};

impl Engine {
    /// The plan of a run, rendered as far as it can be without running anything.
    pub fn dry_run(&self, rb: &Runbook, params: &[(String, String)]) -> Result<String, RunError> {
        let (ctx, redactor, lock) = dry_context(rb, params)?;
        let mut out = format!("Plan of `{}` (dry run: nothing that changes anything is executed)\n", rb.name);
        if let Some(l) = lock {
            out += &format!("lock: {l}\n");
        }
        let mut n = 0;
        // What would fail if it ran now: secrets that cannot be read, then each step's own.
        let mut problems: Vec<String> = rb
            .secrets
            .keys()
            .filter_map(|name| {
                ctx.secrets.resolve(name).err().map(|e| format!("secret `{name}`: {}", e.trim_start_matches(&format!("secret `{name}`: "))))
            })
            .collect();
        for (title, plan) in [("steps", &rb.main), ("on_failure", &rb.on_failure), ("on_abort", &rb.on_abort)] {
            if plan.steps.is_empty() {
                continue;
            }
            out += &format!("\n{title}:\n");
            for &i in plan.dag.order() {
                n += 1;
                let (line, found) = plan_line(n, plan, i, &ctx, &redactor);
                out += &line;
                // A step before it may yet create the directory or install the program.
                let unless = if plan.steps[i].needs.is_empty() { "" } else { " (unless a step before it provides it)" };
                problems.extend(found.into_iter().map(|p| format!("{}: {p}{unless}", plan.steps[i].id)));
            }
        }
        if problems.is_empty() {
            out += "\nchecks: every secret can be read, every program and directory is there\n";
        } else {
            out += &format!("\nchecks: {} problem(s) that would fail the run if it ran now:\n", problems.len());
            for p in &problems {
                out += &format!("  ✗ {}\n", redactor.read().expect("poisoned").text(p));
            }
        }
        Ok(out)
    }
}

/// A dry run's template context (params typed, vars rendered, no step ended yet), its
/// redactor, and the lock key.
pub(super) type DryContext = (Context, Arc<RwLock<Redactor>>, Option<String>);

/// The [`DryContext`] of a run of `rb` with `params`.
pub(super) fn dry_context(rb: &Runbook, params: &[(String, String)]) -> Result<DryContext, RunError> {
    let params = prepare::params(rb, params).map_err(RunError::BadInput)?;
    let run_v = prepare::run_value(rb, "dry-run", now_ms(), 1, true);
    let (vars, lock) = prepare::vars_and_lock(rb, &params, &run_v).map_err(RunError::BadInput)?;
    let redactor = Arc::new(RwLock::new(Redactor::default()));
    let ctx = Context {
        params: crate::template::to_mj(&params),
        vars: crate::template::to_mj(&vars),
        run: run_v,
        secrets: Arc::new(super::context::Secrets::new(rb, redactor.clone())),
        steps: Arc::default(),
    };
    Ok((ctx, redactor, lock))
}

/// A step's line of the plan, and what its action can tell now would make it fail.
fn plan_line(n: usize, plan: &Plan, i: usize, ctx: &Context, redactor: &RwLock<Redactor>) -> (String, Vec<String>) {
    let s = &plan.steps[i];
    let needs: Vec<&str> = s.needs.iter().map(|&j| plan.steps[j].id.as_str()).collect();
    let mut line = format!("{n:>3}. {} ({})", s.id, s.uses);
    if !needs.is_empty() {
        line += &format!(" after {}", needs.join(", "));
    }
    if let Some(w) = &s.when {
        line += &format!(
            " when {}",
            match w {
                crate::runbook::Cond::Bool(b) => b.to_string(),
                crate::runbook::Cond::Expr(e) => e.clone(),
            }
        );
    }
    let action = phoenix_plugins::find(&s.uses);
    let redact = |v: &Value| redactor.read().expect("poisoned").json(v);
    let what = |with: &Value| match action {
        Some(a) => a.plan(with),
        None if s.uses == "score" => "sum the signals' weights and pick the level".to_string(),
        None => s.uses.clone(),
    };
    // Checked only for steps that would surely run: one behind `when` may not.
    let check = |v: &Value| if s.when.is_none() { action.map(|a| a.preflight(v)).unwrap_or_default() } else { Vec::new() };
    let mut problems = Vec::new();
    let mut body = String::new();
    match s.for_each.as_ref().map(|fe| items(fe, ctx)) {
        None => {
            let (with, complete) = render(s, &ctx.value(None));
            if complete {
                problems = check(&with);
            }
            let note = if complete { "" } else { " (inputs rendered when it runs)" };
            body += &format!("{}{note}", what(&redact(&with)));
        }
        Some(Some(list)) => {
            line += &format!(" for each of {} item(s)", list.len());
            let mut by_problem: Vec<(String, Vec<usize>)> = Vec::new();
            for (j, item) in list.iter().enumerate() {
                let (with, complete) = render(s, &ctx.value(Some(item)));
                if complete {
                    for p in check(&with) {
                        match by_problem.iter_mut().find(|(q, _)| *q == p) {
                            Some((_, js)) => js.push(j),
                            None => by_problem.push((p, vec![j])),
                        }
                    }
                }
                if j < SHOWN_ITEMS {
                    let note = if complete { "" } else { " (inputs rendered when it runs)" };
                    let item = redactor.read().expect("poisoned").text(&item.to_string());
                    body += &format!(
                        "{}[{j}] item = {item}:\n  {}{note}",
                        if j == 0 { "" } else { "\n" },
                        what(&redact(&with)).replace('\n', "\n  ")
                    );
                }
            }
            if list.len() > SHOWN_ITEMS {
                body += &format!("\n… and {} more item(s)", list.len() - SHOWN_ITEMS);
            }
            // The same problem in several items is said once.
            problems = by_problem
                .into_iter()
                .map(|(p, js)| match js.len() {
                    n if n == list.len() && n > 1 => format!("every item: {p}"),
                    1 => format!("item {}: {p}", js[0]),
                    _ => format!("items {}: {p}", js.iter().map(usize::to_string).collect::<Vec<_>>().join(", ")),
                })
                .collect();
        }
        Some(None) => {
            // The list comes from a step before it: shown with a placeholder for the item.
            line += " for each item (the list is known when it runs)";
            let (with, _) = render(s, &ctx.value(Some(&Value::String("‹item›".into()))));
            body += &format!("{} (inputs rendered when it runs)", what(&redact(&with)));
        }
    }
    (format!("{line}\n       {}\n", body.replace('\n', "\n       ")), problems)
}

/// How many items of a `for_each` the plan shows (all are checked).
const SHOWN_ITEMS: usize = 5;

/// The `for_each` list, when it can be computed before anything runs (from params and vars).
pub(super) fn items(fe: &Value, ctx: &Context) -> Option<Vec<Value>> {
    let list = match fe {
        Value::String(s) => eval_value(crate::template::whole_expression(s).unwrap_or(s), &ctx.value(None)),
        other => render_tree(other, &ctx.value(None), &[], &[]).map_err(|(_, e)| e),
    };
    match list {
        Ok(Value::Array(items)) => Some(items),
        _ => None,
    }
}

/// The step's `with` rendered as far as it can be now: each top-level input on its own, so
/// one that reads a step's outputs leaves the others (`{{ params.pace }}`) rendered. `true`
/// when every input was.
pub(super) fn render(s: &crate::runbook::Step, ctx: &minijinja::Value) -> (Value, bool) {
    let action = phoenix_plugins::find(&s.uses);
    let shell = action.map_or(&[][..], |a| a.shell_fields());
    let exprs = action.map_or(&[][..], |a| a.expression_fields());
    if let Ok(v) = render_tree(&s.with, ctx, shell, exprs) {
        return (v, true);
    }
    let Value::Object(m) = &s.with else { return (s.with.clone(), false) };
    let mut out = serde_json::Map::new();
    for (k, v) in m {
        let one = Value::Object(std::iter::once((k.clone(), v.clone())).collect());
        let rendered = render_tree(&one, ctx, shell, exprs).ok().and_then(|mut r| r.get_mut(k).map(Value::take));
        out.insert(k.clone(), rendered.unwrap_or_else(|| v.clone()));
    }
    (Value::Object(out), false)
}
