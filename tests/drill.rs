//! `phoenix drill`: the same runbook with its `drill.params` overlaid, marked as a drill,
//! with its own lock key; refused (exit 2, nothing written) when a mutating step would
//! change a target in `drill.protect` or one that production changes.

use crate::process;
use crate::support::Test;

/// A failover whose DNS switch and object copy wait behind an approval (so `--no-wait`
/// halts before they act), with the drill section `drill`.
fn failover(drill: &str) -> String {
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

const GOOD: &str =
    "drill:\n  params: { record: drill-app.example.com, container: drill-assets }\n  protect: [\"{{ params.record }}\", prod-assets]";

#[test]
fn a_drill_is_the_same_runbook_with_the_overlay_marked_as_a_drill() {
    let t = Test::new().file("f.yaml", failover(GOOD)).args(["drill", "f.yaml", "--param", "record=given.example.com", "--no-wait"]).run();
    let t = t
        .code(3)
        .stderr_contains("drill of `failover`")
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
