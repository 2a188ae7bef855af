//! `storage.lag` against the moto server (S3) and Azurite (Azure Blob), both ways: a copy
//! `storage.sync` just made lacks nothing; new and changed source objects are missing, and
//! only they; the recovery point is measured from the oldest of them, and a sync brings the
//! lag back to nothing.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::azurite::Azurite;
use crate::moto::Moto;
use crate::process::{self, step};
use crate::support::Test;

fn env(t: Test, moto: &Moto, azurite: &Azurite) -> Test {
    t.env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ENDPOINT_URL", moto.url())
        .env("AZURE_STORAGE_CONNECTION_STRING", azurite.connection_string())
}

/// Runs one step of `uses` from `from` to `to`; its outputs.
fn run(moto: &Moto, azurite: &Azurite, uses: &str, from: &str, to: &str) -> Value {
    let yaml = format!("version: 1\nname: lag\nsteps:\n  s:\n    uses: {uses}\n    with: {{ from: \"{from}\", to: \"{to}\" }}\n");
    let out = env(Test::new(), moto, azurite).file("r.yaml", yaml).args(["run", "r.yaml"]).run().success();
    step(&process::status(&out.state_dir(), &process::latest_run(&out.state_dir())), "s")["outputs"].clone()
}

/// Seconds since the epoch of an RFC 3339 UTC time (`2026-12-06T09:40:01.123Z`).
fn epoch(text: &Value) -> f64 {
    let t = text.as_str().unwrap_or_else(|| panic!("not a time: {text}"));
    let n = |r: std::ops::Range<usize>| t[r].parse::<i64>().unwrap();
    let (y, m, d) = (n(0..4), n(5..7), n(8..10));
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
    let secs: f64 = t[17..t.len() - 1].parse().unwrap();
    (days * 86_400 + n(11..13) * 3600 + n(14..16) * 60) as f64 + secs
}

fn now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs_f64()
}

#[test]
fn lag_counts_what_the_copy_lacks_and_dates_it_from_the_oldest_missing_write() {
    let (moto, azurite) = (Moto::start(), Azurite::start());
    moto.s3_bucket("us-east-1", "prod-assets");
    moto.s3_objects("prod-assets", "img/", 5, 1000);
    let (src, dst) = ("s3://prod-assets", "azblob://dr-assets");

    // Just synced: nothing lacking.
    run(&moto, &azurite, "storage.sync", src, dst);
    let o = run(&moto, &azurite, "storage.lag", src, dst);
    assert_eq!((o["objects"].as_u64(), o["missing"].as_u64(), o["missing_bytes"].as_u64()), (Some(5), Some(0), Some(0)), "{o:#}");
    assert_eq!((o["rpo_seconds"].as_f64(), &o["newest_missing"], &o["oldest_missing"]), (Some(0.0), &Value::Null, &Value::Null), "{o:#}");

    // Two new objects, then (2 s later by the clock) one changed: those three, and only those.
    let before = now().floor() - 1.0;
    moto.s3_objects("prod-assets", "new/", 2, 300);
    let written = now();
    process::wait_for("the clock to move 2 s on", std::time::Duration::from_secs(10), || now() >= written + 2.0);
    moto.s3_objects("prod-assets", "img/", 1, 2000);
    let o = run(&moto, &azurite, "storage.lag", src, dst);
    assert_eq!((o["objects"].as_u64(), o["missing"].as_u64()), (Some(7), Some(3)), "{o:#}");
    assert_eq!(o["missing_bytes"], 2 * 300 + 2000, "{o:#}");
    let (oldest, newest) = (&o["oldest_missing"], &o["newest_missing"]);
    assert!(oldest["key"].as_str().unwrap_or_default().starts_with("new/object-0000"), "{o:#}");
    assert_eq!(newest["key"], "img/object-00000", "{o:#}");
    assert!(epoch(&oldest["last_modified"]) >= before, "the oldest missing dates from before the change: {o:#}");
    assert!(epoch(&newest["last_modified"]) - epoch(&oldest["last_modified"]) >= 1.0, "{o:#}");
    // The recovery point is measured_at minus the oldest missing write.
    let rpo = o["rpo_seconds"].as_f64().unwrap();
    let expected = epoch(&o["measured_at"]) - epoch(&oldest["last_modified"]);
    assert!((rpo - expected.max(0.0)).abs() < 0.01, "rpo_seconds {rpo} is not measured_at - oldest_missing ({expected}): {o:#}");

    // A sync catches up.
    run(&moto, &azurite, "storage.sync", src, dst);
    let o = run(&moto, &azurite, "storage.lag", src, dst);
    assert_eq!((o["missing"].as_u64(), o["rpo_seconds"].as_f64()), (Some(0), Some(0.0)), "{o:#}");

    // The other way, Azure as the source: an empty bucket lacks every blob, dated by Azure.
    moto.s3_bucket("us-east-1", "failback");
    let o = run(&moto, &azurite, "storage.lag", dst, "s3://failback");
    assert_eq!((o["objects"].as_u64(), o["missing"].as_u64()), (Some(7), Some(7)), "{o:#}");
    assert_eq!(o["missing_bytes"], 4 * 1000 + 2000 + 2 * 300, "{o:#}");
    assert!(epoch(&o["oldest_missing"]["last_modified"]) >= before - 60.0, "Azure's times are read: {o:#}");
    assert!(o["rpo_seconds"].as_f64().unwrap() > 0.0, "{o:#}");
}
