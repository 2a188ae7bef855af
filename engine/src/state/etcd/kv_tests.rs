//! The etcd store against real etcd clusters: the store's behaviours, the lock race,
//! fencing, members lost and back, large values and batches, a crash mid-commit.

use std::sync::{Arc, Barrier};
use std::time::Duration;

use super::*;
use crate::state::{Approval, Batch, Cond, Kv, RunRecord, Store};

pub(super) fn put(k: &str, v: &[u8]) -> (Vec<u8>, Option<Vec<u8>>) {
    (k.as_bytes().to_vec(), Some(v.to_vec()))
}

fn run(id: &str, at: u64) -> RunRecord {
    RunRecord::sample(id, at)
}

/// The etcd keys under `prefix` (the store's bookkeeping included).
pub(super) fn raw_keys(kv: &EtcdKv, under: &str) -> Vec<String> {
    kv.etcd().range_prefix(&kv.key(under)).unwrap().into_iter().map(|e| String::from_utf8_lossy(&e.key).into_owned()).collect()
}

#[test]
fn etcd_store_keeps_the_stores_behaviours() {
    let cluster = EtcdCluster::start(1);
    let kv = Arc::new(EtcdKv::open(&cluster.url("t1")).unwrap());
    let store = Store::new(kv.clone()).unwrap();
    crate::state::store::tests::round_trips_and_orders_on(&store);
    assert!(raw_keys(&kv, "r/").iter().all(|k| k.starts_with("t1/r/")), "every key under the prefix");
    // A lock is taken only from the holder read before.
    let take = |run: &str, from: Option<&str>| {
        let mut b = Batch::default();
        b.put_run(&self::run(run, 1));
        b.lock("dr", run, from);
        store.try_commit(b, true).unwrap()
    };
    assert!(!take("c", None), "held: not free");
    assert!(store.run("c").unwrap().is_none(), "the losing batch wrote nothing");
    assert!(!take("c", Some("z")));
    assert!(take("c", Some("a")));
    assert_eq!(store.lock_holder("dr").unwrap().as_deref(), Some("c"));
    // `unchanged`: cancel against resume.
    let (_, seen) = store.run_seen("a").unwrap().unwrap();
    let (_, seen_too) = store.run_seen("a").unwrap().unwrap();
    let mut first = Batch::default();
    first.unchanged(&seen);
    first.put_run(&run("a", 5));
    assert!(store.try_commit(first, true).unwrap());
    let mut second = Batch::default();
    second.unchanged(&seen_too);
    second.put_run(&run("a", 6));
    assert!(!store.try_commit(second, true).unwrap());
    assert_eq!(store.run("a").unwrap().unwrap().started_at, 5);
    // One approval per gate.
    let decide = |by: &str| {
        let mut b = Batch::default();
        b.approval("a", "gate", &Approval { approved: true, by: by.into(), comment: None, at: 1, via: None });
        b
    };
    let (alice, carol) = (decide("alice"), decide("carol"));
    assert!(store.try_commit(alice, true).unwrap());
    assert!(!store.try_commit(carol, true).unwrap());
    assert_eq!(store.approval("a", "gate").unwrap().unwrap().by, "alice");
    // A value starting with 0xFF, an empty one, `last`, a delete.
    kv.commit(vec![put("w/1", &[0xFF, 1, 2]), put("w/2", b""), put("w/3", b"c")], true).unwrap();
    assert_eq!(kv.get(b"w/1").unwrap(), Some(vec![0xFF, 1, 2]));
    assert_eq!(kv.get(b"w/2").unwrap(), Some(Vec::new()));
    assert_eq!(kv.last(b"w/").unwrap(), Some((b"w/3".to_vec(), b"c".to_vec())));
    kv.commit(vec![(b"w/3".to_vec(), None)], true).unwrap();
    assert_eq!(kv.last(b"w/").unwrap().unwrap().0, b"w/2");
    assert_eq!(kv.last(b"nothing/").unwrap(), None);
    // Another prefix on the same cluster sees none of it.
    let other = EtcdKv::open(&cluster.url("t2")).unwrap();
    assert!(other.scan(b"").unwrap().is_empty());
}

