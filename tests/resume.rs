//! `phoenix resume`: from the checkpoint, with an edited runbook, after a crash that caught
//! a non-idempotent step in flight, and through child runs. Steps append to a ledger, so
//! the tests count executions instead of trusting the engine's word.

use std::time::Duration;

use crate::process::{self, Background, count, lines, step, step_states};
use crate::support::{Output, Test};

const FLAKY: &str = r#"version: 1
name: flaky
steps:
  a:
    uses: exec
    with: { script: "echo a >> ledger" }
  b:
    needs: [a]
    uses: exec
    with: { script: "echo b >> ledger; test -e fixed" }
  c:
    needs: [b]
    uses: exec
    with: { script: "echo c >> ledger" }
  optional:
    uses: exec
    when: "false"
    with: { script: "echo optional >> ledger" }
  side:
    uses: exec
    with: { script: "echo side >> ledger" }
"#;

fn ledger(out: &Output) -> Vec<String> {
    lines(&out.path().join("ledger"))
}

#[test]
fn resume_runs_again_only_what_did_not_succeed() {
    let out = Test::new().file("r.yaml", FLAKY).args(["run", "r.yaml"]).run().code(1);
    let run = process::latest_run(&out.state_dir());
    assert_eq!(
        step_states(&process::status(&out.state_dir(), &run)),
        ["a=succeeded", "b=failed", "c=upstream_failed", "optional=skipped", "side=succeeded"]
    );
    std::fs::write(out.path().join("fixed"), "").unwrap();
    out.then().args(["resume", &run]).run().success();
    let l = ledger(&out);
    assert_eq!(count(&l, "a"), 1, "a succeeded before: it must not run again ({l:?})");
    assert_eq!(count(&l, "side"), 1, "{l:?}");
    assert_eq!(count(&l, "b"), 2, "b failed: it runs again ({l:?})");
    assert_eq!(count(&l, "c"), 1, "c was not run for b's failure (upstream_failed): it runs now ({l:?})");
    assert_eq!(count(&l, "optional"), 0, "a step skipped by its `when` stays skipped ({l:?})");
    let s = process::status(&out.state_dir(), &run);
    assert_eq!(s["status"], "succeeded");
    assert_eq!(s["attempt"], 2);
    assert_eq!(step(&s, "b")["attempts"], 2);
    assert_eq!(step(&s, "a")["attempts"], 1);
    assert_eq!(process::run_ids(&out.state_dir()), [run.as_str()], "resume continues the run, it starts no new one");
}

#[test]
fn resume_refuses_what_cannot_be_resumed() {
    let out = Test::new().file("ok.yaml", "version: 1\nname: ok\nsteps:\n  a: { uses: noop }\n").args(["run", "ok.yaml"]).run().success();
    let run = process::latest_run(&out.state_dir());
    out.then().args(["resume", &run]).run().code(2).stderr_contains("nothing to resume");
    out.then().args(["resume", "20200101-000000-beef"]).run().code(2).stderr_contains("no run");
}

#[test]
fn retry_and_skip_name_only_steps_found_in_flight_and_refuse_anything_else_unchanged() {
    let rb = "version: 1\nname: gated\nsteps:\n  gate:\n    uses: approval\n    with: { message: Go? }\n  after:\n    needs: [gate]\n    uses: noop\n";
    let out = Test::new().file("g.yaml", rb).args(["run", "g.yaml", "--no-wait"]).run().code(3);
    let run = process::latest_run(&out.state_dir());
    out.then().args(["resume", &run, "--retry", "gat"]).run().code(2).stderr_contains(&format!("--retry gat: run {run} has no step `gat`"));
    out.then()
        .args(["resume", &run, "--skip", "after"])
        .run()
        .code(2)
        .stderr_contains("--skip after: `after` is pending, not a step found in flight after a crash");
    out.then().args(["resume", &run, "--retry", "gate"]).run().code(2).stderr_contains("`gate` is waiting");
    let s = process::status(&out.state_dir(), &run);
    assert_eq!((s["status"].as_str(), s["attempt"].as_u64()), (Some("halted"), Some(1)), "a refused resume changes nothing");
    assert_eq!(step_states(&s), ["gate=waiting", "after=pending"]);
}

