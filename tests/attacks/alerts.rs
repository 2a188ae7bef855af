//! Attacks: alerts. Whoever can make Alertmanager fire (a label set from a hostname, a
//! user-agent, a metric label an application chooses) writes text that `phoenix serve`
//! renders into a runbook's params and from there into a script. Each case posts a
//! notification whose label and annotation carry a payload, and asserts both sides: the run
//! succeeds and its script read the payload back as exactly its bytes in every quoting
//! context, and the command hidden in the payload did not run (no file `pwned`).

use std::time::Duration;

use serde_json::json;

use crate::process::wait_for;
use crate::serve_support::{ALERTMANAGER, Server, TOKENS};
use crate::support::Test;

const ECHO: &str = r#"version: 1
name: echo
params:
  payload: { type: string }
  summary: { type: string }
steps:
  echo:
    uses: exec
    with:
      script: |
        printf '%s' {{ params.payload }} > bare.out
        printf '%s' "{{ params.payload }}" > double.out
        printf '%s' '{{ params.payload }}' > single.out
        cat > heredoc.out <<EOF
        {{ params.payload }}
        EOF
        printf '%s' "$(printf '%s' {{ params.summary }})" > summary.out
        printf '%s' {{ params.payload | tojson }} > json.out
"#;

fn config() -> String {
    format!(
        "{TOKENS}alerts:\n  routes:\n    - matchers: ['alertname=\"Injected\"']\n      runbook: echo\n      params:\n        payload: \"{{{{ alert.labels.payload }}}}\"\n        summary: \"{{{{ alert.annotations.summary }}}}\"\n"
    )
}

/// Posts one alert whose `payload` label and `summary` annotation carry `payload`; checks
/// the run read it back exactly and created nothing.
fn deliver(payload: &str) {
    let t = Test::new().file("runbooks/echo.yaml", ECHO).file("serve.yaml", config());
    let server = Server::start(t.path());
    let labels = json!({"alertname": "Injected", "payload": payload});
    let body = json!({
        "version": "4", "groupKey": "{}:{alertname=\"Injected\"}", "truncatedAlerts": 0, "status": "firing",
        "receiver": "phoenix", "groupLabels": {"alertname": "Injected"}, "commonLabels": labels,
        "commonAnnotations": {"summary": payload}, "externalURL": "http://alertmanager:9093",
        "alerts": [{ "status": "firing", "labels": labels, "annotations": {"summary": payload},
                     "startsAt": "2026-11-29T03:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
                     "generatorURL": "http://prometheus:9090/graph", "fingerprint": "1" }]
    })
    .to_string();
    let (status, v) = server.call("POST", "/api/v1/alerts", Some(ALERTMANAGER), Some(&body));
    assert_eq!(status, 200, "{v}");
    let id = v["started"][0].as_str().unwrap_or_else(|| panic!("the alert started no run: {v}")).to_string();
    assert_eq!(server.run(&id)["params"]["payload"], payload, "the label reaches the params as it is");
    wait_for("the run to end", Duration::from_secs(60), || {
        matches!(server.run(&id)["status"].as_str(), Some("succeeded" | "failed" | "cancelled"))
    });
    let run = server.run(&id);
    assert!(!t.path().join("pwned").exists(), "the alert ran a command: pwned exists");
    assert_eq!(run["status"], "succeeded", "{run:#}");
    let read = |f: &str| std::fs::read_to_string(t.path().join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
    for f in ["bare.out", "double.out", "single.out"] {
        assert_eq!(read(f), payload, "{f}");
    }
    assert_eq!(read("heredoc.out"), format!("{payload}\n"));
    assert_eq!(read("summary.out"), payload.trim_end_matches('\n'), "`$( )` drops trailing newlines");
    // `tojson` marks its text safe for HTML; it still reaches bash as data.
    let json = serde_json::to_string(payload)
        .unwrap()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .replace('\'', "\\u0027");
    assert_eq!(read("json.out"), json);
}

macro_rules! alert {
    ($name:ident, $payload:expr) => {
        #[test]
        fn $name() {
            deliver($payload);
        }
    };
}

alert!(a_label_with_command_substitution, "$(touch pwned)");
alert!(a_label_with_backquotes, "`touch pwned`");
alert!(a_label_breaking_single_quotes, "'; touch pwned; '");
alert!(a_label_breaking_double_quotes, "\"; touch pwned; \"");
alert!(a_label_ending_the_heredoc, "x\nEOF\ntouch pwned\nEOF");
alert!(a_label_that_is_a_template, "{{ 7 * 7 }}{% if true %}$(touch pwned){% endif %}");
alert!(a_label_with_an_arithmetic_subscript, "a[$(touch pwned)]");
