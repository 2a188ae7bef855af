//! The store on etcd: [`EtcdKv`] implements [`Kv`] with etcd transactions, fenced by the
//! leader's key, patient while etcd has no quorum.
//!
//! Every store key lives under a prefix (`phoenix/` by default). A commit's conditions and
//! writes are one transaction (or a staged batch, [`super::staged`]), so two nodes taking one
//! lock at once get exactly one winner. With a [`Fence`], every transaction also requires
//! that the leader's key was created at the leader's revision: a deposed leader's commit
//! fails with `fenced: …` and nothing it sends is written after that. A commit that meets an
//! etcd without quorum waits and tries again until it goes through; a read gives up after
//! [`READ_PATIENCE`]. Reads are never fenced. etcd acknowledges a write once a quorum has it
//! on disk, so every commit is durable and `flush` has nothing to do.

use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use serde_json::{Value, json};

use super::client::{Compare, Etcd, EtcdError, KeyValue, Txn, TxnOp};
use super::pieces::{self, ReadError};
use super::wire::{self, TxnAnswer, b64};
use super::{ops, staged};
use crate::state::{Cond, Entry, Kv, Ops};

/// How long one request to one member may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a read waits for etcd to answer before it is an error.
pub(super) const READ_PATIENCE: Duration = Duration::from_secs(10);
/// The longest pause between two tries of a commit.
const MOST_PAUSE: Duration = Duration::from_secs(1);

#[cfg(test)]
thread_local! {
    /// How many of this thread's next transactions lose their answer after etcd applied them
    /// (a timeout that came after the commit).
    pub(super) static LOSE_ANSWERS: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// What every commit must also hold: nothing, the leader's key, or nothing ever again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fence {
    /// Commits are not fenced (a single node).
    None,
    /// Commits go through only while `key` exists as created at `create_revision`.
    Key { key: Vec<u8>, create_revision: i64 },
    /// Leadership was lost: every commit fails with this text.
    Deposed(String),
}

/// The state store on an etcd cluster.
pub struct EtcdKv {
    etcd: Etcd,
    prefix: Vec<u8>,
    fence: Mutex<Fence>,
    lost: tokio::sync::watch::Sender<Option<String>>,
    unavailable: Mutex<Option<SystemTime>>,
    /// One commit at a time: a staged batch is applied before the next commit writes.
    commits: Mutex<()>,
}

/// One transaction's answer, and whether an earlier try of it may have been applied.
pub(super) struct Tried {
    pub(super) answer: TxnAnswer,
    pub(super) retried: bool,
}

impl EtcdKv {
    /// Opens the store at `etcd://HOST:PORT[,HOST:PORT…][/PREFIX]` or `etcds://…` (prefix
    /// `phoenix/` by default) and finishes what a crash left half committed ([`EtcdKv::recover`]).
    pub fn open(url: &str) -> Result<EtcdKv, String> {
        let kv = EtcdKv::connect(url)?;
        kv.recover().map_err(|e| format!("cannot open the state store on etcd ({url}): {e}"))?;
        Ok(kv)
    }

    /// The store at `url`, as it is (no request sent yet).
    pub(super) fn connect(url: &str) -> Result<EtcdKv, String> {
        let url = super::EtcdUrl::parse(url)?;
        let etcd = Etcd::connect_tls(url.endpoints, url.tls.as_ref(), REQUEST_TIMEOUT)?;
        let kv = EtcdKv {
            etcd,
            prefix: url.prefix.into_bytes(),
            fence: Mutex::new(Fence::None),
            lost: tokio::sync::watch::channel(None).0,
            unavailable: Mutex::new(None),
            commits: Mutex::new(()),
        };
        Ok(kv)
    }

    /// The client this store uses.
    pub fn etcd(&self) -> &Etcd {
        &self.etcd
    }

    /// The etcd key of a store key: the prefix, then `k` (for keys beside the store's, such as
    /// `cluster/…`).
    pub fn key(&self, k: &str) -> Vec<u8> {
        [self.prefix.as_slice(), k.as_bytes()].concat()
    }

    /// The etcd members this store talks to.
    pub fn endpoints(&self) -> &[String] {
        self.etcd.endpoints()
    }

    pub(super) fn prefix(&self) -> &[u8] {
        &self.prefix
    }

    /// Fences every commit from now on (see [`Fence`]).
    pub fn set_fence(&self, f: Fence) {
        let reason = if let Fence::Deposed(why) = &f { Some(why.clone()) } else { None };
        *self.fence.lock().unwrap_or_else(|p| p.into_inner()) = f;
        self.lost.send_replace(reason);
    }

