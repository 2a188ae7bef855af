//! `aws.health_events` against a local stand-in for AWS Health (the moto server does not serve
//! this API). The SDK speaks AWS Health's Smithy RPC v2 CBOR protocol (`POST
//! /service/AWSHealth_20160804/operation/DescribeEvents`, CBOR bodies, timestamps as CBOR tag 1),
//! so the stand-in does too. Checked: the request the SDK signs and sends, pagination, and
//! evidence that is reported unavailable rather than fatal.

use ciborium::value::Value as Cbor;
use serde_json::{Value, json};

use crate::postgres::free_port;
use crate::process::{self, step};
use crate::scripted::{Reply, Request, Scripted};
use crate::support::Test;

fn runbook(url: &str, extra: &str) -> String {
    format!(
        "version: 1\nname: aws-health\nsteps:\n  events:\n    uses: aws.health_events\n    with: {{ endpoint_url: \"{url}\", since: 6h, timeout: 3s{extra} }}\n    retry: {{ attempts: 1 }}\n"
    )
}

fn run(yaml: &str, code: i32) -> Value {
    let out = Test::new()
        .file("r.yaml", yaml)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .args(["run", "r.yaml"])
        .run()
        .code(code);
    process::status(&out.state_dir(), &process::latest_run(&out.state_dir()))
}

/// JSON → CBOR, with the timestamp fields as CBOR epoch-seconds (tag 1).
fn to_cbor(v: &Value, key: &str) -> Cbor {
    match v {
        Value::Null => Cbor::Null,
        Value::Bool(b) => Cbor::Bool(*b),
        Value::Number(n) if key.ends_with("Time") => Cbor::Tag(1, Box::new(Cbor::Float(n.as_f64().unwrap()))),
        Value::Number(n) => n.as_i64().map_or_else(|| Cbor::Float(n.as_f64().unwrap()), |i| Cbor::Integer(i.into())),
        Value::String(s) => Cbor::Text(s.clone()),
        Value::Array(a) => Cbor::Array(a.iter().map(|x| to_cbor(x, "")).collect()),
        Value::Object(o) => Cbor::Map(o.iter().map(|(k, x)| (Cbor::Text(k.clone()), to_cbor(x, k))).collect()),
    }
}

/// CBOR → JSON (tags dropped: a timestamp becomes its seconds).
fn from_cbor(v: &Cbor) -> Value {
    match v {
        Cbor::Integer(i) => json!(i128::from(*i) as i64),
        Cbor::Float(f) => json!(f),
        Cbor::Text(s) => json!(s),
        Cbor::Bool(b) => json!(b),
        Cbor::Array(a) => Value::Array(a.iter().map(from_cbor).collect()),
        Cbor::Map(m) => Value::Object(m.iter().map(|(k, x)| (k.as_text().unwrap_or_default().to_string(), from_cbor(x))).collect()),
        Cbor::Tag(_, inner) => from_cbor(inner),
        _ => Value::Null,
    }
}

fn body(req: &Request) -> Value {
    let v: Cbor = ciborium::from_reader(req.body.as_slice()).unwrap_or_else(|e| panic!("the request body is not CBOR: {e}"));
    from_cbor(&v)
}

/// An RPC v2 CBOR answer.
fn cbor_reply(code: u16, v: &Value) -> Reply {
    let mut out = Vec::new();
    ciborium::into_writer(&to_cbor(v, ""), &mut out).expect("CBOR");
    Reply::Raw(code, vec![("Content-Type", "application/cbor".into()), ("smithy-protocol", "rpc-v2-cbor".into())], out)
}

fn event(service: &str, code: &str, status: &str, updated: f64) -> Value {
    json!({
        "arn": format!("arn:aws:health:us-east-1::event/{service}/{code}/{updated}"),
        "service": service, "eventTypeCode": code, "eventTypeCategory": "issue",
        "region": "us-east-1", "startTime": updated - 600.0, "lastUpdatedTime": updated, "statusCode": status,
        "eventScopeCode": "PUBLIC"
    })
}

