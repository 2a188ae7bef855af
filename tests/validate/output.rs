//! What `phoenix validate` prints and returns: the line with a caret, JSON, every error of a
//! file at once, several files, unreadable files; and that it writes nothing.

use super::*;

const ONE_ERROR: &str = "\
version: 1
name: demo
steps:
  approve_dns: { uses: noop }
  switch_dns:
    needs: [aprove_dns]
    uses: noop
";

#[test]
fn text_output_draws_the_line_with_a_caret() {
    Test::new().file("r.yaml", ONE_ERROR).args(["validate", "r.yaml"]).run().code(2).stdout_empty().stderr_is(
        "\
error[PHX0203]: `aprove_dns` is not a step of this runbook
  --> r.yaml:6:13
  |
6 |     needs: [aprove_dns]
  |             ^^^^^^^^^^
   = at: steps.switch_dns.needs[0]
   = help: did you mean `approve_dns`?

error: r.yaml has 1 error; nothing was run

",
    );
}

#[test]
fn json_output_places_each_diagnostic() {
    let out = Test::new().file("r.yaml", ONE_ERROR).args(["validate", "--output", "json", "r.yaml"]).run().code(2).stderr_is("");
    let json = out.stdout_json();
    assert_eq!(json["valid"], false);
    assert_eq!(json["errors"], 1);
    assert_eq!(json["files"][0]["file"], "r.yaml");
    assert_eq!(json["files"][0]["valid"], false);
    assert_eq!(
        json["files"][0]["diagnostics"][0],
        serde_json::json!({
            "code": "PHX0203",
            "severity": "error",
            "message": "`aprove_dns` is not a step of this runbook",
            "help": "did you mean `approve_dns`?",
            "file": "r.yaml",
            "path": "steps.switch_dns.needs[0]",
            "line": 6,
            "column": 13,
            "length": 10,
        })
    );
}

#[test]
fn every_error_of_a_file_is_reported_together() {
    let text = "\
version: 1
name: Bad Name
steps:
  a:
    uses: noop
    nedes: [b]
  b:
    needs: [c]
    uses: exce
";
    Test::new()
        .file("r.yaml", text)
        .args(["validate", "r.yaml"])
        .run()
        .code(2)
        .stderr_contains("error[PHX0106]: `Bad Name` is not a valid runbook name")
        .stderr_contains("error[PHX0101]: unknown field `nedes`")
        .stderr_contains("error[PHX0203]: `c` is not a step of this runbook")
        .stderr_contains("error[PHX0301]: `exce` is not a known action")
        .stderr_contains("= help: did you mean `exec`?")
        .stderr_contains("error: r.yaml has 4 errors; nothing was run");
}

#[test]
fn several_files_in_one_call() {
    let out = Test::new()
        .file("good.yaml", "version: 1\nname: good\nsteps:\n  a: { uses: noop }\n")
        .file("bad.yaml", ONE_ERROR)
        .file("worse.yaml", "version: 3\nname: worse\nsteps:\n  a: { uses: noop, needs: [a] }\n")
        .args(["validate", "good.yaml", "bad.yaml", "worse.yaml"])
        .run()
        .code(2)
        .stdout_is("ok  good.yaml: `good`, 1 steps\n")
        .stderr_contains("--> bad.yaml:6:13")
        .stderr_contains("error: bad.yaml has 1 error; nothing was run")
        .stderr_contains("error[PHX0105]: runbook format version 3 is not supported")
        .stderr_contains("error[PHX0204]: `a` needs itself")
        .stderr_contains("error: worse.yaml has 2 errors; nothing was run");
    let json = out.then().args(["validate", "--output", "json", "good.yaml", "bad.yaml", "worse.yaml"]).run().code(2).stdout_json();
    assert_eq!(json["valid"], false);
    assert_eq!(json["errors"], 3);
    let files: Vec<(&str, bool)> = json["files"]
        .as_array()
        .expect("files")
        .iter()
        .map(|f| (f["file"].as_str().expect("a file"), f["valid"].as_bool().expect("valid")))
        .collect();
    assert_eq!(files, vec![("good.yaml", true), ("bad.yaml", false), ("worse.yaml", false)]);
    assert_eq!(json["files"][0]["steps"], 1);
}

#[test]
fn all_valid_files_exit_0() {
    Test::new()
        .file("a.yaml", "version: 1\nname: a\nsteps:\n  x: { uses: noop }\n")
        .file("runbooks/b.yaml", "version: 1\nname: b\nsteps:\n  y: { uses: sleep, with: { duration: 1s } }\n")
        .args(["validate", "a.yaml", "runbooks/b.yaml"])
        .run()
        .success()
        .stdout_is("ok  a.yaml: `a`, 1 steps\nok  runbooks/b.yaml: `b`, 1 steps\n")
        .stderr_is("");
}

#[test]
fn carriage_returns_end_lines_as_in_yaml() {
    for (name, eol) in [("crlf.yaml", "\r\n"), ("cr.yaml", "\r")] {
        let text = ["version: 1", "name: eol", "steps:", "  a:", "    uses: exce", ""].join(eol);
        Test::new()
            .file(name, text)
            .args(["validate", name])
            .run()
            .code(2)
            .stderr_contains(&format!("  --> {name}:5:11\n  |\n5 |     uses: exce\n  |           ^^^^\n"));
    }
}

#[test]
fn a_missing_file_is_phx0001() {
    let out = Test::new()
        .args(["validate", "nope.yaml"])
        .run()
        .code(2)
        .stderr_contains("error[PHX0001]: cannot read the file")
        .stderr_contains("  --> nope.yaml\n")
        .stderr_contains("error: nope.yaml has 1 error; nothing was run");
    let json = out.then().args(["validate", "--output", "json", "nope.yaml"]).run().code(2).stdout_json();
    let d = &json["files"][0]["diagnostics"][0];
    assert_eq!(d["code"], "PHX0001");
    assert_eq!(d["file"], "nope.yaml");
    assert_eq!(d["line"], Value::Null);
}

#[test]
fn a_file_that_is_not_utf8_is_phx0001() {
    Test::new()
        .file("latin1.yaml", b"version: 1\nname: caf\xe9\nsteps:\n  a: { uses: noop }\n")
        .args(["validate", "latin1.yaml"])
        .run()
        .code(2)
        .stderr_contains("error[PHX0001]: the file is not UTF-8 text (invalid byte at offset 20)");
}

#[test]
fn validation_writes_nothing_to_the_state_dir() {
    let out = Test::new()
        .file("good.yaml", "version: 1\nname: good\nsteps:\n  a: { uses: exec, with: { cmd: [touch, ran] } }\n")
        .file("bad.yaml", ONE_ERROR)
        .args(["validate", "good.yaml", "bad.yaml"])
        .run()
        .code(2);
    let state = out.state_dir();
    let empty = !state.exists() || std::fs::read_dir(&state).expect("read the state dir").next().is_none();
    assert!(empty, "validate wrote into the state directory {}", state.display());
    let mut left: Vec<String> = std::fs::read_dir(out.path())
        .expect("read the test dir")
        .map(|e| e.expect("an entry").file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    left.retain(|n| n != "state");
    assert_eq!(left, ["bad.yaml", "good.yaml"], "validate ran something or wrote a file");
}
