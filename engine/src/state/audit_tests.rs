//! One test per way of tampering with a run's events, each on a chain the store wrote.

use std::sync::Arc;

use serde_json::{Value, json};

use super::*;
use crate::state::{Batch, EventKind, Kv, MemKv, StepStatus, Store};

const RUN: &str = "20261206-030000-abcd";

fn step(n: u64) -> EventKind {
    EventKind::Step { step: format!("s{n}"), status: StepStatus::Succeeded, attempt: 1, error: None }
}

/// A store holding RUN's events 0..5, written in three commits as a driver would.
fn chained() -> (Arc<MemKv>, Store) {
    let kv = Arc::new(MemKv::default());
    let store = Store::new(kv.clone()).unwrap();
    for seqs in [0..2u64, 2..3, 3..5] {
        let mut b = Batch::default();
        for s in seqs {
            b.event(RUN, s, 1_000 + s, step(s));
        }
        store.commit(b, true).unwrap();
    }
    (kv, store)
}

fn key(seq: u64) -> Vec<u8> {
    format!("e/{RUN}/{seq:016x}").into_bytes()
}

fn read(kv: &MemKv, seq: u64) -> Value {
    serde_json::from_slice(&kv.get(&key(seq)).unwrap().unwrap()).unwrap()
}

fn write(kv: &MemKv, seq: u64, v: &Value) {
    kv.apply(vec![(key(seq), Some(serde_json::to_vec(v).unwrap()))]).unwrap();
}

fn broken(store: &Store) -> Option<Break> {
    verify_run(store, RUN).unwrap().unwrap().broken
}

#[test]
fn a_whole_chain_verifies_from_its_first_record() {
    let (kv, store) = chained();
    let v = verify_run(&store, RUN).unwrap().unwrap();
    assert_eq!((v.records, v.chained_from, v.broken), (5, Some(0), None));
    assert_eq!(v.head.unwrap().0, 4);
    assert_eq!(read(&kv, 0)["prev"], chain::genesis(RUN), "the first record links to the run id's hash");
    assert_eq!(read(&kv, 3)["prev"], read(&kv, 2)["hash"], "each record links to the one before, across commits");
    // Typed readers ignore the chain fields.
    assert_eq!(store.events(RUN, 0).unwrap().len(), 5);
}

#[test]
fn an_edited_record_is_named_by_its_own_hash() {
    let (kv, store) = chained();
    let mut v = read(&kv, 2);
    v["status"] = json!("failed");
    write(&kv, 2, &v);
    let b = broken(&store).unwrap();
    assert_eq!((b.seq, b.what, b.at, b.kind.as_deref()), (2, Tamper::Edited, Some(1_002), Some("step")));
}

#[test]
fn an_edited_and_rehashed_record_is_named_by_the_link_after_it() {
    let (kv, store) = chained();
    let mut v = read(&kv, 2);
    v["status"] = json!("failed");
    v["hash"] = json!(chain::hash_of(&v));
    write(&kv, 2, &v);
    assert_eq!(broken(&store).map(|b| (b.seq, b.what)), Some((3, Tamper::Link { to: 2 })));
}

#[test]
fn a_deleted_record_is_named_as_the_gap() {
    let (kv, store) = chained();
    kv.apply(vec![(key(2), None)]).unwrap();
    assert_eq!(broken(&store).map(|b| (b.seq, b.what)), Some((2, Tamper::Missing { from: 2, to: 2 })));
    let (kv, store) = chained();
    kv.apply(vec![(key(0), None)]).unwrap();
    assert_eq!(broken(&store).map(|b| (b.seq, b.what)), Some((0, Tamper::Missing { from: 0, to: 0 })));
}

#[test]
fn deleted_last_records_are_found_by_the_head() {
    let (kv, store) = chained();
    kv.apply(vec![(key(4), None), (key(3), None)]).unwrap();
    assert_eq!(broken(&store).map(|b| (b.seq, b.what)), Some((2, Tamper::Truncated { head: 4 })));
    kv.apply(vec![(format!("ch/{RUN}").into_bytes(), None)]).unwrap();
    assert_eq!(broken(&store).map(|b| (b.seq, b.what)), Some((2, Tamper::NoHead)));
}

#[test]
fn swapped_records_are_named_where_the_order_breaks() {
    let (kv, store) = chained();
    let (one, two) = (read(&kv, 1), read(&kv, 2));
    write(&kv, 1, &two);
    write(&kv, 2, &one);
    assert_eq!(broken(&store).map(|b| (b.seq, b.what)), Some((1, Tamper::Moved { says: 2 })));
}

#[test]
fn an_inserted_record_is_named_by_the_link_after_it() {
    // Record 2 is shifted to 3 (renumbered, re-hashed) and a forged record takes its place,
    // linked to record 1 and hashed as the store would: the record after it no longer links.
    let (kv, store) = chained();
    let mut forged = serde_json::to_value(crate::state::EventRecord { seq: 2, at: 1_002, kind: step(99) }).unwrap();
    forged["prev"] = read(&kv, 1)["hash"].clone();
    forged["hash"] = json!(chain::hash_of(&forged));
    let mut shifted = read(&kv, 2);
    shifted["seq"] = json!(3);
    shifted["hash"] = json!(chain::hash_of(&shifted));
    write(&kv, 2, &forged);
    write(&kv, 3, &shifted);
    assert_eq!(broken(&store).map(|b| (b.seq, b.what)), Some((3, Tamper::Link { to: 2 })));
}

