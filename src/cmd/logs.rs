//! `phoenix logs`: a run's events and output lines, once or followed as they come.

use std::path::PathBuf;

use phoenix_engine::exec::views;
use serde_json::json;

use super::follow::{POLL, new_lines, now};
use super::ops::query;
use crate::cli::Output;
use crate::exit::Exit;
use crate::visible::visible;

/// Why `step` is not one of the run's steps (a `for_each` item, `step[2]`, counts as its
/// step), or `None` when it is.
fn unknown_step(state_dir: &Option<PathBuf>, run: &str, step: &str) -> Option<String> {
    let v = query(state_dir, json!({"op": "status", "run": run}), |s| {
        views::status(s, Some(run)).map_err(|e| e.to_string())?.ok_or_else(|| format!("no run `{run}`"))
    })
    .ok()?;
    let ids: Vec<&str> = v["steps"].as_array()?.iter().filter_map(|s| s["id"].as_str()).collect();
    let base = step.split_once('[').map_or(step, |(b, _)| b);
    if ids.contains(&base) {
        return None;
    }
    Some(format!("run {run} has no step `{step}`: {}", phoenix_engine::suggest::hint(step, ids.iter().copied())))
}

pub(crate) fn once(state_dir: &Option<PathBuf>, run: &str, step: Option<&str>, out: Output) -> Exit {
    let v = match query(state_dir, json!({"op": "logs", "run": run, "step": step}), |s| {
        views::logs(s, run, step).map_err(|e| e.to_string())?.ok_or_else(|| format!("no run `{run}` (phoenix runs lists them)"))
    }) {
        Ok(v) => v,
        Err(e) => return e,
    };
    if let Some(step) = step.filter(|_| v["lines"].as_array().is_none_or(Vec::is_empty) && v["events"].as_array().is_none_or(Vec::is_empty))
    {
        // Nothing at all: a step that never ran, or a name that is not the run's.
        if let Some(e) = unknown_step(state_dir, run, step) {
            eprintln!("error: {e}");
            return Exit::BadInput;
        }
    }
    if out == Output::Json {
        println!("{}", serde_json::to_string_pretty(&v).expect("JSON"));
        return Exit::Ok;
    }
    let mut events: Vec<Stamped> = Vec::new();
    for e in v["events"].as_array().into_iter().flatten() {
        let what = match e["kind"].as_str().unwrap_or("") {
            "step" => format!(
                "{} {}{}",
                e["step"].as_str().unwrap_or(""),
                e["status"].as_str().unwrap_or(""),
                e["error"].as_str().map_or(String::new(), |x| format!(": {x}"))
            ),
            "retry" => format!(
                "{} attempt {} failed, retrying: {}",
                e["step"].as_str().unwrap_or(""),
                e["attempt"],
                e["error"].as_str().unwrap_or("")
            ),
            "approval" => {
                let step = e["step"].as_str().unwrap_or("");
                let by = e["by"].as_str().unwrap_or("unknown");
                let comment = e["comment"].as_str().filter(|c| !c.is_empty()).map_or(String::new(), |c| format!(": {c}"));
                match e["approved"].as_bool() {
                    Some(true) => format!("{step} approved by {by}{comment}"),
                    Some(false) => format!("{step} rejected by {by}{comment}"),
                    // The request's `comment` is the question asked.
                    None => format!("{step} waits for approval{comment}"),
                }
            }
            "run_started" => {
                format!("run started (attempt {}){}", e["attempt"], e["by"].as_str().map_or(String::new(), |b| format!(" by {b}")))
            }
            "run_finished" => {
                format!("run {}{}", e["status"].as_str().unwrap_or(""), e["error"].as_str().map_or(String::new(), |x| format!(": {x}")))
            }
            "operator" => format!(
                "{} by {}{}",
                e["action"].as_str().unwrap_or(""),
                e["by"].as_str().unwrap_or(""),
                e["detail"].as_str().filter(|_| e["action"] == "override").map_or(String::new(), |d| format!(": {d}"))
            ),
            "invariant" => format!(
                "{} invariant `{}` checked {} it: {}; saw {}",
                e["step"].as_str().unwrap_or(""),
                e["name"].as_str().unwrap_or(""),
                e["when"].as_str().unwrap_or(""),
                match (e["held"].as_bool() == Some(true), e["overridden"].as_bool() == Some(true)) {
                    (true, _) => "held",
                    (false, true) => "did NOT hold (overridden)",
                    (false, false) => "did NOT hold",
                },
                e["saw"].as_str().unwrap_or("")
            ),
            "note" => format!("{} note: {}", e["step"].as_str().unwrap_or("-"), e["text"].as_str().unwrap_or("")),
            other => other.to_string(),
        };
        let at = e["at"].as_str().unwrap_or("").to_string();
        let step = (e["kind"] == "step").then(|| e["step"].as_str().unwrap_or("").to_string());
        let text = format!("{at} event  {}", visible(&what));
        events.push(Stamped { at, step, running: e["status"] == "running", text });
    }
    let lines: Vec<Stamped> = v["lines"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|l| {
            let at = l["at"].as_str().unwrap_or("").to_string();
            let step = l["step"].as_str().unwrap_or("").to_string();
            let text = format!("{at} [{step}] {}", visible(l["text"].as_str().unwrap_or("")));
            Stamped { at, step: Some(step), running: false, text }
        })
        .collect();
    for line in interleave(events, lines) {
        println!("{line}");
    }
    Exit::Ok
}

