//! The tamper-evident event log: every writer's events (the driver's, a resume's, an
//! approval or a cancel recorded from a terminal) are hash-chained; `phoenix audit verify`
//! names the first record that does not match, on sled and on etcd; `phoenix audit export`
//! writes JSON lines for a SIEM; a run written before the chain is called unchained, not
//! tampered.

use std::sync::Arc;

use phoenix_engine::state::{EtcdCluster, EtcdKv, Kv, open_sled};
use serde_json::{Value, json};

use crate::process::{self, lines};
use crate::support::{Output, Test};

/// A step that fails once then succeeds (a retry), an approval, then the switch.
const GATED: &str = r#"version: 1
name: audited
steps:
  prepare:
    uses: exec
    retry: { attempts: 2, backoff: fixed, delay: 10ms }
    with: { script: "echo try >> tries; test -e tried || { touch tried; exit 1; }" }
  gate:
    needs: [prepare]
    uses: approval
    with: { message: "Switch DNS to the standby?" }
  switch:
    needs: [gate]
    uses: exec
    with: { script: "echo switch >> ledger" }
"#;

/// GATED halted at the gate, approved by alice from a terminal, resumed to the end.
fn approved_and_resumed() -> (Output, String) {
    let out = Test::new().file("r.yaml", GATED).args(["run", "r.yaml", "--no-wait"]).run().code(3);
    let run = process::latest_run(&out.state_dir());
    out.then().args(["approve", &run, "gate", "--as", "alice", "--comment", "standby healthy"]).run().success();
    out.then().args(["resume", &run]).run().success();
    assert_eq!(lines(&out.path().join("tries")).len(), 2, "prepare was retried once");
    assert_eq!(lines(&out.path().join("ledger")), ["switch"]);
    (out, run)
}

fn export(out: &Output, run: &str) -> Vec<Value> {
    let o = out.then().args(["audit", "export", run]).run().success();
    o.stdout().lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}"))).collect()
}

fn event_key(run: &str, seq: u64) -> Vec<u8> {
    format!("e/{run}/{seq:016x}").into_bytes()
}

/// Changes one stored event's text in place, as someone with the store's files would.
fn edit_sled(out: &Output, run: &str, seq: u64, from: &str, to: &str) {
    let kv = open_sled(&out.state_dir()).unwrap_or_else(|e| panic!("open the store: {e}"));
    let k = event_key(run, seq);
    let text = String::from_utf8(kv.get(&k).unwrap().expect("the record")).unwrap();
    assert!(text.contains(from), "{text}");
    kv.apply(vec![(k, Some(text.replacen(from, to, 1).into_bytes()))]).unwrap();
    kv.flush().unwrap();
}

fn delete_sled(out: &Output, run: &str, seq: u64) {
    let kv = open_sled(&out.state_dir()).unwrap_or_else(|e| panic!("open the store: {e}"));
    kv.apply(vec![(event_key(run, seq), None)]).unwrap();
    kv.flush().unwrap();
}

/// The seq of the first exported event matching.
fn seq_of(events: &[Value], what: impl Fn(&Value) -> bool) -> u64 {
    events.iter().find(|e| what(e)).and_then(|e| e["seq"].as_u64()).unwrap_or_else(|| panic!("no such event in {events:#?}"))
}

#[test]
fn every_writer_is_chained_and_export_gives_one_json_line_per_event() {
    let (out, run) = approved_and_resumed();
    let events = export(&out, &run);
    let logged = process::json(&out.state_dir(), &["logs", &run])["events"].as_array().unwrap().len();
    assert_eq!(events.len(), logged, "one line per event");
    for (i, e) in events.iter().enumerate() {
        assert_eq!((e["run"].as_str(), e["seq"].as_u64()), (Some(run.as_str()), Some(i as u64)), "{e:#}");
        assert!(e["time"].as_str().is_some_and(|t| t.ends_with('Z') && t.contains('T')), "RFC 3339: {e:#}");
        assert!(e["kind"].is_string() && e["hash"].as_str().is_some_and(|h| h.len() == 64), "{e:#}");
        if i > 0 {
            assert_eq!(e["prev"], events[i - 1]["hash"], "each line links to the one before");
        }
    }
    // What the issue asks the log to hold, from every writer: the driver (steps, retry,
    // asking), the terminal's approval, the resume.
    let has = |k: &str, f: &dyn Fn(&Value) -> bool| events.iter().any(|e| e["kind"] == k && f(e));
    assert!(has("retry", &|e| e["step"] == "prepare"));
    assert!(has("approval", &|e| e["step"] == "gate" && e["approved"].is_null()));
    assert!(has("operator", &|e| e["action"] == "approval approved" && e["by"] == "alice"));
    assert!(has("run_started", &|e| e["attempt"] == 2));
    assert!(has("step", &|e| e["step"] == "switch" && e["status"] == "succeeded"));
    assert!(has("run_finished", &|e| e["status"] == "succeeded"));
    out.then()
        .args(["audit", "verify", &run])
        .run()
        .success()
        .stdout_contains(&format!("{} event records; the chain is whole up to record {}", events.len(), events.len() - 1))
        .stdout_contains(events.last().unwrap()["hash"].as_str().unwrap());
}

