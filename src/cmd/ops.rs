//! `status`, `runs`, `logs`, `cancel`: answered from the store, or by the process that owns
//! it (`approve` is in approve.rs).

use std::path::{Path, PathBuf};
use std::time::Duration;

use phoenix_engine::exec::{control, views};
use phoenix_engine::state::{Batch, EventKind, RunRecord, RunStatus, Seen, StepStatus};
use serde_json::{Value, json};

use super::state::{self, Access};
use crate::cli::Output;
use crate::exit::Exit;

pub(super) fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// Asks the store or its owner; on failure the error is printed and mapped to an exit code.
pub(super) fn query(
    state_dir: &Option<PathBuf>,
    req: Value,
    local: impl FnOnce(&phoenix_engine::state::Store) -> Result<Value, String>,
) -> Result<Value, Exit> {
    let dir = state::dir(state_dir);
    with_store(&dir, &req, |v| v, local).map_err(fail)
}

/// Runs a request against the store: over the socket when another process owns it, else
/// directly — also when that process ends while being asked (a run that halts as someone
/// approves it): then the store is opened once it lets go.
pub(super) fn with_store<T>(
    dir: &Path,
    req: &Value,
    remote: impl FnOnce(Value) -> T,
    local: impl FnOnce(&phoenix_engine::state::Store) -> Result<T, String>,
) -> Result<T, String> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    loop {
        let gone = match state::open(dir) {
            Ok(Access::Direct(store)) => return local(&store),
            Ok(Access::Owner) => match rt.block_on(control::ask_owner(dir, req)) {
                Ok(answer) => return answer.map(remote),
                Err(e) => e,
            },
            Err(e) if e.contains("does not answer") => e,
            Err(e) => return Err(e),
        };
        if std::time::Instant::now() > deadline {
            return Err(gone);
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// Asks a store opened by `state::open`: directly, or over the socket of the process that owns it.
pub(super) fn ask(
    dir: &Path,
    access: &Access,
    req: &Value,
    local: impl FnOnce(&phoenix_engine::state::Store) -> Result<Value, String>,
) -> Result<Value, String> {
    match access {
        Access::Direct(store) => local(store),
        Access::Owner => {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            rt.block_on(control::request(dir, req))
        }
    }
}

/// Prints an error; an unknown run is bad input (2), anything else a failure (1).
pub(super) fn fail(e: String) -> Exit {
    eprintln!("error: {e}");
    if e.starts_with("no run") { Exit::BadInput } else { Exit::Failed }
}

fn dur(ms: Option<u64>) -> String {
    ms.map_or(String::new(), |m| phoenix_plugins::duration::format_duration(std::time::Duration::from_millis(m)))
}

pub(crate) fn status(state_dir: &Option<PathBuf>, run: Option<&str>, out: Output) -> Exit {
    let v = match query(state_dir, json!({"op": "status", "run": run}), |s| {
        views::status(s, run)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("no run `{}` (phoenix runs lists them)", run.unwrap_or("(latest)")))
    }) {
        Ok(v) => v,
        Err(e) => return e,
    };
    if out == Output::Json {
        println!("{}", serde_json::to_string_pretty(&v).expect("JSON"));
        return Exit::Ok;
    }
    println!(
        "run {}  `{}`  {}  (attempt {})",
        v["id"].as_str().unwrap_or(""),
        v["runbook"].as_str().unwrap_or(""),
        v["status"].as_str().unwrap_or(""),
        v["attempt"]
    );
    println!(
        "started {}{}{}",
        v["started_at"].as_str().unwrap_or(""),
        v["finished_at"].as_str().map_or(String::new(), |f| format!(", finished {f}")),
        v["dir"].as_str().map_or(String::new(), |d| format!(", in {d}"))
    );
    if let Some(a) = v["alert"].as_object() {
        let s = |k: &str| a.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        println!("started for alert {} (fingerprint {}), firing since {}", s("alertname"), s("fingerprint"), s("starts_at"));
    }
    if let Some(rto) = v["measure"]["rto_seconds"].as_f64() {
        let from = if v["measure"]["rto_from"] == "alert" { "the alert's start" } else { "the run's start" };
        let by = v["measure"]["verified_by"].as_str().unwrap_or("");
        println!("RTO {rto:.1}s: from {from} to the end of `{by}`, the first passing verification");
    }
    if let Some(note) = v["measure"]["rto_note"].as_str() {
        println!("  {note}");
    }
    let steps = v["steps"].as_array().map(Vec::as_slice).unwrap_or_default();
    // Halted at gates that are all decided since: it no longer asks, it waits for a resume.
    let waiting: Vec<&Value> = steps.iter().filter(|s| s["status"] == "waiting").collect();
    let all_decided = !waiting.is_empty() && waiting.iter().all(|s| s["decided"].is_string());
    let stale = v["decision"]["data"]["verdict"] == "stale";
    if v["status"] == "halted" && all_decided && !stale {
        let ids: Vec<&str> = waiting.iter().filter_map(|s| s["id"].as_str()).collect();
        println!("halted: {} decided; continue it with `phoenix resume {}`", ids.join(", "), v["id"].as_str().unwrap_or(""));
    } else if let Some(e) = v["error"].as_str() {
        let label = if v["status"] == "halted" { "halted" } else { "error" };
        println!("{label}: {}", crate::visible::visible(e));
    }
    if let Some(line) = super::health::status_line(&v) {
        println!("{line}");
    }
    if let Some(d) = v["decision"].as_object() {
        println!("{}", crate::visible::visible(d.get("text").and_then(Value::as_str).unwrap_or("")));
        let open = matches!(v["status"].as_str(), Some("halted" | "failed" | "running"));
        if open && d.get("data").is_some_and(|x| x["verdict"] == "stale") {
            let id = v["id"].as_str().unwrap_or("");
            println!(
                "the resume stopped there: the signals no longer call for the action
  go on anyway:  phoenix resume {id} --confirm --reason \"…\"
  or abort:  phoenix resume {id} --abort --reason \"…\""
            );
        }
    }
    if v["process_gone"].as_bool() == Some(true) {
        println!(
            "the process that ran it is gone (crashed or killed): continue it with `phoenix resume {}`",
            v["id"].as_str().unwrap_or("")
        );
    }
    println!();
    let w = steps.iter().filter_map(|s| s["id"].as_str()).map(str::len).max().unwrap_or(0).max(20);
    println!("{:<w$} {:<15} {:>8} {:>9}  NOTE", "STEP", "STATUS", "ATTEMPTS", "DURATION");
    for s in steps {
        let note = s["uncertain"]
            .as_str()
            .map(|u| format!("UNCERTAIN: {u}"))
            .or_else(|| s["decided"].as_str().filter(|_| s["status"] == "waiting").map(str::to_string))
            .or_else(|| s["error"].as_str().map(str::to_string))
            .or_else(|| s["child_run"].as_str().map(|c| format!("child run {c}")))
            .or_else(|| {
                (s["acted"] == true)
                    .then(|| "its action succeeded; its invariants' after-checks are not all in (resume checks them)".to_string())
            })
            .or_else(|| (s["status"] == "running").then(|| started_ago(&s["started_at"])).flatten())
            .unwrap_or_default();
        let line = format!(
            "{:<w$} {:<15} {:>8} {:>9}  {}",
            s["id"].as_str().unwrap_or(""),
            if s["status"] == "waiting" && s["decided"].is_string() { "decided" } else { s["status"].as_str().unwrap_or("") },
            s["attempts"].to_string(),
            dur(s["duration_ms"].as_u64()),
            crate::visible::visible(note.lines().next().unwrap_or(""))
        );
        println!("{}", line.trim_end());
    }
    if let Some(o) = v["outputs"].as_object().filter(|o| !o.is_empty()) {
        println!("\noutputs: {}", serde_json::to_string(o).expect("JSON"));
    }
    uncertain_advice(&v, steps);
    Exit::Ok
}

/// What to do about steps stopped mid-way that are not idempotent: resume will ask.
fn uncertain_advice(v: &Value, steps: &[Value]) {
    // An item (`step[2]`) is decided with its step.
    let mut ids: Vec<&str> =
        steps.iter().filter(|s| s["uncertain"].is_string()).filter_map(|s| s["id"].as_str()?.split('[').next()).collect();
    ids.dedup();
    if ids.is_empty() || v["status"] == "succeeded" {
        return;
    }
    let run = v["id"].as_str().unwrap_or("");
    let retry: Vec<String> = ids.iter().map(|s| format!("--retry {s}")).collect();
    let skip: Vec<String> = ids.iter().map(|s| format!("--skip {s}")).collect();
    println!("\n! {} stopped mid-way and not idempotent: they may or may not have taken effect", ids.join(", "));
    println!("  check, then either run them again:  phoenix resume {run} {}", retry.join(" "));
    println!("  or count them as done:  phoenix resume {run} {}", skip.join(" "));
}

/// `started 4m12s ago`, for a step still running (is it slow, or stuck?).
fn started_ago(at: &Value) -> Option<String> {
    let at = humantime::parse_rfc3339(at.as_str()?).ok()?;
    let ago = std::time::SystemTime::now().duration_since(at).ok()?;
    Some(format!("started {} ago", phoenix_plugins::duration::format_duration(Duration::from_secs(ago.as_secs()))))
}

pub(crate) fn runs(state_dir: &Option<PathBuf>, out: Output) -> Exit {
    let v = match query(state_dir, json!({"op": "runs"}), |s| views::runs(s).map_err(|e| e.to_string())) {
        Ok(v) => v,
        Err(e) => return e,
    };
    if out == Output::Json {
        println!("{}", serde_json::to_string_pretty(&v).expect("JSON"));
        return Exit::Ok;
    }
    let runs = v["runs"].as_array().cloned().unwrap_or_default();
    if runs.is_empty() {
        println!("no runs yet");
        return Exit::Ok;
    }
    println!("{:<22} {:<24} {:<10} {:<25} {:>9}", "RUN", "RUNBOOK", "STATUS", "STARTED", "DURATION");
    let mut gone = Vec::new();
    for r in &runs {
        let mut status = r["status"].as_str().unwrap_or("").to_string();
        if r["process_gone"] == true {
            status.push('!');
            gone.push(r["id"].as_str().unwrap_or(""));
        }
        println!(
            "{:<22} {:<24} {:<10} {:<25} {:>9}",
            r["id"].as_str().unwrap_or(""),
            r["runbook"].as_str().unwrap_or(""),
            status,
            r["started_at"].as_str().unwrap_or(""),
            dur(r["duration_ms"].as_u64())
        );
    }
    if let Some(first) = gone.first() {
        println!("\n! the process that ran it is gone (crashed or killed): continue it with `phoenix resume {first}`");
    }
    Exit::Ok
}

pub(crate) fn cancel(state_dir: &Option<PathBuf>, run: &str, operator: Option<String>, out: Output) -> Exit {
    let dir = state::dir(state_dir);
    let r = with_store(
        &dir,
        &json!({"op": "cancel", "run": run, "by": operator}),
        |_| format!("cancelling run {run}: its running steps are being stopped"),
        |store| {
            let by = state::claim(operator.clone())?;
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            rt.block_on(cancel_stored(store, run, &by))
        },
    );
    report(r, out)
}

/// Cancels a run that no process drives: its unfinished steps are cancelled, processes left
/// over from a crash stopped, its lock released.
pub(crate) async fn cancel_stored(store: &phoenix_engine::state::Store, run: &str, by: &str) -> Result<String, String> {
    // Written only if the run is still as read: a resume that takes the run over while its
    // orphans are being stopped wins, and this cancel writes nothing.
    let (mut r, seen) = store.run_seen(run).map_err(|e| e.to_string())?.ok_or_else(|| format!("no run `{run}`"))?;
    if r.status.is_final() {
        return Err(format!("run {run} is already {}", r.status.as_str()));
    }
    crate::cluster::refuse_if_driven(&r)?;
    // A run still marked running here crashed: its step processes may have outlived it. They
    // are stopped only after a commit has said this process may still write the run (a
    // cluster node that was deposed and does not know it yet fails here, before it stops the
    // processes of a run another node now drives), and that nobody took the run meanwhile.
    let (stopped, seen) = if r.status == RunStatus::Running {
        let seen = claim(store, run, &mut r, &seen)?;
        (phoenix_engine::exec::orphans::stop(run, std::time::Duration::from_secs(5)).await, seen)
    } else {
        (Default::default(), seen)
    };
    let now = now_ms();
    let (mut seq, _) = store.next_seqs(run).map_err(|e| e.to_string())?;
    let mut b = Batch::default();
    for mut s in store.steps(run).map_err(|e| e.to_string())? {
        if matches!(s.status, StepStatus::Pending | StepStatus::Running | StepStatus::Waiting) {
            s.status = StepStatus::Cancelled;
            s.error = Some("run cancelled".into());
            b.put_step(run, &s);
        }
    }
    r.status = RunStatus::Cancelled;
    r.finished_at = Some(now);
    r.updated_at = now;
    r.error = Some(format!("cancelled by {by}"));
    b.put_run(&r);
    if let Some(l) = &r.lock {
        if store.lock_holder(l).map_err(|e| e.to_string())?.as_deref() == Some(run) {
            b.unlock(l);
        }
    }
    let detail = (!stopped.is_empty())
        .then(|| format!("processes of {} outlived the crash and were stopped", stopped.into_iter().collect::<Vec<_>>().join(", ")));
    b.event(run, seq, now, EventKind::Operator { action: "cancel".into(), by: by.to_string(), detail });
    seq += 1;
    b.event(run, seq, now, EventKind::RunFinished { status: RunStatus::Cancelled, error: r.error.clone() });
    b.unchanged(&seen);
    if !store.try_commit(b, true).map_err(|e| e.to_string())? {
        return Err(format!("run {run} changed while it was being cancelled (resumed meanwhile?); nothing was written: cancel it again"));
    }
    Ok(format!("run {run} cancelled; its lock is released"))
}

/// Writes the run back unchanged but for its `updated_at`, if it is still as `seen`: proof
/// that this process may write it (the store's fence passed) and that nobody else took it.
/// What the run looks like now, for the commit after.
fn claim(store: &phoenix_engine::state::Store, run: &str, r: &mut RunRecord, seen: &Seen) -> Result<Seen, String> {
    r.updated_at = now_ms();
    let mut b = Batch::default();
    b.unchanged(seen);
    b.put_run(r);
    let changed = || format!("run {run} changed while it was being cancelled (resumed meanwhile?); nothing was written: cancel it again");
    if !store.try_commit(b, true).map_err(|e| format!("run {run} was not cancelled, nothing was stopped: {e}"))? {
        return Err(changed());
    }
    let (now, seen) = store.run_seen(run).map_err(|e| e.to_string())?.ok_or_else(changed)?;
    if now.updated_at != r.updated_at || now.status != r.status {
        return Err(changed());
    }
    Ok(seen)
}

pub(super) fn report(r: Result<String, String>, out: Output) -> Exit {
    match r {
        Ok(msg) => {
            if out == Output::Json {
                println!("{}", json!({"ok": true, "message": msg}));
            } else {
                println!("{msg}");
            }
            Exit::Ok
        }
        Err(e) => {
            if out == Output::Json {
                println!("{}", json!({"ok": false, "error": e}));
            }
            eprintln!("error: {e}");
            Exit::BadInput
        }
    }
}

#[cfg(test)]
#[path = "ops_tests.rs"]
mod tests;
