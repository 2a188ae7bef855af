//! `phoenix serve`: one long-running process that owns the state store, starts runbooks from
//! Alertmanager's webhook and the REST API, runs the watch loops of health runbooks, serves
//! the live page and `/metrics`. See docs/serve.md.

mod acts;
mod alerts;
mod api;
mod auth;
mod config;
mod drills;
mod forward;
mod guard;
mod handover;
mod leadership;
mod metrics;
mod observer;
mod resume_body;
mod runs;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use phoenix_engine::exec::Engine;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::cmd::watch::{Tick, tick};
use crate::exit::Exit;
use crate::wiring::{engine_for, on_signals, runtime};
use config::Config;

/// What the handlers share.
pub(crate) struct App {
    engine: Engine,
    config: Config,
    auth: auth::Auth,
    metrics: Arc<metrics::RunMetrics>,
    observer: Arc<observer::ServeObserver>,
    /// The watched runbooks' health metrics.
    health: Vec<crate::metrics::Shared>,
    /// Starts and resumes one at a time (a resume checks that nothing drives the run).
    launching: tokio::sync::Mutex<()>,
    /// Webhooks one at a time (one run per alert group, even for simultaneous repeats).
    alerts: tokio::sync::Mutex<()>,
    /// Who leads the cluster (always this node with the embedded store); a follower forwards
    /// writes to the leader (`forward.rs`).
    pub(crate) cluster: Arc<crate::cluster::Cluster>,
    /// The runs' tasks, awaited at shutdown so that each checkpoints.
    tasks: Mutex<Vec<JoinHandle<Result<phoenix_engine::exec::Outcome, phoenix_engine::exec::RunError>>>>,
}

/// Who the server is, as an engine operator (the control socket's `owner` answer).
pub(crate) const OPERATOR: &str = "phoenix-serve";

pub(crate) fn stamp() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

/// One line of the server's activity log: stamped on stdout as before, or with
/// `--log-format json` an info event (a JSON line on stderr, with the run's id).
pub(crate) fn log_line(run: Option<&str>, text: &str) {
    if crate::telemetry::json() {
        tracing::info!(target: "phoenix::serve", run_id = run, "{text}");
    } else {
        println!("{} {text}", stamp());
    }
}

/// Runs until Ctrl-C / SIGTERM (exit 130); 2 for a bad configuration or address.
/// With `check`, stops after the configuration is loaded and checked: exit 0 and a summary.
/// This node in a cluster: `--node`, `--advertise` (serve.yaml's `ha:` otherwise).
pub(crate) struct NodeArgs {
    pub(crate) node: Option<String>,
    pub(crate) advertise: Option<String>,
}

