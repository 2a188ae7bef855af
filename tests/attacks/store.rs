//! Attacks: store. A lock is taken by one compare-and-set in the store, so starts that race
//! each other (API requests, Alertmanager notifications, for two runbooks sharing a lock
//! key) start exactly one run; every other is refused, naming the holder, and writes nothing.

use std::sync::{Arc, Barrier};

use serde_json::{Value, json};

use crate::serve_support::{ALERTMANAGER, ONCALL, Server, TOKENS};
use crate::support::Test;

/// A runbook holding the lock `dr` at its approval; `work` leaves a line in `worked` if it
/// ever runs.
fn gated(name: &str) -> String {
    format!(
        "version: 1\nname: {name}\nlock: dr\nsteps:\n  gate:\n    uses: approval\n    with: {{ message: go? }}\n  work:\n    needs: [gate]\n    uses: exec\n    with: {{ script: \"echo {name} >> worked\" }}\n"
    )
}

fn alert(key: &str) -> String {
    let labels = json!({"alertname": "PrimaryRegionDown", "severity": "critical"});
    json!({
        "version": "4", "groupKey": key, "truncatedAlerts": 0, "status": "firing", "receiver": "phoenix",
        "groupLabels": {"alertname": "PrimaryRegionDown"}, "commonLabels": labels, "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "alerts": [{ "status": "firing", "labels": labels, "annotations": {},
                     "startsAt": "2026-11-29T03:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
                     "generatorURL": "http://prometheus:9090/graph", "fingerprint": key }]
    })
    .to_string()
}

