//! Tracing (issue 19): a run as one OpenTelemetry trace, exported over OTLP/HTTP to a real
//! receiver that decodes it with the official `opentelemetry-proto` messages
//! (`support/otlp_receiver.py`); a crash and a resume as one trace; no secret in any
//! attribute; `--log-format json` lines that parse and carry the run's and the step's ids.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::process::{self, Background};
use crate::stub_http::{Reply, Stub};
use crate::support::{Test, repo_root};

mod calls;

/// The test receiver on a free loopback port; stopped when dropped.
struct Receiver {
    child: Child,
    port: u16,
    spans: PathBuf,
}

impl Receiver {
    fn start(dir: &Path) -> Receiver {
        let venv = std::env::var_os("PHOENIX_VENV").map_or_else(|| repo_root().join(".tools/venv"), PathBuf::from);
        let python = venv.join("bin/python");
        assert!(
            python.exists(),
            "{} is missing: run `make deps` (it installs opentelemetry-proto into {})",
            python.display(),
            venv.display()
        );
        let port_file = dir.join("otlp.port");
        let spans = dir.join("spans.jsonl");
        let child = Command::new(python)
            .arg(repo_root().join("tests/support/otlp_receiver.py"))
            .arg(&port_file)
            .arg(&spans)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the OTLP receiver");
        let mut r = Receiver { child, port: 0, spans };
        process::wait_for("the OTLP receiver to listen", Duration::from_secs(30), || port_file.exists());
        r.port = std::fs::read_to_string(&port_file).unwrap().trim().parse().expect("a port");
        r
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Every span received so far.
    fn spans(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.spans)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("a JSON line from the receiver"))
            .collect()
    }

    /// Waits until a span matches `what`, then returns every span.
    fn wait_for(&self, what: &str, f: impl Fn(&Value) -> bool) -> Vec<Value> {
        process::wait_for(what, Duration::from_secs(30), || self.spans().iter().any(&f));
        self.spans()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn attr<'a>(s: &'a Value, k: &str) -> &'a Value {
    &s["attributes"][k]
}

fn named<'a>(spans: &'a [Value], name: &str) -> Vec<&'a Value> {
    spans.iter().filter(|s| s["name"] == name).collect()
}

fn one<'a>(spans: &'a [Value], name: &str) -> &'a Value {
    let found = named(spans, name);
    assert_eq!(found.len(), 1, "one span `{name}` expected: {spans:#?}");
    found[0]
}

fn by_id(spans: &[Value]) -> HashMap<String, &Value> {
    spans.iter().map(|s| (s["span_id"].as_str().unwrap().to_string(), s)).collect()
}

/// OTLP's status codes.
const STATUS_OK: i64 = 1;
const STATUS_ERROR: i64 = 2;

const CHILD: &str = r#"version: 1
name: child
steps:
  work:
    uses: exec
    with: { cmd: [echo, done] }
"#;

const PARENT: &str = r#"version: 1
name: parent
steps:
  flaky:
    uses: exec
    retry: { attempts: 2, backoff: fixed, delay: 10ms }
    with: { script: 'test -f marker || { touch marker; exit 3; }' }
  sub:
    needs: [flaky]
    uses: runbook
    with: { file: child.yaml }
"#;

