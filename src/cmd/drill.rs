//! `phoenix drill`: a run of the same runbook with its `drill.params` overlaid, marked as a
//! drill, refused before anything is written if it would touch production; handed to `phoenix serve`
//! when it owns the state directory (the server checks it again, `serve/drills.rs`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use phoenix_engine::exec::drill::{self, DrillCheck};
use phoenix_engine::exec::{Engine, EngineOptions, RunError, StartOptions};
use phoenix_engine::runbook::Runbook;
use tokio_util::sync::CancellationToken;

use super::run::{drive, finish, load_with_params};
use super::state;
use crate::cli::Output;
use crate::exit::Exit;

pub(crate) fn run(
    state_dir: &Option<PathBuf>,
    file: &Path,
    params: &[String],
    dry_run: bool,
    no_wait: bool,
    operator: Option<String>,
    out: Output,
) -> Exit {
    let (rb, params) = match load_with_params(file, params, out) {
        Ok(loaded) => loaded,
        Err(e) => return e,
    };
    let check = match drill::check(&rb, &params) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return Exit::BadInput;
        }
    };
    if !check.collisions.is_empty() {
        eprintln!("error: {}", drill::refusal(&rb, &check));
        return Exit::BadInput;
    }
    tell(&rb, &check);
    if dry_run {
        return plan(&rb, &check, &operator);
    }
    let dir = state::dir(state_dir);
    if let Some(pid) = super::follow::server_pid(&dir) {
        // The server checks the drill again (its copy of the runbook decides) and starts it.
        let ask = super::follow::Ask::Drill { file, params: &params };
        return super::follow::hand_over(&dir, pid, ask, no_wait, &state::operator(operator), out);
    }
    drive(state_dir, operator, no_wait, move |engine| async move {
        match engine.start(Arc::new(rb), StartOptions { params, no_wait, drill: true, ..StartOptions::default() }).await {
            Ok((id, outcome)) => {
                let exit = finish(&engine, &id, Ok(outcome), out);
                if let Ok(Some(v)) = phoenix_engine::exec::views::status(engine.store(), Some(&id)) {
                    say_teardown(&id, &v);
                }
                exit
            }
            Err(e) => finish(&engine, "", Err(e), out),
        }
    })
}

/// A teardown that failed, in red on a terminal: the drill's targets may be left dirty.
/// `v`: the run's status view (here, or from the server that drove it).
pub(super) fn say_teardown(id: &str, v: &serde_json::Value) {
    use std::io::IsTerminal;
    if v["teardown"] != "failed" {
        return;
    }
    let text =
        format!("TEARDOWN FAILED: drill {id} could not put its targets back; see phoenix status {id}, fix them, then phoenix resume {id}");
    if std::io::stderr().is_terminal() { eprintln!("\x1b[1;31m{text}\x1b[0m") } else { eprintln!("{text}") }
}

/// Says what the drill changes and what could not be checked, before anything runs.
fn tell(rb: &Runbook, c: &DrillCheck) {
    eprintln!("drill of `{}`: the runbook's `drill.params` win over --param and defaults", rb.name);
    for l in drill::overlay_lines(c) {
        eprintln!("  {l}");
    }
    eprintln!("  {} mutating step(s) checked against `drill.protect` and production's targets: no collision", c.checked);
    for u in &c.unresolved {
        eprintln!("  ! {u}");
    }
}

/// `--dry-run`: the plan with the drill's params (nothing runs, not even the reads).
fn plan(rb: &Runbook, c: &DrillCheck, operator: &Option<String>) -> Exit {
    let store = phoenix_engine::state::Store::new(Arc::new(phoenix_engine::state::MemKv::default())).expect("memory store");
    let engine = Engine::new(
        store,
        EngineOptions { state_dir: PathBuf::from("."), grace: Duration::from_secs(10), operator: state::operator(operator.clone()) },
        Arc::new(phoenix_engine::exec::Silent),
        CancellationToken::new(),
    );
    let args: Vec<(String, String)> = c
        .params
        .as_object()
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.as_str().map_or_else(|| v.to_string(), str::to_string))).collect())
        .unwrap_or_default();
    match engine.dry_run(rb, &args) {
        Ok(plan) => {
            print!("{plan}");
            Exit::Ok
        }
        Err(RunError::BadInput(e)) => {
            eprintln!("error: {e}");
            Exit::BadInput
        }
        Err(e) => {
            eprintln!("error: {e}");
            Exit::Failed
        }
    }
}
