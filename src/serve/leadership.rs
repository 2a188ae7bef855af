//! What the server does when its node's role changes: a new leader takes over the runs the
//! old one left; a deposed one stops its runs without writing (`cluster/election.rs` decides,
//! this carries it out on the server's runtime).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use phoenix_engine::exec::ResumeOptions;
use tokio::sync::mpsc::UnboundedReceiver;

use super::App;
use crate::cluster::election::Change;

/// Follows the election until it ends; while leading, looks again every `every` for runs
/// left by a node that is gone (a takeover that failed on an etcd error is tried again).
pub(crate) async fn follow(app: Arc<App>, mut changes: UnboundedReceiver<Change>, every: Duration) {
    // Runs that halted before starting again (a non-idempotent step in flight): asked once.
    let mut asked: HashSet<String> = HashSet::new();
    let me = app.cluster.node().to_string();
    loop {
        let change = tokio::select! {
            c = changes.recv() => match c { Some(c) => Some(c), None => return },
            _ = tokio::time::sleep(every) => None,
        };
        match change {
            Some(Change::Elected { token, from }) => {
                let from = from.map_or_else(String::new, |f| format!(", after {f}"));
                super::log_line(None, &format!("node {me} leads now (fencing token {token}{from})"));
                take_over(&app, &mut asked).await;
            }
            Some(Change::Deposed { why }) => {
                let n = app.engine.abandon_all(&why);
                tracing::warn!(node = %me, "node {me} {why}: stopped {n} run(s) and their steps, writing nothing; following");
            }
            None if app.cluster.is_leader() => take_over(&app, &mut asked).await,
            None => {}
        }
    }
}

async fn take_over(app: &Arc<App>, asked: &mut HashSet<String>) {
    let me = app.cluster.node().to_string();
    let runs = match crate::cluster::takeover::orphaned(app.engine.store(), |id| app.engine.in_progress(id)) {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(node = %me, "node {me}: cannot list the runs to take over: {e}");
            return;
        }
    };
    for (id, from) in runs {
        if asked.contains(&id) || !app.cluster.is_leader() {
            continue;
        }
        // Claim it first, by a commit under this node's fence: a node that was paused and
        // does not know yet that it no longer leads fails here, before it stops any process
        // (resume stops the run's leftover processes before it commits anything).
        match claim(app, &id, &me) {
            Ok(true) => {}
            Ok(false) => continue,
            Err(e) => {
                tracing::warn!(node = %me, run_id = %id, "node {me}: not taking over run {id}: {e}");
                return;
            }
        }
        let opts = ResumeOptions { takeover_from: Some(from.clone()), by: Some(format!("takeover ({me})")), ..ResumeOptions::default() };
        match super::runs::resume(app, &id, opts).await {
            Ok(None) => {
                app.cluster.count_takeover();
                super::log_line(Some(&id), &format!("run {id} taken over by {me} from {from}"));
            }
            Ok(Some(why)) => {
                // Recorded by the resume: the run is halted, waiting for an operator.
                asked.insert(id.clone());
                app.cluster.count_takeover();
                super::log_line(Some(&id), &format!("run {id} taken over by {me} from {from}, and halted: {why}"));
            }
            Err(e) => tracing::error!(node = %me, run_id = %id, "node {me}: run {id} could not be taken over from {from}: {e}"),
        }
    }
}

/// Writes this node as the run's owner, if the run is still as read and this node still
/// holds the fence. `Ok(false)`: the run changed meanwhile (look again next time).
fn claim(app: &App, id: &str, me: &str) -> Result<bool, String> {
    let store = app.engine.store();
    let Some((mut run, seen)) = store.run_seen(id).map_err(|e| e.to_string())? else { return Ok(false) };
    run.owner = Some(me.to_string());
    let mut b = phoenix_engine::state::Batch::default();
    b.unchanged(&seen);
    b.put_run(&run);
    store.try_commit(b, true).map_err(|e| e.to_string())
}
