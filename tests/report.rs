//! `phoenix report RUN --format md|html`: the post-incident report of a run with a retried
//! step, an approval, a DNS switch (Route 53 on moto), a child run and a failed step; of the
//! analysis and the score; of a run still in progress (over the control socket); and of a run
//! that does not exist.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::json;

use crate::moto::Moto;
use crate::process::{self, Background};
use crate::scripted::{Reply, Scripted};
use crate::support::{Output, Test};

const SECRET: &str = "hunter2-report-s3cret";

const CHILD: &str = r#"version: 1
name: checks
steps:
  c1:
    uses: exec
    with: { script: "echo checking" }
  c2:
    needs: [c1]
    uses: exec
    with: { cmd: [echo, healthy] }
"#;

/// The failover: `flaky` fails once then succeeds, `gate` waits for a person, `dns` switches
/// the record `seed_dns` wrote, `checks` runs a child runbook, `secret` uses a secret, and
/// `broken` fails the run.
fn failover(moto: &Moto, zone: &str) -> String {
    let r53 = |rest: &str| format!("{{ endpoint_url: \"{}\", zone_id: \"{zone}\", name: app.example.com, type: A, {rest} }}", moto.url());
    format!(
        r#"version: 1
name: failover
description: Move app.example.com to the DR site.
secrets:
  token: {{ env: API_TOKEN }}
steps:
  seed_dns:
    uses: route53.upsert
    with: {seed}
  flaky:
    uses: exec
    retry: {{ attempts: 3, delay: 200ms }}
    with: {{ script: "n=$(cat tries 2>/dev/null || echo 0); echo $((n+1)) > tries; [ $n -ge 1 ] || {{ echo 'replica not ready yet' >&2; exit 3; }}" }}
  gate:
    needs: [seed_dns, flaky]
    uses: approval
    with: {{ message: "Point app.example.com at the DR site?" }}
  dns:
    needs: [gate]
    uses: route53.upsert
    with: {switch}
  checks:
    needs: [dns]
    uses: runbook
    with: {{ file: checks.yaml }}
  secret:
    needs: [gate]
    uses: exec
    with: {{ script: "echo token $T", env: {{ T: "{{{{ secrets.token }}}}" }} }}
  broken:
    needs: [checks]
    uses: exec
    with: {{ script: "echo 'disk full' >&2; exit 4" }}
"#,
        seed = r53("ttl: 60, values: [192.0.2.10]"),
        switch = r53("ttl: 30, values: [198.51.100.7]"),
    )
}

/// Runs the failover to its end: halted at the gate, approved by alice, resumed, failed.
fn failed_failover() -> (Output, String, Moto) {
    let moto = Moto::start();
    let zone = moto.route53_zone("example.com");
    let out = Test::new()
        .file("r.yaml", failover(&moto, &zone))
        .file("checks.yaml", CHILD)
        .env("API_TOKEN", SECRET)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .args(["run", "r.yaml", "--no-wait", "--as", "bob"])
        .run()
        .code(3);
    let run = process::run_of(&out.state_dir(), "failover");
    out.then().args(["approve", &run, "gate", "--as", "alice", "--comment", "DR site checked, TTL 60s"]).run().success();
    let out = out.then().args(["resume", &run, "--as", "carol"]).run().code(1);
    (out, run, moto)
}

/// Where `needle` is in `text`, failing with the text when it is not there.
fn at(text: &str, needle: &str) -> usize {
    text.find(needle).unwrap_or_else(|| panic!("{needle:?} is not in the report:\n{text}"))
}

/// The chart inside a page, parsed: the bars' steps, each with how many bars it has.
fn bars(page: &str) -> BTreeMap<String, usize> {
    let svg = &page[at(page, "<svg")..at(page, "</svg>") + "</svg>".len()];
    let doc = roxmltree::Document::parse(svg).unwrap_or_else(|e| panic!("the SVG is not well-formed XML: {e}\n{svg}"));
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    assert!(doc.descendants().all(|n| !n.has_tag_name("script") && n.attribute("href").is_none()), "{svg}");
    let mut bars = BTreeMap::new();
    for n in doc.descendants().filter(|n| n.has_tag_name("rect") && n.attribute("class").is_some_and(|c| c.starts_with("bar "))) {
        *bars.entry(n.attribute("data-step").expect("a bar names its step").to_string()).or_insert(0) += 1;
    }
    bars
}

