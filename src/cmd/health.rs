//! `phoenix health FILE`: evaluate the signals once and print the score table.

use std::path::Path;
use std::sync::Arc;

use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::cli::Output;
use crate::display::Display;
use crate::exit::Exit;
use crate::number::num;
use crate::wiring::{engine_for, parse_params, runtime};

/// Exit 0 whatever the level; 2 for bad input.
pub(crate) fn run(state_dir: &Option<std::path::PathBuf>, file: &Path, raw_params: &[String], out: Output) -> Exit {
    let rb = match super::load_or_report(file, out) {
        Ok(rb) => rb,
        Err(e) => return e,
    };
    let params = match parse_params(raw_params) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return Exit::BadInput;
        }
    };
    let dir = super::state::dir(state_dir);
    let rt = runtime();
    let exit = rt.block_on(async move {
        let engine = match engine_for(&dir, None, Arc::new(Display::new(false)), CancellationToken::new()) {
            Ok(e) => e,
            Err(x) => return x,
        };
        match engine.evaluate(&rb, &params).await {
            Ok(score) => {
                match out {
                    Output::Json => println!("{}", serde_json::to_string_pretty(&score).expect("json")),
                    Output::Text => print!("{}", table(&score)),
                }
                Exit::Ok
            }
            Err(e) => {
                eprintln!("error: {e}");
                Exit::BadInput
            }
        }
    });
    rt.shutdown_background();
    exit
}

/// The seed's table: signal, status, weight, contribution; the total; the level.
pub(crate) fn table(score: &Value) -> String {
    let mut rows = vec![["SIGNAL".to_string(), "STATUS".into(), "WEIGHT".into(), "CONTRIBUTION".into()]];
    for (name, s) in score["signals"].as_object().into_iter().flatten() {
        let w = num(&s["weight"]);
        let status = s["status"].as_str().unwrap_or("").to_string();
        let shown = if s["vantage"] == true { format!("{status} (vantage)") } else { status };
        let plus = if s["vantage"] == true { "-".to_string() } else { format!("+{w}") };
        rows.push([name.clone(), shown, w.clone(), plus]);
    }
    let widths: Vec<usize> = (0..4).map(|c| rows.iter().map(|r| r[c].len()).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for r in &rows {
        out += &format!(
            "{:<w0$}  {:<w1$}  {:>w2$}  {:>w3$}\n",
            r[0],
            r[1],
            r[2],
            r[3],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2],
            w3 = widths[3]
        );
    }
    out += &format!("TOTAL {}\n", num(&score["total"]));
    let (level, raw) = (score["level"].as_str().unwrap_or(""), score["raw_level"].as_str().unwrap_or(""));
    out += &format!("level: {level}");
    if level != raw {
        out += &format!(" (raw level {raw}, streak {})", score["streak"]);
    }
    out += "\n";
    if let Some(why) = score["degraded"].as_str() {
        let last = score["last_level"].as_str().unwrap_or("none yet");
        out += &format!("observer degraded: {why}\n  nothing acts on this evaluation (last trusted level: {last})\n");
    }
    out + &reasons(score)
}

/// Why each failed signal failed (and a weight rule that could not be read), one per line.
fn reasons(score: &Value) -> String {
    let mut out = String::new();
    for (name, s) in score["signals"].as_object().into_iter().flatten() {
        if s["status"] != "succeeded" {
            let why = s["error"].as_str().unwrap_or("no reason recorded");
            out += &format!("{name} failed: {}\n", why.lines().next().unwrap_or(why));
        }
        if let Some(e) = s["rule_error"].as_str() {
            out += &format!("{name} weight rule: {e}\n");
        }
    }
    out
}

/// For `status` of a run with signals: the total, the level, and what `for:` held back or
/// why the evaluation was `unknown`. `None` when the run has no score yet.
pub(crate) fn status_line(run: &Value) -> Option<String> {
    let steps = run["steps"].as_array()?;
    let score = steps.iter().find(|s| s["id"] == "score")?.get("outputs")?;
    let (level, raw) = (score["level"].as_str()?, score["raw_level"].as_str().unwrap_or(""));
    let mut line = format!("health: total {} level {level}", num(&score["total"]));
    if let Some(why) = score["degraded"].as_str() {
        line += &format!(" (observer degraded: {why}; nothing acts)");
    } else if level != raw {
        let hold =
            score["levels"].as_array().into_iter().flatten().find(|l| l["name"] == raw).map_or(1, |l| l["for"].as_u64().unwrap_or(1));
        line += &format!(" ({raw} held back by its `for: {hold}`: seen {} time(s) in a row)", score["streak"]);
    }
    Some(line)
}
