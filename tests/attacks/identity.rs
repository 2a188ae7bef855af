//! Attacks: identity. Someone not on a step's `approvers` tries to decide it: through a
//! templated `approvers` that used to be read unrendered, through the API with their own
//! token, over the control socket claiming another name (`--as`) from another uid (run with
//! `setpriv --reuid=65534`, user `nobody`). And other users reading the state directory.
//! Each case checks that the refused decision left nothing (the step still waits, no
//! approval recorded, what follows did not run) and that the real approver still can.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};

use crate::process::{self, Background, phoenix_bin, step, wait_for};
use crate::serve_support::{Server, exchange, generated_token, request};
use crate::support::Test;

/// `approvers` from a list param defaulting to [alice]; `after` leaves a file when it runs.
const TEMPLATED: &str = r#"version: 1
name: templated
params:
  approvers: { type: list, default: [alice] }
steps:
  gate:
    uses: approval
    with: { message: "Switch DNS?", approvers: "{{ params.approvers }}" }
  after:
    needs: [gate]
    uses: exec
    with: { cmd: [touch, after.ran] }
"#;

/// `phoenix --state STATE ARGS` in `dir`, optionally as the user `nobody`.
fn phoenix(dir: &Path, state: &Path, as_nobody: bool, args: &[&str]) -> std::process::Output {
    let mut cmd = if as_nobody {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", phoenix_bin()]);
        c
    } else {
        Command::new(phoenix_bin())
    };
    cmd.arg("--state").arg(state).args(args).current_dir(dir).stdin(std::process::Stdio::null());
    cmd.output().expect("phoenix runs")
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The gate still waits, nothing was recorded, `after` did not run.
fn undecided(dir: &Path, status: &Value) {
    let gate = step(status, "gate");
    assert_eq!((gate["status"].as_str(), &gate["approval"]), (Some("waiting"), &Value::Null), "{status:#}");
    assert!(!dir.join("after.ran").exists(), "what the gate guards ran");
}

#[test]
fn templated_approvers_are_rendered_before_anyone_is_checked() {
    let t = Test::new().file("r.yaml", TEMPLATED).args(["run", "r.yaml", "--no-wait"]).run().code(3);
    let (dir, state) = (t.path().to_path_buf(), t.state_dir());
    let run = process::latest_run(&state);
    // What the step asked, as rendered, is on record.
    assert_eq!(step(&process::status(&state, &run), "gate")["inputs"]["approvers"], json!(["alice"]));
    for who in ["mallory", "{{ params.approvers }}", "[alice]", "alice,mallory"] {
        let out = phoenix(&dir, &state, false, &["approve", &run, "gate", "--as", who]);
        assert_eq!(out.status.code(), Some(2), "{who}: {}", stderr(&out));
        assert!(stderr(&out).contains("may not decide on `gate`: approvers are alice"), "{}", stderr(&out));
    }
    // The refusals recorded nothing: a resume halts at the gate again.
    assert_eq!(phoenix(&dir, &state, false, &["resume", &run, "--no-wait"]).status.code(), Some(3));
    undecided(&dir, &process::status(&state, &run));

    let out = phoenix(&dir, &state, false, &["approve", &run, "gate", "--as", "alice"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(phoenix(&dir, &state, false, &["resume", &run]).status.success());
    let s = process::status(&state, &run);
    assert_eq!((s["status"].as_str(), step(&s, "gate")["approval"]["by"].as_str()), (Some("succeeded"), Some("alice")));
    assert!(dir.join("after.ran").exists());
}

#[test]
fn approvers_that_render_empty_fail_the_step_instead_of_letting_anyone_decide() {
    let t = Test::new().file("r.yaml", TEMPLATED).args(["run", "r.yaml", "-p", "approvers=", "--no-wait"]).run().code(1);
    let s = process::status(&t.state_dir(), &process::latest_run(&t.state_dir()));
    let gate = step(&s, "gate");
    assert_eq!(gate["status"], "failed");
    assert!(gate["error"].as_str().unwrap_or("").contains("nobody could decide"), "{gate:#}");
    assert_eq!(step(&s, "after")["status"], "upstream_failed");
    assert!(!t.path().join("after.ran").exists());
    // Given names, the same runbook waits for them.
    let t = t.then().args(["run", "r.yaml", "-p", "approvers=carol,dave", "--no-wait"]).run().code(3);
    let s = process::status(&t.state_dir(), &process::latest_run(&t.state_dir()));
    assert_eq!(step(&s, "gate")["inputs"]["approvers"], json!(["carol", "dave"]));
}

/// Tokens named alice and bob, both allowed to approve (read from files).
const NAMED_TOKENS: &str = "tokens:\n  - { name: alice, file: alice.token, rights: [read, run, approve] }\n  - { name: bob, file: bob.token, rights: [read, run, approve] }\n";
const ALICE: &str = "alice-token-0123456789abcdef";
const BOB: &str = "bob-token-0123456789abcdef";

#[test]
fn over_the_api_a_token_not_named_in_the_rendered_approvers_is_refused() {
    let t = Test::new()
        .file("runbooks/templated.yaml", TEMPLATED)
        .file("serve.yaml", NAMED_TOKENS)
        .file("alice.token", ALICE)
        .file("bob.token", BOB);
    let mut server = Server::start(t.path());
    server.token = ALICE.to_string();
    let (status, v) = server.call("POST", "/api/v1/runs", Some(BOB), Some(r#"{"runbook": "templated"}"#));
    assert_eq!(status, 202, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    server.wait_step(&id, "gate", "waiting");
    let run = server.call("GET", &format!("/api/v1/runs/{id}"), Some(ALICE), None).1;
    assert_eq!(run["waiting"][0]["approvers"], json!(["alice"]), "the page is told the rendered list");

    let approve = format!("/api/v1/runs/{id}/steps/gate/approve");
    for path in [approve.clone(), format!("/api/v1/runs/{id}/steps/gate/reject")] {
        let (status, v) = server.call("POST", &path, Some(BOB), Some("{}"));
        assert_eq!(status, 403, "{path}: {v}");
        assert!(v["error"].as_str().unwrap_or("").contains("`bob` may not decide"), "{v}");
    }
    // Over the socket, root may assert a name, but only an approver's.
    let out = phoenix(t.path(), &server.state, false, &["approve", &id, "gate", "--as", "bob"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let events = server.call("GET", &format!("/api/v1/runs/{id}/logs"), Some(ALICE), None).1;
    assert!(!events["events"].as_array().unwrap().iter().any(|e| e["kind"] == "approval" && e["approved"].is_boolean()), "{events}");
    undecided(t.path(), &server.call("GET", &format!("/api/v1/runs/{id}"), Some(ALICE), None).1);

    let (status, v) = server.call("POST", &approve, Some(ALICE), Some(r#"{"comment": "checked"}"#));
    assert_eq!((status, &v), (200, &json!({ "applied": true })));
    wait_for("the run to succeed", Duration::from_secs(60), || {
        server.call("GET", &format!("/api/v1/runs/{id}"), Some(ALICE), None).1["status"] == "succeeded"
    });
    let run = server.call("GET", &format!("/api/v1/runs/{id}"), Some(ALICE), None).1;
    let approval = &step(&run, "gate")["approval"];
    assert_eq!((approval["by"].as_str(), approval["via"].as_str()), (Some("alice"), Some("http, token `alice`")), "{approval}");
    assert!(t.path().join("after.ran").exists());
}

/// A directory `nobody` can enter and read, with a state directory it owns.
fn shared_with_nobody(t: &Test) -> PathBuf {
    std::fs::set_permissions(t.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let state = t.state_dir();
    std::fs::create_dir(&state).unwrap();
    std::os::unix::fs::chown(&state, Some(65534), Some(65534)).unwrap();
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o700)).unwrap();
    state
}

/// `phoenix serve` running as `nobody`, with the token it made.
fn serve_as_nobody(t: &Test, state: &Path) -> (Background, String, String) {
    let addr = format!("127.0.0.1:{}", crate::postgres::free_port());
    let mut cmd = Command::new("setpriv");
    cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups", phoenix_bin(), "--state"])
        .arg(state)
        .args(["serve", "--listen", &addr, "--config", "serve.yaml"])
        .current_dir(t.path());
    let mut bg = Background::spawn(cmd, t.path());
    wait_for("phoenix serve (as nobody) to answer", Duration::from_secs(60), || {
        assert!(bg.exited().is_none(), "phoenix serve exited:\n{}", bg.stderr_so_far());
        request(&addr, "GET", "/healthz", None, None).0 == 200
    });
    let token = generated_token(&bg.stderr_so_far()).expect("a #token= link");
    (bg, addr, token)
}

#[test]
fn over_the_socket_the_peer_uid_decides_who_acts_not_the_name_it_claims() {
    let gate = "version: 1\nname: gate\nsteps:\n  gate:\n    uses: approval\n    with: { message: \"go?\", approvers: [alice, carol] }\n";
    // `nobody` may act as carol (mapped), not as alice.
    let t = Test::new().file("runbooks/gate.yaml", gate).file("serve.yaml", "socket_users:\n  nobody: [carol]\n");
    let state = shared_with_nobody(&t);
    let (bg, addr, token) = serve_as_nobody(&t, &state);
    let bearer = format!("Bearer {token}");
    let headers = [("Host", addr.as_str()), ("Content-Type", "application/json"), ("Authorization", bearer.as_str())];
    let (status, _, body) = exchange(&addr, "POST", "/api/v1/runs", &headers, r#"{"runbook": "gate"}"#);
    assert_eq!(status, 202, "{body}");
    let id = serde_json::from_str::<Value>(&body).unwrap()["id"].as_str().unwrap().to_string();
    let status_of = || serde_json::from_str::<Value>(&exchange(&addr, "GET", &format!("/api/v1/runs/{id}"), &headers, "").2).unwrap();
    wait_for("the gate to wait", Duration::from_secs(60), || step(&status_of(), "gate")["status"] == "waiting");

    // Same uid as the owner, claiming a name it is not mapped to: refused, whatever `--as` says.
    let out = phoenix(t.path(), &state, true, &["approve", &id, "gate", "--as", "alice"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("uid 65534 (nobody) may not act as `alice`"), "{}", stderr(&out));
    // Without `--as` it is itself, and `nobody` is no approver.
    let out = phoenix(t.path(), &state, true, &["approve", &id, "gate"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("`nobody` may not decide"), "{}", stderr(&out));
    assert_eq!(step(&status_of(), "gate")["approval"], Value::Null, "nothing recorded");
    // Cancelling in someone else's name: refused the same way; the run goes on.
    let out = phoenix(t.path(), &state, true, &["cancel", &id, "--as", "alice"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("may not act as `alice`"), "{}", stderr(&out));
    assert_eq!(status_of()["status"], "running");

    // The name serve.yaml maps it to: accepted, and the record says through what and as whom.
    let out = phoenix(t.path(), &state, true, &["approve", &id, "gate", "--as", "carol"]);
    assert!(out.status.success(), "{}", stderr(&out));
    wait_for("the run to succeed", Duration::from_secs(60), || status_of()["status"] == "succeeded");
    let approval = step(&status_of(), "gate")["approval"].clone();
    assert_eq!((approval["by"].as_str(), approval["via"].as_str()), (Some("carol"), Some("socket, uid 65534 (nobody)")), "{approval}");
    drop(bg);
}

#[test]
fn root_may_assert_a_name_over_the_socket_and_the_record_says_so() {
    let gate = "version: 1\nname: gate\nsteps:\n  gate:\n    uses: approval\n    with: { message: \"go?\", approvers: [alice] }\n";
    let t = Test::new().file("runbooks/gate.yaml", gate).file("serve.yaml", "runbooks: runbooks\n");
    let server = Server::start(t.path());
    let (_, v) = server.call("POST", "/api/v1/runs", Some(&server.token), Some(r#"{"runbook": "gate"}"#));
    let id = v["id"].as_str().unwrap().to_string();
    server.wait_step(&id, "gate", "waiting");
    // While the server owns it: the directory and the socket are its user's alone.
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!((mode(&server.state), mode(&server.state.join("phoenix.sock"))), (0o700, 0o600));
    let out = phoenix(t.path(), &server.state, false, &["approve", &id, "gate", "--as", "alice"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let run = server.wait_status(&id, "succeeded");
    let approval = &step(&run, "gate")["approval"];
    assert_eq!((approval["by"].as_str(), approval["via"].as_str()), (Some("alice"), Some("socket, uid 0 (root)")), "{approval}");
}

#[test]
fn the_cli_of_another_user_cannot_claim_a_name_on_a_store_it_opens_itself() {
    let gate = "version: 1\nname: gate\nsteps:\n  gate:\n    uses: approval\n    with: { message: \"go?\", approvers: [alice] }\n";
    let t = Test::new().file("r.yaml", gate);
    let state = shared_with_nobody(&t);
    let out = phoenix(t.path(), &state, true, &["run", "r.yaml", "--no-wait"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    // Read as nobody: root opening the store would leave files nobody cannot open.
    let runs: Value = serde_json::from_slice(&phoenix(t.path(), &state, true, &["runs", "--output", "json"]).stdout).unwrap();
    let run = runs["runs"][0]["id"].as_str().unwrap().to_string();
    let out = phoenix(t.path(), &state, true, &["approve", &run, "gate", "--as", "alice"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("uid 65534 (nobody) may not act as `alice`"), "{}", stderr(&out));
    let out = phoenix(t.path(), &state, true, &["run", "r.yaml", "--as", "alice", "--no-wait"]);
    assert_eq!(out.status.code(), Some(2), "a run started as someone else: {}", stderr(&out));
    let runs: Value = serde_json::from_slice(&phoenix(t.path(), &state, true, &["runs", "--output", "json"]).stdout).unwrap();
    assert_eq!(runs["runs"].as_array().map(Vec::len), Some(1), "no second run: {runs}");
    assert_eq!(step(&process::status(&state, &run), "gate")["approval"], Value::Null);
    // Root asserts it: accepted, recorded as asserted from the command line by uid 0.
    let out = phoenix(t.path(), &state, false, &["approve", &run, "gate", "--as", "alice"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(phoenix(t.path(), &state, false, &["resume", &run]).status.success());
    let approval = step(&process::status(&state, &run), "gate")["approval"].clone();
    assert_eq!((approval["by"].as_str(), approval["via"].as_str()), (Some("alice"), Some("cli, uid 0 (root)")), "{approval}");
}

/// Every path under `dir` but the steps' `work/`, with its mode.
fn modes(dir: &Path) -> Vec<(PathBuf, u32, bool)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let (p, meta) = (e.path(), e.metadata().unwrap());
        if e.file_name() == "work" {
            continue;
        }
        out.push((p.clone(), meta.permissions().mode() & 0o777, meta.is_dir()));
        if meta.is_dir() {
            out.extend(modes(&p));
        }
    }
    out
}

#[test]
fn the_state_directory_is_its_owners_alone() {
    let secret = format!("output-only-the-owner-reads-{}", process::unique());
    let rb = format!(
        "version: 1\nname: quiet\nsteps:\n  say:\n    uses: exec\n    with: {{ cmd: [echo, \"{secret}\"] }}\n  gate:\n    needs: [say]\n    uses: approval\n    with: {{ message: go? }}\n"
    );
    let t = Test::new().file("r.yaml", rb).args(["run", "r.yaml", "--no-wait"]).run().code(3);
    let state = t.state_dir();
    assert_eq!(std::fs::metadata(&state).unwrap().permissions().mode() & 0o777, 0o700);
    let all = modes(&state);
    assert!(all.iter().any(|(p, _, _)| p.ends_with("wal")) && all.iter().any(|(p, _, _)| p.ends_with("db/conf")), "{all:?}");
    for (p, mode, is_dir) in &all {
        assert_eq!(*mode, if *is_dir { 0o700 } else { 0o600 }, "{}", p.display());
    }
    // The owner reads the output; another user cannot even list the directory.
    let logs = process::json(&state, &["logs", &process::latest_run(&state)]);
    assert!(logs.to_string().contains(&secret));
    std::fs::set_permissions(t.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let ls = Command::new("setpriv").args(["--reuid=65534", "--regid=65534", "--clear-groups", "ls"]).arg(&state).output().unwrap();
    assert!(!ls.status.success(), "nobody listed the state directory");
    let grep = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "grep", "-rl", &secret])
        .arg(&state)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&grep.stdout).is_empty(), "nobody found the output");
    let out = phoenix(t.path(), &state, true, &["logs", &process::latest_run(&state)]);
    assert!(!out.status.success() && !String::from_utf8_lossy(&out.stdout).contains(&secret));
}

#[test]
fn a_state_directory_open_to_others_is_tightened_with_a_note() {
    // A store made before state directories were private, or loosened by hand.
    let t = Test::new().file("r.yaml", "version: 1\nname: one\nsteps:\n  a: { uses: noop }\n").args(["run", "r.yaml"]).run().success();
    let state = t.state_dir();
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(state.join("wal"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = t.then().args(["run", "r.yaml"]).run().success().stderr_contains("was open to other users (mode 755); it is now 0700");
    assert_eq!(std::fs::metadata(&state).unwrap().permissions().mode() & 0o777, 0o700);
    assert_eq!(std::fs::metadata(state.join("wal")).unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!(process::run_ids(&state).len(), 2, "both runs ran");
    // Said once: the next command finds it private.
    out.then().args(["runs"]).run().success().stderr_lacks("open to other users");
}

#[test]
fn an_empty_approvers_list_is_refused_when_the_runbook_is_loaded() {
    let empty = "version: 1\nname: e\nsteps:\n  gate:\n    uses: approval\n    with: { message: go?, approvers: [] }\n";
    let t = Test::new().file("r.yaml", empty).args(["run", "r.yaml", "--no-wait"]).run().code(2);
    let t = t.stderr_contains("steps.gate.with.approvers").stderr_contains("lets nobody decide").stderr_contains("leave `approvers` out");
    assert!(!t.state_dir().exists(), "nothing ran, nothing was written");
    // Left out, anyone may decide: the run waits for whoever comes.
    let open = "version: 1\nname: e\nsteps:\n  gate:\n    uses: approval\n    with: { message: go? }\n";
    let t = t.then().file("open.yaml", open).args(["run", "open.yaml", "--no-wait"]).run().code(3);
    let run = process::latest_run(&t.state_dir());
    t.then().args(["approve", &run, "gate", "--as", "anyone-at-all"]).run().success();
}

#[test]
fn a_new_wait_asks_the_approvers_of_the_runbook_the_run_now_uses() {
    let yaml = |who: &str| {
        format!(
            "version: 1\nname: again\nsteps:\n  gate:\n    uses: approval\n    with: {{ message: go?, approvers: [{who}] }}\n  after:\n    needs: [gate]\n    uses: exec\n    with: {{ cmd: [touch, after.ran] }}\n"
        )
    };
    let t = Test::new().file("r.yaml", yaml("alice")).file("r2.yaml", yaml("carol")).args(["run", "r.yaml", "--no-wait"]).run().code(3);
    let (dir, state) = (t.path().to_path_buf(), t.state_dir());
    let run = process::latest_run(&state);
    assert!(phoenix(&dir, &state, false, &["approve", &run, "gate", "--reject", "--as", "alice"]).status.success());
    assert_eq!(phoenix(&dir, &state, false, &["resume", &run]).status.code(), Some(1), "rejected: the run fails");
    // Resumed with an edited runbook, the gate asks again, of the new approvers.
    let out = phoenix(&dir, &state, false, &["resume", &run, "--runbook", "r2.yaml", "--no-wait", "--yes"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert_eq!(step(&process::status(&state, &run), "gate")["inputs"]["approvers"], json!(["carol"]));
    let out = phoenix(&dir, &state, false, &["approve", &run, "gate", "--as", "alice"]);
    assert_eq!(out.status.code(), Some(2), "alice is no approver any more: {}", stderr(&out));
    assert_eq!(step(&process::status(&state, &run), "gate")["status"], "waiting");
    assert!(!dir.join("after.ran").exists());
    assert!(phoenix(&dir, &state, false, &["approve", &run, "gate", "--as", "carol"]).status.success());
    assert!(phoenix(&dir, &state, false, &["resume", &run]).status.success());
    assert!(dir.join("after.ran").exists());
}
