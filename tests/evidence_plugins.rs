//! The evidence plugins — `statuspage`, `prometheus.query`, `loki.query` — through
//! `phoenix run` and `phoenix validate`: against stand-ins speaking Statuspage's and Loki's
//! real JSON, the real Prometheus scraping a test target, and closed ports. Every server is
//! on 127.0.0.1; nothing else is reached.

#[path = "support/stub_http.rs"]
mod stub_http;

use std::time::Duration;

use serde_json::{Value, json};

use self::stub_http::{Reply, Request, Stub};
use crate::postgres::free_port;
use crate::process::{self, step};
use crate::prometheus_server::Prometheus;
use crate::support::{Output, Test};

/// A runbook of independent steps, each `(id, uses, with)` with `with` as block YAML lines.
fn runbook(steps: &[(&str, &str, String)]) -> String {
    let mut yaml = String::from("version: 1\nname: evidence\nsteps:\n");
    for (id, uses, with) in steps {
        yaml += &format!("  {id}:\n    uses: {uses}\n    with:\n");
        for line in with.lines() {
            yaml += &format!("      {line}\n");
        }
    }
    yaml
}

/// The run's status after `phoenix run` exited with `code`.
fn run(yaml: &str, code: i32) -> (Output, Value) {
    let out = Test::new().file("r.yaml", yaml).args(["run", "r.yaml"]).run().code(code);
    let s = process::status(&out.state_dir(), &process::latest_run(&out.state_dir()));
    (out, s)
}

fn outputs<'a>(status: &'a Value, id: &str) -> &'a Value {
    let s = step(status, id);
    assert!(s["outputs"].is_object(), "step `{id}` has no outputs:\n{s:#}");
    &s["outputs"]
}

/// The step's log lines.
fn log_lines(out: &Output, status: &Value, id: &str) -> Vec<String> {
    let logs = process::json(&out.state_dir(), &["logs", status["id"].as_str().unwrap(), id]);
    logs["lines"].as_array().unwrap().iter().map(|l| l["text"].as_str().unwrap_or_default().to_string()).collect()
}

fn closed_url() -> String {
    format!("http://127.0.0.1:{}", free_port())
}

// ---------------------------------------------------------------- Statuspage

/// The `page` object every Statuspage v2 document starts with.
fn page() -> Value {
    json!({
        "id": "yh6f0r4529hb",
        "name": "Cloudflare",
        "url": "https://www.cloudflarestatus.com",
        "time_zone": "Etc/UTC",
        "updated_at": "2024-05-01T09:41:07.104Z"
    })
}

fn status_doc(indicator: &str, description: &str) -> Value {
    json!({ "page": page(), "status": { "indicator": indicator, "description": description } })
}

/// An unresolved incident as `/api/v2/incidents/unresolved.json` lists it.
fn incident(id: &str, name: &str, status: &str, impact: &str, created_at: &str, components: &[&str]) -> Value {
    let components: Vec<Value> = components
        .iter()
        .enumerate()
        .map(|(i, c)| {
            json!({
                "id": format!("cmp{i}{id}"), "name": c, "status": "degraded_performance",
                "created_at": "2014-10-09T03:32:07.158Z", "updated_at": created_at, "position": i + 1,
                "description": null, "showcase": true, "start_date": null, "group_id": "1km35smx8p41",
                "page_id": "yh6f0r4529hb", "group": false, "only_show_if_degraded": false
            })
        })
        .collect();
    json!({
        "id": id, "name": name, "status": status,
        "created_at": created_at, "updated_at": created_at, "monitoring_at": null, "resolved_at": null,
        "impact": impact, "shortlink": format!("https://stspg.io/{id}"), "started_at": created_at,
        "page_id": "yh6f0r4529hb",
        "incident_updates": [{
            "id": format!("upd{id}"), "status": status, "body": "We are investigating this issue.",
            "incident_id": id, "created_at": created_at, "updated_at": created_at, "display_at": created_at,
            "affected_components": components.iter().map(|c| json!({
                "code": c["id"], "name": c["name"], "old_status": "operational", "new_status": "degraded_performance"
            })).collect::<Vec<_>>(),
            "deliver_notifications": true, "custom_tweet": null, "tweet_id": null
        }],
        "components": components,
    })
}