#[test]
fn etcd_store_lock_race_has_exactly_one_winner() {
    let cluster = EtcdCluster::start(3);
    const RACERS: usize = 6;
    const ROUNDS: usize = 30;
    let stores: Vec<Arc<EtcdKv>> = (0..RACERS).map(|_| Arc::new(EtcdKv::open(&cluster.url("race")).unwrap())).collect();
    let barrier = Arc::new(Barrier::new(RACERS));
    let threads: Vec<_> = stores
        .iter()
        .enumerate()
        .map(|(i, kv)| {
            let (kv, barrier) = (kv.clone(), barrier.clone());
            std::thread::spawn(move || {
                (0..ROUNDS)
                    .map(|round| {
                        barrier.wait();
                        let lock = format!("k/dr-{round}");
                        let run = format!("r/{round}-{i}");
                        kv.commit_if(
                            &[Cond::Absent(lock.clone().into_bytes())],
                            vec![put(&lock, i.to_string().as_bytes()), put(&run, b"{}")],
                            true,
                        )
                        .unwrap()
                    })
                    .collect::<Vec<bool>>()
            })
        })
        .collect();
    let won: Vec<Vec<bool>> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let winners_of = |round: usize| -> Vec<usize> { won.iter().enumerate().filter(|(_, w)| w[round]).map(|(i, _)| i).collect() };
    for round in 0..ROUNDS {
        let winners = winners_of(round);
        assert_eq!(winners.len(), 1, "round {round}: winners {winners:?}");
        let holder = stores[0].get(format!("k/dr-{round}").as_bytes()).unwrap().unwrap();
        assert_eq!(holder, winners[0].to_string().into_bytes());
        let runs = stores[0].scan(format!("r/{round}-").as_bytes()).unwrap();
        assert_eq!(runs.len(), 1, "round {round}: only the winner's run");
    }
}

/// A leader key on a lease, as the election writes it: its create revision and the lease.
pub(super) fn lead(kv: &EtcdKv, ttl: i64) -> (Vec<u8>, i64, i64) {
    let key = kv.key("cluster/leader");
    let lease = kv.etcd().lease_grant(ttl).unwrap();
    let t = Txn {
        compare: vec![Compare::CreateRevision(key.clone(), 0)],
        success: vec![TxnOp::Put { key: key.clone(), value: b"node-a".to_vec(), lease }],
        failure: vec![],
    };
    let r = kv.etcd().txn(&t).unwrap();
    assert!(r.succeeded);
    (key, r.revision, lease)
}

#[test]
fn etcd_store_fenced_commits_fail_once_leadership_is_lost() {
    let cluster = EtcdCluster::start(1);
    let kv = EtcdKv::open(&cluster.url("f")).unwrap();
    let mut lost = kv.fence_lost();
    let (key, rev, lease) = lead(&kv, 60);
    kv.set_fence(Fence::Key { key: key.clone(), create_revision: rev });
    assert!(kv.commit_if(&[], vec![put("r/a", b"1")], true).unwrap());
    // A failed condition under a held fence is a lost compare-and-set, not a lost fence.
    assert!(!kv.commit_if(&[Cond::Absent(b"r/a".to_vec())], vec![put("r/b", b"1")], true).unwrap());
    assert_eq!(kv.fence(), Fence::Key { key: key.clone(), create_revision: rev });
    assert!(lost.borrow_and_update().is_none());
    // The lease ends (a paused leader): the next commit is fenced and writes nothing.
    kv.etcd().lease_revoke(lease).unwrap();
    let big = vec![7u8; 3 << 20];
    let e = kv.commit_if(&[], vec![put("r/a", b"2"), put("r/c", b"1")], true).unwrap_err();
    assert!(e.starts_with("fenced:"), "{e}");
    assert!(lost.has_changed().unwrap());
    assert!(lost.borrow_and_update().as_deref().is_some_and(|w| w.starts_with("fenced:")));
    assert_eq!(kv.get(b"r/a").unwrap(), Some(b"1".to_vec()));
    assert_eq!(kv.get(b"r/c").unwrap(), None);
    // Deposed: every later commit fails at once, large ones included.
    assert!(kv.commit(vec![put("r/d", &big)], true).unwrap_err().starts_with("fenced:"));
    assert!(kv.flush().unwrap_err().starts_with("fenced:"));
    assert_eq!(kv.get(b"r/d").unwrap(), None);
    assert!(raw_keys(&kv, "p/").is_empty(), "no pieces written by a deposed leader");
    // A leader key created again (another node's term) fences the old token too.
    let (key, rev2, _) = lead(&kv, 60);
    kv.set_fence(Fence::Key { key: key.clone(), create_revision: rev2 });
    assert!(kv.commit(vec![put("r/e", b"1")], true).is_ok());
    kv.set_fence(Fence::Key { key, create_revision: rev });
    let e = kv.commit(vec![put("r/f", &big)], true).unwrap_err();
    assert!(e.starts_with("fenced:") && e.contains(&format!("created again at revision {rev2}")), "{e}");
    assert_eq!(kv.get(b"r/f").unwrap(), None);
}

