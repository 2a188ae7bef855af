//! The stale-decision guard: a failover decided by its signals, halted at its approval and
//! resumed after its `decision_ttl` while production has recovered, must not act without
//! the operator's word. Steps append to a ledger, so the tests count what ran instead of
//! trusting the engine's word. (The decision is made old by a `decision_ttl` shorter than a
//! process start, never by sleeping.)

use std::time::Duration;

use serde_json::Value;

use crate::health_server::{Answer, HealthServer};
use crate::process::{self, Background, count, lines, step};
use crate::support::{Output, Test};

/// A failover gated by an approval, decided by one health signal.
fn runbook(health: &HealthServer, ttl: &str) -> String {
    format!(
        r#"version: 1
name: stale-failover
decision_ttl: {ttl}
signals:
  app:
    uses: http
    with: {{ url: "{}", timeout: 2s }}
    weight:
      - {{ when: "outputs.json.status == 'healthy'", weight: 0 }}
      - {{ weight: 10 }}
levels:
  - {{ name: no_action, max: 3 }}
  - {{ name: dr_failover }}
steps:
  gate:
    needs: [score]
    when: "score.level == 'dr_failover'"
    uses: approval
    with: {{ message: "fail over?" }}
  switch_dns:
    needs: [gate]
    uses: exec
    with: {{ script: "echo switch_dns >> ledger" }}
on_abort:
  keep_primary:
    uses: exec
    with: {{ script: "echo keep_primary {{{{ steps.switch_dns.status }}}} >> ledger" }}
  clean_dr:
    needs: [keep_primary]
    uses: exec
    with: {{ script: "echo clean_dr >> ledger" }}
"#,
        health.url()
    )
}

fn ledger(out: &Output) -> Vec<String> {
    lines(&out.path().join("ledger"))
}

/// A run whose signals decided `dr_failover`, halted at its gate, and the gate approved
/// while it was halted (as a tired operator would, before looking at the signals again).
fn halted_failover(health: &HealthServer, ttl: &str) -> (Output, String) {
    let out = Test::new().file("f.yaml", runbook(health, ttl)).args(["run", "f.yaml", "--no-wait"]).run().code(3);
    let run = process::latest_run(&out.state_dir());
    let s = process::status(&out.state_dir(), &run);
    assert_eq!(step(&s, "score")["outputs"]["level"], "dr_failover", "{s:#}");
    out.then().args(["approve", &run, "gate", "--as", "alice"]).run().success();
    (out, run)
}

fn events(out: &Output, run: &str) -> Vec<Value> {
    process::json(&out.state_dir(), &["logs", run])["events"].as_array().cloned().unwrap_or_default()
}

/// The run and its steps as the store holds them (`decision` is read from the events).
fn records(out: &Output, run: &str) -> Value {
    let mut s = process::status(&out.state_dir(), run);
    s.as_object_mut().map(|m| m.remove("decision"));
    s
}

fn reevaluations(events: &[Value]) -> Vec<&Value> {
    events.iter().filter(|e| e["kind"] == "note" && e["data"]["kind"] == "decision_reevaluated").collect()
}

