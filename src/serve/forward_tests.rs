//! A follower's writes against a real HTTP listener standing in as the leader (axum on
//! 127.0.0.1, a free port): what it receives, what the client gets back, and every refusal.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request as HttpRequest, StatusCode, header};
use serde_json::{Value, json};

use super::*;
use crate::serve::auth::Token;

const ONCALL: &str = "oncall-token-0123456789";
const VIEWER: &str = "viewer-token-0123456789";
const MAX_BODY: usize = 1024;

fn auth() -> Auth {
    Auth {
        tokens: vec![
            Token::new("oncall".into(), ONCALL, vec![Right::Read, Right::Run, Right::Approve]),
            Token::new("viewer".into(), VIEWER, vec![Right::Read]),
        ],
    }
}

/// What the stand-in leader received.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    uri: String,
    headers: HeaderMap,
    body: Vec<u8>,
}

/// An HTTP server on a free loopback port behind the real `guard.rs` (as a leader is) that
/// records each request it lets through and answers `status` with `body` as
/// `application/problem+json` (a type Phoenix never sends, to see it pass).
struct StandIn {
    url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

async fn stand_in(status: StatusCode, body: &'static str) -> StandIn {
    let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let record = seen.clone();
    let app = axum::Router::new().fallback(move |req: Request| {
        let record = record.clone();
        async move {
            let (parts, b) = req.into_parts();
            let bytes = axum::body::to_bytes(b, usize::MAX).await.unwrap();
            record.lock().unwrap().push(Seen {
                method: parts.method.to_string(),
                uri: parts.uri.to_string(),
                headers: parts.headers,
                body: bytes.to_vec(),
            });
            (status, [(header::CONTENT_TYPE, "application/problem+json")], body)
        }
    });
    let guard = Arc::new(crate::serve::guard::Guard::new(&[]));
    let app = app.layer(axum::middleware::from_fn_with_state(guard, crate::serve::guard::check));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    StandIn { url, seen }
}

fn follower_of(url: &str) -> Side {
    Side { me: "node-b".into(), leads: false, leader: Some(LeaderInfo { node: "node-a".into(), url: url.into(), token: 7, lease: 99 }) }
}

fn post(path: &str, token: Option<&str>, body: &str) -> Request {
    let mut b = HttpRequest::builder()
        .method("POST")
        .uri(path)
        .header(header::HOST, "127.0.0.1:8081")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::ORIGIN, "http://127.0.0.1:8081");
    if let Some(t) = token {
        b = b.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    b.body(Body::from(body.to_string())).unwrap()
}

/// The answer a follower gives: status, headers, body.
async fn answer(side: &Side, fwd: &Forwarder, req: Request) -> (StatusCode, HeaderMap, Vec<u8>) {
    match write(side, &auth(), fwd, MAX_BODY, req).await {
        Route::Here(req) => panic!("handled on the follower: {} {}", req.method(), req.uri()),
        Route::Answered(r) => {
            let (parts, body) = r.into_parts();
            (parts.status, parts.headers, axum::body::to_bytes(body, usize::MAX).await.unwrap().to_vec())
        }
    }
}

fn json_of(body: &[u8]) -> Value {
    serde_json::from_slice(body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(body)))
}

