//! The typed store over a [`Kv`] backend.

use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::FORMAT_VERSION;
use super::chain;
use super::kv::{Cond, Kv};
use super::records::{AlertGroup, Approval, EventKind, EventRecord, LevelHistory, LogRecord, RunRecord, StepRecord};

/// A store operation failed.
#[derive(Debug, Clone, thiserror::Error)]
#[error("state store: {0}")]
pub struct StoreError(pub String);

impl From<String> for StoreError {
    fn from(s: String) -> Self {
        StoreError(s)
    }
}

fn key(parts: &[&str]) -> Vec<u8> {
    parts.join("/").into_bytes()
}

fn enc<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).expect("records serialize")
}

fn dec<T: DeserializeOwned>(k: &[u8], v: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(v).map_err(|e| StoreError(format!("record {} is unreadable: {e}", String::from_utf8_lossy(k))))
}

/// Writes gathered for one atomic commit, and what the store must still hold for them to
/// be written at all.
#[derive(Default, Debug, Clone)]
pub struct Batch {
    ops: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    conds: Vec<Cond>,
    /// Events, chained when the batch is committed (`chain.rs`).
    events: Vec<(String, EventRecord)>,
}

/// A run record as it was read, to write only if nobody has changed it since.
#[derive(Debug, Clone)]
pub struct Seen {
    key: Vec<u8>,
    bytes: Vec<u8>,
}

impl Batch {
    /// Whether nothing was gathered.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty() && self.conds.is_empty() && self.events.is_empty()
    }
    /// Writes the batch only if the run record is still the one `seen` read (a cancel and a
    /// resume of the same run, or two resumes: the second to commit loses).
    pub fn unchanged(&mut self, seen: &Seen) {
        self.conds.push(Cond::Equals(seen.key.clone(), seen.bytes.clone()));
    }
    /// Writes a run record.
    pub fn put_run(&mut self, r: &RunRecord) {
        self.ops.push((key(&["r", &r.id]), Some(enc(r))));
    }
    /// Writes a step record.
    pub fn put_step(&mut self, run: &str, s: &StepRecord) {
        self.ops.push((key(&["s", run, &s.id]), Some(enc(s))));
    }
    /// Removes a step record (a step dropped by an edited runbook).
    pub fn delete_step(&mut self, run: &str, step: &str) {
        self.ops.push((key(&["s", run, step]), None));
    }
    /// Appends an event; the commit links it into the run's hash chain.
    pub fn event(&mut self, run: &str, seq: u64, at: u64, kind: EventKind) {
        self.events.push((run.to_string(), EventRecord { seq, at, kind }));
    }
    /// Appends a log line.
    pub fn log(&mut self, run: &str, rec: &LogRecord) {
        self.ops.push((key(&["l", run, &format!("{:016x}", rec.seq)]), Some(enc(rec))));
    }
    /// Removes a log line (output left out: see `exec::driver::kept`).
    pub fn forget_log(&mut self, run: &str, seq: u64) {
        self.ops.push((key(&["l", run, &format!("{seq:016x}")]), None));
    }
    /// Stores the runbook text a run started with.
    pub fn source(&mut self, run: &str, text: &str) {
        self.ops.push((key(&["src", run]), Some(text.as_bytes().to_vec())));
    }
    /// Takes a lock for a run, from `from` (the holder read before, whose run no longer
    /// holds it) or free (`None`): the batch is written only if the lock is still so, checked
    /// atomically with the writes.
    pub fn lock(&mut self, lock: &str, run: &str, from: Option<&str>) {
        let k = key(&["k", lock]);
        self.conds.push(match from {
            Some(holder) => Cond::Equals(k.clone(), holder.as_bytes().to_vec()),
            None => Cond::Absent(k.clone()),
        });
        self.ops.push((k, Some(run.as_bytes().to_vec())));
    }
    /// Releases a lock.
    pub fn unlock(&mut self, lock: &str) {
        self.ops.push((key(&["k", lock]), None));
    }
    /// Writes a runbook's level history.
    pub fn history(&mut self, runbook: &str, h: &LevelHistory) {
        self.ops.push((key(&["h", runbook]), Some(enc(h))));
    }
    /// Records when `phoenix watch` last started a run of a runbook (ms since the epoch),
    /// so its cooldown survives a restart.
    pub fn last_action(&mut self, runbook: &str, at: u64) {
        self.ops.push((key(&["w", runbook]), Some(enc(&at))));
    }
    /// Records an approval decision made while no process owned the run, only if none is
    /// recorded yet (two operators deciding at once: the second to commit writes nothing).
    pub fn approval(&mut self, run: &str, step: &str, a: &Approval) {
        self.conds.push(Cond::Absent(key(&["a", run, step])));
        self.ops.push((key(&["a", run, step]), Some(enc(a))));
    }
    /// Records what `phoenix serve` knows of an alert group on a route.
    pub fn alert_group(&mut self, route: &str, group_key: &str, g: &AlertGroup) {
        self.ops.push((key(&["g", route, group_key]), Some(enc(g))));
    }
    /// Removes a recorded decision once applied.
    pub fn clear_approval(&mut self, run: &str, step: &str) {
        self.ops.push((key(&["a", run, step]), None));
    }
}

