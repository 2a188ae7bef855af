//! What `azure_blob.*` says when it cannot work: a closed port, a missing container or blob, a
//! wrong key, a server that never answers, inputs `validate` refuses.

use super::*;

#[test]
fn a_closed_port_fails_the_step_with_a_clear_message() {
    let closed = format!("http://127.0.0.1:{}/devstoreaccount1", free_port());
    let yaml = format!(
        r#"version: 1
name: azure-closed
steps:
  put:
    uses: azure_blob.put
    with: {{ use_emulator: true, endpoint: "{closed}", container: dr-assets, name: x.txt, body: x, timeout: 5s }}
"#
    );
    let out = test().file("r.yaml", yaml).args(["run", "r.yaml"]).run().code(1);
    let e = error(&status(&out), "put");
    assert!(e.contains(&format!("uploading blob x.txt to container dr-assets (account devstoreaccount1 at {closed}) failed: ")), "{e}");
    assert!(e.to_lowercase().contains("connection refused"), "{e}");
    out.then().args(["status", &process::latest_run(&out.state_dir())]).run().stdout_contains("failed: Connection refused");
}

#[test]
fn missing_containers_and_blobs_and_a_wrong_key_are_named() {
    let azurite = Azurite::start();
    let wrong_key = "V3JvbmdLZXlXcm9uZ0tleVdyb25nS2V5V3JvbmdLZXk=";
    let endpoint = azurite.endpoint();
    let yaml = format!(
        r#"version: 1
name: azure-errors
secrets:
  storage: {{ env: DR_STORAGE }}
  wrong: {{ env: DR_WRONG_KEY }}
steps:
  no_container:
    continue_on_error: true
    uses: azure_blob.put
    with: {{ {FROM_SECRET}, container: not-there, name: a.txt, body: a }}
  make:
    continue_on_error: true
    uses: azure_blob.put
    with: {{ {FROM_SECRET}, container: here, name: a.txt, body: a, create_container: true }}
  no_blob:
    continue_on_error: true
    needs: [make]
    uses: azure_blob.get
    with: {{ {FROM_SECRET}, container: here, name: not-there.txt }}
  wrong_key:
    continue_on_error: true
    uses: azure_blob.list
    with: {{ account: devstoreaccount1, access_key: "{{{{ secrets.wrong }}}}", endpoint: "{endpoint}", container: here }}
  no_credentials:
    continue_on_error: true
    uses: azure_blob.list
    with: {{ endpoint: "{endpoint}", container: here }}
"#
    );
    let out = test()
        .file("r.yaml", yaml)
        .env("DR_STORAGE", azurite.connection_string())
        .env("DR_WRONG_KEY", wrong_key)
        .args(["run", "r.yaml"])
        .run();
    let s = status(&out);
    let e = error(&s, "no_container");
    assert!(e.contains("404 ContainerNotFound") && e.contains("set `create_container: true`"), "{e}");
    let e = error(&s, "no_blob");
    assert!(e.contains("reading blob not-there.txt in container here") && e.contains("404 BlobNotFound"), "{e}");
    let e = error(&s, "wrong_key");
    assert!(e.contains("403 AuthorizationFailure"), "{e}");
    let e = error(&s, "no_credentials");
    assert!(e.contains("no Azure storage credentials") && e.contains("AZURE_STORAGE_CONNECTION_STRING"), "{e}");
    // A client error is not retried: one attempt each.
    assert_eq!(step(&s, "no_container")["attempts"], json!(1), "{:#}", step(&s, "no_container"));
    never_shown(&out, &[azurite::KEY, wrong_key]);
}

#[test]
fn a_silent_server_is_given_up_on_at_the_timeout_and_a_step_timeout_stops_the_call() {
    // Connections are accepted by the kernel and never answered.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://127.0.0.1:{}/devstoreaccount1", silent.local_addr().unwrap().port());
    let yaml = format!(
        r#"version: 1
name: azure-silent
steps:
  call_timeout:
    continue_on_error: true
    uses: azure_blob.list
    with: {{ use_emulator: true, endpoint: "{endpoint}", container: c-1, timeout: 1s }}
  step_timeout:
    continue_on_error: true
    uses: azure_blob.list
    timeout: 1s
    with: {{ use_emulator: true, endpoint: "{endpoint}", container: c-2, timeout: 10m }}
"#
    );
    let started = Instant::now();
    let out = test().file("r.yaml", yaml).args(["run", "r.yaml"]).run();
    assert!(started.elapsed() < Duration::from_secs(60), "the run took {:?}", started.elapsed());
    let s = status(&out);
    let e = error(&s, "call_timeout");
    assert!(e.contains("listing container c-1") && e.contains("no answer within 1s"), "{e}");
    let st = step(&s, "step_timeout");
    assert_ne!(st["status"], "succeeded", "{st:#}");
    assert!(st["error"].as_str().is_some_and(|e| e.contains("timed out") || e.contains("stopped")), "{st:#}");
}

#[test]
fn validate_reports_bad_inputs_before_anything_runs() {
    let yaml = r#"version: 1
name: azure-invalid
steps:
  empty:
    uses: azure_blob.list
    with: { use_emulator: true, container: "" }
  upper:
    uses: azure_blob.get
    with: { use_emulator: true, container: DR_Assets, name: a.txt }
  short:
    uses: azure_blob.put
    with: { use_emulator: true, container: ab, name: a.txt, body: a, file: a.txt }
  literal_key:
    uses: azure_blob.list
    with: { account: prod, access_key: "c2VjcmV0LWtleQ==", container: dr-assets }
  everything:
    uses: azure_blob.delete
    with: { use_emulator: true, container: dr-assets, prefix: "" }
  typo:
    uses: azure_blob.list
    with: { use_emulator: true, container: dr-assets, prefx: logs/ }
"#;
    let out = test().file("r.yaml", yaml).args(["validate", "r.yaml"]).run().code(2);
    for needle in [
        "`container` is empty",
        "`DR_Assets` is not a container name: it has an uppercase letter",
        "`ab` is not a container name: it has 2 characters",
        "3 to 63 lowercase letters, digits and hyphens",
        "`azure_blob.put` takes `body` or `file`, not both",
        "`access_key` is written in the runbook",
        "`prefix` is empty: it would delete every blob in the container",
        "did you mean `prefix`?",
    ] {
        assert!(out.stderr().contains(needle), "no {needle:?} in\n{}", out.stderr());
    }
}
