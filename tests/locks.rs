//! Locks: one unfinished run per `lock` key, across runbooks. A second run is refused with
//! exit 2, naming the holder and how to resume or cancel it; finishing or cancelling the
//! holder releases the key.

use std::time::Duration;

use crate::process::{self, Background};
use crate::support::{Output, Test};

/// A runbook that halts at an approval (exit 3 with `--no-wait`).
fn gated(name: &str, lock: &str) -> String {
    format!(
        "version: 1\nname: {name}\nlock: {lock}\nsteps:\n  gate:\n    uses: approval\n    with: {{ message: go? }}\n  work:\n    needs: [gate]\n    uses: exec\n    with: {{ script: \"echo {name} >> worked\" }}\n"
    )
}

/// A runbook that fails until `fixed` exists.
fn failing(name: &str, lock: &str) -> String {
    format!("version: 1\nname: {name}\nlock: {lock}\nsteps:\n  try:\n    uses: exec\n    with: {{ script: \"test -e fixed\" }}\n")
}

/// Asserts a refusal names the holder, its state and both ways out.
#[track_caller]
fn refused_by(out: Output, holder: &str, state: &str) -> Output {
    out.code(2)
        .stderr_contains(holder)
        .stderr_contains(&format!("({state},"))
        .stderr_contains(&format!("phoenix resume {holder}"))
        .stderr_contains(&format!("phoenix cancel {holder}"))
}

#[test]
fn a_halted_run_holds_its_lock() {
    let first = Test::new().file("a.yaml", gated("first", "dr")).args(["run", "a.yaml", "--no-wait"]).run().code(3);
    let holder = process::latest_run(&first.state_dir());
    let second = first.then().args(["run", "a.yaml", "--no-wait"]).run();
    refused_by(second, &holder, "halted");
    assert_eq!(process::run_ids(&first.state_dir()), [holder.as_str()], "a refused run must not be recorded");
    assert!(!first.path().join("worked").exists());
}

#[test]
fn the_lock_key_is_shared_across_runbooks() {
    let first = Test::new()
        .file("a.yaml", gated("failover", "dr"))
        .file("b.yaml", gated("failback", "dr"))
        .file("c.yaml", gated("unrelated", "other"))
        .args(["run", "a.yaml", "--no-wait"])
        .run()
        .code(3);
    let holder = process::latest_run(&first.state_dir());
    refused_by(first.then().args(["run", "b.yaml", "--no-wait"]).run(), &holder, "halted").stderr_contains("failover");
    // Another key is free.
    first.then().args(["run", "c.yaml", "--no-wait"]).run().code(3);
}

#[test]
fn a_failed_run_holds_its_lock_until_it_succeeds() {
    let first = Test::new().file("f.yaml", failing("flaky", "db")).args(["run", "f.yaml"]).run().code(1);
    let holder = process::latest_run(&first.state_dir());
    refused_by(first.then().args(["run", "f.yaml"]).run(), &holder, "failed");
    std::fs::write(first.path().join("fixed"), "").unwrap();
    first.then().args(["resume", &holder]).run().success();
    // Succeeded: the key is free again, twice in a row.
    first.then().args(["run", "f.yaml"]).run().success();
    first.then().args(["run", "f.yaml"]).run().success();
}

#[test]
fn cancel_releases_the_lock() {
    let first = Test::new().file("a.yaml", gated("first", "dr")).args(["run", "a.yaml", "--no-wait"]).run().code(3);
    let holder = process::latest_run(&first.state_dir());
    first.then().args(["cancel", &holder]).run().success().stdout_contains("lock is released");
    let s = process::status(&first.state_dir(), &holder);
    assert_eq!(s["status"], "cancelled");
    assert_eq!(process::step(&s, "gate")["status"], "cancelled");
    assert_eq!(process::step(&s, "work")["status"], "cancelled");
    // A cancelled run stays cancelled, and its key is free.
    first.then().args(["resume", &holder]).run().code(2).stderr_contains("cancelled");
    first.then().args(["cancel", &holder]).run().code(2);
    first.then().args(["run", "a.yaml", "--no-wait"]).run().code(3);
    assert!(!first.path().join("worked").exists());
}

#[test]
fn a_templated_key_locks_per_value() {
    let yaml = "version: 1\nname: regional\nparams:\n  region: { type: string }\nlock: \"failover-{{ params.region }}\"\nsteps:\n  gate: { uses: approval, with: { message: go? } }\n";
    let first = Test::new().file("r.yaml", yaml).args(["run", "r.yaml", "--no-wait", "--param", "region=east"]).run().code(3);
    let east = process::latest_run(&first.state_dir());
    first.then().args(["run", "r.yaml", "--no-wait", "--param", "region=west"]).run().code(3);
    refused_by(first.then().args(["run", "r.yaml", "--no-wait", "--param", "region=east"]).run(), &east, "halted")
        .stderr_contains("failover-east");
}

#[test]
fn a_run_that_crashed_still_holds_its_lock() {
    let t = Test::new().file(
        "r.yaml",
        "version: 1\nname: crashy\nlock: dr\nsteps:\n  long:\n    uses: exec\n    with: { script: \"touch started; sleep 1000\" }\n",
    );
    let setup = t.args(["validate", "r.yaml"]).run().success();
    let bg = Background::spawn(setup.then().args(["run", "r.yaml", "--no-wait"]).command(), setup.path());
    process::wait_for("the step to start", Duration::from_secs(30), || setup.path().join("started").exists());
    process::crash_tree(bg.pid());
    drop(bg);
    let holder = process::latest_run(&setup.state_dir());
    // The record still says running; its process is gone. Nothing else may start.
    refused_by(setup.then().args(["run", "r.yaml", "--no-wait"]).run(), &holder, "running");
    // Until an operator cancels it.
    setup.then().args(["cancel", &holder]).run().success();
    std::fs::write(setup.path().join("other.yaml"), "version: 1\nname: other\nlock: dr\nsteps:\n  a: { uses: noop }\n").unwrap();
    setup.then().args(["run", "other.yaml"]).run().success();
}

#[test]
fn cancelling_a_crashed_run_stops_the_step_processes_that_outlived_it() {
    let marker = format!("phoenix-orphan-{}", std::process::id());
    let t = Test::new().file(
        "r.yaml",
        format!("version: 1\nname: orphaned\nlock: dr\nsteps:\n  long:\n    uses: exec\n    with: {{ script: \"touch started; exec -a {marker} sleep 1000\" }}\n"),
    );
    let setup = t.args(["validate", "r.yaml"]).run().success();
    let bg = Background::spawn(setup.then().args(["run", "r.yaml", "--no-wait"]).command(), setup.path());
    process::wait_for("the step to start", Duration::from_secs(30), || setup.path().join("started").exists());
    // Only phoenix dies (kill -9): the step's bash and sleep live on.
    process::signal("KILL", &[bg.pid()]);
    bg.wait(Duration::from_secs(30));
    assert!(!process::alive_with_marker(&marker).is_empty(), "the step should have outlived phoenix");
    let run = process::latest_run(&setup.state_dir());
    setup.then().args(["cancel", &run]).run().success();
    assert!(process::alive_with_marker(&marker).is_empty(), "cancel left the step's processes running");
    let logs = process::json(&setup.state_dir(), &["logs", &run]);
    let cancel = logs["events"].as_array().unwrap().iter().find(|e| e["action"] == "cancel").expect("a cancel event").clone();
    assert!(cancel["detail"].as_str().unwrap_or_default().contains("long"), "{cancel:#}");
}
