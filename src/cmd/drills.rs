//! `phoenix drills`: the history of drills: when, runbook, result, RTO, RPO (measured from
//! each drill's records when its main plan ended, and stored: engine/src/exec/drill_measure.rs).
//! A drill's child runs are drills too, each listed.

use std::path::PathBuf;

use phoenix_engine::exec::views;
use serde_json::{Value, json};

use super::ops::query;
use crate::cli::Output;
use crate::exit::Exit;

pub(crate) fn list(state_dir: &Option<PathBuf>, out: Output) -> Exit {
    let v = match query(state_dir, json!({"op": "runs"}), |s| views::runs(s).map_err(|e| e.to_string())) {
        Ok(v) => v,
        Err(e) => return e,
    };
    let drills: Vec<Value> = v["runs"].as_array().into_iter().flatten().filter(|r| r["drill"] == true).cloned().collect();
    if out == Output::Json {
        println!("{}", serde_json::to_string_pretty(&json!({ "drills": drills })).expect("JSON"));
        return Exit::Ok;
    }
    if drills.is_empty() {
        println!("no drills yet: rehearse a runbook with `phoenix drill FILE`");
        return Exit::Ok;
    }
    println!("{:<22} {:<24} {:<10} {:<25} {:>9} {:>9}  TEARDOWN", "RUN", "RUNBOOK", "RESULT", "STARTED", "RTO", "RPO");
    for r in &drills {
        let m = &r["measure"];
        println!(
            "{:<22} {:<24} {:<10} {:<25} {:>9} {:>9}  {}",
            r["id"].as_str().unwrap_or(""),
            r["runbook"].as_str().unwrap_or(""),
            r["status"].as_str().unwrap_or(""),
            r["started_at"].as_str().unwrap_or(""),
            seconds(&m["rto_seconds"]),
            seconds(&m["rpo_seconds"]),
            r["teardown"].as_str().unwrap_or("none"),
        );
    }
    println!(
        "\nRTO: start (or the start of the alert it ran for) to the end of the first passing verification step; RPO: the larger of the database's replay lag and the oldest object the copy lacked, measured before the switch; `-`: not measured"
    );
    Exit::Ok
}

fn seconds(v: &Value) -> String {
    v.as_f64().map_or_else(|| "-".to_string(), |s| format!("{s:.1}s"))
}
