//! Attacks: secrets. A secret reaches the step that uses it, as its exact bytes, and nothing
//! else: not in any encoding (shell-escaped, JSON-escaped, URL-encoded, base64 at any offset,
//! hex) in the store's files, `status`, `logs`, `report`, `--dry-run`, the API, `/metrics`,
//! or an LLM's prompt; not to a host its runbook does not allow, nor over plain http; and a
//! step's process does not inherit the server's API tokens.

use std::path::Path;

use serde_json::json;

use crate::process::{self, step};
use crate::scripted::{Reply, Scripted};
use crate::serve_support::{ONCALL, Server, TOKENS};
use crate::support::Test;

/// A secret whose encodings all differ from it and from each other.
const SECRET: &str = "Tok3n/w1th+sp ce&\"quote'-x9Z";
const VAR: &str = "PHX_ATTACK_SECRET";

/// The secret as tools write it, computed here by the tools themselves (not by phoenix).
fn encodings() -> Vec<String> {
    let script = r#"
        printf '%q\n' "$S"
        printf '%s' "$S" | jq -Rs . | sed 's/^"//; s/"$//'
        printf '%s' "$S" | jq -sRr @uri
        python3 -c 'import sys, urllib.parse as u; print(u.quote_plus(sys.argv[1]))' "$S"
        printf '%s' "$S" | base64 -w0; echo
        printf '%s' "$S" | base64 -w0 | tr '+/' '-_' | tr -d '='; echo
        printf 'x%s' "$S" | base64 -w0; echo
        printf 'xy%s' "$S" | base64 -w0; echo
        printf '%s' "$S" | od -An -tx1 | tr -d ' \n'; echo
    "#;
    let out = std::process::Command::new("bash").args(["-c", script]).env("S", SECRET).output().expect("bash");
    let mut forms: Vec<String> = String::from_utf8(out.stdout).unwrap().lines().map(str::to_string).collect();
    assert_eq!(forms.len(), 9, "every tool answered: {forms:?}");
    forms.push(SECRET.to_string());
    forms
}

/// The step script that prints the secret (given in its environment) in every encoding.
const ECHO: &str = r#"printf '%q\n' "$T"
printf '%s' "$T" | jq -Rs .
printf '%s' "$T" | jq -sRr @uri
python3 -c 'import sys, urllib.parse as u; print(u.quote_plus(sys.argv[1]))' "$T"
printf '%s' "$T" | base64 -w0; echo
printf '%s' "$T" | base64 -w0 | tr '+/' '-_' | tr -d '='; echo
printf 'x%s' "$T" | base64 -w0; echo
printf 'xy%s' "$T" | base64 -w0; echo
printf '%s' "$T" | od -An -tx1 | tr -d ' \n'; echo
printf 'raw %s\n' "$T"
printf 'lines=%s\n' 10"#;

/// A runbook that sends the secret to `url` (http) and echoes it in every encoding.
fn leaky(url: &str) -> String {
    let script = serde_json::to_string(ECHO).unwrap();
    format!(
        r#"version: 1
name: leaky
secrets:
  token: {{ env: {VAR}, hosts: ["127.0.0.1"] }}
steps:
  send:
    uses: http
    with:
      method: POST
      url: "{url}/hook"
      headers: {{ Authorization: "Bearer {{{{ secrets.token }}}}" }}
      json: {{ token: "{{{{ secrets.token }}}}", as_json: "{{{{ secrets.token | tojson }}}}" }}
  echo:
    needs: [send]
    uses: exec
    with:
      env: {{ T: "{{{{ secrets.token }}}}" }}
      script: {script}
"#
    )
}

/// A stand-in that echoes back what it got (so the step's outputs hold the secret too).
fn echo_server() -> Scripted {
    Scripted::start(|req, _| Reply::Json(200, json!({ "got": req.text(), "auth": req.header("authorization") }).to_string()))
}

