//! A monitoring outage is not a production outage: when a vantage signal (the observer's own
//! check) fails, or every signal fails the same way at once, the evaluation is `unknown`,
//! nothing starts, `for:` does not count it, and the metrics and `phoenix health` say why.
//! "No network" is a closed port on 127.0.0.1.

use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;

use crate::health_server::{Answer, HealthServer};
use crate::postgres::free_port;
use crate::process::{signal, wait_for};
use crate::support::{Output, Test};
use crate::watch::http_get;

fn closed() -> String {
    format!("http://127.0.0.1:{}/health", free_port())
}

/// `svc` weighs 5 unless healthy (level `act`, which starts `heal`); `reach` is the vantage
/// check against `vantage_url`.
fn runbook(svc: &str, vantage_url: &str, hold: u32) -> String {
    format!(
        "version: 1\nname: watched\nsignals:\n  reach:\n    vantage: true\n    uses: http\n    with: {{ url: \"{vantage_url}\", timeout: 2s }}\n    weight:\n      - {{ weight: 0 }}\n  svc:\n    uses: http\n    with: {{ url: \"{svc}\", timeout: 2s }}\n    weight:\n      - {{ when: \"outputs.json.status == 'healthy'\", weight: 0 }}\n      - {{ weight: 5 }}\nlevels:\n  - {{ name: no_action, max: 3 }}\n  - {{ name: act, for: {hold} }}\nsteps:\n  heal:\n    needs: [score]\n    when: \"score.level == 'act'\"\n    uses: exec\n    with: {{ cmd: [touch, HEALED] }}\n"
    )
}

fn health(t: &Output) -> (String, Value) {
    let text = t.then().args(["health", "w.yaml"]).run().success().stdout().to_string();
    let json = t.then().args(["health", "w.yaml", "--output", "json"]).run().success().stdout_json();
    (text, json)
}

#[test]
fn a_failed_vantage_signal_gives_unknown_and_says_why() {
    let svc = HealthServer::start(Answer::Status("unhealthy"));
    let vantage = HealthServer::start(Answer::Status("healthy"));
    let t = Test::new().file("w.yaml", runbook(&svc.url(), &closed(), 1)).args(["validate", "w.yaml"]).run().success();
    let (text, score) = health(&t);
    assert_eq!(score["level"], "unknown", "{score:#}");
    assert!(score["degraded"].as_str().unwrap().contains("the vantage signal `reach` failed"), "{score:#}");
    assert!(text.contains("level: unknown"), "{text}");
    assert!(text.contains("observer degraded: the vantage signal `reach` failed"), "{text}");
    // Each failed signal's reason, not only `failed`.
    let reason = text.lines().find(|l| l.starts_with("reach failed: ")).unwrap_or_else(|| panic!("no reason in\n{text}"));
    assert!(reason.len() > "reach failed: ".len() + 5, "{text}");
    // The vantage check is not part of the score: the same production gives the same total.
    assert_eq!(score["total"], serde_json::json!(5.0), "{score:#}");

    // The legitimate path: with the observer able to see, the same production is `act`.
    let t = t.then().file("w.yaml", runbook(&svc.url(), &vantage.url(), 1)).args(["validate", "w.yaml"]).run().success();
    let (text, score) = health(&t);
    assert_eq!(score["level"], "act", "{score:#}");
    assert!(score["degraded"].is_null(), "{score:#}");
    assert!(!text.contains("observer degraded"), "{text}");
    assert!(!text.contains("reach failed"), "{text}");
}

#[test]
fn every_signal_failing_the_same_way_gives_unknown_but_a_real_answer_does_not() {
    let rb = |a: &str, b: &str| {
        format!(
            "version: 1\nname: two\nsignals:\n  a:\n    uses: http\n    with: {{ url: \"{a}\", timeout: 2s }}\n    weight: [{{ when: \"outputs.json.status == 'healthy'\", weight: 0 }}, {{ weight: 5 }}]\n  b:\n    uses: http\n    with: {{ url: \"{b}\", timeout: 2s }}\n    weight: [{{ when: \"outputs.json.status == 'healthy'\", weight: 0 }}, {{ weight: 5 }}]\nlevels:\n  - {{ name: ok, max: 3 }}\n  - {{ name: failover }}\n"
        )
    };
    let t = Test::new().file("w.yaml", rb(&closed(), &closed())).args(["health", "w.yaml", "--output", "json"]).run().success();
    let score = t.stdout_json();
    assert_eq!(score["level"], "unknown", "{score:#}");
    assert!(score["degraded"].as_str().unwrap().contains("every signal failed the same way"), "{score:#}");
    // One probe answered (badly): production is what is down, the level stands.
    let sick = HealthServer::start(Answer::Status("unhealthy"));
    let t = t.then().file("w.yaml", rb(&closed(), &sick.url())).args(["health", "w.yaml", "--output", "json"]).run().success();
    let score = t.stdout_json();
    assert_eq!(score["level"], "failover", "{score:#}");
    assert!(score["degraded"].is_null(), "{score:#}");
}

