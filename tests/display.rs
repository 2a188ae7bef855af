//! What `phoenix run` shows while it runs: plain timestamped lines without a terminal, a
//! live line on one, step output prefixed with the step's id, and a last line that says
//! what the run did.

use crate::process;
use crate::run::run;
use crate::support::Test;

#[test]
fn without_a_terminal_progress_is_plain_timestamped_lines_with_step_output_prefixed() {
    let out = run(r#"version: 1
name: plain
steps:
  greet:
    uses: exec
    with: { script: "echo hello; echo oops >&2" }
  broken:
    needs: [greet]
    uses: exec
    with: { script: "exit 2" }
"#)
    .code(1);
    let err = out.stderr();
    assert!(!err.contains('\x1b'), "no terminal, no escape codes:\n{err}");
    let stamped = |l: &str| {
        let b = l.as_bytes();
        b.len() > 13
            && b[2] == b':'
            && b[5] == b':'
            && b[8] == b'.'
            && b[12] == b' '
            && l[..12].replace([':', '.'], "").bytes().all(|c| c.is_ascii_digit())
    };
    let progress: Vec<&str> = err.lines().take_while(|l| !l.starts_with("see:")).collect();
    assert!(progress.iter().all(|l| stamped(l)), "every progress line starts with a time:\n{err}");
    for needle in ["▶ greet", "[greet] hello", "[greet] oops", "✓ greet", "✗ broken failed"] {
        assert!(err.contains(needle), "{needle:?} not in:\n{err}");
    }
}

#[test]
fn on_a_terminal_a_live_line_shows_what_runs_and_how_far_the_run_is() {
    let setup = Test::new()
        .file(
            "r.yaml",
            "version: 1\nname: live\nsteps:\n  quick: { uses: noop }\n  slow:\n    needs: [quick]\n    uses: exec\n    with: { script: \"sleep 0.3\" }\n",
        )
        .args(["validate", "r.yaml"])
        .run()
        .success();
    let term = process::Terminal::start(setup.path(), &setup.state_dir(), "run r.yaml");
    let screen = term.screen_path();
    assert_eq!(term.wait(), Some(0));
    let screen = std::fs::read_to_string(screen).unwrap();
    // Colors, and a status line redrawn in place: done/total and the running steps.
    assert!(screen.contains('\x1b'), "{screen:?}");
    assert!(screen.contains("1/2 done · running: slow"), "{screen:?}");
    assert!(screen.contains("succeeded"), "{screen:?}");
}

#[test]
fn the_last_line_says_how_long_the_run_took_and_what_its_steps_did() {
    let out = run(r#"version: 1
name: tally
steps:
  flaky:
    uses: exec
    retry: { attempts: 2, delay: 10ms }
    with: { script: "test -e tried || { touch tried; exit 1; }" }
  fine:
    uses: noop
  broken:
    needs: [flaky, fine]
    uses: exec
    with: { script: "exit 2" }
  never:
    needs: [broken]
    uses: noop
"#)
    .code(1);
    let err = out.stderr();
    let last = err.lines().rfind(|l| l.contains(" run ")).unwrap_or_default();
    let (before, after) = last.split_once(" failed after ").unwrap_or_else(|| panic!("{last:?}\n{err}"));
    assert!(before.ends_with(&process::latest_run(&out.state_dir())), "{last}");
    let counts = "(2 succeeded, 1 failed, 1 not run: upstream failed, 1 retry): step(s) failed: broken; not run because of it: never";
    assert!(after.ends_with(counts) && after.trim_end_matches(counts).trim_end().ends_with('s'), "{last}");

    let again = out.then().args(["resume", &process::latest_run(&out.state_dir())]).run().code(1);
    assert!(
        again.stderr().contains("failed after ") && again.stderr().contains("(1 failed, 1 not run: upstream failed, 2 kept from before)"),
        "{}",
        again.stderr()
    );
}
