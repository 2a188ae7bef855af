//! Approval steps: halting without a terminal, `approve` (or `--reject`) then `resume`,
//! approvers, timeouts, and what is recorded about the decision.

use std::time::Duration;

use crate::process::{self, Background, Terminal, lines, step, step_states};
use crate::support::{Output, Test};

const GATED: &str = r#"version: 1
name: gated
lock: gated
steps:
  prepare:
    uses: exec
    with: { script: "echo prepare >> ledger" }
  gate:
    needs: [prepare]
    uses: approval
    with: { message: "Switch DNS to the standby?", approvers: [alice, carol] }
  switch:
    needs: [gate]
    uses: exec
    with: { script: "echo switch >> ledger" }
"#;

/// Runs GATED with `--no-wait`: it halts at the gate with exit 3.
fn halted() -> (Output, String) {
    let out = Test::new().file("r.yaml", GATED).args(["run", "r.yaml", "--no-wait"]).run().code(3);
    let run = process::latest_run(&out.state_dir());
    let out = out
        .stderr_contains("waiting for approval of gate")
        .stderr_contains(&format!("phoenix approve {run} gate"))
        .stderr_contains(&format!("phoenix resume {run}"));
    (out, run)
}

#[test]
fn no_wait_halts_at_an_approval_then_approve_and_resume_finish_the_run() {
    let (out, run) = halted();
    let s = process::status(&out.state_dir(), &run);
    assert_eq!(s["status"], "halted");
    assert_eq!(step_states(&s), ["prepare=succeeded", "gate=waiting", "switch=pending"]);
    out.then().args(["approve", &run, "gate", "--as", "alice", "--comment", "standby is healthy"]).run().success();
    out.then().args(["resume", &run]).run().success();
    // prepare ran once, before the halt; switch once, after the approval.
    assert_eq!(lines(&out.path().join("ledger")), ["prepare", "switch"]);
    let s = process::status(&out.state_dir(), &run);
    assert_eq!(s["status"], "succeeded");
    let gate = step(&s, "gate");
    assert_eq!(gate["status"], "succeeded");
    assert_eq!(gate["approval"]["approved"], true);
    assert_eq!(gate["approval"]["by"], "alice");
    assert_eq!(gate["approval"]["comment"], "standby is healthy");
    assert!(gate["approval"]["at"].as_u64().is_some_and(|t| t > 0), "{gate:#}");
    assert_eq!(gate["outputs"]["approved"], true);
    assert_eq!(gate["outputs"]["by"], "alice");
    // The event log tells who decided, and why.
    let logs = process::json(&out.state_dir(), &["logs", &run, "gate"]);
    assert!(
        logs["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "approval" && e["approved"] == true && e["by"] == "alice" && e["comment"] == "standby is healthy"),
        "{logs:#}"
    );
}

#[test]
fn a_rejection_fails_the_step_and_skips_what_needs_it() {
    let (out, run) = halted();
    out.then().args(["approve", &run, "gate", "--reject", "--as", "carol", "--comment", "lag too high"]).run().success();
    out.then().args(["resume", &run]).run().code(1);
    assert_eq!(lines(&out.path().join("ledger")), ["prepare"]);
    let s = process::status(&out.state_dir(), &run);
    assert_eq!(s["status"], "failed");
    assert_eq!(step_states(&s), ["prepare=succeeded", "gate=failed", "switch=upstream_failed"]);
    let gate = step(&s, "gate");
    assert_eq!(gate["approval"]["approved"], false);
    assert_eq!(gate["approval"]["by"], "carol");
    assert!(gate["error"].as_str().unwrap().contains("rejected by carol: lag too high"), "{gate:#}");
}

#[test]
fn only_the_listed_approvers_may_decide() {
    let (out, run) = halted();
    out.then()
        .args(["approve", &run, "gate", "--as", "mallory"])
        .run()
        .code(2)
        .stderr_contains("`mallory` may not decide on `gate`")
        .stderr_contains("alice, carol");
    // The refused decision was not recorded: the run halts at the gate again.
    out.then().args(["resume", &run]).run().code(3);
    assert_eq!(step(&process::status(&out.state_dir(), &run), "gate")["status"], "waiting");
    out.then().args(["approve", &run, "gate", "--as", "carol"]).run().success();
    out.then().args(["resume", &run]).run().success();
    assert_eq!(step(&process::status(&out.state_dir(), &run), "gate")["approval"]["by"], "carol");
}

#[test]
fn only_a_waiting_step_can_be_decided() {
    let (out, run) = halted();
    out.then().args(["approve", &run, "prepare", "--as", "alice"]).run().code(2).stderr_contains("not waiting for approval");
    out.then().args(["approve", &run, "nosuch", "--as", "alice"]).run().code(2);
    out.then().args(["approve", "no-such-run", "gate", "--as", "alice"]).run().code(2);
}

const TIMED: &str = r#"version: 1
name: timed
steps:
  gate:
    uses: approval
    timeout: 300ms
    with: { message: "Proceed?" }
  after:
    needs: [gate]
    uses: exec
    with: { script: "touch after.ran" }
"#;

#[test]
fn an_approval_whose_timeout_passed_while_halted_is_rejected() {
    let out = Test::new().file("r.yaml", TIMED).args(["run", "r.yaml", "--no-wait"]).run().code(3);
    let run = process::latest_run(&out.state_dir());
    // Let the deadline pass (the step has waited since the run halted).
    std::thread::sleep(Duration::from_millis(600));
    out.then().args(["approve", &run, "gate", "--as", "alice"]).run().code(2).stderr_contains("timed out");
    out.then().args(["resume", &run]).run().code(1);
    assert!(!out.path().join("after.ran").exists(), "a timed-out approval let its dependent run");
    let s = process::status(&out.state_dir(), &run);
    assert_eq!(step_states(&s), ["gate=failed", "after=upstream_failed"]);
    assert!(step(&s, "gate")["error"].as_str().unwrap().contains("timed out after 300ms"), "{s:#}");
}

#[test]
fn an_approval_times_out_while_the_run_is_in_progress() {
    // A second branch keeps the run going until the test has seen the gate fail.
    let yaml = format!(
        "{TIMED}  busy:\n    uses: exec\n    with: {{ script: \"for i in $(seq 600); do [ -e release ] && exit 0; sleep 0.05; done; exit 1\" }}\n"
    );
    let setup = Test::new().file("r.yaml", yaml).args(["validate", "r.yaml"]).run().success();
    let bg = Background::spawn(setup.then().args(["run", "r.yaml", "--no-wait"]).command(), setup.path());
    let state = setup.state_dir();
    process::wait_for("the control socket", Duration::from_secs(30), || state.join("phoenix.sock").exists());
    process::wait_for("the run to be recorded", Duration::from_secs(30), || !process::run_ids(&state).is_empty());
    let run = process::latest_run(&state);
    process::wait_for("the gate to time out", Duration::from_secs(30), || {
        step(&process::status(&state, &run), "gate")["status"] == "failed"
    });
    std::fs::write(setup.path().join("release"), "").unwrap();
    let end = bg.wait(Duration::from_secs(60));
    assert_eq!(end.code, Some(1), "{}", end.stderr);
    assert!(!setup.path().join("after.ran").exists());
    let s = process::status(&state, &run);
    assert_eq!(step_states(&s), ["gate=failed", "after=upstream_failed", "busy=succeeded"]);
    let logs = process::json(&state, &["logs", &run, "gate"]);
    assert!(logs["events"].as_array().unwrap().iter().any(|e| e["kind"] == "approval" && e["approved"] == false && e["by"] == "timeout"));
}

#[test]
fn on_a_terminal_the_run_asks_and_waits_for_an_answer() {
    let out = Test::new().file("r.yaml", GATED).args(["validate", "r.yaml"]).run().success();
    let mut term = Terminal::start(out.path(), &out.state_dir(), "run r.yaml --as alice");
    process::wait_for("the question on the terminal", Duration::from_secs(30), || term.screen().contains("approve `gate`?"));
    assert!(term.screen().contains("Switch DNS to the standby?"), "{}", term.screen());
    term.type_line("y");
    assert_eq!(term.wait(), Some(0));
    assert_eq!(lines(&out.path().join("ledger")), ["prepare", "switch"]);
    let s = process::status(&out.state_dir(), &process::latest_run(&out.state_dir()));
    assert_eq!(step(&s, "gate")["approval"]["by"], "alice");
    assert_eq!(step(&s, "gate")["approval"]["comment"], "answered at the terminal");
}

#[test]
fn on_a_terminal_an_approval_from_elsewhere_ends_the_wait() {
    let out = Test::new().file("r.yaml", GATED).args(["validate", "r.yaml"]).run().success();
    let term = Terminal::start(out.path(), &out.state_dir(), "run r.yaml --as alice");
    process::wait_for("the question on the terminal", Duration::from_secs(30), || term.screen().contains("approve `gate`?"));
    let run = process::latest_run(&out.state_dir());
    out.then().args(["approve", &run, "gate", "--as", "carol", "--comment", "from my laptop"]).run().success();
    // Nobody answers at the terminal; the run still finishes and the process ends.
    assert_eq!(term.wait(), Some(0));
    let s = process::status(&out.state_dir(), &run);
    assert_eq!(s["status"], "succeeded");
    assert_eq!(step(&s, "gate")["approval"]["by"], "carol");
}

#[test]
fn on_a_terminal_an_answer_from_someone_not_an_approver_is_refused_aloud() {
    let out = Test::new().file("r.yaml", GATED).args(["validate", "r.yaml"]).run().success();
    let mut term = Terminal::start(out.path(), &out.state_dir(), "run r.yaml --as mallory");
    process::wait_for("the question on the terminal", Duration::from_secs(30), || term.screen().contains("approve `gate`?"));
    term.type_line("y");
    process::wait_for("the refusal on the terminal", Duration::from_secs(30), || term.screen().contains("your answer was not recorded"));
    assert!(term.screen().contains("`mallory` may not decide on `gate`: approvers are alice, carol"), "{}", term.screen());
    // Still waiting: an approver decides from elsewhere.
    let run = process::latest_run(&out.state_dir());
    assert_eq!(step(&process::status(&out.state_dir(), &run), "gate")["status"], "waiting");
    out.then().args(["approve", &run, "gate", "--as", "alice"]).run().success();
    assert_eq!(term.wait(), Some(0));
    assert_eq!(step(&process::status(&out.state_dir(), &run), "gate")["approval"]["by"], "alice");
}

#[test]
fn a_decision_on_a_halted_run_shows_at_once_and_a_second_one_is_refused_naming_the_first() {
    let (out, run) = halted();
    out.then().args(["approve", &run, "gate", "--as", "alice", "--comment", "DNS TTL checked"]).run().success();

    // Before any resume: the gate shows its decision, the header no longer asks.
    let s = process::status(&out.state_dir(), &run);
    let gate = step(&s, "gate");
    assert_eq!(gate["status"], "waiting", "{gate:#}");
    assert_eq!(gate["approval"]["by"], "alice");
    assert_eq!(gate["approval"]["comment"], "DNS TTL checked");
    assert!(gate["approval"]["via"].as_str().is_some_and(|v| v.starts_with("cli, uid ")), "{gate:#}");
    assert_eq!(gate["approval_applied"], false);
    let decided = gate["decided"].as_str().unwrap();
    assert!(decided.starts_with("approved by alice: DNS TTL checked (at "), "{decided}");
    assert!(decided.ends_with("applied when the run resumes"), "{decided}");
    out.then()
        .args(["status", &run])
        .run()
        .success()
        .stdout_contains("approved by alice: DNS TTL checked (at ")
        .stdout_contains(&format!("halted: gate decided; continue it with `phoenix resume {run}`"))
        .stdout_lacks("waiting for approval")
        .stdout_lacks("phoenix approve");

    // A second decision, either way, is refused and names the first; nothing changes.
    for second in [vec!["--as", "carol", "--comment", "second"], vec!["--reject", "--as", "carol", "--comment", "second"]] {
        let args: Vec<&str> = ["approve", run.as_str(), "gate"].into_iter().chain(second).collect();
        out.then()
            .args(args)
            .run()
            .code(2)
            .stderr_contains("`gate` was already approved by alice: DNS TTL checked (at ")
            .stderr_contains("a second decision is not recorded");
    }
    assert_eq!(step(&process::status(&out.state_dir(), &run), "gate")["approval"]["comment"], "DNS TTL checked");
    // The report, before the resume: the decision with its comment, under its step, at its time.
    let md = out.then().args(["report", &run, "--format", "md"]).run().success().stdout().to_string();
    assert!(md.contains("| approval approved by alice (gate: DNS TTL checked) |"), "{md}");
    assert!(md.contains("applied when the run resumes |"), "{md}");
    assert!(md.contains("gate decided since. Continue it with `phoenix resume"), "{md}");
    assert!(!md.contains("second"), "{md}");

    // The resume applies the first decision, with its comment, and a decision after it is
    // refused the same way.
    out.then().args(["resume", &run]).run().success();
    let gate = step(&process::status(&out.state_dir(), &run), "gate").clone();
    assert_eq!(gate["status"], "succeeded");
    assert_eq!((gate["approval"]["by"].as_str(), gate["approval"]["comment"].as_str()), (Some("alice"), Some("DNS TTL checked")));
    assert_eq!(gate["approval_applied"], true);
    out.then()
        .args(["approve", &run, "gate", "--reject", "--as", "carol"])
        .run()
        .code(2)
        .stderr_contains("`gate` was already approved by alice: DNS TTL checked (at ");
    let md = out.then().args(["report", &run, "--format", "md"]).run().success().stdout().to_string();
    assert!(md.contains("approved by alice: DNS TTL checked"), "{md}");
    assert!(!md.contains("second"), "{md}");
}

#[test]
fn approving_a_mistyped_step_names_the_waiting_steps_and_suggests_the_closest() {
    let (out, run) = halted();
    out.then()
        .args(["approve", &run, "gaet", "--as", "alice"])
        .run()
        .code(2)
        .stderr_contains(&format!("run {run} has no step `gaet` (waiting for approval: `gate`); did you mean `gate`?"));
    // Nothing was recorded: the gate still asks.
    assert!(step(&process::status(&out.state_dir(), &run), "gate")["decided"].is_null());
}

#[test]
fn a_run_in_progress_refuses_a_second_decision_and_a_mistyped_step_over_its_socket() {
    // A second branch keeps the run (and its socket) alive after the gate is decided.
    let yaml = format!(
        "{GATED}  busy:\n    uses: exec\n    with: {{ script: \"for i in $(seq 1200); do [ -e release ] && exit 0; sleep 0.05; done; exit 1\" }}\n"
    );
    let setup = Test::new().file("r.yaml", yaml).args(["validate", "r.yaml"]).run().success();
    let bg = Background::spawn(setup.then().args(["run", "r.yaml", "--no-wait"]).command(), setup.path());
    let state = setup.state_dir();
    process::wait_for("the control socket", Duration::from_secs(30), || state.join("phoenix.sock").exists());
    process::wait_for("the run to be recorded", Duration::from_secs(30), || !process::run_ids(&state).is_empty());
    let run = process::latest_run(&state);
    process::wait_for("the gate to wait", Duration::from_secs(30), || step(&process::status(&state, &run), "gate")["status"] == "waiting");
    setup
        .then()
        .args(["approve", &run, "gat", "--as", "alice"])
        .run()
        .code(2)
        .stderr_contains("has no step `gat` (waiting for approval: `gate`); did you mean `gate`?");
    setup.then().args(["approve", &run, "gate", "--as", "alice", "--comment", "DNS TTL checked"]).run().success();
    setup
        .then()
        .args(["approve", &run, "gate", "--reject", "--as", "carol", "--comment", "second"])
        .run()
        .code(2)
        .stderr_contains("`gate` was already approved by alice: DNS TTL checked (at ")
        .stderr_contains("via socket, uid ");
    std::fs::write(setup.path().join("release"), "").unwrap();
    let end = bg.wait(Duration::from_secs(60));
    assert_eq!(end.code, Some(0), "{}", end.stderr);
    let gate = step(&process::status(&state, &run), "gate").clone();
    assert_eq!((gate["approval"]["by"].as_str(), gate["approval"]["comment"].as_str()), (Some("alice"), Some("DNS TTL checked")));
    assert_eq!(lines(&setup.path().join("ledger")), ["prepare", "switch"]);
}

#[test]
fn a_refusal_shows_the_first_comment_as_text_not_terminal_escapes() {
    let (out, run) = halted();
    out.then().args(["approve", &run, "gate", "--as", "alice", "--comment", "ok\u{1b}]0;pwned\u{7}\u{1b}[2J"]).run().success();
    let refused = out.then().args(["approve", &run, "gate", "--as", "carol"]).run().code(2);
    assert!(!refused.stderr().contains('\u{1b}') && !refused.stderr().contains('\u{7}'), "{:?}", refused.stderr());
    refused.stderr_contains("`gate` was already approved by alice: ok");
    // Recorded as typed: the escape is only neutralised on the way to the terminal.
    assert_eq!(step(&process::status(&out.state_dir(), &run), "gate")["approval"]["comment"], "ok\u{1b}]0;pwned\u{7}\u{1b}[2J");
}
