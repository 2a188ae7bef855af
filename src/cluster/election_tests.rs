use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use phoenix_engine::state::{EtcdCluster, EtcdKv, Fence};

use super::*;

/// The next change of role, waiting at most `within`.
fn next(rx: &mut tokio::sync::mpsc::UnboundedReceiver<Change>, within: Duration) -> Option<Change> {
    let until = Instant::now() + within;
    while Instant::now() < until {
        if let Ok(c) = rx.try_recv() {
            return Some(c);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    None
}

/// A commit refused by the fence (the store says so on its `fence_lost` channel) deposes
/// the leader, and the election goes on. Deposing sends on that same channel: the thread
/// once deadlocked there, and the node said it led for ever (issue 16's flaky fencing test).
#[test]
fn a_commit_refused_by_the_fence_deposes_the_leader_and_the_election_goes_on() {
    let etcd = EtcdCluster::start(1);
    let kv = Arc::new(EtcdKv::open(&etcd.url("election-test/")).expect("opens"));
    let cluster = Arc::new(Cluster::etcd("n0".into()));
    let info = NodeInfo { node: "n0".into(), url: "http://127.0.0.1:1".into(), pid: 1, host: "h".into(), started_at: String::new() };
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let stop = Arc::new(AtomicBool::new(false));
    let thread = start(cluster.clone(), kv.clone(), info, Duration::from_secs(2), tx, stop.clone());

    let Some(Change::Elected { token, .. }) = next(&mut rx, Duration::from_secs(20)) else { panic!("not elected") };
    assert!(cluster.is_leader());
    // What the store does when a commit meets another leader's key.
    kv.set_fence(Fence::Deposed("fenced: test".into()));
    match next(&mut rx, Duration::from_secs(10)) {
        Some(Change::Deposed { why }) => assert!(why.contains("fenced: test"), "{why}"),
        other => panic!("not deposed: {other:?}"),
    }
    // The thread still runs: the key is still on its lease, so it wins it back, under the
    // token it had (no other node took it).
    match next(&mut rx, Duration::from_secs(10)) {
        Some(Change::Elected { token: again, .. }) => assert_eq!(again, token),
        other => panic!("the election stopped: {other:?}"),
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    thread.join().expect("the election thread ends");
}
