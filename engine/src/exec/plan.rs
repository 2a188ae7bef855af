//! `phoenix run --dry-run`: the plan, rendered as far as it can be without running anything.

use std::sync::Arc;

use super::context::Context;
use super::engine::{Engine, RunError};
use super::prepare::{self, now_ms};
use crate::runbook::{Plan, Runbook};
use crate::template::{Redactor, render_tree};

impl Engine {
    /// The plan of a run, rendered as far as it can be without running anything.
    pub fn dry_run(&self, rb: &Runbook, params: &[(String, String)]) -> Result<String, RunError> {
        let params = prepare::params(rb, params).map_err(RunError::BadInput)?;
        let run_v = prepare::run_value(rb, "dry-run", now_ms(), 1, true);
        let (vars, lock) = prepare::vars_and_lock(rb, &params, &run_v).map_err(RunError::BadInput)?;
        let redactor = Arc::new(std::sync::RwLock::new(Redactor::default()));
        let ctx = Context {
            params: crate::template::to_mj(&params),
            vars: crate::template::to_mj(&vars),
            run: run_v,
            secrets: Arc::new(super::context::Secrets::new(rb, redactor.clone())),
            steps: Arc::default(),
        };
        let mut out = format!("Plan of `{}` (dry run: nothing is executed)\n", rb.name);
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
        for (title, plan) in [("steps", &rb.main), ("on_failure", &rb.on_failure)] {
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

/// A step's line of the plan, and what its action can tell now would make it fail.
fn plan_line(n: usize, plan: &Plan, i: usize, ctx: &Context, redactor: &std::sync::RwLock<Redactor>) -> (String, Vec<String>) {
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
    if s.for_each.is_some() {
        line += " for each item";
    }
    let action = phoenix_plugins::find(&s.uses);
    let shell = action.map_or(&[][..], |a| a.shell_fields());
    let exprs = action.map_or(&[][..], |a| a.expression_fields());
    let (with, note, problems) = match render_tree(&s.with, &ctx.value(None), shell, exprs) {
        // Checked only for steps that would surely run: one behind `when` or a loop may not.
        Ok(v) if s.when.is_none() && s.for_each.is_none() => {
            let problems = action.map(|a| a.preflight(&v)).unwrap_or_default();
            (v, String::new(), problems)
        }
        Ok(v) => (v, String::new(), Vec::new()),
        Err(_) => (s.with.clone(), " (inputs rendered when it runs)".to_string(), Vec::new()),
    };
    let with = redactor.read().expect("poisoned").json(&with);
    let what = match action {
        Some(a) => a.plan(&with),
        None if s.uses == "score" => "sum the signals' weights and pick the level".to_string(),
        None => s.uses.clone(),
    };
    (format!("{line}\n       {}{note}\n", what.replace('\n', "\n       ")), problems)
}
