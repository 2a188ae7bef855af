//! Attacks: a non-idempotent step stopped mid-way (Ctrl-C, SIGTERM, `phoenix serve` stopping,
//! its own `timeout`) may or may not have taken effect, as after a crash. Nothing runs it
//! again without an operator's word: `phoenix resume` halts (exit 3) and asks for `--retry`
//! or `--skip`, and a step's `retry` tries it again only when the action says the failure came
//! before any effect. Steps append to a ledger, so the tests count executions instead of
//! trusting the engine's word; each case also shows the legitimate path still working.

use std::time::Duration;

use serde_json::Value;

use crate::process::{self, Background, count, lines, step};
use crate::serve_support::{ONCALL, Server, TOKENS};
use crate::support::{Output, Test};

/// `charge` is not idempotent; the first time it runs it hangs (until stopped), afterwards it
/// ends at once. `start charge` and `end charge` bracket each execution in the ledger.
const CHARGE: &str = r#"version: 1
name: billing
steps:
  prepare:
    uses: exec
    with: { script: "echo prepare >> ledger" }
  charge:
    needs: [prepare]
    uses: exec
    idempotent: false
    with:
      script: |
        echo "start charge" >> ledger
        if [ ! -e charged-once ]; then touch charged-once; sleep 1000; fi
        echo "end charge" >> ledger
  receipt:
    needs: [charge]
    uses: exec
    with: { script: "echo receipt >> ledger" }
"#;

fn ledger(out: &Output) -> Vec<String> {
    lines(&out.path().join("ledger"))
}

/// (start charge, end charge, receipt) in the ledger.
fn tally(out: &Output) -> (usize, usize, usize) {
    let l = ledger(out);
    (count(&l, "start charge"), count(&l, "end charge"), count(&l, "receipt"))
}

fn events(out: &Output, run: &str) -> Vec<Value> {
    process::json(&out.state_dir(), &["logs", run])["events"].as_array().cloned().unwrap_or_default()
}

/// Starts `yaml` in the background, waits until `charge` has started, sends `sig` to the
/// `phoenix run` process and waits for it to end with 130 (the checkpoint written).
fn stopped_mid_way(yaml: &str, sig: &str) -> (Output, String) {
    let setup = Test::new().file("r.yaml", yaml).args(["validate", "r.yaml"]).run().success();
    let bg = Background::spawn(setup.then().args(["run", "r.yaml", "--no-wait"]).command(), setup.path());
    process::wait_for("charge to start", Duration::from_secs(30), || setup.path().join("charged-once").exists());
    process::signal(sig, &[bg.pid()]);
    let ended = bg.wait(Duration::from_secs(60));
    assert_eq!(ended.code, Some(130), "{}", ended.stderr);
    let run = process::latest_run(&setup.state_dir());
    (setup, run)
}

/// A plain `phoenix resume` refuses to guess: exit 3, the step named, both ways out given,
/// and nothing ran again.
fn resume_asks(out: &Output, run: &str) {
    out.then()
        .args(["resume", run])
        .run()
        .code(3)
        .stderr_contains("charge")
        .stderr_contains("not idempotent")
        .stderr_contains("may or may not have taken effect")
        .stderr_contains(&format!("phoenix resume {run} --retry charge"))
        .stderr_contains(&format!("phoenix resume {run} --skip charge"));
    assert_eq!(tally(out), (1, 0, 0), "refusing ran nothing: {:?}", ledger(out));
    let s = process::status(&out.state_dir(), run);
    assert_eq!(s["attempt"], 1, "a refused resume changes nothing: {s:#}");
    assert!(step(&s, "charge")["uncertain"].is_string(), "{s:#}");
}

/// `--retry` runs it once more (the operator's word recorded), and the run goes on.
fn retry_runs_it_once_more(out: &Output, run: &str) {
    out.then().args(["resume", run, "--retry", "charge", "--as", "carol"]).run().success();
    assert_eq!(tally(out), (2, 1, 1), "{:?}", ledger(out));
    let s = process::status(&out.state_dir(), run);
    assert_eq!((s["status"].as_str(), step(&s, "charge")["uncertain"].is_null()), (Some("succeeded"), true), "{s:#}");
    assert!(
        events(out, run).iter().any(|e| e["kind"] == "operator" && e["action"] == "retry" && e["detail"] == "charge" && e["by"] == "carol"),
        "who said to retry is recorded"
    );
}

