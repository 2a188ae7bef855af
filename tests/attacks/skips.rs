//! Attacks: skips. A step not run because a need failed (`upstream_failed`) is a failure, not
//! an optional gate: it must never let a `none_failed` step (a DNS switch) run after a failed
//! deploy. Each case runs a small runbook for real and reads what its steps left on disk and
//! what `status` says, on both sides: the step that must not run left no marker, and the
//! step that must run did, with an independent `witness` proving the run went at all.

use crate::process::{self, lines, step, step_states};
use crate::support::{Output, Test};

/// How the need of the step under test ended.
#[derive(Clone, Copy)]
enum NeedEnds {
    /// It failed itself.
    Failed,
    /// It was not run because its own need (`root`) failed.
    UpstreamFailed,
    /// Its `when` was false: nothing failed.
    SkippedByWhen,
    Succeeded,
}

/// What must become of the step under test (`target`).
#[derive(Clone, Copy, Debug, PartialEq)]
enum Expect {
    Runs,
    /// Not run, from this failed step.
    UpstreamFailed(&'static str),
    Skipped,
}

fn need_yaml(need: NeedEnds) -> &'static str {
    match need {
        NeedEnds::Failed => "  need:\n    uses: exec\n    with: { script: \"touch need.ran; exit 1\" }\n",
        NeedEnds::UpstreamFailed => concat!(
            "  root:\n    uses: exec\n    with: { script: \"exit 1\" }\n",
            "  need:\n    needs: [root]\n    uses: exec\n    with: { script: \"touch need.ran\" }\n"
        ),
        NeedEnds::SkippedByWhen => "  need:\n    when: \"false\"\n    uses: exec\n    with: { script: \"touch need.ran\" }\n",
        NeedEnds::Succeeded => "  need:\n    uses: exec\n    with: { script: \"touch need.ran\" }\n",
    }
}

fn runbook(rule: &str, need: NeedEnds) -> String {
    format!(
        "version: 1\nname: skips\nsteps:\n  witness:\n    uses: exec\n    with: {{ script: \"touch witness.ran\" }}\n{}  target:\n    needs: [need]\n    trigger_rule: {rule}\n    uses: exec\n    with: {{ script: \"touch target.ran\" }}\non_failure:\n  paged:\n    uses: exec\n    with: {{ script: \"echo '{{{{ steps.target.status }}}}' > paged\" }}\n",
        need_yaml(need)
    )
}

fn run(yaml: &str) -> Output {
    Test::new().file("r.yaml", yaml).args(["run", "r.yaml", "--no-wait"]).run()
}

fn status(out: &Output) -> serde_json::Value {
    process::status(&out.state_dir(), &process::latest_run(&out.state_dir()))
}

