//! The page `phoenix serve` serves, driven in headless Chromium: a run started through the
//! API shown live as it progresses (its DAG, its waiting approval), a mouse click that
//! approves it, the token taken from the link or asked for in a form, a failing step's error,
//! a refusal shown as the API words it, a rejection that fails the run, and the steps' output
//! as it comes. Screenshots of
//! each stage go to TARGET/test-artifacts/page/ (see `chromium::artifacts`).

use serde_json::{Value, json};

use crate::chromium::{Chromium, artifacts};
use crate::serve_support::{ONCALL, Server, TOKENS, VIEWER};
use crate::support::Test;

/// Steps on either side of an approval; `switch` sleeps so that the page is seen running it.
const GATED: &str = r#"version: 1
name: page-gated
params:
  region: { type: string, default: eu-west-1 }
steps:
  prepare: { uses: noop }
  snapshot:
    needs: [prepare]
    uses: exec
    with: { cmd: [echo, "snapshot taken"] }
  drain:
    needs: [prepare]
    uses: sleep
    with: { duration: 300ms }
  confirm:
    needs: [snapshot, drain]
    uses: approval
    with: { message: "Fail over {{ params.region }}?", approvers: [oncall] }
  switch:
    needs: [confirm]
    uses: sleep
    with: { duration: 2500ms }
  verify:
    needs: [switch]
    uses: exec
    with: { cmd: [echo, verified] }
"#;

/// A check that fails without failing the run, the approval it leads to, and an on_failure
/// step for when the approval is rejected.
const LAGGING: &str = r#"version: 1
name: page-lagging
steps:
  prepare: { uses: noop }
  lag:
    needs: [prepare]
    uses: exec
    continue_on_error: true
    with: { script: "echo 'replica lag is 42s, above the 30s limit' >&2; exit 3" }
  confirm:
    needs: [lag]
    uses: approval
    with: { message: "Replica lag is high: fail over anyway?" }
  switch:
    needs: [confirm]
    uses: exec
    with: { cmd: [echo, switched] }
on_failure:
  tell:
    uses: exec
    with: { cmd: [echo, "the failover was called off"] }
"#;

/// A server with one runbook, and a run of it started through the API.
fn started(runbook: &str, name: &str) -> (Test, Server, String) {
    let t = Test::new().file("runbooks/r.yaml", runbook).file("serve.yaml", format!("runbooks: runbooks\n{TOKENS}"));
    let server = Server::start(t.path());
    let (status, v) = server.call("POST", "/api/v1/runs", Some(ONCALL), Some(&json!({ "runbook": name }).to_string()));
    assert_eq!(status, 202, "{v}");
    let id = v["id"].as_str().expect("a run id").to_string();
    (t, server, id)
}

/// JavaScript: a DAG node's `data-status` (undefined when not drawn).
fn node(step: &str) -> String {
    format!("document.querySelector('#dag [data-step=\"{step}\"]')?.dataset.status")
}

/// JavaScript: true when every listed step's node shows `status`.
fn nodes_are(steps: &[&str], status: &str) -> String {
    steps.iter().map(|s| format!("{} === '{status}'", node(s))).collect::<Vec<_>>().join(" && ")
}

fn text(page: &mut Chromium, selector: &str) -> String {
    let v = page.eval(&format!("document.querySelector({})?.textContent ?? null", json!(selector)));
    v.as_str().unwrap_or_else(|| panic!("nothing on the page matches {selector}")).to_string()
}

fn step<'a>(run: &'a Value, id: &str) -> &'a Value {
    run["steps"].as_array().into_iter().flatten().find(|s| s["id"] == id).unwrap_or_else(|| panic!("no step {id}: {run:#}"))
}

