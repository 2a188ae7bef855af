//! Invariants around steps (`invariants:`), adversarially: DNS already pointing at both sites
//! (moto's Route 53) stops the switch before it starts and changes nothing until an operator
//! overrides with a reason; an invariant broken by the step fails it and runs `on_failure`; a
//! check that cannot read fails closed; a crash between a step's action and its after-check is
//! resumed without running the step again. Each keeps a ledger of what ran.

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use crate::aws_data::aws_test;
use crate::moto::Moto;
use crate::process::{self, Background, count, lines, step, wait_for};
use crate::support::{Output, Test};

const PRIMARY: &str = "192.0.2.10";
const DR: &str = "198.51.100.7";

/// A Route 53 `with` against moto.
fn r53(moto: &Moto, zone: &str, rest: &str) -> String {
    format!("{{ endpoint_url: \"{}\", zone_id: \"{zone}\", name: app.example.com, type: A, {rest} }}", moto.url())
}

/// What app.example.com holds now, read back from moto by a run of its own (its own state).
fn dns_now(moto: &Moto, zone: &str) -> Value {
    let yaml = format!("version: 1\nname: read-dns\nsteps:\n  read:\n    uses: route53.get\n    with: {}\n", r53(moto, zone, ""));
    let out = aws_test().file("read.yaml", yaml).args(["run", "read.yaml"]).run().success();
    let s = process::status(&out.state_dir(), &process::latest_run(&out.state_dir()));
    step(&s, "read")["outputs"]["values"].clone()
}

/// The run's events (`phoenix logs RUN --output json`).
fn events(out: &Output, run: &str) -> Vec<Value> {
    process::json(&out.state_dir(), &["logs", run])["events"].as_array().cloned().unwrap_or_default()
}

fn step_events<'a>(events: &'a [Value], id: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["kind"] == "step" && e["step"] == id).collect()
}

fn invariant_events<'a>(events: &'a [Value], name: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["kind"] == "invariant" && e["name"] == name).collect()
}

