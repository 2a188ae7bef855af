use super::*;

/// Records as the first release wrote them, before later optional fields existed:
/// a newer binary must still read them.
#[test]
fn reads_records_written_before_optional_fields_existed() {
    let step: StepRecord = serde_json::from_str(r#"{"id":"a","status":"succeeded","attempts":1}"#).unwrap();
    assert_eq!((step.plan, step.order, step.status), (PlanKind::Main, 0, StepStatus::Succeeded));
    assert!(step.outputs.is_none() && step.child_run.is_none() && step.items.is_none() && step.uncertain.is_none());
    // And a record with nothing uncertain is written as before (the field left out).
    assert!(!serde_json::to_string(&step).unwrap().contains("uncertain"));
    let run: RunRecord = serde_json::from_str(
        r#"{"format":1,"id":"r","runbook":"rb","file":"rb.yaml","status":"halted","params":{},"vars":{},"attempt":2,"started_at":1,"updated_at":2}"#,
    )
    .unwrap();
    assert_eq!(run.status, RunStatus::Halted);
    assert!(run.lock.is_none() && run.parent.is_none());
    assert!(run.alert.is_none() && run.measure.is_none(), "no origin, no stored figures: measured when shown");
    // And a run without them is written as before (the fields left out).
    let text = serde_json::to_string(&run).unwrap();
    assert!(!text.contains("alert") && !text.contains("measure"), "{text}");
    let ev: EventRecord =
        serde_json::from_str(r#"{"seq":3,"at":4,"kind":"step","step":"a","status":"failed","attempt":1,"error":"x"}"#).unwrap();
    assert!(matches!(ev.kind, EventKind::Step { status: StepStatus::Failed, .. }));
    // A step skipped for a need, as stores before `upstream_failed` wrote it.
    let old: StepRecord = serde_json::from_str(r#"{"id":"b","status":"skipped","attempts":0,"skip":"upstream"}"#).unwrap();
    assert_eq!((old.status, old.skip, old.upstream), (StepStatus::Skipped, Some(SkipReason::Upstream), None));
}

/// `upstream_failed` is written and read under that one name, the name `status` and the
/// API show, and `upstream` only when there is one.
#[test]
fn upstream_failed_serializes_stably() {
    assert_eq!(serde_json::to_string(&StepStatus::UpstreamFailed).unwrap(), r#""upstream_failed""#);
    assert_eq!(StepStatus::UpstreamFailed.as_str(), "upstream_failed");
    let s: StepStatus = serde_json::from_str(r#""upstream_failed""#).unwrap();
    assert_eq!(s, StepStatus::UpstreamFailed);
    assert!(StepStatus::UpstreamFailed.is_done());
    let mut r = StepRecord::pending("switch", PlanKind::Main, "f");
    assert!(!serde_json::to_string(&r).unwrap().contains("upstream"));
    r.status = StepStatus::UpstreamFailed;
    r.upstream = Some("deploy".into());
    let back: StepRecord = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
    assert_eq!((back.status, back.upstream.as_deref()), (StepStatus::UpstreamFailed, Some("deploy")));
}