const EDITED: &str = r#"version: 1
name: flaky
steps:
  a:
    uses: exec
    with: { script: "echo a >> ledger" }
  b:
    needs: [a]
    uses: exec
    with: { script: "echo b-edited >> ledger" }
  c:
    needs: [b]
    uses: exec
    with: { script: "echo c >> ledger" }
  side:
    uses: exec
    with: { script: "echo side-edited >> ledger" }
  extra:
    needs: [c]
    uses: exec
    with: { script: "echo extra >> ledger" }
"#;

#[test]
fn resume_with_an_edited_runbook_keeps_unchanged_results_and_shows_the_difference() {
    let out = Test::new().file("r.yaml", FLAKY).file("edited.yaml", EDITED).args(["run", "r.yaml"]).run().code(1);
    let run = process::latest_run(&out.state_dir());
    let resumed = out
        .then()
        .args(["resume", &run, "--runbook", "edited.yaml", "--yes"])
        .run()
        .success()
        .stderr_contains("= a (unchanged")
        .stderr_contains("~ b (changed")
        .stderr_contains("= c (unchanged")
        .stderr_contains("~ side (changed")
        .stderr_contains("+ extra (new")
        .stderr_contains("- optional (removed)");
    // The difference comes before anything runs.
    let err = resumed.stderr();
    assert!(err.find("+ extra").unwrap() < err.find("▶").unwrap_or(usize::MAX), "{err}");
    let l = ledger(&out);
    assert_eq!(count(&l, "a"), 1, "unchanged and succeeded: kept ({l:?})");
    assert_eq!(count(&l, "b"), 1);
    assert_eq!(count(&l, "b-edited"), 1, "changed: runs ({l:?})");
    assert_eq!(count(&l, "side"), 1);
    assert_eq!(count(&l, "side-edited"), 1, "changed, though it had succeeded: runs again ({l:?})");
    assert_eq!(count(&l, "c"), 1);
    assert_eq!(count(&l, "extra"), 1, "new: runs ({l:?})");
    let s = process::status(&out.state_dir(), &run);
    assert_eq!(s["status"], "succeeded");
    assert!(s["steps"].as_array().unwrap().iter().all(|st| st["id"] != "optional"), "a removed step is dropped: {s:#}");
    // The run now carries the edited text: resuming it again would compare against that.
    let logs = process::json(&out.state_dir(), &["logs", &run]);
    assert!(logs["events"].as_array().unwrap().iter().any(|e| e["kind"] == "operator" && e["action"] == "adopt-runbook"));
}

#[test]
fn an_edited_runbook_of_another_name_is_refused() {
    let out = Test::new()
        .file("r.yaml", FLAKY)
        .file("other.yaml", "version: 1\nname: other\nsteps:\n  a: { uses: noop }\n")
        .args(["run", "r.yaml"])
        .run()
        .code(1);
    let run = process::latest_run(&out.state_dir());
    out.then().args(["resume", &run, "--runbook", "other.yaml"]).run().code(2).stderr_contains("not `other`");
    assert_eq!(process::status(&out.state_dir(), &run)["status"], "failed");
}

#[test]
fn an_edited_runbook_may_add_params_with_defaults_and_vars_that_use_them() {
    let edited = EDITED
        .replace(
            "name: flaky\n",
            "name: flaky\nparams:\n  suffix: { type: string, default: v2 }\nvars:\n  tag: \"extra-{{ params.suffix }}\"\n",
        )
        .replace("echo extra >> ledger", "echo {{ vars.tag }} >> ledger");
    let out = Test::new().file("r.yaml", FLAKY).file("edited.yaml", edited).args(["run", "r.yaml"]).run().code(1);
    let run = process::latest_run(&out.state_dir());
    out.then().args(["resume", &run, "--runbook", "edited.yaml", "--yes"]).run().success();
    assert_eq!(count(&ledger(&out), "extra-v2"), 1, "{:?}", ledger(&out));

    // A new param without a default cannot be supplied on resume: refused, nothing changed.
    let required = EDITED.replace("name: flaky\n", "name: flaky\nparams:\n  region: { type: string }\n");
    let out = Test::new().file("r.yaml", FLAKY).file("edited.yaml", required).args(["run", "r.yaml"]).run().code(1);
    let run = process::latest_run(&out.state_dir());
    out.then()
        .args(["resume", &run, "--runbook", "edited.yaml", "--yes"])
        .run()
        .code(2)
        .stderr_contains("adds the param `region` without a default");
    assert_eq!(process::status(&out.state_dir(), &run)["status"], "failed");
}

