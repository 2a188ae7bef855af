//! The engine on the etcd store: a run end to end, and two nodes starting one locked runbook.

use std::sync::{Arc, Barrier, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::*;
use crate::exec::{Engine, EngineOptions, Outcome, Silent, StartOptions};
use crate::state::{RunStatus, StepStatus, Store};

fn engine(store: Store, dir: &std::path::Path) -> Engine {
    let opts = EngineOptions { state_dir: dir.to_path_buf(), grace: Duration::from_secs(1), operator: "test".into() };
    Engine::new(store, opts, Arc::new(Silent), CancellationToken::new())
}

fn runbook(text: &str) -> Arc<crate::runbook::Runbook> {
    Arc::new(crate::runbook::load_str(text, std::path::Path::new("rb.yaml")).runbook.expect("a valid runbook"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_engine_runs_a_runbook_to_the_end() {
    let cluster = EtcdCluster::start(3);
    let store = Store::new(Arc::new(EtcdKv::open(&cluster.url("e2e")).unwrap())).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let mut text = String::from("version: 1\nname: chain\nsteps:\n  s0:\n    uses: noop\n");
    for i in 1..30 {
        text.push_str(&format!("  s{i}:\n    uses: noop\n    needs: [s{}]\n", i - 1));
    }
    text.push_str("  said:\n    uses: exec\n    needs: [s29]\n    with: { script: \"seq 1 2000\" }\n");
    let (id, outcome) = engine(store.clone(), tmp.path()).start(runbook(&text), StartOptions::default()).await.unwrap();
    assert_eq!(outcome, Outcome::Succeeded);
    assert_eq!(store.run(&id).unwrap().unwrap().status, RunStatus::Succeeded);
    let steps = store.steps(&id).unwrap();
    assert_eq!(steps.len(), 31);
    assert!(steps.iter().all(|s| s.status == StepStatus::Succeeded), "{steps:?}");
    assert_eq!(store.logs(&id, Some("said")).unwrap().len(), 2000, "every output line");
}

#[test]
fn etcd_engine_two_nodes_starting_one_locked_runbook_make_one_run() {
    let cluster = EtcdCluster::start(3);
    let tmp = tempfile::tempdir().unwrap();
    let rb = runbook("version: 1\nname: failover\nlock: dr\nsteps:\n  gate:\n    uses: approval\n    with: { message: go? }\n");
    for round in 0..10 {
        // Two nodes: each its own client of the cluster, on one prefix per round.
        let url = cluster.url(&format!("locks-{round}"));
        let engines: Vec<Engine> = (0..2).map(|_| engine(Store::new(Arc::new(EtcdKv::open(&url).unwrap())).unwrap(), tmp.path())).collect();
        let barrier = Barrier::new(2);
        let results = Mutex::new(Vec::new());
        std::thread::scope(|s| {
            for engine in &engines {
                let (rb, results, barrier) = (rb.clone(), &results, &barrier);
                s.spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
                    barrier.wait();
                    let r = rt.block_on(engine.start(rb, StartOptions { no_wait: true, ..StartOptions::default() }));
                    results.lock().unwrap().push(r.map_err(|e| e.to_string()));
                });
            }
        });
        let results = results.into_inner().unwrap();
        let store = Store::new(Arc::new(EtcdKv::open(&url).unwrap())).unwrap();
        let runs = store.runs().unwrap();
        assert_eq!(runs.len(), 1, "round {round}: one run, not two: {results:?}");
        assert_eq!(store.lock_holder("dr").unwrap().as_ref(), Some(&runs[0].id));
        assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1, "round {round}: {results:?}");
        let lost = results.iter().find_map(|r| r.as_ref().err()).expect("one start refused");
        assert!(lost.contains("the lock `dr` is held by run"), "{lost}");
    }
}
