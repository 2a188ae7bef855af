//! The evidence plugins through `phoenix run` and `phoenix validate`: `statuspage` here,
//! against a stand-in speaking Statuspage's real JSON, and closed ports; the helpers that
//! `prometheus_query.rs` and `loki_query.rs` share. Every server is on 127.0.0.1; nothing
//! else is reached.

use std::time::Duration;

use serde_json::{Value, json};

use crate::postgres::free_port;
use crate::process::{self, step};
use crate::stub_http::{Reply, Request, Stub};
use crate::support::{Output, Test};

/// A runbook of independent steps, each `(id, uses, with)` with `with` as block YAML lines.
pub(crate) fn runbook(steps: &[(&str, &str, String)]) -> String {
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
pub(crate) fn run(yaml: &str, code: i32) -> (Output, Value) {
    let out = Test::new().file("r.yaml", yaml).args(["run", "r.yaml"]).run().code(code);
    let s = process::status(&out.state_dir(), &process::latest_run(&out.state_dir()));
    (out, s)
}

pub(crate) fn outputs<'a>(status: &'a Value, id: &str) -> &'a Value {
    let s = step(status, id);
    assert!(s["outputs"].is_object(), "step `{id}` has no outputs:\n{s:#}");
    &s["outputs"]
}

/// The step's log lines.
pub(crate) fn log_lines(out: &Output, status: &Value, id: &str) -> Vec<String> {
    let logs = process::json(&out.state_dir(), &["logs", status["id"].as_str().unwrap(), id]);
    logs["lines"].as_array().unwrap().iter().map(|l| l["text"].as_str().unwrap_or_default().to_string()).collect()
}

pub(crate) fn closed_url() -> String {
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
