//! A run works in the directory it started in. `phoenix resume` from another directory goes
//! back there, so that a relative `dir` (or program, or file) in its steps means what it
//! meant; `--workdir` moves a run whose directory is gone, and the move is recorded.

use std::path::Path;

use crate::process::{self, step};
use crate::support::{Output, Test};

/// Halts at the gate (`--no-wait`); after it, prints where a relative `dir` took it.
const WHERE: &str = r#"version: 1
name: where
steps:
  gate:
    uses: approval
    with: { message: "Go on?" }
  here:
    needs: [gate]
    uses: exec
    with: { cmd: [pwd], dir: work }
"#;

/// Starts the run in `project/`, approves its gate, and returns the run id.
fn halted_in_project() -> (Output, String) {
    let out = Test::new()
        .file("project/where.yaml", WHERE)
        .file("project/work/.keep", "")
        .file("elsewhere/work/.keep", "")
        .current_dir("project")
        .args(["run", "where.yaml", "--no-wait"])
        .run()
        .code(3);
    let run = process::latest_run(&out.state_dir());
    out.then().args(["approve", &run, "gate"]).run().success();
    (out, run)
}

fn printed_dir(out: &Output, run: &str) -> String {
    let s = process::status(&out.state_dir(), run);
    step(&s, "here")["outputs"]["stdout"].as_str().expect("pwd's output").trim().to_string()
}

fn canonical(p: &Path) -> String {
    p.canonicalize().expect("the directory exists").display().to_string()
}

#[test]
fn resume_from_another_directory_works_where_the_run_started() {
    let (out, run) = halted_in_project();
    let s = process::status(&out.state_dir(), &run);
    assert_eq!(s["dir"].as_str().map(Path::new).map(canonical), Some(canonical(&out.path().join("project"))));

    out.then().current_dir("elsewhere").args(["resume", &run]).run().success().stderr_contains("working in ");
    assert_eq!(
        printed_dir(&out, &run),
        canonical(&out.path().join("project/work")),
        "`dir: work` resolves in the run's directory, not in the terminal's"
    );
    let logs = out.then().args(["logs", &run]).run().success();
    assert!(!logs.stdout().contains("relative paths in its steps now resolve"), "nothing moved, nothing to note:\n{}", logs.stdout());
}

#[test]
fn a_run_whose_directory_is_gone_is_refused_unchanged_until_workdir_moves_it() {
    let (out, run) = halted_in_project();
    std::fs::remove_dir_all(out.path().join("project")).unwrap();

    out.then()
        .current_dir("elsewhere")
        .args(["resume", &run])
        .run()
        .code(2)
        .stderr_contains("is no longer a directory")
        .stderr_contains(&format!("phoenix resume {run} --workdir DIR"));
    let s = process::status(&out.state_dir(), &run);
    assert_eq!((s["status"].as_str(), s["attempt"].as_u64()), (Some("halted"), Some(1)), "a refused resume changes nothing");
    assert_eq!(step(&s, "here")["status"], "pending");

    out.then().args(["resume", &run, "--workdir", "nowhere"]).run().code(2).stderr_contains("--workdir nowhere: no such directory");

    // A relative --workdir is taken from the terminal's directory (the test's root here).
    out.then().args(["resume", &run, "--workdir", "elsewhere"]).run().success().stderr_contains("as --workdir says");
    let elsewhere = canonical(&out.path().join("elsewhere"));
    assert_eq!(printed_dir(&out, &run), canonical(&out.path().join("elsewhere/work")));
    let s = process::status(&out.state_dir(), &run);
    assert_eq!(s["dir"].as_str().map(Path::new).map(canonical), Some(elsewhere.clone()), "the run now works there");
    let logs = out.then().args(["logs", &run]).run().success();
    assert!(
        logs.stdout().contains(&format!("resumed in {elsewhere}")) && logs.stdout().contains("relative paths in its steps now resolve"),
        "the move is in the run's events:\n{}",
        logs.stdout()
    );
}

#[test]
fn an_edited_runbook_adopted_from_another_directory_keeps_its_own_place() {
    let (out, run) = halted_in_project();
    // The operator edits a copy where they are: `run.dir` (and child runbooks) are found
    // from the copy's place, while the run still works in its own directory.
    let edited = WHERE.replace("with: { cmd: [pwd], dir: work }", "with: { cmd: [echo, \"{{ run.dir }}\"] }");
    std::fs::write(out.path().join("elsewhere/edited.yaml"), edited).unwrap();
    out.then()
        .current_dir("elsewhere")
        .args(["resume", &run, "--runbook", "edited.yaml", "--yes"])
        .run()
        .success()
        .stderr_contains("adopting edited.yaml for run");
    assert_eq!(printed_dir(&out, &run), canonical(&out.path().join("elsewhere")));
}
