//! Committing a batch, atomically however large it is.
//!
//! A batch that fits one etcd transaction (at most [`ops::TXN_OPS`] operations and
//! [`ops::TXN_BYTES`] bytes, values in pieces written before it) is one transaction: its
//! conditions, the fence, its writes. A larger one is staged:
//!
//! 1. its writes are written, packed, under `{prefix}x/ID/NNNNNNNN` (several fenced
//!    transactions; no store prefix sees them);
//! 2. ONE transaction checks the conditions, the fence, that the staging is all there, and
//!    creates the commit marker `{prefix}x/ID` (which holds the writes itself when they fit);
//!    the batch is committed exactly when the marker exists;
//! 3. the writes are applied in chunks, each only while the marker still exists; then the
//!    marker and the staging are deleted in one transaction.
//!
//! A crash after 2 leaves the marker: [`recover`] (at open, and by a new leader) applies the
//! batch again (the same values) and deletes it. A crash before 2 leaves staging with no
//! marker: [`recover`] deletes it once it is older than [`ORPHAN_AGE`] (a commit may be
//! writing it right now). Between 2 and the end of 3 a reader may see the batch partly
//! applied; nothing else sees a partial batch. One process commits one batch at a time
//! (`EtcdKv` holds its lock), so no later batch of its own writes between.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::json;

use super::client::{Compare, KeyValue, Txn, TxnOp};
use super::kv::EtcdKv;
use super::ops::{self, Op, Planned};
use super::wire::{b64, prefix_end};
use crate::state::Cond;

/// Staging with no marker younger than this may belong to a commit under way.
pub(super) const ORPHAN_AGE: Duration = Duration::from_secs(600);

fn area(prefix: &[u8]) -> Vec<u8> {
    [prefix, b"x/"].concat()
}

/// Commits a planned batch: `Ok(false)` if a condition did not hold (nothing written).
pub(super) fn commit(kv: &EtcdKv, conds: &[Cond], plan: Planned) -> Result<bool, String> {
    let prefix = kv.prefix().to_vec();
    for chunk in ops::chunks(&plan.pieces, 0) {
        kv.run(Txn { success: chunk.iter().map(Op::txn_op).collect(), ..Txn::default() }, &[], vec![])?;
    }
    let compare: Vec<Compare> = conds
        .iter()
        .map(|c| match c {
            Cond::Absent(k) => Compare::CreateRevision([prefix.as_slice(), k].concat(), 0),
            Cond::Equals(k, v) => Compare::Value([prefix.as_slice(), k].concat(), v.clone()),
        })
        .collect();
    let outcome = if ops::fit(&plan.ops, compare.len()) { single(kv, compare, &plan) } else { staged(kv, compare, &plan) };
    match &outcome {
        Ok(Some(replaced)) => forget_pieces(kv, replaced, &plan.areas(&prefix)),
        // Nothing was written: nothing refers to this batch's pieces.
        Ok(None) => delete_areas(kv, &plan.areas(&prefix)),
        // Maybe committed (a marker a recover will apply): its pieces stay.
        Err(_) => {}
    }
    outcome.map(|r| r.is_some())
}

/// The batch in one transaction: what it replaced, or `None` if a condition failed.
fn single(kv: &EtcdKv, compare: Vec<Compare>, plan: &Planned) -> Result<Option<Vec<KeyValue>>, String> {
    let t = Txn { compare, success: plan.ops.iter().map(Op::txn_op).collect(), failure: vec![] };
    let tried = kv.run(t, &[], vec![])?;
    if tried.answer.succeeded {
        return Ok(Some(tried.answer.replaced));
    }
    // A try that timed out may have been applied, and its own writes fail the conditions now.
    if tried.retried && applied(kv, &plan.ops)? {
        return Ok(Some(Vec::new()));
    }
    Ok(None)
}