#[test]
fn starts_and_alerts_racing_for_one_lock_start_exactly_one_run() {
    let config = format!("{TOKENS}alerts:\n  routes:\n    - matchers: ['alertname=\"PrimaryRegionDown\"']\n      runbook: failover\n");
    let t = Test::new()
        .file("runbooks/failover.yaml", gated("failover"))
        .file("runbooks/failback.yaml", gated("failback"))
        .file("serve.yaml", config);
    let server = Arc::new(Server::start(t.path()));
    // 16 at the same instant: API starts of both runbooks, and notifications of 8 alert groups.
    const N: usize = 16;
    let barrier = Arc::new(Barrier::new(N));
    let answers: Vec<(String, u16, Value)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..N)
            .map(|i| {
                let (server, barrier) = (server.clone(), barrier.clone());
                s.spawn(move || {
                    barrier.wait();
                    match i % 4 {
                        0 => (
                            "start failover".to_string(),
                            server.call("POST", "/api/v1/runs", Some(ONCALL), Some(r#"{"runbook": "failover"}"#)),
                        ),
                        1 => (
                            "start failback".to_string(),
                            server.call("POST", "/api/v1/runs", Some(ONCALL), Some(r#"{"runbook": "failback"}"#)),
                        ),
                        _ => (
                            format!("alert g{i}"),
                            server.call("POST", "/api/v1/alerts", Some(ALERTMANAGER), Some(&alert(&format!("g{i}")))),
                        ),
                    }
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).map(|(what, (status, v))| (what, status, v)).collect()
    });

    let runs = server.get("/api/v1/runs")["runs"].as_array().cloned().unwrap_or_default();
    assert_eq!(runs.len(), 1, "exactly one run, whoever won: {runs:#?}\n{answers:#?}");
    let holder = runs[0]["id"].as_str().unwrap().to_string();
    server.wait_step(&holder, "gate", "waiting");
    let mut started = 0;
    for (what, status, v) in &answers {
        if what.starts_with("start") {
            match status {
                202 => started += 1,
                409 => assert_eq!(v["holder"].as_str(), Some(holder.as_str()), "{what}: {v}"),
                _ => panic!("{what}: {status} {v}"),
            }
        } else {
            assert_eq!(*status, 200, "{what}: {v}");
            started += v["started"].as_array().map_or(0, Vec::len);
            let refused = v["refused"].as_array().cloned().unwrap_or_default();
            if v["started"].as_array().is_none_or(Vec::is_empty) {
                let why = refused.first().and_then(Value::as_str).unwrap_or("");
                assert!(why.contains(&format!("is held by run {holder}")), "{what}: {v}");
            }
        }
    }
    assert_eq!(started, 1, "one start reported, the others refused: {answers:#?}");
    assert_eq!(server.call("GET", "/api/v1/runs", Some(ONCALL), None).1["runs"].as_array().map(Vec::len), Some(1));
    assert!(!t.path().join("worked").exists(), "nothing ran past the gate");

    // The legitimate path: once the holder is cancelled, the next start takes the lock.
    let (status, _) = server.call("POST", &format!("/api/v1/runs/{holder}/cancel"), Some(ONCALL), Some("{}"));
    assert_eq!(status, 200);
    server.wait_status(&holder, "cancelled");
    let (status, v) = server.call("POST", "/api/v1/runs", Some(ONCALL), Some(r#"{"runbook": "failback"}"#));
    assert_eq!(status, 202, "{v}");
    let next = v["id"].as_str().unwrap().to_string();
    assert_ne!(next, holder);
    server.wait_step(&next, "gate", "waiting");
}

/// A watch loop acting on a runbook whose lock `dr` is also taken by an alert route's
/// runbook: the watch loop starts runs on its own, outside the server's queue of starts, so
/// only the store's compare-and-set keeps them apart.
const WATCHED: &str = "version: 1\nname: watched\nlock: dr\nsignals:\n  down:\n    uses: exec\n    with: { script: \"true\" }\n    weight:\n      - { weight: 5 }\nlevels:\n  - { name: fine, max: 3 }\n  - { name: act }\nsteps:\n  gate:\n    needs: [score]\n    uses: approval\n    with: { message: go? }\n";

#[test]
fn a_watch_loop_and_alerts_racing_for_one_lock_hold_it_once() {
    let config = format!(
        "{TOKENS}alerts:\n  routes:\n    - matchers: ['alertname=\"PrimaryRegionDown\"']\n      runbook: failover\nwatch:\n  - {{ runbook: watched, every: 50ms, cooldown: 1h }}\n"
    );
    let t = Test::new().file("runbooks/failover.yaml", gated("failover")).file("runbooks/watched.yaml", WATCHED).file("serve.yaml", config);
    let server = Arc::new(Server::start(t.path()));
    const N: usize = 12;
    let barrier = Arc::new(Barrier::new(N));
    let answers: Vec<(u16, Value)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..N)
            .map(|i| {
                let (server, barrier) = (server.clone(), barrier.clone());
                s.spawn(move || {
                    barrier.wait();
                    server.call("POST", "/api/v1/alerts", Some(ALERTMANAGER), Some(&alert(&format!("w{i}"))))
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    // Whoever won, the watch loop has tried by now: its run, or its refusal, is recorded.
    crate::process::wait_for("the watch loop to act", std::time::Duration::from_secs(60), || {
        server.get("/api/v1/runs")["runs"].as_array().is_some_and(|r| !r.is_empty())
    });
    let runs = server.get("/api/v1/runs")["runs"].as_array().cloned().unwrap_or_default();
    let holding: Vec<&Value> = runs.iter().filter(|r| r["status"] == "running" || r["status"] == "halted").collect();
    assert_eq!(holding.len(), 1, "one run holds `dr`: {runs:#?}\n{answers:#?}");
    assert_eq!(runs.len(), 1, "and no other was ever recorded: {runs:#?}");
    let holder = holding[0]["id"].as_str().unwrap().to_string();
    server.wait_step(&holder, "gate", "waiting");
    let mut started = 0;
    for (status, v) in &answers {
        assert_eq!(*status, 200, "{v}");
        started += v["started"].as_array().map_or(0, Vec::len);
        if v["started"].as_array().is_none_or(Vec::is_empty) {
            assert!(v["refused"][0].as_str().unwrap_or("").contains(&format!("is held by run {holder}")), "{v}");
        }
    }
    let by_watch = runs[0]["runbook"] == "watched";
    assert_eq!(started, usize::from(!by_watch), "the holder was started once, by an alert or by the watch loop: {answers:#?}");
    assert!(!t.path().join("worked").exists());
}
