//! Operating a run from another process while it is in progress: the owner of the store
//! answers `status`, `runs`, `logs`, `approve` and `cancel` over `STATE/phoenix.sock`
//! (mode 0600). And stopping a run with Ctrl-C or SIGTERM: exit 130, the running step is
//! stopped and checkpointed, and `resume` finishes the run.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::Duration;

use crate::process::{self, Background, count, lines, step, step_states};
use crate::support::{Output, Test};

/// `slow` runs until the file `release` appears; its `sleep` carries a marker so the test
/// can tell whether its processes are still alive.
fn in_progress(marker: &str) -> String {
    format!(
        r#"version: 1
name: live
lock: live
steps:
  first:
    uses: exec
    with: {{ script: "echo first >> ledger; echo hello from first" }}
  slow:
    needs: [first]
    uses: exec
    with:
      script: |
        echo slow >> ledger
        touch slow.started
        while [ ! -e release ]; do sleep {marker}; done
  gate:
    uses: approval
    with: {{ message: "carry on?", approvers: [ops] }}
  after:
    needs: [slow, gate]
    uses: exec
    with: {{ script: "echo after >> ledger" }}
"#
    )
}

struct Live {
    setup: Output,
    bg: Background,
    run: String,
    marker: String,
}

impl Live {
    fn state(&self) -> PathBuf {
        self.setup.state_dir()
    }

    fn release(&self) {
        std::fs::write(self.setup.path().join("release"), "").unwrap();
    }
}

/// Starts the run in the background and waits until `slow` is running.
fn start() -> Live {
    // A short sleep, so a released step ends quickly; unique, so its processes can be found.
    let marker = format!("0.0{}", process::unique());
    let setup = Test::new().file("r.yaml", in_progress(&marker)).args(["validate", "r.yaml"]).run().success();
    let bg = Background::spawn(setup.then().args(["run", "r.yaml", "--no-wait"]).command(), setup.path());
    process::wait_for("slow to start", Duration::from_secs(30), || setup.path().join("slow.started").exists());
    let run = process::latest_run(&setup.state_dir());
    Live { setup, bg, run, marker }
}

#[test]
fn status_runs_and_logs_answer_while_a_run_is_in_progress() {
    let live = start();
    let sock = live.state().join("phoenix.sock");
    assert_eq!(std::fs::metadata(&sock).unwrap().permissions().mode() & 0o777, 0o600, "the socket is for its owner only");

    let s = process::status(&live.state(), &live.run);
    assert_eq!(s["status"], "running");
    assert_eq!(step_states(&s), ["first=succeeded", "slow=running", "gate=waiting", "after=pending"]);
    let runs = process::json(&live.state(), &["runs"]);
    assert_eq!(runs["runs"][0]["id"], live.run.as_str());
    assert_eq!(runs["runs"][0]["status"], "running");
    let logs = process::json(&live.state(), &["logs", &live.run, "first"]);
    assert!(logs["lines"].as_array().unwrap().iter().any(|l| l["text"] == "hello from first"), "{logs:#}");
    // The text forms go through the socket too.
    let status = live.setup.then().args(["status", &live.run]).run().success();
    let slow = status.stdout().lines().find(|l| l.starts_with("slow ")).unwrap_or_default().to_string();
    assert!(slow.contains("running") && slow.contains("started ") && slow.ends_with(" ago"), "how long it has run: {slow:?}");
    live.setup.then().args(["runs"]).run().success().stdout_contains(&live.run);
    live.setup.then().args(["logs", &live.run]).run().success().stdout_contains("hello from first");
    live.setup.then().args(["status", "no-such-run"]).run().code(2);

    // Approved while `slow` still runs, so that the run never halts for want of a decision
    // (it runs with --no-wait); then `slow` is let go.
    live.setup.then().args(["approve", &live.run, "gate", "--as", "ops"]).run().success();
    live.release();
    let Live { setup, bg, run, .. } = live;
    let end = bg.wait(Duration::from_secs(60));
    assert_eq!(end.code, Some(0), "{}", end.stderr);
    assert!(!sock.exists(), "the socket is removed when its owner ends");
    assert_eq!(process::status(&setup.state_dir(), &run)["status"], "succeeded");
}

