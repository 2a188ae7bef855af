//! `aws.eks_nodegroups` and `aws.reachable` as health signals, through `phoenix run`, against
//! the moto server (`tests/support/moto.rs`) and a closed port.

use serde_json::{Value, json};

use crate::moto::Moto;
use crate::postgres::free_port;
use crate::process::{self, step};
use crate::support::{Output, Test};

/// The seed's weights for EKS node groups: all ACTIVE 0, one not 2, more 4.
const EKS_RULES: &str = r#"    weight:
      - { when: "outputs.not_active == 0", weight: 0 }
      - { when: "outputs.not_active == 1", weight: 2 }
      - { weight: 4 }
"#;

/// The seed's weights for the cross-region check: reachable 0, degraded (slow) 2, unreachable 3.
const REACH_RULES: &str = r#"    weight:
      - { when: "outputs.status == 'ok'", weight: 0 }
      - { when: "outputs.status == 'slow'", weight: 2 }
      - { weight: 3 }
"#;

/// A runbook of these signals (`(name, uses, with)`), scored, with a step after the score.
fn runbook(signals: &[(&str, &str, String)]) -> String {
    let mut yaml = String::from("version: 1\nname: aws\nsignals:\n");
    for (name, uses, with) in signals {
        let rules = if *uses == "aws.eks_nodegroups" { EKS_RULES } else { REACH_RULES };
        yaml += &format!("  {name}:\n    uses: {uses}\n    with: {with}\n{rules}");
    }
    yaml += "levels:\n  - { name: fine, max: 0 }\n  - { name: degraded, max: 3 }\n  - { name: broken }\n";
    yaml += "steps:\n  after:\n    needs: [score]\n    uses: noop\n";
    yaml
}

/// Runs with moto's any-key credentials in the environment; the run's status.
fn run(yaml: &str) -> (Output, Value) {
    let out = Test::new()
        .file("r.yaml", yaml)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .args(["run", "r.yaml"])
        .run()
        .success();
    let s = process::status(&out.state_dir(), &process::latest_run(&out.state_dir()));
    (out, s)
}

fn signal<'a>(status: &'a Value, name: &str) -> &'a Value {
    &step(status, "score")["outputs"]["signals"][name]
}

#[test]
fn node_groups_not_active_are_counted_with_the_seeds_weights() {
    let moto = Moto::start();
    moto.eks_cluster("us-east-1", "all-good", &[("ng-a", "ACTIVE"), ("ng-b", "ACTIVE")]);
    moto.eks_cluster("us-east-1", "one-down", &[("ng-a", "ACTIVE"), ("ng-b", "DEGRADED"), ("ng-c", "ACTIVE")]);
    moto.eks_cluster("us-east-1", "two-down", &[("ng-z", "DEGRADED"), ("ng-y", "CREATE_FAILED"), ("ng-x", "ACTIVE")]);
    let eks = |cluster: &str| format!("{{ cluster: {cluster}, region: us-east-1, endpoint_url: \"{}\", timeout: 5s }}", moto.url());
    let (_, s) = run(&runbook(&[
        ("good", "aws.eks_nodegroups", eks("all-good")),
        ("one", "aws.eks_nodegroups", eks("one-down")),
        ("two", "aws.eks_nodegroups", eks("two-down")),
        ("missing", "aws.eks_nodegroups", eks("no-such-cluster")),
    ]));
    let good = signal(&s, "good");
    assert_eq!(good["status"], "succeeded", "{good:#}");
    assert_eq!(good["outputs"]["total"], 2);
    assert_eq!(good["outputs"]["not_active"], 0);
    assert_eq!(good["outputs"]["cluster_status"], "ACTIVE");
    assert_eq!(good["weight"], json!(0.0));

    let one = &signal(&s, "one");
    assert_eq!(one["weight"], json!(2.0), "{one:#}");
    assert_eq!(one["outputs"]["unhealthy"], json!(["ng-b"]));
    assert_eq!(one["outputs"]["statuses"], json!({"ng-a": "ACTIVE", "ng-b": "DEGRADED", "ng-c": "ACTIVE"}));
    let ng_b = one["outputs"]["nodegroups"].as_array().unwrap().iter().find(|g| g["name"] == "ng-b").unwrap().clone();
    assert_eq!(ng_b["health_issues"][0]["code"], "AsgInstanceLaunchFailures", "{ng_b:#}");
    assert_eq!(ng_b["desired_size"], 2);

    let two = signal(&s, "two");
    assert_eq!(two["outputs"]["not_active"], 2, "{two:#}");
    assert_eq!(two["outputs"]["unhealthy"], json!(["ng-y", "ng-z"]));
    assert_eq!(two["weight"], json!(4.0));

    // A cluster that is not there fails the probe: the fallback weight, and the reason.
    let missing = signal(&s, "missing");
    assert_eq!(missing["status"], "failed", "{missing:#}");
    assert_eq!(missing["weight"], json!(4.0));
    let error = missing["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("describing EKS cluster no-such-cluster") && error.contains("ResourceNotFoundException: No cluster found"),
        "{error}"
    );
    assert_eq!(step(&s, "score")["outputs"]["total"], json!(10.0));
    assert_eq!(step(&s, "after")["status"], "succeeded");
}