#[test]
fn an_edited_record_is_named_by_its_seq() {
    let (out, run) = approved_and_resumed();
    let events = export(&out, &run);
    let seq = seq_of(&events, |e| e["kind"] == "operator" && e["by"] == "alice");
    // Someone makes it look as if bob approved.
    edit_sled(&out, &run, seq, "\"alice\"", "\"bob\"");
    let o = out.then().args(["audit", "verify", &run]).run().code(1);
    o.stdout_contains(&format!("the chain is broken at record {seq} (")).stdout_contains(&format!("record {seq} was edited"));
    let j = out.then().args(["audit", "verify", &run, "--output", "json"]).run().code(1).stdout_json();
    assert_eq!(
        (j["whole"].as_bool(), j["broken"]["seq"].as_u64(), j["broken"]["tamper"].as_str()),
        (Some(false), Some(seq), Some("edited"))
    );
}

/// With `phoenix serve` owning the state directory, `audit` gets the stored bytes over its
/// control socket and checks them itself: an edit made before the server started is found
/// all the same, and export gives the same lines as from the store.
#[test]
fn audit_checks_the_stored_bytes_while_a_server_owns_the_store() {
    use crate::serve_support::{Server, TOKENS};
    let (out, run) = approved_and_resumed();
    let events = export(&out, &run);
    let seq = seq_of(&events, |e| e["kind"] == "operator" && e["by"] == "alice");
    edit_sled(&out, &run, seq, "\"alice\"", "\"bob\"");
    let edited = export(&out, &run);
    std::fs::write(out.path().join("serve.yaml"), TOKENS).unwrap();
    std::fs::create_dir_all(out.path().join("runbooks")).unwrap();
    let mut server = Server::start(out.path());
    out.then().args(["audit", "verify", &run]).run().code(1).stdout_contains(&format!("the chain is broken at record {seq} ("));
    assert_eq!(export(&out, &run), edited, "the owner hands over the bytes as stored");
    out.then().args(["audit", "verify", "20990101-000000-0000"]).run().code(2).stderr_contains("no run");
    server.stop();
}

#[test]
fn a_deleted_record_is_named_as_the_gap() {
    let (out, run) = approved_and_resumed();
    let events = export(&out, &run);
    let seq = seq_of(&events, |e| e["kind"] == "retry");
    delete_sled(&out, &run, seq);
    out.then()
        .args(["audit", "verify", &run])
        .run()
        .code(1)
        .stdout_contains(&format!("broken at record {seq}"))
        .stdout_contains(&format!("record {seq} is missing: it was deleted"));
    assert_eq!(export(&out, &run).len(), events.len() - 1, "export writes what is stored");
}

#[test]
fn a_cancel_from_a_terminal_is_chained_too() {
    let out = Test::new().file("r.yaml", GATED).args(["run", "r.yaml", "--no-wait"]).run().code(3);
    let run = process::latest_run(&out.state_dir());
    out.then().args(["cancel", &run, "--as", "carol"]).run().success();
    let events = export(&out, &run);
    let last = events.last().unwrap();
    assert_eq!((last["kind"].as_str(), last["status"].as_str()), (Some("run_finished"), Some("cancelled")), "{events:#?}");
    assert!(events.iter().any(|e| e["kind"] == "operator" && e["action"] == "cancel" && e["by"] == "carol"));
    out.then().args(["audit", "verify", &run]).run().success().stdout_contains("the chain is whole");
    // The cancel's own record, edited.
    edit_sled(&out, &run, last["seq"].as_u64().unwrap(), "\"cancelled\"", "\"succeeded\"");
    out.then().args(["audit", "verify", &run]).run().code(1).stdout_contains(&format!("record {} was edited", last["seq"]));
}

