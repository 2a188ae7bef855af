//! A drill's section of the report: RTO, RPO (database and objects), its stages and its
//! teardown, as measured from its records (engine/src/exec/drill_measure.rs).

use serde_json::Value;

use super::RunReport;
use super::document::Block;

pub(super) fn section(out: &mut Vec<Block>, run: &RunReport) {
    let m = &run.measure;
    let secs = |v: &Value| v.as_f64().map_or_else(|| "not measured".to_string(), |s| format!("{s:.1}s"));
    let rto = match m["verified_by"].as_str() {
        Some(step) => {
            let from = if m["rto_from"] == "alert" { "the alert's start" } else { "start" };
            let note = m["rto_note"].as_str().map_or(String::new(), |n| format!("; {n}"));
            format!("{} ({from} to the end of `{step}`, the first passing verification{note})", secs(&m["rto_seconds"]))
        }
        None => "not measured: no read step passed after the last change".to_string(),
    };
    let teardown = match run.teardown.as_deref() {
        Some("failed") => "FAILED: the drill's targets may be left as the drill made them".to_string(),
        Some(t) => t.to_string(),
        None => "none declared".to_string(),
    };
    out.push(Block::Pairs(vec![
        ("RTO".into(), rto),
        ("RPO".into(), secs(&m["rpo_seconds"])),
        ("database replay lag".into(), secs(&m["db_lag_seconds"])),
        ("objects not yet copied".into(), secs(&m["object_lag_seconds"])),
        ("teardown".into(), teardown),
    ]));
    let stages: Vec<Vec<String>> = m["stages"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| vec![s["step"].as_str().unwrap_or("").to_string(), secs(&s["seconds"]), s["status"].as_str().unwrap_or("").to_string()])
        .collect();
    if !stages.is_empty() {
        out.push(Block::Table(vec!["stage", "duration", "status"], stages));
    }
}
