//! `loki.query` through `phoenix run`: a stand-in speaking Loki's query_range API and JSON
//! on 127.0.0.1 (Loki itself cannot run here).

use serde_json::json;

use crate::evidence_plugins::{closed_url, log_lines, outputs, run, runbook};
use crate::process::{self, step};
use crate::stub_http::{Reply, Request, Stub};
use crate::support::Test;

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