#[test]
fn a_record_appended_outside_the_chain_is_found_by_the_head() {
    let (kv, store) = chained();
    let mut extra = serde_json::to_value(crate::state::EventRecord { seq: 5, at: 1_005, kind: step(5) }).unwrap();
    extra["prev"] = read(&kv, 4)["hash"].clone();
    extra["hash"] = json!(chain::hash_of(&extra));
    write(&kv, 5, &extra);
    assert_eq!(broken(&store).map(|b| (b.seq, b.what)), Some((5, Tamper::Head { head: 4 })));
}

#[test]
fn a_record_stripped_of_its_chain_is_named() {
    let (kv, store) = chained();
    let mut v = read(&kv, 3);
    v.as_object_mut().unwrap().retain(|k, _| k != "prev" && k != "hash");
    write(&kv, 3, &v);
    assert_eq!(broken(&store).map(|b| (b.seq, b.what)), Some((3, Tamper::Unchained)));
    let (kv, store) = chained();
    for s in 0..5 {
        let mut v = read(&kv, s);
        v.as_object_mut().unwrap().retain(|k, _| k != "prev" && k != "hash");
        write(&kv, s, &v);
    }
    assert_eq!(broken(&store).map(|b| (b.seq, b.what)), Some((0, Tamper::Unanchored { head: 4 })), "the head remains");
}

#[test]
fn a_chain_copied_from_another_run_does_not_verify() {
    let (kv, _) = chained();
    let records: Vec<(u64, Vec<u8>)> = (0..5).map(|s| (s, kv.get(&key(s)).unwrap().unwrap())).collect();
    let head = kv.get(format!("ch/{RUN}").as_bytes()).unwrap();
    let v = verify("20261206-030000-ffff", &records, head.as_deref());
    assert_eq!(v.broken.map(|b| (b.seq, b.what)), Some((0, Tamper::Link { to: 0 })));
}

#[test]
fn key_order_and_spacing_are_not_content() {
    let (kv, store) = chained();
    let text = String::from_utf8(kv.get(&key(1)).unwrap().unwrap()).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    let mut reordered = serde_json::Map::new();
    for (k, x) in v.as_object().unwrap().iter().rev() {
        reordered.insert(k.clone(), x.clone());
    }
    kv.apply(vec![(key(1), Some(serde_json::to_vec_pretty(&reordered).unwrap()))]).unwrap();
    assert_eq!(broken(&store), None);
}

#[test]
fn a_run_written_before_the_chain_is_unchained_not_tampered() {
    let kv = Arc::new(MemKv::default());
    let store = Store::new(kv.clone()).unwrap();
    for s in 0..3 {
        write(&kv, s, &json!({ "seq": s, "at": 1_000 + s, "kind": "run_started", "attempt": 1 }));
    }
    let v = verify_run(&store, RUN).unwrap().unwrap();
    assert_eq!((v.records, v.chained_from, v.head, v.broken), (3, None, None, None));
    // Resumed by this phoenix: chained from the next record on, linked to the old one's bytes.
    let mut b = Batch::default();
    b.event(RUN, 3, 1_003, step(3));
    store.commit(b, true).unwrap();
    let v = verify_run(&store, RUN).unwrap().unwrap();
    assert_eq!((v.chained_from, v.broken), (Some(3), None));
    // The last unchained record is pinned by that link; those before it are not (nothing proves them).
    write(&kv, 1, &json!({ "seq": 1, "at": 1, "kind": "run_started", "attempt": 9 }));
    assert_eq!(broken(&store), None);
    write(&kv, 2, &json!({ "seq": 2, "at": 1, "kind": "run_started", "attempt": 9 }));
    assert_eq!(broken(&store).map(|b| (b.seq, b.what)), Some((3, Tamper::Link { to: 2 })));
}

#[test]
fn an_unreadable_record_is_named() {
    let (kv, store) = chained();
    kv.apply(vec![(key(1), Some(b"{not json".to_vec()))]).unwrap();
    assert!(matches!(broken(&store), Some(Break { seq: 1, what: Tamper::Unreadable { .. }, .. })));
}

#[test]
fn an_unknown_run_has_no_verdict() {
    let (_, store) = chained();
    assert!(verify_run(&store, "nope").unwrap().is_none());
}

#[test]
fn two_writers_at_the_same_seq_the_second_writes_nothing() {
    let (kv, store) = chained();
    // Both read "next is 5"; the first commits; the second would fork the chain.
    let mut first = Batch::default();
    first.event(RUN, 5, 2_000, step(5));
    let mut second = Batch::default();
    second.event(RUN, 5, 2_001, step(6));
    second.put_step(RUN, &crate::state::StepRecord::pending("x", crate::state::PlanKind::Main, "f"));
    assert!(store.try_commit(first, true).unwrap());
    assert!(!store.try_commit(second, true).unwrap());
    assert_eq!(read(&kv, 5)["at"], 2_000);
    assert!(store.step(RUN, "x").unwrap().is_none(), "nothing of the losing batch");
    assert_eq!(broken(&store), None);
}

#[test]
fn export_lines_carry_run_time_kind_and_chain() {
    let (kv, _) = chained();
    let line = export_line(RUN, 2, &kv.get(&key(2)).unwrap().unwrap());
    assert_eq!(line["run"], RUN);
    assert_eq!(line["seq"], 2);
    assert_eq!(line["time"], "1970-01-01T00:00:01.002Z");
    assert_eq!(line["kind"], "step");
    assert_eq!(line["step"], "s2");
    assert_eq!(line["prev"], read(&kv, 1)["hash"]);
    assert_eq!(line["hash"], read(&kv, 2)["hash"]);
}