/// Runs one case of the table and checks both sides.
fn case(rule: &str, need: NeedEnds, expect: Expect) {
    let failure = matches!(need, NeedEnds::Failed | NeedEnds::UpstreamFailed);
    let out = run(&runbook(rule, need)).code(if failure { 1 } else { 0 });
    let s = status(&out);
    let t = step(&s, "target");
    // The run went: the independent step ran whatever happened to the others.
    assert!(out.path().join("witness.ran").exists(), "the run did not go at all:\n{s:#}");
    // A need that failed upstream never ran either.
    if matches!(need, NeedEnds::UpstreamFailed) {
        assert!(!out.path().join("need.ran").exists(), "a step ran after its need failed");
        assert_eq!((step(&s, "need")["status"].as_str(), step(&s, "need")["upstream"].as_str()), (Some("upstream_failed"), Some("root")));
    }
    let ran = out.path().join("target.ran").exists();
    match expect {
        Expect::Runs => {
            assert!(ran, "`target` ({rule}) must run:\n{s:#}");
            assert_eq!(t["status"], "succeeded", "{t:#}");
        }
        Expect::UpstreamFailed(origin) => {
            assert!(!ran, "`target` ({rule}) ran after a failure upstream:\n{s:#}");
            assert_eq!(t["status"], "upstream_failed", "{t:#}");
            assert_eq!(t["upstream"], origin, "{t:#}");
            let why = t["error"].as_str().unwrap_or_default();
            assert!(why.contains(&format!("`{origin}` failed")), "the status does not say why: {why:?}");
        }
        Expect::Skipped => {
            assert!(!ran, "`target` ({rule}) ran after a skipped need:\n{s:#}");
            assert_eq!(t["status"], "skipped", "{t:#}");
            assert!(t.get("upstream").is_none_or(|u| u.is_null()), "{t:#}");
        }
    }
    // The run fails exactly when something failed, and then on_failure runs and sees the
    // target's status; it never runs after a success.
    assert_eq!(s["status"], if failure { "failed" } else { "succeeded" }, "{s:#}");
    let paged = lines(&out.path().join("paged"));
    if failure {
        assert_eq!(paged, [t["status"].as_str().unwrap_or_default()], "on_failure did not see the target's status");
    } else {
        assert!(paged.is_empty(), "on_failure ran although nothing failed: {paged:?}");
    }
}

/// One `#[test]` per case, so each counts and fails alone.
macro_rules! cases {
    ($($name:ident: $rule:literal, $need:ident => $expect:expr;)*) => {
        $(
            #[test]
            fn $name() {
                case($rule, NeedEnds::$need, $expect);
            }
        )*
    };
}

cases! {
    all_success_after_a_failed_need_is_upstream_failed: "all_success", Failed => Expect::UpstreamFailed("need");
    all_success_after_an_upstream_failed_need_is_upstream_failed: "all_success", UpstreamFailed => Expect::UpstreamFailed("root");
    all_success_after_a_need_skipped_by_when_is_skipped: "all_success", SkippedByWhen => Expect::Skipped;
    all_success_after_a_succeeded_need_runs: "all_success", Succeeded => Expect::Runs;
    none_failed_after_a_failed_need_is_upstream_failed: "none_failed", Failed => Expect::UpstreamFailed("need");
    none_failed_after_an_upstream_failed_need_is_upstream_failed: "none_failed", UpstreamFailed => Expect::UpstreamFailed("root");
    none_failed_after_a_need_skipped_by_when_runs: "none_failed", SkippedByWhen => Expect::Runs;
    none_failed_after_a_succeeded_need_runs: "none_failed", Succeeded => Expect::Runs;
    all_done_after_a_failed_need_runs: "all_done", Failed => Expect::Runs;
    all_done_after_an_upstream_failed_need_runs: "all_done", UpstreamFailed => Expect::Runs;
    all_done_after_a_need_skipped_by_when_runs: "all_done", SkippedByWhen => Expect::Runs;
    all_done_after_a_succeeded_need_runs: "all_done", Succeeded => Expect::Runs;
}

/// The issue's reproduction: `deploy` fails, `rollout` is not run for it, the optional
/// `approve_dns` is skipped by its `when`, and `switch` (`none_failed`) used to run.
const FAILOVER: &str = r#"version: 1
name: failover
params:
  deploy_ok: { type: bool, default: false }
  approve_dns: { type: bool, default: false }
steps:
  deploy:
    uses: exec
    with: { script: "{% if params.deploy_ok %}true{% else %}exit 1{% endif %}" }
  rollout:
    needs: [deploy]
    uses: exec
    with: { script: "touch rollout.ran" }
  approve_dns:
    when: "params.approve_dns"
    uses: approval
    with: { message: "switch?" }
  switch:
    needs: [rollout, approve_dns]
    trigger_rule: none_failed
    uses: exec
    with: { script: "touch SWITCHED" }
  verify:
    needs: [switch]
    uses: exec
    with: { script: "touch verify.ran" }
