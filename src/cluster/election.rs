//! The election: one leader key on a lease, campaigned for by compare-and-create, kept alive
//! by a thread of its own, and the fence that makes a deposed leader's commits fail.
//!
//! Keys, under the store's prefix:
//! - `cluster/leader`: the leader's [`LeaderInfo`] (JSON), attached to its lease. Its create
//!   revision is the fencing token: etcd's revisions only grow, so a later leader's token is
//!   always larger, and every commit of the leader compares it (`Fence::Key`).
//! - `cluster/nodes/NODE`: each serve node's [`NodeInfo`], attached to its lease: a node whose
//!   lease is gone has stopped (or lost etcd for longer than the TTL).
//!
//! The loop runs on its own OS thread, not on the server's runtime: a runtime busy with runs
//! must not delay the keepalive until the lease expires.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use phoenix_engine::state::{Compare, EtcdKv, Fence, Txn, TxnOp};
use serde::{Deserialize, Serialize};

use super::{Cluster, LeaderInfo};

/// What a serve node says of itself in `cluster/nodes/NODE`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct NodeInfo {
    pub(crate) node: String,
    pub(crate) url: String,
    pub(crate) pid: u32,
    pub(crate) host: String,
    /// RFC 3339.
    pub(crate) started_at: String,
}

/// What the election tells the server.
#[derive(Debug, Clone)]
pub(crate) enum Change {
    /// This node now leads, under this token; `from`: the leader before it, if one had held
    /// the key (a takeover), else `None`.
    Elected { token: u64, from: Option<String> },
    /// This node no longer leads: stop every run without writing.
    Deposed { why: String },
}

pub(crate) const LEADER_KEY: &str = "cluster/leader";
pub(crate) const NODES_PREFIX: &str = "cluster/nodes/";

/// How often a follower looks at the leader key: a takeover comes at most this long after
/// the old leader's lease expired.
const POLL: Duration = Duration::from_millis(250);

