//! The `exec` plugin through `phoenix run`: argv and scripts, stdin/env/dir, parsed JSON,
//! bounded output tails, timeouts that stop whole process groups, why a program did not
//! start, and secrets that never reach the store or the screen (quoting: exec_shell_safety.rs).

use std::time::Duration;

use crate::process::{self, lines, step};
use crate::support::{Output, Test};

fn status(out: &Output) -> serde_json::Value {
    process::status(&out.state_dir(), &process::latest_run(&out.state_dir()))
}

/// No live process has `marker` in its command line (polled: a killed process takes a
/// moment to go; the limit only guards against a hang).
fn assert_all_gone(marker: &str) {
    process::wait_for(&format!("every process with `{marker}` to be gone"), Duration::from_secs(20), || {
        process::alive_with_marker(marker).is_empty()
    });
}

#[test]
fn a_timeout_stops_the_steps_whole_process_group() {
    let marker = format!("1000.{}", process::unique());
    let yaml = format!(
        r#"version: 1
name: timeouts
steps:
  hang:
    uses: exec
    timeout: 300ms
    with:
      script: |
        bash -c 'sleep {marker}; echo never' &
        sleep {marker} &
        touch children.started
        sleep {marker}
"#
    );
    let out = Test::new().file("r.yaml", yaml).args(["run", "r.yaml"]).run().code(1);
    assert!(out.path().join("children.started").exists(), "the step never started its children");
    let s = status(&out);
    let hang = step(&s, "hang");
    assert_eq!(hang["status"], "failed");
    assert!(hang["error"].as_str().unwrap().contains("timed out after 300ms"), "{hang:#}");
    // The shell, its background job, and the job's own child: all of them are gone.
    assert_all_gone(&marker);
}

#[test]
fn a_timeout_kills_what_ignores_sigterm_after_the_grace_period() {
    let marker = format!("1000.{}", process::unique());
    let yaml = format!(
        r#"version: 1
name: stubborn
steps:
  stubborn:
    uses: exec
    timeout: 200ms
    with:
      script: |
        trap '' TERM
        sleep {marker} &
        touch started
        while true; do wait || true; done
"#
    );
    let out = Test::new().file("r.yaml", yaml).args(["run", "r.yaml"]).run().code(1);
    assert!(out.path().join("started").exists());
    assert!(step(&status(&out), "stubborn")["error"].as_str().unwrap().contains("timed out"));
    assert_all_gone(&marker);
}

#[test]
fn retries_after_a_timeout_count_as_attempts() {
    let out = Test::new()
        .file(
            "r.yaml",
            r#"version: 1
name: slow-then-fast
steps:
  slow_once:
    uses: exec
    timeout: 300ms
    retry: { attempts: 2, backoff: fixed, delay: 10ms }
    with:
      script: |
        echo try >> tries
        [ "$(wc -l < tries)" -ge 2 ] || sleep 1000
"#,
        )
        .args(["run", "r.yaml"])
        .run()
        .success();
    assert_eq!(lines(&out.path().join("tries")).len(), 2);
    assert_eq!(step(&status(&out), "slow_once")["attempts"], 2);
}

#[test]
fn stdin_env_and_dir_reach_the_program() {
    let out = Test::new()
        .file("sub/marker.txt", "here\n")
        .file(
            "r.yaml",
            r#"version: 1
name: io
params:
  replicas: { type: int, default: 3 }
  verbose: { type: bool, default: true }
steps:
  stdin:
    uses: exec
    with: { cmd: [cat], stdin: "line one\nline two\n" }
  env:
    uses: exec
    with:
      env: { GREETING: hello, REPLICAS: "{{ params.replicas }}" }
      script: echo "$GREETING $REPLICAS $PHOENIX_STEP_ID"
  dir:
    uses: exec
    with: { cmd: [cat, marker.txt], dir: sub }
  typed_argv:
    uses: exec
    with: { cmd: [echo, "{{ params.replicas }}", "{{ params.verbose }}"] }
  json_stdin:
    needs: [parse]
    uses: exec
    with: { cmd: [cat], stdin: "{{ steps.parse.outputs.json }}" }
  parse:
    uses: exec
    with: { cmd: [echo, '{"zones": ["a", "b"], "lag": 1.5}'], parse: json }
"#,
        )
        .args(["run", "r.yaml"])
        .run()
        .success();
    let s = status(&out);
    let stdout = |id: &str| step(&s, id)["outputs"]["stdout"].as_str().unwrap().to_string();
    assert_eq!(stdout("stdin"), "line one\nline two\n");
    assert_eq!(stdout("env"), "hello 3 env\n");
    assert_eq!(stdout("dir"), "here\n");
    // A whole-expression template keeps its type; an argv takes its text.
    assert_eq!(stdout("typed_argv"), "3 true\n");
    assert_eq!(step(&s, "parse")["outputs"]["json"], serde_json::json!({"zones": ["a", "b"], "lag": 1.5}));
    let piped: serde_json::Value = serde_json::from_str(&stdout("json_stdin")).unwrap();
    assert_eq!(piped, serde_json::json!({"zones": ["a", "b"], "lag": 1.5}));
}