/// Every file under `dir`, as bytes.
fn all_bytes(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let p = entry.path();
        if p.is_dir() {
            out.extend(all_bytes(&p));
        } else if let Ok(b) = std::fs::read(&p) {
            out.push((p.display().to_string(), b));
        }
    }
    out
}

fn assert_absent(what: &str, text: &str, forms: &[String]) {
    for f in forms {
        assert!(!text.contains(f.as_str()), "{what} holds the secret as `{f}`:\n{text}");
    }
}

#[test]
fn a_secret_is_in_no_encoding_in_the_store_status_logs_report_or_dry_run() {
    let server = echo_server();
    let forms = encodings();
    let t = Test::new().file("leaky.yaml", leaky(&server.url())).env(VAR, SECRET);
    let out = t.args(["run", "leaky.yaml"]).run().success();
    let state = out.state_dir();
    let id = process::latest_run(&state);

    // What must happen: the stand-in got the exact bytes, in the header and the JSON body.
    let req = &server.requests()[0];
    assert_eq!(req.header("authorization"), Some(format!("Bearer {SECRET}").as_str()));
    assert_eq!(req.json()["token"], SECRET);
    // The step printed its eleven lines, each with the secret scrubbed.
    let logs = out.then().args(["logs", &id, "echo", "--output", "json"]).run().success();
    let lines: Vec<String> =
        logs.stdout_json()["lines"].as_array().unwrap().iter().map(|l| l["text"].as_str().unwrap().to_string()).collect();
    assert_eq!(lines.len(), 11, "{lines:?}");
    assert_eq!(lines.iter().filter(|l| l.contains("***")).count(), 10, "{lines:?}");
    assert_eq!(lines[10], "lines=10");

    // What must not: no form of it anywhere.
    assert_absent("phoenix run's output", &format!("{}{}", out.stdout(), out.stderr()), &forms);
    for (file, bytes) in all_bytes(&state) {
        for f in &forms {
            assert!(!bytes.windows(f.len()).any(|w| w == f.as_bytes()), "{file} holds the secret as `{f}`");
        }
    }
    for args in [
        vec!["status", &id, "--output", "json"],
        vec!["status", &id],
        vec!["logs", &id],
        vec!["logs", &id, "--output", "json"],
        vec!["report", &id],
        vec!["report", &id, "--format", "html"],
        vec!["report", &id, "--output", "json"],
    ] {
        let o = out.then().args(&args).run().success();
        assert_absent(&args.join(" "), &format!("{}{}", o.stdout(), o.stderr()), &forms);
    }
    let dry = out.then().args(["run", "leaky.yaml", "--dry-run"]).env(VAR, SECRET).run().success();
    assert!(dry.stdout().contains("send"), "{}", dry.stdout());
    assert_absent("--dry-run", &format!("{}{}", dry.stdout(), dry.stderr()), &forms);
}

/// A runbook asking a model at `params.llm_base_url` with a key allowed to `hosts`.
fn asker(hosts: &str) -> String {
    format!(
        r#"version: 1
name: asker
params:
  llm_base_url: {{ type: string }}
secrets:
  llm_api_key: {{ env: {VAR}, hosts: [{hosts}] }}
steps:
  analysis:
    uses: llm
    with:
      base_url: "{{{{ params.llm_base_url }}}}"
      model: stand-in
      api_key: "{{{{ secrets.llm_api_key }}}}"
      prompt: "decide; the key is {{{{ secrets.llm_api_key }}}}"
      evidence: {{ key: "{{{{ secrets.llm_api_key | tojson }}}}" }}
"#
    )
}

fn model() -> Scripted {
    Scripted::start(|_, _| {
        let decision = json!({ "root_cause_category": "unknown", "confidence": "low", "evidence": "-", "recommended_action": "monitor", "reasoning": "-" });
        Reply::Json(200, json!({ "choices": [{ "index": 0, "message": { "role": "assistant", "content": decision.to_string() }, "finish_reason": "stop" }] }).to_string())
    })
}

