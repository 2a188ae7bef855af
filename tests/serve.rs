//! `phoenix serve`: the REST API with bearer tokens and rights, Alertmanager's webhook with
//! one run per alert group, approvals by token name, bounded bodies, a checked configuration,
//! SIGTERM and resume, the watch loop and /metrics scraped by a real Prometheus.

use std::time::Duration;

use serde_json::{Value, json};

use crate::health_server::{Answer, HealthServer};
use crate::process::wait_for;
use crate::serve_support::{ALERTMANAGER, ONCALL, Server, TOKENS, VIEWER};
use crate::support::Test;

/// A runbook that stops at an approval between two steps.
const GATED: &str = "version: 1\nname: gated\nlock: gated\nparams:\n  region: { type: string, default: us-east-1 }\nsteps:\n  prepare: { uses: noop }\n  confirm:\n    uses: approval\n    needs: [prepare]\n    with: { message: \"Fail over {{ params.region }}?\" }\n  switch:\n    uses: exec\n    needs: [confirm]\n    with: { cmd: [echo, \"switched {{ params.region }}\"] }\n";

fn setup(config: &str) -> Test {
    Test::new().file("runbooks/gated.yaml", GATED).file("serve.yaml", config)
}

fn events(server: &Server, id: &str) -> Vec<Value> {
    server.get(&format!("/api/v1/runs/{id}/logs"))["events"].as_array().cloned().unwrap_or_default()
}

