//! A run's recovery time and recovery point, measured from its records (never asserted):
//! once, when its main plan ends (a drill's: before its teardown), and stored in its record
//! (`RunRecord::measure`), so that later runbook edits or pruned records never change a past
//! run's figures. Views read the stored figures; a record written before they were stored
//! is measured when shown, from its step records and stored runbook.
//!
//! - **RTO**: from the run's start — or the start of the alert it was started for
//!   (`RunRecord::alert`) when that is earlier — to the end of the first passing
//!   verification step. A
//!   verification step is a main step of effect `read` (not a signal's probe nor `score`)
//!   that succeeded and started after every main step of effect above `read` that ran had
//!   ended (for dr-failover: `verify_http` and the other checks after `switch_dns`). No such
//!   step, or no step above `read` ran (nothing was recovered): no RTO.
//! - **Stages**: each main step that ran, with its duration (first start to last end).
//! - **RPO**: the outputs of the last succeeded main `postgres.replication_lag` step
//!   (`lag_seconds`: the standby's replay lag) and `storage.lag` step (`rpo_seconds`: the
//!   oldest object the copy lacked); `rpo_seconds` is the larger. A runbook measures them
//!   right before its switch (dr-failover: `db_lag`, `object_lag` before `switch_dns`).

use serde_json::{Value, json};

use crate::runbook::{Role, Runbook};
use crate::state::{PlanKind, RunRecord, StepRecord, StepStatus};

/// The measurements of run `run` of `rb` from its step `records`, as JSON:
/// `{rto_seconds, verified_by, rto_from ("run" or "alert"), rto_note, stages: [{step,
/// seconds}], rpo_seconds, db_lag_seconds, object_lag_seconds}` (a null where nothing was
/// measured).
pub fn measure(rb: &Runbook, run: &RunRecord, records: &[StepRecord]) -> Value {
    let base = |id: &str| id.split('[').next().unwrap_or(id).to_string();
    let main: Vec<(&StepRecord, &crate::runbook::Step)> = records
        .iter()
        .filter(|r| r.plan == PlanKind::Main)
        .filter_map(|r| rb.main.find(&base(&r.id)).map(|i| (r, &rb.main.steps[i])))
        .collect();
    let acted_until = main
        .iter()
        .filter(|(r, s)| s.effect > phoenix_plugins::Effect::Read && r.started_at.is_some())
        .filter_map(|(r, _)| r.finished_at)
        .max();
    // No step above `read` ran: nothing was recovered, so no read verified a recovery.
    let verified = acted_until.and_then(|until| {
        main.iter()
            .filter(|(r, s)| s.role == Role::Action && s.effect == phoenix_plugins::Effect::Read && r.status == StepStatus::Succeeded)
            .filter(|(r, _)| r.started_at.is_some_and(|t| t >= until))
            .filter_map(|(r, _)| r.finished_at.map(|f| (f, r.id.clone())))
            .min()
    });
    let (from, rto_from, rto_note) = crate::state::AlertOrigin::rto_start(run.alert.as_ref(), run.started_at);
    let secs = |ms: u64| ms as f64 / 1000.0;
    let mut stages: Vec<(u64, Value)> = Vec::new();
    for (r, _) in &main {
        if let (Some(a), Some(b)) = (r.started_at, r.finished_at) {
            stages.push((a, json!({ "step": r.id, "seconds": secs(b.saturating_sub(a)), "status": r.status.as_str() })));
        }
    }
    stages.sort_by_key(|(a, _)| *a);
    let last_output = |uses: &str, field: &str| {
        main.iter()
            .filter(|(r, s)| s.uses == uses && r.status == StepStatus::Succeeded)
            .max_by_key(|(r, _)| r.finished_at)
            .and_then(|(r, _)| r.outputs.as_ref()?.get(field)?.as_f64())
    };
    let db = last_output("postgres.replication_lag", "lag_seconds");
    let objects = last_output("storage.lag", "rpo_seconds");
    let rpo = match (db, objects) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    };
    json!({
        "rto_seconds": verified.as_ref().map(|(f, _)| secs(f.saturating_sub(from))),
        "verified_by": verified.map(|(_, id)| id),
        "rto_from": rto_from,
        "rto_note": rto_note,
        "stages": stages.into_iter().map(|(_, v)| v).collect::<Vec<_>>(),
        "rpo_seconds": rpo,
        "db_lag_seconds": db,
        "object_lag_seconds": objects,
    })
}

#[cfg(test)]
#[path = "drill_measure_tests.rs"]
mod tests;
