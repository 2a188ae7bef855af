//! The control socket: the process that owns the store answers `status`, `runs`, `logs`,
//! `definitions`, `approve` and `cancel` from other `phoenix` processes over
//! `STATE/phoenix.sock` (0600); an [`Extension`] answers more (`phoenix serve`: `start` and
//! `resume`).
//! One JSON request line, one JSON response line.
//!
//! Who asks is the peer's uid (SO_PEERCRED, [`Peer`]); the `by` of a request is a claim,
//! honoured as [`Peer::acts_as`] allows (its own name, root as anyone, or names the
//! extension maps the user to).

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::mpsc;

use super::driver::Msg;
use super::engine::Engine;
use super::identity::Peer;
use super::prepare::now_ms;
use super::views;
use crate::state::Approval;

/// An extension's answer to come: a result, or the error to report.
pub type Answer = std::pin::Pin<Box<dyn std::future::Future<Output = Result<Value, String>> + Send>>;

/// Answers control requests the engine does not know, for the process that owns the engine.
pub trait Extension: Send + Sync {
    /// The answer to `req`, or `None` when its `op` is not one of this extension's. Its
    /// `by`, when present, is the name the peer may act as (checked before).
    fn answer(&self, req: Value) -> Option<Answer>;

    /// Names `peer` may act as over the socket besides its own (serve.yaml's `socket_users`).
    fn socket_names(&self, _peer: &Peer) -> Vec<String> {
        Vec::new()
    }
}

/// Requests larger than this are refused.
const MAX_REQUEST: u64 = 64 * 1024;

/// The runs this process drives, by id.
#[derive(Default)]
pub(crate) struct Registry {
    runs: Mutex<HashMap<String, mpsc::UnboundedSender<Msg>>>,
}

impl Registry {
    pub(crate) fn register(&self, id: &str, tx: mpsc::UnboundedSender<Msg>) {
        self.runs.lock().expect("poisoned").insert(id.to_string(), tx);
    }
    pub(crate) fn unregister(&self, id: &str) {
        self.runs.lock().expect("poisoned").remove(id);
    }
    pub(crate) fn get(&self, id: &str) -> Option<mpsc::UnboundedSender<Msg>> {
        self.runs.lock().expect("poisoned").get(id).cloned()
    }
    pub(crate) fn ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.runs.lock().expect("poisoned").keys().cloned().collect();
        ids.sort();
        ids
    }
    /// Asks a run this process drives to cancel itself; false when it is not driven here.
    pub(crate) fn cancel(&self, id: &str, by: &str) -> bool {
        let (reply, _) = tokio::sync::oneshot::channel();
        self.get(id).is_some_and(|tx| tx.send(Msg::Cancel { by: by.to_string(), reply }).is_ok())
    }
}

/// The socket's path in a state directory.
pub fn socket_path(state_dir: &Path) -> PathBuf {
    state_dir.join("phoenix.sock")
}

/// Removes the socket when the owner stops.
pub struct ServerGuard {
    path: PathBuf,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ServerGuard {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_file(&self.path);
    }
}

pub(crate) fn serve(engine: Engine) -> std::io::Result<ServerGuard> {
    let path = socket_path(&engine.inner.opts.state_dir);
    let _ = std::fs::remove_file(&path);
    // Bound inside the state directory, which `phoenix` keeps 0700: between the bind and the
    // chmod no other user can reach the socket. (Not under a umask: the process's umask is
    // shared with the steps it spawns meanwhile.)
    let listener = UnixListener::bind(&path)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let engine = engine.clone();
            tokio::spawn(async move {
                let _ = answer(engine, stream).await;
            });
        }
    });
    Ok(ServerGuard { path, task })
}

async fn answer(engine: Engine, stream: UnixStream) -> std::io::Result<()> {
    let peer = Peer::of(stream.peer_cred()?.uid());
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    BufReader::new(read.take(MAX_REQUEST)).read_line(&mut line).await?;
    let reply = match serde_json::from_str::<Value>(&line) {
        Ok(req) => handle(&engine, req, &peer).await,
        Err(e) => json!({ "ok": false, "error": format!("bad request: {e}") }),
    };
    write.write_all(format!("{reply}\n").as_bytes()).await?;
    write.shutdown().await
}

fn ok(v: Value) -> Value {
    json!({ "ok": true, "result": v })
}

fn err(e: impl std::fmt::Display) -> Value {
    json!({ "ok": false, "error": e.to_string() })
}

/// The name the peer acts as for a request that changes something.
fn acting(engine: &Engine, req: &Value, peer: &Peer) -> Result<String, String> {
    let allowed = engine.inner.extension.get().map(|x| x.socket_names(peer)).unwrap_or_default();
    peer.acts_as(req["by"].as_str(), &allowed)
}

