use std::time::Duration;

use super::*;

fn client(c: &EtcdCluster) -> Etcd {
    Etcd::connect(c.endpoints(), Duration::from_secs(2)).unwrap()
}

fn put(k: &str, v: &str) -> TxnOp {
    TxnOp::Put { key: k.into(), value: v.into(), lease: 0 }
}

#[test]
fn etcd_client_speaks_the_gateway() {
    let cluster = EtcdCluster::start(1);
    let etcd = client(&cluster);
    assert_eq!(etcd.get(b"a").unwrap(), None);
    let create = |v: &str| Txn {
        compare: vec![Compare::CreateRevision(b"a".to_vec(), 0)],
        success: vec![put("a", v)],
        failure: vec![TxnOp::Get(b"a".to_vec())],
    };
    let first = etcd.txn(&create("1")).unwrap();
    assert!(first.succeeded && first.gets.is_empty());
    let second = etcd.txn(&create("2")).unwrap();
    assert!(!second.succeeded, "the key exists: the failure branch");
    let held = second.gets[0].clone().expect("the failure branch's get");
    assert_eq!((held.value.as_slice(), held.create_revision), (&b"1"[..], first.revision));
    // A value compare, a delete, an empty value and a get after them.
    let t = Txn {
        compare: vec![Compare::Value(b"a".to_vec(), b"1".to_vec())],
        success: vec![put("b", ""), TxnOp::Delete(b"a".to_vec()), TxnOp::Get(b"a".to_vec()), TxnOp::Get(b"b".to_vec())],
        failure: vec![],
    };
    let r = etcd.txn(&t).unwrap();
    assert!(r.succeeded);
    assert_eq!(r.gets.len(), 2);
    assert_eq!(r.gets[0], None);
    assert_eq!(r.gets[1].as_ref().map(|kv| kv.value.clone()), Some(Vec::new()));
    assert!(
        !etcd.txn(&Txn { compare: vec![Compare::Value(b"a".to_vec(), b"1".to_vec())], ..Txn::default() }).unwrap().succeeded,
        "a value compare on an absent key fails"
    );
    // Pages: more keys than one page holds, in order, none twice.
    for chunk in (0..600).collect::<Vec<_>>().chunks(100) {
        etcd.txn(&Txn { success: chunk.iter().map(|i| put(&format!("p/{i:04}"), "x")).collect(), ..Txn::default() }).unwrap();
    }
    let all = etcd.range_prefix(b"p/").unwrap();
    assert_eq!(all.len(), 600);
    assert!(all.windows(2).all(|w| w[0].key < w[1].key));
    // Leases.
    let lease = etcd.lease_grant(30).unwrap();
    assert!(etcd.lease_keepalive(lease).unwrap().is_some_and(|ttl| ttl > 0));
    assert!(etcd.lease_time_to_live(lease).unwrap().is_some());
    etcd.lease_revoke(lease).unwrap();
    assert_eq!(etcd.lease_keepalive(lease).unwrap(), None, "a revoked lease is gone");
    assert_eq!(etcd.lease_time_to_live(lease).unwrap(), None);
    etcd.lease_revoke(lease).unwrap();
    // The cluster.
    let members = etcd.members().unwrap();
    assert_eq!(members.len(), 1);
    assert_eq!(members[0].client_urls, cluster.endpoints());
    let status = etcd.endpoint_status(&cluster.endpoints()[0]).unwrap();
    assert_eq!(status.version, "3.4.23");
    assert_eq!(status.leader_id, members[0].id);
    // What etcd refuses says so.
    let too_many = Txn { success: (0..200).map(|i| put(&format!("t/{i}"), "x")).collect(), ..Txn::default() };
    assert!(matches!(etcd.txn(&too_many), Err(EtcdError::Rejected(e)) if e.contains("too many operations")));
}

#[test]
fn etcd_client_fails_over_and_says_when_nobody_answers() {
    let mut cluster = EtcdCluster::start(3);
    let etcd = client(&cluster);
    etcd.txn(&Txn { success: vec![put("k", "v")], ..Txn::default() }).unwrap();
    // A member that hangs: after its timeout, another answers.
    cluster.pause(0);
    assert_eq!(etcd.get(b"k").unwrap().unwrap().value, b"v", "another member answers");
    cluster.resume(0);
    cluster.kill(0);
    assert_eq!(etcd.get(b"k").unwrap().unwrap().value, b"v", "another member answers");
    cluster.kill(1);
    let err = etcd.get(b"k").unwrap_err();
    assert!(matches!(&err, EtcdError::Unavailable(_)), "{err}");
    cluster.restart(0);
    cluster.restart(1);
    cluster.wait_healthy();
    assert_eq!(etcd.get(b"k").unwrap().unwrap().value, b"v");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_client_blocks_in_place_on_a_multi_thread_runtime() {
    let cluster = EtcdCluster::start(1);
    let etcd = client(&cluster);
    // Another task keeps running while this one waits on etcd.
    let ticker = tokio::spawn(async { tokio::time::sleep(Duration::from_millis(1)).await });
    etcd.txn(&Txn { success: vec![put("k", "v")], ..Txn::default() }).unwrap();
    ticker.await.unwrap();
    let etcd2 = etcd.clone();
    assert!(tokio::task::spawn_blocking(move || etcd2.get(b"k")).await.unwrap().unwrap().is_some());
}

#[tokio::test(flavor = "current_thread")]
async fn etcd_client_works_on_a_current_thread_runtime() {
    let cluster = EtcdCluster::start(1);
    let etcd = client(&cluster);
    etcd.txn(&Txn { success: vec![put("k", "v")], ..Txn::default() }).unwrap();
    assert!(etcd.get(b"k").unwrap().is_some());
}
