//! Say why (issue 20 §5): `status` of a health run shows the total, the level and what `for:`
//! held back; a step skipped by its `when` says so and what the condition read.

use crate::process::step;
use crate::support::Test;

const HELD: &str = "\
version: 1
name: held
secrets:
  tok: { env: SAY_WHY_TOKEN }
signals:
  probe:
    uses: noop
    weight: [{ weight: 5 }]
levels:
  - { name: calm, max: 3 }
  - { name: act, for: 2 }
steps:
  heal:
    needs: [score]
    when: \"score.level == 'act' and score.total > 4\"
    uses: noop
  guarded:
    when: \"secrets.tok == 'open-sesame'\"
    uses: noop
  by_env:
    when: \"env.SAY_WHY_TOKEN == 'open-sesame'\"
    uses: noop
";

#[test]
fn status_of_a_health_run_says_the_level_what_for_held_back_and_why_a_step_was_skipped() {
    let t = Test::new().file("h.yaml", HELD).env("SAY_WHY_TOKEN", "hunter2-token-value").args(["run", "h.yaml"]).run().success();
    let text = t.then().args(["status"]).run().success();
    let text = text.stdout();
    assert!(text.contains("health: total 5 level calm (act held back by its `for: 2`: seen 1 time(s) in a row)"), "{text}");
    let heal = text.lines().find(|l| l.starts_with("heal ")).unwrap_or_else(|| panic!("{text}"));
    assert!(heal.contains("skipped"), "{heal}");
    assert!(
        heal.contains("`when` was false: score.level == 'act' and score.total > 4 (read score.level = \"calm\", score.total = 5"),
        "{heal}"
    );
    // A secret the condition read is named, never shown, in any form.
    let guarded = text.lines().find(|l| l.starts_with("guarded ")).unwrap_or_else(|| panic!("{text}"));
    assert!(guarded.contains("secrets.tok = (a secret, not shown)"), "{guarded}");
    // Nor the variable it comes from, read through `env`.
    let by_env = text.lines().find(|l| l.starts_with("by_env ")).unwrap_or_else(|| panic!("{text}"));
    assert!(by_env.contains("env.SAY_WHY_TOKEN = (environment, not shown)"), "{by_env}");
    let json = t.then().args(["status", "--output", "json"]).run().success().stdout_json();
    let note = step(&json, "heal")["error"].as_str().unwrap_or_default().to_string();
    assert!(note.starts_with("`when` was false"), "{json:#}");
    for dump in [text.to_string(), json.to_string(), t.then().args(["logs", json["id"].as_str().unwrap()]).run().stdout().to_string()] {
        assert!(!dump.contains("hunter2"), "{dump}");
    }
    // The second evaluation confirms `act`: the step runs, and the header has nothing held back.
    let t = t.then().args(["run", "h.yaml"]).run().success();
    let text = t.then().args(["status"]).run().success().stdout().to_string();
    assert!(text.contains("health: total 5 level act\n"), "{text}");
    let heal = text.lines().find(|l| l.starts_with("heal ")).unwrap_or_else(|| panic!("{text}"));
    assert!(heal.contains("succeeded") && !heal.contains("when"), "{heal}");
}

const ITEMS: &str = "\
version: 1
name: dry
params:
  pace: { type: string, default: slow }
  regions: { type: list, default: [eu-west-1, us-east-1] }
steps:
  each:
    for_each: \"{{ params.regions }}\"
    uses: exec
    with: { cmd: [echo, \"{{ item }}\", \"{{ params.pace }}\"] }
  script:
    for_each: [a, b]
    uses: exec
    with: { script: \"echo {{ item }} {{ params.pace }}\", dir: ./nope }
  later:
    for_each: \"{{ steps.each.outputs }}\"
    needs: [each]
    uses: exec
    with: { cmd: [echo, \"{{ item }}\", \"{{ params.pace }}\"] }
";

#[test]
fn dry_run_renders_for_each_items_and_params_and_checks_each_items_directory() {
    let t = Test::new().file("r.yaml", ITEMS).args(["run", "r.yaml", "--dry-run", "--param", "pace=fast"]).run().success();
    let out = t.stdout();
    assert!(out.contains("each (exec) for each of 2 item(s)"), "{out}");
    assert!(out.contains("exec echo eu-west-1 fast") && out.contains("exec echo us-east-1 fast"), "{out}");
    assert!(out.contains("with PHX_V1=a") && out.contains("with PHX_V1=b") && out.contains("with PHX_V2=fast"), "{out}");
    assert!(!out.contains("PHX_V1=''"), "{out}");
    // A list known only when it runs: the params are rendered all the same.
    assert!(out.contains("later (exec) after each for each item (the list is known when it runs)"), "{out}");
    assert!(out.contains("exec echo '‹item›' fast (inputs rendered when it runs)"), "{out}");
    assert!(!out.contains("{{ params.pace }}"), "{out}");
    assert!(out.contains("✗ script: every item: its directory `./nope` (`dir`) does not exist"), "{out}");
    // With the directory there, the checks pass; and nothing ran or was recorded.
    std::fs::create_dir(t.path().join("nope")).unwrap();
    let t = t.then().args(["run", "r.yaml", "--dry-run"]).run().success();
    assert!(t.stdout().contains("checks: every secret can be read"), "{}", t.stdout());
    let runs = t.then().args(["runs", "--output", "json"]).run().success().stdout_json();
    assert_eq!(runs["runs"].as_array().map_or(0, Vec::len), 0, "{runs:#}");
}

#[test]
fn logs_interleave_events_and_output_by_time() {
    let rb = "version: 1\nname: two\nsteps:\n  first:\n    uses: exec\n    with: { script: \"echo alpha-1; echo alpha-2\" }\n  second:\n    needs: [first]\n    uses: exec\n    with: { script: \"echo beta-1; echo beta-2\" }\n";
    let t = Test::new().file("r.yaml", rb).args(["run", "r.yaml"]).run().success();
    let id = t.then().args(["runs", "--output", "json"]).run().success().stdout_json()["runs"][0]["id"].as_str().unwrap().to_string();
    let out = t.then().args(["logs", &id]).run().success();
    let text = out.stdout();
    let pos = |needle: &str| text.lines().position(|l| l.contains(needle)).unwrap_or_else(|| panic!("no `{needle}` in\n{text}"));
    let order = [
        pos("event  run started"),
        pos("event  first running"),
        pos("[first] alpha-1"),
        pos("[first] alpha-2"),
        pos("event  first succeeded"),
        pos("event  second running"),
        pos("[second] beta-1"),
        pos("[second] beta-2"),
        pos("event  second succeeded"),
        pos("event  run succeeded"),
    ];
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{order:?} in\n{text}");
    // Every line is there once: nothing lost or doubled by the merge.
    assert_eq!(text.lines().filter(|l| l.contains("alpha-") || l.contains("beta-")).count(), 4, "{text}");
}
