//! What `status`, `runs` and `logs` show, as JSON: the same whether read from the store or
//! answered by the process that owns it.

use serde_json::{Value, json};

use crate::state::{Store, StoreError};

fn ts(ms: u64) -> String {
    humantime::format_rfc3339_millis(std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms)).to_string()
}

/// Every run, newest first.
pub fn runs(store: &Store) -> Result<Value, StoreError> {
    let runs: Vec<Value> = store
        .runs()?
        .iter()
        .map(|r| {
            Ok(json!({
                "id": r.id, "runbook": r.runbook, "status": r.status.as_str(), "attempt": r.attempt,
                "started_at": ts(r.started_at), "finished_at": r.finished_at.map(ts),
                "duration_ms": r.finished_at.unwrap_or(r.updated_at).saturating_sub(r.started_at),
                "error": r.error, "lock": r.lock, "parent": r.parent.as_ref().map(|(p, s)| json!({"run": p, "step": s})),
                "process_gone": gone(r), "owner": r.owner, "drill": r.drill,
                "measure": measured(store, r)?,
                "teardown": if r.drill { teardown(store, r)? } else { Value::Null },
                "alert": r.alert,
            }))
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    Ok(json!({ "runs": runs }))
}

/// One run with its steps (the latest run when `id` is none).
pub fn status(store: &Store, id: Option<&str>) -> Result<Option<Value>, StoreError> {
    let run = match id {
        Some(id) => store.run(id)?,
        None => store.runs()?.into_iter().next(),
    };
    let Some(r) = run else { return Ok(None) };
    let mut records = store.steps(&r.id)?;
    // Plan order (file order), each step followed by its items in item order.
    records.sort_by_key(|s| {
        let item = s.id.rsplit_once('[').and_then(|(_, n)| n.trim_end_matches(']').parse::<usize>().ok());
        let plan = match s.plan {
            crate::state::PlanKind::Main => 0,
            crate::state::PlanKind::OnFailure => 1,
            crate::state::PlanKind::OnAbort => 2,
            crate::state::PlanKind::Teardown => 3,
        };
        (plan, s.order, item.map_or(0, |n| n + 1))
    });
    let steps: Vec<Value> = records
        .iter()
        .map(|s| {
            // Votes recorded on a halted run show before the resume applies them.
            let pending = match s.status {
                crate::state::StepStatus::Waiting => crate::exec::votes::pending(store, &r.id, &s.id)?,
                _ => Vec::new(),
            };
            let all: Vec<crate::state::Approval> = s.votes.iter().chain(&pending).cloned().collect();
            let policy = crate::exec::votes::Policy::of(s.inputs.as_ref(), None);
            let (approval, applied) = match crate::exec::votes::tally(&all, policy.quorum) {
                _ if s.status != crate::state::StepStatus::Waiting => (s.approval.as_ref(), s.approval.is_some()),
                crate::exec::votes::Tally::Approved(d) | crate::exec::votes::Tally::Rejected(d) => (Some(d), false),
                crate::exec::votes::Tally::Open { .. } => (None, false),
            };
            let decided = approval.map(|a| crate::exec::decided::describe(a) + if applied { "" } else { ", applied when the run resumes" });
            // An approval step's votes so far, and how many more approvals it needs.
            let votes = (s.inputs.as_ref().is_some_and(|i| i.get("approvers").is_some()) || !all.is_empty()).then(|| {
                let needed = match crate::exec::votes::tally(&all, policy.quorum) {
                    crate::exec::votes::Tally::Open { needed, .. } if s.status == crate::state::StepStatus::Waiting => needed,
                    _ => 0,
                };
                json!({ "quorum": policy.quorum, "needed": needed, "cast": crate::exec::votes::view(&all), "pending": pending.len() })
            });
            Ok(json!({
                "id": s.id, "plan": s.plan, "status": s.status.as_str(), "attempts": s.attempts,
                "started_at": s.started_at.map(ts), "finished_at": s.finished_at.map(ts),
                "duration_ms": match (s.started_at, s.finished_at) { (Some(a), Some(b)) => Some(b.saturating_sub(a)), _ => None },
                "error": s.error, "inputs": s.inputs, "outputs": s.outputs, "skip": s.skip, "upstream": s.upstream, "approval": approval,
                "approval_applied": approval.map(|_| applied), "decided": decided, "votes": votes,
                "child_run": s.child_run, "uncertain": s.uncertain,
                // Its action succeeded; the after-checks of its invariants are not all in.
                "acted": s.acted.then_some(true),
            }))
        })
        .collect::<Result<_, StoreError>>()?;
    Ok(Some(json!({
        "id": r.id, "runbook": r.runbook, "file": r.file, "status": r.status.as_str(), "attempt": r.attempt,
        "started_at": ts(r.started_at), "finished_at": r.finished_at.map(ts), "error": r.error, "outputs": r.outputs,
        "params": r.params, "lock": r.lock, "parent": r.parent, "pid": r.pid, "dir": r.dir, "owner": r.owner, "drill": r.drill,
        "process_gone": gone(&r),
        "measure": measured(store, &r)?, "alert": r.alert,
        "teardown": if r.drill { teardown(store, &r)? } else { Value::Null },
        "decision": last_reevaluation(store, &r.id)?,
        "steps": steps,
    })))
}

/// The last time a resume evaluated the run's stale decision again (`exec/stale.rs`): then
/// and now, as text and data, and when.
fn last_reevaluation(store: &Store, id: &str) -> Result<Option<Value>, StoreError> {
    Ok(store.events(id, 0)?.into_iter().rev().find_map(|e| match e.kind {
        crate::state::EventKind::Note { text, data: Some(d), .. } if d["kind"] == "decision_reevaluated" => {
            Some(json!({ "at": ts(e.at), "text": text, "data": d }))
        }
        _ => None,
    }))
}

/// A run's log lines and events.
pub fn logs(store: &Store, id: &str, step: Option<&str>) -> Result<Option<Value>, StoreError> {
    if store.run(id)?.is_none() {
        return Ok(None);
    }
    let lines: Vec<Value> = store
        .logs(id, step)?
        .iter()
        .map(|l| json!({ "seq": l.seq, "at": ts(l.at), "step": l.step, "stream": l.stream, "text": l.text }))
        .collect();
    let events: Vec<Value> = store
        .events(id, 0)?
        .into_iter()
        .filter(|e| match (&e.kind, step) {
            (_, None) => true,
            (
                crate::state::EventKind::Step { step: s, .. }
                | crate::state::EventKind::Retry { step: s, .. }
                | crate::state::EventKind::Approval { step: s, .. }
                | crate::state::EventKind::Invariant { step: s, .. },
                Some(want),
            ) => s == want || s.starts_with(&format!("{want}[")),
            _ => false,
        })
        .map(|e| {
            let mut v = serde_json::to_value(&e).expect("events serialize");
            v["at"] = json!(ts(e.at));
            v
        })
        .collect();
    Ok(Some(json!({ "run": id, "step": step, "lines": lines, "events": events })))
}

/// [`logs`] from line number `from_line` on (a line's `seq`: lines left out of a loud step's
/// output are removed, so a count of lines seen would not do) and without the first
/// `from_event` events: what a follower (the command line, the page) has not seen yet.
pub fn logs_from(store: &Store, id: &str, step: Option<&str>, from_line: u64, from_event: usize) -> Result<Option<Value>, StoreError> {
    let Some(mut v) = logs(store, id, step)? else { return Ok(None) };
    if let Some(lines) = v["lines"].as_array_mut() {
        lines.retain(|l| l["seq"].as_u64().is_some_and(|s| s >= from_line));
    }
    if let Some(events) = v["events"].as_array_mut() {
        events.drain(..from_event.min(events.len()));
    }
    Ok(Some(v))
}

/// A drill's teardown: `succeeded`, `failed`, `pending`, or null without teardown steps.
fn teardown(store: &Store, r: &crate::state::RunRecord) -> Result<Value, StoreError> {
    let statuses: Vec<_> = store.steps(&r.id)?.iter().filter(|s| s.plan == crate::state::PlanKind::Teardown).map(|s| s.status).collect();
    Ok(super::driver::teardown_result(&statuses).map_or(Value::Null, Value::from))
}

/// A run's RTO, stages and RPO: as stored when its main plan ended (`stored: true`). A drill
/// recorded before figures were stored is measured now from its records and stored runbook
/// (`stored: false`; null when the text no longer validates); a production run without
/// stored figures (still running, or recorded before) has none.
fn measured(store: &Store, r: &crate::state::RunRecord) -> Result<Value, StoreError> {
    if let Some(m) = &r.measure {
        let mut m = m.clone();
        m["stored"] = Value::Bool(true);
        return Ok(m);
    }
    if !r.drill {
        return Ok(Value::Null);
    }
    let text = store.source(&r.id)?.unwrap_or_default();
    let Some(rb) = crate::load_str(&text, std::path::Path::new(&r.file)).runbook else { return Ok(Value::Null) };
    let mut m = super::drill_measure::measure(&rb, r, &store.steps(&r.id)?);
    m["stored"] = Value::Bool(false);
    Ok(m)
}

/// What the run's stored runbook says of each step: its action (`uses`), description, needs
/// and role (`action`, `probe`, `score`, `on_failure`, `on_abort`). Empty when the text no longer
/// validates. Only names are read from the text, never values (they may hold secrets).
pub fn definitions(store: &Store, id: &str) -> Result<Option<Value>, StoreError> {
    let Some(run) = store.run(id)? else { return Ok(None) };
    let text = store.source(id)?.unwrap_or_default();
    let Some(rb) = crate::load_str(&text, std::path::Path::new(&run.file)).runbook else {
        return Ok(Some(json!({ "description": null, "steps": {} })));
    };
    let mut steps = serde_json::Map::new();
    for (plan, section) in [(&rb.main, None), (&rb.on_failure, Some("on_failure")), (&rb.on_abort, Some("on_abort"))] {
        for s in &plan.steps {
            let role = match s.role {
                _ if section.is_some() => section.unwrap_or_default(),
                crate::runbook::Role::Action => "action",
                crate::runbook::Role::Probe(_) => "probe",
                crate::runbook::Role::Score => "score",
            };
            let needs: Vec<&str> = s.needs.iter().map(|&n| plan.steps[n].id.as_str()).collect();
            steps.insert(
                s.id.clone(),
                json!({ "uses": s.uses, "description": s.description, "needs": needs, "role": role, "effect": s.effect }),
            );
        }
    }
    Ok(Some(json!({ "description": rb.description, "steps": steps })))
}

/// Whether a process is alive (a `running` run whose process is gone crashed).
/// A run the store says is running, whose process is gone (crashed or killed).
/// Whether a running run's process is gone. A run a cluster node drives has its pid on that
/// node's machine, not this one's: the cluster says whether its owner lives (the leader takes
/// over a run whose node is gone), so the answer is never guessed from a local pid.
fn gone(r: &crate::state::RunRecord) -> bool {
    r.status == crate::state::RunStatus::Running && r.owner.is_none() && !r.pid.is_some_and(alive)
}

fn alive(pid: u32) -> bool {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), None).is_ok()
}
