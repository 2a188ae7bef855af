//! `phoenix watch FILE --every 30s [--cooldown 15m]`: evaluate again and again; start a run
//! of the runbook when the confirmed level is above the lowest one.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use phoenix_engine::Runbook;
use phoenix_engine::exec::{Engine, Outcome, RunError, StartOptions};
use phoenix_engine::state::Batch;
use tokio_util::sync::CancellationToken;

use crate::cli::Output;
use crate::display::Display;
use crate::exit::Exit;
use crate::number::num;
use crate::wiring::{engine_for, on_signals, parse_params, runtime};

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// Runs until Ctrl-C / SIGTERM (exit 130); 2 for bad input.
pub(crate) fn run(
    state_dir: &Option<PathBuf>,
    file: &Path,
    every: Duration,
    cooldown: Option<Duration>,
    metrics_addr: Option<&str>,
    raw_params: &[String],
) -> Exit {
    let rb = match super::load_or_report(file, Output::Text) {
        Ok(rb) => Arc::new(rb),
        Err(e) => return e,
    };
    if rb.signals.is_empty() {
        eprintln!("error: runbook `{}` has no signals to watch", rb.name);
        return Exit::BadInput;
    }
    let params = match parse_params(raw_params) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return Exit::BadInput;
        }
    };
    let cooldown_ms = cooldown.map_or(0, |d| d.as_millis() as u64);
    let dir = super::state::dir(state_dir);
    let rt = runtime();
    let exit = rt.block_on(async move {
        let shutdown = CancellationToken::new();
        let engine = match engine_for(&dir, None, Arc::new(Display::new(false)), shutdown.clone()) {
            Ok(e) => e,
            Err(x) => return x,
        };
        let metrics = crate::metrics::Metrics::new(&rb.name, rb.levels.iter().map(|l| l.name.clone()).collect());
        if let Some(addr) = metrics_addr {
            if let Err(e) = crate::metrics::serve(addr, metrics.clone()).await {
                eprintln!("error: cannot serve metrics on {addr}: {e}");
                return Exit::BadInput;
            }
        }
        let _guard = engine.serve_control();
        on_signals(shutdown.clone());
        loop {
            match tick(&engine, &rb, &params, cooldown_ms, &metrics, true, None).await {
                Ok(Tick::Line(line)) => println!("{line}"),
                Ok(Tick::Interrupted(line)) => {
                    println!("{line}");
                    return Exit::Interrupted;
                }
                Err(_) if shutdown.is_cancelled() => return Exit::Interrupted,
                Err((exit, e)) => {
                    eprintln!("error: {e}");
                    return exit;
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = shutdown.cancelled() => return Exit::Interrupted,
            }
        }
    });
    rt.shutdown_background();
    exit
}

/// What one evaluation did.
pub(crate) enum Tick {
    /// A line for the log: total, level, and what was done.
    Line(String),
    /// The run it started was interrupted (Ctrl-C / SIGTERM).
    Interrupted(String),
}

/// Evaluates the signals once, records the score in `metrics`, and starts a run when the
/// confirmed level is above the lowest (unless in cooldown or locked). `Err`: the exit code
/// and why (bad input, or the store failed).
pub(crate) async fn tick(
    engine: &Engine,
    rb: &Arc<Runbook>,
    params: &[(String, String)],
    cooldown_ms: u64,
    metrics: &crate::metrics::Shared,
    no_wait: bool,
    by: Option<String>,
) -> Result<Tick, (Exit, String)> {
    let acts = rb.main.steps.iter().any(|s| matches!(s.role, phoenix_engine::runbook::Role::Action));
    let score = match engine.evaluate(rb, params).await {
        Ok(s) => s,
        Err(e @ RunError::BadInput(_)) => return Err((Exit::BadInput, e.to_string())),
        Err(e) => return Err((Exit::Failed, e.to_string())),
    };
    metrics.lock().expect("metrics").record(&score);
    let mut level = score["level"].as_str().unwrap_or("").to_string();
    let lowest = rb.levels.first().is_some_and(|l| l.name == level);
    if score["raw_level"] != score["level"] && score["degraded"].is_null() {
        level += &format!(" (raw {}, streak {})", score["raw_level"].as_str().unwrap_or(""), score["streak"]);
    }
    let head = format!("{} total {} level {level}", stamp(), num(&score["total"]));
    let since = engine.store().last_action(&rb.name).ok().flatten().map(|t| now_ms().saturating_sub(t));
    let did = if let Some(why) = score["degraded"].as_str() {
        format!("observer degraded, nothing started: {why}")
    } else if !acts || lowest {
        "nothing to do".to_string()
    } else if let Some(s) = since.filter(|&s| s < cooldown_ms) {
        format!("cooldown: {}s left", (cooldown_ms - s).div_ceil(1000))
    } else {
        let opts = StartOptions { params: params.to_vec(), no_wait, by, ..StartOptions::default() };
        match engine.start(rb.clone(), opts).await {
            Ok((id, outcome)) => {
                let mut b = Batch::default();
                b.last_action(&rb.name, now_ms());
                let _ = engine.store().commit(b, true);
                if outcome == Outcome::Interrupted {
                    return Ok(Tick::Interrupted(format!("{head}: run {id} interrupted")));
                }
                format!("started run {id}: {}", outcome_word(&outcome))
            }
            Err(e) => format!("not started: {}", e.to_string().lines().next().unwrap_or("")),
        }
    };
    Ok(Tick::Line(format!("{head}: {did}")))
}

fn outcome_word(o: &Outcome) -> String {
    match o {
        Outcome::Succeeded => "succeeded".into(),
        Outcome::Failed(e) => format!("failed ({e})"),
        Outcome::Halted(e) => format!("halted ({e})"),
        Outcome::Cancelled => "cancelled".into(),
        Outcome::Interrupted => "interrupted".into(),
    }
}

fn stamp() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}
