//! A run's origin: `phoenix serve` records the Alertmanager alert it started a run for, and
//! the run's RTO counts from the alert's `startsAt` when that is earlier than the run's start
//! (a later or unreadable one: from the run's start, said so). The figures are stored in the
//! run's record when its main plan ends.

use std::time::{Duration, SystemTime};

use serde_json::json;

use crate::serve_support::{ALERTMANAGER, Server, TOKENS};
use crate::support::Test;

/// A failover that changes something, then verifies it: the pattern an RTO is measured on.
const FAILOVER: &str = "version: 1\nname: failover\nsteps:\n  switch: { uses: exec, with: { script: \"echo switched > switched\" }, effect: idempotent }\n  verify: { uses: exec, needs: [switch], with: { script: \"test -s switched\" }, effect: read }\n";

fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

#[test]
fn a_run_started_for_an_alert_records_it_and_counts_its_rto_from_the_alert() {
    let config = format!("{TOKENS}alerts:\n  routes:\n    - matchers: ['alertname=\"PrimaryRegionDown\"']\n      runbook: failover\n");
    let t = Test::new().file("runbooks/failover.yaml", FAILOVER).file("serve.yaml", &config);
    let server = Server::start(t.path());
    let post = |key: &str, starts_at: &str, fingerprint: &str| {
        let labels = json!({"alertname": "PrimaryRegionDown", "severity": "critical"});
        let body = json!({
            "version": "4", "groupKey": key, "truncatedAlerts": 0, "status": "firing", "receiver": "phoenix",
            "groupLabels": {"alertname": "PrimaryRegionDown"}, "commonLabels": labels, "commonAnnotations": {},
            "externalURL": "http://alertmanager:9093",
            "alerts": [{ "status": "firing", "labels": labels, "annotations": {}, "startsAt": starts_at,
                         "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "http://prometheus:9090/graph", "fingerprint": fingerprint }]
        });
        let (status, v) = server.call("POST", "/api/v1/alerts", Some(ALERTMANAGER), Some(&body.to_string()));
        assert_eq!(status, 200, "{v}");
        let id = v["started"][0].as_str().unwrap_or_else(|| panic!("a run started: {v}")).to_string();
        server.wait_status(&id, "succeeded")
    };

    // The alert began ten minutes before the run: the outage began then.
    let earlier = post("g1", &rfc3339(SystemTime::now() - Duration::from_secs(600)), "fp-early");
    assert_eq!(earlier["alert"]["fingerprint"], "fp-early", "{earlier:#}");
    assert_eq!(earlier["alert"]["alertname"], "PrimaryRegionDown");
    assert!(earlier["alert"]["starts_at_ms"].is_u64(), "{earlier:#}");
    let m = &earlier["measure"];
    assert_eq!(
        (m["rto_from"].as_str(), m["verified_by"].as_str(), m["stored"].as_bool()),
        (Some("alert"), Some("verify"), Some(true)),
        "{m:#}"
    );
    assert!(m["rto_seconds"].as_f64().expect("an RTO") >= 600.0, "counted from the alert: {m:#}");
    assert!(earlier["drill"] == false, "a real failover's run has its RTO too");

    // An alert that claims to start in the future, or whose time is unreadable: the run's start.
    for (key, starts_at) in [("g2", rfc3339(SystemTime::now() + Duration::from_secs(3600))), ("g3", "yesterday".to_string())] {
        let run = post(key, &starts_at, key);
        let m = &run["measure"];
        assert_eq!(m["rto_from"], "run", "{m:#}");
        assert!(m["rto_seconds"].as_f64().expect("an RTO") < 600.0, "{m:#}");
        assert!(m["rto_note"].as_str().is_some_and(|n| n.contains("the RTO counts from the run's start")), "{m:#}");
        assert_eq!(run["alert"]["starts_at"], starts_at.as_str());
    }
}