#[test]
fn etcd_store_goes_on_with_one_member_down_and_waits_for_quorum() {
    let mut cluster = EtcdCluster::start(3);
    let kv = Arc::new(EtcdKv::open(&cluster.url("q")).unwrap());
    kv.commit(vec![put("r/0", b"0")], true).unwrap();
    cluster.kill(0);
    for i in 1..20 {
        kv.commit(vec![put(&format!("r/{i}"), b"x")], true).unwrap();
    }
    assert_eq!(kv.scan(b"r/").unwrap().len(), 20);
    // Two of three down: no quorum. A commit waits, and says since when.
    cluster.kill(1);
    let waiting = {
        let kv = kv.clone();
        std::thread::spawn(move || kv.commit_if(&[Cond::Absent(b"k/once".to_vec())], vec![put("k/once", b"a"), put("r/once", b"1")], true))
    };
    let mut polls = 0;
    while kv.unavailable_since().is_none() {
        polls += 1;
        assert!(polls < 1200, "the commit never reported etcd unavailable");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!waiting.is_finished(), "no quorum: the commit cannot have gone through");
    cluster.restart(0);
    cluster.restart(1);
    assert_eq!(waiting.join().unwrap(), Ok(true), "it goes through once quorum is back");
    assert_eq!(kv.unavailable_since(), None);
    assert_eq!(kv.get(b"r/once").unwrap(), Some(b"1".to_vec()));
    let once = kv.etcd().get(&kv.key("r/once")).unwrap().unwrap();
    assert_eq!(once.create_revision, once.mod_revision, "written once, not twice");
}

#[test]
fn etcd_store_reads_say_when_etcd_has_no_quorum() {
    let mut cluster = EtcdCluster::start(3);
    let kv = EtcdKv::open(&cluster.url("r")).unwrap();
    cluster.kill(0);
    cluster.kill(1);
    let e = kv.get(b"r/x").unwrap_err();
    assert!(e.contains("unreachable or has no quorum") && e.contains(&cluster.endpoints()[2]), "{e}");
}

#[test]
fn etcd_store_a_commit_whose_answer_was_lost_is_not_taken_for_a_lost_race() {
    use super::kv::LOSE_ANSWERS;
    let cluster = EtcdCluster::start(1);
    let kv = EtcdKv::open(&cluster.url("lost")).unwrap();
    // Applied, answer lost, tried again: its own writes fail its condition now.
    LOSE_ANSWERS.with(|n| n.set(1));
    assert_eq!(kv.commit_if(&[Cond::Absent(b"k/dr".to_vec())], vec![put("k/dr", b"a"), put("r/a", b"1")], true), Ok(true));
    // Someone else's writes are not taken for its own.
    LOSE_ANSWERS.with(|n| n.set(1));
    assert_eq!(kv.commit_if(&[Cond::Absent(b"k/dr".to_vec())], vec![put("k/dr", b"b"), put("r/b", b"1")], true), Ok(false));
    assert_eq!(kv.get(b"r/b").unwrap(), None);
    // The same for a staged batch: its marker says it committed.
    let batch: Vec<_> = (0..300).map(|i| put(&format!("e/a/{i:04}"), b"x")).collect();
    LOSE_ANSWERS.with(|n| n.set(1));
    assert_eq!(kv.commit_if(&[Cond::Absent(b"k/big".to_vec())], [batch, vec![put("k/big", b"1")]].concat(), true), Ok(true));
    assert_eq!(kv.scan(b"e/a/").unwrap().len(), 300);
    assert!(raw_keys(&kv, "x/").is_empty());
    assert_eq!(kv.unavailable_since(), None);
}