async fn handle(engine: &Engine, mut req: Value, peer: &Peer) -> Value {
    let store = engine.store();
    let req_run = req["run"].as_str().map(str::to_string);
    let run = req_run.as_deref();
    let op = req["op"].as_str().unwrap_or_default().to_string();
    match op.as_str() {
        "runs" => views::runs(store).map_or_else(err, ok),
        "owner" => ok(json!({ "operator": engine.inner.opts.operator, "pid": std::process::id() })),
        "status" => match views::status(store, run) {
            Ok(Some(v)) => ok(v),
            Ok(None) => err(format!("no run `{}`", run.unwrap_or("(latest)"))),
            Err(e) => err(e),
        },
        "logs" => {
            let (from_line, from_event) = (req["from_line"].as_u64().unwrap_or(0), req["from_event"].as_u64().unwrap_or(0) as usize);
            match views::logs_from(store, run.unwrap_or_default(), req["step"].as_str(), from_line, from_event) {
                Ok(Some(v)) => ok(v),
                Ok(None) => err(format!("no run `{}`", run.unwrap_or_default())),
                Err(e) => err(e),
            }
        }
        // The stored bytes, for `phoenix audit`, which checks them itself.
        "audit_chain" => match crate::state::audit::raw_chain(store, run.unwrap_or_default()) {
            Ok(Some(v)) => ok(v),
            Ok(None) => err(format!("no run `{}`", run.unwrap_or_default())),
            Err(e) => err(e),
        },
        "definitions" => match views::definitions(store, run.unwrap_or_default()) {
            Ok(Some(v)) => ok(v),
            Ok(None) => err(format!("no run `{}`", run.unwrap_or_default())),
            Err(e) => err(e),
        },
        "approve" => {
            let by = match acting(engine, &req, peer) {
                Ok(by) => by,
                Err(e) => return err(e),
            };
            let approval = Approval {
                approved: req["approved"].as_bool().unwrap_or(false),
                by,
                comment: req["comment"].as_str().map(str::to_string),
                at: now_ms(),
                via: Some(peer.via("socket")),
            };
            match engine.approve(run.unwrap_or_default(), req["step"].as_str().unwrap_or_default(), approval).await {
                Ok(()) => ok(json!({ "applied": true })),
                Err(e) => err(e),
            }
        }
        "cancel" => match acting(engine, &req, peer) {
            Ok(by) => match engine.cancel(run.unwrap_or_default(), &by).await {
                Ok(()) => ok(json!({ "cancelling": true })),
                Err(e) => err(e),
            },
            Err(e) => err(e),
        },
        other => {
            // An extension's op acts as the peer too (`start`, `resume`).
            match acting(engine, &req, peer) {
                Ok(by) => req["by"] = json!(by),
                Err(e) => return err(e),
            }
            match engine.inner.extension.get().and_then(|x| x.answer(req)) {
                Some(answer) => answer.await.map_or_else(err, ok),
                None => err(format!("unknown op `{other}`")),
            }
        }
    }
}

/// Sends a request to the process that owns the store. `Err` when no process answers, or
/// with the answer's error.
pub async fn request(state_dir: &Path, req: &Value) -> Result<Value, String> {
    ask_owner(state_dir, req).await.and_then(|answer| answer)
}

/// Sends a request to the process that owns the store: `Ok` with its answer (a result or
/// its error), `Err` when it could not be asked or did not answer (it may have just ended:
/// the store can then be opened directly).
pub async fn ask_owner(state_dir: &Path, req: &Value) -> Result<Result<Value, String>, String> {
    let path = socket_path(state_dir);
    let mut stream = tokio::time::timeout(Duration::from_secs(5), UnixStream::connect(&path))
        .await
        .map_err(|_| "the phoenix process that owns the store did not answer".to_string())?
        .map_err(|e| format!("no phoenix process answers on {} ({e})", path.display()))?;
    stream.write_all(format!("{req}\n").as_bytes()).await.map_err(|e| e.to_string())?;
    let mut buf = String::new();
    tokio::time::timeout(Duration::from_secs(30), stream.read_to_string(&mut buf))
        .await
        .map_err(|_| "no answer within 30s".to_string())?
        .map_err(|e| e.to_string())?;
    let v: Value = serde_json::from_str(&buf).map_err(|e| format!("no answer from the owner ({e})"))?;
    Ok(if v["ok"].as_bool() == Some(true) { Ok(v["result"].clone()) } else { Err(v["error"].as_str().unwrap_or("failed").to_string()) })
}

/// Whether another process owns the store and answers.
pub fn owner_alive(state_dir: &Path) -> bool {
    std::os::unix::net::UnixStream::connect(socket_path(state_dir)).is_ok()
}
