//! `s3.*` through `phoenix run` against the moto server (`tests/support/moto.rs`); a closed
//! port and `phoenix validate` for the AWS data actions (`route53.*` runs are in route53.rs).

use serde_json::{Value, json};

use crate::moto::Moto;
use crate::postgres::free_port;
use crate::process::{self, step};
use crate::support::{Output, Test};

/// A test with moto's any-key credentials in the environment.
pub(crate) fn aws_test() -> Test {
    Test::new().env("AWS_ACCESS_KEY_ID", "testing").env("AWS_SECRET_ACCESS_KEY", "testing")
}

/// Runs `r.yaml`, expecting exit `code`; the run's status.
pub(crate) fn run(test: Test, yaml: &str, code: i32) -> (Output, Value) {
    let out = test.file("r.yaml", yaml).args(["run", "r.yaml"]).run().code(code);
    let s = process::status(&out.state_dir(), &process::latest_run(&out.state_dir()));
    (out, s)
}

pub(crate) fn outputs<'a>(s: &'a Value, id: &str) -> &'a Value {
    let st = step(s, id);
    assert_eq!(st["status"], "succeeded", "{id}: {st:#}");
    &st["outputs"]
}

/// A step's log lines (`phoenix logs RUN STEP`), joined.
pub(crate) fn log_of(out: &Output, id: &str) -> String {
    let run = process::latest_run(&out.state_dir());
    out.then().args(["logs", &run, id]).run().success().stdout().to_string()
}

