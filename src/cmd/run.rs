//! `phoenix run` and `phoenix resume`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use phoenix_engine::exec::{Engine, EngineOptions, Outcome, ResumeOptions, RunError, StartOptions};
use phoenix_engine::state::EventKind;
use tokio_util::sync::CancellationToken;

use super::state;
use crate::cli::Output;
use crate::display::Display;
use crate::exit::Exit;
use crate::wiring::{engine_for, on_signals, parse_params, runtime};

/// A terminal that goes away (an SSH session that drops) sends SIGHUP, whose default would
/// kill Phoenix mid-run and leave its steps running as orphans. The run goes on instead:
/// stdin, stdout and stderr now lead to /dev/null (a write to the dead terminal would fail),
/// a question waiting at the terminal gets no answer (`phoenix approve` decides it), and
/// each run in progress records why nothing more is shown.
fn keep_going_on_hangup(engine: Engine) -> tokio::task::JoinHandle<()> {
    // Registered before the run starts, not when the task first runs: a hang-up in between
    // would kill Phoenix by default.
    let hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup());
    tokio::spawn(async move {
        let Ok(mut hangup) = hangup else { return };
        while hangup.recv().await.is_some() {
            if let Ok(null) = std::fs::OpenOptions::new().read(true).write(true).open("/dev/null") {
                let _ = nix::unistd::dup2_stdin(&null);
                let _ = nix::unistd::dup2_stdout(&null);
                let _ = nix::unistd::dup2_stderr(&null);
            }
            for run in engine.runs_in_progress() {
                let text = "the terminal went away (SIGHUP): the run goes on without it; follow it with `phoenix status` and `phoenix logs`, decide approvals with `phoenix approve`, stop it with `phoenix cancel`";
                let _ = engine.record_event(&run, EventKind::Note { step: None, text: text.into(), data: None }).await;
            }
        }
    })
}

pub(crate) fn finish(engine: &Engine, id: &str, r: Result<Outcome, RunError>, out: Output) -> Exit {
    let exit = match &r {
        Ok(Outcome::Succeeded) => Exit::Ok,
        Ok(Outcome::Failed(_)) => Exit::Failed,
        // Said once, here: a resume can halt before the run (and its display) starts.
        Ok(Outcome::Halted(why)) => {
            eprintln!("halted: {why}");
            Exit::Halted
        }
        Ok(Outcome::Cancelled) => Exit::Failed,
        Ok(Outcome::Interrupted) => {
            eprintln!("interrupted; the checkpoint is written. continue with: phoenix resume {id}");
            Exit::Interrupted
        }
        Err(RunError::BadInput(m)) => {
            eprintln!("error: {m}");
            return Exit::BadInput;
        }
        Err(RunError::Store(e)) => {
            eprintln!("error: {e}");
            return Exit::Failed;
        }
        Err(RunError::Stopped { run, source }) => {
            eprintln!("error: {source}");
            eprintln!(
                "  nothing more could be recorded in {}, so run {run} stopped, and so did the steps it was running",
                engine.state_dir().display()
            );
            eprintln!("  fix that (a full disk: free space on its filesystem), then: phoenix resume {run}");
            return Exit::Failed;
        }
    };
    if out == Output::Json {
        if let Ok(Some(v)) = phoenix_engine::exec::views::status(engine.store(), Some(id)) {
            println!("{}", serde_json::to_string_pretty(&v).expect("JSON"));
        }
    } else if matches!(r, Ok(Outcome::Failed(_))) {
        eprintln!("see: phoenix status {id}   phoenix logs {id}   resume: phoenix resume {id}");
    }
    exit
}

/// The runbook at `file` and the `--param` pairs, or the exit code after saying why not.
pub(crate) fn load_with_params(
    file: &Path,
    params: &[String],
    out: Output,
) -> Result<(phoenix_engine::runbook::Runbook, Vec<(String, String)>), Exit> {
    let rb = super::load_or_report(file, out)?;
    let params = parse_params(params).map_err(|e| {
        eprintln!("error: {e}");
        Exit::BadInput
    })?;
    Ok((rb, params))
}

/// How far `--dry-run` goes.
pub(crate) struct Dry {
    /// Run the steps that only read, for real (not with `--no-reads`).
    pub(crate) reads: bool,
}

