//! `phoenix run --dry-run`: the plan in order, rendered as far as it can be, nothing run and
//! nothing written; then the checks of what would fail if the run started now.

use crate::support::Test;

#[test]
fn dry_run_prints_the_plan_in_order_and_writes_nothing() {
    let out = Test::new()
        .file(
            "r.yaml",
            r#"version: 1
name: planned
params:
  target: { type: string, default: azure }
lock: "dr-{{ params.target }}"
steps:
  last:
    needs: [middle]
    uses: exec
    with: { cmd: [touch, last.ran] }
  first:
    uses: exec
    with: { script: "touch first.ran; echo {{ params.target }}" }
  middle:
    needs: [first]
    uses: sleep
    with: { duration: 1s }
"#,
        )
        .args(["run", "r.yaml", "--dry-run", "--param", "target=aws-west"])
        .run()
        .success()
        .stdout_contains("lock: dr-aws-west")
        // The value reaches the script as data: a reference in the text, the value beside it.
        .stdout_contains("echo \"${PHX_V1}\"")
        .stdout_contains("with PHX_V1=aws-west");
    let plan = out.stdout();
    let at = |s: &str| plan.find(s).unwrap_or_else(|| panic!("{s:?} not in the plan:\n{plan}"));
    assert!(at("1. first") < at("2. middle") && at("2. middle") < at("3. last"), "{plan}");
    assert!(plan.contains("3. last (exec) after middle"), "{plan}");
    assert!(!out.path().join("first.ran").exists() && !out.path().join("last.ran").exists(), "a dry run ran a step");
    assert!(!out.state_dir().exists(), "a dry run wrote state");
}

#[test]
fn dry_run_checks_secrets_programs_and_directories_before_anything_runs() {
    let rb = r#"version: 1
name: preflight
secrets:
  token: { env: PHOENIX_TEST_UNSET_TOKEN }
  home: { env: HOME }
steps:
  provision:
    uses: exec
    with: { cmd: [phoenix-no-such-tool, apply] }
  in_dir:
    needs: [fine]
    uses: exec
    with: { cmd: [ls], dir: missing }
  script:
    uses: exec
    with: { cmd: [./plain.sh] }
  fine:
    uses: exec
    with: { cmd: ["true"] }
  maybe:
    uses: exec
    when: "false"
    with: { cmd: [phoenix-other-missing-tool] }
"#;
    let out = Test::new().file("r.yaml", rb).file("plain.sh", "echo hi\n").args(["run", "r.yaml", "--dry-run"]).run().success();
    let plan = out.stdout();
    let here = out.path().canonicalize().unwrap().display().to_string();
    assert!(plan.contains("checks: 4 problem(s) that would fail the run if it ran now:"), "{plan}");
    for problem in [
        "✗ secret `token`: the environment variable PHOENIX_TEST_UNSET_TOKEN is not set",
        "✗ provision: `phoenix-no-such-tool`: no such program on PATH",
        "✗ in_dir: its directory `missing` (`dir`) does not exist (relative to ",
        "does not exist (relative to {here}) (unless a step before it provides it)",
        "✗ script: `./plain.sh` is not executable",
    ] {
        let problem = problem.replace("{here}", &here);
        assert!(plan.contains(&problem), "{problem:?} not in:\n{plan}");
    }
    assert!(!plan.contains("phoenix-other-missing-tool`:"), "a step behind `when` may never run: not checked\n{plan}");
    assert!(!out.state_dir().exists(), "a dry run wrote state");

    Test::new()
        .file("r.yaml", "version: 1\nname: clean\nsteps:\n  a:\n    uses: exec\n    with: { cmd: [\"true\"] }\n")
        .args(["run", "r.yaml", "--dry-run"])
        .run()
        .success()
        .stdout_contains("checks: every secret can be read, every program and directory is there");
}

/// A dry run runs for real what only reads (the signals, `score`, `effect: read` steps that
/// need only reads) and shows what they saw; a step that changes anything, and a read that
/// needs one, do not run. `--no-reads` runs nothing at all. Nothing is written either way.
#[test]
fn dry_run_runs_the_reads_and_nothing_else() {
    let rb = r#"version: 1
name: looks
params:
  site: { type: string, default: primary }
signals:
  up:
    uses: exec
    with: { cmd: ["true"] }
    weight:
      - { when: "outputs.exit_code == 0", weight: 0 }
      - { weight: 5 }
levels:
  - { name: fine, max: 2 }
  - { name: failover }
steps:
  where:
    uses: exec
    effect: read
    with: { script: "touch read.ran; echo site={{ params.site }} dry={{ run.dry_run }}" }
  change:
    needs: [where]
    uses: exec
    with: { script: "touch change.ran" }
  after_change:
    needs: [change]
    uses: exec
    effect: read
    with: { script: "touch after.ran" }
  ask:
    uses: approval
    with: { message: "go?" }
invariants:
  fine_now:
    check: { uses: exec, effect: read, with: { cmd: [echo, '{"sites": 1}'], parse: json } }
    that: "outputs.json.sites == 1"
    around: [change]
  broken_now:
    description: exactly one site serves
    check: { uses: exec, effect: read, with: { cmd: [echo, '{"sites": 2}'], parse: json } }
    that: "outputs.json.sites == 1"
    around: [change]
  later:
    check: { uses: exec, effect: read, with: { cmd: [echo, "{{ steps.where.outputs.stdout }}"] } }
    that: "true"
    around: [after_change]
"#;
    let out = Test::new().file("r.yaml", rb).args(["run", "r.yaml", "--dry-run", "--param", "site=dr"]).run().success();
    let text = out.stdout();
    assert!(text.contains("read steps, run for real (3 step(s)"), "{text}");
    assert!(text.contains("✓ where (exec): ") && text.contains(r#"site=dr dry=true\n"#), "{text}");
    assert!(text.contains("✓ score: total 0.0, level fine"), "{text}");
    assert!(out.path().join("read.ran").exists(), "the read step did not run");
    for never in ["change.ran", "after.ran"] {
        assert!(!out.path().join(never).exists(), "a dry run ran {never}");
    }
    assert!(!text.contains("✓ change") && !text.contains("after_change (exec):") && !text.contains("ask (approval):"), "{text}");
    assert!(!out.state_dir().exists(), "a dry run wrote state");
    // The invariants, as they would be checked before the steps they guard.
    assert!(text.contains("✓ fine_now (around change) holds: outputs = "), "{text}");
    assert!(text.contains("✗ broken_now (around change) does NOT hold: the run would halt before it: outputs = "), "{text}");
    assert!(text.contains("– later (around after_change): not checked now: its check needs what earlier steps produce"), "{text}");

    let out = Test::new().file("r.yaml", rb).args(["run", "r.yaml", "--dry-run", "--no-reads"]).run().success();
    assert!(!out.stdout().contains("read steps, run for real") && !out.stdout().contains("invariants, checked now"), "{}", out.stdout());
    assert!(!out.path().join("read.ran").exists(), "--no-reads ran a read");
}