fn port_of(s: &Scripted) -> String {
    s.url().rsplit(':').next().unwrap().to_string()
}

#[test]
fn a_secret_goes_only_to_the_hosts_its_runbook_declares() {
    let (allowed, other) = (model(), model());
    let t = Test::new().file("asker.yaml", asker(&format!("\"127.0.0.1:{}\"", port_of(&allowed)))).env(VAR, SECRET);

    // A param pointing the model elsewhere: the step fails before sending anything.
    let out = t.args(["run", "asker.yaml", "--param", &format!("llm_base_url={}/v1", other.url())]).run().code(1);
    let s = process::status(&out.state_dir(), &process::latest_run(&out.state_dir()));
    let error = step(&s, "analysis")["error"].as_str().unwrap().to_string();
    assert!(error.contains("`llm_api_key` may be sent to 127.0.0.1:") && error.contains("nothing was sent"), "{error}");
    assert!(other.requests().is_empty(), "the other host was sent {} request(s)", other.requests().len());

    // The declared host gets it, as the exact bytes, and its prompt holds no form of it.
    let out = out.then().args(["run", "asker.yaml", "--param", &format!("llm_base_url={}/v1", allowed.url())]).run().success();
    let reqs = allowed.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].header("authorization"), Some(format!("Bearer {SECRET}").as_str()));
    assert_absent("the model's request", &reqs[0].text(), &encodings());
    assert!(reqs[0].text().contains("the key is ***"), "{}", reqs[0].text());
    assert!(other.requests().is_empty());
    drop(out);
}

#[test]
fn a_secret_never_travels_over_plain_http_beyond_the_loopback_unless_allowed() {
    // 0.0.0.0 reaches this machine's 127.0.0.1 listener, yet is not a loopback address.
    let server = echo_server();
    let url = format!("http://0.0.0.0:{}/hook", port_of(&server));
    let runbook = |allow: bool| {
        format!(
            "version: 1\nname: plain\nsecrets:\n  token: {{ env: {VAR}, allow_http: {allow} }}\nsteps:\n  send:\n    uses: http\n    with: {{ url: \"{url}\", headers: {{ X-Token: \"{{{{ secrets.token }}}}\" }} }}\n"
        )
    };
    let t = Test::new().file("plain.yaml", runbook(false)).file("allowed.yaml", runbook(true)).env(VAR, SECRET);
    let out = t.args(["run", "plain.yaml"]).run().code(1);
    let s = process::status(&out.state_dir(), &process::latest_run(&out.state_dir()));
    let error = step(&s, "send")["error"].as_str().unwrap();
    assert!(error.contains("would be sent over plain http to 0.0.0.0") && error.contains("allow_http"), "{error}");
    assert!(server.requests().is_empty(), "sent before the check");

    out.then().args(["run", "allowed.yaml"]).run().success();
    assert_eq!(server.requests().len(), 1);
    assert_eq!(server.requests()[0].header("x-token"), Some(SECRET));
}