/// `charge` is not idempotent; the first time it runs it hangs until the crash.
const CHARGE: &str = r#"version: 1
name: billing
steps:
  prepare:
    uses: exec
    with: { script: "echo prepare >> ledger" }
  charge:
    needs: [prepare]
    uses: exec
    idempotent: false
    with:
      script: |
        echo charge >> ledger
        if [ ! -e charged-once ]; then touch charged-once; sleep 1000; fi
  receipt:
    needs: [charge]
    uses: exec
    with: { script: "echo receipt >> ledger" }
"#;

/// Starts CHARGE, crashes the whole process tree while `charge` runs, and checks that a
/// plain resume refuses to guess.
fn crashed_in_flight() -> (Output, String) {
    let setup = Test::new().file("r.yaml", CHARGE).args(["validate", "r.yaml"]).run().success();
    let bg = Background::spawn(setup.then().args(["run", "r.yaml", "--no-wait"]).command(), setup.path());
    process::wait_for("charge to start", Duration::from_secs(30), || setup.path().join("charged-once").exists());
    process::crash_tree(bg.pid());
    drop(bg);
    let run = process::latest_run(&setup.state_dir());
    assert_eq!(step(&process::status(&setup.state_dir(), &run), "charge")["status"], "running");
    setup
        .then()
        .args(["resume", &run])
        .run()
        .code(3)
        .stderr_contains("charge")
        .stderr_contains("not idempotent")
        .stderr_contains(&format!("phoenix resume {run} --retry charge"))
        .stderr_contains(&format!("phoenix resume {run} --skip charge"));
    // Refusing changed nothing: the step did not run again.
    assert_eq!(count(&ledger(&setup), "charge"), 1);
    (setup, run)
}

#[test]
fn a_non_idempotent_step_found_running_after_a_crash_runs_again_only_with_retry() {
    let (out, run) = crashed_in_flight();
    out.then().args(["resume", &run, "--retry", "charge"]).run().success();
    let l = ledger(&out);
    assert_eq!((count(&l, "prepare"), count(&l, "charge"), count(&l, "receipt")), (1, 2, 1), "{l:?}");
    assert_eq!(process::status(&out.state_dir(), &run)["status"], "succeeded");
}

#[test]
fn a_non_idempotent_step_found_running_after_a_crash_counts_as_done_with_skip() {
    let (out, run) = crashed_in_flight();
    out.then().args(["resume", &run, "--skip", "charge"]).run().success();
    let l = ledger(&out);
    assert_eq!((count(&l, "prepare"), count(&l, "charge"), count(&l, "receipt")), (1, 1, 1), "{l:?}");
    let s = process::status(&out.state_dir(), &run);
    assert_eq!(step(&s, "charge")["status"], "succeeded");
    assert!(step(&s, "charge")["error"].as_str().unwrap().contains("skipped by the operator"), "{s:#}");
    let logs = process::json(&out.state_dir(), &["logs", &run]);
    assert!(logs["events"].as_array().unwrap().iter().any(|e| e["kind"] == "operator" && e["action"] == "skip" && e["detail"] == "charge"));
}

/// The CHARGE runbook with `charge` idempotent, killed while `charge` runs.
fn crashed_idempotent_in_flight() -> (Output, String) {
    let yaml = CHARGE.replace("    idempotent: false\n", "");
    let setup = Test::new().file("r.yaml", yaml).args(["validate", "r.yaml"]).run().success();
    let bg = Background::spawn(setup.then().args(["run", "r.yaml", "--no-wait"]).command(), setup.path());
    process::wait_for("charge to start", Duration::from_secs(30), || setup.path().join("charged-once").exists());
    process::crash_tree(bg.pid());
    drop(bg);
    let run = process::latest_run(&setup.state_dir());
    (setup, run)
}

#[test]
fn an_idempotent_step_found_running_after_a_crash_simply_runs_again() {
    let (setup, run) = crashed_idempotent_in_flight();
    // The list says which "running" run has no process any more, and what to do.
    let runs = setup.then().args(["runs"]).run().success();
    assert!(runs.stdout().lines().any(|l| l.starts_with(&run) && l.contains(" running! ")), "{}", runs.stdout());
    runs.stdout_contains(&format!("! the process that ran it is gone (crashed or killed): continue it with `phoenix resume {run}`"));
    setup.then().args(["resume", &run]).run().success();
    let l = ledger(&setup);
    assert_eq!((count(&l, "prepare"), count(&l, "charge"), count(&l, "receipt")), (1, 2, 1), "{l:?}");
}

