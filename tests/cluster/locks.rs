//! Guarantee 3: `lock:` is one compare-and-create transaction in etcd. Two `phoenix run`
//! processes on two "machines" (two directories, one etcd) start a locked runbook at the
//! same instant: exactly one run, every time.

use std::time::Duration;

use phoenix_engine::state::EtcdCluster;

use crate::process::Background;

const GATED: &str = "version: 1\nname: failover\nlock: dr\nsteps:\n  gate:\n    uses: approval\n    with: { message: go? }\n  work:\n    needs: [gate]\n    uses: exec\n    with: { script: \"echo worked >> worked\" }\n";

#[test]
fn two_machines_starting_a_locked_runbook_at_once_make_exactly_one_run_ten_times() {
    let etcd = EtcdCluster::start(3);
    let url = etcd.url("phoenix-locks/");
    let root = tempfile::tempdir().unwrap();
    let dirs: Vec<_> = (0..2).map(|i| root.path().join(format!("m{i}"))).collect();
    for d in &dirs {
        std::fs::create_dir_all(d).unwrap();
        std::fs::write(d.join("a.yaml"), GATED).unwrap();
    }
    for round in 0..10 {
        let racers: Vec<Background> = dirs
            .iter()
            .map(|d| {
                let state = d.join("state").display().to_string();
                Background::start(d, &["--state", &state, "--store", &url, "run", "a.yaml", "--no-wait"])
            })
            .collect();
        let ended: Vec<_> = racers.into_iter().map(|b| b.wait(Duration::from_secs(120))).collect();
        let codes: Vec<Option<i32>> = ended.iter().map(|e| e.code).collect();
        let won: Vec<_> = ended.iter().filter(|e| e.code == Some(3)).collect();
        let lost: Vec<_> = ended.iter().filter(|e| e.code == Some(2)).collect();
        assert!(won.len() == 1 && lost.len() == 1, "round {round}: exactly one run: {codes:?}\n{ended:#?}");
        assert!(lost[0].stderr.contains("phoenix cancel"), "round {round}: the refusal names the holder: {}", lost[0].stderr);
        // Every run the store holds: one per round, none of the losers'.
        let runs = crate::support::Test::new().args(["--store", &url, "runs", "--output", "json"]).run().success().stdout_json();
        let unfinished: Vec<_> = runs.as_array().unwrap().iter().filter(|r| r["status"] != "cancelled").collect();
        assert_eq!(unfinished.len(), 1, "round {round}: {runs}");
        let holder = unfinished[0]["id"].as_str().unwrap().to_string();
        crate::support::Test::new().args(["--store", &url, "cancel", &holder]).run().success();
    }
    assert!(dirs.iter().all(|d| !d.join("worked").exists()), "the gate held: nothing worked");
}