#[test]
fn ctrl_c_during_a_non_idempotent_step_makes_resume_ask_and_retry_runs_it_once_more() {
    let (out, run) = stopped_mid_way(CHARGE, "INT");
    let s = process::status(&out.state_dir(), &run);
    assert_eq!(s["status"], "halted");
    assert!(step(&s, "charge")["uncertain"].as_str().unwrap().contains("interrupted"), "{s:#}");
    // `status` says it, and what to do.
    out.then()
        .args(["status", &run])
        .run()
        .success()
        .stdout_contains("UNCERTAIN")
        .stdout_contains(&format!("phoenix resume {run} --retry charge"))
        .stdout_contains(&format!("phoenix resume {run} --skip charge"));
    // So does the report, for whoever reads it after the incident.
    out.then().args(["report", &run, "--format", "md"]).run().success().stdout_contains("charge: its effect is uncertain (");
    resume_asks(&out, &run);
    retry_runs_it_once_more(&out, &run);
}

#[test]
fn ctrl_c_during_a_non_idempotent_step_then_skip_counts_it_as_done() {
    let (out, run) = stopped_mid_way(CHARGE, "INT");
    resume_asks(&out, &run);
    out.then().args(["resume", &run, "--skip", "charge"]).run().success();
    assert_eq!(tally(&out), (1, 0, 1), "skipped, not run again; the steps after it ran: {:?}", ledger(&out));
    let s = process::status(&out.state_dir(), &run);
    assert_eq!(step(&s, "charge")["status"], "succeeded");
    assert!(step(&s, "charge")["error"].as_str().unwrap().contains("skipped by the operator"), "{s:#}");
    assert!(events(&out, &run).iter().any(|e| e["kind"] == "operator" && e["action"] == "skip" && e["detail"] == "charge"));
}

#[test]
fn sigterm_during_a_non_idempotent_step_makes_resume_ask() {
    let (out, run) = stopped_mid_way(CHARGE, "TERM");
    resume_asks(&out, &run);
    retry_runs_it_once_more(&out, &run);
}

#[test]
fn a_non_idempotent_step_that_timed_out_is_not_retried_and_resume_asks() {
    // `retry` would give it three attempts: a timeout is uncertain, so it gets one.
    let yaml =
        CHARGE.replace("    idempotent: false\n", "    idempotent: false\n    timeout: 1s\n    retry: { attempts: 3, delay: 10ms }\n");
    let out = Test::new().file("r.yaml", yaml).args(["run", "r.yaml", "--no-wait"]).run().code(1);
    let run = process::latest_run(&out.state_dir());
    let s = process::status(&out.state_dir(), &run);
    let charge = step(&s, "charge");
    assert_eq!((charge["status"].as_str(), charge["attempts"].as_u64()), (Some("failed"), Some(1)), "{s:#}");
    let error = charge["error"].as_str().unwrap();
    assert!(error.contains("timed out after 1s") && error.contains("not retried") && error.contains("not idempotent"), "{error}");
    assert!(charge["uncertain"].as_str().unwrap().contains("timed out"), "{s:#}");
    assert!(!events(&out, &run).iter().any(|e| e["kind"] == "retry"), "no retry was attempted");
    resume_asks(&out, &run);
    retry_runs_it_once_more(&out, &run);
}

#[test]
fn an_idempotent_step_that_timed_out_is_still_retried() {
    let yaml = CHARGE.replace("    idempotent: false\n", "    timeout: 1s\n    retry: { attempts: 3, delay: 10ms }\n");
    let out = Test::new().file("r.yaml", yaml).args(["run", "r.yaml", "--no-wait"]).run().success();
    assert_eq!(tally(&out), (2, 1, 1), "timed out once, retried once: {:?}", ledger(&out));
}