#[test]
fn logs_follow_prints_as_the_run_goes_and_ends_with_it() {
    let live = start();
    let follower = Background::spawn(live.setup.then().args(["logs", &live.run, "--follow"]).command(), live.setup.path());
    live.setup.then().args(["logs", &live.run, "slo", "-f"]).run().code(2).stderr_contains("did you mean `slow`?");
    live.setup.then().args(["logs", &live.run, "-f", "--output", "json"]).run().code(2);
    live.setup.then().args(["approve", &live.run, "gate", "--as", "ops"]).run().success();
    live.release();
    let end = follower.wait(Duration::from_secs(60));
    assert_eq!(end.code, Some(0), "the run succeeded: {}", end.stderr);
    let out = &end.stdout;
    let at = |s: &str| out.find(s).unwrap_or_else(|| panic!("{s:?} not followed:\n{out}"));
    assert!(at("[first] hello from first") < at("✓ first") && at("✓ first") < at("▶ slow"), "in time order:\n{out}");
    assert!(at("▶ slow") < at("✓ slow") && at("✓ slow") < at("▶ after") && at("▶ after") < at("✓ after"), "{out}");
    assert!(out.trim_end().ends_with(&format!("run {} succeeded", live.run)), "{out}");
    let Live { bg, .. } = live;
    assert_eq!(bg.wait(Duration::from_secs(60)).code, Some(0));
}

#[test]
fn approve_answers_the_running_process() {
    let live = start();
    live.setup.then().args(["approve", &live.run, "gate", "--as", "intruder"]).run().code(2).stderr_contains("may not decide");
    live.setup
        .then()
        .args(["approve", &live.run, "gate", "--as", "ops", "--comment", "go ahead"])
        .run()
        .success()
        .stdout_contains("the run continues");
    // Applied at once, by the owner: visible before the run ends.
    let s = process::status(&live.state(), &live.run);
    assert_eq!(step(&s, "gate")["status"], "succeeded");
    assert_eq!(step(&s, "gate")["approval"]["by"], "ops");
    assert_eq!(step(&s, "gate")["approval"]["comment"], "go ahead");
    assert_eq!(s["status"], "running");
    live.release();
    let ledger_path = live.setup.path().join("ledger");
    let end = live.bg.wait(Duration::from_secs(60));
    assert_eq!(end.code, Some(0), "{}", end.stderr);
    assert_eq!(lines(&ledger_path), ["first", "slow", "after"]);
}

#[test]
fn cancel_stops_the_running_step_and_releases_the_lock() {
    let live = start();
    live.setup.then().args(["cancel", &live.run]).run().success().stdout_contains("cancelling");
    let Live { setup, bg, run, marker } = live;
    let end = bg.wait(Duration::from_secs(60));
    assert_eq!(end.code, Some(1), "a cancelled run does not succeed: {}", end.stderr);
    process::wait_for("the step's processes to go", Duration::from_secs(20), || process::alive_with_marker(&marker).is_empty());
    let s = process::status(&setup.state_dir(), &run);
    assert_eq!(s["status"], "cancelled");
    assert_eq!(step_states(&s), ["first=succeeded", "slow=cancelled", "gate=cancelled", "after=cancelled"]);
    let logs = process::json(&setup.state_dir(), &["logs", &run]);
    assert!(logs["events"].as_array().unwrap().iter().any(|e| e["kind"] == "operator" && e["action"] == "cancel"));
    // The lock is free: a new run of the same runbook starts (and halts at its gate).
    std::fs::write(setup.path().join("release"), "").unwrap();
    setup.then().args(["run", "r.yaml", "--no-wait"]).run().code(3);
}

#[test]
fn a_second_process_cannot_start_a_run_in_a_busy_state_directory() {
    let live = start();
    live.setup.then().args(["run", "r.yaml", "--no-wait"]).run().code(2).stderr_contains("another phoenix process");
    assert_eq!(process::run_ids(&live.state()), [live.run.as_str()]);
    live.setup.then().args(["cancel", &live.run]).run().success();
}