/// Whether every put's value is there and every deleted key absent.
fn applied(kv: &EtcdKv, ops: &[Op]) -> Result<bool, String> {
    for chunk in ops::chunks(ops, 0) {
        let t = Txn { success: chunk.iter().map(|op| TxnOp::Get(op.key().to_vec())).collect(), ..Txn::default() };
        let found = kv.run(t, &[], vec![])?.answer.gets;
        for (op, kv) in chunk.iter().zip(found) {
            let same = match op {
                Op::Put(_, v) => kv.is_some_and(|kv| &kv.value == v),
                Op::Delete(_) => kv.is_none(),
            };
            if !same {
                return Ok(false);
            }
        }
    }
    Ok(true)
}

fn staged(kv: &EtcdKv, mut compare: Vec<Compare>, plan: &Planned) -> Result<Option<Vec<KeyValue>>, String> {
    let millis = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
    let marker = [area(kv.prefix()).as_slice(), format!("{millis:013x}-{:016x}", rand::random::<u64>()).as_bytes()].concat();
    let records = ops::records(&plan.ops);
    let (head, staging): (Vec<u8>, Vec<Op>) = if records.len() == 1 {
        ([0u32.to_be_bytes().as_slice(), &records[0]].concat(), Vec::new())
    } else {
        let staging = records.into_iter().enumerate().map(|(n, r)| Op::Put(staged_key(&marker, n), r)).collect::<Vec<_>>();
        ((staging.len() as u32).to_be_bytes().to_vec(), staging)
    };
    for chunk in ops::chunks(&staging, 0) {
        kv.run(Txn { success: chunk.iter().map(Op::txn_op).collect(), ..Txn::default() }, &[], vec![])?;
    }
    crash_point(Crash::BeforeMarker)?;
    compare.push(Compare::CreateRevision(marker.clone(), 0));
    // The staging is all there (a recover elsewhere has not taken it for an orphan).
    let present: Vec<_> =
        staging.iter().map(|op| json!({"target": "CREATE", "result": "GREATER", "key": b64(op.key()), "createRevision": "0"})).collect();
    let t = Txn {
        compare,
        success: vec![TxnOp::Put { key: marker.clone(), value: head.clone(), lease: 0 }],
        failure: vec![TxnOp::Get(marker.clone())],
    };
    let tried = kv.run(t, &[], present)?;
    let created = if tried.answer.succeeded {
        tried.answer.revision
    } else {
        match tried.answer.gets.first().cloned().flatten() {
            // Committed by a try that timed out.
            Some(found) if found.value == head => found.create_revision,
            _ => {
                let area = [marker.as_slice(), b"/"].concat();
                let (left, _) = kv.read(|etcd| etcd.range_prefix_at(&area, 0))?;
                let _ = kv.run(Txn::default(), &[(area.clone(), prefix_end(&area))], vec![]);
                if left.len() == staging.len() {
                    return Ok(None);
                }
                return Err("a large batch's staging was removed by a recover on another phoenix while it was being committed; nothing was written: try again".into());
            }
        }
    };
    crash_point(Crash::AfterMarker)?;
    roll_forward(kv, &marker, created, &plan.ops).map(Some)
}

/// Where a test makes a staged commit stop as if its process died.
#[cfg(test)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Crash {
    BeforeMarker,
    AfterMarker,
}

#[cfg(test)]
thread_local! {
    /// The point at which this thread's next staged commit stops.
    pub(super) static CRASH: std::cell::Cell<Option<Crash>> = const { std::cell::Cell::new(None) };
}

#[cfg(test)]
fn crash_point(here: Crash) -> Result<(), String> {
    if CRASH.with(|c| c.get()) == Some(here) {
        CRASH.with(|c| c.set(None));
        return Err(format!("crashed (test) {here:?}"));
    }
    Ok(())
}

#[cfg(not(test))]
enum Crash {
    BeforeMarker,
    AfterMarker,
}

#[cfg(not(test))]
fn crash_point(_: Crash) -> Result<(), String> {
    Ok(())
}

fn staged_key(marker: &[u8], n: usize) -> Vec<u8> {
    [marker, format!("/{n:08}").as_bytes()].concat()
}