#[test]
fn an_unknown_evaluation_does_not_count_toward_for() {
    let svc = HealthServer::start(Answer::Status("unhealthy"));
    let vantage = HealthServer::start(Answer::Status("healthy"));
    let (up, down) = (runbook(&svc.url(), &vantage.url(), 2), runbook(&svc.url(), &closed(), 2));
    let t = Test::new().file("w.yaml", &up).args(["validate", "w.yaml"]).run().success();
    let first = t.then().args(["health", "w.yaml", "--output", "json"]).run().success().stdout_json();
    assert_eq!((first["raw_level"].as_str(), first["level"].as_str(), first["streak"].as_u64()), (Some("act"), Some("no_action"), Some(1)));
    let t = t.then().file("w.yaml", &down).args(["health", "w.yaml", "--output", "json"]).run().success();
    assert_eq!(t.stdout_json()["level"], "unknown");
    // The blind evaluation broke the streak: `act` is seen once again, still held back.
    let t = t.then().file("w.yaml", &up).args(["health", "w.yaml", "--output", "json"]).run().success();
    let third = t.stdout_json();
    assert_eq!((third["level"].as_str(), third["streak"].as_u64()), (Some("no_action"), Some(1)), "{third:#}");
    // And the next one confirms it.
    let fourth = t.then().args(["health", "w.yaml", "--output", "json"]).run().success().stdout_json();
    assert_eq!(fourth["level"], "act", "{fourth:#}");
}

#[test]
fn watch_starts_nothing_while_the_observer_is_cut_off_and_metrics_say_so() {
    let svc = HealthServer::start(Answer::Status("unhealthy"));
    let vantage = HealthServer::start(Answer::Status("healthy"));
    let t = Test::new().file("w.yaml", runbook(&svc.url(), &closed(), 1)).args(["validate", "w.yaml"]).run().success();
    let addr = format!("127.0.0.1:{}", free_port());
    let out = t.path().join("watch.out");
    let mut cmd = t.then().args(["watch", "w.yaml", "--every", "200ms", "--metrics", &addr]).command();
    cmd.stdin(Stdio::null()).stdout(std::fs::File::create(&out).unwrap()).stderr(Stdio::null());
    let mut child = cmd.spawn().expect("phoenix watch starts");
    let lines = || std::fs::read_to_string(&out).unwrap_or_default();
    wait_for("three degraded evaluations", Duration::from_secs(60), || lines().matches("observer degraded").count() >= 3);
    let page = http_get(&format!("http://{addr}/metrics"));
    signal("INT", &[child.id()]);
    assert_eq!(child.wait().unwrap().code(), Some(130));
    let log = lines();
    assert!(log.contains("level unknown: observer degraded, nothing started: the vantage signal `reach` failed"), "{log}");
    assert!(!log.contains("started run"), "{log}");
    assert!(!t.path().join("HEALED").exists());
    assert!(page.contains("phoenix_health_observer_degraded{runbook=\"watched\"} 1"), "{page}");
    assert!(!page.contains("phoenix_health_level{runbook=\"watched\",level=\"act\"} 1"), "{page}");
    let runs = t.then().args(["runs", "--output", "json"]).run().success().stdout_json();
    assert_eq!(runs["runs"].as_array().map_or(0, Vec::len), 0, "{runs:#}");

    // The observer sees again: the same production starts the run, and the gauge drops.
    let t = t.then().file("w.yaml", runbook(&svc.url(), &vantage.url(), 1)).args(["validate", "w.yaml"]).run().success();
    let mut cmd = t.then().args(["watch", "w.yaml", "--every", "200ms", "--metrics", &addr, "--cooldown", "1h"]).command();
    let out2 = t.path().join("watch2.out");
    cmd.stdin(Stdio::null()).stdout(std::fs::File::create(&out2).unwrap()).stderr(Stdio::null());
    let mut child = cmd.spawn().expect("phoenix watch starts");
    wait_for("a started run", Duration::from_secs(60), || std::fs::read_to_string(&out2).unwrap_or_default().contains("started run"));
    let page = http_get(&format!("http://{addr}/metrics"));
    signal("INT", &[child.id()]);
    let _ = child.wait();
    assert!(page.contains("phoenix_health_observer_degraded{runbook=\"watched\"} 0"), "{page}");
    assert!(page.contains("phoenix_health_level{runbook=\"watched\",level=\"act\"} 1"), "{page}");
    assert!(t.path().join("HEALED").exists());
}