/// A loopback proxy to `upstream` that passes the first request on and drops its answer, as a
/// member that applied a write and died before answering. Its port.
fn answer_dropping_proxy(upstream: u16) -> u16 {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let (mut client, _) = listener.accept().unwrap();
        let mut server = std::net::TcpStream::connect(("127.0.0.1", upstream)).unwrap();
        let mut to_server = server.try_clone().unwrap();
        let mut from_client = client.try_clone().unwrap();
        std::thread::spawn(move || std::io::copy(&mut from_client, &mut to_server));
        // The answer arrives: the write is applied. Nobody hears of it.
        let mut first = [0u8; 1];
        let _ = server.read_exact(&mut first);
        let _ = client.shutdown(std::net::Shutdown::Both);
        let _ = client.flush();
    });
    port
}

#[test]
fn etcd_store_a_write_applied_by_a_member_that_died_before_answering_counts_once() {
    let cluster = EtcdCluster::start(1);
    let kv = EtcdKv::open(&cluster.url("die")).unwrap();
    let real = cluster.endpoints()[0].clone();
    let port: u16 = real.rsplit(':').next().unwrap().parse().unwrap();
    let url = format!("etcd://127.0.0.1:{},{}/die", answer_dropping_proxy(port), real.trim_start_matches("http://"));
    // Its first request is the commit.
    let through = EtcdKv::connect(&url).unwrap();
    assert_eq!(
        through.commit_if(&[Cond::Absent(b"k/dr".to_vec())], vec![put("k/dr", b"a"), put("r/a", b"1")], true),
        Ok(true),
        "applied through the first member, confirmed by the second"
    );
    assert_eq!(kv.get(b"r/a").unwrap(), Some(b"1".to_vec()));
}

/// `etcds://`: the store works over TLS with the cluster's CA and a client certificate, and
/// is refused, saying why, without the certificate, with a CA that did not sign the members',
/// or in plain text.
#[test]
fn a_tls_cluster_is_reached_only_with_its_ca_and_a_client_certificate() {
    let cluster = EtcdCluster::start_tls(1);
    let url = cluster.url("tls");
    let kv = EtcdKv::open(&url).unwrap_or_else(|e| panic!("{url}: {e}"));
    kv.apply(vec![put("k", b"over TLS")]).unwrap();
    assert_eq!(kv.get(b"k").unwrap().as_deref(), Some(&b"over TLS"[..]));

    let ca = cluster.tls_file("ca.pem").display().to_string();
    let hosts = url.split('/').nth(2).unwrap().to_string();
    let refused = |url: &str| match EtcdKv::open(url) {
        Ok(_) => panic!("{url} was let in"),
        Err(e) => e,
    };
    let e = refused(&format!("etcds://{hosts}/tls?ca={ca}"));
    assert!(
        e.contains("cannot open the state store on etcd") && e.contains("TLS: ") && e.contains("cert= and key="),
        "no client certificate: {e}"
    );
    let other = cluster.tls_file("other-ca.pem").display().to_string();
    let e = refused(&url.replace(&ca, &other));
    assert!(e.contains("TLS: ") && e.contains("UnknownIssuer"), "a CA that signed nothing here: {e}");
    let e = refused(&format!("etcd://{hosts}/tls"));
    assert!(e.contains("cannot open the state store on etcd"), "plain text: {e}");
    let e = refused(&url.replace("client.key", "missing.key"));
    assert!(e.contains("cannot read the etcd client key file") && e.contains("missing.key"), "{e}");
    let e = refused(&url.replace(&ca, &cluster.tls_file("client.key").display().to_string()));
    assert!(e.contains("holds no certificate") || e.contains("is not PEM"), "{e}");
}