#[test]
fn an_idempotent_step_interrupted_is_run_again_by_resume_without_asking() {
    let (out, run) = stopped_mid_way(&CHARGE.replace("    idempotent: false\n", ""), "INT");
    assert!(step(&process::status(&out.state_dir(), &run), "charge")["uncertain"].is_null());
    out.then().args(["resume", &run]).run().success();
    assert_eq!(tally(&out), (2, 1, 1), "{:?}", ledger(&out));
}

#[test]
fn retry_and_skip_still_refuse_a_step_that_is_not_uncertain() {
    let (out, run) = stopped_mid_way(CHARGE, "INT");
    out.then()
        .args(["resume", &run, "--retry", "prepare"])
        .run()
        .code(2)
        .stderr_contains("`prepare` is succeeded, not a step found in flight after a crash or stopped mid-way");
    out.then().args(["resume", &run, "--retry", "charge", "--skip", "charge"]).run().code(2).stderr_contains("choose one");
    assert_eq!(tally(&out), (1, 0, 0), "{:?}", ledger(&out));
}

#[test]
fn a_non_idempotent_step_is_retried_after_a_connection_refused() {
    // Nothing listens on the port: the request was never sent, so retrying is safe.
    let port = crate::postgres::free_port();
    let yaml = format!(
        "version: 1\nname: notify\nsteps:\n  post:\n    uses: http\n    idempotent: false\n    retry: {{ attempts: 3, delay: 10ms }}\n    with: {{ url: \"http://127.0.0.1:{port}/charge\", method: POST, timeout: 5s }}\n"
    );
    let out = Test::new().file("r.yaml", yaml).args(["run", "r.yaml", "--no-wait"]).run().code(1);
    let run = process::latest_run(&out.state_dir());
    let s = process::status(&out.state_dir(), &run);
    let post = step(&s, "post");
    assert_eq!(post["attempts"], 3, "{s:#}");
    assert!(!post["error"].as_str().unwrap().contains("not retried"), "{s:#}");
    assert!(post["uncertain"].is_null(), "a failure before any effect is not uncertain: {s:#}");
    assert_eq!(events(&out, &run).iter().filter(|e| e["kind"] == "retry").count(), 2);
}

#[test]
fn a_non_idempotent_program_that_could_not_start_is_retried() {
    // Permission denied: the program never ran.
    let yaml = "version: 1\nname: blocked\nsteps:\n  run:\n    uses: exec\n    idempotent: false\n    retry: { attempts: 2, delay: 10ms }\n    with: { cmd: [./charge.sh] }\n";
    let out = Test::new()
        .file("r.yaml", yaml)
        .file("charge.sh", "#!/bin/sh\necho ran >> ledger\n")
        .args(["run", "r.yaml", "--no-wait"])
        .run()
        .code(1);
    let s = process::status(&out.state_dir(), &process::latest_run(&out.state_dir()));
    assert_eq!(step(&s, "run")["attempts"], 2, "{s:#}");
    assert!(step(&s, "run")["error"].as_str().unwrap().contains("permission denied"), "{s:#}");
    assert!(ledger(&out).is_empty());
}

#[test]
fn a_non_idempotent_step_that_failed_after_its_effect_is_not_retried_and_says_why() {
    let rb = |idempotent: &str| {
        format!(
            "version: 1\nname: pay\nsteps:\n  pay:\n    uses: exec\n    idempotent: {idempotent}\n    retry: {{ attempts: 3, delay: 10ms }}\n    with: {{ script: \"echo paid >> ledger; exit 1\" }}\n"
        )
    };
    let out = Test::new().file("r.yaml", rb("false")).args(["run", "r.yaml", "--no-wait"]).run().code(1);
    assert_eq!(count(&ledger(&out), "paid"), 1, "its effect happened once and is not repeated: {:?}", ledger(&out));
    let s = process::status(&out.state_dir(), &process::latest_run(&out.state_dir()));
    let pay = step(&s, "pay");
    assert_eq!(pay["attempts"], 1);
    let error = pay["error"].as_str().unwrap();
    assert!(error.contains("exited with 1") && error.contains("not retried") && error.contains("not idempotent"), "{error}");
    // The same step, idempotent, is retried as its policy says.
    let out = Test::new().file("r.yaml", rb("true")).args(["run", "r.yaml", "--no-wait"]).run().code(1);
    assert_eq!(count(&ledger(&out), "paid"), 3, "{:?}", ledger(&out));
}

