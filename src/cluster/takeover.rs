//! Which runs a new leader takes over, and whether a run is driven by a live leader.
//!
//! A run records its owner (`RunRecord::owner`, the node that started or last resumed it).
//! Only the leader drives runs, and every commit it makes is fenced on its leader key: once a
//! node leads, a run still `running` under another owner can never be written by that owner
//! again (a crashed node, or a deposed one still stopping its steps). The leader resumes it by
//! the crash-resume rules. A run owned by this node that this node does not drive was left by
//! its previous life (a crash, then a restart under the same name). Runs without an owner were
//! A run the leader checkpointed as `interrupted` when it was stopped (SIGTERM) is carried on
//! the same way: stopping a node hands its runs to the next leader. Runs without an owner were
//! started outside the cluster (`phoenix run` on a terminal): their operator resumes them. A
//! child run is resumed by its parent's step, as after a crash.

use phoenix_engine::state::EtcdKv;
use phoenix_engine::state::{RunRecord, RunStatus, Store};

use super::LeaderInfo;
use super::election::LEADER_KEY;

/// The runs to take over: `(run, the node it is taken from)`, oldest first.
pub(crate) fn orphaned(store: &Store, driven_here: impl Fn(&str) -> bool) -> Result<Vec<(String, String)>, String> {
    let mut out: Vec<(String, String)> = store
        .runs()
        .map_err(|e| e.to_string())?
        .into_iter()
        .filter(|r| (r.status == RunStatus::Running || stopped_with_its_node(r)) && r.parent.is_none() && !driven_here(&r.id))
        .filter_map(|r| r.owner.map(|o| (r.id, o)))
        .collect();
    out.reverse();
    Ok(out)
}

/// A run its node checkpointed when it was stopped (SIGTERM: a restart, a node drained): in
/// a cluster, the next leader carries it on, as it would after a crash.
fn stopped_with_its_node(r: &RunRecord) -> bool {
    r.status == RunStatus::Halted && r.error.as_deref() == Some("interrupted")
}

/// The leader now, as the leader key says (`None`: no node leads).
pub(crate) fn current_leader(kv: &EtcdKv) -> Result<Option<LeaderInfo>, String> {
    let Some(held) = kv.etcd().get(&kv.key(LEADER_KEY)).map_err(|e| e.to_string())? else { return Ok(None) };
    let mut l: LeaderInfo = serde_json::from_slice(&held.value)
        .map_err(|e| format!("the leader key holds something unreadable ({e}): is another program using this prefix?"))?;
    l.token = held.create_revision as u64;
    l.lease = held.lease;
    Ok(Some(l))
}

/// Why a command on the terminal must not resume or change a run itself: a live leader
/// drives it (or will take it over). `None`: nobody does.
pub(crate) fn driven_by_cluster(kv: &EtcdKv, run: &RunRecord) -> Result<Option<String>, String> {
    if run.status != RunStatus::Running || run.owner.is_none() {
        return Ok(None);
    }
    Ok(current_leader(kv)?.map(|l| {
        format!(
            "run {} belongs to the cluster: node {} leads it now (it takes over a run whose node is gone); act through any node's API ({}/api/v1/runs/{})",
            run.id, l.node, l.url, run.id
        )
    }))
}
