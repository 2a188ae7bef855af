//! The REST API and the page's assets.

// A refusal is the response itself, built once per request: boxing it would buy nothing.
#![allow(clippy::result_large_err)]

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use phoenix_engine::exec::{RunError, views};
use phoenix_engine::runbook::Role;
use phoenix_engine::state::EventKind;
use serde_json::{Value, json};

use super::App;
use super::acts::{approve, cancel, reject, resume, start};
use super::auth::Right;
use super::config::list;

pub(super) type Shared = State<Arc<App>>;

pub(crate) fn router(app: Arc<App>) -> Router {
    let max_body = app.config.max_body;
    let guard = Arc::new(super::guard::Guard::new(&app.config.allowed_hosts));
    let forwarder = Arc::new(super::forward::Forwarder::new());
    Router::new()
        .route("/", get(|| async { asset("text/html; charset=utf-8", include_str!("assets/index.html")) }))
        .route("/assets/app.js", get(|| async { asset("text/javascript; charset=utf-8", include_str!("assets/app.js")) }))
        .route("/assets/drills.js", get(|| async { asset("text/javascript; charset=utf-8", include_str!("assets/drills.js")) }))
        .route("/assets/app.css", get(|| async { asset("text/css; charset=utf-8", include_str!("assets/app.css")) }))
        .route("/healthz", get(|| async { axum::Json(json!({ "ok": true })) }))
        .route("/metrics", get(metrics))
        .route("/api/v1/runbooks", get(runbooks))
        .route("/api/v1/runs", get(runs).post(start))
        .route("/api/v1/drills", get(super::drills::history))
        .route("/api/v1/runs/{id}", get(run))
        .route("/api/v1/runs/{id}/logs", get(logs))
        .route("/api/v1/runs/{id}/report", get(report))
        .route("/api/v1/runs/{id}/resume", post(resume))
        .route("/api/v1/runs/{id}/cancel", post(cancel))
        .route("/api/v1/runs/{id}/steps/{step}/approve", post(approve))
        .route("/api/v1/runs/{id}/steps/{step}/reject", post(reject))
        .route("/api/v1/alerts", post(alerts))
        .route("/api/v1/cluster", get(cluster))
        .fallback(|| async { error(StatusCode::NOT_FOUND, "no such page: the API is under /api/v1/") })
        .layer(DefaultBodyLimit::max(max_body))
        // After the guard (it screened Host, Origin and the body's type), before any handler.
        .layer(axum::middleware::from_fn_with_state((app.clone(), forwarder), super::forward::check))
        .layer(axum::middleware::from_fn_with_state(guard, super::guard::check))
        .with_state(app)
}

fn asset(ctype: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, ctype), (header::CACHE_CONTROL, "no-cache")], body).into_response()
}

pub(super) fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, axum::Json(json!({ "error": message.into() }))).into_response()
}

pub(super) fn ok(status: StatusCode, v: Value) -> Response {
    (status, axum::Json(v)).into_response()
}

/// The caller's name, or the response refusing it.
pub(super) fn caller(app: &App, headers: &HeaderMap, right: Right) -> Result<String, Response> {
    app.auth.check(headers, right).map_err(|(status, message)| {
        let mut r = error(status, message);
        if status == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
        }
        r
    })
}

/// A JSON body (empty: `{}`).
pub(super) fn body(bytes: &Bytes) -> Result<Value, Response> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(json!({}));
    }
    serde_json::from_slice(bytes).map_err(|e| error(StatusCode::BAD_REQUEST, format!("the body is not JSON: {e}")))
}

pub(super) fn store_error(e: impl std::fmt::Display) -> Response {
    error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
}

/// A run error as a response: a held lock is a conflict, naming the holder.
pub(super) fn run_error(e: RunError) -> Response {
    match e {
        RunError::BadInput(m) if m.contains("is held by run") => {
            let holder = m.split("is held by run ").nth(1).and_then(|r| r.split_whitespace().next()).unwrap_or("");
            ok(StatusCode::CONFLICT, json!({ "error": m, "holder": holder }))
        }
        RunError::BadInput(m) if m.contains("in progress") || m.contains("nothing to resume") || m.contains("cancelled") => {
            error(StatusCode::CONFLICT, m)
        }
        RunError::BadInput(m) if m.starts_with("there is no run") => error(StatusCode::NOT_FOUND, m),
        RunError::BadInput(m) => error(StatusCode::BAD_REQUEST, m),
        RunError::Store(e) | RunError::Stopped { source: e, .. } => store_error(e),
    }
}

