//! `phoenix run`, `phoenix drill` and `phoenix resume` while `phoenix serve` owns the state directory: the
//! server starts or resumes the run (`serve::handover`), and this command follows it over
//! the control socket, printing its steps and output as a run in this terminal would, until
//! it ends. Ctrl-C detaches: the run goes on in the server.

use std::io::IsTerminal;
use std::path::Path;
use std::time::Duration;

use phoenix_engine::exec::{Observer, control};
use serde_json::{Value, json};

use crate::cli::Output;
use crate::exit::Exit;
use crate::visible::visible;

/// How often the server is asked what changed.
pub(super) const POLL: Duration = Duration::from_millis(250);

/// The pid of the `phoenix serve` that owns `dir`, if one does.
pub(crate) fn server_pid(dir: &Path) -> Option<u64> {
    if !control::owner_alive(dir) {
        return None;
    }
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let owner = rt.block_on(control::request(dir, &json!({ "op": "owner" }))).ok()?;
    (owner["operator"] == crate::serve::OPERATOR).then(|| owner["pid"].as_u64().unwrap_or(0))
}

/// What to ask the server for.
pub(crate) enum Ask<'a> {
    Start {
        file: &'a Path,
        params: &'a [(String, String)],
    },
    /// A drill of the runbook (`phoenix drill`): the server checks it again before it starts.
    Drill {
        file: &'a Path,
        params: &'a [(String, String)],
    },
    Resume {
        run: &'a str,
        runbook: Option<&'a Path>,
        choice: &'a super::adopt::Choice,
    },
}

/// Hands the run to the server at `pid`, then follows it.
pub(crate) fn hand_over(dir: &Path, pid: u64, ask: Ask<'_>, no_wait: bool, operator: &str, out: Output) -> Exit {
    let abs = |f: &Path| f.canonicalize().unwrap_or_else(|_| f.to_path_buf()).display().to_string();
    let req = match &ask {
        Ask::Start { file, params } => json!({ "op": "start", "file": abs(file), "params": params, "by": operator }),
        Ask::Drill { file, params } => json!({ "op": "start", "drill": true, "file": abs(file), "params": params, "by": operator }),
        Ask::Resume { run, runbook, choice } => json!({
            "op": "resume", "run": run, "runbook": runbook.map(abs), "retry": choice.retry, "skip": choice.skip,
            "rerun": choice.rerun, "keep": choice.keep, "by": operator,
            "overrides": choice.overrides.iter().map(|o| json!({ "invariant": o.invariant, "reason": o.reason })).collect::<Vec<_>>(),
            "confirm": choice.confirm, "abort": choice.abort, "reason": choice.reason,
        }),
    };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    // The server plans the resume first; the diff is shown and confirmed here, and the
    // server resumes only if its plan is still the one confirmed.
    let mut confirmed = None;
    if let Ask::Resume { run, runbook, choice } = &ask {
        if choice.plans(runbook.is_some()) {
            let mut plan_req = req.clone();
            plan_req["dry_run"] = json!(true);
            let adoption = match rt.block_on(control::request(dir, &plan_req)) {
                Ok(v) => super::adopt::from_json(&v["plan"]),
                Err(e) => {
                    eprintln!("error: {e}");
                    return Exit::BadInput;
                }
            };
            let given = runbook.map(|f| f.display().to_string());
            if let super::adopt::Go::Stop(exit) = super::adopt::decide(&adoption, run, given.as_deref(), choice, out) {
                return exit;
            }
            confirmed = Some(adoption.confirmed());
        }
    }
    // A resumed run has a history: follow only what comes after it.
    let seen = match &ask {
        Ask::Start { .. } | Ask::Drill { .. } => (0, 0),
        Ask::Resume { run, .. } => rt
            .block_on(control::request(dir, &json!({ "op": "logs", "run": run })))
            .map_or((0, 0), |v| (next_line(&v, 0), v["events"].as_array().map_or(0, Vec::len))),
    };
    let mut req = req;
    if let Some(plan) = confirmed {
        req["confirmed"] = json!(plan);
    }
    let id = match rt.block_on(control::request(dir, &req)) {
        // The resume halted before anything ran: it asks the operator (exit 3, as without a server).
        Ok(v) if v["halted"].is_string() => {
            eprintln!("halted: {}", v["halted"].as_str().unwrap_or_default());
            return Exit::Halted;
        }
        Ok(v) => v["id"].as_str().unwrap_or_default().to_string(),
        Err(e) => {
            eprintln!("error: {e}");
            return Exit::BadInput;
        }
    };
    let what = match ask {
        Ask::Start { .. } => "run {id} started",
        Ask::Drill { .. } => "drill run {id} started",
        Ask::Resume { .. } => "run {id} resumed",
    }
    .replace("{id}", &id);
    eprintln!("{what} by `phoenix serve` (pid {pid}), which owns {}; following it (Ctrl-C leaves it running)", dir.display());
    let prompt = !no_wait && std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    let exit = rt.block_on(follow(dir, &id, seen, prompt, operator));
    let status = rt.block_on(control::request(dir, &json!({ "op": "status", "run": id })));
    if let Ok(v) = &status {
        // A drill (started or resumed) that could not tear down says so, as it does locally.
        super::drill::say_teardown(&id, v);
        if out == Output::Json {
            println!("{}", serde_json::to_string_pretty(v).expect("JSON"));
        }
    }
    exit
}