#[test]
fn a_program_that_cannot_start_says_why_in_terms_of_the_step() {
    let out = Test::new()
        .file(
            "r.yaml",
            r#"version: 1
name: nostart
steps:
  no_dir:
    uses: exec
    retry: { attempts: 3, delay: 10ms }
    with: { cmd: [ls], dir: missing }
  no_program:
    uses: exec
    with: { cmd: [phoenix-no-such-program] }
  no_file:
    uses: exec
    with: { cmd: [./missing.sh] }
  not_executable:
    uses: exec
    with: { cmd: [./plain.sh] }
"#,
        )
        .file("plain.sh", "echo hi\n")
        .args(["run", "r.yaml"])
        .run()
        .code(1);
    let s = status(&out);
    let error = |id: &str| step(&s, id)["error"].as_str().unwrap_or_default().to_string();
    let here = out.path().canonicalize().unwrap().display().to_string();
    assert_eq!(error("no_dir"), format!("could not start `ls`: its directory `missing` (`dir`) does not exist (relative to {here})"));
    // Not found is not transient: one attempt, however many the retry allows.
    assert_eq!(step(&s, "no_dir")["attempts"], 1);
    assert_eq!(error("no_program"), "could not start `phoenix-no-such-program`: no such program on PATH (give its path, or install it)");
    assert_eq!(error("no_file"), format!("could not start `./missing.sh`: no such file (relative to {here})"));
    assert!(error("not_executable").contains("permission denied (is it executable? `chmod +x ./plain.sh`)"), "{s:#}");
}

#[test]
fn parse_json_fails_the_step_on_anything_else_without_retrying() {
    let out = Test::new()
        .file(
            "r.yaml",
            r#"version: 1
name: notjson
steps:
  garbled:
    uses: exec
    retry: { attempts: 3, delay: 10ms }
    with: { script: "echo tried >> tries; echo 'not {json'", parse: json }
"#,
        )
        .args(["run", "r.yaml"])
        .run()
        .code(1);
    let s = status(&out);
    assert!(step(&s, "garbled")["error"].as_str().unwrap().contains("not JSON"), "{s:#}");
    // Bad output is not a transient failure: one attempt only.
    assert_eq!(lines(&out.path().join("tries")).len(), 1);
}

#[test]
fn outputs_keep_bounded_tails_while_logs_keep_every_line() {
    let out = Test::new()
        .file(
            "r.yaml",
            r#"version: 1
name: chatty
steps:
  chatty:
    uses: exec
    with:
      tail_bytes: 64
      script: |
        for i in $(seq 1 500); do echo "out line $i"; echo "err line $i" >&2; done
"#,
        )
        .args(["run", "r.yaml"])
        .run()
        .success();
    let s = status(&out);
    let o = &step(&s, "chatty")["outputs"];
    // What is kept is the end, at most 64 bytes of it (after a note of what was cut).
    let kept = |s: &str| s.split_once("earlier bytes not kept]\n").map_or(s, |(_, rest)| rest).to_string();
    let (stdout, stderr) = (kept(o["stdout"].as_str().unwrap()), kept(o["stderr"].as_str().unwrap()));
    assert!(stdout.len() <= 64 && stdout.ends_with("out line 500\n"), "{stdout:?}");
    assert!(stderr.len() <= 64 && stderr.ends_with("err line 500\n"), "{stderr:?}");
    assert!(!stdout.contains("out line 1\n") && !stderr.contains("err line 1\n"));
    let logs = process::json(&out.state_dir(), &["logs", s["id"].as_str().unwrap(), "chatty"]);
    let texts: Vec<&str> = logs["lines"].as_array().unwrap().iter().map(|l| l["text"].as_str().unwrap()).collect();
    assert_eq!(texts.iter().filter(|t| t.starts_with("out line")).count(), 500);
    assert_eq!(texts.iter().filter(|t| t.starts_with("err line")).count(), 500);
    assert!(texts.contains(&"out line 1") && texts.contains(&"err line 500"));
}

