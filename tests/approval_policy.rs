//! The approval policy: a quorum of distinct approvers, one rejection rejecting at once, the
//! initiator refused (`distinct_from_initiator`), one vote per person, a timeout that rejects
//! an unmet quorum — each scenario with a ledger the gated step appends to, so a wrong or
//! double switch shows.

use std::time::Duration;

use serde_json::Value;

use crate::process::{self, Background, Terminal, lines, step, step_states, wait_for};
use crate::serve_support::{ALERTMANAGER, ONCALL, Server, VIEWER};
use crate::support::{Output, Test};

/// A gate needing two of alice, bob and carol, and never whoever started or resumed the run.
fn quorum_runbook(extra: &str) -> String {
    format!(
        r#"version: 1
name: quorum
lock: quorum
steps:
  prepare:
    uses: exec
    with: {{ script: "echo prepare >> ledger" }}
  gate:
    needs: [prepare]
    uses: approval
{extra}    with: {{ message: "Point app.example.com at the DR site?", approvers: [alice, bob, carol], quorum: 2, distinct_from_initiator: true }}
  switch:
    needs: [gate]
    uses: exec
    with: {{ script: "echo switch >> ledger" }}
"#
    )
}

/// Runs the quorum runbook as `by` with `--no-wait`: it halts at the gate (exit 3).
fn halted(by: &str) -> (Output, String) {
    let out = Test::new().file("r.yaml", quorum_runbook("")).args(["run", "r.yaml", "--no-wait", "--as", by]).run().code(3);
    let run = process::latest_run(&out.state_dir());
    (out, run)
}

fn approve(out: &Output, run: &str, args: &[&str]) -> Output {
    let all: Vec<&str> = ["approve", run, "gate"].into_iter().chain(args.iter().copied()).collect();
    out.then().args(all).run()
}

fn ledger(out: &Output) -> Vec<String> {
    lines(&out.path().join("ledger"))
}

