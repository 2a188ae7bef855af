//! `phoenix run`, `phoenix drill` and `phoenix resume` from the command line while `phoenix serve` owns the
//! state directory: the command asks the server over the control socket (0600: the same
//! user), the server starts or resumes the run as if through its API, and the command
//! follows it (`crate::cmd::follow`).
//!
//! The server's `runbooks` directory stays the list of what may run: a file elsewhere is
//! refused, whoever asks. Who asks is the socket peer's user, or a name serve.yaml's
//! `socket_users` lets that user act as (`socket_names`).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};

use phoenix_engine::exec::control::{Answer, Extension};
use phoenix_engine::exec::identity::Peer;
use phoenix_engine::exec::{RunError, StartOptions};
use serde_json::{Value, json};

use super::App;
use super::config::find_runbook;

/// The server's answers to `start` and `resume`.
pub(crate) struct Handover(pub(crate) Weak<App>);

impl Extension for Handover {
    fn answer(&self, req: Value) -> Option<Answer> {
        let op = req["op"].as_str()?.to_string();
        if op != "start" && op != "resume" {
            return None;
        }
        let app = self.0.clone();
        Some(Box::pin(async move {
            let app = app.upgrade().ok_or("the server is stopping")?;
            let by = req["by"].as_str().unwrap_or("unknown").to_string();
            // Only the leader drives runs; a follower on this machine points at it.
            if !app.cluster.is_leader() {
                let leader = app
                    .cluster
                    .leader()
                    .map_or_else(|| "no node leads now: retry shortly".to_string(), |l| format!("node {} at {} leads", l.node, l.url));
                return Err(format!("this `phoenix serve` follows in the cluster ({leader}); {op} through any node's API instead"));
            }
            if op == "start" { start(&app, &req, by).await } else { resume(&app, &req, by).await }
        }))
    }

    fn socket_names(&self, peer: &Peer) -> Vec<String> {
        let Some(app) = self.0.upgrade() else { return Vec::new() };
        let users = &app.config.socket_users;
        users.get(&peer.name).or_else(|| users.get(&peer.uid.to_string())).cloned().unwrap_or_default()
    }
}

/// The runbook at `file`, if it is one of the server's.
fn allowed(app: &App, file: &str) -> Result<phoenix_engine::Runbook, String> {
    let dir = app.config.runbooks.canonicalize().unwrap_or_else(|_| app.config.runbooks.clone());
    let path = PathBuf::from(file);
    let inside = path.parent().is_some_and(|p| p == dir);
    let name = path.file_name().and_then(|n| n.to_str()).filter(|_| inside).ok_or_else(|| {
        format!(
            "`phoenix serve` owns this state directory and runs only the runbooks in {}; {file} is not one of them \
             (put it there, or use another --state directory)",
            dir.display()
        )
    })?;
    find_runbook(Path::new(&dir), name)
}

async fn start(app: &Arc<App>, req: &Value, by: String) -> Result<Value, String> {
    let rb = allowed(app, req["file"].as_str().unwrap_or_default())?;
    let params = req["params"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| Some((p[0].as_str()?.to_string(), p[1].as_str()?.to_string())))
        .collect();
    if req["drill"] == true {
        return match super::drills::start(app, rb, params, by).await {
            Ok(id) => Ok(json!({ "id": id, "drill": true })),
            Err(super::drills::Refused::Collides(why)) => Err(why),
            Err(super::drills::Refused::Run(e)) => Err(described(e)),
        };
    }
    let opts = StartOptions { params, by: Some(by), ..StartOptions::default() };
    super::runs::launch(app, Arc::new(rb), opts).await.map(|id| json!({ "id": id })).map_err(described)
}

async fn resume(app: &Arc<App>, req: &Value, by: String) -> Result<Value, String> {
    let id = req["run"].as_str().unwrap_or_default().to_string();
    let runbook = match req["runbook"].as_str() {
        Some(file) => Some(allowed(app, file)?),
        None => None,
    };
    let mut opts = super::resume_body::options(req, by)?;
    opts.runbook = runbook;
    opts.confirmed = req["confirmed"]
        .is_array()
        .then(|| req["confirmed"].as_array().into_iter().flatten().filter_map(|s| s.as_str().map(str::to_string)).collect());
    // The command line shows the plan (and confirms an adoption) before asking for the resume.
    if req["dry_run"].as_bool() == Some(true) {
        if app.engine.in_progress(&id) {
            return Err(format!("run {id} is in progress in `phoenix serve`: nothing to resume (phoenix status {id})"));
        }
        let a = app.engine.plan_resume(&id, &opts).await.map_err(described)?;
        return Ok(json!({ "id": id, "plan": { "diff": a.diff, "plan": a.plan, "runs": a.runs, "asks": a.asks } }));
    }
    match super::runs::resume(app, &id, opts).await.map_err(described)? {
        None => Ok(json!({ "id": id })),
        Some(why) => Ok(json!({ "id": id, "halted": why })),
    }
}

fn described(e: RunError) -> String {
    match e {
        RunError::BadInput(m) => m,
        RunError::Store(e) | RunError::Stopped { source: e, .. } => e.to_string(),
    }
}
