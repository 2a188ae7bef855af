//! A drill's RTO and RPO are stored in its record when its main plan ends, before its
//! teardown: a drill killed during its teardown and resumed keeps the figures measured before
//! the kill (never measured again at the resume), and the teardown is not in the RTO.

use std::time::Duration;

use crate::process;
use crate::support::Test;

/// A drill that acts, verifies, then tears down through a step that waits for `go`.
const RB: &str = r#"version: 1
name: stored
params:
  target: { default: prod }
drill:
  params: { target: drill }
  teardown:
    slow: { uses: exec, with: { script: "touch slow-started; while [ ! -e go ]; do sleep 0.05; done; rm -f mark-{{ params.target }}" }, effect: idempotent }
steps:
  act: { uses: exec, with: { script: "touch mark-{{ params.target }}" }, effect: idempotent }
  verify: { uses: exec, needs: [act], with: { script: "test -e mark-{{ params.target }}" }, effect: read }
"#;

#[test]
fn a_drill_killed_before_its_teardown_ends_keeps_the_figures_measured_before_the_kill() {
    let t = Test::new().file("s.yaml", RB);
    let dir = t.path().to_path_buf();
    let state = t.state_dir();
    let state_arg = state.display().to_string();
    let bg = process::Background::start(&dir, &["--state", &state_arg, "drill", "s.yaml"]);
    process::wait_for("the teardown's slow step", Duration::from_secs(60), || dir.join("slow-started").exists());
    let id = process::latest_run(&state);
    let before = process::status(&state, &id)["measure"].clone();
    assert_eq!(before["stored"], true, "stored when the main plan ended, before the teardown: {before:#}");
    assert_eq!(before["verified_by"], "verify", "{before:#}");
    assert!(before["measured_at"].is_u64(), "{before:#}");
    process::crash_tree(bg.pid());
    bg.kill_alone();
    std::fs::write(dir.join("go"), "").unwrap();
    let resumed = process::Background::start(&dir, &["--state", &state_arg, "resume", &id]).wait(Duration::from_secs(120));
    assert_eq!(resumed.code, Some(0), "{resumed:?}");
    let after = process::status(&state, &id);
    assert_eq!(after["teardown"], "succeeded", "{after:#}");
    assert_eq!(after["measure"], before, "the figures are the ones stored before the kill");
    let drills = process::json(&state, &["drills"]);
    assert_eq!(drills["drills"][0]["measure"], before, "`phoenix drills` reads the stored figures");
}