#[test]
fn a_stale_failover_with_health_recovered_does_nothing_without_the_operator() {
    let health = HealthServer::start(Answer::Status("unhealthy"));
    let (out, run) = halted_failover(&health, "1ms");
    health.set(Answer::Status("healthy"));
    let before = records(&out, &run);
    let events_before = events(&out, &run).len();
    let r = out.then().args(["resume", &run]).run().code(3);
    let r = r
        .stderr_contains("the signals were evaluated again")
        .stderr_contains("the level now is `no_action`, lower than `dr_failover` decided then")
        .stderr_contains(&format!("phoenix resume {run} --confirm --reason"))
        .stderr_contains(&format!("phoenix resume {run} --abort"));
    // Then and now side by side, on the terminal.
    r.stderr_contains("dr_failover  no_action");
    assert!(ledger(&out).is_empty(), "nothing may act: {:?}", ledger(&out));
    assert_eq!(records(&out, &run), before, "the run and its steps are as they were");
    let ev = events(&out, &run);
    assert_eq!(ev.len(), events_before + 1, "only the re-evaluation is written: {:#?}", &ev[events_before..]);
    let re = reevaluations(&ev);
    assert_eq!(re.len(), 1);
    assert_eq!(re[0]["data"]["verdict"], "stale");
    assert_eq!(re[0]["data"]["then"]["level"], "dr_failover");
    assert_eq!(re[0]["data"]["now"]["level"], "no_action");
    assert_eq!(re[0]["data"]["then"]["signals"]["app"]["weight"], 10.0);
    assert_eq!(re[0]["data"]["now"]["signals"]["app"]["weight"], 0.0);
    // `status` shows it too, with the two ways on.
    out.then()
        .args(["status", &run])
        .run()
        .success()
        .stdout_contains("dr_failover  no_action")
        .stdout_contains("--confirm --reason")
        .stdout_lacks("continue it with");

    // Asking again changes nothing either.
    out.then().args(["resume", &run]).run().code(3);
    assert!(ledger(&out).is_empty());

    // --confirm needs a reason, and then goes on, recorded with who and why.
    out.then().args(["resume", &run, "--confirm"]).run().code(2).stderr_contains("--reason");
    assert!(ledger(&out).is_empty());
    out.then()
        .args(["resume", &run, "--confirm", "--reason", "primary flapping, fail over anyway", "--as", "bob"])
        .run()
        .success()
        .stderr_contains("the signals were evaluated again");
    assert_eq!(ledger(&out), ["switch_dns"]);
    assert_eq!(process::status(&out.state_dir(), &run)["status"], "succeeded");
    let export = out.then().args(["audit", "export", &run]).run().success();
    let confirmed: Vec<Value> = export
        .stdout()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["kind"] == "operator" && e["action"] == "confirm-stale-decision")
        .collect();
    assert_eq!(confirmed.len(), 1, "{}", export.stdout());
    assert_eq!(confirmed[0]["by"], "bob");
    let detail = confirmed[0]["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("primary flapping, fail over anyway") && detail.contains("then `dr_failover`, now `no_action`"), "{detail}");
    out.then().args(["audit", "verify", &run]).run().success();
}

#[test]
fn abort_runs_the_on_abort_steps_and_cancels_the_run() {
    let health = HealthServer::start(Answer::Status("unhealthy"));
    let (out, run) = halted_failover(&health, "1ms");
    health.set(Answer::Status("healthy"));
    out.then().args(["resume", &run]).run().code(3);
    out.then().args(["resume", &run, "--abort", "--reason", "primary recovered", "--as", "carol"]).run().code(0);
    assert_eq!(ledger(&out), ["keep_primary cancelled", "clean_dr"], "on_abort ran in order; the switch never did");
    let s = process::status(&out.state_dir(), &run);
    assert_eq!(s["status"], "cancelled");
    assert!(s["error"].as_str().unwrap_or_default().contains("aborted by carol: primary recovered"), "{s:#}");
    assert_eq!(step(&s, "switch_dns")["status"], "cancelled");
    assert_eq!(step(&s, "gate")["status"], "cancelled");
    assert_eq!(step(&s, "clean_dr")["status"], "succeeded");
    let ev = events(&out, &run);
    assert!(ev.iter().any(|e| e["kind"] == "operator" && e["action"] == "abort" && e["by"] == "carol"), "{ev:#?}");
    // Over: neither resumed nor aborted again.
    out.then().args(["resume", &run]).run().code(2).stderr_contains("cancelled");
    out.then().args(["resume", &run, "--abort"]).run().code(2);
    assert_eq!(ledger(&out).len(), 2);
}

