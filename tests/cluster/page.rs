//! The page on a cluster's nodes (headless Chromium): a follower says whom it follows; a
//! node that cannot act (etcd without quorum) says so in red; the metrics say who leads.

use std::time::Duration;

use serde_json::json;

use crate::chromium::Chromium;
use crate::cluster_support::Cluster;
use crate::process::wait_for;
use crate::serve_support::ONCALL;

#[test]
fn a_follower_says_whom_it_follows_and_a_node_without_quorum_says_it_does_not_act() {
    let mut page = Chromium::start();
    let mut c = Cluster::start(2, &[("chain.yaml", super::CHAIN)]);
    let leader = c.leader();
    let follower = 1 - leader;
    let (status, metrics) = crate::serve_support::request(&c.node(follower).addr, "GET", "/metrics", Some(ONCALL), None);
    assert_eq!(status, 200);
    assert!(metrics.lines().any(|l| l == format!("phoenix_leader{{node=\"n{follower}\"}} 0")), "{metrics}");

    page.open(&format!("http://{}/#token={ONCALL}", c.node(follower).addr));
    let want = format!("This node (n{follower}) is a follower of n{leader}; writes go to it.");
    page.wait_until("the follower banner", &format!("document.getElementById('cluster-banner').textContent === {}", json!(want)));
    assert_eq!(page.eval("document.getElementById('cluster-banner').hidden"), json!(false));

    // Two of three etcd members gone: the leader's page says it does not act.
    page.open(&format!("http://{}/#token={ONCALL}", c.node(leader).addr));
    c.etcd.kill(0);
    c.etcd.kill(1);
    wait_for("the leader to say it cannot act", Duration::from_secs(60), || !c.view(leader)["paused"].is_null());
    page.wait_until(
        "the red banner",
        "document.getElementById('cluster-banner').textContent.startsWith('Not acting: ') && document.getElementById('cluster-banner').classList.contains('paused')",
    );
    c.etcd.restart(0);
    c.etcd.restart(1);
    page.wait_until("the banner to go", "document.getElementById('cluster-banner').hidden === true");
    assert_eq!(page.exceptions(), &[] as &[String]);
}
