//! The stale-decision guard where the resume does not come from a terminal's own process:
//! serve's API, a crash, a cluster takeover, a resume handed to the server.

use super::*;

#[test]
fn the_api_refuses_a_stale_resume_until_the_caller_confirms_it() {
    use crate::serve_support::{ONCALL, Server, TOKENS};
    let health = HealthServer::start(Answer::Status("unhealthy"));
    let t = Test::new().file("runbooks/stale-failover.yaml", runbook(&health, "1ms")).file("serve.yaml", TOKENS);
    let mut server = Server::start(t.path());
    let (status, v) = server.call("POST", "/api/v1/runs", Some(ONCALL), Some(r#"{"runbook": "stale-failover"}"#));
    assert_eq!(status, 202, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    server.wait_step(&id, "gate", "waiting");
    server.stop();
    let server = Server::start(t.path());
    let (status, v) = server.call("POST", &format!("/api/v1/runs/{id}/steps/gate/approve"), Some(ONCALL), Some("{}"));
    assert_eq!(status, 200, "{v}");
    health.set(Answer::Status("healthy"));
    let (status, v) = server.call("POST", &format!("/api/v1/runs/{id}/resume"), Some(ONCALL), Some("{}"));
    assert_eq!(status, 409, "{v}");
    assert!(v["error"].as_str().unwrap_or_default().contains("lower than `dr_failover`"), "{v}");
    assert_eq!(server.run(&id)["status"], "halted");
    assert!(lines(&t.path().join("ledger")).is_empty());
    let (status, v) = server.call("POST", &format!("/api/v1/runs/{id}/resume"), Some(ONCALL), Some(r#"{"confirm": true}"#));
    assert_eq!(status, 400, "a confirm says why: {v}");
    let body = r#"{"confirm": true, "reason": "failing over regardless"}"#;
    let (status, v) = server.call("POST", &format!("/api/v1/runs/{id}/resume"), Some(ONCALL), Some(body));
    assert_eq!(status, 202, "{v}");
    server.wait_status(&id, "succeeded");
    assert_eq!(lines(&t.path().join("ledger")), ["switch_dns"]);
    let ev = server.get(&format!("/api/v1/runs/{id}/logs"))["events"].as_array().cloned().unwrap_or_default();
    assert!(ev.iter().any(|e| e["action"] == "confirm-stale-decision" && e["by"] == "oncall"), "{ev:#?}");
}

/// A crash mid-failover, resumed once health has recovered: the run found `running` is
/// halted (nothing drives it), its leftover processes stopped, nothing more runs; `--abort`
/// then records the step in flight as uncertain and runs on_abort.
#[test]
fn a_crashed_failover_resumed_stale_is_halted_and_can_be_aborted() {
    let health = HealthServer::start(Answer::Status("unhealthy"));
    let rb = runbook(&health, "1ms").replace(
        "  switch_dns:\n    needs: [gate]",
        "  replicate:\n    needs: [score]\n    when: \"score.level == 'dr_failover'\"\n    effect: idempotent\n    uses: exec\n    with: { script: \"echo replicate >> ledger; if [ ! -e once ]; then touch once; sleep 1000; fi\" }\n  switch_dns:\n    needs: [gate, replicate]",
    );
    let setup = Test::new().file("f.yaml", rb).args(["validate", "f.yaml"]).run().success();
    let bg = Background::spawn(setup.then().args(["run", "f.yaml", "--no-wait"]).command(), setup.path());
    process::wait_for("replicate to start", Duration::from_secs(30), || setup.path().join("once").exists());
    process::crash_tree(bg.pid());
    drop(bg);
    let run = process::latest_run(&setup.state_dir());
    assert_eq!(process::status(&setup.state_dir(), &run)["status"], "running");
    setup.then().args(["approve", &run, "gate", "--as", "alice"]).run();
    health.set(Answer::Status("healthy"));
    setup.then().args(["resume", &run]).run().code(3).stderr_contains("lower than `dr_failover`");
    let s = process::status(&setup.state_dir(), &run);
    assert_eq!(s["status"], "halted", "nothing drives it: it says so: {s:#}");
    assert_eq!(count(&ledger(&setup), "replicate"), 1, "replicate did not run again");
    assert_eq!(count(&ledger(&setup), "switch_dns"), 0);
    setup.then().args(["resume", &run, "--abort", "--reason", "recovered"]).run().code(0);
    let s = process::status(&setup.state_dir(), &run);
    assert_eq!(s["status"], "cancelled");
    assert!(step(&s, "replicate")["error"].as_str().unwrap_or_default().contains("effect is uncertain"), "{s:#}");
    assert_eq!(ledger(&setup), ["replicate", "keep_primary cancelled", "clean_dr"]);
}

/// An abort crashed half-way goes on at the next plain resume: its on_abort steps (an
/// idempotent one in flight runs again), never the main DAG.
#[test]
fn an_abort_interrupted_by_a_crash_goes_on_at_the_next_resume_and_never_runs_the_main_steps() {
    let rb = "version: 1\nname: aborting\nsteps:\n  gate: { uses: approval, with: { message: go? } }\n  switch_dns: { needs: [gate], uses: exec, with: { script: \"echo switch_dns >> ledger\" } }\non_abort:\n  clean:\n    effect: idempotent\n    uses: exec\n    with: { script: \"echo clean >> ledger; if [ ! -e once ]; then touch once; sleep 1000; fi\" }\n  after:\n    needs: [clean]\n    uses: exec\n    with: { script: \"echo after >> ledger\" }\n";
    let setup = Test::new().file("a.yaml", rb).args(["run", "a.yaml", "--no-wait"]).run().code(3);
    let run = process::latest_run(&setup.state_dir());
    setup.then().args(["approve", &run, "gate", "--as", "alice"]).run().success();
    let bg = Background::spawn(setup.then().args(["resume", &run, "--abort", "--reason", "not needed"]).command(), setup.path());
    process::wait_for("clean to start", Duration::from_secs(30), || setup.path().join("once").exists());
    process::crash_tree(bg.pid());
    drop(bg);
    setup.then().args(["resume", &run]).run().code(1);
    let s = process::status(&setup.state_dir(), &run);
    assert_eq!(s["status"], "cancelled", "{s:#}");
    assert!(s["error"].as_str().unwrap_or_default().contains("not needed"), "the abort's reason is kept: {s:#}");
    assert_eq!(ledger(&setup), ["clean", "clean", "after"], "the main steps never ran; clean ran again");
}

/// A cluster's new leader taking over a failover whose decision is stale (the old leader
/// was killed mid-way, production recovered meanwhile) halts it with the reason instead of
/// going on; nothing of the failover runs under the new leader.
#[test]
fn a_takeover_of_a_stale_failover_halts_it_for_an_operator() {
    use crate::cluster_support::{Cluster, touch};
    let health = HealthServer::start(Answer::Status("unhealthy"));
    let rb = format!(
        "version: 1\nname: stale-chain\ndecision_ttl: 1ms\nsignals:\n  app:\n    uses: http\n    with: {{ url: \"{}\", timeout: 2s }}\n    weight:\n      - {{ when: \"outputs.json.status == 'healthy'\", weight: 0 }}\n      - {{ weight: 10 }}\nlevels:\n  - {{ name: no_action, max: 3 }}\n  - {{ name: dr_failover }}\n{}",
        health.url(),
        crate::cluster::CHAIN
            .split_once("steps:\n")
            .map(|(_, steps)| format!("steps:\n{steps}"))
            .unwrap()
            .replace("  a:\n    uses: exec", "  a:\n    needs: [score]\n    when: \"score.level == 'dr_failover'\"\n    uses: exec")
    );
    let mut c = Cluster::start(2, &[("stale-chain.yaml", &rb)]);
    let (old, id) = c.run_to_b("stale-chain");
    health.set(Answer::Status("healthy"));
    c.kill(old);
    let run = c.wait_status(&id, "halted");
    let new = c.leader();
    assert!(run["error"].as_str().unwrap_or("").contains("lower than `dr_failover`"), "says why: {run}");
    touch(&c.go());
    assert_eq!(c.count(&format!("b-start {id}")), 1, "b was not run again: {:?}", c.ledger());
    assert_eq!(c.count(&format!("c {id}")), 0, "{:?}", c.ledger());
    let logs = c.node(new).get(&format!("/api/v1/runs/{id}/logs")).to_string();
    assert!(logs.contains(&format!("taken over by n{new} from n{old}")) && logs.contains("decision_reevaluated"), "{logs}");
}

/// `phoenix resume --abort` handed to `phoenix serve`: the server runs on_abort and cancels.
#[test]
fn abort_handed_to_the_server_runs_on_abort_there() {
    use crate::serve_support::{Server, TOKENS};
    let health = HealthServer::start(Answer::Status("unhealthy"));
    let t = Test::new().file("runbooks/stale-failover.yaml", runbook(&health, "1ms")).file("serve.yaml", TOKENS);
    let mut server = Server::start(t.path());
    let (_, v) = server.call("POST", "/api/v1/runs", Some(crate::serve_support::ONCALL), Some(r#"{"runbook": "stale-failover"}"#));
    let id = v["id"].as_str().unwrap().to_string();
    server.wait_step(&id, "gate", "waiting");
    server.stop();
    let server = Server::start(t.path());
    health.set(Answer::Status("healthy"));
    let out = std::process::Command::new(crate::process::phoenix_bin())
        .arg("--state")
        .arg(&server.state)
        .args(["resume", &id, "--abort", "--reason", "recovered", "--as", "dana"])
        .current_dir(t.path())
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "a cancelled run: {text}");
    let run = server.wait_status(&id, "cancelled");
    assert!(run["error"].as_str().unwrap_or_default().contains("aborted by dana: recovered"), "{run:#}\n{text}");
    assert_eq!(lines(&t.path().join("ledger")), ["keep_primary cancelled", "clean_dr"], "{text}");
}