#[test]
fn a_url_the_check_could_read_otherwise_than_the_client_is_refused() {
    let server = echo_server();
    // `\\@`: a URL library sends this to 127.0.0.1 (the host before the backslash); a naive
    // split after the `@` would read `allowed.example`, the one host the secret may go to.
    let url = format!("{}\\@allowed.example/x", server.url());
    let rb = format!(
        "version: 1\nname: odd\nparams:\n  url: {{ type: string }}\nsecrets:\n  token: {{ env: {VAR}, hosts: [allowed.example], allow_http: true }}\nsteps:\n  send:\n    uses: http\n    with: {{ url: \"{{{{ params.url }}}}\", headers: {{ X-Token: \"{{{{ secrets.token }}}}\" }} }}\n"
    );
    let t = Test::new().file("odd.yaml", rb).env(VAR, SECRET);
    let out = t.args(["run", "odd.yaml", "--param", &format!("url={url}")]).run().code(1);
    let s = process::status(&out.state_dir(), &process::latest_run(&out.state_dir()));
    assert!(step(&s, "send")["error"].as_str().unwrap().contains("is not an http(s) URL"), "{s:#}");
    assert!(server.requests().is_empty(), "the secret was sent");
    // The same host named plainly is refused for what it is.
    let out = out.then().args(["run", "odd.yaml", "--param", &format!("url={}/x", server.url())]).run().code(1);
    let s = process::status(&out.state_dir(), &process::latest_run(&out.state_dir()));
    assert!(step(&s, "send")["error"].as_str().unwrap().contains("may be sent to allowed.example, not to 127.0.0.1"), "{s:#}");
    assert!(server.requests().is_empty());
}

/// Runs `runbooks/r.yaml` in a server with the tests' tokens; its JSON, logs and metrics.
fn served(runbook: &str) -> (Server, String, Test) {
    let t = Test::new().file("runbooks/r.yaml", runbook).file("serve.yaml", format!("runbooks: runbooks\n{TOKENS}"));
    let server = Server::start(t.path());
    let (status, v) = server.call("POST", "/api/v1/runs", Some(ONCALL), Some(r#"{"runbook": "r"}"#));
    assert_eq!(status, 202, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    server.wait_status(&id, "succeeded");
    (server, id, t)
}

#[test]
fn a_step_does_not_inherit_the_servers_api_tokens() {
    let rb = r#"version: 1
name: r
steps:
  env:
    uses: exec
    with: { script: 'printf "oncall=[%s] path=%s\n" "${T_ONCALL-unset}" "${PATH:+set}"' }
  template:
    needs: [env]
    uses: exec
    with: { env: { X: "{{ env.T_ONCALL | default('hidden') }}", Y: "{{ env.PATH | default('') != '' }}" }, script: 'echo "tmpl=[$X] path=$Y"' }
"#;
    let (server, id, _t) = served(rb);
    let logs = server.get(&format!("/api/v1/runs/{id}/logs"));
    let text: Vec<&str> = logs["lines"].as_array().unwrap().iter().filter_map(|l| l["text"].as_str()).collect();
    // The steps ran with an environment (PATH is there), without the token, inherited or
    // read through the template's `env`.
    assert_eq!(text, vec!["oncall=[unset] path=set", "tmpl=[hidden] path=true"], "{logs:#}");
}

#[test]
fn the_api_and_the_metrics_hold_no_form_of_a_secret() {
    let script = serde_json::to_string(ECHO).unwrap();
    let rb = format!(
        "version: 1\nname: r\nsecrets:\n  token: {{ file: ../token.txt }}\nsteps:\n  echo:\n    uses: exec\n    with:\n      env: {{ T: \"{{{{ secrets.token }}}}\" }}\n      script: {script}\n"
    );
    let t = Test::new().file("token.txt", SECRET);
    let token = t.path().join("token.txt");
    let rb = rb.replace("../token.txt", token.to_str().unwrap());
    let (server, id, _t) = served(&rb);
    let forms = encodings();
    let logs = server.get(&format!("/api/v1/runs/{id}/logs"));
    assert_eq!(logs["lines"].as_array().unwrap().len(), 11, "{logs:#}");
    for path in [format!("/api/v1/runs/{id}"), format!("/api/v1/runs/{id}/logs"), "/api/v1/runs".to_string()] {
        assert_absent(&path, &server.get(&path).to_string(), &forms);
    }
    let (status, metrics) = crate::serve_support::request(&server.addr, "GET", "/metrics", Some(ONCALL), None);
    assert_eq!(status, 200);
    assert!(metrics.contains("phoenix_"), "{metrics}");
    assert_absent("/metrics", &metrics, &forms);
}