on_failure:
  page:
    uses: exec
    with: { script: "echo '{{ steps.switch.status }} {{ steps.switch.error }} {{ run.failed_steps | join(',') }}' > paged" }
"#;

#[test]
fn a_failed_deploy_does_not_switch_and_says_why() {
    let out = Test::new().file("r.yaml", FAILOVER).args(["run", "r.yaml", "--no-wait"]).run().code(1);
    assert!(!out.path().join("SWITCHED").exists(), "DNS switched after a failed deploy");
    assert!(!out.path().join("rollout.ran").exists() && !out.path().join("verify.ran").exists());
    let s = status(&out);
    assert_eq!(
        step_states(&s),
        [
            "deploy=failed",
            "rollout=upstream_failed",
            "approve_dns=skipped",
            "switch=upstream_failed",
            "verify=upstream_failed",
            "page=succeeded"
        ]
    );
    for (id, via) in [("rollout", None), ("switch", Some("rollout")), ("verify", Some("switch"))] {
        let st = step(&s, id);
        assert_eq!(st["upstream"], "deploy", "{st:#}");
        let why = st["error"].as_str().unwrap_or_default();
        let expected = match via {
            None => "not run: `deploy` failed".to_string(),
            Some(v) => format!("not run: `deploy` failed (through `{v}`)"),
        };
        assert_eq!(why, expected);
    }
    // The gate that was skipped by its `when` stays a plain skip: no failure of its own.
    assert_eq!((step(&s, "approve_dns")["skip"].as_str(), step(&s, "approve_dns")["upstream"].as_str()), (Some("when"), None));
    assert_eq!(s["status"], "failed");
    let error = s["error"].as_str().unwrap_or_default();
    assert_eq!(error, "step(s) failed: deploy; not run because of it: rollout, switch, verify");
    // on_failure ran, saw why, and the failed steps are the ones that failed, not the skips.
    assert_eq!(lines(&out.path().join("paged")), ["upstream_failed not run: `deploy` failed (through `rollout`) deploy"]);
    // The live display and its last line tell the two kinds of not-running apart.
    let err = out.stderr();
    assert!(err.contains("⊘ switch not run: `deploy` failed (through `rollout`)"), "{err}");
    assert!(err.contains("○ approve_dns skipped"), "{err}");
    assert!(err.contains("1 skipped, 3 not run: upstream failed"), "{err}");
}

#[test]
fn the_same_runbook_switches_when_the_deploy_succeeds_and_the_gate_is_skipped() {
    let out = Test::new().file("r.yaml", FAILOVER).args(["run", "r.yaml", "--no-wait", "--param", "deploy_ok=true"]).run().success();
    assert!(out.path().join("SWITCHED").exists(), "none_failed after an optional gate skipped by `when` must run");
    assert!(out.path().join("verify.ran").exists());
    assert!(!out.path().join("paged").exists(), "on_failure ran after a success");
    assert_eq!(
        step_states(&status(&out)),
        ["deploy=succeeded", "rollout=succeeded", "approve_dns=skipped", "switch=succeeded", "verify=succeeded", "page=skipped"]
    );
}

#[test]
fn status_text_and_the_report_tell_upstream_failed_from_skipped() {
    let out = Test::new().file("r.yaml", FAILOVER).args(["run", "r.yaml", "--no-wait"]).run().code(1);
    let id = process::latest_run(&out.state_dir());
    let text = out.then().args(["status", &id]).run().success();
    let row = |step: &str| text.stdout().lines().find(|l| l.starts_with(&format!("{step} "))).unwrap_or_default().to_string();
    let switch = row("switch");
    assert_eq!(switch.split_whitespace().take(2).collect::<Vec<_>>(), ["switch", "upstream_failed"], "{}", text.stdout());
    assert!(row("switch").ends_with("not run: `deploy` failed (through `rollout`)"), "{}", text.stdout());
    assert_eq!(row("approve_dns").split_whitespace().nth(1), Some("skipped"), "{}", text.stdout());

    let md = out.then().args(["report", &id]).run().success();
    let md = md.stdout();
    assert!(md.contains("| Steps | 1 succeeded, 1 failed, 1 skipped, 3 not run: upstream failed |"), "{md}");
    assert!(md.contains("not run because of `deploy` (upstream_failed): rollout, switch, verify"), "{md}");
    assert!(md.contains("| switch | exec | upstream_failed |"), "{md}");
    let html = out.then().args(["report", &id, "--format", "html"]).run().success();
    assert!(html.stdout().contains("<span class=\"status upstream_failed\">upstream_failed</span>"), "{}", html.stdout());
}