pub(crate) fn run(state_dir: &Option<PathBuf>, listen: &str, config: Option<&Path>, check: bool, node_args: NodeArgs) -> Exit {
    let cfg = match config {
        Some(f) => match Config::load(f) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!("{e}");
                return Exit::BadInput;
            }
        },
        None => Config::default_in(Path::new(".")),
    };
    if let Some(o) = &cfg.otlp {
        crate::telemetry::export_to(o);
    }
    let addr: SocketAddr = match listen.parse() {
        Ok(a) => a,
        Err(_) => {
            tracing::error!("--listen `{listen}` is not an address such as 127.0.0.1:8080");
            return Exit::BadInput;
        }
    };
    if cfg.tokens.as_ref().is_none_or(Vec::is_empty) && !addr.ip().is_loopback() {
        tracing::error!(
            "no tokens are configured, and a token made at start would cross the network in clear to reach {addr}; \
             add `tokens:` to the config, or listen on 127.0.0.1"
        );
        return Exit::BadInput;
    }
    if !crate::cmd::state::store_named() {
        if let Err(e) = crate::cmd::state::choose_store(cfg.store.as_deref()) {
            tracing::error!("{}: store: {e}", config.map_or_else(String::new, |f| f.display().to_string()));
            return Exit::BadInput;
        }
    }
    if check {
        println!(
            "ok  {}: runbooks in {}, {} token(s), {} alert route(s), {} watched runbook(s)",
            config.map_or_else(|| "(no config)".to_string(), |f| f.display().to_string()),
            cfg.runbooks.display(),
            cfg.tokens.as_ref().map_or(0, Vec::len),
            cfg.routes.len(),
            cfg.watch.len()
        );
        if let Some(store) = crate::cmd::state::etcd_url() {
            println!("    store {store}; node {}", node_args.node.as_deref().or(cfg.ha.node.as_deref()).unwrap_or("(the host name)"));
        }
        return Exit::Ok;
    }
    let clustered = crate::cmd::state::etcd_url().is_some();
    let node = node_args.node.or_else(|| cfg.ha.node.clone()).unwrap_or_else(hostname);
    let url = node_args.advertise.or_else(|| cfg.ha.advertise.clone()).unwrap_or_else(|| format!("http://{addr}"));
    let ttl = cfg.ha.lease_ttl.unwrap_or(std::time::Duration::from_secs(10));
    let config = cfg;
    let dir = crate::cmd::state::dir(state_dir);
    // With etcd, a commit waits on the network (and, without quorum, until quorum returns):
    // it blocks its worker thread only, so the API and the page keep answering meanwhile.
    let rt = if clustered {
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("a tokio runtime starts")
    } else {
        runtime()
    };
    let exit = rt.block_on(async move {
        let listener = match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => l,
            Err(e) => {
                tracing::error!("cannot listen on {addr}: {e}");
                return Exit::BadInput;
            }
        };
        let shutdown = CancellationToken::new();
        let run_metrics = Arc::new(metrics::RunMetrics::default());
        let observer = Arc::new(observer::ServeObserver::new(run_metrics.clone()));
        let engine = match engine_for(&dir, Some(OPERATOR.into()), observer.clone(), shutdown.clone()) {
            Ok(e) => e,
            Err(x) => return x,
        };
        let _control = engine.serve_control();
        on_signals(shutdown.clone());
        let (cluster, election) = match crate::cmd::state::etcd() {
            Some(kv) => {
                if let Some(url) = crate::cmd::state::etcd_url() {
                    crate::cmd::state::mark_store(&dir, &url);
                }
                // Until it is elected, this node writes nothing (only the leader writes).
                kv.set_fence(phoenix_engine::state::Fence::Deposed(format!("node {node} follows in the cluster: only the leader writes")));
                let cluster = Arc::new(crate::cluster::Cluster::etcd(node.clone()));
                engine.join(phoenix_engine::exec::Membership { node: node.clone(), fence: cluster.fence() });
                let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
                let info = crate::cluster::election::NodeInfo {
                    node: node.clone(),
                    url: url.clone(),
                    pid: std::process::id(),
                    host: hostname(),
                    started_at: stamp(),
                };
                let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
                let thread = crate::cluster::election::start(cluster.clone(), kv, info, ttl, tx, stop.clone());
                (cluster, Some((rx, thread, stop)))
            }
            None => {
                report_unfinished(&engine);
                (Arc::new(crate::cluster::Cluster::single(node.clone(), url.clone())), None)
            }
        };
        let health = config
            .watch
            .iter()
            .map(|w| crate::metrics::Metrics::new(&w.runbook.name, w.runbook.levels.iter().map(|l| l.name.clone()).collect()))
            .collect();
        let mut config = config;
        let auth = match config.tokens.take().filter(|t| !t.is_empty()) {
            Some(tokens) => auth::Auth { tokens },
            None => {
                let name = crate::cmd::state::operator(None);
                let (auth, token) = auth::Auth::generated(&name);
                eprintln!(
                    "{} no tokens are configured: this run of the server made one, named `{name}`, with every right.\n  open  http://{addr}/#token={token}\n  or send `Authorization: Bearer {token}`\n  it ends with this process; to keep tokens, list them under `tokens:` in serve.yaml (docs/serve.md, \"Authentication\")",
                    stamp()
                );
                auth
            }
        };
        let app = Arc::new(App {
            engine,
            config,
            auth,
            metrics: run_metrics,
            observer,
            health,
            launching: tokio::sync::Mutex::new(()),
            alerts: tokio::sync::Mutex::new(()),
            cluster,
            tasks: Mutex::default(),
        });
        let _ = app.observer.cluster.set(app.cluster.clone());
        let election = election.map(|(rx, thread, stop)| {
            let follower = tokio::spawn(leadership::follow(app.clone(), rx, ttl));
            (follower, thread, stop)
        });
        app.engine.extend_control(Arc::new(handover::Handover(Arc::downgrade(&app))));
        let watches: Vec<_> = (0..app.config.watch.len()).map(|i| tokio::spawn(watch(app.clone(), i, shutdown.clone()))).collect();
        match crate::cmd::state::etcd_url() {
            Some(store) => log_line(
                None,
                &format!(
                    "phoenix serve listening on http://{addr}/ (bearer tokens required); node {node} of the cluster on {store} (lease {} s), advertised as {url}",
                    ttl.as_secs()
                ),
            ),
            None => log_line(None, &format!("phoenix serve listening on http://{addr}/ (bearer tokens required); state in {}", dir.display())),
        }
        let server = axum::serve(listener, api::router(app.clone())).with_graceful_shutdown({
            let s = shutdown.clone();
            async move { s.cancelled().await }
        });
        if let Err(e) = server.await {
            tracing::error!("the HTTP server failed: {e}");
        }
        // Runs stop their steps and checkpoint (the engine's shutdown token is fired).
        let tasks: Vec<_> = std::mem::take(&mut *app.tasks.lock().expect("poisoned"));
        for t in tasks {
            let _ = t.await;
        }
        for w in watches {
            let _ = w.await;
        }
        if let Some((follower, thread, stop)) = election {
            follower.abort();
            stop.store(true, std::sync::atomic::Ordering::SeqCst);
            // Revokes the lease: another node leads at once rather than after the TTL.
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
        log_line(None, "phoenix serve stopped; interrupted runs continue with `phoenix resume RUN` or POST /api/v1/runs/RUN/resume");
        Exit::Interrupted
    });
    rt.shutdown_background();
    exit
}