async fn metrics(State(app): Shared, headers: HeaderMap) -> Response {
    if let Err(r) = caller(&app, &headers, Right::Read) {
        return r;
    }
    let mut text = app.metrics.render(app.engine.store(), &app.health);
    text.push_str(&super::metrics::cluster(&app.cluster.view()));
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text).into_response()
}

/// What this node knows of the cluster: who leads, under which token, whether it acts.
async fn cluster(State(app): Shared, headers: HeaderMap) -> Response {
    if let Err(r) = caller(&app, &headers, Right::Read) {
        return r;
    }
    ok(StatusCode::OK, serde_json::to_value(app.cluster.view()).expect("JSON"))
}

async fn runbooks(State(app): Shared, headers: HeaderMap) -> Response {
    if let Err(r) = caller(&app, &headers, Right::Read) {
        return r;
    }
    let list: Vec<Value> = list(&app.config.runbooks)
        .iter()
        .map(|file| {
            let loaded = phoenix_engine::load_file(file);
            let name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            match loaded.runbook {
                Some(rb) => {
                    let params: serde_json::Map<String, Value> = rb
                        .params
                        .iter()
                        .map(|(k, p)| {
                            let v = json!({ "type": p.ty, "default": p.default, "required": p.default.is_none(), "enum": p.choices, "description": p.description, "operator_only": p.operator_only });
                            (k.clone(), v)
                        })
                        .collect();
                    json!({ "name": rb.name, "file": name, "description": rb.description, "params": params })
                }
                None => json!({ "name": null, "file": name, "error": loaded.render() }),
            }
        })
        .collect();
    ok(StatusCode::OK, json!({ "runbooks": list }))
}

async fn runs(State(app): Shared, headers: HeaderMap) -> Response {
    if let Err(r) = caller(&app, &headers, Right::Read) {
        return r;
    }
    views::runs(app.engine.store()).map_or_else(store_error, |v| ok(StatusCode::OK, v))
}

async fn run(State(app): Shared, headers: HeaderMap, Path(id): Path<String>) -> Response {
    if let Err(r) = caller(&app, &headers, Right::Read) {
        return r;
    }
    let store = app.engine.store();
    let mut v = match views::status(store, Some(&id)) {
        Ok(Some(v)) => v,
        Ok(None) => return error(StatusCode::NOT_FOUND, format!("no run `{id}`")),
        Err(e) => return store_error(e),
    };
    let rb = store
        .source(&id)
        .ok()
        .flatten()
        .and_then(|t| phoenix_engine::load_str(&t, std::path::Path::new(v["file"].as_str().unwrap_or(""))).runbook);
    v["graph"] = rb.as_ref().map_or(Value::Null, graph);
    v["waiting"] = waiting(&app, &id, &v);
    v["in_progress"] = json!(app.engine.in_progress(&id));
    ok(StatusCode::OK, v)
}

/// The DAG to draw, in file order.
fn graph(rb: &phoenix_engine::Runbook) -> Value {
    let mut steps = Vec::new();
    for (plan, name) in [(&rb.main, "main"), (&rb.on_failure, "on_failure")] {
        for s in &plan.steps {
            let role = match s.role {
                Role::Action => "action",
                Role::Probe(_) => "probe",
                Role::Score => "score",
            };
            let needs: Vec<&str> = s.needs.iter().map(|&n| plan.steps[n].id.as_str()).collect();
            steps.push(json!({ "id": s.id, "uses": s.uses, "plan": name, "role": role, "needs": needs, "description": s.description }));
        }
    }
    json!({ "steps": steps })
}