#[test]
fn validate_warns_about_a_level_that_starts_a_runbook_at_once_and_strict_fails_on_it() {
    let rb = |hold: &str| {
        format!(
            "version: 1\nname: w\nsignals:\n  a:\n    uses: noop\n    weight: [{{ weight: 5 }}]\nlevels:\n  - {{ name: ok, max: 3 }}\n  - {{ name: failover{hold} }}\nsteps:\n  go:\n    needs: [score]\n    when: \"score.level == 'failover'\"\n    uses: runbook\n    with: {{ file: child.yaml }}\n"
        )
    };
    let child = "version: 1\nname: child\nsteps:\n  x:\n    uses: noop\n";
    let t = Test::new().file("child.yaml", child).file("w.yaml", rb("")).args(["validate", "w.yaml"]).run().success();
    assert!(t.stderr().contains("warning[PHX0604]: the level `failover` starts the runbook of step `go`"), "{}", t.stderr());
    assert!(t.stderr().contains("w.yaml:9:"), "{}", t.stderr());
    assert!(t.stderr().contains("help: add `for: 2`"), "{}", t.stderr());
    let strict = t.then().args(["validate", "--strict", "w.yaml"]).run().code(2);
    assert!(strict.stderr().contains("warning[PHX0604]"), "{}", strict.stderr());
    let json = t.then().args(["validate", "w.yaml", "--output", "json"]).run().success().stdout_json();
    assert_eq!(json["files"][0]["warnings"][0]["code"], "PHX0604", "{json:#}");
    assert_eq!(json["files"][0]["warnings"][0]["severity"], "warning", "{json:#}");
    // With a `for:`, no warning, and --strict passes.
    let t = t.then().file("w.yaml", rb(", for: 2")).args(["validate", "--strict", "w.yaml"]).run().success();
    assert!(!t.stderr().contains("PHX0604"), "{}", t.stderr());
    // The shipped health runbook passes --strict.
    t.then().copy("runbooks/health.yaml", "health.yaml").args(["validate", "--strict", "health.yaml"]).run().success();
}

#[test]
fn serves_watch_loop_starts_nothing_while_the_observer_is_cut_off() {
    let svc = HealthServer::start(Answer::Status("unhealthy"));
    let t = Test::new()
        .file("runbooks/watched.yaml", runbook(&svc.url(), &closed(), 1))
        .file("serve.yaml", "watch:\n  - { runbook: watched, every: 200ms, cooldown: 1h }\n");
    let mut server = crate::serve_support::Server::start(t.path());
    let metrics = || crate::serve_support::request(&server.addr, "GET", "/metrics", Some(&server.token), None).1;
    wait_for("three evaluations", Duration::from_secs(60), || {
        metrics().lines().any(|l| {
            l.starts_with("phoenix_health_evaluations_total{runbook=\"watched\"} ")
                && !l.ends_with(" 0")
                && !l.ends_with(" 1")
                && !l.ends_with(" 2")
        })
    });
    let page = metrics();
    assert!(page.contains("phoenix_health_observer_degraded{runbook=\"watched\"} 1"), "{page}");
    assert!(!page.contains("level=\"act\"} 1"), "{page}");
    let runs = server.get("/api/v1/runs")["runs"].as_array().cloned().unwrap_or_default();
    assert!(runs.is_empty(), "{runs:#?}");
    assert!(!t.path().join("HEALED").exists());
    let ended = server.stop();
    drop(ended);
}

#[test]
fn the_page_says_the_observer_is_degraded_and_why() {
    let mut page = crate::chromium::Chromium::start();
    let svc = HealthServer::start(Answer::Status("unhealthy"));
    let t = Test::new()
        .file("runbooks/watched.yaml", runbook(&svc.url(), &closed(), 1))
        .file("serve.yaml", format!("runbooks: runbooks\n{}", crate::serve_support::TOKENS));
    let server = crate::serve_support::Server::start(t.path());
    let oncall = crate::serve_support::ONCALL;
    let (status, v) = server.call("POST", "/api/v1/runs", Some(oncall), Some(r#"{"runbook": "watched"}"#));
    assert_eq!(status, 202, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    let run = server.wait_status(&id, "succeeded");
    let heal = run["steps"].as_array().unwrap().iter().find(|s| s["id"] == "heal").unwrap();
    assert_eq!(heal["status"], "skipped", "{run:#}");
    page.open(&format!("http://{}/#token={oncall}&run={id}", server.addr));
    page.wait_until("the health summary", "document.getElementById('health-summary')?.textContent.includes('observer is degraded')");
    let summary = page.eval("document.getElementById('health-summary').textContent");
    let summary = summary.as_str().unwrap();
    assert!(summary.contains("Level unknown"), "{summary}");
    assert!(summary.contains("the vantage signal `reach` failed"), "{summary}");
    assert!(summary.contains("nothing acts on this evaluation"), "{summary}");
    assert!(!t.path().join("HEALED").exists());
}
