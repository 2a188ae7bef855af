//! `phoenix resume RUN --runbook EDITED` keeps the DAG's order: a step that runs again makes
//! its descendants stale (they wait for it and run after it) unless `--keep`; a succeeded
//! step that is not idempotent is never run again because its text changed (or its
//! ancestor ran again) unless `--rerun`; `--dry-run` shows the diff and the plan and writes
//! nothing; on a terminal the adoption is confirmed, `--yes` for scripts.
//!
//! Every step appends `start X` and `end X` to a ledger, so the tests read the real order
//! of execution instead of the engine's word.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::process::{self, lines, step_states};
use crate::support::{Output, Test};

/// `a → b → switch (idempotent: false) → verify`, with extra shell in a, switch and verify.
fn chain(a: &str, switch: &str, verify: &str) -> String {
    let script = |id: &str, body: &str| format!("echo start {id} >> ledger; {body} echo end {id} >> ledger");
    format!(
        r#"version: 1
name: failover
steps:
  a:
    uses: exec
    with: {{ script: "{}" }}
  b:
    needs: [a]
    uses: exec
    with: {{ script: "{}" }}
  switch:
    needs: [b]
    uses: exec
    idempotent: false
    with: {{ script: "{}" }}
  verify:
    needs: [switch]
    uses: exec
    with: {{ script: "{}" }}
"#,
        script("a", a),
        script("b", ""),
        script("switch", switch),
        script("verify", verify),
    )
}

/// v1: `verify` fails. v2: `a` and `switch` changed (a slow `a`, so a step that does not
/// wait for it would be seen starting before its end), `verify` fixed.
fn v1() -> String {
    chain("", "", "exit 1;")
}
fn v2() -> String {
    chain("sleep 0.5; echo db-v2 >/dev/null;", "echo dns-v2 >/dev/null;", "")
}

fn failed_at_verify() -> (Output, String) {
    let out = Test::new().file("v1.yaml", v1()).file("v2.yaml", v2()).args(["run", "v1.yaml"]).run().code(1);
    let run = process::latest_run(&out.state_dir());
    assert_eq!(step_states(&process::status(&out.state_dir(), &run)), ["a=succeeded", "b=succeeded", "switch=succeeded", "verify=failed"]);
    std::fs::remove_file(out.path().join("ledger")).unwrap();
    (out, run)
}

fn ledger(out: &Output) -> Vec<String> {
    lines(&out.path().join("ledger"))
}

fn events(out: &Output, run: &str) -> Vec<serde_json::Value> {
    process::json(&out.state_dir(), &["logs", run])["events"].as_array().unwrap().clone()
}

#[test]
fn an_edited_resume_runs_in_the_dags_order_and_keeps_a_done_mutation() {
    let (out, run) = failed_at_verify();
    let resumed = out
        .then()
        .args(["resume", &run, "--runbook", "v2.yaml", "--yes"])
        .run()
        .success()
        .stderr_contains("~ a (changed: will run again)")
        .stderr_contains("^ b (stale: runs again after a)")
        .stderr_contains("! switch (changed, kept: not idempotent; `--rerun switch` to run it again)")
        .stderr_contains("3. verify (after a, b)");
    let l = ledger(&out);
    assert_eq!(l, ["start a", "end a", "start b", "end b", "start verify", "end verify"], "{}", resumed.stderr());
    assert!(!l.iter().any(|x| x.contains("switch")), "switch succeeded and is not idempotent: never run again ({l:?})");
    let s = process::status(&out.state_dir(), &run);
    assert_eq!(s["status"], "succeeded");
    assert_eq!(process::step(&s, "switch")["attempts"], 1);
}

#[test]
fn rerun_runs_a_kept_mutation_once_more_after_its_needs_and_is_recorded() {
    let (out, run) = failed_at_verify();
    out.then().args(["resume", &run, "--runbook", "v2.yaml", "--rerun", "switch", "--yes"]).run().success();
    let l = ledger(&out);
    assert_eq!(
        l,
        ["start a", "end a", "start b", "end b", "start switch", "end switch", "start verify", "end verify"],
        "switch runs once, after b, and verify after it"
    );
    let ev = events(&out, &run);
    assert!(ev.iter().any(|e| e["kind"] == "operator" && e["action"] == "rerun" && e["detail"] == "switch"), "{ev:#?}");

    // --rerun names a finished step of the runbook: a typo changes nothing.
    let (out, run) = failed_at_verify();
    out.then()
        .args(["resume", &run, "--runbook", "v2.yaml", "--rerun", "swtich", "--yes"])
        .run()
        .code(2)
        .stderr_contains("no step `swtich`")
        .stderr_contains("switch");
    assert!(!out.path().join("ledger").exists(), "nothing ran");
    assert_eq!(process::status(&out.state_dir(), &run)["attempt"], 1);
}

