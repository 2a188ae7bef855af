//! Attacks: web. A page the operator visits posts to `phoenix serve` on 127.0.0.1 (a form, a
//! `text/plain` fetch, a DNS-rebound name); a client without the token, or with a wrong one.
//! Each case checks that nothing started (no run, no marker file) and that the legitimate
//! request — the token, JSON, this server's own origin — still does.

use serde_json::json;

use crate::serve_support::{ALERTMANAGER, ONCALL, Server, TOKENS, exchange, generated_token};
use crate::support::Test;

/// A failover that leaves a file behind when it runs.
const FAILOVER: &str = "version: 1\nname: failover\nparams:\n  force: { type: string, default: \"no\" }\nsteps:\n  switch:\n    uses: exec\n    with: { cmd: [touch, switched.marker] }\n";

const START: &str = r#"{"runbook": "failover", "params": {"force": "yes"}}"#;

fn setup(config: &str) -> (Test, Server) {
    let t = Test::new().file("runbooks/failover.yaml", FAILOVER).file("serve.yaml", config);
    let server = Server::start(t.path());
    (t, server)
}

fn runs(server: &Server) -> Vec<serde_json::Value> {
    server.get("/api/v1/runs")["runs"].as_array().cloned().unwrap_or_default()
}

/// Nothing ran: no run recorded, as the server and `phoenix runs` (over the socket) see it,
/// and no marker.
fn nothing_started(t: &Test, server: &Server) {
    assert_eq!(runs(server), Vec::<serde_json::Value>::new(), "no run recorded");
    assert!(crate::process::run_ids(&server.state).is_empty(), "`phoenix runs` sees none");
    assert!(!t.path().join("switched.marker").exists(), "the failover did not run");
}

/// The legitimate start: the token, JSON, this server's own origin. The run exists and ran.
fn legitimate_start_works(t: &Test, server: &Server) {
    let bearer = format!("Bearer {}", server.token);
    let origin = format!("http://{}", server.addr);
    let headers =
        [("Host", server.addr.as_str()), ("Origin", origin.as_str()), ("Content-Type", "application/json"), ("Authorization", &bearer)];
    let (status, _, body) = exchange(&server.addr, "POST", "/api/v1/runs", &headers, START);
    assert_eq!(status, 202, "{body}");
    let id = serde_json::from_str::<serde_json::Value>(&body).unwrap()["id"].as_str().unwrap().to_string();
    server.wait_status(&id, "succeeded");
    assert!(t.path().join("switched.marker").exists());
    assert_eq!(crate::process::run_ids(&server.state), vec![id]);
}

#[test]
fn a_cross_site_text_plain_post_starts_nothing() {
    let (t, server) = setup(TOKENS);
    let host = server.addr.as_str();
    // What a page on another site can send without a preflight: text/plain, and a form.
    for ctype in ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"] {
        let (status, head, body) = exchange(
            &server.addr,
            "POST",
            "/api/v1/runs",
            &[("Host", host), ("Origin", "http://evil.example"), ("Content-Type", ctype)],
            START,
        );
        assert_eq!(status, 403, "{ctype}: {head}\n{body}");
        assert!(body.contains("may not change anything"), "{body}");
    }
    // Even a client holding the token cannot post text/plain.
    let bearer = format!("Bearer {ONCALL}");
    let (status, _, body) = exchange(
        &server.addr,
        "POST",
        "/api/v1/runs",
        &[("Host", host), ("Content-Type", "text/plain"), ("Authorization", &bearer)],
        START,
    );
    assert_eq!(status, 415, "{body}");
    assert!(body.contains("Content-Type: application/json"), "{body}");
    let (status, _, _) = exchange(&server.addr, "POST", "/api/v1/runs", &[("Host", host), ("Authorization", &bearer)], START);
    assert_eq!(status, 415, "no Content-Type at all");
    nothing_started(&t, &server);
    legitimate_start_works(&t, &server);
}