#[test]
fn a_run_written_before_the_chain_is_unchained_not_tampered_and_chained_once_resumed() {
    let run = "20250101-000000-0a1d";
    let src = "version: 1\nname: old\nsteps:\n  a: { uses: noop }\n  b:\n    needs: [a]\n    uses: exec\n    with: { script: \"echo b >> ledger\" }\n";
    let rec = json!({
        "format": 1, "id": run, "runbook": "old", "file": "old.yaml", "status": "halted", "params": {}, "vars": {},
        "attempt": 1, "started_at": 1_735_689_600_000u64, "updated_at": 1_735_689_601_000u64,
    });
    let ev = |seq: u64, kind: Value| {
        let mut e = json!({ "seq": seq, "at": 1_735_689_600_000u64 + seq });
        e.as_object_mut().unwrap().extend(kind.as_object().unwrap().clone());
        (event_key(run, seq), Some(e.to_string().into_bytes()))
    };
    let t = Test::new().file("old.yaml", src);
    {
        let kv = open_sled(&t.state_dir()).unwrap();
        kv.apply(vec![
            (b"meta/format".to_vec(), Some(b"2".to_vec())),
            (format!("r/{run}").into_bytes(), Some(rec.to_string().into_bytes())),
            (format!("s/{run}/a").into_bytes(), Some(json!({ "id": "a", "status": "succeeded", "attempts": 1 }).to_string().into_bytes())),
            (format!("s/{run}/b").into_bytes(), Some(json!({ "id": "b", "status": "pending", "attempts": 0 }).to_string().into_bytes())),
            (format!("src/{run}").into_bytes(), Some(src.as_bytes().to_vec())),
            ev(0, json!({ "kind": "run_started", "attempt": 1 })),
            ev(1, json!({ "kind": "step", "step": "a", "status": "succeeded", "attempt": 1, "error": null })),
        ])
        .unwrap();
        kv.flush().unwrap();
    }
    let out = t.args(["audit", "verify", run]).run().success().stdout_contains("2 event records, none chained").stdout_lacks("broken");
    out.then().args(["resume", run]).run().success();
    out.then()
        .args(["audit", "verify", run])
        .run()
        .success()
        .stdout_contains("the chain is whole")
        .stdout_contains("records 0 to 1 were written by a phoenix before the chain");
    // The last unchained record is pinned by the first chained one's link.
    edit_sled(&out, run, 1, "\"succeeded\"", "\"failed\"");
    out.then().args(["audit", "verify", run]).run().code(1).stdout_contains("record 2 does not link to record 1");
}

#[test]
fn an_unknown_run_is_bad_input() {
    let out = Test::new().file("r.yaml", GATED).args(["run", "r.yaml", "--no-wait"]).run().code(3);
    out.then().args(["audit", "verify", "20991231-000000-0000"]).run().code(2).stderr_contains("no run `20991231-000000-0000`");
    out.then().args(["audit", "export", "20991231-000000-0000"]).run().code(2).stdout_empty();
}

const TWO: &str = r#"version: 1
name: two
steps:
  a: { uses: exec, with: { script: "echo a" } }
  b: { needs: [a], uses: exec, with: { script: "echo b" } }
"#;

#[test]
fn on_etcd_an_edited_record_is_named_too() {
    let etcd = EtcdCluster::start(1);
    let url = etcd.url("audit/");
    let store = ["--store", url.as_str()];
    let out = Test::new().file("r.yaml", TWO).args(store).args(["run", "r.yaml"]).run().success();
    let run = process::json(&out.state_dir(), &["--store", &url, "runs"])["runs"][0]["id"].as_str().unwrap().to_string();
    let events: Vec<Value> = out
        .then()
        .args(store)
        .args(["audit", "export", &run])
        .run()
        .success()
        .stdout()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(events.len() >= 6, "{events:#?}");
    out.then().args(store).args(["audit", "verify", &run]).run().success().stdout_contains("the chain is whole");
    let seq = seq_of(&events, |e| e["kind"] == "step" && e["step"] == "b" && e["status"] == "succeeded");
    let kv = Arc::new(EtcdKv::open(&url).unwrap());
    let k = event_key(&run, seq);
    let text = String::from_utf8(kv.get(&k).unwrap().unwrap()).unwrap();
    kv.apply(vec![(k, Some(text.replacen("\"succeeded\"", "\"failed\"", 1).into_bytes()))]).unwrap();
    out.then().args(store).args(["audit", "verify", &run]).run().code(1).stdout_contains(&format!("record {seq} was edited"));
}

/// The second step kills phoenix (SIGKILL) the first time; the resume finishes the run.
const KILLED: &str = r#"version: 1
name: killed
steps:
  a: { uses: exec, with: { script: "echo a >> ledger" } }
  b:
    needs: [a]
    uses: exec
    with: { script: "if [ -e flag ]; then rm flag; kill -9 $PPID; sleep 5; fi; echo b >> ledger" }
  c: { needs: [b], uses: exec, with: { script: "echo c >> ledger" } }
"#;

#[test]
fn a_run_killed_mid_way_and_resumed_has_one_whole_chain() {
    let out = Test::new().file("r.yaml", KILLED).file("flag", "").args(["run", "r.yaml"]).run();
    assert_eq!(out.exit_code(), None, "killed by a signal: {}", out.stderr());
    let run = process::latest_run(&out.state_dir());
    out.then().args(["resume", &run]).run().success();
    assert_eq!(lines(&out.path().join("ledger")), ["a", "b", "c"]);
    let events = export(&out, &run);
    assert!(events.iter().filter(|e| e["kind"] == "run_started").count() == 2, "{events:#?}");
    out.then().args(["audit", "verify", &run]).run().success().stdout_contains("the chain is whole");
}