#[test]
fn a_run_with_a_retry_and_a_child_run_is_one_trace() {
    let setup = Test::new();
    let rx = Receiver::start(setup.path());
    let out = setup
        .file("child.yaml", CHILD)
        .file("parent.yaml", PARENT)
        .env("PHOENIX_OTLP_ENDPOINT", rx.endpoint())
        .args(["run", "parent.yaml"])
        .run()
        .success();
    let parent_id = process::run_of(&out.state_dir(), "parent");
    let child_id = process::run_of(&out.state_dir(), "child");
    // Flushed at exit: the root span is there once the process ended.
    let spans = rx.wait_for("the parent's run span", |s| s["name"] == "run parent");
    let ids = by_id(&spans);
    let trace = spans[0]["trace_id"].as_str().unwrap();
    assert!(spans.iter().all(|s| s["trace_id"] == trace), "one trace: {spans:#?}");
    assert_eq!(spans[0]["resource"]["service.name"], "phoenix");

    let run = one(&spans, "run parent");
    assert_eq!(run["parent_span_id"], "", "the run is the root");
    assert_eq!(attr(run, "run_id"), parent_id.as_str());
    assert_eq!(attr(run, "runbook"), "parent");
    assert_eq!(attr(run, "outcome"), "succeeded");
    assert_eq!(run["status"], STATUS_OK);

    // The retried step: one step span, two attempt spans under it.
    let flaky = one(&spans, "step flaky");
    assert_eq!(flaky["parent_span_id"], run["span_id"]);
    assert_eq!(attr(flaky, "action"), "exec");
    let under_flaky: Vec<&Value> = spans.iter().filter(|s| s["parent_span_id"] == flaky["span_id"]).collect();
    assert_eq!(under_flaky.len(), 2, "two attempts of `flaky`: {spans:#?}");
    let first = under_flaky.iter().find(|s| s["name"] == "attempt 1").unwrap();
    let second = under_flaky.iter().find(|s| s["name"] == "attempt 2").unwrap();
    assert_eq!((attr(first, "outcome"), first["status"].as_i64()), (&Value::from("failed"), Some(STATUS_ERROR)));
    assert_eq!(attr(second, "outcome"), "succeeded");

    // The child run: a span of the same trace, under the attempt of the step that started it.
    let sub = one(&spans, "step sub");
    let child = one(&spans, "run child");
    assert_eq!(attr(child, "run_id"), child_id.as_str());
    assert_eq!(attr(child, "parent_run"), parent_id.as_str());
    let started_by = ids[child["parent_span_id"].as_str().unwrap()];
    assert_eq!(started_by["name"], "attempt 1");
    assert_eq!(started_by["parent_span_id"], sub["span_id"], "the child run is under the step `sub`");
    let work = one(&spans, "step work");
    assert_eq!(work["parent_span_id"], child["span_id"]);
}

const CRASHING: &str = r#"version: 1
name: crashing
steps:
  first:
    uses: exec
    with: { script: "echo first >> ledger" }
  long:
    needs: [first]
    uses: exec
    idempotent: true
    with: { script: 'if [ ! -e started ]; then touch started; sleep 1000; fi' }
  last:
    needs: [long]
    uses: exec
    with: { script: "echo last >> ledger" }
"#;

#[test]
fn a_crash_and_its_resume_are_one_trace() {
    let setup = Test::new().file("r.yaml", CRASHING).args(["validate", "r.yaml"]).run().success();
    let rx = Receiver::start(setup.path());
    // Export every 50 ms, so that `first`'s span leaves before the crash.
    let bg = Background::spawn(
        setup
            .then()
            .env("PHOENIX_OTLP_ENDPOINT", rx.endpoint())
            .env("OTEL_BSP_SCHEDULE_DELAY", "50")
            .args(["run", "r.yaml", "--no-wait"])
            .command(),
        setup.path(),
    );
    process::wait_for("`long` to start", Duration::from_secs(30), || setup.path().join("started").exists());
    let before = rx.wait_for("`first`'s span before the crash", |s| s["name"] == "step first");
    process::crash_tree(bg.pid());
    drop(bg);
    let run = process::latest_run(&setup.state_dir());
    setup.then().env("PHOENIX_OTLP_ENDPOINT", rx.endpoint()).args(["resume", &run]).run().success();
    let spans = rx.wait_for("the resumed run's span", |s| s["name"] == "run crashing" && s["attributes"]["run_attempt"] == "2");

    let first = before.iter().find(|s| s["name"] == "step first").unwrap();
    let trace = first["trace_id"].as_str().unwrap();
    assert!(spans.iter().all(|s| s["trace_id"] == trace), "the resume continues the trace: {spans:#?}");
    // The first process's run span was never ended (SIGKILL): its id, stored with the run,
    // is the parent of both `first` and the resumed run's span.
    let resumed = spans.iter().find(|s| s["name"] == "run crashing").unwrap();
    assert_eq!(attr(resumed, "run_id"), run.as_str());
    assert_eq!(resumed["parent_span_id"], first["parent_span_id"], "one tree across the crash: {spans:#?}");
    for step in ["step long", "step last"] {
        let s = spans.iter().find(|s| s["name"] == step && s["parent_span_id"] == resumed["span_id"]);
        assert!(s.is_some(), "`{step}` under the resumed run: {spans:#?}");
    }
}

