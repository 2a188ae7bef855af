//! Steps whose effect is uncertain at a resume: a non-idempotent step found running after a
//! crash, or recorded as stopped mid-way (Ctrl-C, SIGTERM, its timeout). A resume halts and
//! asks for `--retry` or `--skip`, and those flags name only such steps.

use std::collections::HashMap;

use super::engine::RunError;
use crate::runbook::Runbook;
use crate::state::{StepRecord, StepStatus};

/// Whether a step's effect is uncertain: found running after a crash (not a child run), or
/// recorded as stopped mid-way (itself or one of its items).
pub(super) fn in_doubt(records: &HashMap<String, StepRecord>, uncertain: &HashMap<String, String>, step: &str) -> bool {
    uncertain.contains_key(step) || records.get(step).is_some_and(|r| r.status == StepStatus::Running && r.child_run.is_none() && !r.acted)
}

/// The halt that asks the operator about steps whose effect is uncertain (step, why).
pub(super) fn ask_operator(id: &str, blocked: &[(String, String)]) -> String {
    let list: Vec<&str> = blocked.iter().map(|(s, _)| s.as_str()).collect();
    let why: Vec<String> = blocked.iter().map(|(s, w)| format!("  {s}: {w}")).collect();
    let flags: Vec<String> = list.iter().map(|s| format!("--retry {s}")).collect();
    let skips: Vec<String> = list.iter().map(|s| format!("--skip {s}")).collect();
    format!(
        "step(s) {} were stopped mid-way and are not idempotent: they may or may not have taken effect.\n{}\n  check, then either run them again:  phoenix resume {id} {}\n  or count them as done:  phoenix resume {id} {}",
        list.join(", "),
        why.join("\n"),
        flags.join(" "),
        skips.join(" ")
    )
}

/// Steps recorded as stopped mid-way while not idempotent, with why; a `for_each` step is
/// uncertain when one of its items is.
pub(super) fn uncertain_steps(records: &HashMap<String, StepRecord>) -> HashMap<String, String> {
    let mut out: HashMap<String, String> = HashMap::new();
    let mut ids: Vec<&String> = records.keys().collect();
    ids.sort();
    for k in ids {
        let r = &records[k];
        let Some(why) = &r.uncertain else { continue };
        let step = k.split('[').next().unwrap_or_default().to_string();
        let text = if &step == k { why.clone() } else { format!("{k} {why}") };
        out.entry(step).and_modify(|w| *w = format!("{w}; {text}")).or_insert(text);
    }
    out
}

/// `--retry` and `--skip` name steps whose effect is uncertain — found in flight after a
/// crash (running, with no child run to resume instead), or recorded as stopped mid-way —
/// and nothing else: a typo, or a step in another state, would otherwise be ignored while
/// the operator believes it decided something.
pub(super) fn check_in_flight(
    id: &str,
    rb: &Runbook,
    records: &HashMap<String, StepRecord>,
    uncertain: &HashMap<String, String>,
    retry: &[String],
    skip: &[String],
) -> Result<(), RunError> {
    let ids: Vec<&str> = rb.main.steps.iter().chain(&rb.on_failure.steps).map(|s| s.id.as_str()).collect();
    for (flag, names) in [("--retry", retry), ("--skip", skip)] {
        for name in names {
            if !ids.contains(&name.as_str()) {
                return Err(RunError::BadInput(format!(
                    "{flag} {name}: run {id} has no step `{name}` ({})",
                    crate::suggest::hint(name, ids.iter().copied())
                )));
            }
            let rec = records.get(name);
            let in_flight = rec.is_some_and(|r| {
                (r.status == StepStatus::Running && r.child_run.is_none())
                    || (matches!(r.status, StepStatus::Failed | StepStatus::Cancelled) && uncertain.contains_key(name))
            });
            if !in_flight {
                let state =
                    rec.map_or("pending", |r| if r.child_run.is_some() { "a child run (resumed as it is)" } else { r.status.as_str() });
                return Err(RunError::BadInput(format!(
                    "{flag} {name}: `{name}` is {state}, not a step found in flight after a crash or stopped mid-way; {flag} applies only to those (the run was not changed)"
                )));
            }
        }
    }
    if let Some(both) = retry.iter().find(|r| skip.contains(r)) {
        return Err(RunError::BadInput(format!("`{both}` is given to both --retry and --skip: choose one")));
    }
    Ok(())
}