fn interrupted_then_resumed(signal: &str) {
    let live = start();
    process::signal(signal, &[live.bg.pid()]);
    let Live { setup, bg, run, marker } = live;
    let end = bg.wait(Duration::from_secs(60));
    assert_eq!(end.code, Some(130), "{}", end.stderr);
    assert!(end.stderr.contains(&format!("phoenix resume {run}")), "{}", end.stderr);
    process::wait_for("the step's processes to go", Duration::from_secs(20), || process::alive_with_marker(&marker).is_empty());
    let s = process::status(&setup.state_dir(), &run);
    assert_eq!(s["status"], "halted");
    assert_eq!(step(&s, "slow")["status"], "cancelled");
    assert!(step(&s, "slow")["error"].as_str().unwrap().contains("interrupted"), "{s:#}");
    assert_eq!(step(&s, "after")["status"], "pending", "nothing new starts after the signal");

    std::fs::write(setup.path().join("release"), "").unwrap();
    setup.then().args(["approve", &run, "gate", "--as", "ops"]).run().success();
    setup.then().args(["resume", &run]).run().success();
    let l = lines(&setup.path().join("ledger"));
    assert_eq!((count(&l, "first"), count(&l, "slow"), count(&l, "after")), (1, 2, 1), "{l:?}");
    assert_eq!(process::status(&setup.state_dir(), &run)["status"], "succeeded");
}

#[test]
fn ctrl_c_checkpoints_exits_130_and_resume_finishes() {
    interrupted_then_resumed("INT");
}

#[test]
fn sigterm_checkpoints_exits_130_and_resume_finishes() {
    interrupted_then_resumed("TERM");
}

#[test]
fn a_second_ctrl_c_kills_a_step_that_ignores_sigterm_at_once() {
    // `sh` ignores SIGTERM: only SIGKILL ends it. Its `sleep` carries the marker.
    let marker = format!("0.0{}", process::unique());
    let yaml = format!(
        r#"version: 1
name: stubborn
steps:
  stubborn:
    uses: exec
    with:
      cmd: [sh, -c, "trap '' TERM; echo stubborn >> ledger; touch started; while [ ! -e release ]; do sleep {marker}; done"]
"#
    );
    let (setup, bg) = started(&yaml, "started");
    let run = process::latest_run(&setup.state_dir());
    process::signal("INT", &[bg.pid()]);
    process::wait_for("the first Ctrl-C to be taken", Duration::from_secs(20), || bg.stderr_so_far().contains("Ctrl-C again"));
    process::signal("INT", &[bg.pid()]);
    // Well inside the 10 s grace period the first Ctrl-C gave the step.
    let end = bg.wait(Duration::from_secs(5));
    assert_eq!(end.code, Some(130), "{}", end.stderr);
    assert!(end.stderr.contains("forced: killed 1 step process(es)"), "{}", end.stderr);
    // SIGKILL is sent before phoenix exits; the processes end a moment later.
    process::wait_for("nothing of the step to run on", Duration::from_secs(20), || process::alive_with_marker(&marker).is_empty());
    // As after a crash: the step is still `running`, and resume runs it again.
    assert_eq!(step(&process::status(&setup.state_dir(), &run), "stubborn")["status"], "running");
    std::fs::write(setup.path().join("release"), "").unwrap();
    setup.then().args(["resume", &run]).run().success();
    assert_eq!(count(&lines(&setup.path().join("ledger")), "stubborn"), 2);
}

/// Starts `r.yaml` in the background in a new test directory and waits for `file`.
fn started(yaml: &str, file: &str) -> (Output, Background) {
    let setup = Test::new().file("r.yaml", yaml).args(["validate", "r.yaml"]).run().success();
    let bg = Background::spawn(setup.then().args(["run", "r.yaml", "--no-wait"]).command(), setup.path());
    process::wait_for(file, Duration::from_secs(30), || setup.path().join(file).exists());
    (setup, bg)
}