#[test]
fn abort_is_accepted_on_a_run_that_is_not_stale_and_without_on_abort_steps_just_cancels() {
    let rb = "version: 1\nname: plain\nsteps:\n  gate: { uses: approval, with: { message: go? } }\n  after: { needs: [gate], uses: exec, with: { script: \"echo after >> ledger\" } }\n";
    let out = Test::new().file("p.yaml", rb).args(["run", "p.yaml", "--no-wait"]).run().code(3);
    let run = process::latest_run(&out.state_dir());
    out.then().args(["resume", &run, "--abort"]).run().code(0);
    assert!(ledger(&out).is_empty());
    let s = process::status(&out.state_dir(), &run);
    assert_eq!(s["status"], "cancelled");
    assert_eq!(step(&s, "after")["status"], "cancelled");

    // An abort whose on_abort step fails was not carried out: exit 1, and it says which.
    let failing = format!("{rb}on_abort:\n  undo: {{ uses: exec, with: {{ script: \"exit 4\" }} }}\n");
    let out = Test::new().file("p.yaml", failing).args(["run", "p.yaml", "--no-wait"]).run().code(3);
    let run = process::latest_run(&out.state_dir());
    out.then().args(["resume", &run, "--abort"]).run().code(1);
    let s = process::status(&out.state_dir(), &run);
    assert_eq!(s["status"], "cancelled");
    assert_eq!(step(&s, "undo")["status"], "failed");
}

#[test]
fn a_stale_decision_the_signals_still_support_goes_on_without_asking() {
    let health = HealthServer::start(Answer::Status("unhealthy"));
    let (out, run) = halted_failover(&health, "1ms");
    out.then().args(["resume", &run]).run().success().stderr_contains("the signals were evaluated again");
    assert_eq!(count(&ledger(&out), "switch_dns"), 1);
    let ev = events(&out, &run);
    let re = reevaluations(&ev);
    assert_eq!(re.len(), 1);
    assert_eq!(re[0]["data"]["verdict"], "holds");
    assert_eq!(re[0]["data"]["now"]["level"], "dr_failover");
}

#[test]
fn a_fresh_decision_is_not_evaluated_again() {
    let health = HealthServer::start(Answer::Status("unhealthy"));
    let (out, run) = halted_failover(&health, "1h");
    health.set(Answer::Status("healthy"));
    out.then().args(["resume", &run]).run().success().stderr_lacks("evaluated again");
    assert_eq!(ledger(&out), ["switch_dns"]);
    assert!(reevaluations(&events(&out, &run)).is_empty());
}

/// `--confirm` where nothing is stale: the run goes on as it would have, and the operator is
/// told that nothing was confirmed (no `confirm-stale-decision` in its history).
#[test]
fn confirm_on_a_decision_that_is_not_stale_says_it_confirmed_nothing() {
    let health = HealthServer::start(Answer::Status("unhealthy"));
    let (out, run) = halted_failover(&health, "1h");
    out.then()
        .args(["resume", &run, "--confirm", "--reason", "sure"])
        .run()
        .success()
        .stderr_contains("--confirm had nothing to confirm")
        .stderr_contains("is not stale");
    assert_eq!(ledger(&out), ["switch_dns"]);
    let ev = events(&out, &run);
    assert!(!ev.iter().any(|e| e["kind"] == "operator" && e["action"] == "confirm-stale-decision"), "{ev:#?}");

    let health = HealthServer::start(Answer::Status("unhealthy"));
    let (out, run) = halted_failover(&health, "1ms");
    out.then().args(["resume", &run, "--confirm", "--reason", "sure"]).run().success().stderr_contains("still holds");
    assert_eq!(ledger(&out), ["switch_dns"]);
}

#[test]
fn an_observer_that_cannot_see_now_stops_a_stale_resume() {
    let health = HealthServer::start(Answer::Status("unhealthy"));
    let rb = runbook(&health, "1ms").replace(
        "levels:",
        "  vantage_check:\n    uses: exec\n    vantage: true\n    with: { script: \"test ! -e blind\" }\n    weight:\n      - { weight: 0 }\nlevels:",
    );
    let out = Test::new().file("f.yaml", rb).args(["run", "f.yaml", "--no-wait"]).run().code(3);
    let run = process::latest_run(&out.state_dir());
    out.then().args(["approve", &run, "gate", "--as", "alice"]).run().success();
    std::fs::write(out.path().join("blind"), "").unwrap();
    out.then().args(["resume", &run]).run().code(3).stderr_contains("the level now is `unknown`");
    assert!(ledger(&out).is_empty());
}

#[test]
fn decision_ttl_must_be_positive() {
    let health = HealthServer::start(Answer::Status("healthy"));
    let out = Test::new().file("f.yaml", runbook(&health, "0s")).args(["validate", "f.yaml"]).run().code(2);
    out.stderr_contains("decision_ttl").stderr_contains("f.yaml:3:");
}