/// An event or an output line, with its time.
struct Stamped {
    at: String,
    /// The step it is about (a step event, or the step that printed the line).
    step: Option<String>,
    /// A step's `running` event.
    running: bool,
    text: String,
}

/// Events and output in one stream by time, as `logs -f` shows them; each keeps its own
/// order. At the same millisecond, a line of a step that is running comes before the next
/// event, and any other line after it (its step has not started yet).
fn interleave(events: Vec<Stamped>, lines: Vec<Stamped>) -> Vec<String> {
    let mut out = Vec::with_capacity(events.len() + lines.len());
    let mut running: Vec<String> = Vec::new();
    let (mut e, mut l) = (events.into_iter().peekable(), lines.into_iter().peekable());
    loop {
        let take_line = match (e.peek(), l.peek()) {
            (None, None) => break,
            (None, Some(_)) => true,
            (Some(_), None) => false,
            (Some(ev), Some(li)) => li.at < ev.at || (li.at == ev.at && li.step.as_ref().is_some_and(|s| running.contains(s))),
        };
        let next = if take_line { l.next() } else { e.next() }.expect("peeked");
        if !take_line {
            if let Some(step) = &next.step {
                running.retain(|s| s != step);
                if next.running {
                    running.push(step.clone());
                }
            }
        }
        out.push(next.text);
    }
    out
}

/// `phoenix logs RUN [STEP] --follow`: what the run logged so far, then what it logs, as it
/// happens, until it ends or halts (asked every 250 ms: over the owner's socket while a
/// process drives the run, from the store once it has ended). The exit code says how it
/// ended: 0 succeeded, 1 failed or cancelled, 3 halted (resumable). Ctrl-C stops following;
/// the run goes on.
pub(crate) fn follow(state_dir: &Option<PathBuf>, run: &str, step: Option<&str>) -> Exit {
    if let Some(e) = step.and_then(|s| unknown_step(state_dir, run, s)) {
        eprintln!("error: {e}");
        return Exit::BadInput;
    }
    let mut seen = (0, 0);
    let mut announced: Vec<String> = Vec::new();
    loop {
        // The status first: the logs asked after it hold everything up to the state it says.
        let status = query(state_dir, json!({ "op": "status", "run": run }), |s| {
            views::status(s, Some(run)).map_err(|e| e.to_string())?.ok_or_else(|| format!("no run `{run}` (phoenix runs lists them)"))
        });
        let req = json!({ "op": "logs", "run": run, "step": step, "from_line": seen.0, "from_event": seen.1 });
        let logs = query(state_dir, req, |s| {
            views::logs_from(s, run, step, seen.0, seen.1)
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("no run `{run}` (phoenix runs lists them)"))
        });
        let (status, logs) = match (status, logs) {
            (Ok(s), Ok(l)) => (s, l),
            (Err(e), _) | (_, Err(e)) => return e,
        };
        let new = new_lines(&logs, seen);
        seen = new.seen;
        for line in new.text {
            println!("{line}");
        }
        let error = status["error"].as_str().unwrap_or_default();
        match status["status"].as_str().unwrap_or_default() {
            "succeeded" => {
                println!("run {run} succeeded");
                return Exit::Ok;
            }
            state @ ("failed" | "cancelled") => {
                println!("run {run} {state}: {}", visible(error));
                return Exit::Failed;
            }
            "halted" => {
                println!("run {run} halted: {}", visible(error));
                return Exit::Halted;
            }
            _ if status["process_gone"] == true => {
                println!("run {run}: the process that ran it is gone (crashed or killed): continue it with `phoenix resume {run}`");
                return Exit::Halted;
            }
            _ => {}
        }
        for step in status["steps"].as_array().into_iter().flatten().filter(|s| s["status"] == "waiting") {
            let name = step["id"].as_str().unwrap_or_default().to_string();
            if !announced.contains(&name) {
                println!("{} ⏸ {name} waits for approval:  phoenix approve {run} {name}   (or --reject)", now());
                announced.push(name);
            }
        }
        std::thread::sleep(POLL);
    }
}