/// Statuspage sites under path prefixes of one stand-in: `/cloudflare` (three incidents, out
/// of order, times in three zones), `/quiet` (none), `/busy` (25), `/down` (503), `/notfound`
/// (404), `/html` (200 with a web page), `/slow` (answers after 5s).
fn statuspage_sites() -> Stub {
    Stub::start(|r: &Request| {
        let (site, doc) = r.path.split_once("/api/v2/").unwrap_or((r.path.as_str(), ""));
        let incidents = |list: Vec<Value>| Reply::json(json!({ "page": page(), "incidents": list }));
        match (site, doc) {
            ("/cloudflare", "status.json") => Reply::json(status_doc("minor", "Minor Service Outage")),
            ("/cloudflare", "incidents/unresolved.json") => incidents(vec![
                incident(
                    "a1",
                    "Elevated errors in Frankfurt",
                    "investigating",
                    "minor",
                    "2024-05-01T09:15:00.000Z",
                    &["Frankfurt, Germany - (FRA)"],
                ),
                incident("c3", "Delayed analytics", "monitoring", "none", "2024-04-30T22:05:12.345-04:00", &[]),
                incident(
                    "b2",
                    "Dashboard and API latency",
                    "identified",
                    "major",
                    "2024-05-01T11:40:00.000+02:00",
                    &["Cloudflare Dashboard", "Cloudflare API"],
                ),
            ]),
            ("/quiet", "status.json") => Reply::json(status_doc("none", "All Systems Operational")),
            ("/quiet", "incidents/unresolved.json") => incidents(vec![]),
            ("/busy", "status.json") => Reply::json(status_doc("critical", "Major System Outage")),
            ("/busy", "incidents/unresolved.json") => incidents(
                (0..25)
                    .map(|m| {
                        incident(
                            &format!("i{m}"),
                            &format!("incident {m}"),
                            "investigating",
                            "critical",
                            &format!("2024-05-01T10:{m:02}:00Z"),
                            &["API"],
                        )
                    })
                    .collect(),
            ),
            ("/down", _) => Reply::text("text/html", "<html>503</html>").status(503),
            ("/html", _) => Reply::text("text/html", "<!DOCTYPE html><html><body>Welcome</body></html>"),
            ("/slow", _) => Reply::json(status_doc("none", "late")).after(Duration::from_secs(5)),
            _ => Reply::text("text/html", "<html>Not found</html>").status(404),
        }
    })
}

