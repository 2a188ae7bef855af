//! `effect: read | idempotent | mutating | irreversible`: what resume runs again after a
//! crash, what `validate` notes, and what the report lists as changed.

use std::time::Duration;

use crate::process::{self, Background};
use crate::support::Test;

/// `work` writes to the ledger, then hangs the first time until the crash.
fn hanging(effect: &str) -> String {
    format!(
        r#"version: 1
name: effects
steps:
  work:
    uses: exec
    effect: {effect}
    with:
      script: |
        echo work >> ledger
        if [ ! -e once ]; then touch once; sleep 1000; fi
  after:
    needs: [work]
    uses: exec
    with: {{ script: "echo after >> ledger" }}
"#
    )
}

/// Runs, crashes the whole tree while `work` runs, resumes plainly: the resume's output.
fn crash_and_resume(effect: &str) -> (crate::support::Output, String) {
    let setup = Test::new().file("r.yaml", hanging(effect)).args(["validate", "r.yaml"]).run().success();
    let bg = Background::spawn(setup.then().args(["run", "r.yaml", "--no-wait"]).command(), setup.path());
    process::wait_for("work to start", Duration::from_secs(30), || setup.path().join("once").exists());
    process::crash_tree(bg.pid());
    drop(bg);
    let run = process::latest_run(&setup.state_dir());
    let out = setup.then().args(["resume", &run]).run();
    (out, run)
}

fn works(out: &crate::support::Output) -> usize {
    std::fs::read_to_string(out.path().join("ledger")).unwrap_or_default().lines().filter(|l| *l == "work").count()
}

#[test]
fn read_and_idempotent_steps_found_running_after_a_crash_run_again() {
    for effect in ["read", "idempotent"] {
        let (out, run) = crash_and_resume(effect);
        let out = out.success();
        assert_eq!(works(&out), 2, "{effect}: ran again");
        assert_eq!(process::status(&out.state_dir(), &run)["status"], "succeeded", "{effect}");
    }
}

#[test]
fn mutating_and_irreversible_steps_found_running_after_a_crash_wait_for_an_operator() {
    for effect in ["mutating", "irreversible"] {
        let (out, run) = crash_and_resume(effect);
        let out = out.code(3).stderr_contains(&format!("phoenix resume {run} --retry work"));
        assert_eq!(works(&out), 1, "{effect}: not run again unasked");
    }
}

#[test]
fn validate_notes_the_older_spelling_and_an_irreversible_step_nobody_approves() {
    let rb = r#"version: 1
name: cutover
steps:
  copy:
    uses: exec
    idempotent: false
    with: { cmd: ["true"] }
  drop_old:
    needs: [copy]
    uses: exec
    effect: irreversible
    with: { cmd: ["true"] }
"#;
    let out = Test::new().file("c.yaml", rb).args(["validate", "c.yaml"]).run().success();
    let out = out
        .stderr_contains("warning[PHX0304]: `idempotent: false` is the older spelling of `effect: mutating`")
        .stderr_contains("warning[PHX0305]: `drop_old` is irreversible and no approval comes before it");
    out.then().args(["validate", "--strict", "c.yaml"]).run().code(2);
    // An approval anywhere before it (here through `copy`) is enough.
    let approved = rb.replace(
        "  copy:\n    uses: exec\n    idempotent: false\n",
        "  ok:\n    uses: approval\n    with: { message: drop it? }\n  copy:\n    needs: [ok]\n    uses: exec\n    effect: mutating\n",
    );
    Test::new().file("c.yaml", approved).args(["validate", "--strict", "c.yaml"]).run().success().stderr_lacks("warning");
}

#[test]
fn the_report_lists_what_changed_not_what_only_read() {
    let rb = r#"version: 1
name: changes
steps:
  look:
    uses: exec
    effect: read
    with: { cmd: [echo, looked] }
  switch:
    needs: [look]
    uses: exec
    effect: mutating
    with: { cmd: [echo, switched] }
"#;
    let out = Test::new().file("r.yaml", rb).args(["run", "r.yaml"]).run().success();
    let run = process::latest_run(&out.state_dir());
    let report = out.then().args(["report", &run]).run().success();
    let text = report.stdout();
    let changed = &text[text.find("What changed").expect("a What changed section")..];
    assert!(changed.contains("switched") && !changed.contains("looked"), "{changed}");
}
