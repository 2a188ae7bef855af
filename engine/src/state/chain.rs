//! The hash chain over a run's events, computed where events are committed
//! ([`super::Store::try_commit`]), so that every writer's events are chained without it
//! having to remember.
//!
//! Each event record `e/RUN/SEQ` holds `prev` (hex SHA-256: the `hash` of the record with
//! SEQ−1, or, for the first record, SHA-256 of the run id) and `hash` (SHA-256 of the
//! record's canonical JSON with `prev` in and `hash` left out). `ch/RUN` holds the head: the
//! last record's seq and hash. Every append is conditioned on the head as read, so two
//! writers of one run never both append at the same place: the second writes nothing.
//! `audit.rs` checks it all again.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::kv::{Cond, Kv, Ops};
use super::records::EventRecord;

/// The last chained record of a run (`ch/RUN`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Head {
    pub(crate) seq: u64,
    pub(crate) hash: String,
}

pub(crate) fn event_key(run: &str, seq: u64) -> Vec<u8> {
    format!("e/{run}/{seq:016x}").into_bytes()
}

pub(crate) fn head_key(run: &str) -> Vec<u8> {
    format!("ch/{run}").into_bytes()
}

/// Lowercase hex.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Hex SHA-256 of some bytes.
pub(crate) fn sha256(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// The `prev` of a run's first record: SHA-256 of the run id, so that a chain copied from
/// another run does not verify here.
pub fn genesis(run: &str) -> String {
    sha256(run.as_bytes())
}

/// JSON with object keys sorted and no spaces, leaving out the top-level key `skip`: the
/// bytes a record's hash covers, whatever order a parser keeps keys in.
pub(crate) fn canonical(v: &Value, skip: Option<&str>) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    write_canonical(v, skip, &mut out);
    out
}

fn write_canonical(v: &Value, skip: Option<&str>, out: &mut Vec<u8>) {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().filter(|k| Some(k.as_str()) != skip).collect();
            keys.sort();
            out.push(b'{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                serde_json::to_writer(&mut *out, k).expect("strings serialize");
                out.push(b':');
                write_canonical(&m[k], None, out);
            }
            out.push(b'}');
        }
        Value::Array(a) => {
            out.push(b'[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(x, None, out);
            }
            out.push(b']');
        }
        scalar => serde_json::to_writer(&mut *out, scalar).expect("scalars serialize"),
    }
}

/// The hash a record with chain fields should hold: SHA-256 of its canonical JSON without `hash`.
pub(crate) fn hash_of(record: &Value) -> String {
    sha256(&canonical(record, Some("hash")))
}

/// What the `prev` of the record after this one must be: its `hash` if it has one, else (a
/// record written before the chain) SHA-256 of its bytes as stored.
pub(crate) fn link_of(stored: &[u8]) -> String {
    match serde_json::from_slice::<Value>(stored) {
        Ok(v) if v.get("hash").and_then(Value::as_str).is_some() => v["hash"].as_str().unwrap_or_default().to_string(),
        _ => sha256(stored),
    }
}

/// A record with its chain fields, as stored, and its hash.
pub(crate) fn seal(rec: &EventRecord, prev: String) -> (Vec<u8>, String) {
    let mut v = serde_json::to_value(rec).expect("records serialize");
    v["prev"] = Value::String(prev);
    let hash = hash_of(&v);
    v["hash"] = Value::String(hash.clone());
    (canonical(&v, None), hash)
}

/// Turns a batch's events into chained puts and the conditions that keep the chain whole:
/// per run, in seq order, each linked to the one before (in the batch, else the head, else
/// the stored record), then the new head. `Ok(false)`: another commit already wrote at
/// these seqs (the head is past them); nothing should be written.
/// Each run's head (`ch/RUN`'s value) as a commit leaves it.
pub(crate) type Sealed = Vec<(String, Vec<u8>)>;

/// The heads a process last committed, by run (see `Store::heads`).
#[derive(Clone, Default)]
pub(crate) struct Heads(std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, Vec<u8>>>>);

impl Heads {
    fn get(&self, run: &str) -> Option<Vec<u8>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).get(run).cloned()
    }

    /// The heads a commit wrote, once it is in.
    pub(crate) fn remember(&self, sealed: Sealed) {
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        // Bounded: a long-lived server sees many runs; an evicted head is read again.
        if m.len() > 4096 {
            m.clear();
        }
        m.extend(sealed);
    }

    /// The runs of a commit that did not go in: their heads are read again next time.
    pub(crate) fn forget(&self, sealed: &[(String, Vec<u8>)]) {
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        for (run, _) in sealed {
            m.remove(run);
        }
    }
}

/// Seals a batch's events into the chain: the ops and the conditions on each run's head.
/// `Ok(None)`: the head already covers them (another writer appended); nothing to write.
/// `Ok(Some(heads))`: the head each run will have once the commit is in.
pub(crate) fn seal_events(
    kv: &dyn Kv,
    heads: &Heads,
    mut events: Vec<(String, EventRecord)>,
    ops: &mut Ops,
    conds: &mut Vec<Cond>,
) -> Result<Option<Sealed>, String> {
    let mut sealed = Vec::new();
    // Per run, in seq order (stable: a run's events keep their batch order at equal seqs).
    events.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.seq.cmp(&b.1.seq)));
    let mut i = 0;
    while i < events.len() {
        let run = events[i].0.clone();
        let end = events[i..].iter().position(|(r, _)| *r != run).map_or(events.len(), |n| i + n);
        let hk = head_key(&run);
        let stored_head = match heads.get(&run) {
            Some(h) => Some(h),
            None => kv.get(&hk)?,
        };
        conds.push(match &stored_head {
            Some(b) => Cond::Equals(hk.clone(), b.clone()),
            None => Cond::Absent(hk.clone()),
        });
        let head: Option<Head> = stored_head.as_deref().and_then(|b| serde_json::from_slice(b).ok());
        let first = events[i].1.seq;
        if head.as_ref().is_some_and(|h| h.seq >= first) {
            heads.forget(&[(run, Vec::new())]);
            return Ok(None);
        }
        let mut prev = match (&head, first) {
            (Some(h), _) if h.seq + 1 == first => h.hash.clone(),
            (_, 0) => genesis(&run),
            (_, s) => kv.get(&event_key(&run, s - 1))?.map_or_else(|| genesis(&run), |b| link_of(&b)),
        };
        let mut last = first;
        for (_, rec) in &events[i..end] {
            let (bytes, hash) = seal(rec, prev);
            ops.push((event_key(&run, rec.seq), Some(bytes)));
            prev = hash;
            last = rec.seq;
        }
        let head = serde_json::to_vec(&Head { seq: last, hash: prev }).expect("heads serialize");
        ops.push((hk, Some(head.clone())));
        sealed.push((run, head));
        i = end;
    }
    Ok(Some(sealed))
}
