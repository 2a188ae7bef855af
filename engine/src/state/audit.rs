//! Checking a run's event chain (`phoenix audit verify`) and writing it out for a SIEM
//! (`phoenix audit export`). The chain itself is computed in `chain.rs`.

use serde::Serialize;
use serde_json::{Map, Value};

use super::chain::{self, Head};
use super::store::{Store, StoreError};

/// How a record fails to match the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "tamper", rename_all = "snake_case")]
pub enum Tamper {
    /// Its content no longer hashes to its own `hash`: the record was edited.
    Edited,
    /// Its `prev` is not the link of the record before it: that one was edited and
    /// re-hashed, replaced, or records were inserted or reordered.
    Link {
        /// The record it should link to.
        to: u64,
    },
    /// Records are missing before it (deleted).
    Missing {
        /// The first missing seq.
        from: u64,
        /// The last missing seq.
        to: u64,
    },
    /// It is stored under one seq and says another (moved or reordered).
    Moved {
        /// The seq its own text says.
        says: u64,
    },
    /// It is not a readable event record.
    Unreadable {
        /// Why.
        why: String,
    },
    /// It has no chain fields, though records before it are chained: inserted, or its
    /// chain fields removed.
    Unchained,
    /// The head (`ch/RUN`) names a later record than the last one stored: the last
    /// records were deleted.
    Truncated {
        /// The seq the head names.
        head: u64,
    },
    /// The head names this record with another hash, or an earlier one: the record was
    /// replaced, or records were appended without the chain.
    Head {
        /// The head as stored.
        head: u64,
    },
    /// The records are chained but the head is gone.
    NoHead,
    /// The head names a record, but no stored record is chained: they were deleted, or
    /// their chain fields removed.
    Unanchored {
        /// The seq the head names.
        head: u64,
    },
}

/// The first record that does not match.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Break {
    /// Its seq (for `Missing`, the first missing one).
    pub seq: u64,
    /// When it says it happened (ms), if readable.
    pub at: Option<u64>,
    /// Its kind, if readable.
    pub kind: Option<String>,
    /// What does not match.
    #[serde(flatten)]
    pub what: Tamper,
}

/// What `verify` found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    /// The run.
    pub run: String,
    /// How many event records are stored.
    pub records: usize,
    /// The first chained record's seq; none when no record is (a run written before the chain).
    pub chained_from: Option<u64>,
    /// The last record's seq and hash, to compare with an exported copy.
    pub head: Option<(u64, String)>,
    /// The first record that does not match; none when the chain is whole.
    pub broken: Option<Break>,
}

impl Tamper {
    /// In words, for the record it is about.
    pub fn describe(&self, seq: u64) -> String {
        match self {
            Tamper::Edited => format!("record {seq} was edited: its content no longer matches its own hash"),
            Tamper::Link { .. } if seq == 0 => {
                "record 0 does not start this run's chain (its prev is not the hash of the run id): it was replaced, or copied from another run".into()
            }
            Tamper::Link { to } => format!(
                "record {seq} does not link to record {to}: record {to} was replaced (edited and re-hashed), or records were inserted or reordered before {seq}"
            ),
            Tamper::Missing { from, to } if from == to => format!("record {from} is missing: it was deleted"),
            Tamper::Missing { from, to } => format!("records {from} to {to} are missing: they were deleted"),
            Tamper::Moved { says } => format!("record {seq} says it is record {says}: it was moved or records were reordered"),
            Tamper::Unreadable { why } => format!("record {seq} is not an event record ({why})"),
            Tamper::Unchained => {
                format!("record {seq} has no chain fields though the records before it are chained: inserted, or its chain removed")
            }
            Tamper::Truncated { head } => {
                format!("records after {seq} are missing: the chain's head names record {head}; the last records were deleted")
            }
            Tamper::Head { head } if seq > *head => format!(
                "record {seq} and those after it were appended outside the chain: its head still names record {head}"
            ),
            Tamper::Head { head } => format!(
                "the chain's head names record {head} with another hash than the stored one: the last record was replaced"
            ),
            Tamper::Unanchored { head } => format!(
                "the chain's head names record {head}, but no stored record is chained: the records were deleted or their chain fields removed"
            ),
            Tamper::NoHead => format!("the chain's head (ch/RUN) is missing though records up to {seq} are chained: it was deleted"),
        }
    }
}

/// What is known of one stored record while walking the chain.
struct Seen {
    seq: u64,
    link: String,
    hash: Option<String>,
    at: Option<u64>,
    kind: Option<String>,
}

