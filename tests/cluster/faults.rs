//! Guarantee 4: etcd losing members. One of three: the run goes on. Two of three: the leader
//! commits nothing and says so on `/api/v1/cluster`, and carries on when quorum returns,
//! without losing or repeating a finished step.

use std::time::Duration;

use crate::cluster_support::{Cluster, touch};
use crate::process::wait_for;

#[test]
fn the_run_goes_on_without_one_member_and_waits_out_a_lost_quorum_ten_times() {
    let mut c = Cluster::start(2, &[("chain.yaml", super::CHAIN)]);
    let go = c.go();
    for round in 0..10 {
        // One member down mid-run: nothing notices.
        let (_, id) = c.run_to_b("chain");
        let one = round % 3;
        c.etcd.kill(one);
        touch(&go);
        c.wait_status(&id, "succeeded");
        assert_eq!(c.count(&format!("c {id}")), 1, "round {round}: {:?}", c.ledger());
        c.etcd.restart(one);

        // Two down: `b` ends, but its end cannot be committed, so `c` must not start.
        let (l, id) = c.run_to_b("chain");
        let (x, y) = (round % 3, (round + 1) % 3);
        c.etcd.kill(x);
        c.etcd.kill(y);
        touch(&go);
        c.wait_ledger(&format!("b-done {id}"), 1);
        wait_for("the leader to say it cannot act", Duration::from_secs(60), || !c.view(l)["paused"].is_null());
        assert_eq!(c.count(&format!("c {id}")), 0, "round {round}: nothing starts without quorum: {:?}", c.ledger());
        if round == 0 {
            // `phoenix status` from a terminal says so too, after its bounded wait.
            crate::support::Test::new().args(["--store", &c.url, "status", &id]).run().code(1).stderr_contains("quorum");
        }
        c.etcd.restart(x);
        c.etcd.restart(y);
        c.wait_status(&id, "succeeded");
        // Finished steps are never repeated. (`b` may run again only if the quorum came back
        // after the lease had expired and another node took over: it had not finished.)
        assert_eq!(c.count(&format!("a {id}")), 1, "round {round}: {:?}", c.ledger());
        assert_eq!(c.count(&format!("c {id}")), 1, "round {round}: {:?}", c.ledger());
        wait_for("the cluster to say it acts again", Duration::from_secs(60), || {
            c.leader_now().is_some_and(|i| c.view(i)["paused"].is_null())
        });
    }
}
