//! `phoenix drill`: the same runbook with its `drill.params` overlaid, marked as a drill,
//! with its own lock key; refused (exit 2, nothing written) when a mutating step would
//! change a target in `drill.protect` or one that production changes.

use crate::process;
use crate::support::Test;

/// A failover whose DNS switch and object copy wait behind an approval (so `--no-wait`
/// halts before they act), with the drill section `drill`.
pub(crate) fn failover(drill: &str) -> String {
    format!(
        r#"version: 1
name: failover
params:
  zone_id: {{ type: string, default: Z1 }}
  record: {{ type: string, default: app.example.com }}
  container: {{ type: string, default: prod-assets }}
  ttl: {{ type: int, default: 60 }}
lock: dr
{drill}
steps:
  gate:
    uses: approval
    with: {{ message: go? }}
  switch_dns:
    needs: [gate]
    uses: route53.upsert
    with: {{ zone_id: "{{{{ params.zone_id }}}}", name: "{{{{ params.record }}}}", type: A, ttl: "{{{{ params.ttl }}}}", values: [10.0.0.1] }}
  copy:
    needs: [gate]
    uses: storage.sync
    with: {{ from: "s3://prod-objects", to: "azblob://{{{{ params.container }}}}" }}
  mark:
    needs: [gate]
    uses: exec
    with: {{ script: "echo {{{{ params.record }}}} >> worked" }}
"#
    )
}

pub(crate) const GOOD: &str =
    "drill:\n  params: { record: drill-app.example.com, container: drill-assets }\n  protect: [\"{{ params.record }}\", prod-assets]";

#[test]
fn a_drill_is_the_same_runbook_with_the_overlay_marked_as_a_drill() {
    let t = Test::new().file("f.yaml", failover(GOOD)).args(["drill", "f.yaml", "--param", "record=given.example.com", "--no-wait"]).run();
    let t = t
        .code(3)
        .stderr_contains("drill of `failover`")
        .stderr_contains(" of `failover`: 4 steps")
        .stderr_contains("drill run ")
        .stderr_contains("record = drill-app.example.com (the drill's, instead of given.example.com)")
        .stderr_contains("container = drill-assets (the drill's, instead of prod-assets)")
        .stderr_contains("mark: `exec` does not say what these inputs change");
    let id = process::latest_run(&t.state_dir());
    let status = t.then().args(["status", &id, "--output", "json"]).run().success().stdout_json();
    assert_eq!(status["drill"], true, "{status:#}");
    assert_eq!(status["lock"], "drill:dr", "a drill's lock key is its own");
    assert_eq!(status["params"]["record"], "drill-app.example.com", "the overlay wins over --param");
    assert_eq!(status["params"]["ttl"], 60, "the overlay keeps its types and the other params");
    let runs = t.then().args(["runs", "--output", "json"]).run().success().stdout_json();
    assert_eq!(runs["runs"][0]["drill"], true, "{runs:#}");
    let logs = t.then().args(["logs", &id]).run().success();
    logs.stdout_contains("drill: 3 mutating step(s) checked");
    // Production is neither blocked by the drill's lock nor marked as a drill.
    let prod = t.then().args(["run", "f.yaml", "--no-wait"]).run().code(3);
    let prod_id = process::latest_run(&prod.state_dir());
    assert_ne!(prod_id, id);
    let status = t.then().args(["status", &prod_id, "--output", "json"]).run().success().stdout_json();
    assert_eq!(status["drill"], false);
    assert_eq!(status["lock"], "dr");
    // A second drill is blocked by the first one's lock.
    t.then().args(["drill", "f.yaml", "--no-wait"]).run().code(2).stderr_contains("the lock `drill:dr` is held by run");
}

#[track_caller]
fn refused(drill: &str, wants: &[&str]) {
    let t = Test::new().file("f.yaml", failover(drill)).args(["drill", "f.yaml", "--no-wait"]).run();
    let mut t = t.code(2).stderr_contains("the drill of `failover` is refused").stderr_contains("nothing was run, nothing was written");
    for w in wants {
        t = t.stderr_contains(w);
    }
    assert!(process::run_ids(&t.state_dir()).is_empty(), "a refused drill must write no run");
    assert!(!t.path().join("worked").exists());
}

#[test]
fn an_overlay_that_forgets_the_dns_record_is_refused() {
    refused(
        "drill:\n  params: { container: drill-assets }",
        &["step `switch_dns` would change DNS app.example.com A in zone Z1, which is what production resolves to"],
    );
}

#[test]
fn an_overlay_that_forgets_the_container_is_refused() {
    refused(
        "drill:\n  params: { record: drill-app.example.com }\n  protect: [\"{{ params.record }}\"]",
        &["step `copy` would change", "prod-assets", "which is what production resolves to"],
    );
}

