//! Drills through `phoenix serve`: `phoenix drill` hands the drill to the server that owns
//! the state directory and follows it; `POST /api/v1/runs` with `"drill": true` starts one
//! after the same check (a drill that would touch production is refused, every collision
//! named, nothing written); `GET /api/v1/drills` lists them as `phoenix drills` does.

use serde_json::Value;

use crate::drill::{GOOD, failover, with_teardown};
use crate::serve_support::{ONCALL, Server, TOKENS, VIEWER};
use crate::support::Test;

/// `phoenix ARGS` against the server's state directory, from the test's directory.
fn cli(t: &Test, server: &Server, args: &[&str]) -> (Option<i32>, String, String) {
    server.cli(t.path(), args)
}

fn ids(v: &Value, key: &str) -> Vec<String> {
    v[key].as_array().into_iter().flatten().map(|r| r["id"].as_str().unwrap_or_default().to_string()).collect()
}

#[test]
fn phoenix_drill_is_handed_to_the_server_followed_and_listed_as_a_drill() {
    let broken = "    broken: { uses: exec, needs: [log_undo], with: { script: \"exit 3\" } }";
    let t = Test::new()
        .file("runbooks/td.yaml", with_teardown(""))
        .file("runbooks/tdbroken.yaml", with_teardown(broken).replace("name: td\n", "name: tdbroken\n"))
        .file("serve.yaml", TOKENS);
    let server = Server::start(t.path());

    let (code, _, err) = cli(&t, &server, &["drill", "runbooks/td.yaml", "--as", "alice"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("drill of `td`") && err.contains("started by `phoenix serve`"), "{err}");
    assert!(err.contains("✓ act") && err.contains("✓ check"), "followed to the end: {err}");
    let id = err.split("drill run ").nth(1).and_then(|s| s.split_whitespace().next()).expect("the drill's id").to_string();
    let run = server.wait_status(&id, "succeeded");
    assert_eq!(run["drill"], true, "{run:#}");
    assert_eq!(run["params"]["target"], "drill", "the overlay applied: {run:#}");
    assert_eq!(run["teardown"], "succeeded", "{run:#}");
    assert_eq!(server.get("/api/v1/runs")["runs"][0]["drill"], true);

    // A production run of the same runbook through the server is not a drill.
    let (code, _, err) = cli(&t, &server, &["run", "runbooks/td.yaml"]);
    assert_eq!(code, Some(0), "{err}");

    // The history: the drill alone, with its measure, as `phoenix drills` lists it.
    let api = server.get("/api/v1/drills");
    assert_eq!(ids(&api, "drills"), [id.as_str()], "{api:#}");
    assert_eq!(api["drills"][0]["measure"]["verified_by"], "check", "{api:#}");
    assert!(api["drills"][0]["measure"]["rto_seconds"].as_f64().is_some(), "{api:#}");
    let (code, out, err) = cli(&t, &server, &["drills", "--output", "json"]);
    assert_eq!(code, Some(0), "{err}");
    let listed: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(listed, api, "GET /api/v1/drills is what `phoenix drills` shows");
    assert_eq!(crate::serve_support::request(&server.addr, "GET", "/api/v1/drills", None, None).0, 401, "no token, no history");

    // A teardown that fails is said in the terminal that followed the drill, as locally.
    let (code, _, err) = cli(&t, &server, &["drill", "runbooks/tdbroken.yaml"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("TEARDOWN FAILED") && err.contains("phoenix resume"), "{err}");
    let api = server.get("/api/v1/drills");
    assert_eq!(api["drills"][0]["teardown"], "failed", "{api:#}");
}

#[test]
fn a_drill_that_would_touch_production_is_refused_through_the_server_and_nothing_is_written() {
    let t = Test::new().file("runbooks/failover.yaml", failover("drill:\n  params: { ttl: 30 }")).file("serve.yaml", TOKENS);
    let server = Server::start(t.path());

    let start = r#"{"runbook": "failover", "drill": true}"#;
    let (status, v) = server.call("POST", "/api/v1/runs", Some(ONCALL), Some(start));
    assert_eq!(status, 422, "{v}");
    let why = v["error"].as_str().unwrap_or_default();
    for want in [
        "the drill of `failover` is refused: 2 target(s) it must not touch",
        "step `switch_dns` would change DNS app.example.com",
        "step `copy` would change",
        "nothing was run, nothing was written",
    ] {
        assert!(why.contains(want), "wants {want:?} in: {why}");
    }
    // Through the command line too: the same refusal, exit 2.
    let (code, _, err) = cli(&t, &server, &["drill", "runbooks/failover.yaml", "--no-wait"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("2 target(s) it must not touch") && err.contains("step `copy` would change"), "{err}");
    assert!(ids(&server.get("/api/v1/runs"), "runs").is_empty(), "a refused drill writes no run");
    assert!(!t.path().join("worked").exists());
}

#[test]
fn starting_a_drill_through_the_api_needs_the_right_to_run_and_a_true_drill() {
    let t = Test::new().file("runbooks/failover.yaml", failover(GOOD)).file("serve.yaml", TOKENS);
    let server = Server::start(t.path());
    let start = r#"{"runbook": "failover", "drill": true, "params": {"record": "given.example.com"}}"#;

    let (status, v) = server.call("POST", "/api/v1/runs", Some(VIEWER), Some(start));
    assert_eq!(status, 403, "a reader may not start a drill: {v}");
    let (status, v) = server.call("POST", "/api/v1/runs", None, Some(start));
    assert_eq!(status, 401, "{v}");
    // Not a boolean: refused, not read as a production run.
    let (status, v) = server.call("POST", "/api/v1/runs", Some(ONCALL), Some(r#"{"runbook": "failover", "drill": "yes"}"#));
    assert_eq!(status, 400, "{v}");
    assert!(ids(&server.get("/api/v1/runs"), "runs").is_empty(), "nothing started yet");

    let (status, v) = server.call("POST", "/api/v1/runs", Some(ONCALL), Some(start));
    assert_eq!(status, 202, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    server.wait_step(&id, "gate", "waiting");
    let run = server.run(&id);
    assert_eq!(run["drill"], true, "{run:#}");
    assert_eq!(run["lock"], "drill:dr", "a drill's lock key is its own");
    assert_eq!(run["params"]["record"], "drill-app.example.com", "the overlay wins over the given params");
    assert_eq!(ids(&server.get("/api/v1/drills"), "drills"), [id.as_str()]);
    // A second drill waits for the first one's lock: a conflict naming it.
    let (status, v) = server.call("POST", "/api/v1/runs", Some(ONCALL), Some(start));
    assert_eq!(status, 409, "{v}");
    assert_eq!(v["holder"], id.as_str(), "{v}");
}
