//! Only the leader runs the watch loops: one node evaluates a runbook's health, not each of
//! them, and after a takeover the new leader does.

use std::time::Duration;

use crate::cluster_support::Cluster;
use crate::process::wait_for;

/// A health runbook whose probe writes where it ran (the node's directory) to the ledger.
const WATCHED: &str = r#"version: 1
name: watched
signals:
  probe:
    uses: exec
    with:
      script: |
        echo "probe $(pwd)" >> '{{LEDGER}}'
    weight:
      - { weight: 0 }
levels:
  - { name: ok, max: 1 }
  - { name: act, for: 3 }
steps:
  act:
    needs: [score]
    when: "score.level == 'act'"
    uses: noop
"#;

#[test]
fn only_the_leader_evaluates_a_watched_runbook_and_the_next_one_takes_over() {
    let mut c = Cluster::start(2, &[("watched.yaml", WATCHED)]);
    for i in 0..2 {
        let yaml = std::fs::read_to_string(c.node_dir(i).join("serve.yaml")).unwrap();
        std::fs::write(c.node_dir(i).join("serve.yaml"), format!("{yaml}watch:\n  - {{ runbook: watched.yaml, every: 200ms }}\n")).unwrap();
        c.kill(i);
        c.up(i);
    }
    let leader = c.leader();
    let probes = |c: &Cluster, i: usize| c.count(&format!("probe {}", c.node_dir(i).display()));
    wait_for("the leader to evaluate", Duration::from_secs(60), || probes(&c, leader) >= 3);
    assert_eq!(probes(&c, 1 - leader), 0, "the follower evaluated: {:?}", c.ledger());
    c.kill(leader);
    let next = c.leader();
    let before = probes(&c, next);
    wait_for("the new leader to evaluate", Duration::from_secs(60), || probes(&c, next) >= before + 3);
}