#[test]
fn the_markdown_report_tells_what_ran_who_decided_and_what_changed() {
    let (out, run, _moto) = failed_failover();
    let md = out.then().args(["report", &run, "--format", "md"]).run().success().stdout_lacks(SECRET).stdout().to_string();

    // Header: who started, approved and resumed it.
    at(&md, &format!("# Post-incident report: failover — run {run}"));
    at(&md, "| Description | Move app.example.com to the DR site. |");
    at(&md, "| Attempts | 2 (1 start + 1 resume(s)) |");
    at(&md, &format!("| Working directory | {} |", out.path().canonicalize().unwrap().display()));
    at(&md, "| started by | bob at ");
    at(&md, "| resumed (attempt 2) by | carol at ");
    at(&md, "| approved gate by | alice at ");

    // The timeline, in order: the retry with its error, the approval asked then given, the failure.
    let timeline = &md[at(&md, "## Timeline")..at(&md, "## Steps")];
    let order = [
        "run started by bob",
        "| flaky | attempt 1 failed: the script exited with 3: replica not ready yet; retrying in 200ms",
        "| flaky | succeeded (attempt 2)",
        "| gate | approval requested: Point app.example.com at the DR site?",
        "run halted: waiting for approval of gate",
        "approval approved by alice (gate: DR site checked, TTL 60s)",
        "run resumed (attempt 2) by carol",
        "| gate | approved by alice: DR site checked, TTL 60s",
        "| dns | started",
        "| checks | succeeded",
        "| broken | failed: the script exited with 4: disk full",
        "run failed",
    ];
    let places: Vec<usize> = order.iter().map(|n| at(timeline, n)).collect();
    assert!(places.is_sorted(), "out of order: {:?}\n{timeline}", order.iter().zip(&places).collect::<Vec<_>>());

    // Steps, with their actions.
    at(&md, "| flaky | exec | succeeded | 2 |");
    at(&md, "| dns | route53.upsert | succeeded | 1 |");
    at(&md, "| gate | approval | succeeded | 1 |");
    at(&md, "approved by alice: DR site checked, TTL 60s |");
    at(&md, "| broken | exec | failed | 1 |");

    // What changed: the DNS record, old → new.
    at(&md, "| dns | route53.upsert | succeeded | DNS app.example.com. A: 192.0.2.10 → 198.51.100.7 | TTL 60 → 30;");
    at(&md, "| seed_dns | route53.upsert | succeeded | DNS app.example.com. A: (none) → 192.0.2.10 |");

    // Errors and the ending.
    at(&md, "- flaky: attempt 1 failed at +");
    at(&md, "- broken failed: the script exited with 4: disk full");
    at(&md, "The run failed at ");

    // The child run, nested after its parent's sections, with its own steps.
    let child = &md[at(&md, "## Child run ")..];
    at(child, "of step checks: checks");
    at(child, "### Steps");
    at(child, "| c1 | exec | succeeded | 1 |");
    at(child, "| c2 | exec | succeeded | 1 |");
    at(child, "ran `echo healthy` → exit 0");

    // One bar per step that ran, the child's included.
    let expected: BTreeMap<String, usize> =
        ["seed_dns", "flaky", "gate", "dns", "checks", "c1", "c2", "secret", "broken"].iter().map(|s| (s.to_string(), 1)).collect();
    assert_eq!(bars(&md), expected);
    assert!(md.contains(r#"class="bar succeeded wait""#), "the approval's wait is drawn apart");
    assert_eq!(md.matches(r#"<path class="retry""#).count(), 1, "one mark for the one retry");
}

#[test]
fn the_html_report_is_one_self_contained_page_and_json_gives_its_data() {
    let (out, run, _moto) = failed_failover();
    let page = out.then().args(["report", &run, "--format", "html"]).run().success().stdout_lacks(SECRET).stdout().to_string();
    assert!(page.starts_with("<!DOCTYPE html>") && page.trim_end().ends_with("</html>"), "{page}");
    for external in ["<script", "<link", "src=", "href=", "@import", "url(http"] {
        assert!(!page.contains(external), "{external} in the page");
    }
    at(&page, "<style>");
    at(&page, "approved by alice: DR site checked, TTL 60s");
    at(&page, "<td>DNS app.example.com. A: 192.0.2.10 → 198.51.100.7</td>");
    at(&page, "attempt 1 failed: the script exited with 3: replica not ready yet");
    at(&page, "<h2>Child run ");
    at(&page, r#"<span class="status failed">failed</span>"#);
    assert_eq!(bars(&page).len(), 9);

    // The same report as data.
    let data = out.then().args(["report", &run, "--output", "json"]).run().success().stdout_lacks(SECRET).stdout_json();
    let r = &data["run"];
    assert_eq!((r["id"].as_str(), r["status"].as_str(), r["attempt"].as_u64()), (Some(run.as_str()), Some("failed"), Some(2)));
    let flaky = r["steps"].as_array().unwrap().iter().find(|s| s["id"] == "flaky").unwrap();
    assert_eq!(flaky["spans"][0]["retries"][0]["delay_ms"], 200);
    assert!(flaky["spans"][0]["retries"][0]["error"].as_str().unwrap().contains("replica not ready yet"));
    let dns = r["changes"].as_array().unwrap().iter().find(|c| c["step"] == "dns").unwrap();
    assert_eq!(dns["summary"], "DNS app.example.com. A: 192.0.2.10 → 198.51.100.7");
    assert_eq!(r["children"][0]["parent_step"], "checks");
    assert_eq!(r["children"][0]["steps"].as_array().unwrap().len(), 2);
    let acts: Vec<(&str, &str)> =
        r["operators"].as_array().unwrap().iter().map(|a| (a["by"].as_str().unwrap(), a["action"].as_str().unwrap())).collect();
    assert_eq!(acts, [("bob", "started"), ("alice", "approved gate"), ("carol", "resumed (attempt 2)")]);
}

const GOOD: &str = r#"{"root_cause_category": "aws_infrastructure", "confidence": "high", "evidence": "AWS Health shows open EC2 events", "recommended_action": "trigger_dr", "reasoning": "the region is failing"}"#;

#[test]
fn the_analysis_shows_the_models_decision_the_rules_and_the_score() {
    let llm = Scripted::start(|_, _| {
        Reply::Json(
            200,
            json!({ "id": "c1", "object": "chat.completion", "model": "stand-in",
                "choices": [{ "index": 0, "message": { "role": "assistant", "content": GOOD }, "finish_reason": "stop" }] })
            .to_string(),
        )
    });
    let yaml = format!(
        r#"version: 1
name: analyse
secrets:
  llm_key: {{ env: LLM_KEY }}
signals:
  app:
    uses: exec
    with: {{ cmd: [echo, '{{"state": "down"}}'], parse: json }}
    weight:
      - {{ when: "outputs.json.state == 'up'", weight: 0 }}
      - {{ weight: 5 }}
levels:
  - {{ name: fine, max: 3 }}
  - {{ name: dr_failover }}
steps:
  rules:
    needs: [score]
    uses: incident.analyze
    with: {{ level: "{{{{ steps.score.outputs.level }}}}", score: "{{{{ steps.score.outputs.total }}}}", error_rate: 0.5 }}
  model:
    needs: [score]
    uses: llm
    with:
      provider: openai
      base_url: "{url}"
      model: stand-in-1
      api_key: "{{{{ secrets.llm_key }}}}"
      prompt: "Decide."
"#,
        url = llm.url()
    );
    let key = "sk-report-test-key-987";
    let out = Test::new().file("r.yaml", yaml).env("LLM_KEY", key).args(["run", "r.yaml"]).run().success();
    let run = process::latest_run(&out.state_dir());
    let md = out.then().args(["report", &run]).run().success().stdout_lacks(key).stdout().to_string();
    let analysis = &md[at(&md, "## Analysis")..at(&md, "## What changed")];
    at(analysis, "### Health score (step score)");
    at(analysis, "| app | succeeded | 5 | +5 |");
    at(analysis, "Total 5 — level dr_failover");
    at(analysis, "### Analysis by llm (stand-in-1) in step model");
    at(analysis, "| Provider | openai |");
    at(analysis, "| Prompt SHA-256 | ");
    at(analysis, "| root_cause_category | aws_infrastructure |");
    at(analysis, "| recommended_action | trigger_dr |");
    at(analysis, "| reasoning | the region is failing |");
    at(analysis, "The model's reply, as received:");
    at(analysis, "### Analysis by rules in step rules");
    at(analysis, "| rule | ");
}

#[test]
fn a_run_in_progress_is_reported_by_the_process_that_owns_it() {
    let yaml = "version: 1\nname: slow\nsteps:\n  quick: { uses: noop }\n  wait:\n    needs: [quick]\n    uses: exec\n    with: { script: \"touch started; sleep 30\" }\n";
    let setup = Test::new().file("r.yaml", yaml).args(["validate", "r.yaml"]).run().success();
    let bg = Background::spawn(setup.then().args(["run", "r.yaml"]).command(), setup.path());
    process::wait_for("the step to start", Duration::from_secs(30), || setup.path().join("started").exists());
    let state = setup.state_dir();
    let run = process::latest_run(&state);
    let page = setup.then().args(["report", &run, "--format", "html"]).run().success().stdout().to_string();
    at(&page, "The run is still in progress");
    at(&page, "<td>exec</td>");
    assert!(page.contains(r#"class="bar running open" data-run=""#) && page.contains(r#"class="now""#), "{page}");
    assert_eq!(bars(&page).keys().collect::<Vec<_>>(), ["quick", "wait"]);
    process::json(&state, &["cancel", &run]);
    assert_eq!(bg.wait(Duration::from_secs(30)).code, Some(1));
}

#[test]
fn an_unknown_run_is_bad_input() {
    Test::new().args(["report", "20990101-000000-dead"]).run().code(2).stderr_contains("no run `20990101-000000-dead`").stdout_empty();
}
