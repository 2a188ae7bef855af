//! `prometheus.query` through `phoenix run`: the real Prometheus (Debian's) scraping a test
//! target on 127.0.0.1.

use std::time::Duration;

use serde_json::{Value, json};

use crate::evidence_plugins::{closed_url, log_lines, outputs, run, runbook};
use crate::process::step;
use crate::prometheus_server::Prometheus;
use crate::stub_http::{Reply, Request, Stub};

/// What the scraped target exposes: 100 requests, 10 of them 5xx.
const METRICS: &str = "# HELP http_requests_total Requests served, by method and status.
# TYPE http_requests_total counter
http_requests_total{method=\"GET\",status=\"200\"} 90
http_requests_total{method=\"GET\",status=\"500\"} 6
http_requests_total{method=\"POST\",status=\"503\"} 4
";

#[test]
fn prometheus_query_asks_a_real_prometheus_scraping_a_test_target() {
    let target = Stub::start(|r: &Request| match r.path.as_str() {
        "/metrics" => Reply::text("text/plain; version=0.0.4; charset=utf-8", METRICS),
        _ => Reply::text("text/plain", "not found").status(404),
    });
    let mut prom = Prometheus::start(&target.addr());
    prom.wait_for("http_requests_total", &["\"status\":\"200\"", "\"status\":\"500\"", "\"status\":\"503\""], Duration::from_secs(60));
    let q = |query: &str| format!("url: \"{}\"\nquery: '{query}'", prom.url());
    let (out, s) = run(
        &runbook(&[
            ("ratio", "prometheus.query", q(r#"sum(http_requests_total{status=~"5.."}) / sum(http_requests_total)"#)),
            ("by_status", "prometheus.query", q("sum by (status) (http_requests_total)")),
            ("total", "prometheus.query", q("scalar(sum(http_requests_total))")),
            ("labels", "prometheus.query", q(r#"http_requests_total{status="503"}"#)),
            ("before", "prometheus.query", q("sum(http_requests_total)") + "\ntime: \"2001-09-09T01:46:40Z\""),
            ("before_unix", "prometheus.query", q("sum(http_requests_total)") + "\ntime: 1000000000"),
            ("bad", "prometheus.query", q("sum(http_requests_total{")),
            ("closed", "prometheus.query", format!("url: \"{}\"\nquery: up\ntimeout: 2s", closed_url())),
        ]),
        0,
    );
    let ratio = outputs(&s, "ratio");
    assert_eq!(ratio["available"], true, "{ratio:#}");
    assert_eq!(ratio["error"], Value::Null);
    assert_eq!(ratio["result_type"], "vector");
    assert_eq!(ratio["value"], json!(0.1));
    assert_eq!(ratio["result"], json!([{ "metric": {}, "value": 0.1 }]));
    let log = log_lines(&out, &s, "ratio");
    assert!(log.iter().any(|l| l.contains("→ a vector of 1 series, value 0.1")), "{log:?}");

    let by_status = outputs(&s, "by_status");
    let mut series: Vec<(String, f64)> = by_status["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["metric"]["status"].as_str().unwrap().to_string(), r["value"].as_f64().unwrap()))
        .collect();
    series.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(series, [("200".to_string(), 90.0), ("500".to_string(), 6.0), ("503".to_string(), 4.0)]);

    let total = outputs(&s, "total");
    assert_eq!(total["result_type"], "scalar", "{total:#}");
    assert_eq!(total["result"], json!([{ "metric": {}, "value": 100.0 }]));
    assert_eq!(total["value"], json!(100.0));

    let labels = &outputs(&s, "labels")["result"][0];
    assert_eq!(labels["value"], json!(4.0), "{labels:#}");
    assert_eq!(labels["metric"]["__name__"], "http_requests_total");
    assert_eq!(labels["metric"]["job"], "app");
    assert_eq!(labels["metric"]["instance"], target.addr());
    assert_eq!(labels["metric"]["method"], "POST");

    // Evaluated in 2001, long before the first scrape: an empty result, not an error.
    for id in ["before", "before_unix"] {
        let o = outputs(&s, id);
        assert_eq!((&o["available"], &o["result"], &o["value"]), (&json!(true), &json!([]), &Value::Null), "{id}: {o:#}");
    }

    let bad = outputs(&s, "bad");
    assert_eq!(bad["available"], false, "{bad:#}");
    let error = bad["error"].as_str().unwrap_or_default();
    assert!(error.starts_with("Prometheus refused the query (bad_data): ") && error.contains("parse error"), "{error}");
    assert_eq!((&bad["result_type"], &bad["result"], &bad["value"]), (&Value::Null, &json!([]), &Value::Null));

    let closed = outputs(&s, "closed");
    assert_eq!(closed["available"], false);
    assert!(closed["error"].as_str().unwrap_or_default().contains("could not connect"), "{closed:#}");

    // Required: bad PromQL fails the step with Prometheus's words, and the run with it.
    let (_, s) = run(&runbook(&[("bad", "prometheus.query", q("rate(http_requests_total[5m") + "\nrequired: true")]), 1);
    let bad = step(&s, "bad");
    assert_eq!(bad["status"], "failed", "{bad:#}");
    assert!(bad["error"].as_str().unwrap_or_default().contains("Prometheus refused the query (bad_data)"), "{bad:#}");
}
