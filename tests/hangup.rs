//! A terminal that goes away (an SSH session that drops) does not stop a run: Phoenix gets
//! SIGHUP, goes on without the terminal, and records why nothing more was shown; a question
//! waiting at the terminal is not taken as a "no".
//!
//! The terminal is a real pseudo-terminal: util-linux's `script` runs `phoenix` in one, and
//! killing `script` hangs it up, as sshd does when a connection drops.

use std::process::Command;
use std::time::Duration;

use crate::process::{self, Background, lines, step};
use crate::support::{Output, Test};

/// `phoenix ARGS` in a pseudo-terminal of its own, with the test's environment.
fn in_a_terminal(out: &Output, args: &str) -> Background {
    let phoenix = out.then().command();
    let mut cmd = Command::new("script");
    cmd.args(["-qec", &format!("exec '{}' {args}", process::phoenix_bin()), "/dev/null"]);
    for (k, v) in phoenix.get_envs() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    cmd.current_dir(out.path()).env("TERM", "xterm");
    Background::spawn(cmd, out.path())
}

/// `phoenix run` of `yaml` (checked first) in a pseudo-terminal of its own.
fn run_in_a_terminal(yaml: &str) -> (Output, Background) {
    let out = Test::new().file("r.yaml", yaml).args(["validate", "r.yaml"]).run().success();
    let terminal = in_a_terminal(&out, "run r.yaml");
    (out, terminal)
}

/// Kills the terminal, and returns the `phoenix` that ran in it (still running, or not).
struct Orphan(u32);

impl Drop for Orphan {
    fn drop(&mut self) {
        // A test that failed half-way leaves nothing running.
        process::signal("KILL", &[self.0]);
    }
}

fn hang_up(terminal: Background) -> Orphan {
    let phoenix = process::descendants(terminal.pid())
        .into_iter()
        .find(|&pid| std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "phoenix"))
        .expect("phoenix runs in the terminal");
    // Reaped before it is dropped: a terminal not yet seen dead would count as a test that
    // failed half-way, whose whole tree (phoenix too) is killed.
    terminal.kill_alone();
    Orphan(phoenix)
}

fn gone(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |s| s.contains(") Z "))
}

#[test]
fn a_dropped_terminal_does_not_stop_the_run() {
    let (out, terminal) = run_in_a_terminal(
        r#"version: 1
name: away
steps:
  long:
    uses: exec
    with: { script: "echo begin >> ledger; sleep 1; echo end >> ledger" }
  after:
    needs: [long]
    uses: exec
    with: { script: "echo after >> ledger" }
"#,
    );
    process::wait_for("`long` to begin", Duration::from_secs(30), || lines(&out.path().join("ledger")).contains(&"begin".to_string()));
    let phoenix = hang_up(terminal);
    process::wait_for("phoenix to finish the run", Duration::from_secs(30), || gone(phoenix.0));

    assert_eq!(lines(&out.path().join("ledger")), ["begin", "end", "after"], "every step ran once, to its end");
    let run = process::latest_run(&out.state_dir());
    let s = process::status(&out.state_dir(), &run);
    assert_eq!(s["status"], "succeeded", "{s:#}");
    let logs = process::json(&out.state_dir(), &["logs", &run]);
    assert!(
        logs["events"].as_array().unwrap().iter().any(|e| e["kind"] == "note"
            && e["text"].as_str().unwrap_or("").starts_with("the terminal went away (SIGHUP): the run goes on without it")),
        "{logs:#}"
    );
}

#[test]
fn a_question_at_a_terminal_that_went_away_waits_for_phoenix_approve() {
    let (out, terminal) = run_in_a_terminal(
        r#"version: 1
name: asked
steps:
  gate:
    uses: approval
    with: { message: "Switch DNS to the standby?" }
  switch:
    needs: [gate]
    uses: exec
    with: { script: "echo switched >> ledger" }
"#,
    );
    process::wait_for("the question at the terminal", Duration::from_secs(30), || {
        out.state_dir().exists()
            && process::run_ids(&out.state_dir())
                .first()
                .is_some_and(|run| step(&process::status(&out.state_dir(), run), "gate")["status"] == "waiting")
    });
    let run = process::latest_run(&out.state_dir());
    let phoenix = hang_up(terminal);
    // The end of the terminal's input is no answer: the step still waits, in the same process.
    std::thread::sleep(Duration::from_millis(500));
    assert!(!gone(phoenix.0), "phoenix went on waiting");
    let s = process::status(&out.state_dir(), &run);
    assert_eq!(step(&s, "gate")["status"], "waiting", "a hang-up is not a rejection: {s:#}");

    out.then().args(["approve", &run, "gate", "--comment", "back on the VPN"]).run().success();
    process::wait_for("phoenix to finish the run", Duration::from_secs(30), || gone(phoenix.0));
    let s = process::status(&out.state_dir(), &run);
    assert_eq!(s["status"], "succeeded", "{s:#}");
    assert_eq!(step(&s, "gate")["outputs"]["comment"], "back on the VPN");
    assert_eq!(lines(&out.path().join("ledger")), ["switched"]);
}
