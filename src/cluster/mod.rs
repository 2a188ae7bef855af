//! The cluster: which `phoenix serve` node leads, under which lease and fencing token.
//!
//! With the embedded store (sled) there is one node and it always leads. With `--store
//! etcd://…` nodes campaign for one leader key on a lease (`election.rs`); the leader's
//! commits are fenced on that key's create revision (the backend compares it in every
//! transaction), and followers forward writes to the leader's advertised URL.
//!
//! The server and the commands see only this handle: whether this node leads, who does,
//! and a view for `/api/v1/cluster`, `/metrics` and `phoenix cluster status`.

pub(crate) mod election;
pub(crate) mod takeover;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde::Serialize;

/// Refuses a change made from a terminal (`approve`, `cancel`, `resume`) to a run a cluster
/// leader drives, or will take over: only the leader writes a running run. `Ok` outside a
/// cluster, and for a run that nobody drives.
pub(crate) fn refuse_if_driven(run: &phoenix_engine::state::RunRecord) -> Result<(), String> {
    let Some(kv) = crate::cmd::state::etcd() else { return Ok(()) };
    match takeover::driven_by_cluster(&kv, run)? {
        Some(why) => Err(why),
        None => Ok(()),
    }
}

/// The node that leads, as recorded in the leader key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub(crate) struct LeaderInfo {
    /// The leader's node name (`--node`, `ha.node`, else the host name).
    pub(crate) node: String,
    /// Where its HTTP API answers (`--advertise`, else `http://LISTEN`), for forwarding.
    pub(crate) url: String,
    /// The fencing token: the leader key's create revision (0 for the embedded store).
    pub(crate) token: u64,
    /// The etcd lease the leader key is attached to (0 for the embedded store).
    pub(crate) lease: i64,
}

/// What a node knows of the cluster, as served on `/api/v1/cluster`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ClusterView {
    /// `sled` or `etcd`.
    pub(crate) store: String,
    /// This node's name.
    pub(crate) node: String,
    /// Whether this node leads now.
    pub(crate) leader: bool,
    /// The leader, if one is known.
    pub(crate) current: Option<LeaderInfo>,
    /// Why this node does not act now, if it should and cannot (no etcd quorum, deposed).
    pub(crate) paused: Option<String>,
    /// Takeovers this node has made since it started.
    pub(crate) takeovers: u64,
}

/// This node's place in the cluster.
pub(crate) struct Cluster {
    node: String,
    /// `sled` or `etcd`.
    store: &'static str,
    state: Mutex<State>,
    takeovers: AtomicU64,
    /// The fencing token while this node leads, else 0; shared with the engine
    /// (`Membership::fence`), which shows it to steps as `run.fence`.
    fence: Arc<AtomicU64>,
}

struct State {
    leader: Option<LeaderInfo>,
    me_leads: bool,
    paused: Option<String>,
}

impl Cluster {
    /// The embedded store: one node, always the leader, no token.
    pub(crate) fn single(node: String, url: String) -> Cluster {
        let leader = LeaderInfo { node: node.clone(), url, token: 0, lease: 0 };
        Cluster {
            node,
            store: "sled",
            state: Mutex::new(State { leader: Some(leader), me_leads: true, paused: None }),
            takeovers: AtomicU64::new(0),
            fence: Arc::default(),
        }
    }

    /// A node of a cluster on etcd: a follower until the election says otherwise.
    pub(crate) fn etcd(node: String) -> Cluster {
        Cluster {
            node,
            store: "etcd",
            state: Mutex::new(State { leader: None, me_leads: false, paused: None }),
            takeovers: AtomicU64::new(0),
            fence: Arc::default(),
        }
    }

    /// The token the engine reads (`Membership::fence`).
    pub(crate) fn fence(&self) -> Arc<AtomicU64> {
        self.fence.clone()
    }

    /// This node won the election under `leader.token`.
    pub(crate) fn elected(&self, leader: LeaderInfo) {
        self.fence.store(leader.token, Ordering::SeqCst);
        let mut s = self.state.lock().expect("poisoned");
        s.leader = Some(leader);
        s.me_leads = true;
        s.paused = None;
    }

    /// Another node leads (or none is known): this one follows.
    pub(crate) fn follow(&self, leader: Option<LeaderInfo>) {
        self.fence.store(0, Ordering::SeqCst);
        let mut s = self.state.lock().expect("poisoned");
        s.leader = leader;
        s.me_leads = false;
    }

    /// Why this node cannot act now (etcd unreachable or without quorum), or `None` again.
    pub(crate) fn set_paused(&self, why: Option<String>) {
        self.state.lock().expect("poisoned").paused = why;
    }

    /// Counts a run taken over from a node that is gone.
    pub(crate) fn count_takeover(&self) {
        self.takeovers.fetch_add(1, Ordering::Relaxed);
    }

    /// This node's name.
    pub(crate) fn node(&self) -> &str {
        &self.node
    }

    /// Whether this node leads now (runs runs, watch loops and alert routes).
    pub(crate) fn is_leader(&self) -> bool {
        self.state.lock().expect("poisoned").me_leads
    }

    /// The leader, if one is known (for forwarding writes).
    pub(crate) fn leader(&self) -> Option<LeaderInfo> {
        self.state.lock().expect("poisoned").leader.clone()
    }

    /// Takeovers made by this node.
    pub(crate) fn takeovers(&self) -> u64 {
        self.takeovers.load(Ordering::Relaxed)
    }

    /// What this node knows, for the API and the page.
    pub(crate) fn view(&self) -> ClusterView {
        let s = self.state.lock().expect("poisoned");
        ClusterView {
            store: self.store.into(),
            node: self.node.clone(),
            leader: s.me_leads,
            current: s.leader.clone(),
            paused: s.paused.clone(),
            takeovers: self.takeovers(),
        }
    }
}