#[test]
fn a_target_named_in_protect_is_refused_even_when_the_overlay_changes_it() {
    // The overlay sets the record to one `protect` names (a production alias).
    refused(
        "drill:\n  params: { record: www.example.com, container: drill-assets }\n  protect: [\"{{ params.record }}\", WWW.example.com.]",
        &["step `switch_dns` would change DNS www.example.com A in zone Z1, which is in `protect` (`www.example.com`)"],
    );
}

#[test]
fn every_collision_is_listed() {
    refused(
        "drill:\n  params: { ttl: 30 }",
        &["step `switch_dns` would change DNS app.example.com", "step `copy` would change", "2 target(s) it must not touch"],
    );
}

#[test]
fn a_runbook_without_a_drill_section_says_how_to_add_one() {
    let t = Test::new().file("f.yaml", failover("")).args(["drill", "f.yaml"]).run();
    let t = t.code(2).stderr_contains("has no `drill:` section").stderr_contains("protect:");
    assert!(process::run_ids(&t.state_dir()).is_empty());
}

#[test]
fn a_dry_run_checks_and_plans_with_the_drill_params_and_writes_nothing() {
    let t = Test::new().file("f.yaml", failover(GOOD)).args(["drill", "f.yaml", "--dry-run"]).run().success();
    let t = t.stdout_contains("drill-app.example.com").stdout_lacks("name=app.example.com");
    assert!(!t.state_dir().exists() || process::run_ids(&t.state_dir()).is_empty());
}

#[test]
fn the_drill_section_is_validated() {
    let bad = "drill:\n  params: { recrod: x, ttl: \"60\" }\n  protect: [\"{{ steps.gate.outputs.x }}\", \"\"]";
    Test::new()
        .file("f.yaml", failover(bad))
        .args(["validate", "f.yaml"])
        .run()
        .code(2)
        .stderr_contains("PHX0502")
        .stderr_contains("did you mean `record`")
        .stderr_contains("not of the param's type `int`")
        .stderr_contains("PHX0708")
        .stderr_contains("`protect` reads `steps`")
        .stderr_contains("an empty `protect` entry");
    Test::new().file("f.yaml", failover("drill:\n  teardwn: {}")).args(["validate", "f.yaml"]).run().code(2).stderr_contains("teardwn");
}

#[test]
fn drills_lists_each_drill_with_its_measured_rto_and_not_production_runs() {
    let rb = "version: 1\nname: quick\nparams:\n  target: { default: prod }\ndrill:\n  params: { target: drill }\nsteps:\n  act: { uses: exec, with: { script: \"echo {{ params.target }} > acted\" }, effect: idempotent }\n  verify: { uses: exec, needs: [act], with: { script: \"test -s acted\" }, effect: read }\n";
    let t = Test::new().file("q.yaml", rb).args(["drill", "q.yaml"]).run().success();
    let id = process::latest_run(&t.state_dir());
    t.then().args(["run", "q.yaml"]).run().success();
    let v = t.then().args(["drills", "--output", "json"]).run().success().stdout_json();
    let drills = v["drills"].as_array().expect("a list");
    assert_eq!(drills.len(), 1, "only the drill is listed: {v:#}");
    assert_eq!(drills[0]["id"], id.as_str());
    let m = &drills[0]["measure"];
    assert_eq!(m["verified_by"], "verify", "{m:#}");
    let rto = m["rto_seconds"].as_f64().expect("an RTO");
    let stages: f64 = m["stages"].as_array().unwrap().iter().map(|s| s["seconds"].as_f64().unwrap()).sum();
    assert!(rto >= stages, "the RTO spans at least the stages it ran: {m:#}");
    assert!(m["rpo_seconds"].is_null(), "no lag step ran: no RPO");
    t.then().args(["drills"]).run().success().stdout_contains(&id).stdout_contains("RTO");
    let status = t.then().args(["status", &id, "--output", "json"]).run().success().stdout_json();
    assert_eq!(status["measure"]["verified_by"], "verify");
}

