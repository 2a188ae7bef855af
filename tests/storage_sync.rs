//! `storage.sync` between the moto server (S3) and Azurite (Azure Blob), both ways: streaming
//! copies (objects above one part too), a second sync that copies nothing, a changed object
//! copied alone, `delete`, verification, and a sync killed half-way that a resume finishes
//! without copying again what was done.

use std::time::Duration;

use serde_json::{Value, json};

use crate::azurite::Azurite;
use crate::moto::Moto;
use crate::process::{self, Background, step};
use crate::support::{Output, Test};

fn sync_runbook(from: &str, to: &str, extra: &str) -> String {
    format!(
        "version: 1\nname: sync\nsteps:\n  sync:\n    uses: storage.sync\n    with: {{ from: \"{from}\", to: \"{to}\", concurrency: 4{extra} }}\n"
    )
}

/// Runs a sync with moto's and Azurite's credentials in the environment.
fn run(moto: &Moto, azurite: &Azurite, yaml: &str) -> (Output, Value) {
    let out = env(Test::new(), moto, azurite).file("r.yaml", yaml).args(["run", "r.yaml"]).run().success();
    let s = process::status(&out.state_dir(), &process::latest_run(&out.state_dir()));
    (out, s)
}

fn env(t: Test, moto: &Moto, azurite: &Azurite) -> Test {
    t.env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ENDPOINT_URL", moto.url())
        .env("AZURE_STORAGE_CONNECTION_STRING", azurite.connection_string())
}

fn outputs(s: &Value) -> &Value {
    &step(s, "sync")["outputs"]
}

#[test]
fn s3_to_azure_and_back_copies_only_what_changed() {
    let (moto, azurite) = (Moto::start(), Azurite::start());
    moto.s3_bucket("us-east-1", "prod-assets");
    moto.s3_objects("prod-assets", "img/", 40, 1024);
    // Larger than one Azure block (4 MiB) and one S3 part (8 MiB): copied in parts.
    moto.s3_objects("prod-assets", "big/", 2, 9 << 20);

    let (_, s) = run(&moto, &azurite, &sync_runbook("s3://prod-assets", "azblob://dr-assets", ""));
    let o = outputs(&s);
    assert_eq!((o["objects"].as_u64(), o["copied"].as_u64(), o["skipped"].as_u64()), (Some(42), Some(42), Some(0)), "{o:#}");
    assert_eq!(o["bytes"], json!(40 * 1024 + 2 * (9u64 << 20)));
    assert_eq!(o["verified"], true);

    // Nothing changed: nothing copied.
    let (_, s) = run(&moto, &azurite, &sync_runbook("s3://prod-assets", "azblob://dr-assets", ""));
    assert_eq!((outputs(&s)["copied"].as_u64(), outputs(&s)["skipped"].as_u64()), (Some(0), Some(42)), "{:#}", outputs(&s));

    // One object changed (same key, other content): only it is copied.
    moto.s3_objects("prod-assets", "img/", 1, 2048);
    let (_, s) = run(&moto, &azurite, &sync_runbook("s3://prod-assets", "azblob://dr-assets", ""));
    assert_eq!(outputs(&s)["copied"], 1, "{:#}", outputs(&s));

    // Failback: Azure → S3, then again with nothing to do.
    moto.s3_bucket("us-east-1", "failback");
    let (_, s) = run(&moto, &azurite, &sync_runbook("azblob://dr-assets", "s3://failback/restored", ""));
    assert_eq!((outputs(&s)["copied"].as_u64(), outputs(&s)["verified"].as_bool()), (Some(42), Some(true)), "{:#}", outputs(&s));
    let (_, s) = run(&moto, &azurite, &sync_runbook("azblob://dr-assets", "s3://failback/restored", ""));
    assert_eq!(outputs(&s)["copied"], 0, "{:#}", outputs(&s));

    // `delete`: what only the destination has goes.
    let extra = "version: 1\nname: extra\nsteps:\n  put:\n    uses: azure_blob.put\n    with: { container: dr-assets, name: stray.txt, body: stray }\n";
    env(Test::new(), &moto, &azurite).file("e.yaml", extra).args(["run", "e.yaml"]).run().success();
    let (_, s) = run(&moto, &azurite, &sync_runbook("s3://prod-assets", "azblob://dr-assets", ", delete: true"));
    assert_eq!((outputs(&s)["deleted"].as_u64(), outputs(&s)["copied"].as_u64()), (Some(1), Some(0)), "{:#}", outputs(&s));
}

#[test]
fn a_sync_killed_half_way_resumes_without_copying_again() {
    let (moto, azurite) = (Moto::start(), Azurite::start());
    moto.s3_bucket("us-east-1", "many");
    moto.s3_objects("many", "", 120, 512);
    // Every AWS answer takes a while, so the kill lands mid-sync.
    moto.delay(0.03);
    let t = env(Test::new(), &moto, &azurite)
        .file("r.yaml", sync_runbook("s3://many", "azblob://copy", "").replace("concurrency: 4", "concurrency: 2"));
    let setup = t.args(["validate", "r.yaml"]).run().success();
    let bg = Background::spawn(setup.then().args(["run", "r.yaml", "--no-wait"]).command(), setup.path());
    process::wait_for("some copies", Duration::from_secs(60), || blobs(&azurite, "copy") >= 25);
    process::crash_tree(bg.pid());
    drop(bg);
    let run = process::latest_run(&setup.state_dir());
    moto.delay(0.0);
    setup.then().args(["resume", &run]).run().success();
    let o = outputs(&process::status(&setup.state_dir(), &run)).clone();
    let (copied, skipped) = (o["copied"].as_u64().unwrap(), o["skipped"].as_u64().unwrap());
    assert_eq!(copied + skipped, 120, "{o:#}");
    assert!(skipped >= 25, "the resume copied again what was done: {o:#}");
    assert_eq!(o["verified"], true);
}

/// How many blobs a container holds, asked over Azure's REST API with an account SAS.
fn blobs(azurite: &Azurite, container: &str) -> usize {
    use std::io::{Read, Write};
    let endpoint = azurite.endpoint();
    let rest = endpoint.trim_start_matches("http://");
    let (host, account_path) = rest.split_once('/').unwrap();
    let Ok(mut stream) = std::net::TcpStream::connect(host) else { return 0 };
    let path = format!("/{account_path}/{container}?restype=container&comp=list&{}", azurite.account_sas());
    let _ = write!(stream, "GET {path} HTTP/1.1\r\nHost: {host}\r\nx-ms-version: 2019-12-12\r\nConnection: close\r\n\r\n");
    let mut text = String::new();
    let _ = stream.read_to_string(&mut text);
    text.matches("<Name>").count()
}

#[test]
fn bad_locations_are_refused_before_anything_runs() {
    let yaml = "version: 1\nname: bad\nsteps:\n  a:\n    uses: storage.sync\n    with: { from: \"gs://x\", to: \"s3://b/p\", concurrency: 0 }\n  b:\n    uses: storage.sync\n    with: { from: \"s3://b/p/q\", to: \"s3://b/p\" }\n";
    let out = Test::new().file("r.yaml", yaml).args(["validate", "r.yaml"]).run().code(2);
    for needle in ["`gs://x` is neither", "`concurrency` must be at least 1", "overlaps"] {
        assert!(out.stderr().contains(needle), "no {needle:?} in\n{}", out.stderr());
    }
}