#[test]
fn serve_stopping_during_a_non_idempotent_step_makes_every_resume_ask() {
    let t = Test::new().file("runbooks/billing.yaml", CHARGE).file("serve.yaml", TOKENS);
    let mut server = Server::start(t.path());
    let (status, v) = server.call("POST", "/api/v1/runs", Some(ONCALL), Some(r#"{"runbook": "billing"}"#));
    assert_eq!(status, 202, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    process::wait_for("charge to start", Duration::from_secs(30), || t.path().join("charged-once").exists());
    let ended = server.stop();
    assert_eq!(ended.code, Some(130), "{}", ended.stderr);
    let state = t.path().join("state");
    let tally = || {
        let l = lines(&t.path().join("ledger"));
        (count(&l, "start charge"), count(&l, "end charge"), count(&l, "receipt"))
    };
    assert_eq!(tally(), (1, 0, 0));
    let s = process::status(&state, &id);
    assert!(step(&s, "charge")["uncertain"].as_str().unwrap().contains("interrupted"), "{s:#}");

    // From the command line, with no server: it asks.
    let cli = |args: &[&str]| {
        std::process::Command::new(process::phoenix_bin()).arg("--state").arg(&state).args(args).current_dir(t.path()).output().unwrap()
    };
    let out = cli(&["resume", &id]);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains(&format!("phoenix resume {id} --retry charge")), "{err}");
    assert_eq!(tally(), (1, 0, 0));

    // Through a restarted server's API: a conflict, naming the way out; nothing ran.
    let server = Server::start(t.path());
    let (status, v) = server.call("POST", &format!("/api/v1/runs/{id}/resume"), Some(ONCALL), None);
    assert_eq!(status, 409, "{v}");
    assert!(v["error"].as_str().unwrap_or("").contains("--retry charge"), "{v}");
    assert_eq!(server.run(&id)["status"], "halted");
    assert_eq!(tally(), (1, 0, 0));

    // Handed over to the server by the command line: it asks too (exit 3), then retries.
    let out = cli(&["resume", &id]);
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(tally(), (1, 0, 0));
    // The API says the same as the command line; a choice of the wrong type is refused, not
    // read as no choice.
    let (status, v) = server.call("POST", &format!("/api/v1/runs/{id}/resume"), Some(ONCALL), Some(r#"{"retry": "charge"}"#));
    assert_eq!(status, 400, "{v}");
    assert_eq!(tally(), (1, 0, 0));
    let (status, v) = server.call("POST", &format!("/api/v1/runs/{id}/resume"), Some(ONCALL), Some(r#"{"retry": ["charge"]}"#));
    assert_eq!(status, 202, "{v}");
    server.wait_status(&id, "succeeded");
    assert_eq!(tally(), (2, 1, 1));
}

#[test]
fn an_item_of_a_non_idempotent_for_each_stopped_mid_way_makes_resume_ask_for_its_step() {
    // Item `fan[2]` hangs the first time; the three others end.
    let yaml = r#"version: 1
name: items
steps:
  fan:
    uses: exec
    idempotent: false
    for_each: [1, 2, 3, 4]
    max_parallel: 4
    with:
      script: |
        echo "start $PHOENIX_STEP_ID" >> ledger
        if [ "$PHOENIX_STEP_ID" = "fan[2]" ] && [ ! -e charged-once ]; then touch charged-once; sleep 1000; fi
        echo "end $PHOENIX_STEP_ID" >> ledger
  after:
    needs: [fan]
    uses: exec
    with: { script: "echo after >> ledger" }
"#;
    let setup = Test::new().file("r.yaml", yaml).args(["validate", "r.yaml"]).run().success();
    let bg = Background::spawn(setup.then().args(["run", "r.yaml", "--no-wait"]).command(), setup.path());
    process::wait_for("items 0, 1 and 3 to end and item 2 to start", Duration::from_secs(30), || {
        let l = ledger(&setup);
        setup.path().join("charged-once").exists() && ["end fan[0]", "end fan[1]", "end fan[3]"].iter().all(|e| l.iter().any(|x| x == e))
    });
    process::signal("INT", &[bg.pid()]);
    assert_eq!(bg.wait(Duration::from_secs(60)).code, Some(130));
    let run = process::latest_run(&setup.state_dir());
    setup
        .then()
        .args(["resume", &run])
        .run()
        .code(3)
        .stderr_contains("fan[2]")
        .stderr_contains(&format!("phoenix resume {run} --retry fan"));
    assert_eq!(count(&ledger(&setup), "start fan[2]"), 1, "{:?}", ledger(&setup));
    setup.then().args(["resume", &run, "--retry", "fan"]).run().success();
    let l = ledger(&setup);
    for (line, n) in [("start fan[0]", 1), ("start fan[1]", 1), ("start fan[3]", 1), ("start fan[2]", 2), ("end fan[2]", 1), ("after", 1)] {
        assert_eq!(count(&l, line), n, "{line}: {l:?}");
    }
}

#[test]
fn a_postgres_query_is_retried_after_a_connection_refused_but_not_after_a_statement_ran() {
    // `postgres.query` is not idempotent by default. Nothing listens on the port: no
    // statement was sent, so its `retry` applies.
    let port = crate::postgres::free_port();
    let yaml = format!(
        "version: 1\nname: db\nsteps:\n  write:\n    uses: postgres.query\n    retry: {{ attempts: 2, delay: 10ms }}\n    with: {{ dsn: \"postgres://app@127.0.0.1:{port}/app\", sql: \"insert into t values (1)\" }}\n"
    );
    let out = Test::new().file("r.yaml", yaml).args(["run", "r.yaml", "--no-wait"]).run().code(1);
    let s = process::status(&out.state_dir(), &process::latest_run(&out.state_dir()));
    let write = step(&s, "write");
    assert_eq!(write["attempts"], 2, "{s:#}");
    assert!(write["error"].as_str().unwrap().contains("could not connect"), "{s:#}");
    assert!(!write["error"].as_str().unwrap().contains("not retried"), "{s:#}");
}

#[test]
fn an_edited_runbook_does_not_undo_the_doubt_about_a_step_stopped_mid_way() {
    let (out, run) = stopped_mid_way(CHARGE, "INT");
    // The operator edits `charge` (a new echo) and resumes with the edit: it still asks.
    let edited = CHARGE.replace("echo \"end charge\" >> ledger", "echo \"end charge\" >> ledger; echo edited >> ledger");
    std::fs::write(out.path().join("edited.yaml"), &edited).unwrap();
    out.then()
        .args(["resume", &run, "--runbook", "edited.yaml", "--yes"])
        .run()
        .code(3)
        .stderr_contains(&format!("phoenix resume {run} --retry charge"));
    assert_eq!(tally(&out), (1, 0, 0), "{:?}", ledger(&out));
    // With the operator's word, the edited step runs.
    out.then().args(["resume", &run, "--runbook", "edited.yaml", "--retry", "charge", "--yes"]).run().success();
    assert_eq!(tally(&out), (2, 1, 1), "{:?}", ledger(&out));
    assert_eq!(count(&ledger(&out), "edited"), 1);
    // Made idempotent by the edit, it simply runs again (the positive side).
    let (out, run) = stopped_mid_way(CHARGE, "INT");
    std::fs::write(out.path().join("edited.yaml"), CHARGE.replace("    idempotent: false\n", "    idempotent: true\n")).unwrap();
    out.then().args(["resume", &run, "--runbook", "edited.yaml", "--yes"]).run().success();
    assert_eq!(tally(&out), (2, 1, 1), "{:?}", ledger(&out));
}
