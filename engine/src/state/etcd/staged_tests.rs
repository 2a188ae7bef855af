//! The etcd store's large values and batches: pieces, staging, and a crash between a batch's
//! commit and its roll-forward.

use std::time::Duration;

use super::kv_tests::{lead, put, raw_keys};
use super::staged::{CRASH, Crash};
use super::*;
use crate::state::{Cond, Kv};

#[test]
fn etcd_store_keeps_large_values_and_batches() {
    let cluster = EtcdCluster::start(1);
    let kv = EtcdKv::open(&cluster.url("big")).unwrap();
    let value: Vec<u8> = (0..5 << 20).map(|i: u32| (i % 251) as u8).collect();
    kv.commit(vec![put("l/run/1", &value), put("l/run/2", b"small")], true).unwrap();
    assert_eq!(kv.get(b"l/run/1").unwrap().as_deref(), Some(value.as_slice()));
    let all = kv.scan(b"l/run/").unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].1.len(), value.len());
    assert_eq!(kv.last(b"l/").unwrap().unwrap().1, b"small");
    assert!(kv.scan(b"").unwrap().iter().all(|(k, _)| k.starts_with(b"l/") || k.starts_with(b"meta/")), "no bookkeeping in a scan");
    // A condition on a value in pieces compares the value, not how it is stored.
    let other: Vec<u8> = value.iter().map(|b| b.wrapping_add(1)).collect();
    assert!(!kv.commit_if(&[Cond::Equals(b"l/run/1".to_vec(), other)], vec![put("l/run/4", b"x")], true).unwrap());
    assert!(!kv.commit_if(&[Cond::Equals(b"l/run/none".to_vec(), value.clone())], vec![put("l/run/4", b"x")], true).unwrap());
    assert!(kv.commit_if(&[Cond::Equals(b"l/run/1".to_vec(), value.clone())], vec![put("l/run/4", b"x")], true).unwrap());
    assert!(kv.commit_if(&[Cond::Equals(b"w/ff".to_vec(), vec![0xFF])], vec![], true).is_ok_and(|held| !held));
    kv.commit(vec![put("w/ff", &[0xFF])], true).unwrap();
    assert!(kv.commit_if(&[Cond::Equals(b"w/ff".to_vec(), vec![0xFF])], vec![put("w/ff2", b"x")], true).unwrap());
    kv.commit(vec![(b"l/run/4".to_vec(), None), (b"w/ff".to_vec(), None), (b"w/ff2".to_vec(), None)], true).unwrap();
    // Replaced by a small value: its pieces go.
    kv.commit(vec![put("l/run/1", b"short now")], true).unwrap();
    assert_eq!(kv.get(b"l/run/1").unwrap(), Some(b"short now".to_vec()));
    assert!(raw_keys(&kv, "p/").is_empty(), "pieces of a replaced value are deleted");
    // A batch of 1,000 writes, 2 MB in all: atomic with its condition.
    let batch = |tag: u8| (0..1000).map(|i| put(&format!("e/run/{i:04}"), &vec![tag; 2000])).collect::<Vec<_>>();
    assert!(kv.commit_if(&[Cond::Absent(b"k/big".to_vec())], [batch(1), vec![put("k/big", b"1")]].concat(), true).unwrap());
    let events = kv.scan(b"e/run/").unwrap();
    assert_eq!(events.len(), 1000);
    assert!(events.iter().all(|(_, v)| v == &vec![1u8; 2000]));
    assert!(!kv.commit_if(&[Cond::Absent(b"k/big".to_vec())], batch(2), true).unwrap());
    assert!(kv.scan(b"e/run/").unwrap().iter().all(|(_, v)| v == &vec![1u8; 2000]), "the refused batch wrote nothing");
    assert!(raw_keys(&kv, "x/").is_empty(), "no staging left");
    // What cannot be stored says why.
    let huge = vec![0u8; ops::MAX_VALUE + 1];
    let e = kv.commit(vec![put("l/run/3", &huge)], true).unwrap_err();
    assert!(e.contains("l/run/3") && e.contains(&huge.len().to_string()) && e.contains("64 MiB"), "{e}");
}

