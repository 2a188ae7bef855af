//! The report as a document of plain blocks (headings, key–value tables, tables, lists),
//! written once here and drawn by `markdown.rs` and `html.rs`. Text is plain: each renderer
//! escapes it for its format.

use serde_json::Value;

use super::analysis::{Analysis, Score};
use super::run::{RunReport, StepReport};
use super::time::duration;
use super::{Report, Time, gantt};
use crate::number::num;

/// One block of the document.
pub(crate) enum Block {
    /// A heading, level 1 to 6.
    Heading(usize, String),
    Para(String),
    /// A header row, then rows.
    Table(Vec<&'static str>, Vec<Vec<String>>),
    /// A two-column table of names and values.
    Pairs(Vec<(String, String)>),
    List(Vec<String>),
    /// Text shown as it is (a model's reply).
    Pre(String),
    /// The chart: SVG markup, already escaped.
    Svg(String),
}

/// The whole report: the top run, the chart, then each child run nested under it.
pub(crate) fn blocks(report: &Report) -> Vec<Block> {
    let mut out = Vec::new();
    run_section(&mut out, report, &report.run, 1);
    out
}

fn run_section(out: &mut Vec<Block>, report: &Report, run: &RunReport, level: usize) {
    let title = match &run.parent_step {
        None => format!("Post-incident report: {} — run {}", run.runbook, run.id),
        Some(step) => format!("Child run {} of step {step}: {}", run.id, run.runbook),
    };
    out.push(Block::Heading(level, title));
    out.push(Block::Pairs(header(report, run)));
    let sub = (level + 1).min(6);
    if level == 1 {
        out.push(Block::Heading(sub, "Gantt chart".into()));
        out.push(Block::Svg(gantt::svg(report)));
    }
    if run.drill {
        out.push(Block::Heading(sub, "Drill".into()));
        super::drill::section(out, run);
    }
    out.push(Block::Heading(sub, "Timeline".into()));
    out.push(timeline(report, run));
    out.push(Block::Heading(sub, "Steps".into()));
    out.push(steps(report, run));
    out.push(Block::Heading(sub, "Analysis".into()));
    analysis(out, run, sub);
    out.push(Block::Heading(sub, "What changed".into()));
    changes(out, run);
    out.push(Block::Heading(sub, "Errors and outcome".into()));
    ending(out, report, run);
    for child in &run.children {
        run_section(out, report, child, sub);
    }
}

fn header(report: &Report, run: &RunReport) -> Vec<(String, String)> {
    let mut rows = vec![("Runbook".to_string(), run.runbook.clone())];
    rows.extend(run.description.clone().map(|d| ("Description".to_string(), d)));
    rows.push(("Run".into(), run.id.clone()));
    rows.push(("Status".into(), run.status.clone() + if run.process_gone { " (its process is gone: crashed or killed)" } else { "" }));
    rows.push(("Started".into(), at(run.started_at, report.start)));
    rows.push(("Finished".into(), run.finished_at.map_or_else(|| "-".to_string(), |t| at(Some(t), report.start))));
    rows.push(("Duration".into(), run.duration_ms(report.generated_at).map_or_else(|| "-".to_string(), duration)));
    rows.push(("Attempts".into(), format!("{} (1 start + {} resume(s))", run.attempt, run.attempt.saturating_sub(1))));
    rows.push(("Steps".into(), step_counts(run)));
    rows.push(("Params".into(), json(&run.params)));
    rows.extend(run.lock.clone().map(|l| ("Lock".to_string(), l)));
    rows.extend(run.dir.clone().map(|d| ("Working directory".to_string(), d)));
    for act in &run.operators {
        let detail = act.detail.as_deref().map_or(String::new(), |d| format!(": {d}"));
        rows.push((format!("{} by", act.action), format!("{} at {}{detail}", act.by, at(Some(act.at), report.start))));
    }
    if run.outputs.as_object().is_some_and(|o| !o.is_empty()) {
        rows.push(("Outputs".into(), json(&run.outputs)));
    }
    rows
}

/// `3 succeeded, 1 failed, 1 skipped, 2 not run: upstream failed`: steps, not their items.
/// A step skipped by its `when` and one not run because a need failed are counted apart: the
/// first is no failure, the second is one.
fn step_counts(run: &RunReport) -> String {
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for s in run.steps.iter().filter(|s| !s.id.ends_with(']')) {
        let label = match s.status.as_str() {
            "upstream_failed" => "not run: upstream failed",
            other => other,
        };
        match counts.iter_mut().find(|(l, _)| *l == label) {
            Some((_, n)) => *n += 1,
            None => counts.push((label, 1)),
        }
    }
    let order = ["succeeded", "failed", "skipped", "not run: upstream failed", "cancelled", "waiting", "running", "pending"];
    counts.sort_by_key(|(l, _)| order.iter().position(|o| o == l).unwrap_or(order.len()));
    counts.iter().map(|(l, n)| format!("{n} {l}")).collect::<Vec<_>>().join(", ")
}

fn timeline(report: &Report, run: &RunReport) -> Block {
    let rows = run
        .timeline
        .iter()
        .map(|e| vec![e.at.offset(report.start), e.at.rfc3339(), e.step.clone().unwrap_or_default(), e.text.clone()])
        .collect();
    Block::Table(vec!["T+", "Time (UTC)", "Step", "Event"], rows)
}

fn steps(report: &Report, run: &RunReport) -> Block {
    let rows = run
        .steps
        .iter()
        .map(|s| {
            vec![
                s.id.clone(),
                action(s),
                s.status.clone(),
                s.attempts.to_string(),
                s.started_at.or(s.spans.first().map(|span| span.start)).map_or_else(String::new, |t| t.offset(report.start)),
                s.duration_ms.or_else(|| waited(s)).map_or_else(String::new, duration),
                step_note(s),
            ]
        })
        .collect();
    Block::Table(vec!["Step", "Action", "Status", "Attempts", "Started", "Duration", "Note"], rows)
}

/// `exec`, `exec (signal probe)`, `http (on_failure)`.
fn action(s: &StepReport) -> String {
    let uses = s.uses.clone().unwrap_or_default();
    match s.role.as_deref() {
        Some("probe") => format!("{uses} (signal probe)"),
        Some("on_failure") => format!("{uses} (on_failure)"),
        _ => uses,
    }
}

/// How long an approval step waited for its decision (it has no attempt times of its own).
fn waited(s: &StepReport) -> Option<u64> {
    let spans: Vec<_> = s.spans.iter().filter(|span| span.waiting).collect();
    if spans.is_empty() {
        return None;
    }
    spans.iter().map(|span| Some(span.end?.since(span.start))).sum()
}

/// The error, why it was skipped, the approval, or the child run.
fn step_note(s: &StepReport) -> String {
    if let Some(e) = &s.error {
        return e.clone();
    }
    if let Some(d) = s.decided.as_ref().filter(|_| s.status == "waiting") {
        return d.clone();
    }
    if let Some(by) = s.approval["by"].as_str() {
        let verdict = if s.approval["approved"] == Value::Bool(true) { "approved" } else { "rejected" };
        let comment = s.approval["comment"].as_str().map_or(String::new(), |c| format!(": {c}"));
        return format!("{verdict} by {by}{comment}");
    }
    match (&s.skip, &s.child_run) {
        (Some(why), _) => format!("skipped ({})", if why == "when" { "`when` was false" } else { "a need was skipped" }),
        (None, Some(child)) => format!("child run {child}"),
        (None, None) => String::new(),
    }
}

fn analysis(out: &mut Vec<Block>, run: &RunReport, level: usize) {
    if run.analyses.is_empty() && run.score.is_none() {
        out.push(Block::Para("No analysis and no score in this run.".into()));
    }
    if let Some(score) = &run.score {
        score_blocks(out, score, level);
    }
    for a in &run.analyses {
        analysis_blocks(out, a, level);
    }
}

fn score_blocks(out: &mut Vec<Block>, score: &Score, level: usize) {
    out.push(Block::Heading((level + 1).min(6), format!("Health score (step {})", score.step)));
    let rows = score
        .signals
        .iter()
        .map(|s| {
            vec![s.name.clone(), s.status.clone(), num(&s.weight), format!("+{}", num(&s.weight)), s.error.clone().unwrap_or_default()]
        })
        .collect();
    out.push(Block::Table(vec!["Signal", "Status", "Weight", "Contribution", "Error"], rows));
    let level_text = match (&score.level, &score.raw_level) {
        (Some(l), Some(raw)) if l != raw => format!("{l} (raw level {raw}, streak {})", score.streak.unwrap_or(0)),
        (l, _) => l.clone().unwrap_or_default(),
    };
    out.push(Block::Para(format!("Total {} — level {level_text}", num(&score.total))));
}

fn analysis_blocks(out: &mut Vec<Block>, a: &Analysis, level: usize) {
    let by = a.model.as_deref().map_or_else(|| a.source.clone(), |m| format!("{} ({m})", a.source));
    out.push(Block::Heading((level + 1).min(6), format!("Analysis by {by} in step {}", a.step.as_deref().unwrap_or("-"))));
    let mut rows: Vec<(String, String)> = [
        ("Provider", a.provider.clone()),
        ("Model", a.model.clone()),
        ("Latency", a.latency_ms.map(duration)),
        ("Requests", a.requests.map(|r| r.to_string())),
        ("Prompt SHA-256", a.prompt_sha256.clone()),
        ("Fell back because", a.fallback_reason.clone()),
    ]
    .into_iter()
    .filter_map(|(k, v)| Some((k.to_string(), v?)))
    .collect();
    rows.extend(a.decision.iter().map(|(k, v)| (k.clone(), v.as_str().map_or_else(|| json(v), str::to_string))));
    out.push(Block::Pairs(rows));
    if let Some(raw) = &a.raw {
        out.push(Block::Para("The model's reply, as received:".into()));
        out.push(Block::Pre(raw.clone()));
    }
}

fn changes(out: &mut Vec<Block>, run: &RunReport) {
    if run.changes.is_empty() {
        out.push(Block::Para("No step of a known changing action (DNS, database, objects, commands, HTTP) ran.".into()));
        return;
    }
    let rows = run
        .changes
        .iter()
        .map(|c| vec![c.step.clone(), c.action.clone(), c.status.clone(), c.summary.clone(), c.details.join("; ")])
        .collect();
    out.push(Block::Table(vec!["Step", "Action", "Status", "Change", "Details"], rows));
}

fn ending(out: &mut Vec<Block>, report: &Report, run: &RunReport) {
    let mut items: Vec<String> = Vec::new();
    for s in &run.steps {
        for r in s.spans.iter().flat_map(|span| &span.retries) {
            items.push(format!(
                "{}: attempt {} failed at {}: {} (retried after {})",
                s.id,
                r.attempt,
                r.at.offset(report.start),
                r.error,
                duration(r.delay_ms)
            ));
        }
        if let (Some(e), "failed" | "cancelled") = (&s.error, s.status.as_str()) {
            let probe = if s.role.as_deref() == Some("probe") { " (a signal probe: it only sets its weight)" } else { "" };
            items.push(format!("{} {}{probe}: {e}", s.id, s.status));
        }
        if let Some(why) = &s.uncertain {
            items.push(format!(
                "{}: its effect is uncertain ({why}); a resume runs nothing until an operator says `--retry {}` or `--skip {}`",
                s.id, s.id, s.id
            ));
        }
    }
    // Steps a failure kept from running, by the failed step they come from.
    let not_run: Vec<&StepReport> = run.steps.iter().filter(|s| s.status == "upstream_failed").collect();
    let mut origins: Vec<Option<&str>> = Vec::new();
    for s in &not_run {
        if !origins.contains(&s.upstream.as_deref()) {
            origins.push(s.upstream.as_deref());
        }
    }
    for origin in origins {
        let ids: Vec<&str> = not_run.iter().filter(|s| s.upstream.as_deref() == origin).map(|s| s.id.as_str()).collect();
        let cause = origin.map_or_else(|| "a failed need".to_string(), |o| format!("`{o}`"));
        items.push(format!("not run because of {cause} (upstream_failed): {}", ids.join(", ")));
    }
    if items.is_empty() {
        out.push(Block::Para("No step failed, and no attempt was retried.".into()));
    } else {
        out.push(Block::List(items));
    }
    out.push(Block::Para(outcome(report, run)));
}

/// How the run ended, and what to do next.
fn outcome(report: &Report, run: &RunReport) -> String {
    let when = run.finished_at.map_or(String::new(), |t| format!(" at {}", at(Some(t), report.start)));
    let why = run.error.as_deref().map_or(String::new(), |e| format!(": {e}"));
    match run.status.as_str() {
        "running" if run.process_gone => {
            format!("The run is marked running, but its process is gone: continue it with `phoenix resume {}`.", run.id)
        }
        "running" => "The run is still in progress: this report shows it as it was when the report was made.".into(),
        // Halted at gates decided since: it no longer asks, a resume applies the decisions.
        "halted" if decided_since(run) => {
            let gates: Vec<&str> = run.steps.iter().filter(|s| s.status == "waiting").map(|s| s.id.as_str()).collect();
            format!(
                "The run halted{when} waiting for approval; {} decided since. Continue it with `phoenix resume {}`.",
                gates.join(", "),
                run.id
            )
        }
        "halted" if why.contains("phoenix resume") => format!("The run halted{when}{why}"),
        "halted" => format!("The run halted{when}{why}. Continue it with `phoenix resume {}`.", run.id),
        "failed" => format!("The run failed{when}{why}. Resume it (failed steps run again) with `phoenix resume {}`.", run.id),
        status => format!("The run {status}{when}{why}."),
    }
}

/// Whether every step the run waits at has a decision a resume has not applied yet.
fn decided_since(run: &RunReport) -> bool {
    let mut waiting = run.steps.iter().filter(|s| s.status == "waiting").peekable();
    waiting.peek().is_some() && waiting.all(|s| s.decided.is_some())
}

/// `2026-11-28T21:30:11.310Z (+1.5s)`.
fn at(t: Option<Time>, start: Time) -> String {
    t.map_or_else(|| "-".to_string(), |t| format!("{} ({})", t.rfc3339(), t.offset(start)))
}

fn json(v: &Value) -> String {
    serde_json::to_string(v).expect("JSON")
}