#[tokio::test]
async fn the_leaders_answer_comes_back_unchanged_and_it_sees_the_request_as_sent() {
    let leader = stand_in(StatusCode::CONFLICT, r#"{"error": "lock `dr` is held by run R1", "holder": "R1"}"#).await;
    let side = follower_of(&leader.url);
    let req = post("/api/v1/runs?why=drill&x=1", Some(ONCALL), r#"{"runbook": "dr"}"#);
    let (status, headers, body) = answer(&side, &Forwarder::new(), req).await;

    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body, br#"{"error": "lock `dr` is held by run R1", "holder": "R1"}"#);
    assert_eq!(headers[header::CONTENT_TYPE], "application/problem+json");
    assert_eq!(headers[LEADER], "node-a");

    let seen = leader.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1, "{seen:?}");
    let s = &seen[0];
    assert_eq!(
        (s.method.as_str(), s.uri.as_str(), s.body.as_slice()),
        ("POST", "/api/v1/runs?why=drill&x=1", br#"{"runbook": "dr"}"#.as_slice())
    );
    assert_eq!(s.headers[header::AUTHORIZATION], format!("Bearer {ONCALL}").as_str());
    assert_eq!(s.headers[header::CONTENT_TYPE], "application/json");
    assert_eq!(s.headers[FORWARDED_BY], "node-b");
    assert_eq!(s.headers[header::HOST], leader.url.trim_start_matches("http://"), "the leader's guard checks Host against its own address");
    assert!(s.headers.get(header::ORIGIN).is_none(), "the follower judged the Origin; the leader would judge it against itself");
    // The page on the follower sent `Origin: http://127.0.0.1:8081`: forwarded as it was, the
    // leader's guard would have refused it (403), and the answer would not be the handler's.
}

#[tokio::test]
async fn an_unauthenticated_or_unentitled_write_is_refused_on_the_follower_and_nothing_is_forwarded() {
    let leader = stand_in(StatusCode::ACCEPTED, "{}").await;
    let side = follower_of(&leader.url);
    let fwd = Forwarder::new();

    let (status, headers, body) = answer(&side, &fwd, post("/api/v1/runs", None, "{}")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{}", String::from_utf8_lossy(&body));
    assert_eq!(headers[header::WWW_AUTHENTICATE], "Bearer");
    let (status, _, _) = answer(&side, &fwd, post("/api/v1/runs", Some("not-a-token-at-all-000"), "{}")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _, body) = answer(&side, &fwd, post("/api/v1/runs/R1/steps/go/approve", Some(VIEWER), "{}")).await;
    assert_eq!((status, json_of(&body)), (StatusCode::FORBIDDEN, json!({"error": "the token `viewer` lacks the right `approve`"})));
    let (status, _, body) = answer(&side, &fwd, post("/api/v1/alerts", Some(ONCALL), "{}")).await;
    assert_eq!((status, json_of(&body)), (StatusCode::FORBIDDEN, json!({"error": "the token `oncall` lacks the right `alerts`"})));

    assert!(leader.seen.lock().unwrap().is_empty(), "a follower is not an open proxy");
}

#[tokio::test]
async fn a_request_forwarded_once_is_not_forwarded_again() {
    let leader = stand_in(StatusCode::ACCEPTED, "{}").await;
    let side = follower_of(&leader.url);
    let mut req = post("/api/v1/runs/R1/cancel", Some(ONCALL), "{}");
    req.headers_mut().insert(FORWARDED_BY, HeaderValue::from_static("node-c"));
    let (status, headers, body) = answer(&side, &Forwarder::new(), req).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(headers[header::RETRY_AFTER], "2");
    let error = json_of(&body)["error"].as_str().unwrap().to_string();
    assert!(
        error.starts_with("no leader now (") && error.contains("node-c") && error.contains("node-a") && error.ends_with("): retry"),
        "{error}"
    );
    assert!(leader.seen.lock().unwrap().is_empty());
}

#[tokio::test]
async fn no_leader_known_is_503_with_retry_after() {
    for leader in [None, Some(LeaderInfo { node: "node-b".into(), url: "http://127.0.0.1:1".into(), token: 0, lease: 0 })] {
        let side = Side { me: "node-b".into(), leads: false, leader };
        let (status, headers, body) = answer(&side, &Forwarder::new(), post("/api/v1/runs", Some(ONCALL), "{}")).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{side:?}");
        assert_eq!(headers[header::RETRY_AFTER], "2");
        let error = json_of(&body)["error"].as_str().unwrap().to_string();
        assert_eq!(error, "no leader now (node `node-b` does not lead and knows of no node that does): retry");
    }
}

#[tokio::test]
async fn a_leader_that_cannot_be_reached_is_503_and_a_retry_is_safe() {
    // A port that was free a moment ago: nothing listens there now.
    let url = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let (status, headers, body) = answer(&follower_of(&url), &Forwarder::new(), post("/api/v1/runs", Some(ONCALL), "{}")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(headers[header::RETRY_AFTER], "2");
    let error = json_of(&body)["error"].as_str().unwrap().to_string();
    assert!(error.starts_with("no leader now (the leader `node-a` at http://127.0.0.1:") && error.ends_with("): retry"), "{error}");
}

#[tokio::test]
async fn a_leader_that_takes_the_request_and_never_answers_is_504_and_says_it_may_have_acted() {
    // Accepts connections and reads, never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let held = Arc::new(Mutex::new(Vec::new()));
    let keep = held.clone();
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            keep.lock().unwrap().push(s);
        }
    });
    let fwd = Forwarder::with_timeout(Duration::from_millis(300));
    let (status, headers, body) = answer(&follower_of(&url), &fwd, post("/api/v1/runs", Some(ONCALL), "{}")).await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT);
    assert!(headers.get(header::RETRY_AFTER).is_none(), "a retry is not known to be safe");
    let error = json_of(&body)["error"].as_str().unwrap().to_string();
    assert!(error.contains("it may have acted on it") && error.contains("before you send it again"), "{error}");
}

#[tokio::test]
async fn the_leader_and_reads_are_answered_here() {
    let leader = stand_in(StatusCode::ACCEPTED, "{}").await;
    let mut side = follower_of(&leader.url);
    let get = HttpRequest::builder().method("GET").uri("/api/v1/runs").body(Body::empty()).unwrap();
    assert!(matches!(write(&side, &auth(), &Forwarder::new(), MAX_BODY, get).await, Route::Here(_)), "a follower reads its own store");
    side.leads = true;
    let req = post("/api/v1/runs", None, "{}");
    assert!(matches!(write(&side, &auth(), &Forwarder::new(), MAX_BODY, req).await, Route::Here(_)), "the leader's handlers check tokens");
    assert!(leader.seen.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_body_over_the_bound_is_413_and_not_forwarded() {
    let leader = stand_in(StatusCode::ACCEPTED, "{}").await;
    let big = format!("{{\"runbook\": \"{}\"}}", "x".repeat(MAX_BODY));
    let (status, _, _) = answer(&follower_of(&leader.url), &Forwarder::new(), post("/api/v1/runs", Some(ONCALL), &big)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(leader.seen.lock().unwrap().is_empty());
}

#[test]
fn each_write_route_needs_the_right_its_handler_checks() {
    assert_eq!(right_for("/api/v1/alerts"), Right::Alerts);
    assert_eq!(right_for("/api/v1/runs/R/steps/s/approve"), Right::Approve);
    assert_eq!(right_for("/api/v1/runs/R/steps/s/reject"), Right::Approve);
    for p in ["/api/v1/runs", "/api/v1/runs/R/resume", "/api/v1/runs/R/cancel", "/api/v1/anything-else"] {
        assert_eq!(right_for(p), Right::Run, "{p}");
    }
}
