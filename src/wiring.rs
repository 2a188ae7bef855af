//! What every command that drives the engine shares, and the server too: the tokio runtime,
//! the engine opened over a state directory, the signal handlers, and `--param NAME=VALUE`.
//!
//! Commands (`cmd/run.rs`, `cmd/watch.rs`, `cmd/health.rs`) and `serve/` import this module;
//! none of them imports another command for it.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use phoenix_engine::exec::{Engine, EngineOptions};
use tokio_util::sync::CancellationToken;

use crate::cmd::state::{self, Access};
use crate::exit::Exit;

/// The single-threaded runtime every command and the server run on.
pub(crate) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime starts")
}

/// `--param NAME=VALUE` pairs, or the one that is not of that form.
pub(crate) fn parse_params(raw: &[String]) -> Result<Vec<(String, String)>, String> {
    raw.iter()
        .map(|p| {
            p.split_once('=').map(|(k, v)| (k.trim().to_string(), v.to_string())).ok_or_else(|| format!("--param `{p}` is not NAME=VALUE"))
        })
        .collect()
}

/// Ctrl-C or SIGTERM fires the token (once: the engine checkpoints and exits 130); a second
/// Ctrl-C kills the steps' processes at once and exits 130 without a checkpoint.
pub(crate) fn on_signals(token: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    // Registered now, not when the task first runs: a signal that came before would take
    // its default action (exit without a checkpoint).
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    tokio::spawn(async move {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
        // Never `eprintln!` here: a stderr that went away (a closed pipe) would panic this
        // task before the run is stopped.
        say("\nstopping: no new steps start; running steps are stopped and checkpointed (Ctrl-C again: kill them now)");
        token.cancel();
        let _ = int.recv().await;
        // Forced: the steps' process groups get SIGKILL without their grace period, and the
        // store is left as a crash would leave it (the steps still say running).
        let n = phoenix_engine::exec::orphans::kill_children();
        say(&format!(
            "forced: killed {n} step process(es) and their process groups (SIGKILL); the run is left as after a crash: `phoenix resume RUN` carries it on (`phoenix runs` lists it)"
        ));
        std::process::exit(130);
    });
}

/// A line on stderr, or nothing if stderr is gone.
fn say(text: &str) {
    use std::io::Write;
    if crate::telemetry::json() {
        // `--log-format json`: every line on stderr is a JSON object.
        crate::telemetry::json_line("phoenix::signal", text.trim());
        return;
    }
    let _ = writeln!(std::io::stderr(), "{text}");
}

/// The engine over the store in `dir`, or the exit after saying why not (another process
/// owns it: who, and what to do instead).
pub(crate) fn engine_for(
    dir: &Path,
    operator: Option<String>,
    observer: Arc<dyn phoenix_engine::exec::Observer>,
    shutdown: CancellationToken,
) -> Result<Engine, Exit> {
    let store = match state::open(dir) {
        Ok(Access::Direct(s)) => s,
        Ok(Access::Owner) => {
            eprintln!("error: another phoenix process owns the state directory {} (one process at a time):", dir.display());
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            let (owner, runs) = std::thread::spawn({
                let dir = dir.to_path_buf();
                move || {
                    let ask = |op: &str| rt.block_on(phoenix_engine::exec::control::request(&dir, &serde_json::json!({"op": op}))).ok();
                    (ask("owner"), ask("runs"))
                }
            })
            .join()
            .unwrap_or_default();
            if owner.as_ref().is_some_and(|o| o["operator"] == crate::serve::OPERATOR) {
                eprintln!(
                    "  it is `phoenix serve` (pid {}): start and resume runs through its API",
                    owner.as_ref().map_or(serde_json::Value::Null, |o| o["pid"].clone())
                );
                eprintln!(
                    "    POST /api/v1/runs {{\"runbook\": \"NAME\", \"params\": {{…}}}}    POST /api/v1/runs/RUN/resume   (docs/serve.md)"
                );
            }
            for r in runs.as_ref().and_then(|v| v["runs"].as_array()).into_iter().flatten().filter(|r| r["status"] == "running") {
                let id = r["id"].as_str().unwrap_or("");
                eprintln!(
                    "  run {id} of `{}` is running (lock {})",
                    r["runbook"].as_str().unwrap_or(""),
                    r["lock"].as_str().unwrap_or("none")
                );
                eprintln!("    watch it:  phoenix status {id}    cancel it:  phoenix cancel {id}");
            }
            eprintln!("  wait for it to end, or use another --state directory for an unrelated runbook");
            return Err(Exit::BadInput);
        }
        Err(e) => {
            eprintln!("error: {e}");
            return Err(Exit::Failed);
        }
    };
    let opts = EngineOptions { state_dir: dir.to_path_buf(), grace: Duration::from_secs(10), operator: state::operator(operator) };
    Ok(Engine::new(store, opts, observer, shutdown))
}
