//! `azure_blob.put`, `.get`, `.list` and `.delete` through `phoenix run`, against Azurite
//! (`tests/support/azurite.rs`), a closed port and a server that never answers.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::azurite::{self, Azurite};
use crate::postgres::free_port;
use crate::process::{self, step};
use crate::support::{Output, Test};

/// A test with none of the machine's Azure settings: only what the test gives is used.
fn test() -> Test {
    let mut t = Test::new();
    for k in ["AZURE_STORAGE_CONNECTION_STRING", "AZURE_STORAGE_ACCOUNT", "AZURE_STORAGE_KEY", "AZURE_STORAGE_SAS_TOKEN"] {
        t = t.env(k, "");
    }
    t
}

/// The newest run's status.
fn status(out: &Output) -> Value {
    process::status(&out.state_dir(), &process::latest_run(&out.state_dir()))
}

fn outputs<'a>(s: &'a Value, id: &str) -> &'a Value {
    let st = step(s, id);
    assert_eq!(st["status"], "succeeded", "{id}: {st:#}");
    &st["outputs"]
}

fn error(s: &Value, id: &str) -> String {
    let st = step(s, id);
    assert_eq!(st["status"], "failed", "{id}: {st:#}");
    st["error"].as_str().unwrap_or_default().to_string()
}

/// Asserts that no text `phoenix status` and `phoenix logs` show for the newest run (as text
/// and as JSON) contains any of `secrets`.
fn never_shown(out: &Output, secrets: &[&str]) {
    let run = process::latest_run(&out.state_dir());
    for args in [vec!["status", &run], vec!["status", &run, "--output", "json"], vec!["logs", &run], vec!["logs", &run, "--output", "json"]]
    {
        let shown = out.then().args(&args).run();
        for secret in secrets {
            assert!(!shown.stdout().contains(secret), "`phoenix {}` shows a credential:\n{}", args.join(" "), shown.stdout());
            assert!(!shown.stderr().contains(secret), "`phoenix {}` shows a credential:\n{}", args.join(" "), shown.stderr());
        }
    }
}

/// The `with` settings for Azurite through the `storage` secret.
const FROM_SECRET: &str = "connection_string: \"{{ secrets.storage }}\"";

