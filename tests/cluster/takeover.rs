//! Guarantee 1: the leader SIGKILLed mid-run; a follower leads and resumes the run by the
//! crash-resume rules, and the run says who took it from whom.

use crate::cluster_support::{Cluster, touch};

#[test]
fn a_follower_takes_over_a_run_whose_leader_was_killed_ten_times() {
    let mut c = Cluster::start(2, &[("chain.yaml", super::CHAIN)]);
    let go = c.go();
    for round in 0..10 {
        let (old, id) = c.run_to_b("chain");
        c.kill(old);
        // The other node leads, under a newer token, and runs `b` again (idempotent, found in
        // flight) once under it.
        let new = c.leader();
        assert_ne!(new, old, "round {round}");
        let token = c.view(new)["current"]["token"].as_u64().expect("a token");
        c.wait_ledger(&format!("b-start {id} {token}"), 1);
        touch(&go);
        let run = c.wait_status(&id, "succeeded");
        assert_eq!(run["owner"], format!("n{new}"), "round {round}: {run}");
        assert_eq!(c.count(&format!("a {id}")), 1, "round {round}: a ran once: {:?}", c.ledger());
        assert_eq!(c.count(&format!("b-start {id} {token}")), 1, "round {round}: b ran again once: {:?}", c.ledger());
        assert_eq!(c.count(&format!("b-done {id}")), 1, "round {round}: the old leader's b was stopped: {:?}", c.ledger());
        assert_eq!(c.count(&format!("c {id} {token}")), 1, "round {round}: c ran once, under the new leader: {:?}", c.ledger());
        assert_eq!(c.count(&format!("c {id}")), 1, "round {round}: {:?}", c.ledger());
        let logs = c.node(new).get(&format!("/api/v1/runs/{id}/logs"));
        assert!(logs.to_string().contains(&format!("taken over by n{new} from n{old}")), "round {round}: {logs}");
        // The first start's token is older: a system that checks tokens refuses the old leader.
        let first: u64 =
            c.ledger().iter().find(|l| l.starts_with(&format!("b-start {id}"))).and_then(|l| l.rsplit(' ').next()?.parse().ok()).unwrap();
        assert!(token > first && first > 0, "round {round}: {first} then {token}");
        c.up(old);
    }
}

#[test]
fn a_non_idempotent_step_in_flight_halts_for_an_operator_after_a_takeover() {
    let mut c = Cluster::start(2, &[("switch.yaml", &super::switch())]);
    let go = c.go();
    for round in 0..10 {
        let (old, id) = c.run_to_b("switch");
        c.kill(old);
        let run = c.wait_status(&id, "halted");
        let new = c.leader();
        assert_ne!(new, old);
        assert!(run["error"].as_str().unwrap_or("").contains("--retry"), "round {round}: says what to do: {run}");
        touch(&go);
        assert_eq!(c.count(&format!("b-start {id}")), 1, "round {round}: b was not run again: {:?}", c.ledger());
        assert_eq!(c.count(&format!("c {id}")), 0, "round {round}: {:?}", c.ledger());
        let logs = c.node(new).get(&format!("/api/v1/runs/{id}/logs"));
        assert!(logs.to_string().contains(&format!("taken over by n{new} from n{old}")), "round {round}: {logs}");
        c.up(old);
    }
}
