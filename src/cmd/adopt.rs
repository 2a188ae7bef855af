//! `phoenix resume`'s decisions before anything runs: the diff of an edited runbook and the
//! plan (`--dry-run` shows them and stops), and the confirmation of an adoption on a
//! terminal (`--yes` for scripts; without a terminal and without `--yes`, nothing runs).

use std::io::{BufRead, IsTerminal, Write};

use phoenix_engine::exec::Adoption;
use serde_json::json;

use crate::cli::Output;
use crate::exit::Exit;

/// The operator's choices on `phoenix resume`.
pub(crate) struct Choice {
    pub(crate) retry: Vec<String>,
    pub(crate) skip: Vec<String>,
    pub(crate) rerun: Vec<String>,
    pub(crate) keep: Vec<String>,
    /// `--override INV --reason TEXT`.
    pub(crate) overrides: Vec<phoenix_engine::exec::Override>,
    pub(crate) dry_run: bool,
    pub(crate) yes: bool,
    /// `--confirm`: go on although the decision is stale.
    pub(crate) confirm: bool,
    /// `--abort`: run the on_abort steps and end the run cancelled.
    pub(crate) abort: bool,
    /// `--reason`.
    pub(crate) reason: Option<String>,
}

impl Choice {
    /// Whether the plan is worth computing before resuming.
    pub(crate) fn plans(&self, adopting: bool) -> bool {
        adopting || self.dry_run || !self.rerun.is_empty() || !self.keep.is_empty()
    }
}

/// Whether the resume goes on.
pub(crate) enum Go {
    Run,
    Stop(Exit),
}

/// Shows the plan and decides: `--dry-run` stops here; adopting `given` is confirmed on a
/// terminal, taken with `--yes`, refused otherwise.
pub(crate) fn decide(a: &Adoption, run: &str, given: Option<&str>, choice: &Choice, out: Output) -> Go {
    if choice.dry_run {
        if out == Output::Json {
            let v = json!({ "run": run, "runbook": given, "diff": a.diff, "plan": a.plan, "runs": a.runs, "halts": a.asks });
            println!("{}", serde_json::to_string_pretty(&v).expect("JSON"));
        } else {
            println!("{}", render(a, run, given));
            println!("dry run: nothing was run or written");
        }
        return Go::Stop(Exit::Ok);
    }
    eprintln!("{}", render(a, run, given));
    let Some(file) = given else { return Go::Run };
    if choice.yes {
        return Go::Run;
    }
    if !(std::io::stdin().is_terminal() && std::io::stderr().is_terminal()) {
        eprintln!(
            "error: adopting {file} changes what run {run} does (above); without a terminal to confirm it, add --yes \
             (phoenix resume {run} --runbook {file} --yes); --dry-run shows it without acting. Run {run} was not changed."
        );
        return Go::Stop(Exit::BadInput);
    }
    eprint!("Adopt {file} and run {} step{}? [y/N] ", a.runs, if a.runs == 1 { "" } else { "s" });
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    let _ = std::io::stdin().lock().read_line(&mut answer);
    if matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes") {
        Go::Run
    } else {
        eprintln!("not adopted: run {run} was not changed");
        Go::Stop(Exit::Failed)
    }
}

/// The diff (when adopting) and the plan, as text.
fn render(a: &Adoption, run: &str, given: Option<&str>) -> String {
    let mut s = String::new();
    match given {
        Some(file) => s.push_str(&format!("adopting {file} for run {run}:\n")),
        None => s.push_str(&format!("resuming run {run}:\n")),
    }
    for line in &a.diff {
        s.push_str(&format!("  {line}\n"));
    }
    if a.plan.is_empty() {
        s.push_str("plan: no step runs again");
    } else {
        s.push_str("plan (in this order):");
        for line in &a.plan {
            s.push_str(&format!("\n  {line}"));
        }
    }
    if let Some(why) = &a.asks {
        s.push_str(&format!("\nit halts before running anything: {why}"));
    }
    s
}

/// A plan as `phoenix serve` sends it over the control socket (`phoenix_engine`'s
/// `Adoption` as JSON: `diff`, `plan`, `runs`, `asks`).
pub(crate) fn from_json(v: &serde_json::Value) -> Adoption {
    let lines = |k: &str| v[k].as_array().into_iter().flatten().filter_map(|l| l.as_str().map(str::to_string)).collect();
    Adoption {
        diff: lines("diff"),
        plan: lines("plan"),
        runs: v["runs"].as_u64().unwrap_or_default() as usize,
        asks: v["asks"].as_str().map(str::to_string),
    }
}