#[test]
fn exit_codes_are_outputs_and_ok_exit_codes_widen_success() {
    let out = Test::new()
        .file(
            "r.yaml",
            r#"version: 1
name: codes
steps:
  three:
    uses: exec
    with: { script: "exit 3", ok_exit_codes: [0, 3] }
  killed:
    uses: exec
    continue_on_error: true
    with: { script: "kill -9 $$" }
  missing:
    uses: exec
    continue_on_error: true
    with: { cmd: [/nonexistent/program] }
"#,
        )
        .args(["run", "r.yaml"])
        .run()
        .success();
    let s = status(&out);
    assert_eq!(step(&s, "three")["status"], "succeeded");
    assert_eq!(step(&s, "three")["outputs"]["exit_code"], 3);
    assert_eq!(step(&s, "killed")["status"], "failed");
    assert_eq!(step(&s, "killed")["outputs"]["exit_code"], 137);
    assert!(step(&s, "missing")["error"].as_str().unwrap().contains("/nonexistent/program"), "{s:#}");
}

const SECRET: &str = "hunter2-Pa55w0rd-zq81";

#[test]
fn a_secret_never_reaches_status_logs_events_or_the_screen() {
    let t = Test::new()
        .file("token.txt", "file-secret-77xq\n")
        .file(
            "r.yaml",
            r#"version: 1
name: secretive
secrets:
  db_password: { env: PHX_TEST_DB_PASSWORD }
  token: { file: token.txt }
steps:
  echo_it:
    uses: exec
    with: { script: "echo 'the password is {{ secrets.db_password | safe }}'; echo {{ secrets.token }} >&2" }
  via_env:
    uses: exec
    with:
      env: { PW: "{{ secrets.db_password }}" }
      cmd: [printenv, PW]
  as_json:
    uses: exec
    with: { cmd: [echo, '{"pw": "{{ secrets.db_password }}"}'], parse: json }
  fail_with_it:
    uses: exec
    continue_on_error: true
    with: { script: "echo \"cannot log in with {{ secrets.db_password | safe }}\" >&2; exit 1" }
outputs:
  leaked: "{{ steps.via_env.outputs.stdout }}"
"#,
        )
        .env("PHX_TEST_DB_PASSWORD", SECRET);
    let out = t.args(["run", "r.yaml", "--output", "json"]).run().success();
    let run = process::latest_run(&out.state_dir());
    let everything = [
        ("run stdout", out.stdout().to_string()),
        ("run stderr", out.stderr().to_string()),
        ("status --output json", process::json(&out.state_dir(), &["status", &run]).to_string()),
        ("logs --output json", process::json(&out.state_dir(), &["logs", &run]).to_string()),
        ("logs", out.then().args(["logs", &run]).run().success().stdout().to_string()),
        ("status", out.then().args(["status", &run]).run().success().stdout().to_string()),
    ];
    for (what, text) in &everything {
        assert!(!text.contains(SECRET), "the env secret appears in {what}:\n{text}");
        assert!(!text.contains("file-secret-77xq"), "the file secret appears in {what}:\n{text}");
    }
    // Not vacuous: the steps did print it, and what was captured shows the redaction.
    let s = process::status(&out.state_dir(), &run);
    assert_eq!(step(&s, "echo_it")["outputs"]["stdout"], "the password is ***\n");
    assert_eq!(step(&s, "via_env")["outputs"]["stdout"], "***\n");
    assert_eq!(step(&s, "as_json")["outputs"]["json"]["pw"], "***");
    assert!(step(&s, "fail_with_it")["error"].as_str().unwrap().contains("cannot log in with ***"), "{s:#}");
    assert_eq!(s["outputs"]["leaked"], "***\n");
    assert!(everything[3].1.contains("***"));
}

#[test]
fn a_missing_secret_fails_only_the_step_that_uses_it() {
    let out = Test::new()
        .file(
            "r.yaml",
            r#"version: 1
name: nosecret
secrets:
  absent: { env: PHX_TEST_NOT_SET_ANYWHERE }
steps:
  needs_it:
    uses: exec
    with: { cmd: [echo, "{{ secrets.absent }}"] }
  fine:
    uses: exec
    with: { cmd: [touch, fine.ran] }
"#,
        )
        .args(["run", "r.yaml"])
        .run()
        .code(1);
    assert!(out.path().join("fine.ran").exists());
    let s = status(&out);
    assert!(step(&s, "needs_it")["error"].as_str().unwrap().contains("absent"), "{s:#}");
}
