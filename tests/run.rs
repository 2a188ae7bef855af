//! `phoenix run`: how a DAG executes. Steps record what they do in files of the test's
//! directory (their working directory), and the tests read those, never the clock.

use crate::process::{self, lines, max_overlap, step, step_states};
use crate::support::{Output, Test};

/// Writes `r.yaml` and runs it with `--no-wait` (stdin is not a terminal anyway).
pub(crate) fn run(yaml: &str) -> Output {
    Test::new().file("r.yaml", yaml).args(["run", "r.yaml", "--no-wait"]).run()
}

pub(crate) fn status(out: &Output) -> serde_json::Value {
    process::status(&out.state_dir(), &process::latest_run(&out.state_dir()))
}

/// A step script that waits (up to 30 s) for `other.ready` after announcing `me.ready`:
/// it can only succeed if the two steps run at the same time.
fn rendezvous(me: &str, other: &str) -> String {
    format!(
        "touch {me}.ready\n        for i in $(seq 600); do [ -e {other}.ready ] && exit 0; sleep 0.05; done\n        echo '{other} never ran while {me} did' >&2; exit 1"
    )
}

#[test]
fn independent_branches_run_at_once() {
    let yaml = format!(
        r#"version: 1
name: branches
steps:
  left:
    uses: exec
    with:
      script: |
        {}
  right:
    uses: exec
    with:
      script: |
        {}
  join:
    needs: [left, right]
    uses: exec
    with: {{ script: "ls left.ready right.ready > joined" }}
"#,
        rendezvous("left", "right"),
        rendezvous("right", "left")
    );
    let out = run(&yaml).success();
    assert_eq!(lines(&out.path().join("joined")), ["left.ready", "right.ready"]);
    let s = status(&out);
    assert_eq!(step_states(&s), ["left=succeeded", "right=succeeded", "join=succeeded"]);
}

/// Each step announces its start, waits until a second step is running (or 2 s pass, for
/// a step left alone at the end), then announces its end.
const PAIRED: &str = r#"echo "start $PHOENIX_STEP_ID" >> ledger
        for i in $(seq 40); do
          s=$(grep -c '^start' ledger || true); e=$(grep -c '^end' ledger || true)
          [ $((s - e)) -ge 2 ] && break
          sleep 0.05
        done
        sleep 0.05
        echo "end $PHOENIX_STEP_ID" >> ledger"#;

#[test]
fn max_parallel_bounds_how_many_steps_run_at_once() {
    let mut yaml = "version: 1\nname: bounded\nmax_parallel: 2\nsteps:\n".to_string();
    for s in ["a", "b", "c", "d", "e", "f"] {
        yaml += &format!("  {s}:\n    uses: exec\n    with:\n      script: |\n        {PAIRED}\n");
    }
    let out = run(&yaml).success();
    let ledger = lines(&out.path().join("ledger"));
    assert_eq!(ledger.len(), 12, "{ledger:?}");
    // Two at a time, never three: the bound is used and holds.
    assert_eq!(max_overlap(&ledger), 2, "{ledger:#?}");
}

#[test]
fn for_each_runs_one_item_each_under_its_own_max_parallel() {
    let yaml = format!(
        r#"version: 1
name: fan
max_parallel: 8
steps:
  fan:
    uses: exec
    for_each: [1, 2, 3, 4, 5, 6]
    max_parallel: 2
    with:
      script: |
        echo "item {{{{ item }}}}" >> items
        {PAIRED}
  total:
    needs: [fan]
    uses: exec
    with: {{ script: "echo {{{{ steps.fan.outputs.count }}}} > total" }}
"#
    );
    let out = run(&yaml).success();
    let ledger = lines(&out.path().join("ledger"));
    assert_eq!(max_overlap(&ledger), 2, "{ledger:#?}");
    let mut items = lines(&out.path().join("items"));
    items.sort();
    assert_eq!(items, ["item 1", "item 2", "item 3", "item 4", "item 5", "item 6"]);
    assert_eq!(lines(&out.path().join("total")), ["6"]);
    let s = status(&out);
    assert_eq!(step(&s, "fan")["status"], "succeeded");
    for j in 0..6 {
        assert_eq!(step(&s, &format!("fan[{j}]"))["status"], "succeeded");
    }
}