#[test]
fn keep_keeps_a_stale_step_and_what_follows_it() {
    let (out, run) = failed_at_verify();
    out.then()
        .args(["resume", &run, "--runbook", "v2.yaml", "--keep", "b", "--yes"])
        .run()
        .success()
        .stderr_contains("= b (kept by --keep");
    let l = ledger(&out);
    assert_eq!(l, ["start a", "end a", "start verify", "end verify"], "b kept; verify still waits for a");
    let ev = events(&out, &run);
    assert!(ev.iter().any(|e| e["kind"] == "operator" && e["action"] == "keep" && e["detail"] == "b" && e["by"].is_string()));
    // --keep applies to a step that would run again, nothing else.
    let (out, run) = failed_at_verify();
    out.then().args(["resume", &run, "--runbook", "v2.yaml", "--keep", "verify", "--yes"]).run().code(2).stderr_contains("--keep verify");
    assert!(!out.path().join("ledger").exists());
}

#[test]
fn a_stale_mutation_is_kept_and_the_plan_says_so() {
    // Only `a` changes: `switch`, not idempotent, is stale after it and kept.
    let (out, run) = failed_at_verify();
    std::fs::write(out.path().join("v3.yaml"), chain("echo db-v3 >/dev/null;", "", "")).unwrap();
    out.then()
        .args(["resume", &run, "--runbook", "v3.yaml", "--yes"])
        .run()
        .success()
        .stderr_contains("! switch (stale after b, kept: not idempotent; `--rerun switch` to run it again)");
    let l = ledger(&out);
    assert_eq!(l, ["start a", "end a", "start b", "end b", "start verify", "end verify"]);
}

#[test]
fn dry_run_prints_the_diff_and_the_plan_and_writes_nothing() {
    let (out, run) = failed_at_verify();
    let before = process::json(&out.state_dir(), &["logs", &run]);
    let status_before = process::status(&out.state_dir(), &run);
    out.then()
        .args(["resume", &run, "--runbook", "v2.yaml", "--dry-run"])
        .run()
        .success()
        .stdout_contains("~ a (changed: will run again)")
        .stdout_contains("^ b (stale: runs again after a)")
        .stdout_contains("! switch (changed, kept")
        .stdout_contains("plan (in this order):\n  1. a\n  2. b (after a)\n  3. verify (after a, b)")
        .stdout_contains("nothing was run or written");
    assert!(!out.path().join("ledger").exists(), "nothing ran");
    // The same as JSON, for scripts.
    let v = out.then().args(["--output", "json", "resume", &run, "--runbook", "v2.yaml", "--dry-run"]).run().success().stdout_json();
    assert_eq!(v["plan"], serde_json::json!(["1. a", "2. b (after a)", "3. verify (after a, b)"]), "{v:#}");
    assert_eq!(v["runs"], 3);
    assert!(v["halts"].is_null());
    assert_eq!(process::json(&out.state_dir(), &["logs", &run]), before, "no event added");
    assert_eq!(process::status(&out.state_dir(), &run), status_before, "no step changed");
    // The stored text is still v1: a plain resume runs only verify, which fails again.
    out.then().args(["resume", &run]).run().code(1);
    assert_eq!(ledger(&out), ["start verify"]);
}

/// `phoenix ARGS` in a pseudo-terminal (util-linux `script`), `answer` typed at it.
fn in_a_terminal(out: &Output, args: &str, answer: &str) -> (Option<i32>, String) {
    let phoenix = out.then().command();
    let mut cmd = Command::new("script");
    cmd.args(["-qec", &format!("exec '{}' {args}", process::phoenix_bin()), "/dev/null"]);
    for (k, v) in phoenix.get_envs() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    let screen = out.path().join(format!("screen-{}", answer.len()));
    let file = std::fs::File::create(&screen).unwrap();
    cmd.current_dir(out.path()).env("TERM", "xterm").stdin(Stdio::piped()).stdout(file).stderr(Stdio::null());
    let mut child = cmd.spawn().expect("script (util-linux) runs");
    // Typed ahead: the terminal keeps it until phoenix reads its answer.
    let mut stdin = child.stdin.take().unwrap();
    std::io::Write::write_all(&mut stdin, answer.as_bytes()).unwrap();
    drop(stdin);
    let mut code = None;
    process::wait_for("phoenix in the terminal to end", Duration::from_secs(60), || {
        code = child.try_wait().unwrap().map(|s| s.code());
        code.is_some()
    });
    (code.flatten(), std::fs::read_to_string(&screen).unwrap_or_default())
}

#[test]
fn on_a_terminal_the_adoption_is_confirmed_and_without_one_yes_is_needed() {
    // No terminal, no --yes: refused, nothing changed.
    let (out, run) = failed_at_verify();
    out.then().args(["resume", &run, "--runbook", "v2.yaml"]).run().code(2).stderr_contains("~ a (changed").stderr_contains("add --yes");
    assert!(!out.path().join("ledger").exists());
    assert_eq!(process::status(&out.state_dir(), &run)["attempt"], 1);

    // A terminal answering no (or nothing): nothing runs.
    for answer in ["n\n", "\n"] {
        let (code, screen) = in_a_terminal(&out, &format!("resume {run} --runbook v2.yaml"), answer);
        assert!(screen.contains("Adopt v2.yaml and run 3 steps? [y/N]"), "{screen}");
        assert_eq!(code, Some(1), "{screen}");
        assert!(screen.contains("not adopted"), "{screen}");
        assert!(!out.path().join("ledger").exists(), "{screen}");
        assert_eq!(process::status(&out.state_dir(), &run)["attempt"], 1);
    }
    // Yes: it runs.
    let (code, screen) = in_a_terminal(&out, &format!("resume {run} --runbook v2.yaml"), "y\n");
    assert_eq!(code, Some(0), "{screen}");
    assert_eq!(ledger(&out), ["start a", "end a", "start b", "end b", "start verify", "end verify"]);
}

