//! The cluster's HTTP face on a real `phoenix serve`: `/api/v1/cluster`, the `/metrics` it
//! adds, the leader's name on the page, and a leader answering a write another node
//! forwarded (once, never again). A follower's side is tested against a stand-in leader in
//! `src/serve/forward_tests.rs`; end-to-end tests with several nodes come with the election.

use serde_json::{Value, json};

use crate::chromium::Chromium;
use crate::serve_support::{ONCALL, Server, TOKENS, VIEWER, exchange};
use crate::support::Test;

const NOOP: &str = "version: 1\nname: quick\nsteps:\n  only: { uses: noop }\n";

fn server() -> (Test, Server) {
    let t = Test::new().file("runbooks/quick.yaml", NOOP).file("serve.yaml", format!("runbooks: runbooks\n{TOKENS}"));
    let server = Server::start(t.path());
    (t, server)
}

#[test]
fn a_single_node_leads_and_says_so_on_the_api_the_metrics_and_the_page() {
    let mut page = Chromium::start();
    let (_t, server) = server();

    assert_eq!(server.call("GET", "/api/v1/cluster", None, None).0, 401, "a read right is needed");
    let (status, view) = server.call("GET", "/api/v1/cluster", Some(VIEWER), None);
    assert_eq!(status, 200, "{view}");
    let node = view["node"].as_str().expect("a node name").to_string();
    assert!(!node.is_empty());
    assert_eq!(
        view,
        json!({
            "store": "sled",
            "node": node,
            "leader": true,
            "current": { "node": node, "url": format!("http://{}", server.addr), "token": 0, "lease": 0 },
            "paused": null,
            "takeovers": 0,
        })
    );

    let (status, text) = crate::serve_support::request(&server.addr, "GET", "/metrics", Some(VIEWER), None);
    assert_eq!(status, 200);
    for line in [
        "# TYPE phoenix_leader gauge".to_string(),
        format!("phoenix_leader{{node=\"{node}\"}} 1"),
        "# TYPE phoenix_takeovers_total counter".to_string(),
        "phoenix_takeovers_total 0".to_string(),
    ] {
        assert!(text.lines().any(|l| l == line), "no line `{line}` in:\n{text}");
    }

    page.open(&format!("http://{}/#token={ONCALL}", server.addr));
    let want = format!("leader: {node} (this node)");
    page.wait_until(
        "the leader's name in the header",
        &format!("document.getElementById('cluster-leader').textContent === {}", json!(want)),
    );
    assert_eq!(page.eval("document.getElementById('cluster-banner').hidden"), json!(true), "the leader shows no follower banner");
    assert_eq!(page.exceptions(), &[] as &[String]);
}

#[test]
fn a_leader_answers_a_forwarded_write_itself_and_still_checks_its_token() {
    let (_t, server) = server();
    let host = server.addr.as_str();
    let send = |token: Option<&str>| {
        let auth = token.map(|t| format!("Bearer {t}"));
        let mut headers = vec![("Host", host), ("Content-Type", "application/json"), ("X-Phoenix-Forwarded-By", "node-b")];
        if let Some(a) = &auth {
            headers.push(("Authorization", a));
        }
        let (status, _, body) = exchange(host, "POST", "/api/v1/runs", &headers, r#"{"runbook": "quick"}"#);
        (status, serde_json::from_str::<Value>(&body).unwrap_or(Value::Null))
    };

    let (status, v) = send(None);
    assert_eq!(status, 401, "a forwarded request proves nothing by itself: {v}");
    let (status, v) = send(Some(VIEWER));
    assert_eq!(status, 403, "{v}");
    assert!(server.get("/api/v1/runs")["runs"].as_array().is_some_and(Vec::is_empty), "nothing started");

    let (status, v) = send(Some(ONCALL));
    assert_eq!(status, 202, "the leader handles it, forwarding nothing: {v}");
    let id = v["id"].as_str().expect("a run id");
    let run = server.wait_status(id, "succeeded");
    assert_eq!(run["runbook"], "quick");
}