#[test]
fn when_false_skips_the_step() {
    let out = Test::new()
        .file(
            "r.yaml",
            r#"version: 1
name: optional
params:
  enabled: { type: bool, default: false }
steps:
  off:
    uses: exec
    when: "params.enabled"
    with: { script: "touch off.ran" }
  on:
    uses: exec
    when: "not params.enabled"
    with: { script: "touch on.ran" }
"#,
        )
        .args(["run", "r.yaml"])
        .run()
        .success();
    assert!(!out.path().join("off.ran").exists(), "a step whose `when` is false ran");
    assert!(out.path().join("on.ran").exists());
    let s = status(&out);
    assert_eq!(step(&s, "off")["status"], "skipped");
    assert_eq!(step(&s, "off")["skip"], "when");
    assert_eq!(s["status"], "succeeded");
    // The same runbook with the param set runs the other branch.
    let again = out.then().args(["run", "r.yaml", "--param", "enabled=true"]).run().success();
    assert!(again.path().join("off.ran").exists());
}

#[test]
fn when_false_skips_the_dependents_too() {
    let out = run(r#"version: 1
name: optional
steps:
  off:
    uses: exec
    when: "false"
    with: { script: "touch off.ran" }
  after_off:
    needs: [off]
    uses: exec
    with: { script: "touch after_off.ran" }
"#)
    .success();
    assert!(!out.path().join("after_off.ran").exists(), "a dependent of a skipped step ran");
    assert_eq!(step_states(&status(&out)), ["off=skipped", "after_off=skipped"]);
}

#[test]
fn trigger_rules_let_a_step_follow_an_optional_gate_or_clean_up_after_a_failure() {
    let out = run(r#"version: 1
name: rules
steps:
  gate:
    uses: exec
    when: "false"
    with: { script: "touch gate.ran" }
  after_gate:
    needs: [gate]
    trigger_rule: none_failed
    uses: exec
    with: { script: "touch after_gate.ran" }
  broken:
    uses: exec
    with: { script: "exit 3" }
  not_after_failure:
    needs: [broken]
    trigger_rule: none_failed
    uses: exec
    with: { script: "touch not_after_failure.ran" }
  cleanup:
    needs: [broken, after_gate]
    trigger_rule: all_done
    uses: exec
    with: { script: "touch cleanup.ran" }
"#)
    .code(1);
    assert!(out.path().join("after_gate.ran").exists(), "none_failed: a skipped need counts as done");
    assert!(!out.path().join("not_after_failure.ran").exists(), "none_failed: a failed need still skips");
    assert!(out.path().join("cleanup.ran").exists(), "all_done: runs after a failure");
    assert_eq!(
        step_states(&status(&out)),
        ["gate=skipped", "after_gate=succeeded", "broken=failed", "not_after_failure=upstream_failed", "cleanup=succeeded"]
    );
}

#[test]
fn a_failed_need_skips_its_dependents_and_fails_the_run() {
    let out = run(r#"version: 1
name: failing
steps:
  broken:
    uses: exec
    with: { script: "echo 'disk full' >&2; exit 4" }
  child:
    needs: [broken]
    uses: exec
    with: { script: "touch child.ran" }
  grandchild:
    needs: [child]
    uses: exec
    with: { script: "touch grandchild.ran" }
  unrelated:
    uses: exec
    with: { script: "touch unrelated.ran" }
"#)
    .code(1);
    assert!(!out.path().join("child.ran").exists());
    assert!(!out.path().join("grandchild.ran").exists());
    assert!(out.path().join("unrelated.ran").exists(), "an independent branch must still run");
    let s = status(&out);
    assert_eq!(s["status"], "failed");
    assert!(s["error"].as_str().unwrap().contains("broken"), "{s:#}");
    assert_eq!(step_states(&s), ["broken=failed", "child=upstream_failed", "grandchild=upstream_failed", "unrelated=succeeded"]);
    assert_eq!((step(&s, "child")["upstream"].as_str(), step(&s, "grandchild")["upstream"].as_str()), (Some("broken"), Some("broken")));
    let broken = step(&s, "broken");
    assert_eq!(broken["outputs"]["exit_code"], 4);
    assert!(broken["error"].as_str().unwrap().contains("disk full"), "{broken:#}");
}

#[test]
fn continue_on_error_records_the_failure_but_lets_dependents_run() {
    let out = run(r#"version: 1
name: tolerant
steps:
  flaky:
    uses: exec
    continue_on_error: true
    with: { script: "exit 1" }
  after:
    needs: [flaky]
    uses: exec
    with: { script: "echo {{ steps.flaky.status }} > seen" }
"#)
    .success();
    assert_eq!(lines(&out.path().join("seen")), ["failed"]);
    let s = status(&out);
    assert_eq!(s["status"], "succeeded");
    assert_eq!(step_states(&s), ["flaky=failed", "after=succeeded"]);
}

#[test]
fn bad_params_exit_2_and_record_no_run() {
    let t = Test::new().file(
        "r.yaml",
        r#"version: 1
name: strict
lock: strict
params:
  db_host: { type: string }
  target: { type: string, default: azure, enum: [azure, aws-west] }
  replicas: { type: int, default: 1 }
steps:
  a:
    uses: exec
    with: { script: "touch a.ran" }
"#,
    );
    let out = t.args(["run", "r.yaml"]).run().code(2).stderr_contains("db_host").stderr_contains("--param db_host=");
    for (param, says) in [("target=gcp", "azure, aws-west"), ("replicas=many", "replicas"), ("nope=1", "`nope` is not a param")] {
        out.then().args(["run", "r.yaml", "--param", "db_host=db1", "--param", param]).run().code(2).stderr_contains(says);
    }
    out.then().args(["run", "r.yaml", "--param", "db_host"]).run().code(2).stderr_contains("NAME=VALUE");
    assert!(!out.path().join("a.ran").exists());
    // Nothing was recorded, and the lock was not taken: a good run goes through.
    if out.state_dir().exists() {
        assert!(process::run_ids(&out.state_dir()).is_empty(), "a refused run left a record");
    }
    out.then().args(["run", "r.yaml", "--param", "db_host=db1"]).run().success();
    assert_eq!(process::run_ids(&out.state_dir()).len(), 1);
}

#[test]
fn for_each_takes_its_list_from_an_earlier_step_and_gathers_item_outputs() {
    let out = run(r#"version: 1
name: regions
steps:
  list:
    uses: exec
    with: { cmd: [echo, '["east", "west", "north"]'], parse: json }
  fan:
    needs: [list]
    for_each: "{{ steps.list.outputs.json }}"
    uses: exec
    with: { cmd: [echo, "region={{ item }}"] }
outputs:
  said: "{{ steps.fan.outputs['items'] | map(attribute='stdout') | map('trim') | list }}"
  count: "{{ steps.fan.outputs.count }}"
"#)
    .success();
    assert_eq!(status(&out)["outputs"], serde_json::json!({"said": ["region=east", "region=west", "region=north"], "count": 3}));
}

#[test]
fn run_dir_is_the_runbooks_directory_and_never_empty() {
    let rb = "version: 1\nname: where\nsteps:\n  say:\n    uses: exec\n    with: { cmd: [echo, \"{{ run.dir }}/x\"] }\n";
    let out = Test::new().file("r.yaml", rb).file("sub/r.yaml", rb).args(["run", "r.yaml"]).run().success();
    assert_eq!(step(&status(&out), "say")["outputs"]["stdout"], "./x\n");
    let out = Test::new().file("sub/r.yaml", rb).args(["run", "sub/r.yaml"]).run().success();
    assert_eq!(step(&status(&out), "say")["outputs"]["stdout"], "sub/x\n");
}