/// Prints what the run does until it ends; its exit code. With `prompt` (a terminal, no
/// `--no-wait`), an approval the run waits for is asked here too, as `phoenix run` asks it,
/// and answered as `operator`; without, the command stops there (exit 3).
async fn follow(dir: &Path, id: &str, mut seen: (u64, usize), prompt: bool, operator: &str) -> Exit {
    let mut announced: Vec<String> = Vec::new();
    let (answers_tx, mut answers) = tokio::sync::mpsc::unbounded_channel::<(String, bool, Option<String>)>();
    let stop = tokio::signal::ctrl_c();
    tokio::pin!(stop);
    loop {
        // The status first: the logs asked after it hold everything up to the state it says.
        let status = control::request(dir, &json!({ "op": "status", "run": id })).await;
        let logs = control::request(dir, &json!({ "op": "logs", "run": id, "from_line": seen.0, "from_event": seen.1 })).await;
        let (Ok(logs), Ok(status)) = (logs, status) else {
            eprintln!("`phoenix serve` stopped answering: run {id} is checkpointed; see it with `phoenix status {id}`");
            return Exit::Interrupted;
        };
        let asked;
        (seen, asked) = print_new(&logs, seen);
        let state = status["status"].as_str().unwrap_or_default();
        let error = status["error"].as_str().unwrap_or_default();
        match state {
            "succeeded" => return Exit::Ok,
            "failed" | "cancelled" => {
                eprintln!("run {id} {state}: {}\nsee: phoenix status {id}   phoenix logs {id}", visible(error));
                return Exit::Failed;
            }
            "halted" => {
                eprintln!("halted: {}", visible(error));
                return Exit::Halted;
            }
            _ => {}
        }
        for (step, message) in asked.into_iter().filter(|_| prompt) {
            // The terminal asks; the answer comes back here to be sent.
            let (tx, run) = (answers_tx.clone(), id.to_string());
            tokio::task::spawn_blocking(move || {
                if let Some((approved, comment)) = crate::display::Display::new(true).ask_approval(&run, &step, &message) {
                    let _ = tx.send((step, approved, comment));
                }
            });
        }
        for step in status["steps"].as_array().into_iter().flatten().filter(|s| s["status"] == "waiting") {
            let name = step["id"].as_str().unwrap_or_default().to_string();
            if !announced.contains(&name) {
                eprintln!("{} ⏸ {name} waits for approval:  phoenix approve {id} {name}   (or --reject)", now());
                announced.push(name);
            }
        }
        if !prompt && !announced.is_empty() {
            eprintln!("run {id} waits in `phoenix serve` for approval; once approved it goes on there (no resume needed)");
            return Exit::Halted;
        }
        tokio::select! {
            _ = &mut stop => {
                eprintln!("\ndetached: run {id} goes on in `phoenix serve`. follow it: phoenix status {id}   stop it: phoenix cancel {id}");
                return Exit::Interrupted;
            }
            Some((step, approved, comment)) = answers.recv() => {
                let req = json!({ "op": "approve", "run": id, "step": step, "approved": approved, "by": operator, "comment": comment });
                if let Err(why) = control::request(dir, &req).await {
                    eprintln!("your answer was not recorded: {why}; an approver can decide with: phoenix approve {id} {step}");
                }
            }
            () = tokio::time::sleep(POLL) => {}
        }
    }
}

