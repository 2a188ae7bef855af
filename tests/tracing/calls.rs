//! The calls a step makes, seen from the tracing system: an AWS call (reading a secret from
//! Secrets Manager) and an HTTP request are spans under the step's attempt, in the run's trace,
//! and the server the request reached got a `traceparent` naming that trace and that span.

use super::*;
use crate::aws_data::aws_test;
use crate::moto::Moto;

#[test]
fn the_calls_a_step_makes_are_spans_of_its_trace_and_carry_traceparent() {
    let moto = Moto::start();
    moto.secret("us-east-1", "prod/token", "t0ken-from-the-store");
    let stub = Stub::start(|_| Reply::json(r#"{"ok": true}"#));
    let yaml = format!(
        r#"version: 1
name: calls
secrets:
  token: {{ aws_secretsmanager: prod/token, region: us-east-1, endpoint_url: "{moto}" }}
steps:
  call:
    uses: http
    with: {{ url: "{url}", headers: {{ Authorization: "Bearer {{{{ secrets.token }}}}" }} }}
"#,
        moto = moto.url(),
        url = stub.url("/health")
    );
    let setup = aws_test();
    let rx = Receiver::start(setup.path());
    let out = setup.file("r.yaml", yaml).env("PHOENIX_OTLP_ENDPOINT", rx.endpoint()).args(["run", "r.yaml"]).run().success();
    let spans = rx.wait_for("the run span", |s| s["name"] == "run calls");
    let ids = by_id(&spans);
    let run = one(&spans, "run calls");
    let trace = run["trace_id"].as_str().unwrap();
    let attempt =
        spans.iter().find(|s| s["name"] == "attempt 1" && ids[s["parent_span_id"].as_str().unwrap()]["name"] == "step call").unwrap();

    let read = one(&spans, "SecretsManager/GetSecretValue");
    assert_eq!(read["trace_id"], trace, "the secret's read is in the run's trace: {spans:#?}");
    assert_eq!(read["parent_span_id"], attempt["span_id"], "under the attempt that needed it");

    let get = one(&spans, "HTTP GET");
    assert_eq!((get["trace_id"].as_str(), &get["parent_span_id"]), (Some(trace), &attempt["span_id"]));
    let sent = stub.requests_to("/health");
    let traceparent = sent[0].headers.get("traceparent").unwrap_or_else(|| panic!("no traceparent: {:?}", sent[0].headers));
    assert_eq!(traceparent, &format!("00-{trace}-{}-01", get["span_id"].as_str().unwrap()));

    let all = serde_json::to_string(&spans).unwrap();
    assert!(!all.contains("t0ken-from-the-store"), "a span holds the secret");
    assert!(!out.stderr().contains("t0ken-from-the-store"));
}

/// A run `phoenix serve` starts for an Alertmanager alert carries the alert's fingerprint
/// and name on its run span: the trace is found from the alert.
#[test]
fn an_alert_started_run_span_carries_the_alert() {
    use crate::serve_support::{ALERTMANAGER, Server, TOKENS};
    let t = Test::new().file("runbooks/simple.yaml", "version: 1\nname: simple\nsteps:\n  one:\n    uses: noop\n");
    let rx = Receiver::start(t.path());
    let routes = "alerts:\n  routes:\n    - matchers: ['alertname=\"PrimaryRegionDown\"']\n      runbook: simple\n";
    let t = t.file("serve.yaml", format!("{TOKENS}{routes}otlp:\n  endpoint: {}\n", rx.endpoint()));
    let mut server = Server::start(t.path());
    let labels = serde_json::json!({"alertname": "PrimaryRegionDown"});
    let body = serde_json::json!({
        "version": "4", "groupKey": "g1", "truncatedAlerts": 0, "status": "firing", "receiver": "phoenix",
        "groupLabels": labels, "commonLabels": labels, "commonAnnotations": {}, "externalURL": "http://alertmanager:9093",
        "alerts": [{ "status": "firing", "labels": labels, "annotations": {}, "startsAt": "2026-12-06T03:00:00Z",
                     "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "http://prometheus:9090/graph", "fingerprint": "4f2a9c0d1e" }]
    });
    let (status, v) = server.call("POST", "/api/v1/alerts", Some(ALERTMANAGER), Some(&body.to_string()));
    assert_eq!(status, 200, "{v}");
    let id = v["started"][0].as_str().unwrap().to_string();
    server.wait_status(&id, "succeeded");
    server.stop();
    let spans = rx.wait_for("the run's span", |s| s["name"] == "run simple");
    let run = one(&spans, "run simple");
    assert_eq!((attr(run, "alert_fingerprint"), attr(run, "alertname")), (&Value::from("4f2a9c0d1e"), &Value::from("PrimaryRegionDown")));
}