#[test]
fn etcd_store_finishes_a_batch_a_crash_left_after_its_marker() {
    let cluster = EtcdCluster::start(1);
    let url = cluster.url("crash");
    let kv = EtcdKv::open(&url).unwrap();
    let value = vec![9u8; 3 << 20];
    let batch = |tag: u8| {
        [(0..500).map(|i| put(&format!("s/run/{i:04}"), &vec![tag; 3000])).collect::<Vec<_>>(), vec![put("o/run", &value)]].concat()
    };
    kv.commit(batch(1), true).unwrap();
    // Crashed after the marker: committed, not applied.
    CRASH.with(|c| c.set(Some(Crash::AfterMarker)));
    assert!(
        kv.commit_if(&[Cond::Absent(b"k/c".to_vec())], [batch(2), vec![put("k/c", b"1")]].concat(), true).unwrap_err().contains("crashed")
    );
    drop(kv);
    assert_eq!(raw_keys(&EtcdKv::open(&url).unwrap(), "x/").len(), 0, "open rolled it forward");
    let kv = EtcdKv::open(&url).unwrap();
    let steps = kv.scan(b"s/run/").unwrap();
    assert_eq!(steps.len(), 500);
    assert!(steps.iter().all(|(_, v)| v == &vec![2u8; 3000]), "every write of the committed batch");
    assert_eq!(kv.get(b"k/c").unwrap(), Some(b"1".to_vec()));
    assert_eq!(kv.get(b"o/run").unwrap(), Some(value.clone()));
    // Crashed before the marker: nothing committed; the staging is cleared once it is old.
    CRASH.with(|c| c.set(Some(Crash::BeforeMarker)));
    assert!(kv.commit(batch(3), true).unwrap_err().contains("crashed"));
    assert!(!raw_keys(&kv, "x/").is_empty());
    kv.recover().unwrap();
    assert!(!raw_keys(&kv, "x/").is_empty(), "young staging may be a commit under way");
    kv.recover_older_than(Duration::ZERO).unwrap();
    assert!(raw_keys(&kv, "x/").is_empty());
    assert!(kv.scan(b"s/run/").unwrap().iter().all(|(_, v)| v == &vec![2u8; 3000]), "nothing of the uncommitted batch");
}

#[test]
fn etcd_store_a_new_leader_finishes_the_batch_its_deposed_predecessor_committed() {
    let cluster = EtcdCluster::start(1);
    let url = cluster.url("takeover");
    let (old, new) = (EtcdKv::open(&url).unwrap(), EtcdKv::open(&url).unwrap());
    let (key, rev, lease) = lead(&old, 60);
    old.set_fence(Fence::Key { key: key.clone(), create_revision: rev });
    let batch: Vec<_> = (0..400).map(|i| put(&format!("s/run/{i:04}"), b"running")).collect();
    // The old leader commits a large batch and stops before applying it (paused, then cut off).
    CRASH.with(|c| c.set(Some(Crash::AfterMarker)));
    assert!(old.commit(batch, true).unwrap_err().contains("crashed"));
    assert!(old.scan(b"s/run/").unwrap().is_empty(), "committed, not applied yet");
    // Its lease ends; the new leader takes the key, fences itself, recovers.
    old.etcd().lease_revoke(lease).unwrap();
    let (_, rev2, _) = lead(&new, 60);
    new.set_fence(Fence::Key { key, create_revision: rev2 });
    new.recover().unwrap();
    assert_eq!(new.scan(b"s/run/").unwrap().len(), 400, "the committed batch, applied by the new leader");
    assert!(raw_keys(&new, "x/").is_empty());
    new.commit(vec![put("s/run/0000", b"succeeded")], true).unwrap();
    // The old leader wakes up: it writes nothing over the new leader's state.
    assert!(old.commit(vec![put("s/run/0000", b"stale")], true).unwrap_err().starts_with("fenced:"));
    assert_eq!(new.get(b"s/run/0000").unwrap(), Some(b"succeeded".to_vec()));
}