const SECRET: &str = "tr4ce-S3cret/v+l=ue";

#[test]
fn no_secret_reaches_a_span_or_a_log_line() {
    let api = Stub::start(|_| Reply::json("{}"));
    let yaml = format!(
        r#"version: 1
name: secretive
secrets:
  token: {{ env: TRC_TOKEN }}
steps:
  use:
    uses: exec
    with: {{ script: 'printf %s "{{{{ secrets.token }}}}" > used; echo "token={{{{ secrets.token }}}}"; exit 0' }}
  call:
    uses: http
    with:
      url: "{url}"
      headers: {{ Authorization: "Bearer {{{{ secrets.token }}}}" }}
  fail:
    needs: [use, call]
    uses: exec
    with: {{ script: 'echo "bad {{{{ secrets.token }}}}" >&2; exit 1' }}
"#,
        url = api.url("/x")
    );
    let setup = Test::new();
    let rx = Receiver::start(setup.path());
    let out = setup
        .file("s.yaml", yaml)
        .env("TRC_TOKEN", SECRET)
        .env("PHOENIX_OTLP_ENDPOINT", rx.endpoint())
        .args(["run", "s.yaml", "--log-format", "json", "--log-level", "trace"])
        .run()
        .code(1);
    assert_eq!(std::fs::read_to_string(out.path().join("used")).unwrap(), SECRET, "the step got the secret");
    assert!(api.requests().iter().any(|r| r.headers.get("authorization").is_some_and(|h| h.contains(SECRET))), "the request carried it");
    rx.wait_for("the run span", |s| s["name"] == "run secretive");
    let received = std::fs::read_to_string(&rx.spans).unwrap();
    let forms = [SECRET.to_string(), base64(SECRET), SECRET.replace('/', "%2F").replace('+', "%2B").replace('=', "%3D")];
    for form in &forms {
        assert!(!received.contains(form.as_str()), "the secret ({form}) in an exported span:\n{received}");
        assert!(!out.stderr().contains(form.as_str()), "the secret ({form}) in a log line:\n{}", out.stderr());
    }
    // What would have held it is there, redacted.
    assert!(received.contains("step fail"), "{received}");
}

fn base64(s: &str) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let b = s.as_bytes();
    let mut out = String::new();
    for c in b.chunks(3) {
        let n = (u32::from(c[0]) << 16) | (u32::from(*c.get(1).unwrap_or(&0)) << 8) | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() { out.push(T[(n >> (18 - 6 * i)) as usize & 63] as char) } else { out.push('=') }
        }
    }
    out
}

#[test]
fn json_log_lines_parse_and_carry_the_run_and_the_step() {
    let out = Test::new()
        .file("child.yaml", CHILD)
        .file("parent.yaml", PARENT)
        .args(["run", "parent.yaml", "--log-format", "json", "--log-level", "info"])
        .run()
        .success();
    let run = process::run_of(&out.state_dir(), "parent");
    let lines: Vec<Value> = out
        .stderr()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("a stderr line that is not JSON ({e}): {l}")))
        .collect();
    assert!(lines.iter().all(|l| l["timestamp"].is_string() && l["level"].is_string() && l["message"].is_string()), "{lines:#?}");
    let flaky: Vec<&Value> = lines.iter().filter(|l| l["step"] == "flaky").collect();
    assert!(flaky.len() >= 3, "running, retrying, succeeded: {lines:#?}");
    assert!(flaky.iter().all(|l| l["run_id"] == run.as_str()), "{flaky:#?}");
    assert!(flaky.iter().any(|l| l["message"].as_str().unwrap().contains("retrying")), "{flaky:#?}");
    // The child run's lines carry the child's id, not the parent step's fields.
    let work: Vec<&Value> = lines.iter().filter(|l| l["step"] == "work").collect();
    assert!(!work.is_empty() && work.iter().all(|l| l["run_id"] != run.as_str() && l["action"].is_null()), "{work:#?}");
}