/// Starts the election thread. `changes` hears every change of role, in order.
pub(crate) fn start(
    cluster: Arc<Cluster>,
    kv: Arc<EtcdKv>,
    info: NodeInfo,
    ttl: Duration,
    changes: tokio::sync::mpsc::UnboundedSender<Change>,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<()> {
    std::thread::Builder::new()
        .name("phoenix-election".into())
        .spawn(move || Election { cluster, kv, info, ttl, changes, lease: None, last_leader: None }.run(&stop))
        .expect("the election thread starts")
}

struct Election {
    cluster: Arc<Cluster>,
    kv: Arc<EtcdKv>,
    info: NodeInfo,
    ttl: Duration,
    changes: tokio::sync::mpsc::UnboundedSender<Change>,
    /// The lease and when it was last renewed.
    lease: Option<(i64, Instant)>,
    /// The last leader seen in the key (for "taken over from").
    last_leader: Option<String>,
}

impl Election {
    fn run(mut self, stop: &std::sync::atomic::AtomicBool) {
        let mut fence_lost = self.kv.fence_lost();
        while !stop.load(Ordering::SeqCst) {
            if let Err(e) = self.round(&mut fence_lost) {
                self.cluster.set_paused(Some(format!("etcd: {e}")));
            }
            std::thread::sleep(POLL);
        }
        // A clean stop hands leadership on at once, instead of after the TTL.
        if let Some((lease, _)) = self.lease.take() {
            if self.cluster.is_leader() {
                self.depose("this node is stopping".into());
            }
            let _ = self.kv.etcd().lease_revoke(lease);
        }
    }

    fn round(&mut self, fence_lost: &mut tokio::sync::watch::Receiver<Option<String>>) -> Result<(), String> {
        // A commit refused by the fence: deposed, whatever the lease says.
        if fence_lost.has_changed().unwrap_or(false) {
            // The reason is copied out first: the borrow holds the channel's read lock, and
            // deposing sends on the same channel (held across `depose`, the thread deadlocked
            // and the node said it led for ever).
            let lost = fence_lost.borrow_and_update().clone();
            if let Some(why) = lost {
                if self.cluster.is_leader() {
                    self.depose(why);
                }
            }
        }
        let lease = self.keep_lease()?;
        let etcd = self.kv.etcd();
        let key = self.kv.key(LEADER_KEY);
        if self.cluster.is_leader() {
            // Still ours? (a lease revoked by an operator, the key deleted by hand)
            let mine = etcd.get(&key).map_err(|e| e.to_string())?.is_some_and(|kv| kv.lease == lease);
            if !mine {
                self.depose("the leader key is no longer this node's (its lease expired or it was removed)".into());
            }
            self.cluster.set_paused(None);
            return Ok(());
        }
        let me = LeaderInfo { node: self.info.node.clone(), url: self.info.url.clone(), token: 0, lease };
        let txn = Txn {
            compare: vec![Compare::CreateRevision(key.clone(), 0)],
            success: vec![TxnOp::Put { key: key.clone(), value: serde_json::to_vec(&me).expect("serializes"), lease }],
            failure: vec![TxnOp::Get(key.clone())],
        };
        let r = etcd.txn(&txn).map_err(|e| e.to_string())?;
        self.cluster.set_paused(None);
        // The key on this node's own lease: an earlier try of this campaign was applied but
        // its answer was lost (a member failed over): won then, at that revision.
        let ours =
            r.gets.first().and_then(Option::as_ref).filter(|held| !r.succeeded && held.lease == lease).map(|held| held.create_revision);
        if r.succeeded || ours.is_some() {
            let revision = ours.unwrap_or(r.revision);
            let token = revision as u64;
            self.kv.set_fence(Fence::Key { key, create_revision: revision });
            // Before anything else is committed under the new token: finish the batch a
            // deposed leader committed but had not finished applying. Failing, the key stays
            // ours (on our lease) and the next round wins it again and retries.
            self.kv.recover().map_err(|e| format!("finishing the previous leader's last commit: {e}"))?;
            let from = self.last_leader.take().filter(|l| *l != self.info.node);
            self.cluster.elected(LeaderInfo { token, ..me });
            let _ = self.changes.send(Change::Elected { token, from });
        } else if let Some(Some(held)) = r.gets.first() {
            if let Ok(mut l) = serde_json::from_slice::<LeaderInfo>(&held.value) {
                l.token = held.create_revision as u64;
                l.lease = held.lease;
                self.last_leader = Some(l.node.clone());
                self.cluster.follow(Some(l));
            }
        }
        Ok(())
    }

    /// Renews the lease when a third of the TTL has passed; grants a new one (and writes
    /// the node key on it) when there is none or it is gone.
    fn keep_lease(&mut self) -> Result<i64, String> {
        let etcd = self.kv.etcd();
        if let Some((id, renewed)) = self.lease {
            if renewed.elapsed() < self.ttl / 3 {
                return Ok(id);
            }
            match etcd.lease_keepalive(id).map_err(|e| e.to_string())? {
                Some(_) => {
                    self.lease = Some((id, Instant::now()));
                    return Ok(id);
                }
                None => {
                    self.lease = None;
                    if self.cluster.is_leader() {
                        self.depose("its lease expired (this node was paused or cut off from etcd for longer than the TTL)".into());
                    }
                }
            }
        }
        let id = etcd.lease_grant(self.ttl.as_secs().max(1) as i64).map_err(|e| e.to_string())?;
        let node_key = self.kv.key(&format!("{NODES_PREFIX}{}", self.info.node));
        let value = serde_json::to_vec(&self.info).expect("serializes");
        etcd.txn(&Txn { compare: vec![], success: vec![TxnOp::Put { key: node_key, value, lease: id }], failure: vec![] })
            .map_err(|e| e.to_string())?;
        self.lease = Some((id, Instant::now()));
        Ok(id)
    }

    fn depose(&self, why: String) {
        let why = format!("deposed: {why}");
        self.kv.set_fence(Fence::Deposed(why.clone()));
        self.cluster.follow(None);
        let _ = self.changes.send(Change::Deposed { why });
    }
}

#[cfg(test)]
#[path = "election_tests.rs"]
mod tests;