#[test]
fn the_page_shows_a_run_live_and_a_click_approves_its_waiting_step() {
    // The browser first: without one the test fails at once, saying how to install it.
    let mut page = Chromium::start();
    let (t, server, id) = started(GATED, "page-gated");
    let shots = artifacts();
    page.open(&format!("http://{}/#token={ONCALL}&run={id}", server.addr));
    page.eval("window.notReloaded = true");

    page.wait_until(
        "the approval to wait after the steps before it succeeded",
        &format!("{} && {}", nodes_are(&["confirm"], "waiting"), nodes_are(&["prepare", "snapshot", "drain"], "succeeded")),
    );
    // The token left the address bar for the tab's session storage; the deep link stayed.
    assert_eq!(page.eval("location.hash"), json!(format!("#run={id}")));
    assert_eq!(page.eval("sessionStorage.getItem('phoenix.token')"), json!(ONCALL));
    assert_eq!(page.eval("document.getElementById('run-status').dataset.status"), json!("running"));
    assert_eq!(text(&mut page, "#run-status"), "running");
    assert_eq!(text(&mut page, "[data-waiting=\"confirm\"] .question"), "Fail over eu-west-1?");
    assert!(text(&mut page, "[data-waiting=\"confirm\"]").contains("Who may decide: oncall."));
    assert_eq!(page.eval(&format!("document.querySelector('#runs-body tr[data-run=\"{id}\"] .badge').textContent")), json!("running"));
    // The DAG: every `needs` drawn as an edge, each step a column right of what it needs.
    let edges = page.eval("[...document.querySelectorAll('#dag [data-edge]')].map(e => e.dataset.edge).sort()");
    assert_eq!(
        edges,
        json!(["confirm->switch", "drain->confirm", "prepare->drain", "prepare->snapshot", "snapshot->confirm", "switch->verify"])
    );
    let x = page.eval("Object.fromEntries([...document.querySelectorAll('#dag [data-step]')].map(n => [n.dataset.step, Math.round(n.getBoundingClientRect().left)]))");
    let col = |s: &str| x[s].as_i64().unwrap_or_else(|| panic!("no node {s}: {x}"));
    assert!(col("prepare") < col("snapshot") && col("snapshot") == col("drain"), "{x}");
    assert!(col("drain") < col("confirm") && col("confirm") < col("switch") && col("switch") < col("verify"), "{x}");
    page.screenshot(&shots.join("approve-1-waiting.png"));

    page.fill("[data-comment=\"confirm\"]", "standby is healthy");
    page.click("button[data-approve=\"confirm\"]");
    // Live, without a reload: the step after the approval is seen running, then the run ends.
    page.wait_until("the step after the approval to run", &nodes_are(&["switch"], "running"));
    page.wait_until("the approval card to go", "document.getElementById('waiting').hidden");
    page.screenshot(&shots.join("approve-2-running.png"));
    page.wait_until(
        "the run to succeed",
        &format!(
            "document.getElementById('run-status').dataset.status === 'succeeded' && {}",
            nodes_are(&["prepare", "snapshot", "drain", "confirm", "switch", "verify"], "succeeded")
        ),
    );
    assert_eq!(page.eval("window.notReloaded"), json!(true), "the page reloaded");
    assert_eq!(text(&mut page, "#run-status"), "succeeded");
    assert_eq!(text(&mut page, "#run-live"), "finished");
    assert!(text(&mut page, "[data-approval=\"confirm\"]").contains("approved by oncall: standby is healthy"));
    page.wait_until(
        "the runs list to show the run succeeded",
        &format!("document.querySelector('#runs-body tr[data-run=\"{id}\"] .badge').textContent === 'succeeded'"),
    );
    // The steps' output, each line under its step, in the order it came.
    page.wait_until(
        "the output to show the last step's line",
        "(document.getElementById('log').textContent || '').includes('[verify] verified')",
    );
    let log = text(&mut page, "#log");
    let (snapshot, verify) = (log.find("[snapshot] snapshot taken"), log.find("[verify] verified"));
    assert!(snapshot.is_some() && snapshot < verify, "{log}");
    assert_eq!(page.eval("document.getElementById('log-empty').hidden"), json!(true));
    page.screenshot(&shots.join("approve-3-succeeded.png"));

    // The post-incident report downloads with the token.
    let downloads = t.path().join("downloads");
    page.call("Page.setDownloadBehavior", json!({ "behavior": "allow", "downloadPath": downloads }));
    page.click("#run-report-md");
    let report = downloads.join(format!("phoenix-report-{id}.md"));
    crate::process::wait_for("the report to download", crate::chromium::PATIENCE, || report.exists());
    let md = std::fs::read_to_string(&report).unwrap_or_default();
    assert!(md.contains(&id) && md.contains("confirm"), "{md}");

    // The API recorded the click as the token's name.
    let run = server.run(&id);
    assert_eq!(run["status"], "succeeded");
    let approval = &step(&run, "confirm")["approval"];
    assert_eq!(
        (approval["approved"].as_bool(), approval["by"].as_str(), approval["comment"].as_str()),
        (Some(true), Some("oncall"), Some("standby is healthy")),
        "{approval}"
    );

    // The start form lists the runbooks with their params; a start selects the new run, and
    // its Cancel button cancels it.
    page.click("#start-title");
    assert_eq!(page.eval("[...document.querySelectorAll('#start-runbook option')].map(o => o.value)"), json!(["page-gated"]));
    assert_eq!(page.eval("document.querySelector('[data-param=\"region\"]').value"), json!("eu-west-1"));
    page.fill("[data-param=\"region\"]", "us-east-2");
    page.screenshot(&shots.join("approve-4-start-form.png"));
    page.click("#start-submit");
    page.wait_until(
        "the new run to be selected and wait",
        &format!("location.hash.startsWith('#run=') && location.hash !== '#run={id}' && {}", nodes_are(&["confirm"], "waiting")),
    );
    assert_eq!(text(&mut page, "[data-waiting=\"confirm\"] .question"), "Fail over us-east-2?");
    let second = page.eval("decodeURIComponent(location.hash.slice('#run='.length))").as_str().expect("a run id").to_string();
    page.wait_until("the new run at the top of the list", &format!("document.querySelector('#runs-body tr')?.dataset.run === '{second}'"));
    page.click("#run-cancel");
    page.wait_until("the new run to be cancelled", "document.getElementById('run-status').dataset.status === 'cancelled'");
    let run = server.run(&second);
    assert_eq!((run["status"].as_str(), run["params"]["region"].as_str()), (Some("cancelled"), Some("us-east-2")), "{run:#}");
    assert!(page.exceptions().is_empty(), "the page threw: {:?}", page.exceptions());
}

