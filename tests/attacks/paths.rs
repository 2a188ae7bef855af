//! Attacks: paths. A child runbook or a template file named by a param, the API or the
//! command line stays inside the runbook's directory (the server's runbooks directory when
//! served): an absolute path, `..` or a symlink out is refused with a clear error, nothing
//! outside is read or run, and the legitimate child in the directory still runs. Run ids and
//! step names never become paths.

use crate::process::{self, step};
use crate::serve_support::{ONCALL, Server, TOKENS};
use crate::support::{Output, Test};

/// A parent whose child runbook is a param (as `failover_runbook` in incident-analysis).
const PARENT: &str = r#"version: 1
name: parent
params:
  child: { type: string, default: child.yaml }
steps:
  sub:
    uses: runbook
    with: { file: "{{ params.child }}" }
"#;

const CHILD: &str = "version: 1\nname: child\nsteps:\n  mark: { uses: exec, with: { cmd: [touch, CHILD_RAN] } }\n";
const EVIL: &str = "version: 1\nname: evil\nsteps:\n  pwn: { uses: exec, with: { cmd: [touch, PWNED] } }\n";

/// `rb/parent.yaml`, `rb/child.yaml`, and `evil.yaml` outside `rb/`.
fn setup() -> Test {
    Test::new().file("rb/parent.yaml", PARENT).file("rb/child.yaml", CHILD).file("evil.yaml", EVIL)
}

/// Runs the parent with `child=…`: it fails, the sub step says why, nothing ran.
fn refused(t: Test, child: &str, why: &str) -> Output {
    let out = t.args(["run", "rb/parent.yaml", "--param", &format!("child={child}")]).run().code(1);
    let s = process::status(&out.state_dir(), &process::run_of(&out.state_dir(), "parent"));
    let error = step(&s, "sub")["error"].as_str().unwrap_or_default().to_string();
    assert!(error.contains(why), "{error}");
    assert!(!out.path().join("PWNED").exists(), "the runbook outside ran");
    assert_eq!(process::run_ids(&out.state_dir()).len(), 1, "a child run was started");
    // What must still work: the child inside the directory.
    let ok = out.then().args(["run", "rb/parent.yaml"]).run().success();
    assert!(ok.path().join("CHILD_RAN").exists());
    ok
}

#[test]
fn a_child_runbook_given_as_dot_dot_is_refused() {
    refused(setup(), "../evil.yaml", "leaves");
}

#[test]
fn a_child_runbook_given_as_an_absolute_path_is_refused() {
    let t = setup();
    let abs = t.path().join("evil.yaml");
    refused(t, abs.to_str().unwrap(), "is an absolute path");
}

#[test]
fn a_child_runbook_through_a_symlink_out_of_the_directory_is_refused() {
    let t = setup();
    std::os::unix::fs::symlink(t.path().join("evil.yaml"), t.path().join("rb/link.yaml")).unwrap();
    refused(t, "link.yaml", "through a symlink");
}

#[test]
fn a_child_runbook_written_outside_its_directory_is_bad_input() {
    let rb = "version: 1\nname: p\nsteps:\n  sub: { uses: runbook, with: { file: ../evil.yaml } }\n";
    let out = setup().file("rb/p.yaml", rb).args(["validate", "rb/p.yaml"]).run().code(2);
    let out = out.stderr_contains("steps.sub.with.file").stderr_contains("leaves");
    let out = out.then().args(["run", "rb/p.yaml"]).run().code(2);
    assert!(!out.path().join("PWNED").exists());
    assert!(!out.state_dir().join("work").exists());
    // Inside, it validates.
    out.then().args(["validate", "rb/parent.yaml"]).run().success();
}

#[test]
fn a_prompt_file_outside_the_runbooks_directory_is_bad_input() {
    let rb = "version: 1\nname: p\nsteps:\n  ask: { uses: llm, with: { prompt_file: /etc/passwd } }\n";
    setup().file("rb/p.yaml", rb).args(["validate", "rb/p.yaml"]).run().code(2).stderr_contains("absolute path");
    let rb = "version: 1\nname: p\nsteps:\n  ask: { uses: llm, with: { prompt_file: ../secret.txt } }\n";
    setup().file("secret.txt", "x").file("rb/p.yaml", rb).args(["validate", "rb/p.yaml"]).run().code(2).stderr_contains("leaves");
}

#[test]
fn run_ids_and_step_names_are_never_paths() {
    let out = setup().args(["run", "rb/child.yaml"]).run().success();
    let id = process::latest_run(&out.state_dir());
    for args in [vec!["status", "../../etc/passwd"], vec!["logs", "../x"], vec!["report", "/etc/passwd"]] {
        let o = out.then().args(&args).run().code(2);
        assert!(o.stderr().contains("no run"), "{args:?}: {}", o.stderr());
        assert!(!o.stdout().contains("root:"), "{args:?} read a file");
    }
    let o = out.then().args(["logs", &id, "../../etc/passwd"]).run().code(2);
    assert!(o.stderr().contains("has no step"), "{}", o.stderr());
    // The run itself is there.
    out.then().args(["status", &id]).run().success();
}

