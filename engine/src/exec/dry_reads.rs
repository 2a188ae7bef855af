//! `phoenix run --dry-run` runs the steps that only read, for real: the signals and `score`,
//! and each step whose effect is `read` and whose needs all read too (so every value it
//! renders is one a read produced). What they saw is shown under the plan: where DNS points
//! now, what the probes say, the level the score would take. Nothing else runs, nothing is
//! written: the reads run as a throwaway run on an in-memory store (as `phoenix health`
//! does), without the lock, and the level history they compute is not kept. The
//! invariants are checked too, each as before the first step it guards, where their checks
//! need nothing a step produces.

use std::sync::Arc;

use phoenix_plugins::Effect;
use serde_json::Value;

use super::engine::{Engine, RunError, StartOptions};
use crate::runbook::{Role, Runbook, Step};
use crate::state::StepStatus;

/// Engine steps that are not reads whatever their capabilities say: an approval waits for
/// people; a child runbook starts a run of its own.
const NEVER: &[&str] = &["approval", "runbook"];

/// Whether a dry run may run `s` for real (its needs aside).
fn reads(s: &Step) -> bool {
    match s.role {
        Role::Probe(_) | Role::Score => true,
        Role::Action => s.effect == Effect::Read && !NEVER.contains(&s.uses.as_str()),
    }
}

/// The main plan cut down to the steps that read and whose needs all read; `None` when
/// there are none.
pub(crate) fn reads_only(rb: &Runbook) -> Option<Runbook> {
    super::cut::cut(rb, reads)
}

impl Engine {
    /// Checks each invariant now, as it would be checked before the first step it guards:
    /// those whose check needs only params, vars and secrets (the others need what earlier
    /// steps produce, and are said to be checked when the run gets there).
    pub async fn dry_run_invariants(&self, rb: &Runbook, params: &[(String, String)]) -> Result<String, RunError> {
        if rb.invariants.is_empty() {
            return Ok(String::new());
        }
        let (ctx, redactor, _) = super::plan::dry_context(rb, params)?;
        let mut out = format!("\ninvariants, checked now (each as before the first step it guards; {} of them):\n", rb.invariants.len());
        for (i, inv) in rb.invariants.iter().enumerate() {
            let guards: Vec<&str> = inv.around.iter().map(|&s| rb.main.steps[s].id.as_str()).collect();
            let action = phoenix_plugins::find(&inv.uses);
            let (shell, exprs) = action.map_or((&[][..], &[][..]), |a| (a.shell_fields(), a.expression_fields()));
            if crate::template::render_tree(&inv.with, &ctx.value(None), shell, exprs).is_err() {
                out += &format!(
                    "  – {} (around {}): not checked now: its check needs what earlier steps produce\n",
                    inv.name,
                    guards.join(", ")
                );
                continue;
            }
            let cancel = self.inner.shutdown.child_token();
            let v = super::invariant_check::run(self, rb, "dry-run", i, &ctx, &redactor, cancel).await;
            let (mark, word) = if v.held { ("✓", "holds") } else { ("✗", "does NOT hold: the run would halt before it") };
            out += &format!("  {mark} {} (around {}) {word}: {}\n", inv.name, guards.join(", "), v.saw.replace('\n', " "));
        }
        Ok(out)
    }

    /// Runs the runbook's read steps for real (see the module) and says what they saw.
    pub async fn dry_run_reads(&self, rb: &Runbook, params: &[(String, String)]) -> Result<String, RunError> {
        let Some(reads) = reads_only(rb) else {
            return Ok("\nread steps: none (no step whose effect is `read` needs only reads): nothing was run\n".into());
        };
        let (engine, scratch) = self.throwaway(&rb.name)?;
        engine.inner.dry_run.store(true, std::sync::atomic::Ordering::SeqCst);
        let opts = StartOptions { params: params.to_vec(), ..StartOptions::default() };
        let (id, _) = engine.start(Arc::new(reads.clone()), opts).await?;
        let mut out = format!(
            "\nread steps, run for real ({} step(s) whose effect is `read`, needing only reads; nothing else ran, nothing was written):\n",
            reads.main.steps.len()
        );
        for &i in reads.main.dag.order() {
            let s = &reads.main.steps[i];
            let records: Vec<_> =
                scratch.steps(&id)?.into_iter().filter(|r| r.id == s.id || r.id.starts_with(&format!("{}[", s.id))).collect();
            for r in records {
                out += &line(s, &r);
            }
        }
        Ok(out)
    }
}

/// How wide a step's outputs are shown (they are in full in a real run's `status`).
const SHOWN: usize = 240;

fn line(s: &Step, r: &crate::state::StepRecord) -> String {
    let what = if matches!(s.role, Role::Score) { "score".to_string() } else { format!("{} ({})", r.id, s.uses) };
    let said = match (r.status, &r.outputs) {
        (StepStatus::Succeeded, Some(o)) if matches!(s.role, Role::Score) => {
            format!("total {}, level {}", o["total"], o["level"].as_str().unwrap_or("?"))
        }
        (StepStatus::Succeeded, o) => shown(o.as_ref().unwrap_or(&Value::Null)),
        (StepStatus::Skipped, _) => format!("skipped: {}", r.error.as_deref().unwrap_or("its `when` was false")),
        (status, _) => format!("{}: {}", status.as_str(), r.error.as_deref().unwrap_or("no error recorded")),
    };
    let mark = match r.status {
        StepStatus::Succeeded => "✓",
        StepStatus::Skipped => "–",
        _ => "✗",
    };
    format!("  {mark} {what}: {}\n", said.replace('\n', " "))
}

/// Outputs as one line of JSON, cut at [`SHOWN`] characters.
fn shown(v: &Value) -> String {
    let text = v.to_string();
    match text.char_indices().nth(SHOWN) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text,
    }
}

#[cfg(test)]
#[path = "dry_reads_tests.rs"]
mod tests;