#[test]
fn dns_already_pointing_at_both_sites_stops_the_switch_before_it_starts_until_an_override_with_a_reason() {
    let moto = Moto::start();
    let zone = moto.route53_zone("example.com");
    // Split brain before anything runs: the record holds both sites.
    let seed = format!(
        "version: 1\nname: seed\nsteps:\n  both:\n    uses: route53.upsert\n    with: {}\n",
        r53(&moto, &zone, &format!("ttl: 60, values: [{PRIMARY}, {DR}]"))
    );
    aws_test().file("seed.yaml", seed).args(["run", "seed.yaml"]).run().success();
    assert_eq!(dns_now(&moto, &zone), json!([PRIMARY, DR]));

    let yaml = format!(
        r#"version: 1
name: failover
steps:
  prepare:
    uses: exec
    with: {{ script: "echo prepare >> ledger" }}
  switch_dns:
    uses: route53.upsert
    needs: [prepare]
    with: {switch}
  announce:
    uses: exec
    needs: [switch_dns]
    with: {{ script: "echo announce >> ledger" }}
invariants:
  one_active_region:
    description: exactly one region serves app.example.com
    check: {{ uses: route53.get, with: {read} }}
    that: "outputs.values | length == 1"
    around: [switch_dns]
"#,
        switch = r53(&moto, &zone, &format!("ttl: 60, values: [{DR}]")),
        read = r53(&moto, &zone, ""),
    );
    let out = aws_test().file("dr.yaml", yaml).args(["run", "dr.yaml"]).run().code(3);
    assert!(
        out.stderr()
            .contains("invariant `one_active_region` (exactly one region serves app.example.com) does not hold before `switch_dns`"),
        "{}",
        out.stderr()
    );
    assert!(out.stderr().contains(DR) && out.stderr().contains(PRIMARY), "the halt shows what the check saw:\n{}", out.stderr());
    let run = process::latest_run(&out.state_dir());

    // Nothing changed: the record is as it was, the switch never started, nothing after it ran.
    assert_eq!(dns_now(&moto, &zone), json!([PRIMARY, DR]));
    let s = process::status(&out.state_dir(), &run);
    assert_eq!(s["status"], "halted", "{s:#}");
    assert!(s["error"].as_str().is_some_and(|e| e.contains("one_active_region") && e.contains("--override one_active_region")), "{s:#}");
    assert_eq!((step(&s, "switch_dns")["status"].clone(), step(&s, "switch_dns")["attempts"].clone()), (json!("pending"), json!(0)));
    let ev = events(&out, &run);
    assert!(step_events(&ev, "switch_dns").is_empty(), "the switch has no step event at all: {ev:#?}");
    let checks = invariant_events(&ev, "one_active_region");
    assert_eq!(checks.len(), 1, "{ev:#?}");
    assert_eq!((checks[0]["when"].clone(), checks[0]["held"].clone()), (json!("before"), json!(false)));
    assert_eq!(lines(&out.path().join("ledger")), ["prepare"]);

    // A plain resume checks again, and halts again: nothing acts on a split brain unasked.
    let again = out.then().args(["resume", &run]).run().code(3);
    assert!(again.stderr().contains("one_active_region"), "{}", again.stderr());
    assert_eq!(dns_now(&moto, &zone), json!([PRIMARY, DR]));
    // An override needs a reason, and names an invariant that exists.
    out.then().args(["resume", &run, "--override", "one_active_region"]).run().code(2).stderr_contains("--reason");
    out.then()
        .args(["resume", &run, "--override", "one_active_regon", "--reason", "x"])
        .run()
        .code(2)
        .stderr_contains("did you mean `one_active_region`?");
    assert_eq!(process::status(&out.state_dir(), &run)["status"], "halted");

    // The operator knows the primary's value is stale: the override goes on, and is recorded.
    let reason = "primary VIP is dead since 03:10; its value is stale";
    out.then().args(["resume", &run, "--override", "one_active_region", "--reason", reason, "--as", "alice"]).run().success();
    assert_eq!(dns_now(&moto, &zone), json!([DR]));
    assert_eq!(lines(&out.path().join("ledger")), ["prepare", "announce"]);
    let ev = events(&out, &run);
    let running = step_events(&ev, "switch_dns").into_iter().filter(|e| e["status"] == "running").count();
    assert_eq!(running, 1, "the switch ran once: {ev:#?}");
    let over = ev.iter().find(|e| e["kind"] == "operator" && e["action"] == "override").expect("an override event");
    assert_eq!(over["by"], "alice");
    assert!(over["detail"].as_str().is_some_and(|d| d.contains("one_active_region") && d.contains(reason)), "{over:#}");
    let checks = invariant_events(&ev, "one_active_region");
    let before = checks.iter().rev().find(|e| e["when"] == "before").unwrap();
    assert_eq!((before["held"].clone(), before["overridden"].clone()), (json!(false), json!(true)), "{before:#}");
    // After the switch, DNS points at one site: the after-check holds on its own.
    let after = checks.iter().find(|e| e["when"] == "after").unwrap();
    assert_eq!(after["held"], true, "{after:#}");

    // The override and every check are in the audit chain, which is whole.
    let export = out.then().args(["audit", "export", &run]).run().success();
    assert!(export.stdout().contains(reason) && export.stdout().contains("\"kind\":\"invariant\""), "{}", export.stdout());
    out.then().args(["audit", "verify", &run]).run().success().stdout_contains("the chain is whole");
    let report = out.then().args(["report", &run]).run().success();
    assert!(report.stdout().contains("invariant `one_active_region` checked before it: did NOT hold (overridden"), "{}", report.stdout());
}

/// A runbook whose `switch` step runs `script`, guarded by `one_site` (the file `sites` holds
/// a JSON list with one site), with an on_failure step that writes the ledger.
fn exec_guarded(script: &str, check_extra: &str) -> String {
    format!(
        r#"version: 1
name: guarded
steps:
  switch:
    uses: exec
    effect: idempotent
    with: {{ script: "{script}" }}
  announce:
    uses: exec
    needs: [switch]
    with: {{ script: "echo announce >> ledger" }}
on_failure:
  clean_up:
    uses: exec
    with: {{ script: "echo clean_up >> ledger" }}
invariants:
  one_site:
    description: one site serves
    check:
      uses: exec
      effect: read
      with:
        script: |
          {check_extra}
          cat sites
        parse: json
    that: "outputs.json | length == 1"
    around: [switch]
"#
    )
}