/// As `dr-failover.yaml`: the decision is a child health run's, confirmed by an assert.
#[test]
fn a_decision_taken_by_a_child_health_run_is_evaluated_again_with_its_own_signals_and_params() {
    let health = HealthServer::start(Answer::Status("unhealthy"));
    let child = "version: 1\nname: child-health\nparams:\n  url: { type: string }\nsignals:\n  app:\n    uses: http\n    with: { url: \"{{ params.url }}\", timeout: 2s }\n    weight:\n      - { when: \"outputs.json.status == 'healthy'\", weight: 0 }\n      - { weight: 10 }\nlevels:\n  - { name: no_action, max: 3 }\n  - { name: dr_failover }\noutputs:\n  level: \"{{ score.level }}\"\n";
    let parent = format!(
        "version: 1\nname: parent-failover\ndecision_ttl: 1ms\nsteps:\n  health:\n    uses: runbook\n    with: {{ file: child.yaml, params: {{ url: \"{}\" }} }}\n  confirm:\n    needs: [health]\n    uses: assert\n    with: {{ that: \"steps.health.outputs.outputs.level == 'dr_failover'\" }}\n  gate:\n    needs: [confirm]\n    uses: approval\n    with: {{ message: go? }}\n  switch_dns:\n    needs: [gate]\n    uses: exec\n    with: {{ script: \"echo switch_dns >> ledger\" }}\n",
        health.url()
    );
    let out = Test::new().file("child.yaml", child).file("p.yaml", parent).args(["run", "p.yaml", "--no-wait"]).run().code(3);
    let run = process::run_of(&out.state_dir(), "parent-failover");
    out.then().args(["approve", &run, "gate", "--as", "alice"]).run().success();
    health.set(Answer::Status("healthy"));
    out.then()
        .args(["resume", &run])
        .run()
        .code(3)
        .stderr_contains("the decision (child run")
        .stderr_contains("the level now is `no_action`, lower than `dr_failover`");
    assert!(ledger(&out).is_empty(), "{:?}", ledger(&out));
    health.set(Answer::Status("unhealthy"));
    out.then().args(["resume", &run]).run().success();
    assert_eq!(ledger(&out), ["switch_dns"]);
}

/// Through `phoenix serve`'s API: a resume without `confirm` is refused (409, nothing runs);
/// with `{"confirm": true, "reason": …}` it goes on, recorded under the token's name.
#[test]
fn on_abort_is_validated_like_on_failure() {
    let ok = "version: 1\nname: v\nsteps:\n  a: { uses: exec, with: { script: \"true\" } }\non_abort:\n  undo: { uses: exec, with: { script: \"echo {{ steps.a.status }}\" } }\n";
    Test::new().file("v.yaml", ok).args(["validate", "--strict", "v.yaml"]).run().success();
    let needs_main = ok.replace("undo: { uses", "undo: { needs: [a], uses");
    Test::new()
        .file("v.yaml", needs_main)
        .args(["validate", "v.yaml"])
        .run()
        .code(2)
        .stderr_contains("`a` is a step of the main DAG; on_abort steps run after it ends");
    let main_reads_abort = ok.replace("script: \"true\"", "script: \"echo {{ steps.undo.status }}\"");
    Test::new().file("v.yaml", main_reads_abort).args(["validate", "v.yaml"]).run().code(2).stderr_contains("`undo` is an on_abort step");
    let duplicate = ok.replace("undo:", "a:");
    Test::new()
        .file("v.yaml", duplicate)
        .args(["validate", "v.yaml"])
        .run()
        .code(2)
        .stderr_contains("is already the id of an entry in `steps`");
    let unknown = ok.replace("uses: exec, with: { script: \"echo", "uses: exce, with: { script: \"echo");
    Test::new().file("v.yaml", unknown).args(["validate", "v.yaml"]).run().code(2).stderr_contains("exce");
    Test::new().file("v.yaml", ok).args(["graph", "v.yaml"]).run().success().stdout_contains("cluster_on_abort");
}

mod elsewhere;