/// Runs, steps, events, logs, locks and level history.
#[derive(Clone)]
pub struct Store {
    kv: Arc<dyn Kv>,
    /// The chain heads (`ch/RUN`) this process last committed, so that a commit with events
    /// need not read its run's head first (one etcd read a step). Only a cache: the commit is
    /// still conditioned on the head it names, so a stale entry (another writer appended)
    /// fails that commit, and is dropped.
    heads: chain::Heads,
}

impl Store {
    /// Wraps a backend; writes the format version into a new store (and over an older one's:
    /// this binary may write what an older one cannot read), refuses a newer one.
    pub fn new(kv: Arc<dyn Kv>) -> Result<Self, StoreError> {
        let store = Store { kv, heads: chain::Heads::default() };
        let mark = || store.kv.commit(vec![(b"meta/format".to_vec(), Some(FORMAT_VERSION.to_string().into_bytes()))], true);
        match store.kv.get(b"meta/format")? {
            None => mark()?,
            Some(v) => {
                let found: u32 =
                    String::from_utf8_lossy(&v).parse().map_err(|_| StoreError("the store's format version is unreadable".into()))?;
                if found > FORMAT_VERSION {
                    return Err(StoreError(format!(
                        "this store was written by a newer phoenix (format {found}; this binary reads up to {FORMAT_VERSION}): upgrade phoenix"
                    )));
                }
                if found < FORMAT_VERSION {
                    mark()?;
                }
            }
        }
        Ok(store)
    }

    /// Applies a batch atomically; with `durable`, returns only once it is on disk. A batch
    /// whose conditions no longer hold is an error (see [`Store::try_commit`]).
    pub fn commit(&self, batch: Batch, durable: bool) -> Result<(), StoreError> {
        if self.try_commit(batch, durable)? {
            Ok(())
        } else {
            Err(StoreError("another commit changed what this one was conditioned on; nothing was written".into()))
        }
    }

    /// Applies a batch atomically if its conditions hold (`Ok(false)`, nothing written, if
    /// not); with `durable`, returns only once it is on disk. Its events are chained here
    /// (`chain.rs`), conditioned on each run's chain head as read: events at seqs another
    /// commit has written meanwhile are refused the same way.
    pub fn try_commit(&self, batch: Batch, durable: bool) -> Result<bool, StoreError> {
        let Batch { mut ops, mut conds, events } = batch;
        if events.is_empty() {
            return Ok(self.kv.commit_if(&conds, ops, durable)?);
        }
        let Some(sealed) = chain::seal_events(self.kv.as_ref(), &self.heads, events, &mut ops, &mut conds)? else {
            return Ok(false);
        };
        match self.kv.commit_if(&conds, ops, durable) {
            Ok(true) => {
                self.heads.remember(sealed);
                Ok(true)
            }
            other => {
                self.heads.forget(&sealed);
                Ok(other?)
            }
        }
    }

    /// Makes everything applied so far durable.
    pub fn flush(&self) -> Result<(), StoreError> {
        Ok(self.kv.flush()?)
    }

    fn get<T: DeserializeOwned>(&self, k: Vec<u8>) -> Result<Option<T>, StoreError> {
        match self.kv.get(&k)? {
            Some(v) => dec(&k, &v).map(Some),
            None => Ok(None),
        }
    }

    fn scan<T: DeserializeOwned>(&self, prefix: Vec<u8>) -> Result<Vec<T>, StoreError> {
        self.kv.scan(&prefix)?.iter().map(|(k, v)| dec(k, v)).collect()
    }

    /// A run.
    pub fn run(&self, id: &str) -> Result<Option<RunRecord>, StoreError> {
        self.get(key(&["r", id]))
    }