#[test]
fn objects_are_put_read_listed_by_pages_and_deleted() {
    let moto = Moto::start();
    moto.s3_bucket("us-east-1", "dr-assets");
    // Not UTF-8: it can only come back as a file.
    let binary: Vec<u8> = (0..2000u32).map(|i| (i % 256) as u8).collect();
    let yaml = format!(
        r#"version: 1
name: data
steps:
  put_text:
    uses: s3.put
    with: {{ bucket: dr-assets, region: us-east-1, endpoint_url: "{url}", key: markers/failover.json, body: '{{"to": "eastus"}}' }}
  put_file:
    needs: [put_text]
    uses: s3.put
    with: {{ bucket: dr-assets, region: us-east-1, endpoint_url: "{url}", key: blobs/payload.bin, file: payload.bin }}
  get_text:
    needs: [put_file]
    uses: s3.get
    with: {{ bucket: dr-assets, region: us-east-1, endpoint_url: "{url}", key: markers/failover.json }}
  get_binary:
    needs: [get_text]
    uses: s3.get
    with: {{ bucket: dr-assets, region: us-east-1, endpoint_url: "{url}", key: blobs/payload.bin }}
  get_file:
    needs: [get_binary]
    uses: s3.get
    with: {{ bucket: dr-assets, region: us-east-1, endpoint_url: "{url}", key: blobs/payload.bin, file: out/copy.bin }}
  many:
    needs: [get_file]
    for_each: "{{{{ range(25) | list }}}}"
    max_parallel: 4
    uses: s3.put
    with: {{ bucket: dr-assets, region: us-east-1, endpoint_url: "{url}", key: "many/{{{{ item }}}}.txt", body: "object {{{{ item }}}}" }}
  list_all:
    needs: [many]
    uses: s3.list
    with: {{ bucket: dr-assets, region: us-east-1, endpoint_url: "{url}", prefix: many/, page_size: 10 }}
  list_some:
    needs: [list_all]
    uses: s3.list
    with: {{ bucket: dr-assets, region: us-east-1, endpoint_url: "{url}", prefix: many/, page_size: 10, limit: 12 }}
  delete_keys:
    needs: [list_some]
    uses: s3.delete
    with: {{ bucket: dr-assets, region: us-east-1, endpoint_url: "{url}", keys: [markers/failover.json, blobs/payload.bin, never/there.txt] }}
  delete_prefix:
    needs: [delete_keys]
    uses: s3.delete
    with: {{ bucket: dr-assets, region: us-east-1, endpoint_url: "{url}", prefix: many/ }}
  left:
    needs: [delete_prefix]
    uses: s3.list
    with: {{ bucket: dr-assets, region: us-east-1, endpoint_url: "{url}" }}
outputs:
  to: "{{{{ (steps.get_text.outputs.body | fromjson).to }}}}"
"#,
        url = moto.url()
    );
    let (out, s) = run(aws_test().file("payload.bin", &binary), &yaml, 0);

    let put = outputs(&s, "put_text");
    assert_eq!(put["url"], "s3://dr-assets/markers/failover.json");
    assert_eq!(put["size"], 16);
    assert_eq!(put["content_type"], "application/json");
    let etag = put["etag"].as_str().unwrap_or_default();
    assert!(etag.len() == 32 && !etag.contains('"'), "{put:#}");
    assert_eq!(outputs(&s, "put_file")["size"], 2000);
    assert_eq!(outputs(&s, "put_file")["content_type"], "application/octet-stream");

    let text = outputs(&s, "get_text");
    assert_eq!(text["body"], r#"{"to": "eastus"}"#);
    assert_eq!(
        (text["size"].clone(), text["etag"].clone(), text["content_type"].clone()),
        (json!(16), json!(etag), json!("application/json"))
    );
    assert!(text["last_modified"].as_str().is_some_and(|t| t.ends_with('Z')), "{text:#}");
    assert_eq!(s["outputs"]["to"], "eastus");
    let binary_out = outputs(&s, "get_binary");
    assert_eq!((binary_out["body"].clone(), binary_out["size"].clone()), (Value::Null, json!(2000)), "{binary_out:#}");
    assert!(log_of(&out, "get_binary").contains("is not UTF-8 text: `body` is null"));
    assert_eq!(outputs(&s, "get_file")["file"], "out/copy.bin");
    assert_eq!(std::fs::read(out.path().join("out/copy.bin")).unwrap(), binary);
    assert!(!out.path().join("out/copy.bin.partial").exists());

    let all = outputs(&s, "list_all");
    assert_eq!((all["count"].clone(), all["truncated"].clone()), (json!(25), json!(false)), "{all:#}");
    // "object 0" … "object 9" are 8 bytes, "object 10" … "object 24" are 9.
    assert_eq!(all["total_bytes"], 10 * 8 + 15 * 9);
    let keys: Vec<&str> = all["objects"].as_array().unwrap().iter().map(|o| o["key"].as_str().unwrap()).collect();
    assert_eq!(&keys[..3], ["many/0.txt", "many/1.txt", "many/10.txt"]);
    assert_eq!(all["objects"][0]["size"], 8);
    assert!(all["objects"][0]["etag"].is_string() && all["objects"][0]["last_modified"].is_string(), "{all:#}");
    assert!(log_of(&out, "list_all").contains("25 objects, 215 bytes, in 3 requests"));
    let some = outputs(&s, "list_some");
    assert_eq!((some["count"].clone(), some["truncated"].clone()), (json!(12), json!(true)), "{some:#}");
    assert_eq!(some["objects"].as_array().unwrap().len(), 12);

    assert_eq!(outputs(&s, "delete_keys")["deleted"], 3);
    assert_eq!(outputs(&s, "delete_prefix")["deleted"], 25);
    assert_eq!(outputs(&s, "delete_prefix")["url"], "s3://dr-assets/many/");
    assert_eq!(outputs(&s, "left")["count"], 0);
}

#[test]
fn a_file_larger_than_8_mib_goes_up_in_parts_and_comes_back_whole() {
    let moto = Moto::start();
    moto.s3_bucket("us-east-1", "dr-backups");
    // 12 MiB and a bit: a part of 8 MiB, and the rest; not text, and not the same in every
    // MiB, so that parts out of order would show.
    let size = (12 << 20) + 123;
    let data: Vec<u8> = (0..size).map(|i: usize| ((i / 4093) as u8) ^ (i as u8)).collect();
    let yaml = format!(
        r#"version: 1
name: big
steps:
  put:
    uses: s3.put
    with: {{ bucket: dr-backups, region: us-east-1, endpoint_url: "{url}", key: dumps/db.dump, file: db.dump }}
  get:
    needs: [put]
    uses: s3.get
    with: {{ bucket: dr-backups, region: us-east-1, endpoint_url: "{url}", key: dumps/db.dump, file: back/db.dump }}
"#,
        url = moto.url()
    );
    let (out, s) = run(aws_test().file("db.dump", &data), &yaml, 0);
    let put = outputs(&s, "put");
    assert_eq!((put["size"].clone(), put["parts"].clone()), (json!(size), json!(2)), "{put:#}");
    assert!(put["etag"].as_str().is_some_and(|e| e.ends_with("-2")), "a multipart ETag: {put:#}");
    assert_eq!(put["content_type"], "application/octet-stream");
    let log = log_of(&out, "put");
    assert!(log.contains("in 2 parts of 8.0 MiB"), "{log}");
    assert_eq!(outputs(&s, "get")["size"], size);
    assert!(std::fs::read(out.path().join("back/db.dump")).unwrap() == data, "the object read back differs from the file");
    // Nothing left half-uploaded.
    assert_eq!(moto.s3_multipart_uploads("us-east-1", "dr-backups"), 0);
}

#[test]
fn a_multipart_upload_stopped_by_its_step_timeout_is_aborted() {
    let moto = Moto::start();
    moto.s3_bucket("us-east-1", "dr-backups");
    // Every answer takes 700 ms: starting the upload and its parts outlast the step's 1.2 s.
    moto.delay(0.7);
    let yaml = format!(
        r#"version: 1
name: big
steps:
  put:
    uses: s3.put
    timeout: 1200ms
    with: {{ bucket: dr-backups, region: us-east-1, endpoint_url: "{url}", key: dumps/db.dump, file: db.dump }}
"#,
        url = moto.url()
    );
    let (_, s) = run(aws_test().file("db.dump", vec![7u8; (9 << 20) + 1]), &yaml, 1);
    let put = step(&s, "put");
    assert!(put["error"].as_str().is_some_and(|e| e.starts_with("timed out after")), "{put:#}");
    moto.delay(0.0);
    assert_eq!(moto.s3_multipart_uploads("us-east-1", "dr-backups"), 0, "the upload was not aborted");
}

#[test]
fn the_endpoint_can_come_from_aws_endpoint_url_and_addressing_is_by_path_there() {
    let moto = Moto::start();
    moto.s3_bucket("us-east-1", "dr-state");
    // `localhost`, not an IP address: with the bucket in the host name, `dr-state.localhost`
    // would not resolve, so only path-style addressing reaches moto.
    let endpoint = moto.url().replace("127.0.0.1", "localhost");
    let yaml = r#"version: 1
name: env
steps:
  put:
    uses: s3.put
    with: { bucket: dr-state, key: a.txt, body: hello }
  get:
    needs: [put]
    uses: s3.get
    with: { bucket: dr-state, key: a.txt }
  virtual_host:
    needs: [get]
    uses: s3.get
    with: { bucket: dr-state, key: a.txt, force_path_style: false, timeout: 5s }
"#;
    let test = aws_test().env("AWS_ENDPOINT_URL", &endpoint).env("AWS_REGION", "us-east-1");
    let (_, s) = run(test, yaml, 1);
    assert_eq!(outputs(&s, "get")["body"], "hello");
    let virtual_host = step(&s, "virtual_host");
    assert_eq!(virtual_host["status"], "failed", "{virtual_host:#}");
    assert!(virtual_host["error"].as_str().unwrap_or_default().starts_with("reading s3://dr-state/a.txt failed: "), "{virtual_host:#}");
}

#[test]
fn a_closed_port_fails_the_step_with_the_reason() {
    let closed = format!("http://127.0.0.1:{}", free_port());
    let yaml = format!(
        r#"version: 1
name: closed
steps:
  list:
    uses: s3.list
    with: {{ bucket: dr-assets, region: us-east-1, endpoint_url: "{closed}", timeout: 3s }}
  dns:
    uses: route53.get
    with: {{ zone_id: Z1, name: app.example.com, type: A, endpoint_url: "{closed}", timeout: 3s }}
"#
    );
    let (_, s) = run(aws_test(), &yaml, 1);
    for (id, what) in [("list", "listing s3://dr-assets/ failed: "), ("dns", "reading app.example.com. A in hosted zone Z1 failed: ")] {
        let st = step(&s, id);
        assert_eq!(st["status"], "failed", "{st:#}");
        let error = st["error"].as_str().unwrap_or_default();
        assert!(error.starts_with(what) && error.to_lowercase().contains("connection refused"), "{id}: {error}");
    }
}

#[test]
fn bad_inputs_are_refused_by_validate() {
    let yaml = r#"version: 1
name: bad
steps:
  put:
    uses: s3.put
    with: { bucket: "s3://dr-assets/x", key: "" }
  del:
    uses: s3.delete
    with: { bucket: "", prefix: "" }
  list:
    uses: s3.list
    with: { bucket: dr-assets, limit: 0, page_size: 5000 }
  dns:
    uses: route53.upsert
    with: { zone_id: Z1, name: app.example.com, type: AA, ttl: 0, values: [] }
  dns_a:
    uses: route53.upsert
    with: { zone_id: Z1, name: app.example.com, type: A, ttl: 60, values: [not-an-ip, "{{ params.ip }}"], wait: false, wait_timeout: 1m }
  read:
    uses: route53.get
    with: { zone_id: "", name: app.example.com, type: A, valuse: [] }
params:
  ip: { type: string, default: 192.0.2.1 }
"#;
    let out = Test::new().file("r.yaml", yaml).args(["validate", "r.yaml"]).run().code(2);
    for needle in [
        "`bucket` is a URL (`s3://dr-assets/x`): write the bucket's name alone",
        "`bucket: dr-assets`",
        "`key` is empty",
        "`s3.put` needs `body` or `file`",
        "`bucket` is empty",
        "`prefix` is empty: every object in the bucket would be deleted",
        "`limit` is 0",
        "must be at most 1000",
        "`AA` is not a record type Route 53 serves",
        "`ttl` is 0",
        "`values` is empty",
        "`not-an-ip` is not an IPv4 address",
        "`wait_timeout` is set but `wait` is false",
        "`zone_id` is empty",
        "`route53.get` has no input `valuse`",
    ] {
        assert!(out.stderr().contains(needle), "no {needle:?} in\n{}", out.stderr());
    }
}

#[test]
fn plugins_describes_the_data_actions() {
    for (name, input, output) in [
        ("s3.put", "force_path_style", "etag"),
        ("s3.get", "file", "body"),
        ("s3.list", "page_size", "total_bytes"),
        ("s3.delete", "prefix", "deleted"),
        ("route53.upsert", "wait_timeout", "previous"),
        ("route53.get", "zone_id", "exists"),
        ("route53.delete", "values", "deleted"),
    ] {
        Test::new()
            .args(["plugins", name])
            .run()
            .success()
            .stdout_contains(&format!("  {input} "))
            .stdout_contains(&format!("  {output} "))
            .stdout_contains("Example:");
    }
}
