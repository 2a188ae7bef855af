//! The `runbook` action: a child run with its own id, whose outputs the parent step gets,
//! whose failure fails it, and which the step's timeout cancels.

use crate::process::{self, lines, step, step_states};
use crate::support::Test;

#[test]
fn a_child_runbook_is_a_run_of_its_own_whose_outputs_the_parent_gets() {
    let out = Test::new()
        .file(
            "child.yaml",
            r#"version: 1
name: child
params:
  region: { type: string }
steps:
  work:
    uses: exec
    with: { cmd: [echo, "{{ params.region }}-done"] }
outputs:
  result: "{{ steps.work.outputs.stdout | trim }}"
"#,
        )
        .file(
            "parent.yaml",
            r#"version: 1
name: parent
steps:
  failover:
    uses: runbook
    with: { file: child.yaml, params: { region: eastus } }
  report:
    needs: [failover]
    uses: exec
    with: { script: "echo {{ steps.failover.outputs.outputs.result }} > reported" }
outputs:
  child_result: "{{ steps.failover.outputs.outputs.result }}"
  child_run: "{{ steps.failover.outputs.run_id }}"
"#,
        )
        .args(["run", "parent.yaml"])
        .run()
        .success();
    assert_eq!(lines(&out.path().join("reported")), ["eastus-done"]);
    let runs = process::json(&out.state_dir(), &["runs"]);
    let runs = runs["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2, "{runs:#?}");
    let parent = runs.iter().find(|r| r["runbook"] == "parent").expect("the parent run");
    let child = runs.iter().find(|r| r["runbook"] == "child").expect("the child run");
    assert_ne!(parent["id"], child["id"]);
    assert_eq!(child["parent"]["run"], parent["id"]);
    assert_eq!(child["parent"]["step"], "failover");
    let s = process::status(&out.state_dir(), parent["id"].as_str().unwrap());
    assert_eq!(s["outputs"]["child_result"], "eastus-done");
    assert_eq!(s["outputs"]["child_run"], child["id"]);
    assert_eq!(step(&s, "failover")["child_run"], child["id"]);
    assert_eq!(step(&s, "failover")["outputs"]["status"], "succeeded");
    let c = process::status(&out.state_dir(), child["id"].as_str().unwrap());
    assert_eq!(c["status"], "succeeded");
    assert_eq!(c["outputs"]["result"], "eastus-done");
}

#[test]
fn a_failed_child_fails_the_parent_step() {
    let out = Test::new()
        .file("child.yaml", "version: 1\nname: child\nsteps:\n  boom: { uses: exec, with: { script: \"exit 9\" } }\n")
        .file(
            "parent.yaml",
            "version: 1\nname: parent\nsteps:\n  sub: { uses: runbook, with: { file: child.yaml } }\n  after: { uses: noop, needs: [sub] }\n",
        )
        .args(["run", "parent.yaml"])
        .run()
        .code(1);
    let s = process::status(&out.state_dir(), &process::run_of(&out.state_dir(), "parent"));
    assert_eq!(step_states(&s), ["sub=failed", "after=upstream_failed"]);
    assert!(step(&s, "sub")["error"].as_str().unwrap().contains("child run failed"), "{s:#}");
}

#[test]
fn a_child_run_that_outlasts_its_steps_timeout_is_cancelled() {
    let marker = format!("phoenix-child-timeout-{}", std::process::id());
    let out = Test::new()
        .file(
            "child.yaml",
            format!("version: 1\nname: child\nsteps:\n  long: {{ uses: exec, with: {{ script: \"exec -a {marker} sleep 300\" }} }}\n"),
        )
        .file("parent.yaml", "version: 1\nname: parent\nsteps:\n  sub: { uses: runbook, with: { file: child.yaml }, timeout: 1s }\n")
        .args(["run", "parent.yaml"])
        .run()
        .code(1);
    let s = process::status(&out.state_dir(), &process::run_of(&out.state_dir(), "parent"));
    let error = step(&s, "sub")["error"].as_str().unwrap_or_default().to_string();
    assert!(error.contains("timed out after 1s: the child run") && error.contains("was cancelled"), "{s:#}");
    let child = process::status(&out.state_dir(), &process::run_of(&out.state_dir(), "child"));
    assert_eq!(child["status"], "cancelled", "{child:#}");
    assert!(process::alive_with_marker(&marker).is_empty(), "the child's step still runs");
}