#[test]
fn a_write_without_the_token_or_with_a_wrong_one_is_401() {
    let (t, server) = setup(TOKENS);
    let host = server.addr.as_str();
    let json = ("Content-Type", "application/json");
    for auth in [None, Some("Bearer not-the-token-0123456789"), Some("Basic b25jYWxsOnB3"), Some("Bearer ")] {
        let mut headers = vec![("Host", host), json];
        headers.extend(auth.map(|a| ("Authorization", a)));
        let (status, head, body) = exchange(&server.addr, "POST", "/api/v1/runs", &headers, START);
        assert_eq!(status, 401, "{auth:?}: {body}");
        assert!(head.contains("www-authenticate: bearer"), "{head}");
    }
    nothing_started(&t, &server);
    legitimate_start_works(&t, &server);
}

#[test]
fn a_dns_rebound_host_is_refused_on_reads_and_writes() {
    let (t, server) = setup(TOKENS);
    let bearer = format!("Bearer {ONCALL}");
    let port = server.addr.rsplit(':').next().unwrap();
    for host in [
        format!("evil.example:{port}"),
        "evil.example".to_string(),
        format!("127.0.0.1.nip.io:{port}"),
        format!("localhost.evil.example:{port}"),
    ] {
        let headers = [("Host", host.as_str()), ("Content-Type", "application/json"), ("Authorization", &bearer)];
        for (method, path) in [("GET", "/"), ("GET", "/api/v1/runs"), ("GET", "/metrics"), ("POST", "/api/v1/runs")] {
            let (status, _, body) = exchange(&server.addr, method, path, &headers, if method == "POST" { START } else { "" });
            assert_eq!(status, 421, "{method} {path} as {host}: {body}");
        }
    }
    nothing_started(&t, &server);
    // The names this server does answer to.
    for host in [format!("localhost:{port}"), server.addr.clone()] {
        let (status, _, body) = exchange(&server.addr, "GET", "/api/v1/runs", &[("Host", &host), ("Authorization", &bearer)], "");
        assert_eq!(status, 200, "{host}: {body}");
    }
    legitimate_start_works(&t, &server);
}

#[test]
fn a_configured_host_name_is_answered_and_others_are_not() {
    let (_t, server) = setup(&format!("{TOKENS}allowed_hosts: [phoenix.internal]\n"));
    let bearer = format!("Bearer {ONCALL}");
    let get = |host: &str| exchange(&server.addr, "GET", "/api/v1/runs", &[("Host", host), ("Authorization", &bearer)], "").0;
    assert_eq!(get("phoenix.internal:8080"), 200);
    assert_eq!(get("PHOENIX.internal"), 200);
    assert_eq!(get("phoenix.internal.evil.example"), 421);
    assert_eq!(get("evil.example"), 421);
}

#[test]
fn a_write_from_another_origin_is_403_even_with_the_token() {
    let (t, server) = setup(TOKENS);
    let bearer = format!("Bearer {ONCALL}");
    let port: u16 = server.addr.rsplit(':').next().unwrap().parse().unwrap();
    let other_port = format!("http://127.0.0.1:{}", port.wrapping_add(1));
    for origin in ["http://evil.example", other_port.as_str(), "null", "file://"] {
        let headers =
            [("Host", server.addr.as_str()), ("Origin", origin), ("Content-Type", "application/json"), ("Authorization", &bearer)];
        let (status, _, body) = exchange(&server.addr, "POST", "/api/v1/runs", &headers, START);
        assert_eq!(status, 403, "{origin}: {body}");
    }
    let headers = [
        ("Host", server.addr.as_str()),
        ("Sec-Fetch-Site", "cross-site"),
        ("Content-Type", "application/json"),
        ("Authorization", &bearer),
    ];
    assert_eq!(exchange(&server.addr, "POST", "/api/v1/runs", &headers, START).0, 403);
    nothing_started(&t, &server);
    legitimate_start_works(&t, &server);
}