/// The machine's host name (a node's default name).
fn hostname() -> String {
    nix::unistd::gethostname().ok().and_then(|h| h.into_string().ok()).filter(|h| !h.is_empty()).unwrap_or_else(|| "phoenix".into())
}

/// Runs a crash or a stop left unfinished: said at start, so that someone resumes them.
fn report_unfinished(engine: &Engine) {
    for r in engine
        .store()
        .runs()
        .unwrap_or_default()
        .iter()
        .filter(|r| r.status.holds_lock() && r.status != phoenix_engine::state::RunStatus::Failed)
    {
        log_line(
            Some(&r.id),
            &format!("run {} `{}` is {}: resume it with POST /api/v1/runs/{}/resume", r.id, r.runbook, r.status.as_str(), r.id),
        );
    }
}

/// One watched runbook, evaluated every `every` until shutdown.
async fn watch(app: Arc<App>, i: usize, shutdown: CancellationToken) {
    let w = &app.config.watch[i];
    let cooldown_ms = w.cooldown.map_or(0, |d| d.as_millis() as u64);
    loop {
        // Only the leader evaluates: one node acts on a runbook's health, not each of them.
        if !app.cluster.is_leader() {
            tokio::select! {
                _ = tokio::time::sleep(std::time::Duration::from_millis(500)) => continue,
                _ = shutdown.cancelled() => return,
            }
        }
        let by = Some(format!("watch ({})", w.runbook.name));
        match tick(&app.engine, &w.runbook, &w.params, cooldown_ms, &app.health[i], false, by).await {
            Ok(Tick::Line(line)) => {
                if crate::telemetry::json() {
                    tracing::info!(target: "phoenix::serve", runbook = %w.runbook.name, "{line} (watch)");
                } else {
                    println!("{line} (watch `{}`)", w.runbook.name);
                }
            }
            Ok(Tick::Interrupted(_)) => return,
            Err((_, e)) => tracing::warn!(runbook = %w.runbook.name, "watch `{}`: {e}", w.runbook.name),
        }
        tokio::select! {
            _ = tokio::time::sleep(w.every) => {}
            _ = shutdown.cancelled() => return,
        }
    }
}
