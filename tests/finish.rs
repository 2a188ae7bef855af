//! How a run ends: `on_failure` (when it runs, and what it sees) and the runbook's
//! `outputs` (rendered at the end, typed, and a failure of their own).

use crate::process::{lines, step};
use crate::run::{run, status};
use crate::support::Test;

const WITH_ON_FAILURE: &str = r#"version: 1
name: guarded
params:
  fail: { type: bool, default: false }
steps:
  ok:
    uses: noop
  risky:
    needs: [ok]
    uses: exec
    with: { script: "{% if params.fail %}exit 1{% endif %}" }
  after:
    needs: [risky]
    uses: noop
on_failure:
  notify:
    uses: exec
    with:
      script: |
        echo "{{ steps.ok.status }} {{ steps.risky.status }} {{ steps.after.status }} {{ run.failed_steps | join(',') }}" > notified
"#;

#[test]
fn on_failure_runs_when_the_run_fails_and_sees_step_statuses() {
    let out = Test::new().file("r.yaml", WITH_ON_FAILURE).args(["run", "r.yaml", "--param", "fail=true"]).run().code(1);
    assert_eq!(lines(&out.path().join("notified")), ["succeeded failed upstream_failed risky"]);
    let s = status(&out);
    assert_eq!(s["status"], "failed");
    assert_eq!(step(&s, "notify")["status"], "succeeded");
    assert_eq!(step(&s, "notify")["plan"], "on_failure");
}

#[test]
fn outputs_that_cannot_be_rendered_fail_the_run_and_on_failure_runs() {
    let rb = r#"version: 1
name: reporting
steps:
  get:
    uses: exec
    with: { cmd: [echo, '{"region": "eastus"}'], parse: json }
outputs:
  region: "{{ steps.get.outputs.json.region }}"
  zone: "{{ steps.get.outputs.json.placement.zone }}"
on_failure:
  notify:
    uses: exec
    with:
      script: |
        echo {{ run.error }} > notified
"#;
    let out = run(rb).code(1);
    let note = lines(&out.path().join("notified"));
    assert_eq!(note.len(), 1, "{note:?}");
    assert!(note[0].starts_with("outputs.zone: "), "on_failure sees why: {note:?}");
    let s = status(&out);
    assert_eq!(s["status"], "failed");
    assert!(s["error"].as_str().unwrap().starts_with("outputs.zone: "), "{s:#}");
    assert_eq!(step(&s, "get")["status"], "succeeded");
    assert_eq!(step(&s, "notify")["status"], "succeeded");
}

#[test]
fn on_failure_does_not_run_when_the_run_succeeds() {
    let out = run(WITH_ON_FAILURE).success();
    assert!(!out.path().join("notified").exists(), "on_failure ran although nothing failed");
    let s = status(&out);
    assert_eq!(s["status"], "succeeded");
    assert_ne!(step(&s, "notify")["status"], "succeeded");
}

#[test]
fn runbook_outputs_keep_their_types_in_status_json() {
    let out = Test::new()
        .file(
            "r.yaml",
            r#"version: 1
name: outputs
params:
  region: { type: string, default: eastus }
steps:
  probe:
    uses: exec
    with: { cmd: [echo, '{"replicas": 3, "zones": ["a", "b"], "ok": true}'], parse: json }
outputs:
  replicas: "{{ steps.probe.outputs.json.replicas }}"
  zones: "{{ steps.probe.outputs.json.zones }}"
  healthy: "{{ steps.probe.outputs.json.ok }}"
  summary: "{{ steps.probe.outputs.json.replicas }} replicas in {{ params.region }}"
"#,
        )
        .args(["run", "r.yaml", "--output", "json"])
        .run()
        .success();
    let expected = serde_json::json!({ "replicas": 3, "zones": ["a", "b"], "healthy": true, "summary": "3 replicas in eastus" });
    // `run --output json` prints the final status; `status` reads the same from the store.
    assert_eq!(out.stdout_json()["outputs"], expected);
    assert_eq!(status(&out)["outputs"], expected);
}
