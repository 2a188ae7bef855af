//! Guarantee 1: the leader SIGKILLed mid-run; a follower leads and resumes the run by the
//! crash-resume rules, and the run says who took it from whom.

use crate::cluster_support::{Cluster, touch};

#[test]
fn a_follower_takes_over_a_run_whose_leader_was_killed_ten_times() {
    let mut c = Cluster::start(2, &[("chain.yaml", super::CHAIN)]);
    let go = c.ledger_path().with_extension("go");
    for round in 0..10 {
        let _ = std::fs::remove_file(&go);
        let old = c.leader();
        let id = c.start_run(old, "chain");
        c.wait_ledger(&format!("b-start {id}"), 1);
        c.kill(old);
        // The other node leads, and runs `b` again (idempotent, found in flight).
        c.wait_ledger(&format!("b-start {id}"), 2);
        let new = c.leader();
        assert_ne!(new, old, "round {round}");
        touch(&go);
        let run = c.wait_status(&id, "succeeded");
        assert_eq!(run["owner"], format!("n{new}"), "round {round}: {run}");
        assert_eq!(c.count(&format!("a {id}")), 1, "round {round}: a ran once: {:?}", c.ledger());
        assert_eq!(c.count(&format!("b-start {id}")), 2, "round {round}: b ran again once: {:?}", c.ledger());
        assert_eq!(c.count(&format!("b-done {id}")), 1, "round {round}: the old leader's b was stopped: {:?}", c.ledger());
        assert_eq!(c.count(&format!("c {id}")), 1, "round {round}: c ran once: {:?}", c.ledger());
        let logs = c.node(new).get(&format!("/api/v1/runs/{id}/logs"));
        assert!(logs.to_string().contains(&format!("taken over by n{new} from n{old}")), "round {round}: {logs}");
        // The second token is larger: a system that checks tokens refuses the old leader.
        let tokens: Vec<u64> = c
            .ledger()
            .iter()
            .filter(|l| l.starts_with(&format!("b-start {id}")))
            .map(|l| l.rsplit(' ').next().unwrap().parse().unwrap())
            .collect();
        assert!(tokens[1] > tokens[0] && tokens[0] > 0, "round {round}: {tokens:?}");
        c.up(old);
    }
}

#[test]
fn a_non_idempotent_step_in_flight_halts_for_an_operator_after_a_takeover() {
    let mut c = Cluster::start(2, &[("switch.yaml", &super::switch())]);
    let go = c.ledger_path().with_extension("go");
    for round in 0..10 {
        let _ = std::fs::remove_file(&go);
        let old = c.leader();
        let id = c.start_run(old, "switch");
        c.wait_ledger(&format!("b-start {id}"), 1);
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
