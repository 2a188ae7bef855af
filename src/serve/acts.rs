//! The API's writes on runs: start (a run or a drill), resume, cancel, approve, reject. Each
//! checks the caller's right first (`auth.rs`); reads and the router are in `api.rs`.

// A refusal is the response itself, built once per request: boxing it would buy nothing.
#![allow(clippy::result_large_err)]

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use phoenix_engine::exec::StartOptions;
use phoenix_engine::state::Approval;
use serde_json::{Value, json};

use super::App;
use super::api::{Shared, body, caller, error, ok, run_error};
use super::auth::Right;
use super::config::find_runbook;

/// `{"runbook": NAME, "params": {…}}`; with `"drill": true`, a drill of it (`drills.rs`).
pub(super) async fn start(State(app): Shared, headers: HeaderMap, bytes: Bytes) -> Response {
    let by = match caller(&app, &headers, Right::Run) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let req = match body(&bytes) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let Some(name) = req["runbook"].as_str() else {
        return error(StatusCode::BAD_REQUEST, "give the runbook: {\"runbook\": \"dr-failover\", \"params\": {…}}");
    };
    let rb = match find_runbook(&app.config.runbooks, name) {
        Ok(rb) => rb,
        Err(e) if e.starts_with("no runbook") => return error(StatusCode::NOT_FOUND, e),
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let params = match &req["params"] {
        Value::Null => Vec::new(),
        Value::Object(m) => m.iter().map(|(k, v)| (k.clone(), v.as_str().map_or_else(|| v.to_string(), str::to_string))).collect(),
        _ => return error(StatusCode::BAD_REQUEST, "`params` is an object of NAME: value"),
    };
    // A value that decides what code runs or where credentials go is the operator's to set.
    let kept: Vec<&str> = params.iter().map(|(k, _)| k.as_str()).filter(|k| rb.params.get(*k).is_some_and(|p| p.operator_only)).collect();
    if !kept.is_empty() {
        return error(
            StatusCode::FORBIDDEN,
            format!(
                "`{}` of `{}` may be set only by an operator (`operator_only: true`: it decides what runs or where data goes); leave it out to use the default, or start the run with `phoenix run --param`",
                kept.join("`, `"),
                rb.name
            ),
        );
    }
    match &req["drill"] {
        Value::Bool(true) => return super::drills::answer(super::drills::start(&app, rb, params, by).await),
        Value::Null | Value::Bool(false) => {}
        // Read as a production run, a misspelt `true` would act on production.
        _ => return error(StatusCode::BAD_REQUEST, "`drill` is true (a drill of the runbook) or false; nothing was started"),
    }
    let opts = StartOptions { params, by: Some(by), ..StartOptions::default() };
    match super::runs::launch(&app, Arc::new(rb), opts).await {
        Ok(id) => ok(StatusCode::ACCEPTED, json!({ "id": id })),
        Err(e) => run_error(e),
    }
}

/// The body holds what `phoenix resume` can say (src/serve/resume_body.rs):
/// `{"confirm": true, "reason": "…"}`: go on although the decision is stale;
/// `{"abort": true, "reason": "…"}`: run the on_abort steps and cancel the run;
/// `{"overrides": [{"invariant": "…", "reason": "…"}]}`, `{"retry": [STEP]}`, `{"skip": [STEP]}`.
pub(super) async fn resume(State(app): Shared, headers: HeaderMap, Path(id): Path<String>, bytes: Bytes) -> Response {
    let by = match caller(&app, &headers, Right::Run) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let req = match body(&bytes) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let opts = match super::resume_body::options(&req, by) {
        Ok(o) => o,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    match super::runs::resume(&app, &id, opts).await {
        Ok(None) => ok(StatusCode::ACCEPTED, json!({ "id": id })),
        // Nothing ran: the operator must say --retry or --skip (the command line can).
        Ok(Some(why)) => ok(StatusCode::CONFLICT, json!({ "error": why, "halted": true })),
        Err(e) => run_error(e),
    }
}

pub(super) async fn cancel(State(app): Shared, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let by = match caller(&app, &headers, Right::Run) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let r = if app.engine.in_progress(&id) {
        app.engine.cancel(&id, &by).await
    } else {
        crate::cmd::ops::cancel_stored(app.engine.store(), &id, &by).await.map(|_| ())
    };
    match r {
        Ok(()) => ok(StatusCode::OK, json!({ "cancelling": true })),
        Err(e) if e.starts_with("no run") => error(StatusCode::NOT_FOUND, e),
        Err(e) => error(StatusCode::CONFLICT, e),
    }
}

pub(super) async fn approve(State(app): Shared, headers: HeaderMap, Path((id, step)): Path<(String, String)>, bytes: Bytes) -> Response {
    decide(app, headers, id, step, bytes, true).await
}

pub(super) async fn reject(State(app): Shared, headers: HeaderMap, Path((id, step)): Path<(String, String)>, bytes: Bytes) -> Response {
    decide(app, headers, id, step, bytes, false).await
}

async fn decide(app: Arc<App>, headers: HeaderMap, id: String, step: String, bytes: Bytes, approved: bool) -> Response {
    let by = match caller(&app, &headers, Right::Approve) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let comment = match body(&bytes) {
        Ok(v) => v["comment"].as_str().map(str::to_string),
        Err(r) => return r,
    };
    let via = format!("http, token `{by}`");
    let r = if app.engine.in_progress(&id) {
        let approval = Approval { approved, by: by.clone(), comment, at: now_ms(), via: Some(via) };
        app.engine.approve(&id, &step, approval).await.map(|()| json!({ "applied": true }))
    } else {
        crate::cmd::approve::decide_stored(app.engine.store(), &id, &step, approved, &by, comment, Some(via))
            .map(|m| json!({ "applied": false, "recorded": true, "message": m }))
    };
    match r {
        Ok(v) => ok(StatusCode::OK, v),
        Err(e) if e.starts_with("no run") || e.contains("has no step") => error(StatusCode::NOT_FOUND, e),
        // Not an approver, or who started or resumed the run (`distinct_from_initiator`).
        Err(e) if e.contains("may not decide") => error(StatusCode::FORBIDDEN, e),
        // A second vote by the same caller (naming the first), or a gate already decided.
        Err(e) => error(StatusCode::CONFLICT, e),
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}
