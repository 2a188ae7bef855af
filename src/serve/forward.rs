//! Writes that reach a node which does not lead go to the leader.
//!
//! Every request but GET/HEAD passes here after `guard.rs` screened it. On the leader it
//! goes on to its handler. On a follower it is authenticated first with the right its route
//! needs (a follower is never an open proxy), then sent to the leader's advertised URL with
//! the same method, path and query, body, `Content-Type` and `Authorization`, and
//! `X-Phoenix-Forwarded-By: NODE`; the leader's answer (status, body, `Content-Type`) comes
//! back unchanged, with `X-Phoenix-Leader: NODE`.
//!
//! The request's `Origin` is not sent on: this node's guard has judged it, and the leader
//! would judge it against its own address. The forwarded `Host` is the leader's authority
//! (from its URL), which the leader's guard accepts when it is an IP address or a name in
//! its `allowed_hosts`.
//!
//! Refused, never silently accepted: a request already forwarded once that reaches a node
//! that does not lead (two nodes that each think the other leads), no leader known, a leader
//! that cannot be reached (503, `Retry-After: 2`: nothing reached it, so a retry is safe),
//! and a leader that took the request but did not answer in time (504: it may have acted,
//! so look before retrying).

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::App;
use super::auth::{Auth, Right};
use crate::cluster::LeaderInfo;

/// Set on a request a follower sends to the leader: the follower's node name.
pub(crate) const FORWARDED_BY: HeaderName = HeaderName::from_static("x-phoenix-forwarded-by");
/// Set on the answer a follower passes back: the node that answered.
pub(crate) const LEADER: HeaderName = HeaderName::from_static("x-phoenix-leader");

/// How long a follower waits to reach the leader; past it, nothing was sent.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a follower waits for the leader's whole answer (a start answers once the run's
/// records are durable; an approval once the decision is committed).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

/// What a node knows when a write reaches it: who it is, whether it leads, who does.
#[derive(Debug, Clone)]
pub(crate) struct Side {
    pub(crate) me: String,
    pub(crate) leads: bool,
    pub(crate) leader: Option<LeaderInfo>,
}

/// The HTTP client that carries writes to the leader.
pub(crate) struct Forwarder {
    client: reqwest::Client,
    answer_timeout: Duration,
}

impl Forwarder {
    /// A client that follows no redirect (the token goes to the leader only) and uses no
    /// proxy from the environment.
    pub(crate) fn new() -> Forwarder {
        Self::with_timeout(ANSWER_TIMEOUT)
    }

    /// The same, waiting `answer_timeout` for the leader's answer.
    pub(crate) fn with_timeout(answer_timeout: Duration) -> Forwarder {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(answer_timeout)
            .build()
            .expect("an HTTP client without TLS settings builds");
        Forwarder { client, answer_timeout }
    }
}

/// Where a request is answered.
#[derive(Debug)]
pub(crate) enum Route {
    /// By this node's handler (it leads, or the request is a read).
    Here(Request),
    /// Already: the leader's answer, or why there is none.
    Answered(Response),
}

/// The middleware: a write on a node that does not lead is answered by the leader.
pub(crate) async fn check(State((app, fwd)): State<(Arc<App>, Arc<Forwarder>)>, req: Request, next: Next) -> Response {
    if is_read(req.method()) || app.cluster.is_leader() {
        return next.run(req).await;
    }
    let side = Side { me: app.cluster.node().to_string(), leads: false, leader: app.cluster.leader() };
    match write(&side, &app.auth, &fwd, app.config.max_body, req).await {
        Route::Here(req) => next.run(req).await,
        Route::Answered(answer) => answer,
    }
}

fn is_read(method: &Method) -> bool {
    *method == Method::GET || *method == Method::HEAD
}

/// The right a write route needs, as its handler in `api.rs` checks it.
pub(crate) fn right_for(path: &str) -> Right {
    if path == "/api/v1/alerts" {
        Right::Alerts
    } else if path.ends_with("/approve") || path.ends_with("/reject") {
        Right::Approve
    } else {
        Right::Run
    }
}

/// A request reaching this node: handled here, or answered by the leader (or refused).
pub(crate) async fn write(side: &Side, auth: &Auth, fwd: &Forwarder, max_body: usize, req: Request) -> Route {
    match refuse_or_forward(side, auth, fwd, max_body, req).await {
        Ok(req) => Route::Here(req),
        Err(answer) => Route::Answered(answer),
    }
}