#[test]
fn put_list_get_delete_round_trip() {
    let azurite = Azurite::start();
    // Over 8 MiB goes up in blocks; the small file is not UTF-8.
    let big: Vec<u8> = (0..9 * 1024 * 1024 + 4321).map(|i: u32| (i % 251) as u8).collect();
    let small = [0xffu8, 0xfe, 0x00, 0x01];
    let yaml = format!(
        r#"version: 1
name: azure-blob
secrets:
  storage: {{ env: DR_STORAGE }}
steps:
  put_text:
    uses: azure_blob.put
    with: {{ {FROM_SECRET}, container: dr-assets, name: reports/hello.txt, body: "hello from phoenix", create_container: true }}
  put_big:
    needs: [put_text]
    uses: azure_blob.put
    with: {{ {FROM_SECRET}, container: dr-assets, name: dumps/big.bin, file: big.bin }}
  put_small:
    needs: [put_text]
    uses: azure_blob.put
    with: {{ {FROM_SECRET}, container: dr-assets, name: dumps/small.bin, file: small.bin, content_type: application/x-test }}
  list:
    needs: [put_big, put_small]
    uses: azure_blob.list
    with: {{ {FROM_SECRET}, container: dr-assets }}
  get_text:
    needs: [list]
    uses: azure_blob.get
    with: {{ {FROM_SECRET}, container: dr-assets, name: reports/hello.txt }}
  get_small:
    needs: [list]
    uses: azure_blob.get
    with: {{ {FROM_SECRET}, container: dr-assets, name: dumps/small.bin }}
  get_big:
    needs: [list]
    uses: azure_blob.get
    with: {{ {FROM_SECRET}, container: dr-assets, name: dumps/big.bin, file: downloads/big.bin }}
  delete:
    needs: [get_text, get_small, get_big]
    uses: azure_blob.delete
    with: {{ {FROM_SECRET}, container: dr-assets, names: [reports/hello.txt, dumps/big.bin, dumps/never-was.bin] }}
  after:
    needs: [delete]
    uses: azure_blob.list
    with: {{ {FROM_SECRET}, container: dr-assets }}
"#
    );
    let out = test()
        .file("r.yaml", yaml)
        .file("big.bin", &big)
        .file("small.bin", small)
        .env("DR_STORAGE", azurite.connection_string())
        .args(["run", "r.yaml"])
        .run()
        .success();
    let s = status(&out);

    let put_text = outputs(&s, "put_text");
    assert_eq!(put_text["size"], 18);
    assert_eq!(put_text["container_created"], true);
    assert_eq!(put_text["url"], format!("{}/dr-assets/reports/hello.txt", azurite.endpoint()));
    let put_big = outputs(&s, "put_big");
    assert_eq!(put_big["size"], big.len());
    assert_eq!(put_big["container_created"], false);

    let list = outputs(&s, "list");
    assert_eq!(list["count"], 3, "{list:#}");
    assert_eq!(list["total_bytes"], 18 + big.len() + small.len());
    assert_eq!(list["truncated"], false);
    let names: Vec<&str> = list["blobs"].as_array().unwrap().iter().map(|b| b["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["dumps/big.bin", "dumps/small.bin", "reports/hello.txt"]);
    // What the list says matches what each upload was told, the block upload's MD5 included.
    for (i, put) in [(0, put_big), (2, put_text)] {
        let listed = &list["blobs"][i];
        assert_eq!(
            (&listed["etag"], &listed["content_md5"], &listed["size"]),
            (&put["etag"], &put["content_md5"], &put["size"]),
            "{listed:#}"
        );
        assert!(listed["last_modified"].as_str().is_some_and(|t| t.ends_with('Z')), "{listed:#}");
    }

    let get_text = outputs(&s, "get_text");
    assert_eq!(get_text["body"], "hello from phoenix");
    assert_eq!(get_text["content_type"], "text/plain; charset=utf-8");
    assert_eq!(get_text["etag"], put_text["etag"]);
    assert_eq!(get_text["content_md5"], put_text["content_md5"]);
    let get_small = outputs(&s, "get_small");
    assert_eq!((&get_small["body"], &get_small["size"]), (&Value::Null, &json!(4)), "not UTF-8: the size only");
    assert_eq!(get_small["content_type"], "application/x-test");
    let get_big = outputs(&s, "get_big");
    assert_eq!((&get_big["body"], &get_big["file"]), (&Value::Null, &json!("downloads/big.bin")));
    assert!(std::fs::read(out.path().join("downloads/big.bin")).unwrap() == big, "the download differs from the upload");
    assert!(!out.path().join("downloads/big.bin.partial").exists());

    let delete = outputs(&s, "delete");
    assert_eq!(delete["deleted"], 2);
    assert_eq!(delete["names"], json!(["dumps/big.bin", "reports/hello.txt"]));
    assert_eq!(delete["missing"], json!(["dumps/never-was.bin"]));
    assert_eq!(outputs(&s, "after")["count"], 1);
    never_shown(&out, &[azurite::KEY]);
}

#[test]
fn list_follows_every_page_and_delete_takes_a_prefix() {
    let azurite = Azurite::start();
    let yaml = format!(
        r#"version: 1
name: azure-pages
secrets:
  storage: {{ env: DR_STORAGE }}
steps:
  other:
    uses: azure_blob.put
    with: {{ {FROM_SECRET}, container: pages, name: other/keep.txt, body: keep, create_container: true }}
  put:
    needs: [other]
    uses: azure_blob.put
    for_each: [0, 1, 2, 3, 4, 5, 6]
    with: {{ {FROM_SECRET}, container: pages, name: "page/{{{{ item }}}}.txt", body: "blob {{{{ item }}}}" }}
  all:
    needs: [put]
    uses: azure_blob.list
    with: {{ {FROM_SECRET}, container: pages, prefix: page/, page_size: 3 }}
  limited:
    needs: [put]
    uses: azure_blob.list
    with: {{ {FROM_SECRET}, container: pages, page_size: 2, limit: 5 }}
  exact:
    needs: [put]
    uses: azure_blob.list
    with: {{ {FROM_SECRET}, container: pages, prefix: page/, limit: 7 }}
  delete:
    needs: [all, limited, exact]
    uses: azure_blob.delete
    with: {{ {FROM_SECRET}, container: pages, prefix: page/ }}
  after:
    needs: [delete]
    uses: azure_blob.list
    with: {{ {FROM_SECRET}, container: pages }}
"#
    );
    let out = test().file("r.yaml", yaml).env("DR_STORAGE", azurite.connection_string()).args(["run", "r.yaml"]).run().success();
    let s = status(&out);
    let all = outputs(&s, "all");
    assert_eq!((&all["count"], &all["pages"], &all["truncated"]), (&json!(7), &json!(3), &json!(false)), "{all:#}");
    assert_eq!(all["total_bytes"], 7 * 6);
    let names: Vec<&str> = all["blobs"].as_array().unwrap().iter().map(|b| b["name"].as_str().unwrap()).collect();
    assert_eq!(names, (0..7).map(|i| format!("page/{i}.txt")).collect::<Vec<_>>());
    let limited = outputs(&s, "limited");
    assert_eq!((&limited["count"], &limited["pages"], &limited["truncated"]), (&json!(5), &json!(3), &json!(true)), "{limited:#}");
    let exact = outputs(&s, "exact");
    assert_eq!((&exact["count"], &exact["truncated"]), (&json!(7), &json!(false)), "{exact:#}");
    let delete = outputs(&s, "delete");
    assert_eq!((&delete["deleted"], &delete["missing"]), (&json!(7), &json!([])), "{delete:#}");
    let after = outputs(&s, "after");
    assert_eq!(after["blobs"].as_array().unwrap().iter().map(|b| b["name"].clone()).collect::<Vec<_>>(), [json!("other/keep.txt")]);
}

#[test]
fn credentials_from_azure_storage_connection_string_alone() {
    let azurite = Azurite::start();
    let yaml = r#"version: 1
name: azure-env
steps:
  put:
    uses: azure_blob.put
    with: { container: from-env, name: a.txt, body: "from the environment", create_container: true }
  get:
    needs: [put]
    uses: azure_blob.get
    with: { container: from-env, name: a.txt }
"#;
    let out = test()
        .file("r.yaml", yaml)
        .env("AZURE_STORAGE_CONNECTION_STRING", azurite.connection_string())
        .args(["run", "r.yaml"])
        .run()
        .success();
    assert_eq!(outputs(&status(&out), "get")["body"], "from the environment");
    never_shown(&out, &[azurite::KEY]);
}

#[test]
fn a_sas_token_from_a_secret_is_used_and_never_shown() {
    let azurite = Azurite::start();
    let sas = azurite.account_sas();
    let sig = sas.split('&').find_map(|p| p.strip_prefix("sig=")).unwrap().to_string();
    let closed = format!("http://127.0.0.1:{}/{}", free_port(), azurite::ACCOUNT);
    let yaml = format!(
        r#"version: 1
name: azure-sas
secrets:
  sas: {{ env: DR_SAS }}
steps:
  put:
    uses: azure_blob.put
    with: {{ sas_token: "{{{{ secrets.sas }}}}", endpoint: "{}", container: with-sas, name: s.txt, body: signed, create_container: true }}
  list:
    needs: [put]
    uses: azure_blob.list
    with: {{ sas_token: "{{{{ secrets.sas }}}}", endpoint: "{}", container: with-sas }}
  closed:
    needs: [list]
    uses: azure_blob.list
    with: {{ sas_token: "{{{{ secrets.sas }}}}", endpoint: "{closed}", container: with-sas, timeout: 5s }}
"#,
        azurite.endpoint(),
        azurite.endpoint()
    );
    let out = test().file("r.yaml", &yaml).env("DR_SAS", &sas).args(["run", "r.yaml"]).run().code(1);
    let s = status(&out);
    assert_eq!(outputs(&s, "list")["count"], 1);
    let e = error(&s, "closed");
    assert!(e.contains(&format!("listing container with-sas (account devstoreaccount1 at {closed}) failed")), "{e}");
    never_shown(&out, &[&sas, &sig]);
    // The run's own stderr, with every library's debug and trace lines asked for: azure_core
    // logs each request's URL (the SAS in its query) at debug; it is held at info.
    for level in ["debug", "trace"] {
        let t = test().file("r.yaml", yaml.replace("with-sas", &format!("with-sas-{level}"))).env("DR_SAS", &sas).env("RUST_LOG", level);
        let out = t.args(["--log-format", "json", "run", "r.yaml"]).run().code(1);
        assert!(out.stderr().lines().count() > 10, "RUST_LOG={level} logs: {}", out.stderr());
        assert!(!out.stderr().contains(&sig) && !out.stdout().contains(&sig), "RUST_LOG={level} shows the SAS:\n{}", out.stderr());
    }
}

mod failures;
