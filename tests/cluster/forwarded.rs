//! Any node takes writes: a follower forwards them to the leader, which acts; the follower
//! serves reads from the shared store. A terminal's handover to a follower is refused.

use crate::cluster_support::{Cluster, touch};
use crate::serve_support::ONCALL;

#[test]
fn a_run_started_and_cancelled_through_a_follower_is_the_leaders() {
    let c = Cluster::start(2, &[("chain.yaml", super::CHAIN)]);
    let leader = c.leader();
    let follower = 1 - leader;
    let id = c.start_run(follower, "chain");
    c.wait_ledger(&format!("b-start {id}"), 1);
    // The follower reads it from the shared store; the leader drives it.
    let run = c.node(follower).run(&id);
    assert_eq!(run["owner"], format!("n{leader}"), "{run}");
    let (status, v) = c.node(follower).call("POST", &format!("/api/v1/runs/{id}/cancel"), Some(ONCALL), Some("{}"));
    assert!(status < 300, "cancel through the follower: {status} {v}");
    let run = c.wait_status(&id, "cancelled");
    assert_eq!(run["owner"], format!("n{leader}"));
    touch(&c.ledger_path().with_extension("go"));
    assert_eq!(c.count(&format!("c {id}")), 0, "{:?}", c.ledger());
    // `phoenix run` on the follower's machine, handed to it over its socket: refused, nothing runs.
    let dir = c.node_dir(follower);
    let out = std::process::Command::new(crate::process::phoenix_bin())
        .current_dir(&dir)
        .args(["--state", "state", "run", "runbooks/chain.yaml"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("follows in the cluster"), "{stderr}");
    assert_eq!(c.count("a "), 1, "{:?}", c.ledger());
    // A command given a node's state directory, without --store, reads the cluster's runs.
    let out = std::process::Command::new(crate::process::phoenix_bin())
        .current_dir(&dir)
        .args(["--state", "state", "status", &id])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains(&id) && stdout.contains("cancelled"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_store_that_cannot_be_right_is_refused_before_anything_opens() {
    for (url, says) in [
        ("etcd://", "names no etcd member"),
        ("etcd://e1", "HOST:PORT"),
        ("postgres://x", "is not a store"),
        ("etcds://e1:2379?ca=", "names no file"),
    ] {
        crate::support::Test::new().args(["--store", url, "runs"]).run().code(2).stderr_contains(says);
    }
}