    /// Every run, newest first.
    pub fn runs(&self) -> Result<Vec<RunRecord>, StoreError> {
        let mut runs: Vec<RunRecord> = self.scan(b"r/".to_vec())?;
        runs.sort_by(|a, b| b.started_at.cmp(&a.started_at).then(b.id.cmp(&a.id)));
        Ok(runs)
    }

    /// A run, and the record as read (for [`Batch::unchanged`]).
    pub fn run_seen(&self, id: &str) -> Result<Option<(RunRecord, Seen)>, StoreError> {
        let k = key(&["r", id]);
        match self.kv.get(&k)? {
            Some(bytes) => Ok(Some((dec(&k, &bytes)?, Seen { key: k, bytes }))),
            None => Ok(None),
        }
    }

    /// A run's steps (and items), in key order.
    pub fn steps(&self, run: &str) -> Result<Vec<StepRecord>, StoreError> {
        self.scan(key(&["s", run, ""]))
    }

    /// One step.
    pub fn step(&self, run: &str, step: &str) -> Result<Option<StepRecord>, StoreError> {
        self.get(key(&["s", run, step]))
    }

    /// A run's events from `from` on.
    pub fn events(&self, run: &str, from: u64) -> Result<Vec<EventRecord>, StoreError> {
        let all: Vec<EventRecord> = self.scan(key(&["e", run, ""]))?;
        Ok(all.into_iter().filter(|e| e.seq >= from).collect())
    }

    /// A run's event records as stored (`(seq, bytes)`, in seq order), for `audit.rs`: the
    /// chain is checked on these bytes, not on what a typed read keeps of them.
    pub fn raw_events(&self, run: &str) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        Ok(self
            .kv
            .scan(&key(&["e", run, ""]))?
            .into_iter()
            .map(|(k, v)| {
                let k = String::from_utf8_lossy(&k);
                (k.rsplit('/').next().and_then(|s| u64::from_str_radix(s, 16).ok()).unwrap_or(u64::MAX), v)
            })
            .collect())
    }

    /// A run's chain head as stored (`ch/RUN`: the last record's seq and hash).
    pub fn chain_head(&self, run: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.kv.get(&chain::head_key(run))?)
    }

    /// A run's log lines, optionally of one step (its items included).
    pub fn logs(&self, run: &str, step: Option<&str>) -> Result<Vec<LogRecord>, StoreError> {
        let all: Vec<LogRecord> = self.scan(key(&["l", run, ""]))?;
        Ok(match step {
            None => all,
            Some(s) => all.into_iter().filter(|l| l.step == s || l.step.strip_prefix(s).is_some_and(|r| r.starts_with('['))).collect(),
        })
    }

    /// The next free sequence numbers for a run's events and logs.
    pub fn next_seqs(&self, run: &str) -> Result<(u64, u64), StoreError> {
        let next = |prefix: &str| -> Result<u64, StoreError> {
            Ok(match self.kv.last(&key(&[prefix, run, ""]))? {
                Some((k, _)) => {
                    let k = String::from_utf8_lossy(&k);
                    u64::from_str_radix(k.rsplit('/').next().unwrap_or("0"), 16).unwrap_or(0) + 1
                }
                None => 0,
            })
        };
        Ok((next("e")?, next("l")?))
    }

    /// The runbook text a run started with.
    pub fn source(&self, run: &str) -> Result<Option<String>, StoreError> {
        Ok(self.kv.get(&key(&["src", run]))?.map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    /// The run holding a lock.
    pub fn lock_holder(&self, lock: &str) -> Result<Option<String>, StoreError> {
        Ok(self.kv.get(&key(&["k", lock]))?.map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    /// A runbook's level history.
    pub fn history(&self, runbook: &str) -> Result<Option<LevelHistory>, StoreError> {
        self.get(key(&["h", runbook]))
    }

    /// When `phoenix watch` last started a run of a runbook (ms since the epoch).
    pub fn last_action(&self, runbook: &str) -> Result<Option<u64>, StoreError> {
        self.get(key(&["w", runbook]))
    }

    /// What `phoenix serve` knows of an alert group on a route.
    pub fn alert_group(&self, route: &str, group_key: &str) -> Result<Option<AlertGroup>, StoreError> {
        self.get(key(&["g", route, group_key]))
    }

    /// A recorded approval decision not yet applied.
    pub fn approval(&self, run: &str, step: &str) -> Result<Option<Approval>, StoreError> {
        self.get(key(&["a", run, step]))
    }
}

#[cfg(test)]
#[path = "store_tests.rs"]
pub(crate) mod tests;