#[test]
fn the_page_asks_for_a_token_shows_a_failed_step_and_a_refusal_and_a_rejection_fails_the_run() {
    let mut page = Chromium::start();
    let (_t, server, id) = started(LAGGING, "page-lagging");
    let shots = artifacts();
    page.open(&format!("http://{}/#run={id}", server.addr));
    page.wait_until("the page to ask for a token", "!document.getElementById('token-form').hidden");
    page.fill("#token-input", VIEWER);
    page.click("#token-submit");

    page.wait_until(
        "the failed check and the waiting approval",
        &format!("{} && {}", nodes_are(&["lag"], "failed"), nodes_are(&["confirm"], "waiting")),
    );
    let error = text(&mut page, "[data-step-error=\"lag\"]");
    assert!(error.contains("replica lag is 42s, above the 30s limit"), "{error}");
    assert!(
        page.eval("document.querySelector('#dag [data-step=\"lag\"] title').textContent")
            .as_str()
            .unwrap_or("")
            .contains("replica lag is 42s")
    );
    assert_eq!(page.eval(&node("tell")), json!("pending"));
    assert_eq!(page.eval("document.querySelector('#dag [data-step=\"tell\"]').dataset.plan"), json!("on_failure"));
    // The failed step's standard error is in the output, marked as such.
    page.wait_until("the step's stderr in the output", "!!document.querySelector('#log .stderr[data-step=\"lag\"]')");
    assert!(text(&mut page, "#log .stderr[data-step=\"lag\"]").contains("replica lag is 42s"));
    page.screenshot(&shots.join("reject-1-failed-step.png"));

    // A token that may only read is refused, in the API's words.
    page.click("button[data-reject=\"confirm\"]");
    page.wait_until(
        "the refusal",
        "document.querySelector('[data-decision-error=\"confirm\"]').textContent.includes('lacks the right `approve`')",
    );
    assert!(text(&mut page, "[data-decision-error=\"confirm\"]").contains("403"));
    page.screenshot(&shots.join("reject-2-refused.png"));

    page.click("#token-forget");
    page.wait_until("the token form", "!document.getElementById('token-form').hidden");
    page.fill("#token-input", ONCALL);
    page.click("#token-submit");
    page.fill("[data-comment=\"confirm\"]", "lag too high");
    page.click("button[data-reject=\"confirm\"]");
    page.wait_until(
        "the run to fail",
        &format!(
            "document.getElementById('run-status').dataset.status === 'failed' && {} && {} && {}",
            nodes_are(&["confirm"], "failed"),
            nodes_are(&["switch"], "upstream_failed"),
            nodes_are(&["tell"], "succeeded")
        ),
    );
    let error = text(&mut page, "[data-step-error=\"confirm\"]");
    assert!(error.contains("rejected by oncall: lag too high"), "{error}");
    // The step after the rejection says which failed step kept it from running.
    assert_eq!(text(&mut page, "[data-step-error=\"switch\"]"), "not run: `confirm` failed");
    let said_twice = page.eval("document.querySelector('[data-upstream=\"switch\"]') !== null");
    assert_eq!(said_twice, json!(false), "the failed step is named once");
    assert_eq!(text(&mut page, "#run-live"), "finished");
    page.screenshot(&shots.join("reject-3-failed.png"));

    let run = server.run(&id);
    assert_eq!(run["status"], "failed");
    let approval = &step(&run, "confirm")["approval"];
    assert_eq!((approval["approved"].as_bool(), approval["by"].as_str()), (Some(false), Some("oncall")), "{approval}");
    assert!(page.exceptions().is_empty(), "the page threw: {:?}", page.exceptions());
}

