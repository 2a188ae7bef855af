//! Drills in the server: started through the API (`POST /api/v1/runs` with `"drill": true`)
//! or handed over by `phoenix drill` (`handover.rs`), after the same check the command line
//! makes (`phoenix_engine::exec::drill::check`): a drill that would touch production is
//! refused before anything is written. `GET /api/v1/drills` lists them as `phoenix drills`
//! does, from the same engine view.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use phoenix_engine::Runbook;
use phoenix_engine::exec::drill;
use phoenix_engine::exec::{RunError, StartOptions, views};
use serde_json::{Value, json};

use super::App;
use super::api::{caller, ok, run_error, store_error};
use super::auth::Right;

/// Why a drill did not start.
pub(crate) enum Refused {
    /// The drill would change a protected or production target: every one is named.
    Collides(String),
    /// The runbook has no `drill:` section, a param is wrong, a lock is held, …
    Run(RunError),
}

/// Checks the drill of `rb` with the params `given` as `phoenix drill` does, then starts it;
/// its id once its state is durable. Refused: nothing was written.
pub(crate) async fn start(app: &App, rb: Runbook, given: Vec<(String, String)>, by: String) -> Result<String, Refused> {
    let check = drill::check(&rb, &given).map_err(Refused::Run)?;
    if !check.collisions.is_empty() {
        return Err(Refused::Collides(drill::refusal(&rb, &check)));
    }
    // The engine overlays `drill.params` itself: it is given what the caller gave.
    let opts = StartOptions { params: given, by: Some(by), drill: true, ..StartOptions::default() };
    super::runs::launch(app, Arc::new(rb), opts).await.map_err(Refused::Run)
}

/// The drills, newest first, as `phoenix drills --output json` lists them.
pub(crate) fn list(runs: &Value) -> Value {
    let drills: Vec<Value> = runs["runs"].as_array().into_iter().flatten().filter(|r| r["drill"] == true).cloned().collect();
    json!({ "drills": drills })
}

/// `GET /api/v1/drills`.
pub(super) async fn history(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    if let Err(r) = caller(&app, &headers, Right::Read) {
        return r;
    }
    views::runs(app.engine.store()).map_or_else(store_error, |v| ok(StatusCode::OK, list(&v)))
}

/// A drill's start as the API's answer: 202 with its id; a refusal naming every collision is
/// 422 (the request was understood; the runbook's drill section must change); other bad
/// input as for a run.
pub(super) fn answer(r: Result<String, Refused>) -> Response {
    match r {
        Ok(id) => ok(StatusCode::ACCEPTED, json!({ "id": id, "drill": true })),
        Err(Refused::Collides(why)) => ok(StatusCode::UNPROCESSABLE_ENTITY, json!({ "error": why, "refused": true })),
        Err(Refused::Run(e)) => run_error(e),
    }
}
