//! Guarantee 2: a leader paused (SIGSTOP) longer than its lease, then continued, commits
//! nothing more: the node that leads meanwhile finishes the run, and every step after the
//! pause ran once, under the new leader's token.

use crate::cluster_support::{Cluster, touch};
use crate::process::wait_for;

#[test]
fn a_leader_paused_past_its_lease_commits_nothing_after_it_wakes_ten_times() {
    let c = Cluster::start(2, &[("chain.yaml", super::CHAIN)]);
    let go = c.go();
    for round in 0..10 {
        let (old, id) = c.run_to_b("chain");
        let old_token = token_of(&c, &format!("b-start {id}"), 0);
        c.pause(old);
        // The other node leads, under a newer token, and runs `b` again under it; the paused
        // node's `b` was stopped.
        let new = c.leader_except(old);
        let new_token = c.view(new)["current"]["token"].as_u64().expect("a token");
        assert!(new_token > old_token, "round {round}: {old_token} then {new_token}");
        c.wait_ledger(&format!("b-start {id} {new_token}"), 1);
        let said_before = c.stderr(old).matches("deposed").count();
        c.unpause(old);
        // It learns it was deposed (its lease is gone, or its first commit is refused), says
        // so, and follows (or leads again only under a newer token, after a later election).
        wait_for("the old leader to say it was deposed", std::time::Duration::from_secs(60), || {
            c.stderr(old).matches("deposed").count() > said_before
        });
        let since = std::time::Instant::now();
        loop {
            let v = c.view(old);
            if v["leader"] == false || v["current"]["token"].as_u64() > Some(new_token) {
                break;
            }
            // Says what every node saw: this wait failed once under `make test` (issue 16).
            assert!(since.elapsed() < std::time::Duration::from_secs(60), "round {round}: the old leader still says {v}\n{}", c.dump(&id));
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        touch(&go);
        let run = c.wait_status(&id, "succeeded");
        assert_eq!(run["owner"], format!("n{new}"), "round {round}");
        assert_eq!(c.count(&format!("a {id}")), 1, "round {round}: {:?}", c.ledger());
        assert_eq!(c.count(&format!("b-done {id}")), 1, "round {round}: {:?}", c.ledger());
        assert_eq!(c.count(&format!("c {id}")), 1, "round {round}: {:?}", c.ledger());
        assert_eq!(token_of(&c, &format!("c {id}"), 0), new_token, "round {round}: c ran under the new leader only");
        // Nothing the old leader could have written after waking: b failed or was cancelled
        // there (its process was stopped), and no such transition is in the run.
        let steps = run["steps"].as_array().unwrap();
        assert!(steps.iter().all(|s| s["status"] == "succeeded"), "round {round}: {run}");
        let logs = c.node(new).get(&format!("/api/v1/runs/{id}/logs")).to_string();
        assert!(!logs.contains("\"failed\"") && !logs.contains("\"cancelled\""), "round {round}: {logs}");
    }
}

/// The token in the `n`th ledger line starting with `prefix`.
fn token_of(c: &Cluster, prefix: &str, n: usize) -> u64 {
    let lines: Vec<String> = c.ledger().into_iter().filter(|l| l.starts_with(prefix)).collect();
    lines[n].rsplit(' ').next().unwrap().parse().unwrap()
}