#[test]
fn an_invariant_the_step_breaks_fails_it_keeps_its_outputs_and_runs_on_failure() {
    let yaml = exec_guarded(r#"echo switch >> ledger; echo '[\"a\", \"b\"]' > sites; echo moved"#, "");
    // The operator watching sees each check as it is made.
    let out = Test::new()
        .file("g.yaml", yaml)
        .file("sites", r#"["a"]"#)
        .args(["run", "g.yaml"])
        .run()
        .code(1)
        .stderr_contains("invariant `one_site` holds before `switch`")
        .stderr_contains("invariant `one_site` does NOT hold after `switch`");
    let run = process::latest_run(&out.state_dir());
    let s = process::status(&out.state_dir(), &run);
    let sw = step(&s, "switch");
    assert_eq!(sw["status"], "failed", "{s:#}");
    let error = sw["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("invariant `one_site` (one site serves) does not hold after `switch`") && error.contains("\\\"b\\\""),
        "{error}"
    );
    assert_eq!(sw["outputs"]["stdout"], "moved\n", "its outputs are kept: {sw:#}");
    assert_eq!(step(&s, "announce")["status"], "upstream_failed");
    assert_eq!(lines(&out.path().join("ledger")), ["switch", "clean_up"]);
    let ev = events(&out, &run);
    let checks: Vec<(Value, Value)> = invariant_events(&ev, "one_site").iter().map(|e| (e["when"].clone(), e["held"].clone())).collect();
    assert_eq!(checks, [(json!("before"), json!(true)), (json!("after"), json!(false))]);
    // No retry of a step whose invariant broke: it ran once.
    assert_eq!(sw["attempts"], 1);
}

#[test]
fn a_check_that_cannot_read_fails_closed() {
    let port = crate::postgres::free_port();
    let yaml = format!(
        r#"version: 1
name: blind
steps:
  switch_dns:
    uses: exec
    with: {{ script: "echo switch >> ledger" }}
invariants:
  one_active_region:
    check: {{ uses: route53.get, timeout: 20s, with: {{ endpoint_url: "http://127.0.0.1:{port}", zone_id: Z1, name: app.example.com, type: A, timeout: 2s }} }}
    that: "outputs.values | length == 1"
    around: [switch_dns]
"#
    );
    let out = aws_test().file("b.yaml", yaml).args(["run", "b.yaml"]).run().code(3);
    assert!(out.stderr().contains("could not read the world, so it counts as failing"), "{}", out.stderr());
    assert!(!out.path().join("ledger").exists(), "the switch never ran");
}

#[test]
fn a_crash_between_the_action_and_its_after_check_is_resumed_without_running_the_step_again() {
    // The after-check (the only check that finds a ledger) says it is checking, then waits for
    // `go`: the test kills phoenix while it waits.
    let wait = "if [ -e ledger ]; then touch checking; for i in $(seq 1 600); do [ -e go ] && break; sleep 0.05; done; fi";
    let yaml = exec_guarded("echo switch >> ledger", wait);
    let t = Test::new().file("g.yaml", yaml).file("sites", r#"["a"]"#);
    let dir = t.path().to_path_buf();
    let state = t.state_dir();
    // `t` lives to the end: its directory goes with it.
    let t = t.args(["run", "g.yaml"]);
    let bg = Background::spawn(t.command(), &dir);
    wait_for("the after-check to start", Duration::from_secs(60), || dir.join("checking").exists());
    process::crash_tree(bg.pid());
    drop(bg);
    assert_eq!(lines(&dir.join("ledger")), ["switch"]);
    let run = process::latest_run(&state);
    let s = process::status(&state, &run);
    let sw = step(&s, "switch");
    assert_eq!((sw["status"].clone(), sw["acted"].clone()), (json!("running"), json!(true)), "{s:#}");
    let text = Test::new().args(["--state", &state.display().to_string(), "status", &run]).run().success();
    assert!(text.stdout().contains("its action succeeded; its invariants' after-checks are not all in"), "{}", text.stdout());

    std::fs::write(dir.join("go"), "").unwrap();
    let resumed = resume(&dir, &state, &run);
    assert_eq!(resumed.code, Some(0), "{}", resumed.stderr);
    let ledger = lines(&dir.join("ledger"));
    assert_eq!(count(&ledger, "switch"), 1, "the switch ran once: {ledger:?}");
    assert_eq!(ledger, ["switch", "announce"]);
    let s = process::status(&state, &run);
    assert_eq!(step(&s, "switch")["status"], "succeeded");
    assert!(step(&s, "switch")["acted"].is_null(), "{s:#}");
}

fn resume(dir: &Path, state: &Path, run: &str) -> process::Ended {
    let state = state.display().to_string();
    Background::start(dir, &["--state", &state, "resume", run]).wait(Duration::from_secs(120))
}

#[test]
fn a_for_each_step_is_checked_after_its_last_item() {
    let yaml = r#"version: 1
name: fan
steps:
  switch:
    uses: exec
    for_each: [a, b]
    with: { script: "echo {{ item }} >> ledger; echo '[\"a\", \"b\"]' > sites" }
  announce:
    uses: exec
    needs: [switch]
    with: { script: "echo announce >> ledger" }
invariants:
  one_site:
    check: { uses: exec, effect: read, with: { script: "cat sites", parse: json } }
    that: "outputs.json | length == 1"
    around: [switch]
"#;
    let out = Test::new().file("f.yaml", yaml).file("sites", r#"["a"]"#).args(["run", "f.yaml"]).run().code(1);
    let run = process::latest_run(&out.state_dir());
    let s = process::status(&out.state_dir(), &run);
    assert_eq!(step(&s, "switch")["status"], "failed", "{s:#}");
    assert!(step(&s, "switch")["error"].as_str().is_some_and(|e| e.contains("does not hold after `switch`")), "{s:#}");
    let mut ledger = lines(&out.path().join("ledger"));
    ledger.sort();
    assert_eq!(ledger, ["a", "b"], "both items ran, and nothing after the switch");
}

#[test]
fn a_guarded_step_counted_done_with_skip_after_a_crash_is_checked_after_first() {
    // The switch is not idempotent and is killed mid-way: resume asks; `--skip` counts it as
    // done only if its invariant holds after it, and here the switch broke it.
    let yaml = exec_guarded(
        r#"echo switch >> ledger; echo '[\"a\", \"b\"]' > sites; touch acting; for i in $(seq 1 600); do sleep 0.05; done"#,
        "",
    )
    .replace("effect: idempotent", "effect: mutating");
    let t = Test::new().file("g.yaml", yaml).file("sites", r#"["a"]"#);
    let dir = t.path().to_path_buf();
    let state = t.state_dir();
    let t = t.args(["run", "g.yaml"]);
    let bg = Background::spawn(t.command(), &dir);
    wait_for("the switch to act", Duration::from_secs(60), || dir.join("acting").exists());
    process::crash_tree(bg.pid());
    drop(bg);
    let run = process::latest_run(&state);
    let asked = resume(&dir, &state, &run);
    assert_eq!(asked.code, Some(3), "resume asks about the switch: {}", asked.stderr);

    let state_arg = state.display().to_string();
    let skipped = Background::start(&dir, &["--state", &state_arg, "resume", &run, "--skip", "switch"]).wait(Duration::from_secs(120));
    assert_eq!(skipped.code, Some(1), "{}", skipped.stderr);
    let s = process::status(&state, &run);
    let sw = step(&s, "switch");
    assert_eq!(sw["status"], "failed", "{s:#}");
    assert!(sw["error"].as_str().is_some_and(|e| e.contains("does not hold after `switch`")), "{s:#}");
    assert_eq!(step(&s, "announce")["status"], "upstream_failed");
    assert_eq!(lines(&dir.join("ledger")), ["switch", "clean_up"]);
}

/// Through serve's API, an invariant that keeps a step from starting is overridden as from
/// the command line: with a reason (without one, 400 and nothing runs), recorded with who.
#[test]
fn the_api_overrides_an_invariant_with_a_reason() {
    use crate::serve_support::{ONCALL, Server, TOKENS};
    let t = Test::new()
        .file("runbooks/guarded.yaml", exec_guarded("echo switch >> ledger", ""))
        .file("sites", r#"["a", "b"]"#)
        .file("serve.yaml", TOKENS);
    let server = Server::start(t.path());
    let (status, v) = server.call("POST", "/api/v1/runs", Some(ONCALL), Some(r#"{"runbook": "guarded"}"#));
    assert_eq!(status, 202, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    server.wait_status(&id, "halted");
    let resume = format!("/api/v1/runs/{id}/resume");
    for body in [
        r#"{"overrides": [{"invariant": "one_site"}]}"#,
        r#"{"overrides": "one_site"}"#,
        r#"{"overrides": [{"invariant": "two_sites", "reason": "r"}]}"#,
    ] {
        let (status, v) = server.call("POST", &resume, Some(ONCALL), Some(body));
        assert_eq!(status, 400, "{body}: {v}");
    }
    assert!(!t.path().join("ledger").exists(), "nothing ran");
    let body = r#"{"overrides": [{"invariant": "one_site", "reason": "b is draining, checked by hand"}]}"#;
    let (status, v) = server.call("POST", &resume, Some(ONCALL), Some(body));
    assert_eq!(status, 202, "{v}");
    server.wait_status(&id, "succeeded");
    assert_eq!(process::lines(&t.path().join("ledger")), ["switch", "announce"]);
    let ev = server.get(&format!("/api/v1/runs/{id}/logs"))["events"].as_array().cloned().unwrap_or_default();
    assert!(
        ev.iter()
            .any(|e| e["kind"] == "operator" && e["by"] == "oncall" && e["detail"].as_str().unwrap_or_default().contains("b is draining")),
        "{ev:#?}"
    );
}