#[test]
fn a_quorum_of_two_waits_after_the_first_vote_and_passes_on_the_second_once() {
    let (out, run) = halted("dave");
    approve(&out, &run, &["--as", "alice", "--comment", "replica lag 0"])
        .success()
        .stdout_contains("1 of 2 approvals, 1 more needed from other approvers");
    let gate = step(&process::status(&out.state_dir(), &run), "gate").clone();
    assert_eq!(gate["status"], "waiting");
    assert!(gate["decided"].is_null(), "one approval of two decides nothing: {gate:#}");
    assert_eq!((gate["votes"]["quorum"].as_u64(), gate["votes"]["needed"].as_u64()), (Some(2), Some(1)), "{gate:#}");
    assert_eq!(gate["votes"]["cast"][0]["by"], "alice");
    assert!(gate["votes"]["cast"][0]["via"].as_str().is_some_and(|v| v.starts_with("cli, uid ")), "{gate:#}");

    // Resumed with one vote of two: the vote is counted, the gate still waits, nothing switched.
    out.then().args(["resume", &run, "--as", "dave"]).run().code(3);
    assert_eq!(ledger(&out), ["prepare"]);
    let gate = step(&process::status(&out.state_dir(), &run), "gate").clone();
    assert_eq!((gate["status"].as_str(), gate["votes"]["needed"].as_u64()), (Some("waiting"), Some(1)), "{gate:#}");

    approve(&out, &run, &["--as", "bob"]).success().stdout_contains(&format!("continue it with: phoenix resume {run}"));
    out.then().args(["resume", &run, "--as", "dave"]).run().success();
    assert_eq!(ledger(&out), ["prepare", "switch"], "the gated step ran exactly once");
    let s = process::status(&out.state_dir(), &run);
    let gate = step(&s, "gate");
    assert_eq!(gate["approval"]["by"], "bob", "the decision is the vote that reached the quorum: {gate:#}");
    let voters: Vec<&str> = gate["outputs"]["votes"].as_array().unwrap().iter().map(|v| v["by"].as_str().unwrap()).collect();
    assert_eq!(voters, ["alice", "bob"]);
    // One approval event per vote, each saying who.
    let logs = process::json(&out.state_dir(), &["logs", &run, "gate"]);
    let by: Vec<&str> = logs["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "approval" && e["approved"] == true)
        .map(|e| e["by"].as_str().unwrap())
        .collect();
    assert_eq!(by, ["alice", "bob"], "{logs:#}");
}

#[test]
fn votes_collected_on_a_halted_run_apply_in_one_resume() {
    let (out, run) = halted("dave");
    approve(&out, &run, &["--as", "carol"]).success();
    approve(&out, &run, &["--as", "alice"]).success();
    let gate = step(&process::status(&out.state_dir(), &run), "gate").clone();
    assert!(gate["decided"].as_str().is_some_and(|d| d.starts_with("approved by alice") && d.ends_with("applied when the run resumes")));
    approve(&out, &run, &["--as", "bob"]).code(2).stderr_contains("was already approved by alice");
    out.then().args(["resume", &run, "--as", "dave"]).run().success();
    assert_eq!(ledger(&out), ["prepare", "switch"]);
    let voters: Vec<String> = step(&process::status(&out.state_dir(), &run), "gate")["votes"]["cast"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["by"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(voters, ["carol", "alice"]);
}

#[test]
fn whoever_started_or_resumed_the_run_may_not_approve_it() {
    let (out, run) = halted("alice");
    approve(&out, &run, &["--as", "alice"])
        .code(2)
        .stderr_contains("`alice` may not decide on `gate`")
        .stderr_contains("distinct_from_initiator");
    // Resuming is starting the rest of it: bob resumed, so bob may not approve either.
    out.then().args(["resume", &run, "--as", "bob"]).run().code(3);
    approve(&out, &run, &["--as", "bob"]).code(2).stderr_contains("`bob` may not decide on `gate`");
    let gate = step(&process::status(&out.state_dir(), &run), "gate").clone();
    assert_eq!(gate["votes"]["cast"], Value::Array(vec![]), "no refused vote was recorded: {gate:#}");
    // Carol, who did neither, can; her one vote of the two needed switches nothing.
    approve(&out, &run, &["--as", "carol"]).success();
    out.then().args(["resume", &run, "--as", "carol"]).run().code(3);
    assert_eq!(ledger(&out), ["prepare"]);
    let gate = step(&process::status(&out.state_dir(), &run), "gate").clone();
    assert_eq!((gate["votes"]["cast"][0]["by"].as_str(), gate["votes"]["needed"].as_u64()), (Some("carol"), Some(1)), "{gate:#}");
}

#[test]
fn a_second_vote_by_the_same_person_is_refused_naming_the_first() {
    let (out, run) = halted("dave");
    approve(&out, &run, &["--as", "alice", "--comment", "first"]).success();
    for again in [vec!["--as", "alice"], vec!["--reject", "--as", "alice", "--comment", "changed my mind"]] {
        let args: Vec<&str> = again;
        approve(&out, &run, &args)
            .code(2)
            .stderr_contains("`alice` already voted on `gate`: approved by alice: first (at ")
            .stderr_contains("1 more approval(s) needed");
    }
    // Alice's vote counted once: a resume still waits, nothing switched.
    out.then().args(["resume", &run, "--as", "dave"]).run().code(3);
    assert_eq!(ledger(&out), ["prepare"]);
    // Once the run holds her vote, a second is refused the same way.
    approve(&out, &run, &["--as", "alice"]).code(2).stderr_contains("`alice` already voted on `gate`");
    let gate = step(&process::status(&out.state_dir(), &run), "gate").clone();
    assert_eq!(gate["votes"]["cast"].as_array().unwrap().len(), 1, "{gate:#}");
}

#[test]
fn a_rejection_after_one_approval_rejects_at_once() {
    let (out, run) = halted("dave");
    approve(&out, &run, &["--as", "alice"]).success();
    approve(&out, &run, &["--reject", "--as", "carol", "--comment", "DR database is still a standby"]).success();
    approve(&out, &run, &["--as", "bob"]).code(2).stderr_contains("was already rejected by carol");
    out.then().args(["resume", &run, "--as", "dave"]).run().code(1);
    assert_eq!(ledger(&out), ["prepare"], "a rejected gate let its step run");
    let s = process::status(&out.state_dir(), &run);
    assert_eq!(step_states(&s), ["prepare=succeeded", "gate=failed", "switch=upstream_failed"]);
    assert!(step(&s, "gate")["error"].as_str().unwrap().contains("rejected by carol: DR database is still a standby"), "{s:#}");
}

#[test]
fn a_quorum_not_met_by_the_timeout_rejects_and_the_step_never_runs() {
    // A run in progress (a second branch keeps it going): the gate times out by itself.
    let busy =
        "  busy:\n    uses: exec\n    with: { script: \"for i in $(seq 1200); do [ -e release ] && exit 0; sleep 0.05; done; exit 1\" }\n";
    let yaml = quorum_runbook("    timeout: 4s\n") + busy;
    let t = Test::new().file("r.yaml", yaml).args(["validate", "r.yaml"]).run().success();
    let bg = Background::spawn(t.then().args(["run", "r.yaml", "--no-wait", "--as", "dave"]).command(), t.path());
    let state = t.state_dir();
    wait_for("the control socket", Duration::from_secs(30), || state.join("phoenix.sock").exists());
    wait_for("the run to be recorded", Duration::from_secs(30), || !process::run_ids(&state).is_empty());
    let run = process::latest_run(&state);
    wait_for("the gate to wait", Duration::from_secs(30), || step(&process::status(&state, &run), "gate")["status"] == "waiting");
    // One vote of two, through the run's socket.
    t.then().args(["approve", &run, "gate", "--as", "alice"]).run().success().stdout_contains("the run continues once its gate is decided");
    wait_for("the gate to time out", Duration::from_secs(60), || step(&process::status(&state, &run), "gate")["status"] == "failed");
    std::fs::write(t.path().join("release"), "").unwrap();
    let end = bg.wait(Duration::from_secs(60));
    assert_eq!(end.code, Some(1), "{}", end.stderr);
    assert_eq!(lines(&t.path().join("ledger")), ["prepare"], "the gated step ran without its quorum");
    let s = process::status(&state, &run);
    let gate = step(&s, "gate");
    assert!(gate["error"].as_str().unwrap().contains("timed out after 4s (quorum not met: 1 of 2 approvals): rejected"), "{gate:#}");
    assert_eq!((gate["approval"]["by"].as_str(), gate["approval"]["approved"].as_bool()), (Some("timeout"), Some(false)), "{gate:#}");
}

#[test]
fn two_voters_racing_for_the_last_vote_decide_the_gate_once() {
    // Ten rounds: each time alice has voted, then bob and carol vote at the same instant for
    // the one approval still needed. Exactly one is recorded, the other is refused.
    for round in 0..10 {
        let (out, run) = halted("dave");
        approve(&out, &run, &["--as", "alice"]).success();
        let spawn = |who: &str| {
            let mut cmd = out.then().args(["approve", &run, "gate", "--as", who]).command();
            cmd.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap()
        };
        let (b, c) = (spawn("bob"), spawn("carol"));
        let (b, c) = (b.wait_with_output().unwrap(), c.wait_with_output().unwrap());
        let codes = (b.status.code(), c.status.code());
        assert!(codes == (Some(0), Some(2)) || codes == (Some(2), Some(0)), "round {round}: {codes:?} {b:?} {c:?}");
        let refused = if codes.0 == Some(2) { &b } else { &c };
        assert!(String::from_utf8_lossy(&refused.stderr).contains("a second decision is not recorded"), "{refused:?}");
        out.then().args(["resume", &run, "--as", "dave"]).run().success();
        assert_eq!(ledger(&out), ["prepare", "switch"], "round {round}");
        let cast = step(&process::status(&out.state_dir(), &run), "gate")["votes"]["cast"].as_array().unwrap().len();
        assert_eq!(cast, 2, "round {round}: exactly the two votes that decided");
    }
}

/// Tokens named after people: `oncall` starts runs (and may approve), alice and bob approve.
const PEOPLE: &str = "tokens:\n  - { name: oncall, env: T_ONCALL, rights: [read, run, approve] }\n  - { name: alice, env: T_VIEWER, rights: [read, approve] }\n  - { name: bob, env: T_AM, rights: [read, approve] }\n";

#[test]
fn over_the_api_the_initiator_is_refused_403_a_double_vote_409_and_the_votes_show() {
    let yaml = quorum_runbook("").replace("approvers: [alice, bob, carol]", "approvers: [oncall, alice, bob]");
    let t = Test::new().file("runbooks/quorum.yaml", yaml).file("serve.yaml", format!("runbooks: runbooks\n{PEOPLE}"));
    let mut server = Server::start(t.path());
    let (status, v) = server.call("POST", "/api/v1/runs", Some(ONCALL), Some(r#"{"runbook": "quorum"}"#));
    assert_eq!(status, 202, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    server.wait_step(&id, "gate", "waiting");
    let approve = format!("/api/v1/runs/{id}/steps/gate/approve");

    // The token that started the run may not approve it.
    let (status, v) = server.call("POST", &approve, Some(ONCALL), Some("{}"));
    assert_eq!(status, 403, "{v}");
    assert!(v["error"].as_str().unwrap().contains("distinct_from_initiator"), "{v}");

    let (status, v) = server.call("POST", &approve, Some(VIEWER), Some(r#"{"comment": "lag is zero"}"#));
    assert_eq!(status, 200, "{v}");
    // The votes so far, in the run's JSON and in what the page asks.
    let run = server.run(&id);
    let gate = run["steps"].as_array().unwrap().iter().find(|s| s["id"] == "gate").unwrap().clone();
    assert_eq!(gate["status"], "waiting");
    assert_eq!(gate["votes"]["cast"][0]["by"], "alice");
    assert_eq!(gate["votes"]["cast"][0]["via"], "http, token `alice`");
    assert!(gate["votes"]["cast"][0]["at"].as_str().is_some_and(|a| a.ends_with('Z')), "{gate:#}");
    assert_eq!(run["waiting"][0]["needed"], 1, "{run:#}");
    assert_eq!(run["waiting"][0]["votes"][0]["by"], "alice", "{run:#}");

    // A second vote by alice, either way: 409, naming her first.
    for verdict in ["approve", "reject"] {
        let (status, v) = server.call("POST", &format!("/api/v1/runs/{id}/steps/gate/{verdict}"), Some(VIEWER), Some("{}"));
        assert_eq!(status, 409, "{v}");
        assert!(v["error"].as_str().unwrap().contains("`alice` already voted on `gate`: approved by alice: lag is zero"), "{v}");
    }
    assert!(!t.path().join("ledger").exists() || lines(&t.path().join("ledger")) == ["prepare"]);

    let (status, v) = server.call("POST", &approve, Some(ALERTMANAGER), Some("{}"));
    assert_eq!(status, 200, "{v}");
    let run = server.wait_status(&id, "succeeded");
    assert_eq!(lines(&t.path().join("ledger")), ["prepare", "switch"]);
    let gate = run["steps"].as_array().unwrap().iter().find(|s| s["id"] == "gate").unwrap().clone();
    assert_eq!(gate["approval"]["by"], "bob");
    // After the decision, another vote is refused naming it.
    let (status, v) = server.call("POST", &approve, Some(ONCALL), Some("{}"));
    assert_eq!(status, 409, "{v}");
    server.stop();
}

#[test]
fn a_policy_that_could_never_pass_or_opens_unattended_is_refused_at_load() {
    let yaml = r#"version: 1
name: q
steps:
  gate:
    uses: approval
    with: { message: "go?", approvers: [alice, bob], quorum: 3, timeout_decision: approve }
  none:
    uses: approval
    with: { message: "go?", quorum: 0 }
  rendered:
    uses: approval
    with: { message: "go?", quorum: "{{ vars.q }}" }
vars: { q: 1 }
"#;
    Test::new()
        .file("r.yaml", yaml)
        .args(["validate", "r.yaml"])
        .run()
        .code(2)
        .stderr_contains("r.yaml:6:")
        .stderr_contains("`quorum: 3` needs more approvers than the 2 listed: the gate could never pass")
        .stderr_contains("lower `quorum` to at most 2")
        .stderr_contains("`timeout_decision: approve` is not allowed")
        .stderr_contains("`quorum: 0` would pass the gate with no approval at all")
        .stderr_contains("not a whole number written in the runbook");
    // Two of two listed, and the defaults, are fine.
    let ok = "version: 1\nname: q\nsteps:\n  gate:\n    uses: approval\n    with: { message: \"go?\", approvers: [alice, bob], quorum: 2, distinct_from_initiator: true, timeout_decision: reject }\n";
    Test::new().file("r.yaml", ok).args(["validate", "r.yaml"]).run().success();
}

#[test]
fn over_the_api_two_tokens_racing_for_the_last_vote_on_a_run_in_progress_pass_the_gate_once() {
    // No lock and no distinct_from_initiator: oncall starts each run and races bob for the
    // approval still needed after alice's. Five runs, each with its own ledger line.
    let yaml = quorum_runbook("")
        .replace("lock: quorum\n", "")
        .replace("approvers: [alice, bob, carol]", "approvers: [oncall, alice, bob]")
        .replace(", distinct_from_initiator: true", "")
        .replace("echo switch >> ledger", "echo switch {{ run.id }} >> ledger");
    let t = Test::new().file("runbooks/quorum.yaml", yaml).file("serve.yaml", format!("runbooks: runbooks\n{PEOPLE}"));
    let mut server = Server::start(t.path());
    let mut ids = Vec::new();
    for round in 0..5 {
        let (status, v) = server.call("POST", "/api/v1/runs", Some(ONCALL), Some(r#"{"runbook": "quorum"}"#));
        assert_eq!(status, 202, "{v}");
        let id = v["id"].as_str().unwrap().to_string();
        server.wait_step(&id, "gate", "waiting");
        let approve = format!("/api/v1/runs/{id}/steps/gate/approve");
        assert_eq!(server.call("POST", &approve, Some(VIEWER), Some("{}")).0, 200);
        let (a, b) = std::thread::scope(|s| {
            let a = s.spawn(|| server.call("POST", &approve, Some(ONCALL), Some("{}")));
            let b = s.spawn(|| server.call("POST", &approve, Some(ALERTMANAGER), Some("{}")));
            (a.join().unwrap(), b.join().unwrap())
        });
        let mut codes = [a.0, b.0];
        codes.sort();
        assert_eq!(codes, [200, 409], "round {round}: {a:?} {b:?}");
        let refused = if a.0 == 409 { &a.1 } else { &b.1 };
        assert!(refused["error"].as_str().unwrap().contains("`gate` was already approved by"), "{refused}");
        server.wait_status(&id, "succeeded");
        ids.push(id);
    }
    server.stop();
    let ledger = lines(&t.path().join("ledger"));
    for id in &ids {
        assert_eq!(process::count(&ledger, &format!("switch {id}")), 1, "{ledger:?}");
    }
    assert_eq!(process::count(&ledger, "prepare"), ids.len(), "{ledger:?}");
}

#[test]
fn the_page_shows_the_votes_so_far_and_refuses_a_second_click_in_the_apis_words() {
    let mut page = crate::chromium::Chromium::start();
    let t = Test::new().file("runbooks/quorum.yaml", quorum_runbook("").replace("[alice, bob, carol]", "[oncall, alice, bob]"));
    let t = t.file("serve.yaml", format!("runbooks: runbooks\n{PEOPLE}"));
    let server = Server::start(t.path());
    let (status, v) = server.call("POST", "/api/v1/runs", Some(ONCALL), Some(r#"{"runbook": "quorum"}"#));
    assert_eq!(status, 202, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    server.wait_step(&id, "gate", "waiting");
    let card = "[data-waiting=\"gate\"]";
    let text = |page: &mut crate::chromium::Chromium, sel: &str| {
        page.eval(&format!("document.querySelector('{}')?.textContent ?? ''", sel.replace('\'', "\\'"))).as_str().unwrap_or("").to_string()
    };

    // alice opens the page: no votes yet, two needed.
    page.open(&format!("http://{}/#token={VIEWER}&run={id}", server.addr));
    page.wait_until("the gate's card", "document.querySelector('[data-votes=\"gate\"]') !== null");
    page.wait_until("the votes line", "document.querySelector('[data-votes=\"gate\"]').textContent.includes('2 more approvals needed')");
    assert!(text(&mut page, "[data-votes=\"gate\"]").contains("No votes yet."), "{}", text(&mut page, card));
    page.click("button[data-approve=\"gate\"]");
    page.wait_until(
        "alice's vote on the card",
        "document.querySelector('[data-votes=\"gate\"]').textContent.includes('alice approved at')",
    );
    let votes = text(&mut page, "[data-votes=\"gate\"]");
    assert!(votes.contains("via http, token `alice`") && votes.contains("1 more approval needed (quorum 2)"), "{votes}");
    // A second click is refused in the API's words; the run still waits.
    page.click("button[data-approve=\"gate\"]");
    page.wait_until("the refusal", "document.querySelector('[data-decision-error=\"gate\"]').textContent.includes('409')");
    let refusal = text(&mut page, "[data-decision-error=\"gate\"]");
    assert!(refusal.contains("`alice` already voted on `gate`"), "{refusal}");
    assert_eq!(server.run(&id)["status"], "running");

    let (status, v) = server.call("POST", &format!("/api/v1/runs/{id}/steps/gate/approve"), Some(ALERTMANAGER), Some("{}"));
    assert_eq!(status, 200, "{v}");
    page.wait_until("the run to succeed", "document.getElementById('run-status').dataset.status === 'succeeded'");
    assert_eq!(lines(&t.path().join("ledger")), ["prepare", "switch"]);
    assert!(page.exceptions().is_empty(), "the page threw: {:?}", page.exceptions());
}

#[test]
fn on_a_terminal_the_initiators_own_yes_is_refused_aloud_and_two_others_pass_the_gate() {
    let out = Test::new().file("r.yaml", quorum_runbook("")).args(["validate", "r.yaml"]).run().success();
    let mut term = Terminal::start(out.path(), &out.state_dir(), "run r.yaml --as alice");
    wait_for("the question on the terminal", Duration::from_secs(30), || term.screen().contains("approve `gate`?"));
    term.type_line("y");
    wait_for("the refusal on the terminal", Duration::from_secs(30), || term.screen().contains("your answer was not recorded"));
    assert!(term.screen().contains("distinct_from_initiator"), "{}", term.screen());
    let run = process::latest_run(&out.state_dir());
    // bob's vote through the run's socket leaves it waiting; carol's passes it.
    out.then().args(["approve", &run, "gate", "--as", "bob"]).run().success();
    assert_eq!(step(&process::status(&out.state_dir(), &run), "gate")["status"], "waiting");
    assert_eq!(lines(&out.path().join("ledger")), ["prepare"]);
    out.then().args(["approve", &run, "gate", "--as", "carol"]).run().success();
    assert_eq!(term.wait(), Some(0));
    assert_eq!(lines(&out.path().join("ledger")), ["prepare", "switch"]);
    let gate = step(&process::status(&out.state_dir(), &run), "gate").clone();
    let voters: Vec<&str> = gate["votes"]["cast"].as_array().unwrap().iter().map(|v| v["by"].as_str().unwrap()).collect();
    assert_eq!(voters, ["bob", "carol"], "{gate:#}");
    assert!(gate["votes"]["cast"][0]["via"].as_str().unwrap().starts_with("socket, uid "), "{gate:#}");
}
