//! `phoenix plugins [NAME]`: the table of actions, and one action's inputs and outputs.

use crate::support::Test;

#[test]
fn lists_every_action() {
    let out = Test::new().arg("plugins").run().success();
    let listed: Vec<&str> = out.stdout().lines().take_while(|l| !l.is_empty()).filter_map(|l| l.split_whitespace().next()).collect();
    let registry: Vec<&str> = phoenix_plugins::names().collect();
    assert_eq!(listed, registry, "`phoenix plugins` must list the registry, in order");
    out.stdout_contains("`phoenix plugins NAME` documents one action's inputs and outputs.");
}

#[test]
fn lists_every_action_as_json() {
    let json = Test::new().args(["plugins", "--output", "json"]).run().success().stdout_json();
    let all = json.as_array().expect("a list of actions");
    let names: Vec<&str> = all.iter().map(|a| a["name"].as_str().expect("a name")).collect();
    assert_eq!(names, phoenix_plugins::names().collect::<Vec<_>>());
    for a in all {
        assert_eq!(a["inputs"]["type"], "object", "{}: `with` is a mapping", a["name"]);
        assert!(a["summary"].as_str().is_some_and(|s| !s.is_empty()), "{}: needs a summary", a["name"]);
        assert!(a["outputs"].is_array(), "{}: outputs are listed", a["name"]);
    }
}

#[test]
fn documents_exec() {
    Test::new()
        .args(["plugins", "exec"])
        .run()
        .success()
        .stdout_contains("exec — Runs a program")
        .stdout_contains("Inputs (`with`):")
        .stdout_contains("  cmd ")
        .stdout_contains("  script ")
        .stdout_contains("Outputs:")
        .stdout_contains("  exit_code ")
        .stdout_contains("  stdout ")
        .stdout_contains("Capabilities: probe=true")
        .stdout_contains("Example:");
}

#[test]
fn marks_required_inputs() {
    Test::new().args(["plugins", "sleep"]).run().success().stdout_contains("  duration         (required) How long to wait");
}

#[test]
fn documents_every_action() {
    for name in phoenix_plugins::names() {
        Test::new()
            .args(["plugins", name])
            .run()
            .success()
            .stdout_contains(&format!("{name} — "))
            .stdout_contains("Inputs (`with`):")
            .stdout_contains("Outputs:")
            .stdout_contains("Example:");
        let json = Test::new().args(["plugins", name, "--output", "json"]).run().success().stdout_json();
        assert_eq!(json["name"], name);
    }
}

#[test]
fn an_unknown_action_suggests_the_closest() {
    Test::new()
        .args(["plugins", "exce"])
        .run()
        .code(2)
        .stdout_empty()
        .stderr_contains("`exce` is not a known action; did you mean `exec`?");
}

#[test]
fn an_unknown_action_lists_them_all() {
    Test::new()
        .args(["plugins", "nope"])
        .run()
        .code(2)
        .stdout_empty()
        .stderr_contains("error: `nope` is not a known action; expected one of `noop`, `sleep`");
}
