//! What the server does when its node's role changes: a new leader takes over the runs the
//! old one left; a deposed one stops its runs without writing (`cluster/election.rs` decides,
//! this carries it out on the server's runtime).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use phoenix_engine::exec::ResumeOptions;
use tokio::sync::mpsc::UnboundedReceiver;

use super::{App, stamp};
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
                println!("{} node {me} leads now (fencing token {token}{from})", stamp());
                if let Some(kv) = crate::cmd::state::etcd() {
                    // A batch the old leader committed but had not finished writing.
                    if let Err(e) = kv.recover() {
                        eprintln!("{} node {me}: finishing the previous leader's last commit failed: {e}", stamp());
                    }
                }
                take_over(&app, &mut asked).await;
            }
            Some(Change::Deposed { why }) => {
                let n = app.engine.abandon_all(&why);
                eprintln!("{} node {me} {why}: stopped {n} run(s) and their steps, writing nothing; following", stamp());
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
            eprintln!("{} node {me}: cannot list the runs to take over: {e}", stamp());
            return;
        }
    };
    for (id, from) in runs {
        if asked.contains(&id) || !app.cluster.is_leader() {
            continue;
        }
        let opts = ResumeOptions { takeover_from: Some(from.clone()), by: Some(format!("takeover ({me})")), ..ResumeOptions::default() };
        match super::runs::resume(app, &id, opts).await {
            Ok(None) => {
                app.cluster.count_takeover();
                println!("{} run {id} taken over by {me} from {from}", stamp());
            }
            Ok(Some(why)) => {
                // Recorded by the resume: the run is halted, waiting for an operator.
                asked.insert(id.clone());
                app.cluster.count_takeover();
                println!("{} run {id} taken over by {me} from {from}, and halted: {why}", stamp());
            }
            Err(e) => eprintln!("{} node {me}: run {id} could not be taken over from {from}: {e}", stamp()),
        }
    }
}
