//! `phoenix run`: how a DAG executes. Steps record what they do in files of the test's
//! directory (their working directory), and the tests read those, never the clock.

use crate::process::{self, lines, max_overlap, step, step_states};
use crate::support::{Output, Test};

/// Writes `r.yaml` and runs it with `--no-wait` (stdin is not a terminal anyway).
fn run(yaml: &str) -> Output {
    Test::new().file("r.yaml", yaml).args(["run", "r.yaml", "--no-wait"]).run()
}

fn status(out: &Output) -> serde_json::Value {
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
        ["gate=skipped", "after_gate=succeeded", "broken=failed", "not_after_failure=skipped", "cleanup=succeeded"]
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
    assert_eq!(step_states(&s), ["broken=failed", "child=skipped", "grandchild=skipped", "unrelated=succeeded"]);
    assert_eq!(step(&s, "child")["skip"], "upstream");
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
    assert_eq!(lines(&out.path().join("notified")), ["succeeded failed skipped risky"]);
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

#[test]
fn retries_back_off_and_count_attempts() {
    let out = run(r#"version: 1
name: retrying
steps:
  flaky:
    uses: exec
    retry: { attempts: 5, backoff: exponential, delay: 100ms, max_delay: 150ms }
    with:
      script: |
        n=$(( $(cat tries 2>/dev/null || echo 0) + 1 )); echo $n > tries
        [ $n -ge 3 ] || { echo "attempt $n failed" >&2; exit 1; }
"#)
    .success();
    assert_eq!(lines(&out.path().join("tries")), ["3"]);
    let s = status(&out);
    assert_eq!(step(&s, "flaky")["attempts"], 3);
    // The delays the engine chose: 100 ms, then doubled and capped at 150 ms.
    let run = s["id"].as_str().unwrap();
    let logs = process::json(&out.state_dir(), &["logs", run, "flaky"]);
    let retries: Vec<(u64, u64)> = logs["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "retry")
        .map(|e| (e["attempt"].as_u64().unwrap(), e["delay_ms"].as_u64().unwrap()))
        .collect();
    assert_eq!(retries, [(1, 100), (2, 150)]);
    assert!(
        logs["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "retry" && e["error"].as_str().unwrap().contains("attempt 1 failed"))
    );
}

#[test]
fn retries_give_up_after_the_last_attempt() {
    let out = run(r#"version: 1
name: hopeless
defaults:
  retry: { attempts: 2, backoff: fixed, delay: 50ms }
steps:
  never:
    uses: exec
    with: { script: "echo x >> tries; exit 1" }
"#)
    .code(1);
    assert_eq!(lines(&out.path().join("tries")).len(), 2, "`defaults.retry` gives every step two attempts");
    let s = status(&out);
    assert_eq!(step(&s, "never")["attempts"], 2);
    assert_eq!(step(&s, "never")["status"], "failed");
}

#[test]
fn jitter_shortens_delays_by_at_most_its_fraction() {
    let out = run(r#"version: 1
name: jittery
steps:
  never:
    uses: exec
    retry: { attempts: 4, backoff: exponential, delay: 100ms, max_delay: 1s, jitter: 0.5 }
    with: { script: "exit 1" }
"#)
    .code(1);
    let run = process::latest_run(&out.state_dir());
    let logs = process::json(&out.state_dir(), &["logs", &run, "never"]);
    let delays: Vec<u64> =
        logs["events"].as_array().unwrap().iter().filter(|e| e["kind"] == "retry").map(|e| e["delay_ms"].as_u64().unwrap()).collect();
    assert_eq!(delays.len(), 3);
    for (d, base) in delays.iter().zip([100u64, 200, 400]) {
        assert!((base / 2..=base).contains(d), "delay {d} ms for a base of {base} ms with jitter 0.5: {delays:?}");
    }
}

#[test]
fn dry_run_prints_the_plan_in_order_and_writes_nothing() {
    let out = Test::new()
        .file(
            "r.yaml",
            r#"version: 1
name: planned
params:
  target: { type: string, default: azure }
lock: "dr-{{ params.target }}"
steps:
  last:
    needs: [middle]
    uses: exec
    with: { cmd: [touch, last.ran] }
  first:
    uses: exec
    with: { script: "touch first.ran; echo {{ params.target }}" }
  middle:
    needs: [first]
    uses: sleep
    with: { duration: 1s }
"#,
        )
        .args(["run", "r.yaml", "--dry-run", "--param", "target=aws-west"])
        .run()
        .success()
        .stdout_contains("lock: dr-aws-west")
        .stdout_contains("echo aws-west");
    let plan = out.stdout();
    let at = |s: &str| plan.find(s).unwrap_or_else(|| panic!("{s:?} not in the plan:\n{plan}"));
    assert!(at("1. first") < at("2. middle") && at("2. middle") < at("3. last"), "{plan}");
    assert!(plan.contains("3. last (exec) after middle"), "{plan}");
    assert!(!out.path().join("first.ran").exists() && !out.path().join("last.ran").exists(), "a dry run ran a step");
    assert!(!out.state_dir().exists(), "a dry run wrote state");
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
    assert_eq!(step_states(&s), ["sub=failed", "after=skipped"]);
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

#[test]
fn without_a_terminal_progress_is_plain_timestamped_lines_with_step_output_prefixed() {
    let out = run(r#"version: 1
name: plain
steps:
  greet:
    uses: exec
    with: { script: "echo hello; echo oops >&2" }
  broken:
    needs: [greet]
    uses: exec
    with: { script: "exit 2" }
"#)
    .code(1);
    let err = out.stderr();
    assert!(!err.contains('\x1b'), "no terminal, no escape codes:\n{err}");
    let stamped = |l: &str| {
        let b = l.as_bytes();
        b.len() > 13
            && b[2] == b':'
            && b[5] == b':'
            && b[8] == b'.'
            && b[12] == b' '
            && l[..12].replace([':', '.'], "").bytes().all(|c| c.is_ascii_digit())
    };
    let progress: Vec<&str> = err.lines().take_while(|l| !l.starts_with("see:")).collect();
    assert!(progress.iter().all(|l| stamped(l)), "every progress line starts with a time:\n{err}");
    for needle in ["▶ greet", "[greet] hello", "[greet] oops", "✓ greet", "✗ broken failed"] {
        assert!(err.contains(needle), "{needle:?} not in:\n{err}");
    }
}

#[test]
fn on_a_terminal_a_live_line_shows_what_runs_and_how_far_the_run_is() {
    let setup = Test::new()
        .file(
            "r.yaml",
            "version: 1\nname: live\nsteps:\n  quick: { uses: noop }\n  slow:\n    needs: [quick]\n    uses: exec\n    with: { script: \"sleep 0.3\" }\n",
        )
        .args(["validate", "r.yaml"])
        .run()
        .success();
    let term = process::Terminal::start(setup.path(), &setup.state_dir(), "run r.yaml");
    let screen = term.screen_path();
    assert_eq!(term.wait(), Some(0));
    let screen = std::fs::read_to_string(screen).unwrap();
    // Colors, and a status line redrawn in place: done/total and the running steps.
    assert!(screen.contains('\x1b'), "{screen:?}");
    assert!(screen.contains("1/2 done · running: slow"), "{screen:?}");
    assert!(screen.contains("succeeded"), "{screen:?}");
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
