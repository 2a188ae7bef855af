use serde_json::json;

use super::measure;
use crate::state::{PlanKind, RunRecord, StepRecord, StepStatus};

const RB: &str = r#"
version: 1
name: m
steps:
  copy: { uses: exec, with: { script: "true" }, effect: idempotent }
  db_lag: { uses: postgres.replication_lag, needs: [copy], with: { dsn: "host=h dbname=d" } }
  object_lag: { uses: storage.lag, needs: [copy], with: { from: "s3://a", to: "azblob://b" } }
  switch: { uses: exec, needs: [db_lag, object_lag], with: { script: "true" }, effect: mutating }
  early_check: { uses: exec, with: { script: "true" }, effect: read }
  verify: { uses: exec, needs: [switch], with: { script: "true" }, effect: read }
  verify_slow: { uses: exec, needs: [switch], with: { script: "true" }, effect: read }
"#;

fn rec(id: &str, status: StepStatus, from: u64, to: u64, outputs: serde_json::Value) -> StepRecord {
    StepRecord {
        status,
        started_at: Some(from),
        finished_at: Some(to),
        outputs: Some(outputs),
        ..StepRecord::pending(id, PlanKind::Main, "f")
    }
}

fn measured(records: &[StepRecord]) -> serde_json::Value {
    let rb = crate::load_str(RB, std::path::Path::new("m.yaml")).runbook.expect("valid");
    let run = RunRecord { drill: true, ..RunRecord::sample("r", 10_000) };
    measure(&rb, &run, records)
}

#[test]
fn rto_ends_with_the_first_read_step_started_after_the_last_change_and_rpo_is_the_larger_lag() {
    let ok = StepStatus::Succeeded;
    let m = measured(&[
        rec("copy", ok, 10_000, 12_000, json!({})),
        // A read while changes still ran does not verify them.
        rec("early_check", ok, 10_000, 10_500, json!({})),
        rec("db_lag", ok, 12_000, 12_100, json!({ "lag_seconds": 1.5 })),
        rec("object_lag", ok, 12_000, 12_300, json!({ "rpo_seconds": 4.0 })),
        rec("switch", ok, 12_300, 14_000, json!({})),
        rec("verify_slow", ok, 14_000, 16_000, json!({})),
        rec("verify", ok, 14_000, 15_000, json!({})),
    ]);
    assert_eq!(m["rto_seconds"], 5.0, "{m:#}");
    assert_eq!(m["verified_by"], "verify");
    assert_eq!(m["db_lag_seconds"], 1.5);
    assert_eq!(m["object_lag_seconds"], 4.0);
    assert_eq!(m["rpo_seconds"], 4.0);
    assert_eq!(m["stages"][0]["step"], "copy");
    assert_eq!(m["stages"].as_array().unwrap().len(), 7);
}

#[test]
fn a_failed_verification_measures_no_rto_and_a_missing_lag_no_rpo() {
    let m = measured(&[
        rec("copy", StepStatus::Succeeded, 10_000, 12_000, json!({})),
        rec("early_check", StepStatus::Succeeded, 10_000, 10_500, json!({})),
        rec("switch", StepStatus::Succeeded, 12_300, 14_000, json!({})),
        rec("verify", StepStatus::Failed, 14_000, 15_000, json!({})),
    ]);
    assert!(m["rto_seconds"].is_null(), "{m:#}");
    assert!(m["rpo_seconds"].is_null());
}

#[test]
fn the_rto_of_a_run_started_for_an_alert_counts_from_the_alert_and_nothing_changed_measures_none() {
    let rb = crate::load_str(RB, std::path::Path::new("m.yaml")).runbook.expect("valid");
    let ok = StepStatus::Succeeded;
    let records = [rec("switch", ok, 12_300, 14_000, json!({})), rec("verify", ok, 14_000, 15_000, json!({}))];
    let alert = crate::state::AlertOrigin { starts_at_ms: Some(4_000), ..crate::state::AlertOrigin::new("fp", "RegionDown", "x") };
    let run = RunRecord { alert: Some(alert.clone()), ..RunRecord::sample("r", 10_000) };
    let m = measure(&rb, &run, &records);
    assert_eq!((m["rto_seconds"].as_f64(), m["rto_from"].as_str()), (Some(11.0), Some("alert")), "{m:#}");
    // An alert that says it began after the run: the run's start, said so.
    let later = crate::state::AlertOrigin { starts_at_ms: Some(11_000), ..alert };
    let m = measure(&rb, &RunRecord { alert: Some(later), ..RunRecord::sample("r", 10_000) }, &records);
    assert_eq!((m["rto_seconds"].as_f64(), m["rto_from"].as_str()), (Some(5.0), Some("run")), "{m:#}");
    assert!(m["rto_note"].as_str().unwrap().contains("after the run's start"));
    // Reads alone recovered nothing: no RTO.
    let m = measure(&rb, &RunRecord::sample("r", 10_000), &[rec("verify", ok, 14_000, 15_000, json!({}))]);
    assert!(m["rto_seconds"].is_null(), "{m:#}");
}