/// Recomputes a run's chain from its stored records (`(seq in the key, bytes)`, in key
/// order) and head, and names the first record that does not match. Records before the
/// first chained one (written by a phoenix before the chain) are not checked: nothing
/// proves them, and nothing calls them tampered.
pub fn verify(run: &str, records: &[(u64, Vec<u8>)], head: Option<&[u8]>) -> Verdict {
    let mut verdict = Verdict { run: run.to_string(), records: records.len(), chained_from: None, head: None, broken: None };
    let mut before: Option<Seen> = None;
    let brk = |seq, at, kind, what| Some(Break { seq, at, kind, what });
    for (key_seq, bytes) in records {
        let seq = *key_seq;
        let v: Value = match serde_json::from_slice(bytes) {
            Ok(v @ Value::Object(_)) => v,
            Ok(_) => Value::Null,
            Err(e) => {
                let what = Tamper::Unreadable { why: e.to_string() };
                verdict.broken = brk(seq, None, None, what);
                return verdict;
            }
        };
        let at = v.get("at").and_then(Value::as_u64);
        let kind = v.get("kind").and_then(Value::as_str).map(str::to_string);
        let prev = v.get("prev").and_then(Value::as_str);
        let hash = v.get("hash").and_then(Value::as_str);
        let chained = prev.is_some() || hash.is_some();
        let started = verdict.chained_from.is_some();
        if !chained && !started {
            before = Some(Seen { seq, link: chain::link_of(bytes), hash: None, at, kind });
            continue;
        }
        if !chained {
            verdict.broken = brk(seq, at, kind, Tamper::Unchained);
            return verdict;
        }
        let says = v.get("seq").and_then(Value::as_u64);
        if says != Some(seq) {
            let what = match says {
                Some(s) => Tamper::Moved { says: s },
                None => Tamper::Unreadable { why: "it has no seq".into() },
            };
            verdict.broken = brk(seq, at, kind, what);
            return verdict;
        }
        // A gap (a run's records start at 0): what is missing comes first.
        let expected = before.as_ref().map_or(0, |b| b.seq + 1);
        if seq > expected {
            verdict.broken = brk(expected, None, None, Tamper::Missing { from: expected, to: seq - 1 });
            return verdict;
        }
        if Some(chain::hash_of(&v).as_str()) != hash {
            verdict.broken = brk(seq, at, kind, Tamper::Edited);
            return verdict;
        }
        let want = match &before {
            Some(b) => b.link.clone(),
            None => chain::genesis(run),
        };
        if prev != Some(want.as_str()) {
            verdict.broken = brk(seq, at, kind, Tamper::Link { to: seq.saturating_sub(1) });
            return verdict;
        }
        verdict.chained_from.get_or_insert(seq);
        let hash = hash.map(str::to_string);
        before = Some(Seen { seq, link: hash.clone().unwrap_or_default(), hash, at, kind });
    }
    let last = before.filter(|b| b.hash.is_some());
    if let Some(b) = &last {
        verdict.head = Some((b.seq, b.hash.clone().unwrap_or_default()));
    }
    let head: Option<Head> = head.map(|h| serde_json::from_slice(h).unwrap_or(Head { seq: u64::MAX, hash: String::new() }));
    verdict.broken = match (last, head) {
        (None, None) => None,
        (Some(b), None) => brk(b.seq, b.at, b.kind, Tamper::NoHead),
        (None, Some(h)) => brk(0, None, None, Tamper::Unanchored { head: h.seq }),
        (Some(b), Some(h)) if h.seq > b.seq => brk(b.seq, b.at, b.kind, Tamper::Truncated { head: h.seq }),
        // Records after the head: appended without moving it.
        (Some(b), Some(h)) if h.seq < b.seq => brk(h.seq + 1, None, None, Tamper::Head { head: h.seq }),
        (Some(b), Some(h)) if Some(&h.hash) != b.hash.as_ref() => brk(b.seq, b.at, b.kind, Tamper::Head { head: h.seq }),
        _ => None,
    };
    verdict
}

/// A run's chain checked from the store; `None` for a run with neither a record nor events.
pub fn verify_run(store: &Store, run: &str) -> Result<Option<Verdict>, StoreError> {
    let records = store.raw_events(run)?;
    let head = store.chain_head(run)?;
    if records.is_empty() && head.is_none() && store.run(run)?.is_none() {
        return Ok(None);
    }
    Ok(Some(verify(run, &records, head.as_deref())))
}

/// A run's event records and chain head exactly as stored, for `phoenix audit` when another
/// process owns the store: its control socket answers with [`raw_chain`], the command checks
/// the bytes itself ([`from_raw_chain`], then [`verify`]). `None`: no such run.
pub fn raw_chain(store: &Store, run: &str) -> Result<Option<Value>, StoreError> {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let records = store.raw_events(run)?;
    let head = store.chain_head(run)?;
    if records.is_empty() && head.is_none() && store.run(run)?.is_none() {
        return Ok(None);
    }
    let records: Vec<Value> = records.iter().map(|(seq, bytes)| serde_json::json!([seq, b64.encode(bytes)])).collect();
    Ok(Some(serde_json::json!({ "records": records, "head": head.map(|h| b64.encode(h)) })))
}

/// The records and head of a [`raw_chain`] answer, or what is wrong with it.
#[allow(clippy::type_complexity)]
pub fn from_raw_chain(v: &Value) -> Result<(Vec<(u64, Vec<u8>)>, Option<Vec<u8>>), String> {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let bad = || "the owner's answer is not a chain of records".to_string();
    let mut records = Vec::new();
    for r in v["records"].as_array().ok_or_else(bad)? {
        let seq = r[0].as_u64().ok_or_else(bad)?;
        let bytes = b64.decode(r[1].as_str().ok_or_else(bad)?).map_err(|_| bad())?;
        records.push((seq, bytes));
    }
    let head = match &v["head"] {
        Value::Null => None,
        Value::String(h) => Some(b64.decode(h).map_err(|_| bad())?),
        _ => return Err(bad()),
    };
    Ok((records, head))
}

/// One exported line: the run id, seq, time (RFC 3339), then the record's fields as stored
/// (`at`, `kind` and its fields, `prev`, `hash`).
pub fn export_line(run: &str, seq: u64, bytes: &[u8]) -> Value {
    let mut out = Map::new();
    out.insert("run".into(), run.into());
    out.insert("seq".into(), seq.into());
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(rec)) => {
            if let Some(at) = rec.get("at").and_then(Value::as_u64) {
                let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(at);
                out.insert("time".into(), humantime::format_rfc3339_millis(t).to_string().into());
            }
            for (k, v) in rec {
                if k != "seq" {
                    out.insert(k, v);
                }
            }
        }
        _ => {
            out.insert("unreadable".into(), String::from_utf8_lossy(bytes).into_owned().into());
        }
    }
    Value::Object(out)
}

#[cfg(test)]
#[path = "audit_tests.rs"]
mod tests;