/// The number (`seq`) of the line after the last of `v`'s lines, or `next` when it has none.
fn next_line(v: &Value, next: u64) -> u64 {
    v["lines"].as_array().and_then(|l| l.last()).and_then(|l| l["seq"].as_u64()).map_or(next, |s| s + 1)
}

/// Prints the lines and step events not seen yet, in time order, on stderr; what it will
/// have seen, and the approvals asked for among those events (step, question).
fn print_new(logs: &Value, seen: (u64, usize)) -> ((u64, usize), Vec<(String, String)>) {
    let new = new_lines(logs, seen);
    for line in new.text {
        eprintln!("{line}");
    }
    (new.seen, new.asked)
}

/// What a follower has not printed yet.
pub(super) struct New {
    /// The number (`seq`) of the next line it will ask for, and how many events it will
    /// have seen.
    pub(super) seen: (u64, usize),
    /// The approvals asked for among the new events: (step, question).
    pub(super) asked: Vec<(String, String)>,
    /// The new lines and step events, formatted, in time order.
    pub(super) text: Vec<String>,
}

/// The lines and step events not seen yet.
pub(super) fn new_lines(logs: &Value, (next, events_seen): (u64, usize)) -> New {
    let lines = logs["lines"].as_array().cloned().unwrap_or_default();
    let events = logs["events"].as_array().cloned().unwrap_or_default();
    let mut out: Vec<(String, String)> = Vec::new();
    let mut asked = Vec::new();
    for l in &lines {
        let text = format!("[{}] {}", l["step"].as_str().unwrap_or_default(), l["text"].as_str().unwrap_or_default());
        out.push((l["at"].as_str().unwrap_or_default().to_string(), text));
    }
    for e in &events {
        let step = e["step"].as_str().unwrap_or_default();
        if e["kind"] == "approval" && e["approved"].is_null() {
            asked.push((step.to_string(), e["comment"].as_str().unwrap_or_default().to_string()));
            continue;
        }
        if e["kind"] != "step" {
            continue;
        }
        let text = match e["status"].as_str().unwrap_or_default() {
            "running" => format!("▶ {step}"),
            "succeeded" => format!("✓ {step}"),
            "failed" => format!("✗ {step}: {}", e["error"].as_str().unwrap_or("failed")),
            "skipped" => format!("⤼ {step} skipped"),
            "upstream_failed" => format!("⊘ {step} {}", e["error"].as_str().unwrap_or("not run: a need failed")),
            "waiting" | "pending" => continue,
            other => format!("{step} {other}"),
        };
        out.push((e["at"].as_str().unwrap_or_default().to_string(), text));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    let text = out.into_iter().map(|(at, text)| format!("{} {}", at.get(11..23).unwrap_or_default(), visible(&text))).collect();
    New { seen: (next_line(logs, next), events_seen + events.len()), asked, text }
}

pub(super) fn now() -> String {
    let t = humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string();
    t.get(11..23).unwrap_or_default().to_string()
}
