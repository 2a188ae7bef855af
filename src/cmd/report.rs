//! `report`: the post-incident report of a run and its child runs, read from the store or
//! asked of the process that owns it (so a run in progress can be reported on too).

use std::path::{Path, PathBuf};

use phoenix_engine::exec::views;
use phoenix_engine::state::Store;
use serde_json::{Value, json};

use super::ops;
use super::state::{self, Access};
use crate::cli::{Output, ReportFormat};
use crate::exit::Exit;
use crate::report::{self, RunViews};

/// Child runs nest no deeper than this (a runbook that calls itself is refused by its lock,
/// but the report does not rely on it).
const MAX_DEPTH: usize = 16;

pub(crate) fn run(state_dir: &Option<PathBuf>, run: &str, format: ReportFormat, out: Output) -> Exit {
    let dir = state::dir(state_dir);
    let views = match state::open(&dir).and_then(|access| fetch(&dir, &access, run, 0)) {
        Ok(v) => v,
        Err(e) => return ops::fail(e),
    };
    let report = match report::Report::build(&views, report::now()) {
        Ok(r) => r,
        Err(e) => return ops::fail(e),
    };
    let text = match (out, format) {
        (Output::Json, _) => serde_json::to_string_pretty(&report).expect("the report serializes") + "\n",
        (Output::Text, ReportFormat::Md) => report::markdown::render(&report),
        (Output::Text, ReportFormat::Html) => report::html::render(&report),
    };
    print!("{text}");
    Exit::Ok
}

/// A run's `status`, `logs` and `definitions` views, then its child runs', recursively.
pub(crate) fn fetch(dir: &Path, access: &Access, run: &str, depth: usize) -> Result<RunViews, String> {
    let unknown = || format!("no run `{run}` (phoenix runs lists them)");
    let found = |v: Result<Option<Value>, phoenix_engine::state::StoreError>| v.map_err(|e| e.to_string())?.ok_or_else(unknown);
    let status = ops::ask(dir, access, &json!({"op": "status", "run": run}), |s: &Store| found(views::status(s, Some(run))))?;
    let logs = ops::ask(dir, access, &json!({"op": "logs", "run": run}), |s: &Store| found(views::logs(s, run, None)))?;
    // An owner running an older phoenix does not know `definitions`: the report then lacks
    // each step's action, nothing else.
    let definitions = ops::ask(dir, access, &json!({"op": "definitions", "run": run}), |s: &Store| found(views::definitions(s, run)))
        .unwrap_or(Value::Null);
    let mut children = Vec::new();
    if depth < MAX_DEPTH {
        for step in status["steps"].as_array().into_iter().flatten() {
            if let (Some(id), Some(child)) = (step["id"].as_str(), step["child_run"].as_str()) {
                match fetch(dir, access, child, depth + 1) {
                    Ok(views) => children.push((id.to_string(), views)),
                    // A child run recorded but gone from the store: the step's row still names it.
                    Err(e) if e.starts_with("no run") => {}
                    Err(e) => return Err(e),
                }
            }
        }
    }
    Ok(RunViews { status, logs, definitions, children })
}
