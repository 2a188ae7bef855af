//! A drill's child runs (`uses: runbook` in a drill) are drills: marked so, under the lock key
//! `drill:KEY` (never blocking nor blocked by a production run of the child runbook), with
//! the child's own overlay filling what the parent's `with` does not give, and its teardown.
//! A child that would touch a protected or production target is refused at the step, every
//! collision named, before it starts.

use crate::process;
use crate::support::Test;

/// A child runbook whose steps wait at an approval when `gate` (so `--no-wait` halts it,
/// holding its lock), and whose teardown leaves `torn-down-TARGET`.
fn child(gate: bool) -> String {
    let gate = if gate { "  gate: { uses: approval, with: { message: go? } }\n" } else { "" };
    let needs = if gate.is_empty() { "" } else { ", needs: [gate]" };
    format!(
        r#"version: 1
name: child
params:
  target: {{ default: prod }}
  from_parent: {{ default: none }}
lock: child-lock
drill:
  params: {{ target: drill }}
  teardown:
    undo: {{ uses: exec, with: {{ script: "touch torn-down-{{{{ params.target }}}}" }}, effect: idempotent }}
steps:
{gate}  act: {{ uses: exec, with: {{ script: "echo {{{{ params.target }}}} {{{{ params.from_parent }}}} >> acted" }}, effect: idempotent{needs} }}
"#
    )
}

const PARENT: &str = r#"version: 1
name: parent
params:
  note: { default: production }
drill:
  params: { note: rehearsal }
steps:
  sub: { uses: runbook, with: { file: child.yaml, params: { from_parent: "{{ params.note }}" } } }
"#;

