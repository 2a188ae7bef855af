//! `storage.sync`'s spans, against an S3 stand-in on 127.0.0.1: one `info` span for the
//! sync, with the counts; each request a span only at `debug`.

use std::time::Instant;

use serde_json::json;
use tracing::{Instrument, Level, info_span};

use crate::Plugin;
use crate::telemetry::testing::{Received, Traces, attrs, ctx, install, serve_with};

/// md5("abc"), every object's ETag.
const ETAG: &str = "900150983cd24fb0d6963f7d28e17f72";

/// An S3 stand-in: bucket `src` holds `n` objects of 3 bytes, bucket `dst` none; PUTs succeed.
fn s3(n: usize) -> impl Fn(&Received) -> (u16, Vec<(&'static str, String)>, String) + Send + Sync + 'static {
    move |r: &Received| {
        let mut words = r.line.split(' ');
        let (method, target) = (words.next().unwrap_or_default(), words.next().unwrap_or_default());
        let list = |bucket: &str, n: usize| {
            let items: String = (0..n)
                .map(|i| format!("<Contents><Key>k{i:05}</Key><LastModified>2026-12-06T00:00:00.000Z</LastModified><ETag>\"{ETAG}\"</ETag><Size>3</Size></Contents>"))
                .collect();
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?><ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Name>{bucket}</Name><Prefix></Prefix><KeyCount>{n}</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated>{items}</ListBucketResult>"
            )
        };
        match (method, target.split('?').next().unwrap_or_default()) {
            ("GET", "/src" | "/src/") => (200, vec![], list("src", n)),
            ("GET", "/dst" | "/dst/") => (200, vec![], list("dst", 0)),
            ("GET", _) => (200, vec![("etag", format!("\"{ETAG}\""))], "abc".into()),
            ("PUT", _) => (200, vec![("etag", format!("\"{ETAG}\""))], String::new()),
            _ => (404, vec![], String::new()),
        }
    }
}

async fn sync(n: usize) -> (Result<serde_json::Value, crate::ActionError>, std::time::Duration) {
    let (base, _) = serve_with(s3(n)).await;
    let with = json!({ "from": "s3://src/", "to": "s3://dst/", "verify": false,
        "s3": { "endpoint_url": base, "region": "us-east-1", "access_key_id": "AKIDTEST", "secret_access_key": "sync-secret-key-1" } });
    let started = Instant::now();
    let r = crate::storage::StorageSync.run(&ctx(), serde_json::from_value(with).unwrap()).instrument(info_span!("step")).await;
    (r, started.elapsed())
}

fn count(traces: &Traces, name: &str) -> usize {
    traces.spans().iter().filter(|s| s.name == name).count()
}

#[tokio::test]
async fn at_info_a_sync_of_many_objects_is_one_span_with_its_counts() {
    let traces = install(Level::INFO);
    let (r, took) = sync(300).await;
    r.expect("the sync succeeds");
    let span = traces.one("storage.sync");
    let a = attrs(&span);
    assert_eq!(a["storage.objects"], "300");
    assert_eq!(a["storage.copied"], "300");
    assert_eq!(a["storage.bytes"], "900");
    assert_eq!(a["storage.from"], "s3://src/");
    let names: Vec<String> = traces.spans().iter().map(|s| s.name.to_string()).collect();
    assert_eq!(names.iter().filter(|n| n.starts_with("S3/")).count(), 0, "no request span at info");
    assert_eq!(names.len(), 2, "the sync's span and the step's: {names:?}");
    eprintln!("storage.sync of 300 objects, info: {} spans in {took:?}", names.len());
}

#[tokio::test]
async fn at_debug_each_request_of_a_sync_is_a_span_under_it() {
    let traces = install(Level::DEBUG);
    let (r, took) = sync(300).await;
    r.expect("the sync succeeds");
    let sync_span = traces.one("storage.sync");
    assert_eq!(count(&traces, "S3/GetObject"), 300);
    assert_eq!(count(&traces, "S3/PutObject"), 300);
    assert_eq!(count(&traces, "S3/ListObjectsV2"), 2);
    for s in traces.spans().iter().filter(|s| s.name.starts_with("S3/")) {
        assert_eq!(s.span_context.trace_id(), sync_span.span_context.trace_id());
    }
    eprintln!("storage.sync of 300 objects, debug: {} spans in {took:?}", traces.spans().len());
}

#[tokio::test]
async fn without_a_subscriber_for_comparison() {
    let (r, took) = sync(300).await;
    r.expect("the sync succeeds");
    eprintln!("storage.sync of 300 objects, no subscriber: {took:?}");
}