#[test]
fn text_logs_keep_the_terminal_as_it_was() {
    Test::new().file("child.yaml", CHILD).file("parent.yaml", PARENT).args(["run", "parent.yaml"]).run().success().stderr_lacks(" INFO ");
}

#[test]
fn serve_exports_to_the_endpoint_of_its_config_and_logs_json() {
    use crate::serve_support::{ONCALL, Server, TOKENS};
    let t = Test::new().file("runbooks/simple.yaml", "version: 1\nname: simple\nsteps:\n  one:\n    uses: noop\n");
    let rx = Receiver::start(t.path());
    let header = "tenant-h3ader-value";
    let t = t.file("serve.yaml", format!("{TOKENS}otlp:\n  endpoint: {}\n  headers: {{ x-tenant: {header} }}\n", rx.endpoint()));
    let mut server = Server::start_with(t.path(), &["--log-format", "json", "--log-level", "info"]);
    let (status, v) = server.call("POST", "/api/v1/runs", Some(ONCALL), Some(r#"{"runbook": "simple"}"#));
    assert_eq!(status, 202, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    server.wait_status(&id, "succeeded");
    let ended = server.stop();
    let spans = rx.wait_for("the run's span", |s| s["name"] == "run simple");
    let run = one(&spans, "run simple");
    assert_eq!(attr(run, "run_id"), id.as_str());
    assert_eq!(run["headers"]["x-tenant"], header, "serve.yaml's headers are sent");
    let lines: Vec<Value> = ended
        .stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("a stderr line of serve that is not JSON ({e}): {l}\n{}", ended.stderr)))
        .collect();
    assert!(lines.iter().any(|l| l["run_id"] == id.as_str() && l["step"] == "one"), "{lines:#?}");
    assert!(!ended.stderr.contains(header) && !ended.stdout.contains(header), "the header's value is never logged");
}

#[test]
fn a_collector_that_never_answers_does_not_hold_the_exit() {
    // Accepts connections and never answers.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let held = std::thread::spawn(move || {
        let mut kept = Vec::new();
        for c in listener.incoming().take(4) {
            kept.push(c);
        }
        std::thread::sleep(Duration::from_secs(60));
    });
    let setup = Test::new().file("child.yaml", CHILD).file("parent.yaml", PARENT).args(["validate", "parent.yaml"]).run().success();
    let bg = Background::spawn(setup.then().env("PHOENIX_OTLP_ENDPOINT", endpoint).args(["run", "parent.yaml"]).command(), setup.path());
    // A guard against a hang, not a timing assertion: the exit waits ~2 s for the export.
    let ended = bg.wait(Duration::from_secs(30));
    assert_eq!(ended.code, Some(0), "{}", ended.stderr);
    drop(held);
}

#[test]
fn a_serve_config_with_an_otlp_endpoint_that_is_not_a_url_is_refused() {
    Test::new()
        .file("runbooks/simple.yaml", "version: 1\nname: simple\nsteps:\n  one:\n    uses: noop\n")
        .file("serve.yaml", "otlp:\n  endpoint: collector:4318\n")
        .args(["serve", "--config", "serve.yaml", "--check"])
        .run()
        .code(2)
        .stderr_contains("otlp.endpoint: `collector:4318` is not a URL such as http://collector:4318");
}