pub(crate) fn run(
    state_dir: &Option<PathBuf>,
    file: &Path,
    params: &[String],
    dry_run: Option<Dry>,
    no_wait: bool,
    operator: Option<String>,
    out: Output,
) -> Exit {
    let (rb, params) = match load_with_params(file, params, out) {
        Ok(loaded) => loaded,
        Err(e) => return e,
    };
    if let Some(dry) = dry_run {
        // A dry run needs no store: an engine over memory renders the plan.
        let store = phoenix_engine::state::Store::new(Arc::new(phoenix_engine::state::MemKv::default())).expect("memory store");
        let engine = Engine::new(
            store,
            EngineOptions { state_dir: PathBuf::from("."), grace: Duration::from_secs(10), operator: state::operator(operator) },
            Arc::new(phoenix_engine::exec::Silent),
            CancellationToken::new(),
        );
        match engine.dry_run(&rb, &params) {
            Ok(plan) => print!("{plan}"),
            Err(e) => {
                eprintln!("error: {e}");
                return Exit::BadInput;
            }
        }
        if !dry.reads {
            return Exit::Ok;
        }
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
        let reads = runtime.block_on(async {
            Ok::<_, RunError>(engine.dry_run_reads(&rb, &params).await? + &engine.dry_run_invariants(&rb, &params).await?)
        });
        return match reads {
            Ok(reads) => {
                print!("{reads}");
                Exit::Ok
            }
            Err(e) => {
                eprintln!("error: the dry run's reads: {e}");
                Exit::Failed
            }
        };
    }
    let dir = state::dir(state_dir);
    if let Some(pid) = super::follow::server_pid(&dir) {
        let ask = super::follow::Ask::Start { file, params: &params };
        return super::follow::hand_over(&dir, pid, ask, no_wait, &state::operator(operator), out);
    }
    drive(state_dir, operator, no_wait, move |engine| async move {
        match engine.start(Arc::new(rb), StartOptions { params, no_wait, ..StartOptions::default() }).await {
            Ok((id, outcome)) => finish(&engine, &id, Ok(outcome), out),
            Err(e) => finish(&engine, "", Err(e), out),
        }
    })
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn resume(
    state_dir: &Option<PathBuf>,
    id: &str,
    runbook: Option<&Path>,
    choice: super::adopt::Choice,
    no_wait: bool,
    operator: Option<String>,
    workdir: Option<&Path>,
    out: Output,
) -> Exit {
    let adopted = match runbook {
        Some(f) => match super::load_or_report(f, out) {
            Ok(mut rb) => {
                // Absolute: the run may work in another directory (`work_in`), and its child
                // runbooks and `run.dir` are found from this file's place.
                rb.file = std::path::absolute(&rb.file).unwrap_or(rb.file);
                Some(rb)
            }
            Err(e) => return e,
        },
        None => None,
    };
    let dir = state::dir(state_dir);
    if let Some(pid) = super::follow::server_pid(&dir) {
        if workdir.is_some() {
            eprintln!(
                "error: phoenix serve (pid {pid}) owns {} and resumes its runs in its own working directory: --workdir cannot apply",
                dir.display()
            );
            return Exit::BadInput;
        }
        let ask = super::follow::Ask::Resume { run: id, runbook, choice: &choice };
        return super::follow::hand_over(&dir, pid, ask, no_wait, &state::operator(operator), out);
    }
    let id = id.to_string();
    let workdir = workdir.map(Path::to_path_buf);
    let given = runbook.map(|f| f.display().to_string()).unwrap_or_default();
    drive(state_dir, operator, no_wait, move |engine| async move {
        if let Err(e) = work_in(&engine, &id, workdir.as_deref()) {
            eprintln!("error: {e}");
            return Exit::BadInput;
        }
        if let Some(r) = engine.store().run(&id).ok().flatten() {
            if let Err(e) = crate::cluster::refuse_if_driven(&r) {
                eprintln!("error: {e}");
                return Exit::BadInput;
            }
        }
        let super::adopt::Choice { retry, skip, rerun, keep, confirm, abort, reason, .. } = &choice;
        let (retry, skip, rerun, keep) = (retry.clone(), skip.clone(), rerun.clone(), keep.clone());
        let (confirm, abort, reason) = (*confirm, *abort, reason.clone());
        let mut opts =
            ResumeOptions { runbook: adopted, retry, skip, rerun, keep, no_wait, confirm, abort, reason, ..ResumeOptions::default() };
        opts.overrides.clone_from(&choice.overrides);
        if choice.plans(opts.runbook.is_some()) {
            let given = opts.runbook.is_some().then_some(given.as_str());
            match engine.plan_resume(&id, &opts).await {
                Ok(plan) => match super::adopt::decide(&plan, &id, given, &choice, out) {
                    super::adopt::Go::Run => opts.confirmed = Some(plan.confirmed()),
                    super::adopt::Go::Stop(exit) => return exit,
                },
                Err(e) => return finish(&engine, &id, Err(e), out),
            }
        }
        let r = engine.resume(&id, opts).await;
        let exit = finish(&engine, &id, r, out);
        // An abort asked for and carried out is the command's success, as an applied
        // `phoenix cancel` is: 0, unless an on_abort step failed.
        if abort && exit == Exit::Failed && aborted_cleanly(&engine, &id) {
            return Exit::Ok;
        }
        exit
    })
}

/// Whether the run ended cancelled with none of its on_abort steps (nor a drill's teardown)
/// failed.
fn aborted_cleanly(engine: &Engine, id: &str) -> bool {
    use phoenix_engine::state::{PlanKind, RunStatus, StepStatus};
    let store = engine.store();
    let cancelled = store.run(id).ok().flatten().is_some_and(|r| r.status == RunStatus::Cancelled);
    let steps = store.steps(id).unwrap_or_default();
    let failed = |s: &phoenix_engine::state::StepRecord| matches!(s.status, StepStatus::Failed | StepStatus::UpstreamFailed);
    cancelled && !steps.iter().any(|s| matches!(s.plan, PlanKind::OnAbort | PlanKind::Teardown) && failed(s))
}

/// A run works in the directory it last started or resumed in, so that relative paths in
/// its steps mean on resume what they meant before: `phoenix resume` changes to that
/// directory, or to `--workdir`. Nothing is changed when the directory is gone.
fn work_in(engine: &Engine, id: &str, workdir: Option<&Path>) -> Result<(), String> {
    let recorded = engine.store().run(id).ok().flatten().and_then(|r| r.dir);
    let (target, why) = match (workdir, recorded) {
        (Some(w), _) => (w.to_path_buf(), "as --workdir says".to_string()),
        (None, Some(d)) => (PathBuf::from(d), format!("where run {id} worked before")),
        (None, None) => return Ok(()),
    };
    if std::env::current_dir().is_ok_and(|here| here == target) {
        return Ok(());
    }
    if !target.is_dir() {
        return Err(match workdir {
            Some(w) => format!("--workdir {}: no such directory", w.display()),
            None => format!(
                "run {id} worked in {}, which is no longer a directory; relative paths in its steps resolve there\n  resume it in another directory:  phoenix resume {id} --workdir DIR",
                target.display()
            ),
        });
    }
    std::env::set_current_dir(&target).map_err(|e| format!("cannot work in {}: {e}", target.display()))?;
    eprintln!("working in {}, {why}", target.display());
    Ok(())
}

/// Sets up what driving a run needs (the store, the display, the control socket, signal
/// handling, the ticking status line), runs `body`, and ends without waiting for a
/// terminal prompt that may still be reading stdin.
pub(crate) fn drive<F, Fut>(state_dir: &Option<PathBuf>, operator: Option<String>, no_wait: bool, body: F) -> Exit
where
    F: FnOnce(Engine) -> Fut,
    Fut: std::future::Future<Output = Exit>,
{
    let dir = state::dir(state_dir);
    // This process records who starts, resumes and answers at its terminal: a user acts as
    // its own name (root as any).
    let operator = match state::claim(operator) {
        Ok(name) => Some(name),
        Err(e) => {
            eprintln!("error: {e}");
            return Exit::BadInput;
        }
    };
    let rt = runtime();
    let exit = rt.block_on(async move {
        let shutdown = CancellationToken::new();
        let display = Arc::new(Display::new(!no_wait));
        let engine = match engine_for(&dir, operator, display.clone(), shutdown.clone()) {
            Ok(e) => e,
            Err(x) => return x,
        };
        let _guard = engine.serve_control();
        on_signals(shutdown);
        // Its own handle on the engine goes when the run ends, so the store closes then.
        let hangup = keep_going_on_hangup(engine.clone());
        let ticker = tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(500)).await;
                display.tick();
            }
        });
        let exit = body(engine).await;
        ticker.abort();
        hangup.abort();
        let _ = hangup.await;
        exit
    });
    rt.shutdown_background();
    exit
}