/// Approval steps waiting now, with their question (as asked) and approvers; a gate decided
/// on a halted run no longer asks (its row shows the decision until a resume applies it).
fn waiting(app: &App, id: &str, status: &Value) -> Value {
    let events = app.engine.store().events(id, 0).unwrap_or_default();
    let list: Vec<Value> = status["steps"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|s| s["status"] == "waiting" && !s["decided"].is_string())
        .map(|s| {
            let step = s["id"].as_str().unwrap_or_default();
            let message = events.iter().rev().find_map(|e| match &e.kind {
                EventKind::Approval { step: st, approved: None, comment, .. } if st == step => comment.clone(),
                _ => None,
            });
            // As rendered when the step started waiting (empty: anyone).
            let approvers = match &s["inputs"]["approvers"] {
                Value::Array(list) => json!(list),
                _ => json!([]),
            };
            let mut w = json!({ "step": step, "message": message, "approvers": approvers });
            // A gate with a quorum: the votes so far (who, when, through what) and how many
            // more approvals it needs. (A single approval decides: nothing to show before.)
            if s["votes"]["quorum"].as_u64().is_some_and(|q| q > 1) {
                for k in ["quorum", "needed"] {
                    w[k] = s["votes"][k].clone();
                }
                w["votes"] = s["votes"]["cast"].clone();
            }
            w
        })
        .collect();
    json!(list)
}

#[derive(serde::Deserialize)]
struct LogsQuery {
    step: Option<String>,
    /// Lines and events already seen: only those after them are sent.
    from_line: Option<u64>,
    from_event: Option<usize>,
}

async fn logs(State(app): Shared, headers: HeaderMap, Path(id): Path<String>, Query(q): Query<LogsQuery>) -> Response {
    if let Err(r) = caller(&app, &headers, Right::Read) {
        return r;
    }
    match views::logs_from(app.engine.store(), &id, q.step.as_deref(), q.from_line.unwrap_or(0), q.from_event.unwrap_or(0)) {
        Ok(Some(v)) => ok(StatusCode::OK, v),
        Ok(None) => error(StatusCode::NOT_FOUND, format!("no run `{id}`")),
        Err(e) => store_error(e),
    }
}

/// The report page's policy: inline styles, no script, nothing fetched, never framed.
const REPORT_CSP: &str =
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

#[derive(serde::Deserialize)]
struct ReportQuery {
    format: Option<String>,
}

/// The post-incident report (`phoenix report`), as HTML (default) or Markdown.
async fn report(State(app): Shared, headers: HeaderMap, Path(id): Path<String>, Query(q): Query<ReportQuery>) -> Response {
    if let Err(r) = caller(&app, &headers, Right::Read) {
        return r;
    }
    let access = crate::cmd::state::Access::Direct(app.engine.store().clone());
    let views = match crate::cmd::report::fetch(std::path::Path::new("."), &access, &id, 0) {
        Ok(v) => v,
        Err(e) if e.starts_with("no run") => return error(StatusCode::NOT_FOUND, e),
        Err(e) => return store_error(e),
    };
    let report = match crate::report::Report::build(&views, crate::report::now()) {
        Ok(r) => r,
        Err(e) => return store_error(e),
    };
    match q.format.as_deref().unwrap_or("html") {
        // One self-contained document: its own inline styles, no script, nothing loaded.
        "html" => (
            [(header::CONTENT_TYPE, "text/html; charset=utf-8"), (header::CONTENT_SECURITY_POLICY, REPORT_CSP)],
            crate::report::html::render(&report),
        )
            .into_response(),
        "md" => ([(header::CONTENT_TYPE, "text/markdown; charset=utf-8")], crate::report::markdown::render(&report)).into_response(),
        other => error(StatusCode::BAD_REQUEST, format!("format `{other}` is not html or md")),
    }
}

async fn alerts(State(app): Shared, headers: HeaderMap, bytes: Bytes) -> Response {
    let by = match caller(&app, &headers, Right::Alerts) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let n: super::alerts::Notification = match serde_json::from_slice(&bytes) {
        Ok(n) => n,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("not an Alertmanager webhook payload: {e}")),
    };
    if n.version != "4" {
        return error(StatusCode::BAD_REQUEST, format!("payload version {} is not supported (Alertmanager sends 4)", n.version));
    }
    let _serial = app.alerts.lock().await;
    let handled = super::alerts::handle(&app, n, &by).await;
    ok(StatusCode::OK, serde_json::to_value(handled).expect("JSON"))
}