#[test]
fn through_phoenix_serve_the_flags_the_plan_and_the_confirmation_are_the_same() {
    use crate::serve_support::{Server, TOKENS};
    let t = Test::new().file("serve.yaml", TOKENS).file("runbooks/v1.yaml", v1()).file("runbooks/v2.yaml", v2());
    let server = Server::start(t.path());
    let cli = |args: &[&str]| {
        let out = Command::new(process::phoenix_bin())
            .arg("--state")
            .arg(&server.state)
            .args(args)
            .current_dir(t.path())
            .stdin(Stdio::null())
            .output()
            .unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let (code, _, err) = cli(&["run", "runbooks/v1.yaml"]);
    assert_eq!(code, Some(1), "{err}");
    let id = err.split_whitespace().nth(1).unwrap().to_string();
    std::fs::remove_file(t.path().join("ledger")).unwrap();
    let events_before = server.get(&format!("/api/v1/runs/{id}/logs"))["events"].clone();

    let (code, out, err) = cli(&["resume", &id, "--runbook", "runbooks/v2.yaml", "--dry-run"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("! switch (changed, kept") && out.contains("3. verify (after a, b)"), "{out}");
    let (code, _, err) = cli(&["resume", &id, "--runbook", "runbooks/v2.yaml"]);
    assert!(code == Some(2) && err.contains("add --yes"), "{code:?} {err}");
    assert!(!t.path().join("ledger").exists(), "nothing ran");
    assert_eq!(server.get(&format!("/api/v1/runs/{id}/logs"))["events"], events_before, "nothing was written");

    let (code, _, err) = cli(&["resume", &id, "--runbook", "runbooks/v2.yaml", "--rerun", "switch", "--yes"]);
    assert_eq!(code, Some(0), "{err}");
    server.wait_status(&id, "succeeded");
    assert_eq!(
        lines(&t.path().join("ledger")),
        ["start a", "end a", "start b", "end b", "start switch", "end switch", "start verify", "end verify"]
    );
}

#[test]
fn a_mutation_stopped_mid_way_still_halts_the_edited_resume_and_the_plan_says_so() {
    // v1's `switch` times out mid-way: its effect is uncertain. v2 edits it and `a`.
    let slow = chain("", "sleep 5;", "").replace("    idempotent: false\n", "    idempotent: false\n    timeout: 200ms\n");
    let out = Test::new().file("v1.yaml", slow).file("v2.yaml", v2()).args(["run", "v1.yaml"]).run().code(1);
    let run = process::latest_run(&out.state_dir());
    std::fs::remove_file(out.path().join("ledger")).unwrap();
    out.then()
        .args(["resume", &run, "--runbook", "v2.yaml", "--dry-run"])
        .run()
        .success()
        .stdout_contains("~ switch (changed, but stopped mid-way and not idempotent: resume asks")
        .stdout_contains("it halts before running anything: step(s) switch were stopped mid-way");
    out.then()
        .args(["resume", &run, "--runbook", "v2.yaml", "--yes"])
        .run()
        .code(3)
        .stderr_contains(&format!("phoenix resume {run} --retry switch"));
    assert!(!out.path().join("ledger").exists(), "nothing ran, `a` included");
    // With the operator's word, the order holds: switch after a and b, verify after it.
    out.then().args(["resume", &run, "--runbook", "v2.yaml", "--retry", "switch", "--yes"]).run().success();
    assert_eq!(ledger(&out), ["start a", "end a", "start b", "end b", "start switch", "end switch", "start verify", "end verify"]);
}

#[test]
fn a_plain_resume_with_rerun_follows_the_same_rules_without_asking() {
    let (out, run) = failed_at_verify();
    // No edit; rerun b: switch (not idempotent) is stale after b and kept, verify waits for b.
    out.then()
        .args(["resume", &run, "--rerun", "b"])
        .run()
        .code(1)
        .stderr_contains("~ b (--rerun: will run again)")
        .stderr_contains("! switch (stale after b, kept: not idempotent; `--rerun switch` to run it again)")
        .stderr_contains("2. verify (after b)");
    assert_eq!(ledger(&out), ["start b", "end b", "start verify"], "verify (still failing in v1) runs after b, switch is not run");
    let ev = events(&out, &run);
    assert!(ev.iter().any(|e| e["kind"] == "operator" && e["action"] == "rerun" && e["detail"] == "b"));
    assert!(!ev.iter().any(|e| e["kind"] == "operator" && e["action"] == "adopt-runbook"), "nothing was adopted");
}
