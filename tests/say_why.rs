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