#[test]
fn the_api_starts_a_run_and_a_named_token_approves_it() {
    let t = setup(TOKENS);
    let server = Server::start(t.path());
    let start = r#"{"runbook": "gated", "params": {"region": "eu-west-1"}}"#;

    assert_eq!(server.call("GET", "/api/v1/runs", None, None).0, 401, "no token");
    assert_eq!(server.call("GET", "/api/v1/runs", Some("not-a-token-at-all"), None).0, 401, "unknown token");
    let (status, v) = server.call("POST", "/api/v1/runs", Some(VIEWER), Some(start));
    assert_eq!((status, v["error"].as_str().unwrap_or("")), (403, "the token `viewer` lacks the right `run`"));
    assert_eq!(server.call("POST", "/api/v1/runs", Some(ONCALL), Some(r#"{"runbook": "../serve.yaml"}"#)).0, 400);
    assert_eq!(server.call("POST", "/api/v1/runs", Some(ONCALL), Some(r#"{"runbook": "nope"}"#)).0, 404);
    let (status, v) = server.call("POST", "/api/v1/runs", Some(ONCALL), Some(r#"{"runbook": "gated", "params": {"zone": "x"}}"#));
    assert_eq!(status, 400, "{v}");

    let (status, v) = server.call("POST", "/api/v1/runs", Some(ONCALL), Some(start));
    assert_eq!(status, 202, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    server.wait_step(&id, "confirm", "waiting");
    let run = server.run(&id);
    assert_eq!(run["waiting"], json!([{ "step": "confirm", "message": "Fail over eu-west-1?", "approvers": [] }]));
    assert_eq!(run["graph"]["steps"][2]["needs"], json!(["confirm"]));
    assert_eq!(run["params"]["region"], "eu-west-1");

    // The lock holds against a second start; the holder is named.
    let (status, v) = server.call("POST", "/api/v1/runs", Some(ONCALL), Some(start));
    assert_eq!((status, v["holder"].as_str()), (409, Some(id.as_str())), "{v}");

    // `phoenix run` hands the run to the server, which refuses it: the lock is held.
    let out = std::process::Command::new(crate::process::phoenix_bin())
        .arg("--state")
        .arg(&server.state)
        .args(["run", "runbooks/gated.yaml"])
        .current_dir(t.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.code() == Some(2) && err.contains(&id) && err.contains("gated"), "{err}");
    // The CLI talks to the server that owns the store.
    let out =
        std::process::Command::new(crate::process::phoenix_bin()).arg("--state").arg(&server.state).args(["status", &id]).output().unwrap();
    assert!(out.status.success() && String::from_utf8_lossy(&out.stdout).contains("waiting"), "{out:?}");

    let approve = format!("/api/v1/runs/{id}/steps/confirm/approve");
    assert_eq!(server.call("POST", &approve, Some(VIEWER), Some("{}")).0, 403);
    let (status, v) = server.call("POST", &approve, Some(ONCALL), Some(r#"{"comment": "primary is gone"}"#));
    assert_eq!((status, &v), (200, &json!({ "applied": true })));
    let run = server.wait_status(&id, "succeeded");
    let confirm = run["steps"].as_array().unwrap().iter().find(|s| s["id"] == "confirm").unwrap();
    assert_eq!((confirm["approval"]["by"].as_str(), confirm["approval"]["comment"].as_str()), (Some("oncall"), Some("primary is gone")));
    let evs = events(&server, &id);
    assert!(evs.iter().any(|e| e["kind"] == "run_started" && e["by"] == "oncall"), "{evs:?}");
    let (status, v) = server.call("POST", &approve, Some(ONCALL), Some("{}"));
    assert_eq!(status, 409, "deciding twice: {v}");

    // The post-incident report, as `phoenix report` makes it.
    let (status, html) = crate::serve_support::request(&server.addr, "GET", &format!("/api/v1/runs/{id}/report"), Some(VIEWER), None);
    assert_eq!(status, 200);
    assert!(html.contains("<svg") && html.contains("primary is gone") && html.contains("oncall"), "{html}");
    let (status, md) =
        crate::serve_support::request(&server.addr, "GET", &format!("/api/v1/runs/{id}/report?format=md"), Some(VIEWER), None);
    assert!(status == 200 && md.starts_with('#'), "{md}");
    assert_eq!(server.call("GET", "/api/v1/runs/nope/report", Some(VIEWER), None).0, 404);
}

/// `phoenix ARGS` against the server's state directory, from the test's directory: its exit
/// code and everything it printed.
fn cli(t: &Test, server: &Server, args: &[&str]) -> (Option<i32>, String) {
    let (code, out, err) = server.cli(t.path(), args);
    (code, format!("{out}{err}"))
}

#[test]
fn the_command_line_hands_runs_to_the_server_and_follows_them() {
    let t = setup(TOKENS).file("elsewhere.yaml", GATED);
    let server = Server::start(t.path());

    // Only the server's runbooks run there, whoever asks.
    let (code, err) = cli(&t, &server, &["run", "elsewhere.yaml"]);
    assert!(code == Some(2) && err.contains("runs only the runbooks in"), "{code:?} {err}");
    // Bad input is still found before anything is asked.
    let (code, err) = cli(&t, &server, &["run", "runbooks/gated.yaml", "--param", "zone=x"]);
    assert!(code == Some(2) && err.contains("zone"), "{code:?} {err}");

    // Started by the server, followed here up to the approval (no terminal: exit 3).
    let (code, err) = cli(&t, &server, &["run", "runbooks/gated.yaml", "--param", "region=eu-west-1", "--as", "alice"]);
    assert_eq!(code, Some(3), "{err}");
    let id = err.split_whitespace().nth(1).unwrap().to_string();
    assert!(err.contains("started by `phoenix serve`") && err.contains("▶ prepare") && err.contains("✓ prepare"), "{err}");
    assert!(err.contains(&format!("phoenix approve {id} confirm")), "{err}");
    server.wait_step(&id, "confirm", "waiting");
    assert_eq!(server.run(&id)["params"]["region"], "eu-west-1");
    assert!(events(&server, &id).iter().any(|e| e["kind"] == "run_started" && e["by"] == "alice"));
    // It waits in the server (nothing halted), so a resume has nothing to do.
    let (code, err) = cli(&t, &server, &["resume", &id]);
    assert!(code == Some(2) && err.contains("in progress"), "{code:?} {err}");

    let (code, err) = cli(&t, &server, &["approve", &id, "confirm", "--as", "alice"]);
    assert_eq!(code, Some(0), "{err}");
    let run = server.wait_status(&id, "succeeded");
    let switch = run["steps"].as_array().unwrap().iter().find(|s| s["id"] == "switch").unwrap();
    assert_eq!(switch["outputs"]["stdout"], "switched eu-west-1\n");

    // Followed to the end: the exit code is the run's, and --output json gives its status.
    std::fs::write(
        t.path().join("runbooks/quick.yaml"),
        "version: 1\nname: quick\nsteps:\n  say: { uses: exec, with: { cmd: [echo, hello] } }\n",
    )
    .unwrap();
    let (code, out) = cli(&t, &server, &["run", "runbooks/quick.yaml", "--output", "json"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("[say] hello") && out.contains("\"status\": \"succeeded\""), "{out}");
    std::fs::write(
        t.path().join("runbooks/broken.yaml"),
        "version: 1\nname: broken\nsteps:\n  fail: { uses: exec, with: { cmd: [\"false\"] } }\n",
    )
    .unwrap();
    let (code, out) = cli(&t, &server, &["run", "runbooks/broken.yaml"]);
    assert!(code == Some(1) && out.contains("✗ fail") && out.contains("failed"), "{code:?} {out}");

    // On a terminal the approval is asked there, as `phoenix run` asks it, and answered as
    // the person at the keyboard.
    let mut term = crate::process::Terminal::start(t.path(), &server.state, "run runbooks/gated.yaml --param region=ap-south-1 --as bob");
    wait_for("the question on the terminal", Duration::from_secs(30), || term.screen().contains("approve `confirm`? [y/N]"));
    assert!(term.screen().contains("Fail over ap-south-1?"), "{}", term.screen());
    term.type_line("y");
    let screen = term.screen_path();
    assert_eq!(term.wait(), Some(0), "{}", std::fs::read_to_string(&screen).unwrap_or_default());
    let runs = server.get("/api/v1/runs");
    let id = runs["runs"][0]["id"].as_str().unwrap().to_string();
    let run = server.wait_status(&id, "succeeded");
    let confirm = run["steps"].as_array().unwrap().iter().find(|s| s["id"] == "confirm").unwrap();
    assert_eq!(confirm["approval"]["by"], "bob", "{confirm:#}");

    // Ctrl-C detaches the command line; the run goes on in the server.
    std::fs::write(
        t.path().join("runbooks/slow.yaml"),
        "version: 1\nname: slow\nsteps:\n  hold: { uses: exec, with: { script: \"until [ -e go ]; do sleep 0.05; done\" } }\n",
    )
    .unwrap();
    let state = server.state.to_str().unwrap().to_string();
    let follower = crate::process::Background::start(t.path(), &["--state", &state, "run", "runbooks/slow.yaml"]);
    wait_for("the follower to see the step start", Duration::from_secs(30), || follower.stderr_so_far().contains("▶ hold"));
    crate::process::signal("INT", &[follower.pid()]);
    let ended = follower.wait(Duration::from_secs(30));
    assert!(ended.code == Some(130) && ended.stderr.contains("detached"), "{ended:?}");
    let id = ended.stderr.split_whitespace().nth(1).unwrap().to_string();
    assert_eq!(server.run(&id)["status"], "running");
    std::fs::write(t.path().join("go"), "").unwrap();
    server.wait_status(&id, "succeeded");
}

#[test]
fn an_alert_group_starts_one_run_however_often_it_is_notified() {
    let config = format!(
        "{TOKENS}alerts:\n  routes:\n    - matchers: ['alertname=\"PrimaryRegionDown\"', 'severity=~\"critical|page\"']\n      runbook: gated\n      params: {{ region: \"{{{{ alert.labels.region }}}}\" }}\n"
    );
    let t = setup(&config);
    let server = Server::start(t.path());
    let notification = |status: &str, key: &str, labels: Value| {
        json!({
            "version": "4", "groupKey": key, "truncatedAlerts": 0, "status": status, "receiver": "phoenix",
            "groupLabels": {"alertname": labels["alertname"]}, "commonLabels": labels, "commonAnnotations": {},
            "externalURL": "http://alertmanager:9093",
            "alerts": [{ "status": status, "labels": labels, "annotations": {"summary": "us-east-1 is down"},
                         "startsAt": "2026-11-29T03:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
                         "generatorURL": "http://prometheus:9090/graph", "fingerprint": "1234" }]
        })
        .to_string()
    };
    let down = json!({"alertname": "PrimaryRegionDown", "severity": "critical", "region": "us-east-1"});
    let post = |body: String| server.call("POST", "/api/v1/alerts", Some(ALERTMANAGER), Some(&body));

    assert_eq!(server.call("POST", "/api/v1/alerts", Some(ONCALL), Some(&notification("firing", "g1", down.clone()))).0, 403);
    let (status, v) = post(notification("firing", "g1", down.clone()));
    assert_eq!(status, 200, "{v}");
    let id = v["started"][0].as_str().expect("a run started").to_string();
    assert_eq!(server.run(&id)["params"]["region"], "us-east-1", "params rendered from the alert");
    server.wait_step(&id, "confirm", "waiting");

    // Alertmanager repeats the group every group_interval: never a second run.
    for _ in 0..3 {
        let (_, v) = post(notification("firing", "g1", down.clone()));
        assert_eq!((v["started"].as_array().map(Vec::len), v["deduplicated"][0].as_str()), (Some(0), Some(id.as_str())), "{v}");
    }
    let (_, v) = post(notification("firing", "g2", json!({"alertname": "DiskFull", "severity": "critical"})));
    assert_eq!(v["unrouted"], 1, "{v}");
    let (_, v) = post(notification("firing", "g3", json!({"alertname": "PrimaryRegionDown", "severity": "warning"})));
    assert_eq!(v["unrouted"], 1, "severity does not match: {v}");

    let (_, v) = post(notification("resolved", "g1", down.clone()));
    assert_eq!(v["resolved"][0].as_str(), Some(id.as_str()), "{v}");
    let notes: Vec<String> =
        events(&server, &id).iter().filter(|e| e["kind"] == "note").filter_map(|e| e["text"].as_str().map(String::from)).collect();
    assert!(notes.iter().any(|n| n.contains("still firing (notification 4)")), "{notes:?}");
    assert!(notes.iter().any(|n| n.contains("g1 resolved")), "{notes:?}");

    // A new incident of the same group while the first run holds the lock: refused, said.
    let (_, v) = post(notification("firing", "g1", down.clone()));
    assert!(v["refused"][0].as_str().unwrap_or("").contains("is held by run"), "{v}");
    let (status, _) = server.call("POST", &format!("/api/v1/runs/{id}/cancel"), Some(ONCALL), Some("{}"));
    assert_eq!(status, 200);
    server.wait_status(&id, "cancelled");
    let (_, v) = post(notification("firing", "g1", down));
    let second = v["started"][0].as_str().expect("a new incident starts a new run");
    assert_ne!(second, id);
}

#[test]
fn a_bad_configuration_is_refused_with_its_place_and_nothing_starts() {
    let t = setup("tokes: []\nalerts:\n  routes:\n    - runbook: missing\n").args(["serve", "--config", "serve.yaml"]).run();
    t.code(2).stderr_contains("serve.yaml:1:1").stderr_contains("did you mean `tokens`");
    let t = setup("alerts:\n  routes:\n    - runbook: missing\n      matchers: ['severity=~\"(\"']\n")
        .args(["serve", "--config", "serve.yaml"])
        .run();
    t.code(2).stderr_contains("alerts.routes[0].runbook: no runbook `missing`").stderr_contains("alerts.routes[0].matchers[0]");
    let t = setup("tokens:\n  - { name: short, env: T_SHORT, rights: [read] }\n")
        .env("T_SHORT", "abc")
        .args(["serve", "--config", "serve.yaml"])
        .run();
    t.code(2).stderr_contains("use at least 16");
    let t = setup("runbooks: runbooks\n").args(["serve", "--config", "serve.yaml", "--listen", "0.0.0.0:1"]).run();
    let t = t.code(2).stderr_contains("no tokens are configured");
    assert!(!t.path().join("state").exists() && !t.path().join(".local").exists(), "no state written");
}

#[test]
fn request_bodies_are_bounded() {
    let t = setup(&format!("{TOKENS}max_body: 1KiB\n"));
    let server = Server::start(t.path());
    let big = format!(r#"{{"runbook": "gated", "params": {{"region": "{}"}}}}"#, "x".repeat(4096));
    assert_eq!(server.call("POST", "/api/v1/runs", Some(ONCALL), Some(&big)).0, 413);
    assert_eq!(server.get("/api/v1/runs")["runs"], json!([]), "nothing started");
    assert_eq!(server.call("POST", "/api/v1/runs", Some(ONCALL), Some("{not json")).0, 400);
}

#[test]
fn sigterm_checkpoints_and_a_restarted_server_resumes_the_run() {
    let t = setup(TOKENS);
    let mut server = Server::start(t.path());
    let (_, v) = server.call("POST", "/api/v1/runs", Some(ONCALL), Some(r#"{"runbook": "gated"}"#));
    let id = v["id"].as_str().unwrap().to_string();
    server.wait_step(&id, "confirm", "waiting");
    let ended = server.stop();
    assert_eq!(ended.code, Some(130), "{}", ended.stderr);
    assert!(ended.stdout.contains(&format!("run {id} halted")), "{}", ended.stdout);

    let server = Server::start(t.path());
    assert_eq!(server.run(&id)["status"], "halted");
    // Decided while nobody drives the run: recorded, applied when it resumes.
    let (status, v) =
        server.call("POST", &format!("/api/v1/runs/{id}/steps/confirm/approve"), Some(ONCALL), Some(r#"{"comment": "checked"}"#));
    assert_eq!((status, &v["recorded"]), (200, &json!(true)), "{v}");
    // The gate no longer asks: its row shows the decision, a second one is refused naming it.
    let run = server.run(&id);
    assert_eq!(run["waiting"], json!([]), "{run:#}");
    let confirm = run["steps"].as_array().unwrap().iter().find(|s| s["id"] == "confirm").unwrap();
    assert!(confirm["decided"].as_str().unwrap().starts_with("approved by oncall: checked (at "), "{confirm:#}");
    for verdict in ["approve", "reject"] {
        let (status, v) = server.call("POST", &format!("/api/v1/runs/{id}/steps/confirm/{verdict}"), Some(ONCALL), Some("{}"));
        let err = v["error"].as_str().unwrap_or("");
        assert_eq!(status, 409, "{v}");
        assert!(
            err.contains("`confirm` was already approved by oncall: checked (at ") && err.contains("via http, token `oncall`"),
            "{err}"
        );
    }
    let (status, v) = server.call("POST", &format!("/api/v1/runs/{id}/steps/confrim/approve"), Some(ONCALL), Some("{}"));
    assert_eq!(status, 404, "{v}");
    assert!(v["error"].as_str().unwrap_or("").contains("did you mean `confirm`?"), "{v}");
    // Resumed from the command line: the server drives it, the terminal follows what is new.
    let (code, out) = cli(&t, &server, &["resume", &id, "--as", "carol"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("resumed by `phoenix serve`") && out.contains("▶ switch") && out.contains("[switch] switched"), "{out}");
    assert!(!out.contains("prepare"), "the first attempt's history is not shown again: {out}");
    let run = server.wait_status(&id, "succeeded");
    assert_eq!(run["attempt"], 2);
    let (status, _) = server.call("POST", &format!("/api/v1/runs/{id}/resume"), Some(ONCALL), None);
    assert_eq!(status, 409, "nothing to resume");
    assert!(events(&server, &id).iter().any(|e| e["kind"] == "run_started" && e["attempt"] == 2 && e["by"] == "carol"));
}

#[test]
fn the_watch_loop_runs_inside_and_prometheus_scrapes_the_metrics() {
    let health = HealthServer::start(Answer::Status("unhealthy"));
    let watched = format!(
        "version: 1\nname: watched\nsignals:\n  svc:\n    uses: http\n    with: {{ url: \"{}\", timeout: 2s }}\n    weight:\n      - {{ when: \"outputs.json.status == 'healthy'\", weight: 0 }}\n      - {{ weight: 5 }}\nlevels:\n  - {{ name: no_action, max: 3 }}\n  - {{ name: act }}\nsteps:\n  heal:\n    needs: [score]\n    uses: noop\n",
        health.url()
    );
    // No tokens: the server makes one, and Prometheus scrapes with it.
    let t = setup("watch:\n  - { runbook: watched, every: 300ms, cooldown: 1h }\n").file("runbooks/watched.yaml", watched);
    let server = Server::start(t.path());
    wait_for("the watch loop to start a run", Duration::from_secs(60), || {
        server.get("/api/v1/runs")["runs"]
            .as_array()
            .is_some_and(|r| r.iter().any(|r| r["runbook"] == "watched" && r["status"] == "succeeded"))
    });
    let mut prometheus = crate::prometheus_server::Prometheus::start_with_token(&server.addr, Some(&server.token));
    prometheus.wait_for("phoenix_health_score", &["\"runbook\":\"watched\"", "\"5\""], Duration::from_secs(90));
    prometheus.wait_for("phoenix_runs", &["\"state\":\"succeeded\"", "\"1\""], Duration::from_secs(90));
    assert_eq!(crate::serve_support::request(&server.addr, "GET", "/metrics", None, None).0, 401, "no token, no metrics");
    let (status, text) = crate::serve_support::request(&server.addr, "GET", "/metrics", Some(&server.token), None);
    assert_eq!(status, 200);
    for needle in [
        "phoenix_step_duration_seconds_bucket{runbook=\"watched\",step=\"heal\",le=\"+Inf\"} 1",
        "phoenix_health_level{runbook=\"watched\",level=\"act\"} 1",
        "phoenix_health_signal_weight{runbook=\"watched\",signal=\"svc\"} 5",
    ] {
        assert!(text.contains(needle), "{needle} not in:\n{text}");
    }
    let runs = server.get("/api/v1/runs")["runs"].as_array().unwrap().iter().filter(|r| r["runbook"] == "watched").count();
    assert_eq!(runs, 1, "the cooldown holds");
}