/// A drill whose `act` leaves a mark, whose `check` fails when `fail` exists, and whose
/// teardown (`undo`, then `log_undo`) removes the mark; `teardown_extra` adds to it.
pub(crate) fn with_teardown(teardown_extra: &str) -> String {
    format!(
        r#"version: 1
name: td
params:
  target: {{ default: prod }}
drill:
  params: {{ target: drill }}
  teardown:
    undo: {{ uses: exec, with: {{ script: "rm -f mark-{{{{ params.target }}}}; echo undo >> ledger" }}, effect: idempotent }}
    log_undo: {{ uses: exec, needs: [undo], with: {{ script: "echo 'main was {{{{ steps.act.status }}}}' >> ledger" }}, effect: idempotent }}
{teardown_extra}
steps:
  act: {{ uses: exec, with: {{ script: "echo act >> ledger; touch mark-{{{{ params.target }}}}" }}, effect: idempotent }}
  check: {{ uses: exec, needs: [act], with: {{ script: "echo check >> ledger; test ! -e fail" }}, effect: read }}
"#
    )
}

#[test]
fn a_drill_that_fails_midway_still_tears_down() {
    let t = Test::new().file("td.yaml", with_teardown("")).file("fail", "").args(["drill", "td.yaml"]).run().code(1);
    assert!(!t.path().join("mark-drill").exists(), "the teardown removed what the drill made");
    assert_eq!(process::lines(&t.path().join("ledger")), ["act", "check", "undo", "main was succeeded"]);
    let id = process::latest_run(&t.state_dir());
    let status = t.then().args(["status", &id, "--output", "json"]).run().success().stdout_json();
    assert_eq!(status["status"], "failed", "the drill failed (check), whatever the teardown did");
    assert_eq!(status["teardown"], "succeeded", "{status:#}");
    let drills = t.then().args(["drills", "--output", "json"]).run().success().stdout_json();
    assert_eq!(drills["drills"][0]["teardown"], "succeeded");
    // A production run of the same runbook never tears down.
    let prod = t.then().args(["run", "td.yaml"]).run().code(1);
    assert!(prod.path().join("mark-prod").exists());
}

#[test]
fn a_teardown_that_fails_fails_the_drill_and_says_so() {
    let extra = "    broken: { uses: exec, needs: [log_undo], with: { script: \"exit 3\" } }";
    let t = Test::new().file("td.yaml", with_teardown(extra)).args(["drill", "td.yaml"]).run().code(1);
    let t = t.stderr_contains("TEARDOWN FAILED").stderr_contains("teardown failed: broken");
    let id = process::latest_run(&t.state_dir());
    let status = t.then().args(["status", &id, "--output", "json"]).run().success().stdout_json();
    assert_eq!(status["teardown"], "failed", "{status:#}");
    assert!(status["error"].as_str().unwrap().contains("the drill succeeded; teardown failed: broken"), "{status:#}");
    t.then().args(["drills"]).run().success().stdout_contains("failed");
    let drills = t.then().args(["drills", "--output", "json"]).run().success().stdout_json();
    assert_eq!(drills["drills"][0]["teardown"], "failed");
}

#[test]
fn a_drill_killed_during_its_teardown_resumes_into_the_teardown_alone() {
    let extra = "    slow: { uses: exec, needs: [log_undo], with: { script: \"touch slow-started; while [ ! -e go ]; do sleep 0.05; done; echo slow >> ledger\" }, effect: idempotent }";
    // The drill fails (`check`): a resume must not run its failed step again, only the rest
    // of its teardown.
    let t = Test::new().file("td.yaml", with_teardown(extra)).file("fail", "");
    let dir = t.path().to_path_buf();
    let state = t.state_dir();
    let state_arg = state.display().to_string();
    let bg = process::Background::start(&dir, &["--state", &state_arg, "drill", "td.yaml"]);
    process::wait_for("the teardown's slow step", std::time::Duration::from_secs(60), || dir.join("slow-started").exists());
    process::crash_tree(bg.pid());
    bg.kill_alone();
    std::fs::write(dir.join("go"), "").unwrap();
    let id = process::latest_run(&state);
    let resumed = process::Background::start(&dir, &["--state", &state_arg, "resume", &id]).wait(std::time::Duration::from_secs(120));
    assert_eq!(resumed.code, Some(1), "the drill failed: {resumed:?}");
    assert_eq!(
        process::lines(&dir.join("ledger")),
        ["act", "check", "undo", "main was succeeded", "slow"],
        "nothing done before the crash ran again"
    );
    let status = process::status(&state, &id);
    assert_eq!(status["status"], "failed", "{status:#}");
    assert_eq!(status["teardown"], "succeeded");
}

