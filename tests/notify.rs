//! `notify`: Slack, Teams, PagerDuty and plain webhooks in their wire formats, against a local
//! stand-in that records what it was sent; the webhook URL (a credential) never shows; a
//! refusal fails the step, retried only when the service may recover.

use serde_json::json;

use crate::scripted::{Reply, Scripted};
use crate::support::Test;

/// A Slack-style webhook path: its last part is the credential.
const SECRET_PATH: &str = "/services/T0001/B0002/zzSECRETzz";

fn runbook(url: &str) -> String {
    format!(
        r#"version: 1
name: notified
secrets:
  hook: {{ env: HOOK_URL }}
  pd_key: {{ env: PD_KEY }}
steps:
  slack:
    uses: notify
    with:
      to: slack
      url: "{{{{ secrets.hook }}}}"
      title: "DR failover {{{{ run.id }}}} failed"
      text: "*replicate_db* failed: lag too high"
      fields: {{ region: us-east-1, level: dr_failover }}
      link: "http://phoenix.internal/#run={{{{ run.id }}}}"
  teams:
    uses: notify
    with: {{ to: teams, url: "{{{{ secrets.hook }}}}", title: "Failover started", severity: warning }}
  page:
    uses: notify
    with:
      to: pagerduty
      url: "{url}/v2/enqueue"
      routing_key: "{{{{ secrets.pd_key }}}}"
      title: "Primary region down"
      severity: critical
  hook:
    uses: notify
    with: {{ to: webhook, url: "{{{{ secrets.hook }}}}", title: "done", severity: info }}
"#
    )
}

#[test]
fn each_service_gets_its_own_format_and_the_credentials_never_show() {
    let stub = Scripted::start(|r, _| {
        if r.path.ends_with("/v2/enqueue") {
            Reply::Json(202, r#"{"status":"success","message":"Event processed","dedup_key":"x"}"#.into())
        } else {
            Reply::Json(200, "\"ok\"".into())
        }
    });
    let hook = format!("{}{SECRET_PATH}", stub.url());
    let t = Test::new()
        .file("n.yaml", runbook(&stub.url()))
        .env("HOOK_URL", &hook)
        .env("PD_KEY", "pd-routing-key-SECRET")
        .args(["run", "n.yaml"])
        .run()
        .success();
    let sent = stub.requests();
    assert_eq!(sent.len(), 4, "{sent:?}");
    let by = |pred: &dyn Fn(&serde_json::Value) -> bool| sent.iter().map(|r| r.json()).find(|b| pred(b)).expect("sent");

    let slack = by(&|b| b["blocks"].is_array());
    assert_eq!(slack["blocks"][0]["text"]["text"].as_str().map(|t| t.starts_with("DR failover ")), Some(true));
    assert_eq!(slack["blocks"][1]["text"], json!({"type": "mrkdwn", "text": "*replicate_db* failed: lag too high"}));
    assert_eq!(slack["blocks"][2]["fields"][0]["text"], "*level*\ndr_failover");

    let teams = by(&|b| b["type"] == "message");
    assert_eq!(teams["attachments"][0]["contentType"], "application/vnd.microsoft.card.adaptive");
    assert_eq!(teams["attachments"][0]["content"]["body"][0]["color"], "Warning");

    let pd = by(&|b| b["event_action"].is_string());
    assert_eq!(pd["routing_key"], "pd-routing-key-SECRET", "the key reaches PagerDuty, and only PagerDuty");
    assert_eq!((pd["payload"]["severity"].as_str(), pd["payload"]["summary"].as_str()), (Some("critical"), Some("Primary region down")));
    assert!(pd["dedup_key"].as_str().unwrap().starts_with("phoenix/"));

    let plain = by(&|b| b["title"] == "done");
    assert_eq!((plain["severity"].as_str(), plain["step"].as_str()), (Some("info"), Some("hook")));
    assert!(sent.iter().filter(|r| r.path == SECRET_PATH).count() == 3);

    // Nothing the run recorded or printed holds the credentials.
    let status = t.then().args(["status", "--output", "json"]).run().success();
    let logs = t.then().args(["logs", status.stdout_json()["id"].as_str().unwrap()]).run().success();
    for text in [status.stdout(), logs.stdout(), t.stdout(), t.stderr()] {
        assert!(!text.contains("zzSECRETzz") && !text.contains("pd-routing-key-SECRET"), "a credential leaked:\n{text}");
    }
    assert_eq!(status.stdout_json()["steps"][2]["outputs"]["status"], 202);
}

#[test]
fn a_refusal_fails_the_step_and_only_a_server_error_is_retried() {
    let stub =
        Scripted::start(
            |r, _| if r.path.contains("broken") { Reply::Json(503, "{}".into()) } else { Reply::Json(400, "invalid_payload".into()) },
        );
    let rb = |path: &str| {
        format!(
            "version: 1\nname: refused\nsecrets:\n  hook: {{ env: HOOK_URL }}\nsteps:\n  tell:\n    uses: notify\n    retry: {{ attempts: 3, delay: 10ms }}\n    with: {{ to: slack, url: \"{{{{ secrets.hook }}}}\", title: t }}\n# {path}\n"
        )
    };
    let url = |p: &str| format!("{}{SECRET_PATH}/{p}", stub.url());
    let t = Test::new().file("r.yaml", rb("bad")).env("HOOK_URL", url("bad")).args(["run", "r.yaml"]).run().code(1);
    let status = t.then().args(["status", "--output", "json"]).run().success().stdout_json();
    assert_eq!(status["steps"][0]["attempts"], 1, "a 400 is not retried");
    assert!(
        status["steps"][0]["error"].as_str().unwrap().contains("slack refused the notification: HTTP 400: invalid_payload"),
        "{status}"
    );
    assert!(!status.to_string().contains("zzSECRETzz"));

    let before = stub.requests().len();
    let t = Test::new().file("r.yaml", rb("broken")).env("HOOK_URL", url("broken")).args(["run", "r.yaml"]).run().code(1);
    let status = t.then().args(["status", "--output", "json"]).run().success().stdout_json();
    assert_eq!((status["steps"][0]["attempts"].as_u64(), stub.requests().len() - before), (Some(3), 3), "503 is retried");

    // Closed port: the transport error names the service, not the URL.
    let port = crate::postgres::free_port();
    let t = Test::new()
        .file("r.yaml", rb("closed"))
        .env("HOOK_URL", format!("http://127.0.0.1:{port}{SECRET_PATH}"))
        .args(["run", "r.yaml"])
        .run()
        .code(1);
    let status = t.then().args(["status", "--output", "json"]).run().success().stdout_json();
    let error = status["steps"][0]["error"].as_str().unwrap();
    assert!(error.contains("slack did not answer") && !error.contains("zzSECRETzz"), "{error}");
}