async fn refuse_or_forward(side: &Side, auth: &Auth, fwd: &Forwarder, max_body: usize, req: Request) -> Result<Request, Response> {
    if side.leads || is_read(req.method()) {
        return Ok(req);
    }
    if let Err((status, message)) = auth.check(req.headers(), right_for(req.uri().path())) {
        let mut r = error(status, message);
        if status == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        return Err(r);
    }
    if let Some(by) = req.headers().get(&FORWARDED_BY) {
        let by = String::from_utf8_lossy(by.as_bytes()).into_owned();
        let thinks = side.leader.as_ref().map_or_else(|| "no node".to_string(), |l| format!("`{}`", l.node));
        return Err(unavailable(format!(
            "no leader now (node `{by}` forwarded this request to `{}`, which does not lead either; it thinks {thinks} leads): retry",
            side.me
        )));
    }
    let Some(leader) = side.leader.as_ref().filter(|l| l.node != side.me) else {
        return Err(unavailable(format!("no leader now (node `{}` does not lead and knows of no node that does): retry", side.me)));
    };
    let (parts, body) = req.into_parts();
    let body = match axum::body::to_bytes(body, max_body).await {
        Ok(b) => b,
        Err(_) => {
            return Err(error(StatusCode::PAYLOAD_TOO_LARGE, format!("the body is over {max_body} bytes (`max_body` in serve.yaml)")));
        }
    };
    let path_and_query = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    Err(send(&side.me, leader, fwd, &parts.method, path_and_query, &parts.headers, body).await)
}

/// Sends the request to the leader and returns its answer, or why there is none.
async fn send(me: &str, leader: &LeaderInfo, fwd: &Forwarder, method: &Method, path: &str, headers: &HeaderMap, body: Bytes) -> Response {
    let url = format!("{}{path}", leader.url.trim_end_matches('/'));
    let Ok(method) = reqwest::Method::from_bytes(method.as_str().as_bytes()) else {
        return error(StatusCode::METHOD_NOT_ALLOWED, format!("method {method} is not one this server answers"));
    };
    let mut out = fwd.client.request(method, &url).header(FORWARDED_BY.as_str(), me).body(body);
    for name in [header::CONTENT_TYPE, header::AUTHORIZATION] {
        if let Some(v) = headers.get(&name) {
            out = out.header(name.as_str(), v.as_bytes());
        }
    }
    let answer = match out.send().await {
        Ok(a) => a,
        Err(e) => return failed(leader, fwd, &e),
    };
    let status = StatusCode::from_u16(answer.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let kept: Vec<(HeaderName, HeaderValue)> = [header::CONTENT_TYPE, header::WWW_AUTHENTICATE, header::RETRY_AFTER]
        .into_iter()
        .filter_map(|name| {
            let v = answer.headers().get(name.as_str())?;
            Some((name, HeaderValue::from_bytes(v.as_bytes()).ok()?))
        })
        .collect();
    let body = match answer.bytes().await {
        Ok(b) => b,
        Err(e) => return failed(leader, fwd, &e),
    };
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = status;
    r.headers_mut().extend(kept);
    if let Ok(v) = HeaderValue::from_str(&leader.node) {
        r.headers_mut().insert(LEADER, v);
    }
    r
}

/// A failed exchange with the leader: whether the request may have reached it decides what
/// the client may do.
fn failed(leader: &LeaderInfo, fwd: &Forwarder, e: &reqwest::Error) -> Response {
    let cause = std::error::Error::source(e).map_or_else(|| e.to_string(), ToString::to_string);
    if e.is_connect() {
        return unavailable(format!("no leader now (the leader `{}` at {} does not answer: {cause}): retry", leader.node, leader.url));
    }
    let why = if e.is_timeout() {
        format!("did not answer within {} s", fwd.answer_timeout.as_secs_f64())
    } else {
        format!("broke off: {cause}")
    };
    error(
        StatusCode::GATEWAY_TIMEOUT,
        format!(
            "the leader `{}` at {} took the request and {why}; it may have acted on it: look (GET /api/v1/runs, GET /api/v1/runs/RUN) before you send it again",
            leader.node, leader.url
        ),
    )
}

fn error(status: StatusCode, message: String) -> Response {
    (status, axum::Json(json!({ "error": message }))).into_response()
}

/// 503 with `Retry-After: 2`: the request reached no leader, so sending it again is safe.
fn unavailable(message: String) -> Response {
    let mut r = error(StatusCode::SERVICE_UNAVAILABLE, message);
    r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("2"));
    r
}

#[cfg(test)]
#[path = "forward_tests.rs"]
mod tests;