#[test]
fn lists_events_across_pages_newest_first_and_counts_the_open_ones() {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
    let aws = Scripted::start(move |req, _| {
        let body = body(req);
        let page = if body.get("nextToken").is_some() {
            json!({ "events": [event("RDS", "AWS_RDS_OPERATIONAL_ISSUE", "closed", now - 3000.0)] })
        } else {
            json!({ "events": [event("EC2", "AWS_EC2_OPERATIONAL_ISSUE", "open", now - 2000.0), event("EKS", "AWS_EKS_OPERATIONAL_ISSUE", "open", now - 60.0)], "nextToken": "page-2" })
        };
        cbor_reply(200, &page)
    });
    let s = run(&runbook(&aws.url(), ", services: [EC2, EKS, RDS]"), 0);
    let out = &step(&s, "events")["outputs"];
    assert_eq!(out["available"], true, "{out:#}");
    assert_eq!(out["open_event_count"], 2);
    assert_eq!(out["has_open_issues"], true);
    let services: Vec<&str> = out["events"].as_array().unwrap().iter().map(|e| e["service"].as_str().unwrap()).collect();
    assert_eq!(services, ["EKS", "EC2", "RDS"], "newest first: {out:#}");
    assert_eq!(out["events"][0]["event_type_code"], "AWS_EKS_OPERATIONAL_ISSUE");
    assert_eq!(out["events"][0]["status"], "open");
    assert!(out["events"][0]["last_updated_time"].as_str().unwrap().ends_with('Z'), "{out:#}");

    // What the SDK sent: the operation, a SigV4 signature for us-east-1, the filter.
    let reqs = aws.requests();
    assert_eq!(reqs.len(), 2, "two pages");
    let first = &reqs[0];
    assert_eq!((first.method.as_str(), first.path.as_str()), ("POST", "/service/AWSHealth_20160804/operation/DescribeEvents"));
    assert_eq!(first.header("smithy-protocol"), Some("rpc-v2-cbor"));
    assert!(first.header("authorization").unwrap_or_default().contains("/us-east-1/health/aws4_request"), "{first:?}");
    let filter = &body(first)["filter"];
    assert_eq!(filter["services"], json!(["EC2", "EKS", "RDS"]));
    let from = filter["lastUpdatedTimes"][0]["from"].as_f64().expect("a from time");
    assert!((now - 6.0 * 3600.0 - from).abs() < 120.0, "since: 6h → from {from}, now {now}");
    assert_eq!(body(&reqs[1])["nextToken"], "page-2");
}

#[test]
fn no_support_plan_or_no_answer_is_reported_unavailable_not_fatal() {
    let aws = Scripted::start(|_, _| {
        cbor_reply(
            400,
            &json!({ "__type": "com.amazonaws.health#SubscriptionRequiredException", "message": "The AWS Support plan does not allow this" }),
        )
    });
    let s = run(&runbook(&aws.url(), ""), 0);
    let out = &step(&s, "events")["outputs"];
    assert_eq!(step(&s, "events")["status"], "succeeded");
    assert_eq!(out["available"], false, "{out:#}");
    assert!(out["error"].as_str().unwrap().contains("SubscriptionRequiredException"), "{out:#}");
    assert_eq!(out["events"], json!([]));

    let closed = format!("http://127.0.0.1:{}", free_port());
    let s = run(&runbook(&closed, ""), 0);
    assert_eq!(step(&s, "events")["outputs"]["available"], false);

    // With `required`, the same failure fails the step (and the run).
    let s = run(&runbook(&closed, ", required: true"), 1);
    assert_eq!(step(&s, "events")["status"], "failed");
    assert!(step(&s, "events")["error"].as_str().unwrap().contains("reading AWS Health events failed"), "{s:#}");
}
