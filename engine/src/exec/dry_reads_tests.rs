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

/// A cut runbook guards nothing: its invariants name steps of the whole plan by index, and
/// kept, they would be checked around whatever step now has that index (a probe of
/// `phoenix health`, a read of a dry run).
#[test]
fn a_cut_runbook_keeps_no_invariant_nor_on_abort() {
    let rb = load(
        r#"version: 1
name: guarded
signals:
  up:
    uses: exec
    with: { cmd: ["true"] }
    weight: [{ weight: 0 }]
levels:
  - { name: fine, max: 1 }
  - { name: bad }
steps:
  look: { uses: exec, effect: read, with: { cmd: ["true"] } }
  switch: { needs: [look], uses: exec, with: { cmd: ["true"] } }
on_abort:
  undo: { uses: exec, with: { cmd: ["true"] } }
invariants:
  one_site:
    check: { uses: exec, effect: read, with: { cmd: ["false"] } }
    that: "false"
    around: [switch]
"#,
    );
    assert_eq!(rb.invariants.len(), 1);
    for cut in [reads_only(&rb).expect("reads"), super::super::cut::cut(&rb, |s| !matches!(s.role, Role::Action)).expect("signals")] {
        assert!(cut.invariants.is_empty(), "{:?}", cut.invariants);
        assert!(cut.on_abort.steps.is_empty() && cut.on_failure.steps.is_empty() && cut.teardown.steps.is_empty() && cut.drill.is_none());
    }
}