#[test]
fn a_region_that_answers_is_ok_and_a_closed_port_is_unreachable() {
    let moto = Moto::start();
    let closed = format!("http://127.0.0.1:{}", free_port());
    let reach = |url: &str| format!("{{ region: us-west-2, endpoint_url: \"{url}\", slow_after: 2s, timeout: 3s }}");
    let (_, s) = run(&runbook(&[("moto", "aws.reachable", reach(&moto.url())), ("closed", "aws.reachable", reach(&closed))]));
    let ok = signal(&s, "moto");
    assert_eq!(ok["status"], "succeeded", "{ok:#}");
    assert_eq!(ok["outputs"]["status"], "ok");
    assert_eq!(ok["outputs"]["region"], "us-west-2");
    assert_eq!(ok["outputs"]["account"], "123456789012");
    assert_eq!(ok["weight"], json!(0.0));
    let closed = signal(&s, "closed");
    assert_eq!(closed["status"], "failed", "{closed:#}");
    assert_eq!(closed["weight"], json!(3.0));
    assert!(closed["error"].as_str().unwrap_or_default().contains("AWS in us-west-2 did not answer"), "{closed:#}");
    assert_eq!(step(&s, "score")["outputs"]["total"], json!(3.0));
}

#[test]
fn a_slow_answer_is_degraded_and_no_answer_in_time_is_unreachable() {
    let moto = Moto::start();
    moto.delay(1.0);
    let (_, s) = run(&runbook(&[
        ("slow", "aws.reachable", format!("{{ region: eu-west-1, endpoint_url: \"{}\", slow_after: 300ms, timeout: 5s }}", moto.url())),
        ("late", "aws.reachable", format!("{{ region: eu-west-1, endpoint_url: \"{}\", slow_after: 100ms, timeout: 400ms }}", moto.url())),
    ]));
    let slow = signal(&s, "slow");
    assert_eq!(slow["outputs"]["status"], "slow", "{slow:#}");
    assert!(slow["outputs"]["latency_ms"].as_u64().is_some_and(|ms| ms >= 1000), "{slow:#}");
    assert_eq!(slow["weight"], json!(2.0));
    let late = signal(&s, "late");
    assert_eq!(late["status"], "failed", "{late:#}");
    assert_eq!(late["weight"], json!(3.0));
    assert!(late["error"].as_str().unwrap_or_default().contains("no answer within the timeout"), "{late:#}");
}

#[test]
fn credentials_from_secrets_are_used_and_never_stored() {
    let moto = Moto::start();
    moto.eks_cluster("us-east-1", "prod", &[("ng-a", "ACTIVE")]);
    let yaml = runbook(&[(
        "eks",
        "aws.eks_nodegroups",
        format!(
            "{{ cluster: prod, region: us-east-1, endpoint_url: \"{}\", access_key_id: \"{{{{ secrets.key_id }}}}\", secret_access_key: \"{{{{ secrets.key }}}}\" }}",
            moto.url()
        ),
    )])
    .replace("signals:\n", "secrets:\n  key_id: { env: DR_KEY_ID }\n  key: { env: DR_SECRET_KEY }\nsignals:\n");
    // No credentials in the environment: only the secrets can make the call work.
    let out = Test::new()
        .file("r.yaml", &yaml)
        .env("DR_KEY_ID", "AKIAPHOENIXTESTKEY01")
        .env("DR_SECRET_KEY", "s3cr3t-Phoenix-k3y-value")
        .args(["run", "r.yaml"])
        .run()
        .success();
    let run_id = process::latest_run(&out.state_dir());
    let s = process::status(&out.state_dir(), &run_id);
    assert_eq!(signal(&s, "eks")["weight"], json!(0.0), "{:#}", signal(&s, "eks"));
    let events = out.then().args(["logs", &run_id, "--output", "json"]).run().success();
    for secret in ["AKIAPHOENIXTESTKEY01", "s3cr3t-Phoenix-k3y-value"] {
        assert!(!s.to_string().contains(secret), "a credential is in the run's state");
        assert!(!events.stdout().contains(secret), "a credential is in the run's events");
    }
}

#[test]
fn bad_settings_are_refused_before_anything_runs() {
    let yaml = runbook(&[(
        "x",
        "aws.reachable",
        "{ regoin: us-west-2, access_key_id: AKIA0, secret_access_key: plain, endpoint_url: \"moto:5000\", slow_after: 5s, timeout: 2s }"
            .into(),
    )]);
    let out = Test::new().file("r.yaml", yaml).args(["run", "r.yaml"]).run().code(2);
    for needle in [
        "has no input `regoin`",
        "did you mean `region`?",
        "`secret_access_key` is written in the runbook",
        "`moto:5000` is not an http(s) URL",
        "`slow_after` is not shorter than `timeout`",
        "nothing was run",
    ] {
        assert!(out.stderr().contains(needle), "no {needle:?} in\n{}", out.stderr());
    }
    assert!(!out.state_dir().join("db").exists(), "a refused runbook wrote state");
}