#[test]
fn ctrl_c_in_a_for_each_keeps_the_finished_items_for_resume() {
    let (setup, bg) = started(
        r#"version: 1
name: items
steps:
  fan:
    uses: exec
    for_each: [1, 2, 3, 4]
    max_parallel: 4
    with:
      script: |
        echo "start {{ item }}" >> ledger
        if [ {{ item }} -eq 3 ]; then touch three.started; while [ ! -e release ]; do sleep 0.05; done; fi
        echo "end {{ item }}" >> ledger
  after:
    needs: [fan]
    uses: exec
    with: { script: "echo after >> ledger" }
"#,
        "three.started",
    );
    // Wait until the other three items are done, so that only item 3 is in flight.
    process::wait_for("items 1, 2 and 4", Duration::from_secs(30), || {
        let l = lines(&setup.path().join("ledger"));
        ["end 1", "end 2", "end 4"].iter().all(|e| l.iter().any(|x| x == e))
    });
    process::signal("INT", &[bg.pid()]);
    assert_eq!(bg.wait(Duration::from_secs(60)).code, Some(130));
    let run = process::latest_run(&setup.state_dir());
    std::fs::write(setup.path().join("release"), "").unwrap();
    setup.then().args(["resume", &run]).run().success();
    let l = lines(&setup.path().join("ledger"));
    for (line, n) in [("start 1", 1), ("start 2", 1), ("start 4", 1), ("start 3", 2), ("end 3", 1), ("after", 1)] {
        assert_eq!(count(&l, line), n, "{line}: {l:?}");
    }
    let s = process::status(&setup.state_dir(), &run);
    assert_eq!(step(&s, "fan[2]")["attempts"], 2);
    assert_eq!(step(&s, "fan[0]")["attempts"], 1);
}

#[test]
fn ctrl_c_stops_a_child_run_too_and_resume_continues_both() {
    let setup = Test::new()
        .file(
            "child.yaml",
            "version: 1\nname: child\nsteps:\n  work:\n    uses: exec\n    with: { script: \"echo child >> ledger; touch child.started; while [ ! -e release ]; do sleep 0.05; done\" }\noutputs:\n  said: done\n",
        )
        .file(
            "r.yaml",
            "version: 1\nname: parent\nsteps:\n  sub: { uses: runbook, with: { file: child.yaml } }\n  after:\n    needs: [sub]\n    uses: exec\n    with: { script: \"echo after-{{ steps.sub.outputs.outputs.said }} >> ledger\" }\n",
        )
        .args(["validate", "r.yaml", "child.yaml"])
        .run()
        .success();
    let bg = Background::spawn(setup.then().args(["run", "r.yaml", "--no-wait"]).command(), setup.path());
    process::wait_for("the child's step", Duration::from_secs(30), || setup.path().join("child.started").exists());
    process::signal("INT", &[bg.pid()]);
    assert_eq!(bg.wait(Duration::from_secs(60)).code, Some(130));
    let (parent, child) = (process::run_of(&setup.state_dir(), "parent"), process::run_of(&setup.state_dir(), "child"));
    assert_eq!(process::status(&setup.state_dir(), &parent)["status"], "halted");
    assert_eq!(process::status(&setup.state_dir(), &child)["status"], "halted");
    std::fs::write(setup.path().join("release"), "").unwrap();
    setup.then().args(["resume", &parent]).run().success();
    assert_eq!(lines(&setup.path().join("ledger")), ["child", "child", "after-done"]);
    assert_eq!(process::status(&setup.state_dir(), &child)["status"], "succeeded");
    assert_eq!(process::run_ids(&setup.state_dir()).len(), 2, "the child was resumed, not started again");
}

/// A process that holds the store for a moment without answering on its socket (another
/// operator's `status`, a `run` starting up) makes a `run` wait, not fail.
#[test]
fn a_command_waits_for_a_store_held_a_moment_by_a_process_that_does_not_answer() {
    let out = Test::new().file("r.yaml", "version: 1\nname: brief\nsteps:\n  a: { uses: noop }\n").args(["run", "r.yaml"]).run().success();
    let db = out.state_dir().join("db/db");
    let held = out.path().join("held");
    // util-linux's flock takes the same lock sled takes, holds it a moment, and lets go.
    let mut holder = std::process::Command::new("flock")
        .args(["-x", db.to_str().unwrap(), "-c", &format!("touch '{}'; sleep 1", held.display())])
        .spawn()
        .expect("flock(1)");
    process::wait_for("the lock to be taken", Duration::from_secs(30), || held.exists());
    // A second run, started while the store is held, waits for it and runs.
    out.then().args(["run", "r.yaml"]).run().success();
    out.then().args(["runs"]).run().success().stdout_contains("brief");
    assert!(holder.wait().unwrap().success());
}