#[test]
fn a_failure_outweighs_a_skip_and_continue_on_error_does_not_launder_one() {
    let out = run(r#"version: 1
name: mixed
steps:
  gate:
    when: "false"
    uses: noop
  broken:
    uses: exec
    with: { script: "exit 1" }
  both:
    needs: [gate, broken]
    uses: exec
    with: { script: "touch both.ran" }
  tolerant:
    needs: [broken]
    continue_on_error: true
    uses: exec
    with: { script: "touch tolerant.ran" }
  after_tolerant:
    needs: [tolerant]
    trigger_rule: none_failed
    uses: exec
    with: { script: "touch after_tolerant.ran" }
  flaky:
    continue_on_error: true
    uses: exec
    with: { script: "exit 1" }
  after_flaky:
    needs: [flaky]
    trigger_rule: none_failed
    uses: exec
    with: { script: "touch after_flaky.ran" }
"#)
    .code(1);
    for never in ["both", "tolerant", "after_tolerant"] {
        assert!(!out.path().join(format!("{never}.ran")).exists(), "{never} ran after `broken` failed");
    }
    // A failure tolerated by `continue_on_error` is still tolerated.
    assert!(out.path().join("after_flaky.ran").exists(), "a tolerated failure stopped its dependent");
    let s = status(&out);
    assert_eq!(
        step_states(&s),
        [
            "gate=skipped",
            "broken=failed",
            "both=upstream_failed",
            "tolerant=upstream_failed",
            "after_tolerant=upstream_failed",
            "flaky=failed",
            "after_flaky=succeeded"
        ]
    );
    for id in ["both", "tolerant", "after_tolerant"] {
        assert_eq!(step(&s, id)["upstream"], "broken");
    }
}

#[test]
fn resume_runs_upstream_failed_steps_again_once_the_failed_step_succeeds() {
    let rb = FAILOVER.replace("{% if params.deploy_ok %}true{% else %}exit 1{% endif %}", "test -e fixed");
    let out = Test::new().file("r.yaml", &rb).args(["run", "r.yaml", "--no-wait"]).run().code(1);
    assert!(!out.path().join("SWITCHED").exists());
    let id = process::latest_run(&out.state_dir());
    // Resumed as it is: the failure is still there, and so is every upstream_failed step.
    out.then().args(["resume", &id, "--no-wait"]).run().code(1);
    assert!(!out.path().join("SWITCHED").exists(), "a resume switched with the deploy still failing");
    assert_eq!(step(&status(&out), "switch")["status"], "upstream_failed");
    // The operator fixes the cause: the steps not run for it run now, the gate stays skipped.
    std::fs::write(out.path().join("fixed"), "").unwrap();
    out.then().args(["resume", &id, "--no-wait"]).run().success();
    assert!(out.path().join("SWITCHED").exists() && out.path().join("verify.ran").exists());
    let s = status(&out);
    assert_eq!(s["status"], "succeeded");
    assert_eq!(
        step_states(&s),
        ["deploy=succeeded", "rollout=succeeded", "approve_dns=skipped", "switch=succeeded", "verify=succeeded", "page=skipped"]
    );
    assert!(step(&s, "switch").get("upstream").is_none_or(|u| u.is_null()), "{s:#}");
}

#[test]
fn upstream_failed_keeps_the_first_failure_down_a_long_chain() {
    let out = run(r#"version: 1
name: chain
steps:
  a:
    uses: exec
    with: { script: "exit 1" }
  b:
    needs: [a]
    trigger_rule: none_failed
    uses: exec
    with: { script: "touch b.ran" }
  gate:
    needs: [b]
    when: "false"
    uses: noop
  c:
    needs: [b, gate]
    trigger_rule: none_failed
    uses: exec
    with: { script: "touch c.ran" }
  d:
    needs: [c]
    trigger_rule: none_failed
    uses: exec
    with: { script: "touch d.ran" }
  cleanup:
    needs: [d]
    trigger_rule: all_done
    uses: exec
    with: { script: "touch cleanup.ran" }
"#)
    .code(1);
    for never in ["b", "c", "d"] {
        assert!(!out.path().join(format!("{never}.ran")).exists(), "{never} ran after `a` failed");
    }
    assert!(out.path().join("cleanup.ran").exists(), "all_done must still run");
    let s = status(&out);
    assert_eq!(
        step_states(&s),
        ["a=failed", "b=upstream_failed", "gate=upstream_failed", "c=upstream_failed", "d=upstream_failed", "cleanup=succeeded"]
    );
    for id in ["b", "gate", "c", "d"] {
        assert_eq!(step(&s, id)["upstream"], "a", "{s:#}");
    }
}

/// The shipped drill has the same shape as dr-failover (`deploy` → optional approval →
/// `switch_dns` with `none_failed`). When the very first stage fails, every stage after it
/// is `upstream_failed`, and the switch (which writes the sandbox's `dns` file) never runs.
#[test]
fn the_shipped_drill_does_not_switch_when_its_first_stage_fails() {
    let setup = Test::new().file("sandbox/aws/objects/a.json", "{}");
    let sandbox = setup.path().join("sandbox");
    let drill = crate::support::repo_root().join("runbooks/drill.yaml");
    // No `aws/DOWN` marker: `confirm` fails (the primary is not down).
    let out = setup.args(["run", "--no-wait"]).arg(&drill).args(["--param", &format!("sandbox={}", sandbox.display())]).run().code(1);
    assert!(!sandbox.join("dns").exists(), "the drill switched DNS after its first stage failed:\n{}", out.stderr());
    let s = status(&out);
    assert_eq!(step(&s, "confirm")["status"], "failed");
    for id in ["replicate_db", "list_objects", "sync_storage", "provision", "deploy", "approve_switch", "switch_dns", "verify"] {
        let st = step(&s, id);
        assert_eq!((st["status"].as_str(), st["upstream"].as_str()), (Some("upstream_failed"), Some("confirm")), "{id}: {st:#}");
    }
    // on_failure paged, naming the step that failed, not the ones it kept from running.
    assert_eq!(lines(&sandbox.join("pager.log")), [format!("drill {} failed at confirm", s["id"].as_str().unwrap())]);

    // The other side: with the primary marked down, the same drill switches (another
    // sandbox: the failed run still holds its sandbox's lock).
    let ok = out.path().join("sandbox_ok");
    std::fs::create_dir_all(ok.join("aws/objects")).unwrap();
    for (f, text) in [("aws/DOWN", ""), ("aws/db.sql", "row\n"), ("aws/objects/a.json", "{}")] {
        std::fs::write(ok.join(f), text).unwrap();
    }
    let again = out
        .then()
        .args(["run", "--no-wait"])
        .arg(&drill)
        .args(["--param", &format!("sandbox={}", ok.display()), "--param", "objects=1", "--param", "pace=0"])
        .run()
        .success();
    assert_eq!(std::fs::read_to_string(ok.join("dns")).unwrap().trim(), "azure", "{}", again.stderr());
}