#[test]
fn a_cancelled_drill_still_tears_down() {
    let rb = with_teardown("").replace(
        "echo act >> ledger; touch mark-{{ params.target }}",
        "echo act >> ledger; touch mark-{{ params.target }}; touch act-started; while [ ! -e never ]; do sleep 0.05; done",
    );
    let t = Test::new().file("td.yaml", rb);
    let dir = t.path().to_path_buf();
    let state = t.state_dir();
    let state_arg = state.display().to_string();
    let bg = process::Background::start(&dir, &["--state", &state_arg, "drill", "td.yaml"]);
    process::wait_for("the drill's act step", std::time::Duration::from_secs(60), || dir.join("act-started").exists());
    let id = process::latest_run(&state);
    Test::new().args(["--state", &state_arg, "cancel", &id]).run().success();
    let ended = bg.wait(std::time::Duration::from_secs(60));
    assert_eq!(ended.code, Some(1), "{ended:?}");
    assert!(!dir.join("mark-drill").exists(), "the teardown ran after the cancel");
    assert_eq!(process::lines(&dir.join("ledger")), ["act", "undo", "main was cancelled"]);
    let status = process::status(&state, &id);
    assert_eq!(status["status"], "cancelled", "{status:#}");
    assert_eq!(status["teardown"], "succeeded");
}

#[test]
fn the_report_and_metrics_show_the_drills_rto_rpo_and_teardown() {
    let t =
        Test::new().file("td.yaml", with_teardown("")).file("serve.yaml", "runbooks: .\n").args(["--state", "state", "drill", "td.yaml"]);
    let t = t.run().success();
    let state = t.path().join("state");
    let id = process::latest_run(&state);
    let report = Test::new().args(["--state", &state.display().to_string(), "report", &id]).run().success();
    report
        .stdout_contains("Drill")
        .stdout_contains("(start to the end of `check`, the first passing verification)")
        .stdout_contains("| teardown | succeeded |");
    let mut server = crate::serve_support::Server::start(t.path());
    let (_, metrics) = crate::serve_support::request(&server.addr, "GET", "/metrics", Some(&server.token), None);
    assert!(metrics.contains("# TYPE phoenix_drill_rto_seconds gauge"), "{metrics}");
    assert!(metrics.lines().any(|l| l.starts_with("phoenix_drill_rto_seconds{runbook=\"td\"} ")), "{metrics}");
    assert!(!metrics.lines().any(|l| l.starts_with("phoenix_drill_rpo_seconds{")), "no lag step ran, so no RPO: {metrics}");
    server.stop();
}

#[test]
fn a_for_each_step_is_checked_item_by_item() {
    let rb = "version: 1\nname: helmy\nparams:\n  namespace: { default: prod }\n  services: { type: list, default: [web, api] }\n  record: { default: a.example.com }\ndrill:\n  params: { record: drill.example.com }\nsteps:\n  deploy:\n    for_each: params.services\n    uses: exec\n    with: { cmd: [helm, upgrade, --install, \"{{ item }}\", chart, --namespace, \"{{ params.namespace }}\"] }\n";
    let t = Test::new().file("h.yaml", rb).args(["drill", "h.yaml"]).run().code(2);
    let t = t
        .stderr_contains("step `deploy` would change")
        .stderr_contains("Helm release web in namespace prod")
        .stderr_contains("Helm release api in namespace prod");
    assert!(process::run_ids(&t.state_dir()).is_empty());
}

#[test]
fn an_aborted_drill_runs_on_abort_then_its_teardown() {
    let rb = with_teardown("").replace(
        "steps:\n",
        "on_abort:\n  cleanup: { uses: exec, with: { script: \"echo on_abort >> ledger\" }, effect: idempotent }\nsteps:\n  gate: { uses: approval, needs: [act], with: { message: go? } }\n",
    );
    let t = Test::new().file("td.yaml", rb).args(["drill", "td.yaml", "--no-wait"]).run().code(3);
    let id = process::latest_run(&t.state_dir());
    t.then().args(["resume", &id, "--abort", "--reason", "rehearsal over"]).run().code(0);
    assert_eq!(process::lines(&t.path().join("ledger")), ["act", "check", "on_abort", "undo", "main was succeeded"]);
    assert!(!t.path().join("mark-drill").exists());
    let status = t.then().args(["status", &id, "--output", "json"]).run().success().stdout_json();
    assert_eq!(status["status"], "cancelled", "{status:#}");
    assert_eq!(status["teardown"], "succeeded");
}

#[test]
fn a_drill_adopts_no_edited_runbook() {
    let t = Test::new().file("f.yaml", failover(GOOD)).args(["drill", "f.yaml", "--no-wait"]).run().code(3);
    let id = process::latest_run(&t.state_dir());
    // The edit would switch production's record: it was never checked.
    let edited = failover(GOOD).replace("name: \"{{ params.record }}\"", "name: app.example.com");
    let t = t.then().file("edited.yaml", edited).args(["resume", &id, "--runbook", "edited.yaml", "--yes"]).run();
    t.code(2).stderr_contains("is a drill: it adopts no edited runbook");
}