    /// The fence in force.
    pub fn fence(&self) -> Fence {
        self.fence.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Fires (with the reason) when the fence is lost.
    pub fn fence_lost(&self) -> tokio::sync::watch::Receiver<Option<String>> {
        self.lost.subscribe()
    }

    /// Since when a call has been waiting for etcd (no member answers, or none has a quorum);
    /// `None` once a call goes through.
    pub fn unavailable_since(&self) -> Option<SystemTime> {
        *self.unavailable.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Applies every committed batch a crash left unapplied, and deletes abandoned staging.
    /// A new leader calls it once its fence is set, before it commits anything.
    pub fn recover(&self) -> Result<(), String> {
        self.recover_older_than(staged::ORPHAN_AGE)
    }

    pub(super) fn recover_older_than(&self, orphan_age: Duration) -> Result<(), String> {
        let _one = self.commits.lock().unwrap_or_else(|p| p.into_inner());
        staged::recover(self, orphan_age)
    }

    fn waiting(&self, on: bool) {
        let mut since = self.unavailable.lock().unwrap_or_else(|p| p.into_inner());
        if !on {
            *since = None;
        } else if since.is_none() {
            *since = Some(SystemTime::now());
        }
    }

    fn depose(&self, why: String) -> String {
        self.set_fence(Fence::Deposed(why.clone()));
        why
    }

    /// Runs a transaction under the fence (and `compares`, and deleting `ranges` on success),
    /// trying again while etcd is unavailable, until it is answered, refused, or the fence is
    /// lost.
    pub(super) fn run(&self, t: Txn, ranges: &[(Vec<u8>, Vec<u8>)], compares: Vec<Value>) -> Result<Tried, String> {
        let (mut retried, mut pause) = (false, Duration::from_millis(50));
        loop {
            let fence = match self.fence() {
                Fence::Deposed(why) => return Err(why),
                Fence::None => None,
                Fence::Key { key, create_revision } => Some((key, create_revision)),
            };
            let mut t = t.clone();
            if let Some((key, rev)) = &fence {
                t.compare.push(Compare::CreateRevision(key.clone(), *rev));
                t.failure.insert(0, TxnOp::Get(key.clone()));
            }
            let mut body = wire::txn(&t, true);
            body["compare"].as_array_mut().expect("an array").extend(compares.iter().cloned());
            let deletes = ranges.iter().map(|(a, b)| json!({"requestDeleteRange": {"key": b64(a), "rangeEnd": b64(b)}}));
            body["success"].as_array_mut().expect("an array").extend(deletes);
            let answered = self.etcd.txn_json(body);
            #[cfg(test)]
            let answered = match answered {
                Ok(_) if LOSE_ANSWERS.with(|n| n.replace(n.get().saturating_sub(1))) > 0 => {
                    Err(EtcdError::Unavailable("the answer was lost (test)".into()))
                }
                other => other,
            };
            match answered {
                Ok(mut answer) => {
                    self.waiting(false);
                    if let (false, Some((key, rev))) = (answer.succeeded, &fence) {
                        let held = if answer.gets.is_empty() { None } else { answer.gets.remove(0) };
                        if held.as_ref().map(|kv| kv.create_revision) != Some(*rev) {
                            let now = held
                                .map_or("it is gone".to_string(), |kv| format!("it was created again at revision {}", kv.create_revision));
                            return Err(self.depose(format!(
                                "fenced: this node no longer leads: the leader key {} was created at revision {rev} and {now}; another node has taken over, and this node commits nothing more",
                                String::from_utf8_lossy(key)
                            )));
                        }
                    }
                    let retried = retried || answer.uncertain;
                    return Ok(Tried { answer, retried });
                }
                Err(EtcdError::Unavailable(_)) => {
                    self.waiting(true);
                    retried = true;
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(MOST_PAUSE);
                }
                Err(EtcdError::Rejected(e)) => return Err(format!("etcd refused a write of the state store: {e}")),
            }
        }
    }

    /// A read, tried again while etcd is unavailable, for at most [`READ_PATIENCE`].
    pub(super) fn read<T>(&self, f: impl Fn(&Etcd) -> Result<T, EtcdError>) -> Result<T, String> {
        let (start, mut pause) = (Instant::now(), Duration::from_millis(50));
        loop {
            match f(&self.etcd) {
                Ok(v) => {
                    self.waiting(false);
                    return Ok(v);
                }
                Err(EtcdError::Rejected(e)) => return Err(format!("etcd refused a read of the state store: {e}")),
                Err(EtcdError::Unavailable(e)) => {
                    self.waiting(true);
                    if start.elapsed() >= READ_PATIENCE {
                        return Err(format!(
                            "etcd is unreachable or has no quorum ({}), for {}s: {e}; check that most of its members are up and reachable",
                            self.endpoints().join(", "),
                            READ_PATIENCE.as_secs()
                        ));
                    }
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(MOST_PAUSE);
                }
            }
        }
    }

    /// A stored value, put together from its pieces if it has some.
    fn value(&self, key: &[u8], stored: Vec<u8>, revision: i64) -> Result<Vec<u8>, String> {
        self.read(|etcd| match pieces::decode(etcd, &self.prefix, key, stored.clone(), revision) {
            Ok(v) => Ok(Ok(v)),
            Err(ReadError::Etcd(e)) => Err(e),
            Err(ReadError::Damaged(d)) => Ok(Err(format!("the state store on etcd is damaged: {d}"))),
        })?
    }

    /// What `key` holds in etcd while its value is `value`, for a compare: its short form, or
    /// for a long value the header stored now if it names this value; `None` if the key does
    /// not hold `value` now (the condition fails).
    pub(super) fn stored_form(&self, key: &[u8], value: &[u8]) -> Result<Option<Vec<u8>>, String> {
        if let Some(short) = pieces::short_form(value) {
            return Ok(Some(short));
        }
        let full = [self.prefix.as_slice(), key].concat();
        let end = [full.as_slice(), &[0]].concat();
        let (found, _, revision) = self.read(|etcd| etcd.range(&full, &end, 0, 0))?;
        let Some(stored) = found.into_iter().next() else { return Ok(None) };
        let whole = self.value(&full, stored.value.clone(), revision)?;
        Ok((whole == value).then_some(stored.value))
    }

    /// The store's entries among `found`, keys without the prefix, values whole.
    fn entries(&self, found: Vec<KeyValue>, revision: i64) -> Result<Vec<Entry>, String> {
        found
            .into_iter()
            .filter(|kv| !self.hidden(&kv.key))
            .map(|kv| {
                let v = self.value(&kv.key, kv.value, revision)?;
                Ok((kv.key[self.prefix.len()..].to_vec(), v))
            })
            .collect()
    }

    /// Whether an etcd key is the store's own bookkeeping (staging, pieces), not a store key.
    fn hidden(&self, key: &[u8]) -> bool {
        let rest = &key[self.prefix.len().min(key.len())..];
        rest.starts_with(b"x/") || rest.starts_with(b"p/")
    }
}

impl Kv for EtcdKv {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, String> {
        let full = [self.prefix.as_slice(), key].concat();
        let end = [full.as_slice(), &[0]].concat();
        let (found, _, revision) = self.read(|etcd| etcd.range(&full, &end, 0, 0))?;
        match found.into_iter().next() {
            None => Ok(None),
            Some(kv) => self.value(&full, kv.value, revision).map(Some),
        }
    }

    fn scan(&self, prefix: &[u8]) -> Result<Vec<Entry>, String> {
        let full = [self.prefix.as_slice(), prefix].concat();
        let (found, revision) = self.read(|etcd| etcd.range_prefix_at(&full, 0, 64))?;
        self.entries(found, revision)
    }

    fn last(&self, prefix: &[u8]) -> Result<Option<Entry>, String> {
        const LOOK: i64 = 8;
        let full = [self.prefix.as_slice(), prefix].concat();
        let (found, revision) = self.read(|etcd| etcd.range_last(&full, &wire::prefix_end(&full), LOOK))?;
        let all = found.len() as i64 == LOOK;
        match self.entries(found, revision)?.into_iter().next() {
            Some(e) => Ok(Some(e)),
            // Only bookkeeping among the last few: look at everything.
            None if all => Ok(self.scan(prefix)?.pop()),
            None => Ok(None),
        }
    }

    fn commit_if(&self, conds: &[Cond], ops: Ops, _durable: bool) -> Result<bool, String> {
        if conds.is_empty() && ops.is_empty() {
            return match self.fence() {
                Fence::Deposed(why) => Err(why),
                _ => Ok(true),
            };
        }
        let _one = self.commits.lock().unwrap_or_else(|p| p.into_inner());
        let plan = ops::plan(&self.prefix, ops)?;
        staged::commit(self, conds, plan)
    }

    fn flush(&self) -> Result<(), String> {
        // Every acknowledged commit is on a quorum's disks already.
        match self.fence() {
            Fence::Deposed(why) => Err(why),
            _ => Ok(()),
        }
    }
}