/// Waits at an approval, then leaves a file.
const GATED: &str = "version: 1\nname: gated\nsteps:\n  gate:\n    uses: approval\n    with: { message: \"switch?\" }\n  switch:\n    needs: [gate]\n    uses: exec\n    with: { cmd: [touch, switched.marker] }\n";

#[test]
fn a_cross_site_approve_reject_or_cancel_changes_nothing() {
    let t = Test::new().file("runbooks/gated.yaml", GATED).file("serve.yaml", TOKENS);
    let server = Server::start(t.path());
    let (status, v) = server.call("POST", "/api/v1/runs", Some(ONCALL), Some(r#"{"runbook": "gated"}"#));
    assert_eq!(status, 202, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    server.wait_step(&id, "gate", "waiting");
    let bearer = format!("Bearer {ONCALL}");
    let host = server.addr.as_str();
    for path in [
        format!("/api/v1/runs/{id}/steps/gate/approve"),
        format!("/api/v1/runs/{id}/steps/gate/reject"),
        format!("/api/v1/runs/{id}/cancel"),
    ] {
        // A form on another site (no token: the browser has none to send) ...
        let form = [("Host", host), ("Origin", "http://evil.example"), ("Content-Type", "application/x-www-form-urlencoded")];
        assert_eq!(exchange(&server.addr, "POST", &path, &form, "comment=ok").0, 403, "{path}");
        // ... and even with the token, anything but JSON.
        let plain = [("Host", host), ("Content-Type", "text/plain"), ("Authorization", bearer.as_str())];
        assert_eq!(exchange(&server.addr, "POST", &path, &plain, "{}").0, 415, "{path}");
    }
    let run = server.run(&id);
    assert_eq!(run["status"], "running", "{run}");
    let gate = run["steps"].as_array().unwrap().iter().find(|s| s["id"] == "gate").unwrap().clone();
    assert_eq!((gate["status"].as_str(), &gate["approval"]), (Some("waiting"), &serde_json::Value::Null));
    assert!(!t.path().join("switched.marker").exists());
    // The page's own request: same origin, JSON, the token.
    let origin = format!("http://{host}");
    let own = [("Host", host), ("Origin", origin.as_str()), ("Content-Type", "application/json"), ("Authorization", bearer.as_str())];
    let (status, _, body) = exchange(&server.addr, "POST", &format!("/api/v1/runs/{id}/steps/gate/approve"), &own, "{}");
    assert_eq!(status, 200, "{body}");
    server.wait_status(&id, "succeeded");
    assert!(t.path().join("switched.marker").exists());
}

#[test]
fn every_response_carries_the_security_headers() {
    let (_t, server) = setup(TOKENS);
    let host = server.addr.as_str();
    let bearer = format!("Bearer {ONCALL}");
    type Case<'a> = (&'a str, &'a str, Vec<(&'a str, &'a str)>, u16);
    let cases: [Case; 8] = [
        ("GET", "/", vec![("Host", host)], 200),
        ("GET", "/assets/app.js", vec![("Host", host)], 200),
        ("GET", "/api/v1/runs", vec![("Host", host), ("Authorization", &bearer)], 200),
        ("GET", "/api/v1/runs", vec![("Host", host)], 401),
        ("GET", "/no/such/page", vec![("Host", host)], 404),
        ("GET", "/api/v1/runs", vec![("Host", "evil.example")], 421),
        ("POST", "/api/v1/runs", vec![("Host", host), ("Content-Type", "text/plain")], 415),
        ("POST", "/api/v1/runs", vec![("Host", host), ("Origin", "http://evil.example"), ("Content-Type", "application/json")], 403),
    ];
    for (method, path, headers, want) in cases {
        let (status, head, _) = exchange(&server.addr, method, path, &headers, "");
        assert_eq!(status, want, "{method} {path}: {head}");
        for needle in [
            "content-security-policy: default-src 'self'; script-src 'self'; style-src 'self'",
            "frame-ancestors 'none'",
            "x-frame-options: deny",
            "x-content-type-options: nosniff",
            "referrer-policy: no-referrer",
        ] {
            assert!(head.contains(needle), "{method} {path} ({status}) lacks `{needle}`:\n{head}");
        }
    }
    // The page needs nothing inline, so the policy allows nothing inline.
    let (_, _, page) = exchange(&server.addr, "GET", "/", &[("Host", host)], "");
    assert!(page.contains("<script src=\"/assets/app.js\"") && !page.contains("<script>") && !page.contains(" style=\""), "{page}");
}

#[test]
fn serve_without_tokens_prints_a_link_whose_token_alone_works() {
    let (t, server) = setup("runbooks: runbooks\n");
    let stderr = server.bg.as_ref().unwrap().stderr_so_far();
    let token = generated_token(&stderr).expect("a #token= link on stderr");
    assert!(stderr.contains(&format!("http://{}/#token={token}", server.addr)), "{stderr}");
    assert!(stderr.contains("tokens:"), "it says how to configure tokens: {stderr}");
    assert_eq!(token.len(), 64, "256 random bits, hex");
    assert!(!server.bg.as_ref().unwrap().stdout_so_far().contains(&token), "the token is said once, on stderr");

    let host = server.addr.as_str();
    for auth in [None, Some(format!("Bearer {ONCALL}")), Some(format!("Bearer {}", &token[..63]))] {
        let mut headers = vec![("Host", host), ("Content-Type", "application/json")];
        headers.extend(auth.as_deref().map(|a| ("Authorization", a)));
        assert_eq!(exchange(&server.addr, "GET", "/api/v1/runs", &headers, "").0, 401, "{auth:?}");
        assert_eq!(exchange(&server.addr, "POST", "/api/v1/runs", &headers, START).0, 401, "{auth:?}");
    }
    nothing_started(&t, &server);
    legitimate_start_works(&t, &server);
    // The run names the token's holder; the token itself is kept nowhere on disk.
    let run = runs(&server)[0]["id"].as_str().unwrap().to_string();
    let events = server.get(&format!("/api/v1/runs/{run}/logs"))["events"].clone();
    assert!(events.as_array().unwrap().iter().any(|e| e["kind"] == "run_started" && e["by"].as_str().is_some_and(|b| !b.is_empty())));
    for entry in crate::process::files_under(&server.state) {
        let bytes = std::fs::read(&entry).unwrap_or_default();
        assert!(!bytes.windows(token.len()).any(|w| w == token.as_bytes()), "the token is in {}", entry.display());
    }
}

#[test]
fn a_second_server_makes_another_token_and_the_first_one_stops_working() {
    let (t, mut server) = setup("runbooks: runbooks\n");
    let first = server.token.clone();
    server.stop();
    let again = Server::start(t.path());
    assert_ne!(again.token, first);
    assert_eq!(again.call("GET", "/api/v1/runs", Some(&first), None).0, 401);
    assert_eq!(again.call("GET", "/api/v1/runs", Some(&again.token), None).0, 200);
}

#[test]
fn alertmanager_posts_json_with_its_token_and_a_plain_text_post_is_refused() {
    let (_t, server) = setup(TOKENS);
    let host = server.addr.as_str();
    let bearer = format!("Bearer {ALERTMANAGER}");
    let payload =
        json!({ "version": "4", "groupKey": "g", "status": "firing", "receiver": "phoenix", "groupLabels": {}, "commonLabels": {},
        "commonAnnotations": {}, "externalURL": "http://am", "alerts": [] })
        .to_string();
    let (status, _, body) = exchange(
        &server.addr,
        "POST",
        "/api/v1/alerts",
        &[("Host", host), ("Content-Type", "text/plain"), ("Authorization", &bearer)],
        &payload,
    );
    assert_eq!(status, 415, "{body}");
    let (status, _, body) = exchange(
        &server.addr,
        "POST",
        "/api/v1/alerts",
        &[("Host", host), ("Content-Type", "application/json"), ("Authorization", &bearer)],
        &payload,
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(serde_json::from_str::<serde_json::Value>(&body).unwrap()["unrouted"], 0, "{body}");
}
