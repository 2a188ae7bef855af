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
        for (title, plan) in [("steps", &rb.main), ("on_failure", &rb.on_failure)] {
            if plan.steps.is_empty() {
                continue;
            }
            out += &format!("\n{title}:\n");
            for &i in plan.dag.order() {
                n += 1;
                out += &plan_line(n, plan, i, &ctx, &redactor);
            }
        }
        Ok(out)
    }
}

fn plan_line(n: usize, plan: &Plan, i: usize, ctx: &Context, redactor: &std::sync::RwLock<Redactor>) -> String {
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
    let (with, note) = match render_tree(&s.with, &ctx.value(None), shell, exprs) {
        Ok(v) => (v, String::new()),
        Err(_) => (s.with.clone(), " (inputs rendered when it runs)".to_string()),
    };
    let with = redactor.read().expect("poisoned").json(&with);
    let what = match action {
        Some(a) => a.plan(&with),
        None if s.uses == "score" => "sum the signals' weights and pick the level".to_string(),
        None => s.uses.clone(),
    };
    format!("{line}\n       {}{note}\n", what.replace('\n', "\n       "))
}