#[test]
fn statuspage_reports_the_indicator_and_unresolved_incidents_newest_first() {
    let sites = statuspage_sites();
    let site = |prefix: &str| format!("url: \"{}\"\ntimeout: 5s", sites.url(prefix));
    let (out, s) = run(
        &runbook(&[
            ("cloudflare", "statuspage", site("/cloudflare/")),
            ("quiet", "statuspage", site("/quiet")),
            ("busy", "statuspage", site("/busy")),
        ]),
        0,
    );
    let cf = outputs(&s, "cloudflare");
    assert_eq!(cf["available"], true, "{cf:#}");
    assert_eq!(cf["error"], Value::Null);
    assert_eq!(cf["page"], "Cloudflare");
    assert_eq!(cf["indicator"], "minor");
    assert_eq!(cf["description"], "Minor Service Outage");
    assert_eq!(cf["has_active_incidents"], true);
    let names: Vec<&str> = cf["incidents"].as_array().unwrap().iter().map(|i| i["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["Dashboard and API latency", "Elevated errors in Frankfurt", "Delayed analytics"]);
    assert_eq!(
        cf["incidents"][0],
        json!({
            "name": "Dashboard and API latency",
            "status": "identified",
            "impact": "major",
            "created_at": "2024-05-01T11:40:00.000+02:00",
            "updated_at": "2024-05-01T11:40:00.000+02:00",
            "shortlink": "https://stspg.io/b2",
            "components": ["Cloudflare Dashboard", "Cloudflare API"],
        })
    );
    assert_eq!(cf["incidents"][2]["components"], json!([]));
    // Both documents were asked for, once each.
    assert_eq!(sites.requests_to("/cloudflare/api/v2/status.json").len(), 1);
    assert_eq!(sites.requests_to("/cloudflare/api/v2/incidents/unresolved.json").len(), 1);
    let log = log_lines(&out, &s, "cloudflare");
    assert!(
        log.iter().any(|l| l.contains(
            "Cloudflare: minor (Minor Service Outage), 3 unresolved incidents, newest: Dashboard and API latency (identified, impact major)"
        )),
        "{log:?}"
    );

    let quiet = outputs(&s, "quiet");
    assert_eq!((&quiet["indicator"], &quiet["has_active_incidents"], &quiet["incidents"]), (&json!("none"), &json!(false), &json!([])));
    assert_eq!(quiet["description"], "All Systems Operational");

    let busy = outputs(&s, "busy");
    let busy_names: Vec<&str> = busy["incidents"].as_array().unwrap().iter().map(|i| i["name"].as_str().unwrap()).collect();
    assert_eq!(busy_names.len(), 20, "at most 20 incidents: {busy_names:?}");
    assert_eq!(busy_names[0], "incident 24", "newest first: {busy_names:?}");
    assert_eq!(busy_names[19], "incident 5", "the five oldest are left out: {busy_names:?}");
}

#[test]
fn a_statuspage_that_cannot_be_read_is_unavailable_and_the_run_goes_on() {
    let sites = statuspage_sites();
    let closed = closed_url();
    let (out, s) = run(
        &format!(
            "{}  after:\n    needs: [closed, notfound, html, slow, down]\n    uses: assert\n    with: {{ that: \"not steps.closed.outputs.available\" }}\n",
            runbook(&[
                ("closed", "statuspage", format!("url: \"{closed}\"")),
                ("notfound", "statuspage", format!("url: \"{}\"", sites.url("/nothing-here"))),
                ("html", "statuspage", format!("url: \"{}\"", sites.url("/html"))),
                ("slow", "statuspage", format!("url: \"{}\"\ntimeout: 500ms", sites.url("/slow"))),
                ("down", "statuspage", format!("url: \"{}\"\nrequired: false", sites.url("/down"))),
            ])
        ),
        0,
    );
    let expect = [
        ("closed", "could not connect"),
        ("notfound", "answered 404 Not Found: is `url` a Statuspage site?"),
        ("html", "answered 200 OK but not with Statuspage v2"),
        ("slow", "no answer within 500ms"),
        ("down", "answered 503 Service Unavailable"),
    ];
    for (id, needle) in expect {
        assert_eq!(step(&s, id)["status"], "succeeded", "{:#}", step(&s, id));
        let o = outputs(&s, id);
        assert_eq!(o["available"], false, "{id}: {o:#}");
        let error = o["error"].as_str().unwrap_or_default();
        assert!(error.contains(needle), "{id}: {error:?} lacks {needle:?}");
        for key in ["page", "indicator", "description", "has_active_incidents"] {
            assert_eq!(o[key], Value::Null, "{id}: {key}");
        }
        assert_eq!(o["incidents"], json!([]), "{id}");
    }
    assert!(outputs(&s, "closed")["error"].as_str().unwrap().contains(&format!("GET {closed}/api/v2/")));
    assert_eq!(step(&s, "after")["status"], "succeeded");
    let log = log_lines(&out, &s, "closed");
    assert!(log.iter().any(|l| l.contains("unavailable, going on without it")), "{log:?}");
}

#[test]
fn a_required_statuspage_that_cannot_be_read_fails_the_step() {
    let sites = statuspage_sites();
    let (_, s) = run(&runbook(&[("status", "statuspage", format!("url: \"{}\"\nrequired: true", closed_url()))]), 1);
    let st = step(&s, "status");
    assert_eq!(st["status"], "failed", "{st:#}");
    assert!(st["error"].as_str().unwrap_or_default().contains("could not connect"), "{st:#}");
    assert_eq!(st["outputs"]["available"], false, "{st:#}");

    // A 503 may pass: the step's retry asks again. A 404 will not: it is asked once.
    let retried = |prefix: &str| {
        let yaml = runbook(&[("status", "statuspage", format!("url: \"{}\"\nrequired: true", sites.url(prefix)))])
            .replace("    uses: statuspage\n", "    uses: statuspage\n    retry: { attempts: 2, backoff: fixed, delay: 50ms }\n");
        let (_, s) = run(&yaml, 1);
        assert_eq!(step(&s, "status")["status"], "failed");
        sites.requests_to(&format!("{prefix}/api/v2/status.json")).len()
    };
    assert_eq!(retried("/down"), 2);
    assert_eq!(retried("/gone"), 1);
}

#[test]
fn a_step_timeout_stops_evidence_and_is_not_taken_for_unavailable() {
    let sites = statuspage_sites();
    // The site answers after 5s, well within the plugin's own 10s: only the step's timeout
    // (a cancel) can end it first, and a cancel fails the step even with `required: false`.
    let yaml = runbook(&[("slow", "statuspage", format!("url: \"{}\"", sites.url("/slow")))])
        .replace("    uses: statuspage\n", "    uses: statuspage\n    timeout: 300ms\n");
    let (_, s) = run(&yaml, 1);
    let slow = step(&s, "slow");
    assert_eq!(slow["status"], "failed", "{slow:#}");
    assert_eq!(slow["error"], "timed out after 300ms", "{slow:#}");
    assert_eq!(slow["outputs"], Value::Null, "a cancel is not `available: false`: {slow:#}");
}

// ---------------------------------------------------------------- Prometheus

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

// ---------------------------------------------------------------- Loki

/// A stand-in for Loki's `query_range`: two streams of `{app="api"}`, a matrix for a metric
/// query, and Loki's plain-text 400 for a query that does not parse.
fn loki() -> Stub {
    Stub::start(|r: &Request| {
        if r.path != "/loki/api/v1/query_range" {
            return Reply::text("text/plain; charset=utf-8", "404 page not found\n").status(404);
        }
        let query = r.query.get("query").map(String::as_str).unwrap_or_default();
        if query.starts_with("sum(") {
            return Reply::json(json!({
                "status": "success",
                "data": { "resultType": "matrix", "result": [{ "metric": {}, "values": [[1714558200, "3"]] }], "stats": {} }
            }));
        }
        if !query.ends_with('}') && !query.contains("|=") {
            return Reply::text(
                "text/plain; charset=utf-8",
                "parse error at line 1, col 6: syntax error: unexpected $end, expecting STRING\n",
            )
            .status(400);
        }
        // As Loki answers `direction=backward`: each stream's entries newest first.
        Reply::json(json!({
            "status": "success",
            "data": {
                "resultType": "streams",
                "result": [
                    { "stream": { "app": "api", "pod": "api-7f9c-1", "level": "error" },
                      "values": [["1714559400000000004", "GET /checkout 502 upstream timed out"], ["1714558800500000000", "GET /cart 500 db pool exhausted"]] },
                    { "stream": { "app": "api", "pod": "api-7f9c-2", "level": "error" },
                      "values": [["1714559100000000001", "POST /pay 503 circuit open"], ["1714558200000000000", "GET /health 500"]] }
                ],
                "stats": { "summary": { "bytesProcessedPerSecond": 1048576, "linesProcessedPerSecond": 2048, "totalBytesProcessed": 4096,
                                        "totalLinesProcessed": 4, "execTime": 0.002, "queueTime": 0.0001, "subqueries": 0, "totalEntriesReturned": 4 } }
            }
        }))
    })
}

#[test]
fn loki_query_merges_streams_newest_first_and_sends_the_range() {
    let loki = loki();
    let url = loki.url("");
    let yaml = runbook(&[
        (
            "range",
            "loki.query",
            format!("url: \"{url}/\"\nquery: '{{app=\"api\"}} |= \"error\"'\nstart: \"2024-05-01T10:00:00Z\"\nend: \"2024-05-01T12:00:00+01:00\"\nlimit: 3"),
        ),
        (
            "recent",
            "loki.query",
            format!(
                "url: \"{url}\"\nquery: '{{app=\"api\"}}'\nsince: 15m\nheaders:\n  X-Scope-OrgID: tenant-a\n  Authorization: \"Bearer {{{{ secrets.loki_token }}}}\""
            ),
        ),
    ])
    .replace("steps:\n", "secrets:\n  loki_token: { env: LOKI_TOKEN }\nsteps:\n");
    let before = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    let out = Test::new().file("r.yaml", &yaml).env("LOKI_TOKEN", "s3cr3t-loki-token").args(["run", "r.yaml"]).run().success();
    let after = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    let s = process::status(&out.state_dir(), &process::latest_run(&out.state_dir()));

    let range = outputs(&s, "range");
    assert_eq!(range["available"], true, "{range:#}");
    assert_eq!(range["count"], 3);
    assert_eq!(
        range["lines"],
        json!([
            { "timestamp": "2024-05-01T10:30:00.000000004Z", "labels": { "app": "api", "pod": "api-7f9c-1", "level": "error" }, "line": "GET /checkout 502 upstream timed out" },
            { "timestamp": "2024-05-01T10:25:00.000000001Z", "labels": { "app": "api", "pod": "api-7f9c-2", "level": "error" }, "line": "POST /pay 503 circuit open" },
            { "timestamp": "2024-05-01T10:20:00.500000000Z", "labels": { "app": "api", "pod": "api-7f9c-1", "level": "error" }, "line": "GET /cart 500 db pool exhausted" },
        ])
    );
    let asked: Vec<Request> = loki.requests().into_iter().filter(|r| r.query.get("query").is_some_and(|q| q.contains("|="))).collect();
    assert_eq!(asked.len(), 1, "{asked:?}");
    let q = &asked[0].query;
    assert_eq!(q["query"], r#"{app="api"} |= "error""#);
    assert_eq!(q["start"], "1714557600000000000");
    assert_eq!(q["end"], "1714561200000000000");
    assert_eq!(q["limit"], "3");
    assert_eq!(q["direction"], "backward");

    let recent = outputs(&s, "recent");
    assert_eq!(recent["count"], 4, "{recent:#}");
    assert_eq!(recent["lines"][3]["line"], "GET /health 500");
    let asked =
        loki.requests().into_iter().find(|r| r.query.get("query").is_some_and(|q| q == r#"{app="api"}"#)).expect("the `recent` query");
    let (start, end): (u128, u128) = (asked.query["start"].parse().unwrap(), asked.query["end"].parse().unwrap());
    assert_eq!(end - start, 15 * 60 * 1_000_000_000, "since: 15m");
    assert!((before..=after).contains(&end), "end is now: {before} <= {end} <= {after}");
    assert_eq!((asked.query["limit"].as_str(), asked.query["direction"].as_str()), ("100", "backward"));
    assert_eq!(asked.headers["x-scope-orgid"], "tenant-a");
    assert_eq!(asked.headers["authorization"], "Bearer s3cr3t-loki-token");
    let log = log_lines(&out, &s, "recent");
    assert!(log.iter().any(|l| l.contains("Loki: 4 lines from 2 streams in the 15m before")), "{log:?}");
    let events = out.then().args(["logs", s["id"].as_str().unwrap(), "--output", "json"]).run().success();
    assert!(!events.stdout().contains("s3cr3t-loki-token") && !s.to_string().contains("s3cr3t-loki-token"), "the token was stored");
}

#[test]
fn loki_query_failures_are_unavailable_unless_required() {
    let loki = loki();
    let url = loki.url("");
    // A password in the URL must not reach an error or a log line.
    let closed = closed_url().replace("http://", "http://reader:pa55-in-url@");
    let (out, s) = run(
        &runbook(&[
            ("metric", "loki.query", format!("url: \"{url}\"\nquery: 'sum(count_over_time({{app=\"api\"}}[5m]))'")),
            ("bad", "loki.query", format!("url: \"{url}\"\nquery: '{{app='")),
            ("closed", "loki.query", format!("url: \"{closed}\"\nquery: '{{app=\"api\"}}'")),
            ("notloki", "loki.query", format!("url: \"{url}/grafana\"\nquery: '{{app=\"api\"}}'")),
        ]),
        0,
    );
    let expect = [
        ("metric", "Loki answered a matrix instead of log lines"),
        ("bad", "answered 400 Bad Request: parse error at line 1, col 6: syntax error: unexpected $end, expecting STRING"),
        ("closed", "could not connect"),
        ("notloki", "answered 404 Not Found"),
    ];
    for (id, needle) in expect {
        let o = outputs(&s, id);
        assert_eq!((&o["available"], &o["lines"], &o["count"]), (&json!(false), &json!([]), &json!(0)), "{id}: {o:#}");
        let error = o["error"].as_str().unwrap_or_default();
        assert!(error.contains(needle), "{id}: {error:?} lacks {needle:?}");
    }
    let error = outputs(&s, "closed")["error"].as_str().unwrap().to_string();
    assert!(!error.contains("pa55-in-url") && !error.contains("reader"), "{error}");
    assert!(log_lines(&out, &s, "closed").iter().all(|l| !l.contains("pa55-in-url")));

    // Required: a query Loki refuses fails the step at once; asking again would not help.
    let yaml = runbook(&[("bad", "loki.query", format!("url: \"{url}\"\nquery: '{{app=\"x'\nrequired: true"))])
        .replace("    uses: loki.query\n", "    uses: loki.query\n    retry: { attempts: 3, backoff: fixed, delay: 50ms }\n");
    let (_, s) = run(&yaml, 1);
    let bad = step(&s, "bad");
    assert_eq!(bad["status"], "failed", "{bad:#}");
    assert!(bad["error"].as_str().unwrap_or_default().contains("parse error"), "{bad:#}");
    assert_eq!(loki.requests().iter().filter(|r| r.query.get("query").is_some_and(|q| q == "{app=\"x")).count(), 1);
}

// ---------------------------------------------------------------- validate

#[test]
fn bad_evidence_inputs_are_refused_before_anything_runs() {
    let yaml = runbook(&[
        ("typo", "statuspage", "url: \"https://www.cloudflarestatus.com\"\ntimout: 5s".into()),
        ("empty", "statuspage", "url: \"\"".into()),
        ("api_path", "prometheus.query", "url: \"http://prometheus:9090/api/v1/query\"\nquery: up".into()),
        ("no_query", "prometheus.query", "url: \"http://prometheus:9090\"\nquery: \" \"\ntime: yesterday".into()),
        ("no_url", "loki.query", "query: '{app=\"api\"}'".into()),
        (
            "range",
            "loki.query",
            "url: \"loki:3100\"\nquery: '{app=\"api\"}'\nstart: \"2024-05-01T12:00:00Z\"\nend: \"2024-05-01T10:00:00Z\"\nsince: 1h\nlimit: 0".into(),
        ),
        ("literal_token", "loki.query", "url: \"http://loki:3100\"\nquery: '{app=\"api\"}'\nheaders: { Authorization: \"Bearer abc123\" }".into()),
    ]);
    let out = Test::new().file("r.yaml", yaml).args(["validate", "r.yaml"]).run().code(2);
    for needle in [
        "`statuspage` has no input `timout`",
        "did you mean `timeout`?",
        "`url` is empty",
        "`url` holds the API path; give the base URL (`/api/v1/query` is added)",
        "write `http://prometheus:9090`",
        "`query` is empty",
        "`yesterday` is neither RFC 3339",
        "`loki.query` needs the input `url`",
        "`loki:3100` is not an http:// or https:// URL",
        "`start` is not before `end`",
        "`since` and `start` both set the range's start",
        "must be at least 1, found 0",
        "header `Authorization` is written in the runbook",
        "at: steps.literal_token.with.headers.Authorization",
    ] {
        assert!(out.stderr().contains(needle), "no {needle:?} in\n{}", out.stderr());
    }
    // The runbook's own line is quoted, but no message repeats a header's value.
    assert!(out.stderr().lines().filter(|l| l.starts_with("error")).all(|l| !l.contains("abc123")), "{}", out.stderr());
}