#[test]
fn a_server_without_tokens_is_opened_with_the_link_it_printed_under_its_csp() {
    let mut page = Chromium::start();
    let open = "version: 1\nname: page-open\nsteps:\n  confirm:\n    uses: approval\n    with: { message: \"Go?\" }\n  after:\n    needs: [confirm]\n    uses: exec\n    with: { cmd: [echo, done] }\n";
    let t = Test::new().file("runbooks/r.yaml", open).file("serve.yaml", "runbooks: runbooks\n");
    let server = Server::start(t.path());
    let stderr = server.bg.as_ref().unwrap().stderr_so_far();
    let link = format!("http://{}/#token={}", server.addr, server.token);
    assert!(stderr.contains(&link), "{stderr}");
    let (status, v) = server.call("POST", "/api/v1/runs", Some(&server.token), Some(r#"{"runbook": "page-open"}"#));
    assert_eq!(status, 202, "{v}");
    let id = v["id"].as_str().unwrap().to_string();

    // The link as printed, plus the run: the page works under the server's CSP (no inline
    // script or style to block), and its click is a same-origin JSON request with the token.
    page.open(&format!("{link}&run={id}"));
    page.wait_until("the approval to wait", &nodes_are(&["confirm"], "waiting"));
    assert_eq!(page.eval("location.hash"), json!(format!("#run={id}")), "the token left the address bar");
    assert_eq!(page.eval("sessionStorage.getItem('phoenix.token')"), json!(server.token));
    page.click("button[data-approve=\"confirm\"]");
    page.wait_until("the run to succeed", "document.getElementById('run-status').dataset.status === 'succeeded'");
    let run = server.run(&id);
    assert!(step(&run, "confirm")["approval"]["via"].as_str().is_some_and(|v| v.starts_with("http, token")), "{run:#}");
    assert!(page.exceptions().is_empty(), "the page threw: {:?}", page.exceptions());
}
