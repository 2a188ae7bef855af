use std::os::unix::process::CommandExt;
use std::sync::Arc;

use phoenix_engine::state::{EtcdCluster, EtcdKv, Fence, Store, TxnOp};

use super::*;

/// A cluster node that was deposed and does not know it yet (its fence names a leader key
/// another node has since created again) is asked to cancel a crashed run: it must stop no
/// process of that run, which another node may be driving now, and write nothing.
#[tokio::test(flavor = "multi_thread")]
async fn a_deposed_node_cancelling_a_crashed_run_stops_none_of_its_processes() {
    let etcd = EtcdCluster::start(1);
    let kv = Arc::new(EtcdKv::open(&etcd.url("ops-test/")).expect("opens"));
    let store = Store::new(kv.clone()).expect("a store");
    let run = "20261206-000000-dead";
    let record: RunRecord = serde_json::from_value(json!({
        "format": 3, "id": run, "runbook": "rb", "file": "rb.yaml", "status": "running", "params": {}, "vars": {},
        "attempt": 1, "started_at": 1, "updated_at": 1
    }))
    .expect("a run record");
    let mut b = Batch::default();
    b.put_run(&record);
    store.commit(b, true).expect("written");

    // This node led under the key as first created; another node has created it since.
    let leader = kv.key("cluster/leader");
    let put = |v: &str| {
        let t = phoenix_engine::state::Txn {
            compare: vec![],
            success: vec![TxnOp::Put { key: leader.clone(), value: v.as_bytes().to_vec(), lease: 0 }],
            failure: vec![],
        };
        kv.etcd().txn(&t).expect("put").revision
    };
    let mine = put("n0");
    kv.etcd()
        .txn(&phoenix_engine::state::Txn { compare: vec![], success: vec![TxnOp::Delete(leader.clone())], failure: vec![] })
        .expect("deleted");
    put("n1");
    kv.set_fence(Fence::Key { key: leader.clone(), create_revision: mine });

    // A step process of the run, as the node now driving it would have on this machine.
    let mut step = std::process::Command::new("sleep").arg("60").env("PHOENIX_RUN_ID", run).process_group(0).spawn().expect("sleep");
    let r = cancel_stored(&store, run, "op").await;
    let alive = step.try_wait().expect("waits").is_none();
    let _ = step.kill();
    let _ = step.wait();
    assert!(alive, "the run's step process was stopped by a node that may not write the run");
    let e = r.expect_err("a deposed node cancelled a run");
    assert!(e.contains("nothing was stopped") && e.contains("fenced"), "{e}");
    assert_eq!(store.run(run).unwrap().unwrap().status, RunStatus::Running, "nothing written");
}