/// Applies a committed batch's writes while its marker (created at `created`) exists, then
/// deletes the marker and its staging; what the writes replaced.
fn roll_forward(kv: &EtcdKv, marker: &[u8], created: i64, ops: &[Op]) -> Result<Vec<KeyValue>, String> {
    let mut replaced = Vec::new();
    let alive = || vec![Compare::CreateRevision(marker.to_vec(), created)];
    for chunk in ops::chunks(ops, 0) {
        let tried = kv.run(Txn { compare: alive(), success: chunk.iter().map(Op::txn_op).collect(), failure: vec![] }, &[], vec![])?;
        if !tried.answer.succeeded {
            // Another process finished it.
            return Ok(replaced);
        }
        replaced.extend(tried.answer.replaced);
    }
    let staging = [marker, b"/"].concat();
    kv.run(
        Txn { compare: alive(), success: vec![TxnOp::Delete(marker.to_vec())], failure: vec![] },
        &[(staging.clone(), prefix_end(&staging))],
        vec![],
    )?;
    Ok(replaced)
}

/// Finishes every committed batch (a marker) and deletes staging with no marker older than
/// `orphan_age`.
pub(super) fn recover(kv: &EtcdKv, orphan_age: Duration) -> Result<(), String> {
    let area = area(kv.prefix());
    let (found, _) = kv.read(|etcd| etcd.range_prefix_at(&area, 0))?;
    let mut markers = Vec::new();
    let mut staging: std::collections::BTreeMap<Vec<u8>, Vec<KeyValue>> = std::collections::BTreeMap::new();
    for entry in found {
        let rest = &entry.key[area.len()..];
        match rest.iter().position(|b| *b == b'/') {
            None => markers.push(entry),
            Some(i) => staging.entry([area.as_slice(), &rest[..i]].concat()).or_default().push(entry),
        }
    }
    for marker in markers {
        let (count, inline) = marker.value.split_at(4.min(marker.value.len()));
        let count = u32::from_be_bytes(count.try_into().map_err(|_| "a commit marker is damaged".to_string())?) as usize;
        let records = staging.remove(&marker.key).unwrap_or_default();
        if records.len() != count {
            return Err(format!(
                "the committed batch {} has {} of its {count} staged parts: the etcd store is damaged",
                String::from_utf8_lossy(&marker.key),
                records.len()
            ));
        }
        let mut ops = ops::decode(inline)?;
        for r in records {
            ops.extend(ops::decode(&r.value)?);
        }
        let replaced = roll_forward(kv, &marker.key, marker.create_revision, &ops)?;
        let areas = ops
            .iter()
            .filter_map(|op| if let Op::Put(_, v) = op { super::pieces::pieces_of(kv.prefix(), v) } else { None })
            .collect::<Vec<_>>();
        forget_pieces(kv, &replaced, &areas);
    }
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
    for (marker, _) in staging {
        let id = String::from_utf8_lossy(&marker[area.len()..]).to_string();
        let born = id.split('-').next().and_then(|t| u64::from_str_radix(t, 16).ok()).unwrap_or(0);
        if now.saturating_sub(born) >= orphan_age.as_millis() as u64 {
            let staging = [marker.as_slice(), b"/"].concat();
            kv.run(Txn::default(), &[(staging.clone(), prefix_end(&staging))], vec![])?;
        }
    }
    Ok(())
}

/// Deletes the pieces of replaced values, except those the batch itself uses (a batch applied
/// twice replaces its own values). Best effort: left over, they take space, not data.
fn forget_pieces(kv: &EtcdKv, replaced: &[KeyValue], keep: &[Vec<u8>]) {
    let areas: Vec<Vec<u8>> =
        replaced.iter().filter_map(|r| super::pieces::pieces_of(kv.prefix(), &r.value)).filter(|a| !keep.contains(a)).collect();
    delete_areas(kv, &areas);
}

/// Deletes piece areas nothing refers to, unfenced (they are no one's data), one try.
fn delete_areas(kv: &EtcdKv, areas: &[Vec<u8>]) {
    for chunk in areas.chunks(ops::TXN_OPS) {
        let deletes: Vec<_> =
            chunk.iter().map(|a| json!({"requestDeleteRange": {"key": b64(a), "rangeEnd": b64(&prefix_end(a))}})).collect();
        let _ = kv.etcd().txn_json(json!({"success": deletes}));
    }
}
