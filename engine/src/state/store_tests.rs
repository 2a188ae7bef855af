//! The typed store: batches, conditions, format versions.

use super::*;
use crate::state::{MemKv, PlanKind, StepStatus};

fn run(id: &str, at: u64) -> RunRecord {
    RunRecord::sample(id, at)
}

/// What every backend must do with a first batch: runs newest first, steps, events from a
/// seq on, the next seqs, the lock. Shared by the etcd backend's tests.
pub(crate) fn round_trips_and_orders_on(store: &Store) {
    let mut b = Batch::default();
    b.put_run(&run("a", 1));
    b.put_run(&run("b", 2));
    b.put_step("a", &StepRecord::pending("x", PlanKind::Main, "f"));
    b.event("a", 0, 1, EventKind::RunStarted { attempt: 1, by: None });
    b.event("a", 1, 1, EventKind::Step { step: "x".into(), status: StepStatus::Running, attempt: 1, error: None });
    b.lock("dr", "a", None);
    store.commit(b, true).unwrap();
    assert_eq!(store.runs().unwrap().iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["b", "a"]);
    assert_eq!(store.steps("a").unwrap().len(), 1);
    assert!(store.steps("b").unwrap().is_empty());
    assert_eq!(store.events("a", 1).unwrap().len(), 1);
    assert_eq!(store.next_seqs("a").unwrap(), (2, 0));
    assert_eq!(store.lock_holder("dr").unwrap().as_deref(), Some("a"));
}

#[test]
fn round_trips_and_orders() {
    round_trips_and_orders_on(&Store::new(Arc::new(MemKv::default())).unwrap());
}

#[test]
fn a_lock_is_taken_only_from_the_holder_read_before() {
    let store = Store::new(Arc::new(MemKv::default())).unwrap();
    let take = |run: &str, from: Option<&str>| {
        let mut b = Batch::default();
        b.put_run(&self::run(run, 1));
        b.lock("dr", run, from);
        store.try_commit(b, true).unwrap()
    };
    assert!(take("a", None));
    assert!(!take("b", None), "held: not free any more");
    assert!(store.run("b").unwrap().is_none(), "the losing batch wrote nothing");
    assert!(!take("c", Some("z")), "not held by z");
    assert!(take("c", Some("a")));
    assert_eq!(store.lock_holder("dr").unwrap().as_deref(), Some("c"));
}

#[test]
fn a_batch_on_a_changed_run_record_writes_nothing() {
    let store = Store::new(Arc::new(MemKv::default())).unwrap();
    let mut b = Batch::default();
    b.put_run(&run("a", 1));
    store.commit(b, true).unwrap();
    let (_, seen) = store.run_seen("a").unwrap().unwrap();
    let (_, seen_too) = store.run_seen("a").unwrap().unwrap();
    let mut first = Batch::default();
    first.unchanged(&seen);
    first.put_run(&run("a", 2));
    assert!(store.try_commit(first, true).unwrap());
    let mut second = Batch::default();
    second.unchanged(&seen_too);
    second.put_run(&run("a", 3));
    assert!(store.commit(second, true).unwrap_err().0.contains("nothing was written"));
    assert_eq!(store.run("a").unwrap().unwrap().started_at, 2);
}

#[test]
fn an_older_store_is_marked_with_this_format() {
    let kv = Arc::new(MemKv::default());
    kv.apply(vec![(b"meta/format".to_vec(), Some(b"1".to_vec()))]).unwrap();
    Store::new(kv.clone()).unwrap();
    assert_eq!(kv.get(b"meta/format").unwrap(), Some(FORMAT_VERSION.to_string().into_bytes()));
}

#[test]
fn refuses_a_newer_format() {
    let kv = Arc::new(MemKv::default());
    kv.apply(vec![(b"meta/format".to_vec(), Some(b"99".to_vec()))]).unwrap();
    assert!(Store::new(kv).err().unwrap().0.contains("newer phoenix"));
}

#[test]
fn one_approval_per_gate_the_second_writes_nothing() {
    let store = Store::new(Arc::new(MemKv::default())).unwrap();
    let decide = |by: &str| {
        let mut b = Batch::default();
        b.approval("r1", "gate", &Approval { approved: true, by: by.into(), comment: None, at: 1, via: None });
        b
    };
    // Both read "no decision" first, then commit: the second commit is refused.
    let (first, second) = (decide("alice"), decide("carol"));
    assert!(store.try_commit(first, true).unwrap());
    assert!(!store.try_commit(second, true).unwrap());
    assert_eq!(store.approval("r1", "gate").unwrap().unwrap().by, "alice");
    // Once applied (cleared), the step may be asked and decided again.
    let mut b = Batch::default();
    b.clear_approval("r1", "gate");
    store.commit(b, true).unwrap();
    assert!(store.try_commit(decide("carol"), true).unwrap());
}