#[test]
fn the_api_confines_runbooks_and_their_children_to_the_runbooks_directory() {
    let t = Test::new()
        .file("runbooks/parent.yaml", PARENT)
        .file("runbooks/child.yaml", CHILD)
        .file("evil.yaml", EVIL)
        .file("serve.yaml", format!("runbooks: runbooks\n{TOKENS}"));
    let server = Server::start(t.path());
    for body in [r#"{"runbook": "../evil.yaml"}"#, r#"{"runbook": "/etc/passwd"}"#, r#"{"runbook": "..%2fevil"}"#] {
        let (status, v) = server.call("POST", "/api/v1/runs", Some(ONCALL), Some(body));
        assert!((400..500).contains(&status), "{body}: {status} {v}");
    }
    for path in ["/api/v1/runs/..%2f..%2fetc%2fpasswd", "/api/v1/runs/../../etc/passwd", "/api/v1/runs/x/logs?step=..%2f..%2fetc"] {
        let (status, v) = server.call("GET", path, Some(ONCALL), None);
        assert!((400..500).contains(&status), "{path}: {status} {v}");
    }
    // A param naming a child outside: the run fails, the child never starts.
    let (status, v) =
        server.call("POST", "/api/v1/runs", Some(ONCALL), Some(r#"{"runbook": "parent", "params": {"child": "../evil.yaml"}}"#));
    assert_eq!(status, 202, "{v}");
    let run = server.wait_status(v["id"].as_str().unwrap(), "failed");
    assert!(run.to_string().contains("leaves"), "{run:#}");
    assert!(!t.path().join("PWNED").exists());
    // The legitimate child runs.
    let (status, v) = server.call("POST", "/api/v1/runs", Some(ONCALL), Some(r#"{"runbook": "parent"}"#));
    assert_eq!(status, 202, "{v}");
    server.wait_status(v["id"].as_str().unwrap(), "succeeded");
    assert!(t.path().join("CHILD_RAN").exists());
}

/// A runbook whose `tools_dir` picks the binary its step runs: a `run` token that could set
/// it would run its own program on the server.
const TOOLS: &str = r#"version: 1
name: tools
params:
  tools_dir: { type: string, default: "", operator_only: true }
  note: { type: string, default: "" }
steps:
  use_tool:
    uses: exec
    with: { script: "{{ params.tools_dir ~ '/' if params.tools_dir else '' }}tool > used.txt; echo ok" }
"#;

#[test]
fn the_api_refuses_an_operator_only_param_and_the_operator_may_set_it() {
    let t = Test::new()
        .file("runbooks/tools.yaml", TOOLS)
        .file("evil/tool", "#!/bin/sh\ntouch PWNED\n")
        .file("good/tool", "#!/bin/sh\necho good\n")
        .file("serve.yaml", format!("runbooks: runbooks\n{TOKENS}"));
    for f in ["evil/tool", "good/tool"] {
        std::fs::set_permissions(t.path().join(f), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    }
    let evil = t.path().join("evil");
    let server = Server::start(t.path());
    let body = serde_json::json!({ "runbook": "tools", "params": { "tools_dir": evil.to_str().unwrap(), "note": "x" } }).to_string();
    let (status, v) = server.call("POST", "/api/v1/runs", Some(ONCALL), Some(&body));
    assert_eq!(status, 403, "{v}");
    assert!(v["error"].as_str().unwrap().contains("`tools_dir`"), "{v}");
    assert_eq!(server.get("/api/v1/runs")["runs"], serde_json::json!([]), "nothing started");
    assert!(!t.path().join("PWNED").exists());
    // The runbook list says which params are the operator's.
    let list = server.get("/api/v1/runbooks");
    assert_eq!(list["runbooks"][0]["params"]["tools_dir"]["operator_only"], true, "{list}");
    assert_eq!(list["runbooks"][0]["params"]["note"]["operator_only"], false, "{list}");
    // Other params still come from the API.
    let (status, v) = server.call("POST", "/api/v1/runs", Some(ONCALL), Some(r#"{"runbook": "tools", "params": {"note": "y"}}"#));
    assert_eq!(status, 202, "{v}");
    drop(server);
    // The operator, at the command line, may set it.
    let good = t.path().join("good");
    let out = t.args(["run", "runbooks/tools.yaml", "--param", &format!("tools_dir={}", good.display())]).run().success();
    assert!(std::fs::read_to_string(out.path().join("used.txt")).unwrap().contains("good"));
    assert!(!out.path().join("PWNED").exists());
}
