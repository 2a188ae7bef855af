use super::*;

fn load(text: &str) -> Runbook {
    crate::runbook::load_str(text, std::path::Path::new("r.yaml")).runbook.expect("valid")
}

fn ids(rb: &Runbook) -> Vec<&str> {
    rb.main.steps.iter().map(|s| s.id.as_str()).collect()
}

/// Only reads whose needs all read: a read after a change, a step that says it changes
/// things, an approval and a child run stay out, and so does what follows them.
#[test]
fn a_dry_run_keeps_the_reads_that_need_only_reads() {
    let rb = load(
        r#"version: 1
name: cut
steps:
  look: { uses: exec, effect: read, with: { cmd: ["true"] } }
  again: { needs: [look], uses: assert, with: { that: "true" } }
  change: { needs: [look], uses: exec, with: { cmd: ["true"] } }
  after_change: { needs: [change], uses: exec, effect: read, with: { cmd: ["true"] } }
  ask: { uses: approval, with: { message: "go?" } }
  after_ask: { needs: [ask], uses: noop }
  child: { uses: runbook, with: { file: other.yaml } }
"#,
    );
    let cut = reads_only(&rb).expect("some reads");
    assert_eq!(ids(&cut), ["look", "again"]);
    assert_eq!(cut.main.steps[1].needs, [0], "needs point into the cut plan");
    assert!(cut.lock.is_none() && cut.on_failure.steps.is_empty() && cut.outputs.is_empty());

    let none = load("version: 1\nname: none\nsteps:\n  change: { uses: exec, with: { cmd: [\"true\"] } }\n");
    assert!(reads_only(&none).is_none());
}
