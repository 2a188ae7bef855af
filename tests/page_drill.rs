//! The page's drills, in headless Chromium on real drills started through the API: the
//! DRILL badge in the runs list and on the run, the Drills table (when, runbook, result,
//! RTO, RPO, teardown) with a failed teardown in red saying to fix and resume, and a drill
//! run's section (RTO, RPO, stages) from the same measure as `phoenix drills` and the report.
//! Screenshots go to TARGET/test-artifacts/page/drill-*.png.

use serde_json::{Value, json};

use crate::chromium::{Chromium, artifacts};
use crate::drill::with_teardown;
use crate::serve_support::{ONCALL, Server, TOKENS};
use crate::support::Test;

fn start(server: &Server, runbook: &str, drill: bool) -> String {
    let body = json!({ "runbook": runbook, "drill": drill }).to_string();
    let (status, v) = server.call("POST", "/api/v1/runs", Some(ONCALL), Some(&body));
    assert_eq!(status, 202, "{v}");
    v["id"].as_str().expect("a run id").to_string()
}

fn wait_ended(server: &Server, id: &str) -> Value {
    crate::process::wait_for(&format!("run {id} to end"), std::time::Duration::from_secs(60), || {
        let r = server.run(id);
        r["in_progress"] == false && (r["status"] == "succeeded" || r["status"] == "failed")
    });
    server.run(id)
}

fn is(page: &mut Chromium, expression: &str) -> Value {
    page.eval(expression)
}

#[test]
fn the_page_marks_drills_lists_them_and_shows_a_failed_teardown_in_red() {
    let mut page = Chromium::start();
    let broken = "    broken: { uses: exec, needs: [log_undo], with: { script: \"exit 3\" } }";
    let t = Test::new()
        .file("runbooks/td.yaml", with_teardown(""))
        .file("runbooks/tdbroken.yaml", with_teardown(broken).replace("name: td\n", "name: tdbroken\n"))
        .file("serve.yaml", format!("runbooks: runbooks\n{TOKENS}"));
    let server = Server::start(t.path());
    let good = start(&server, "td", true);
    let good_run = wait_ended(&server, &good);
    assert_eq!((good_run["status"].as_str(), good_run["teardown"].as_str()), (Some("succeeded"), Some("succeeded")), "{good_run:#}");
    let prod = start(&server, "td", false);
    wait_ended(&server, &prod);
    let bad = start(&server, "tdbroken", true);
    let bad_run = wait_ended(&server, &bad);
    assert_eq!(bad_run["teardown"], "failed", "{bad_run:#}");
    let shots = artifacts();

    page.open(&format!("http://{}/#token={ONCALL}&run={bad}", server.addr));
    let row = |id: &str| format!("document.querySelector('#runs-body tr[data-run=\"{id}\"]')");
    page.wait_until("the three runs listed", &format!("{} && {} && {}", row(&good), row(&prod), row(&bad)));
    // The badge on each drill in the runs list, none on the production run.
    assert_eq!(is(&mut page, &format!("{}.querySelector('.drill-badge')?.textContent", row(&bad))), json!("DRILL"));
    assert_eq!(is(&mut page, &format!("{}.querySelector('.drill-badge')?.textContent", row(&good))), json!("DRILL"));
    assert_eq!(is(&mut page, &format!("{}.querySelector('.drill-badge') === null", row(&prod))), json!(true));

    // The Drills table: the two drills, newest first, not the production run.
    page.wait_until(
        "the drills table",
        "document.querySelectorAll('#drills-body tr').length === 2 && !document.getElementById('drills').hidden",
    );
    assert_eq!(is(&mut page, "[...document.querySelectorAll('#drills-body tr')].map(r => r.dataset.drill)"), json!([bad, good]));
    let cell = |id: &str, sel: &str| format!("document.querySelector('#drills-body tr[data-drill=\"{id}\"] {sel}')");
    let rto = good_run["measure"]["rto_seconds"].as_f64().expect("the good drill's RTO");
    assert_eq!(is(&mut page, &format!("{}.textContent", cell(&good, "[data-rto]"))), json!(format!("{rto:.1}s")));
    assert_eq!(is(&mut page, &format!("{}.textContent", cell(&good, "[data-rpo]"))), json!("–"), "no lag step: no RPO");
    assert_eq!(is(&mut page, &format!("{}.textContent", cell(&good, "[data-teardown]"))), json!("succeeded"));
    assert_eq!(is(&mut page, &format!("{}.textContent", cell(&bad, "td .badge"))), json!("failed"));
    let failed = cell(&bad, "[data-teardown=\"failed\"]");
    let words = is(&mut page, &format!("{failed}?.textContent"));
    let words = words.as_str().unwrap_or_default();
    assert!(words.contains("TEARDOWN FAILED") && words.contains("fix the targets, then phoenix resume"), "{words}");
    // In red: the failure's ink on its background, as a failed step is drawn.
    assert_eq!(is(&mut page, &format!("getComputedStyle({failed}).color")), json!("rgb(143, 20, 20)"));
    assert_ne!(is(&mut page, &format!("getComputedStyle({}).color", cell(&good, "[data-teardown]"))), json!("rgb(143, 20, 20)"));

    // The drill's own page: the badge, and its section with RTO, RPO, stages and teardown.
    page.wait_until(
        "the drill's page",
        &format!("document.getElementById('run-id').textContent === '{bad}' && !document.getElementById('drill').hidden"),
    );
    assert_eq!(is(&mut page, "document.getElementById('run-drill').hidden"), json!(false));
    let m = &bad_run["measure"];
    let measure = |k: &str| format!("document.querySelector('#drill [data-measure=\"{k}\"]').textContent");
    assert!(m["verified_by"] == "check", "{m:#}");
    assert_eq!(
        is(&mut page, &measure("rto")),
        json!(format!("{:.1}s (start to the end of `check`, the first passing verification)", m["rto_seconds"].as_f64().unwrap()))
    );
    assert_eq!(is(&mut page, &measure("rpo")), json!("–"));
    let words = is(&mut page, &measure("teardown"));
    let words = words.as_str().unwrap_or_default();
    assert!(words.contains("TEARDOWN FAILED") && words.contains(&format!("then resume the run (phoenix resume {bad})")), "{words}");
    let stages: Vec<Value> = m["stages"].as_array().unwrap().iter().map(|s| s["step"].clone()).collect();
    assert!(!stages.is_empty(), "{m:#}");
    assert_eq!(is(&mut page, "[...document.querySelectorAll('#drill [data-stage]')].map(r => r.dataset.stage)"), json!(stages));
    page.screenshot(&shots.join("drill-1-failed-teardown.png"));

    // A production run's page has neither.
    page.eval(&format!("location.hash = 'run={prod}'"));
    page.wait_until("the production run's page", &format!("document.getElementById('run-id').textContent === '{prod}'"));
    assert_eq!(is(&mut page, "document.getElementById('run-drill').hidden && document.getElementById('drill').hidden"), json!(true));
    page.screenshot(&shots.join("drill-2-production.png"));
    assert!(page.exceptions().is_empty(), "the page threw: {:?}", page.exceptions());
}