/// The newest run of `runbook` (`latest_run` would be the parent's child, started after it).
fn run_of(state: &std::path::Path, runbook: &str) -> String {
    let runs = process::json(state, &["runs"]);
    let run = runs["runs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["runbook"] == runbook)
        .unwrap_or_else(|| panic!("a run of {runbook}: {runs:#}"))
        .clone();
    run["id"].as_str().unwrap().to_string()
}

fn child_of(t: &crate::support::Output, parent: &str) -> serde_json::Value {
    let status = process::status(&t.state_dir(), parent);
    let sub = status["steps"].as_array().unwrap().iter().find(|s| s["id"] == "sub").expect("the sub step").clone();
    let id = sub["child_run"].as_str().unwrap_or_else(|| panic!("a child run: {status:#}")).to_string();
    process::status(&t.state_dir(), &id)
}

#[test]
fn a_drills_child_is_a_drill_with_the_parents_params_its_own_overlay_and_teardown() {
    let t = Test::new().file("child.yaml", child(false)).file("parent.yaml", PARENT).args(["drill", "parent.yaml"]).run().success();
    let parent = run_of(&t.state_dir(), "parent");
    let c = child_of(&t, &parent);
    assert_eq!(c["drill"], true, "{c:#}");
    assert_eq!(c["lock"], "drill:child-lock", "{c:#}");
    assert_eq!(c["params"]["target"], "drill", "the child's overlay fills what the parent does not give");
    assert_eq!(c["params"]["from_parent"], "rehearsal", "the parent's `with` wins");
    assert_eq!(c["teardown"], "succeeded", "{c:#}");
    assert!(t.path().join("torn-down-drill").exists(), "the child's teardown ran");
    assert_eq!(process::lines(&t.path().join("acted")), ["drill rehearsal"]);
    let drills = t.then().args(["drills", "--output", "json"]).run().success().stdout_json();
    let ids: Vec<&str> = drills["drills"].as_array().unwrap().iter().filter_map(|d| d["id"].as_str()).collect();
    assert!(ids.contains(&c["id"].as_str().unwrap()) && ids.contains(&parent.as_str()), "both are listed as drills: {drills:#}");
}

#[test]
fn a_drills_child_and_a_production_run_of_its_runbook_never_block_each_other() {
    // Production first, halted at its gate with the lock `child-lock`: the drill's child
    // still starts (and halts at its own gate, holding `drill:child-lock`).
    let t = Test::new().file("child.yaml", child(true)).file("parent.yaml", PARENT);
    let prod = t.args(["run", "child.yaml", "--no-wait"]).run().code(3);
    let drill = prod.then().args(["drill", "parent.yaml", "--no-wait"]).run().code(3);
    let parent = run_of(&drill.state_dir(), "parent");
    let c = child_of(&drill, &parent);
    assert_eq!(
        (c["status"].as_str(), c["lock"].as_str(), c["drill"].as_bool()),
        (Some("halted"), Some("drill:child-lock"), Some(true)),
        "{c:#}"
    );

    // The drill first: a production run of the child runbook then starts all the same.
    let t = Test::new().file("child.yaml", child(true)).file("parent.yaml", PARENT);
    let drill = t.args(["drill", "parent.yaml", "--no-wait"]).run().code(3);
    let parent = run_of(&drill.state_dir(), "parent");
    assert_eq!(child_of(&drill, &parent)["lock"], "drill:child-lock");
    let prod = drill.then().args(["run", "child.yaml", "--no-wait"]).run().code(3);
    let id = process::latest_run(&prod.state_dir());
    assert_eq!(process::status(&prod.state_dir(), &id)["lock"], "child-lock");
    // And a second drill is held off by the first one's child, as drills are by each other.
    drill.then().args(["drill", "parent.yaml", "--no-wait"]).run().code(1).stderr_contains("drill:child-lock");
}

/// A child that switches DNS and copies objects to what its params name, protecting the
/// production record.
const DNS_CHILD: &str = r#"version: 1
name: dns_child
params:
  record: { default: app.example.com }
  container: { default: prod-assets }
drill:
  params: { record: drill-app.example.com, container: drill-assets }
  protect: [ app.example.com ]
steps:
  gate: { uses: approval, with: { message: go? } }
  switch_dns: { uses: route53.upsert, needs: [gate], with: { zone_id: Z1, name: "{{ params.record }}", type: A, ttl: 60, values: [10.0.0.1] } }
  copy: { uses: storage.sync, needs: [gate], with: { from: "s3://prod-objects", to: "azblob://{{ params.container }}" } }
"#;

fn dns_parent(with: &str) -> String {
    format!(
        "version: 1\nname: dns_parent\nparams:\n  record: {{ default: app.example.com }}\n  container: {{ default: prod-assets }}\ndrill:\n  params: {{ record: drill-app.example.com, container: drill-assets }}\nsteps:\n  before: {{ uses: exec, with: {{ script: \"touch before\" }}, effect: idempotent }}\n  sub: {{ uses: runbook, needs: [before], with: {{ file: child.yaml, params: {with} }} }}\n"
    )
}

#[test]
fn a_drills_child_that_would_touch_production_is_refused_at_the_step_and_never_starts() {
    // The parent hands the child production's record and container whatever its params say.
    let parent = dns_parent("{ record: app.example.com, container: prod-assets }");
    let t = Test::new().file("child.yaml", DNS_CHILD).file("parent.yaml", parent).args(["drill", "parent.yaml"]).run().code(1);
    let id = run_of(&t.state_dir(), "dns_parent");
    let status = process::status(&t.state_dir(), &id);
    let sub = status["steps"].as_array().unwrap().iter().find(|s| s["id"] == "sub").unwrap().clone();
    let error = sub["error"].as_str().unwrap_or_default();
    assert_eq!(sub["status"], "failed", "{status:#}");
    for want in ["the drill of `dns_child` is refused", "switch_dns", "app.example.com", "copy", "prod-assets"] {
        assert!(error.contains(want), "`{want}` in: {error}");
    }
    assert!(sub["child_run"].is_null(), "the child never started: {sub:#}");
    let runs = t.then().args(["runs", "--output", "json"]).run().success().stdout_json();
    assert_eq!(runs["runs"].as_array().unwrap().len(), 1, "only the parent ran: {runs:#}");

    // Handing down its own (overlaid) params, the same child is checked clean: it starts
    // (and halts at its gate, before anything reaches AWS).
    let parent = dns_parent("{ record: \"{{ params.record }}\", container: \"{{ params.container }}\" }");
    let t = Test::new().file("child.yaml", DNS_CHILD).file("parent.yaml", parent).args(["drill", "parent.yaml", "--no-wait"]).run().code(3);
    let id = run_of(&t.state_dir(), "dns_parent");
    let status = process::status(&t.state_dir(), &id);
    let sub = status["steps"].as_array().unwrap().iter().find(|s| s["id"] == "sub").unwrap().clone();
    assert!(sub["child_run"].is_string(), "the child started: {sub:#}");
    assert!(!sub["error"].as_str().unwrap_or_default().contains("refused"), "{sub:#}");
}