#[test]
fn skip_counts_an_idempotent_step_found_running_as_done_too() {
    let (setup, run) = crashed_idempotent_in_flight();
    setup.then().args(["resume", &run, "--skip", "charge"]).run().success();
    let l = ledger(&setup);
    assert_eq!((count(&l, "prepare"), count(&l, "charge"), count(&l, "receipt")), (1, 1, 1), "the operator's word wins: {l:?}");
}

#[test]
fn resuming_a_parent_resumes_its_child_halted_at_an_approval() {
    let out = Test::new()
        .file(
            "child.yaml",
            r#"version: 1
name: child
steps:
  before:
    uses: exec
    with: { script: "echo child-before >> ledger" }
  gate:
    needs: [before]
    uses: approval
    with: { message: "promote the replica?" }
  promote:
    needs: [gate]
    uses: exec
    with: { cmd: [echo, promoted] }
outputs:
  said: "{{ steps.promote.outputs.stdout | trim }}"
"#,
        )
        .file(
            "parent.yaml",
            r#"version: 1
name: parent
steps:
  first:
    uses: exec
    with: { script: "echo parent-first >> ledger" }
  db:
    needs: [first]
    uses: runbook
    with: { file: child.yaml }
  last:
    needs: [db]
    uses: exec
    with: { script: "echo parent-last >> ledger" }
outputs:
  child_said: "{{ steps.db.outputs.outputs.said }}"
"#,
        )
        .args(["run", "parent.yaml", "--no-wait"])
        .run()
        .code(3);
    let parent = process::run_of(&out.state_dir(), "parent");
    let child = process::run_of(&out.state_dir(), "child");
    let p = process::status(&out.state_dir(), &parent);
    assert_eq!(p["status"], "halted");
    assert_eq!(step(&p, "db")["child_run"], child.as_str());
    assert_eq!(step(&process::status(&out.state_dir(), &child), "gate")["status"], "waiting");
    out.then().args(["approve", &child, "gate", "--as", "dba"]).run().success();
    out.then().args(["resume", &parent]).run().success();
    assert_eq!(ledger(&out), ["parent-first", "child-before", "parent-last"]);
    let c = process::status(&out.state_dir(), &child);
    assert_eq!(c["status"], "succeeded");
    assert_eq!(step(&c, "gate")["approval"]["by"], "dba");
    let p = process::status(&out.state_dir(), &parent);
    assert_eq!(p["status"], "succeeded");
    assert_eq!(p["outputs"]["child_said"], "promoted");
    assert_eq!(process::run_ids(&out.state_dir()).len(), 2, "resuming resumed the child; it started no new one");
}

#[test]
fn resume_first_stops_step_processes_that_outlived_a_killed_phoenix() {
    // Only phoenix dies (as under the OOM killer): its step's processes live on as orphans.
    let marker = format!("phoenix-orphan-{}", process::unique());
    let yaml = format!(
        r#"version: 1
name: orphan
steps:
  long:
    uses: exec
    with: {{ script: "echo long >> ledger; if [ ! -e once ]; then touch once; exec -a {marker} sleep 1000; fi" }}
  after:
    needs: [long]
    uses: exec
    with: {{ script: "echo after >> ledger" }}
"#
    );
    let setup = Test::new().file("r.yaml", yaml).args(["validate", "r.yaml"]).run().success();
    let bg = Background::spawn(setup.then().args(["run", "r.yaml", "--no-wait"]).command(), setup.path());
    process::wait_for("the long step to start", Duration::from_secs(30), || !process::alive_with_marker(&marker).is_empty());
    process::signal("KILL", &[bg.pid()]);
    // Reap phoenix alone (dropping the handle of a live process would kill its whole tree).
    let ended = bg.wait(Duration::from_secs(30));
    assert_eq!(ended.code, None, "phoenix was killed by the signal");
    assert!(!process::alive_with_marker(&marker).is_empty(), "the step's process outlived phoenix");
    let run = process::latest_run(&setup.state_dir());
    setup.then().args(["resume", &run]).run().success();
    assert!(process::alive_with_marker(&marker).is_empty(), "resume stopped the leftover process");
    let l = ledger(&setup);
    assert_eq!((count(&l, "long"), count(&l, "after")), (2, 1), "{l:?}");
    let logs = process::json(&setup.state_dir(), &["logs", &run]);
    assert!(logs["events"].as_array().unwrap().iter().any(|e| e["kind"] == "operator" && e["action"] == "stop-orphans"), "{logs:#}");
}
