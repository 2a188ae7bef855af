//! What the state store keeps: the runbook text a run started with, every step's record,
//! an append-only event log, level history across runs, and a versioned format that a
//! newer binary still reads (and an older one refuses).

use phoenix_engine::state::{Kv, open_sled};
use serde_json::{Value, json};

use crate::process::{self, count, lines, step};
use crate::support::{Output, Test};

const TWO_STEPS: &str = r#"version: 1
name: kept
params:
  who: { type: string, default: world }
steps:
  a:
    uses: exec
    with: { script: "echo a >> ledger; echo hello {{ params.who }}" }
  b:
    needs: [a]
    uses: exec
    with: { script: "echo b >> ledger; test -e fixed" }
"#;

fn events(out: &Output, run: &str) -> Vec<Value> {
    process::json(&out.state_dir(), &["logs", run])["events"].as_array().unwrap().clone()
}

#[test]
fn resume_runs_the_text_the_run_started_with_not_the_file_as_it_is_now() {
    let out = Test::new().file("r.yaml", TWO_STEPS).args(["run", "r.yaml"]).run().code(1);
    let run = process::latest_run(&out.state_dir());
    // Someone edits the file while the run is halted; only --runbook may adopt that.
    std::fs::write(out.path().join("r.yaml"), TWO_STEPS.replace("echo b >>", "echo b-edited >>")).unwrap();
    std::fs::write(out.path().join("fixed"), "").unwrap();
    out.then().args(["resume", &run]).run().success();
    let l = lines(&out.path().join("ledger"));
    assert_eq!((count(&l, "b"), count(&l, "b-edited")), (2, 0), "{l:?}");
}

#[test]
fn a_step_record_holds_status_attempts_times_inputs_outputs_and_error() {
    let out = Test::new().file("r.yaml", TWO_STEPS).args(["run", "r.yaml", "--param", "who=ops"]).run().code(1);
    let s = process::status(&out.state_dir(), &process::latest_run(&out.state_dir()));
    assert_eq!(s["params"], json!({"who": "ops"}));
    let a = step(&s, "a");
    assert_eq!(a["status"], "succeeded");
    assert_eq!(a["attempts"], 1);
    assert!(a["started_at"].is_string() && a["finished_at"].is_string(), "{a:#}");
    assert_eq!(a["inputs"]["script"], "echo a >> ledger; echo hello \"${PHX_V1}\"", "inputs are stored as rendered");
    assert_eq!(a["inputs"]["env"]["PHX_V1"], "ops", "with the values the script's references stand for");
    assert_eq!(a["outputs"]["stdout"], "hello ops\n");
    let b = step(&s, "b");
    assert_eq!(b["status"], "failed");
    assert_eq!(b["outputs"]["exit_code"], 1);
    assert!(b["error"].as_str().unwrap().contains("exited with 1"), "{b:#}");
}

#[test]
fn the_event_log_only_grows() {
    let out = Test::new().file("r.yaml", TWO_STEPS).args(["run", "r.yaml"]).run().code(1);
    let run = process::latest_run(&out.state_dir());
    let before = events(&out, &run);
    std::fs::write(out.path().join("fixed"), "").unwrap();
    out.then().args(["resume", &run]).run().success();
    let after = events(&out, &run);
    assert_eq!(after[..before.len()], before[..], "a resume rewrote history");
    let seqs: Vec<u64> = after.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (0..after.len() as u64).collect::<Vec<_>>());
    let kinds: Vec<String> = after
        .iter()
        .map(|e| match e["kind"].as_str().unwrap() {
            "step" => format!("{} {}", e["step"].as_str().unwrap(), e["status"].as_str().unwrap()),
            "run_started" => format!("started {}", e["attempt"]),
            "run_finished" => format!("finished {}", e["status"].as_str().unwrap()),
            other => other.to_string(),
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "started 1",
            "a running",
            "a succeeded",
            "b running",
            "b failed",
            "finished failed",
            "started 2",
            "b running",
            "b succeeded",
            "finished succeeded"
        ]
    );
}

#[test]
fn level_history_carries_for_across_runs() {
    let t = Test::new().file(
        "r.yaml",
        r#"version: 1
name: levels
signals:
  svc:
    uses: exec
    with: { cmd: [echo, '{"state": "down"}'], parse: json }
    weight:
      - { when: "outputs.json.state == 'up'", weight: 0 }
      - { weight: 5 }
levels:
  - { name: fine, max: 3 }
  - { name: failover, for: 2 }
steps:
  show:
    needs: [score]
    uses: exec
    with: { script: "echo {{ score.raw_level }} {{ score.streak }} {{ score.level }} >> levels" }
"#,
    );
    let out = t.args(["run", "r.yaml"]).run().success();
    out.then().args(["run", "r.yaml"]).run().success();
    out.then().args(["run", "r.yaml"]).run().success();
    // `for: 2`: the level is confirmed on the second evaluation in a row, in another run.
    assert_eq!(lines(&out.path().join("levels")), ["failover 1 fine", "failover 2 failover", "failover 3 failover"]);
}

/// Writes raw records into a state directory's store, as another phoenix would have.
fn write_store(dir: &std::path::Path, records: &[(&str, &str)]) {
    let kv = open_sled(dir).unwrap_or_else(|e| panic!("open the store: {e}"));
    kv.apply(records.iter().map(|(k, v)| (k.as_bytes().to_vec(), Some(v.as_bytes().to_vec()))).collect()).unwrap();
    kv.flush().unwrap();
}

#[test]
fn a_store_written_by_a_newer_phoenix_is_refused_untouched() {
    let out = Test::new().file("r.yaml", TWO_STEPS).args(["run", "r.yaml"]).run().code(1);
    write_store(&out.state_dir(), &[("meta/format", "99")]);
    out.then().args(["runs"]).run().code(1).stderr_contains("newer phoenix");
    out.then().args(["run", "r.yaml"]).run().code(1).stderr_contains("newer phoenix");
    assert_eq!(lines(&out.path().join("ledger")), ["a", "b"], "nothing ran against a store it cannot read");
}

/// A halted run's record as the first store format wrote it: only the fields it had.
fn format_1_run(run: &str) -> Value {
    json!({
        "format": 1, "id": run, "runbook": "old", "file": "old.yaml", "status": "halted", "params": {}, "vars": {},
        "attempt": 1, "started_at": 1_735_689_600_000u64, "updated_at": 1_735_689_601_000u64,
    })
}

#[test]
fn records_written_by_an_older_phoenix_still_read_and_resume() {
    // Format 1 records with only the fields the first version wrote.
    let run = "20250101-000000-0a1d";
    let src = "version: 1\nname: old\nsteps:\n  a: { uses: noop }\n  b:\n    needs: [a]\n    uses: exec\n    with: { script: \"echo b >> ledger\" }\n";
    let run_rec = format_1_run(run);
    let a = json!({ "id": "a", "status": "succeeded", "attempts": 1 });
    let b = json!({ "id": "b", "status": "pending", "attempts": 0 });
    let ev = json!({ "seq": 0, "at": 1_735_689_600_000u64, "kind": "run_started", "attempt": 1 });
    let t = Test::new().file("old.yaml", src);
    let dir = t.state_dir();
    write_store(
        &dir,
        &[
            ("meta/format", "1"),
            (&format!("r/{run}"), &run_rec.to_string()),
            (&format!("s/{run}/a"), &a.to_string()),
            (&format!("s/{run}/b"), &b.to_string()),
            (&format!("e/{run}/{:016x}", 0), &ev.to_string()),
            (&format!("src/{run}"), src),
        ],
    );
    let out = t.args(["runs"]).run().success().stdout_contains(run);
    out.then().args(["status", run]).run().success().stdout_contains("halted");
    out.then().args(["logs", run]).run().success();
    out.then().args(["resume", run]).run().success();
    assert_eq!(lines(&out.path().join("ledger")), ["b"], "a kept its old result; b ran");
    let s = process::status(&out.state_dir(), run);
    assert_eq!(s["status"], "succeeded");
    assert_eq!(s["attempt"], 2);
    assert_eq!(events(&out, run)[0], json!({ "seq": 0, "at": "2025-01-01T00:00:00.000Z", "kind": "run_started", "attempt": 1 }));
}

#[test]
fn a_run_whose_stored_runbook_no_longer_validates_says_why_and_changes_nothing() {
    // Written by a phoenix that had an action this one does not.
    let run = "20250101-000000-0b2e";
    let src = "version: 1\nname: old\nsteps:\n  a: { uses: retired.action }\n";
    let run_rec = format_1_run(run);
    let t = Test::new();
    write_store(
        &t.state_dir(),
        &[
            ("meta/format", "1"),
            (&format!("r/{run}"), &run_rec.to_string()),
            (&format!("s/{run}/a"), &json!({ "id": "a", "status": "pending", "attempts": 0 }).to_string()),
            (&format!("src/{run}"), src),
        ],
    );
    let out = t
        .args(["resume", run])
        .run()
        .code(2)
        .stderr_contains(&format!("the runbook stored with run {run} no longer validates with this phoenix (at steps.a.uses: "))
        .stderr_contains("resume it with the phoenix version that started it");
    assert_eq!(process::status(&out.state_dir(), run)["attempt"], 1, "nothing changed");
}

#[test]
fn status_shows_the_newest_run_and_runs_lists_newest_first() {
    let out = Test::new().file("r.yaml", TWO_STEPS).args(["run", "r.yaml"]).run().code(1);
    let first = process::latest_run(&out.state_dir());
    std::fs::write(out.path().join("fixed"), "").unwrap();
    out.then().args(["run", "r.yaml"]).run().success();
    let ids = process::run_ids(&out.state_dir());
    assert_eq!(ids.len(), 2);
    assert_eq!(ids[1], first);
    let latest = process::json(&out.state_dir(), &["status"]);
    assert_eq!(latest["id"], ids[0].as_str());
    assert_eq!(latest["status"], "succeeded");
    out.then().args(["runs"]).run().success().stdout_contains(&ids[0]).stdout_contains("failed").stdout_contains("succeeded");
}

#[test]
fn logs_of_one_step_show_its_lines_and_refuse_a_step_the_run_does_not_have() {
    let out = Test::new().file("r.yaml", TWO_STEPS).args(["run", "r.yaml"]).run().code(1);
    let run = process::latest_run(&out.state_dir());
    out.then().args(["logs", &run, "a"]).run().success().stdout_contains("hello world").stdout_lacks("b failed");
    out.then().args(["logs", &run, "c"]).run().code(2).stderr_contains(&format!("run {run} has no step `c`"));
    out.then().args(["logs", &run, "aa"]).run().code(2).stderr_contains("did you mean `a`?");
}

#[test]
fn a_reader_that_closes_the_pipe_early_gets_a_quiet_exit_not_a_panic() {
    let out = Test::new().file("r.yaml", TWO_STEPS).args(["run", "r.yaml"]).run().code(1);
    let run = process::latest_run(&out.state_dir());
    // `phoenix logs RUN | head -0`: the reading end is closed before phoenix writes a byte.
    let (reader, writer) = std::io::pipe().expect("a pipe");
    drop(reader);
    let done = out.then().args(["logs", &run]).command().stdout(writer).stderr(std::process::Stdio::piped()).output().expect("run phoenix");
    let stderr = String::from_utf8_lossy(&done.stderr);
    assert_eq!(done.status.code(), Some(141), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn a_new_state_directory_and_the_stores_own_directories_are_synced() {
    // A name is durable only once the directory holding it is synced: strace shows each
    // directory fsync (`-y` prints the path behind each descriptor).
    if !std::process::Command::new("strace").args(["-o", "/dev/null", "true"]).status().is_ok_and(|s| s.success()) {
        eprintln!("SKIPPED: strace is not installed here, or may not trace (ptrace denied)");
        return;
    }
    let t = Test::new();
    let root = t.path().canonicalize().unwrap();
    let state = root.join("new/deeper/state");
    let trace = root.join("trace");
    let out = std::process::Command::new("strace")
        .args(["-f", "-y", "-e", "trace=fsync", "-o"])
        .arg(&trace)
        .arg(process::phoenix_bin())
        .arg("--state")
        .arg(&state)
        .arg("runs")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(state.join("db").is_dir() && state.join("wal").is_file(), "the store was created");
    let synced: Vec<String> = std::fs::read_to_string(&trace)
        .unwrap()
        .lines()
        .filter(|l| l.contains("fsync(") && l.ends_with("= 0"))
        .filter_map(|l| Some(l.split_once('<')?.1.split_once(">)")?.0.to_string()))
        .collect();
    // Each new level's parent (so the level's name is durable), then the store's directories.
    for dir in [root.clone(), root.join("new"), root.join("new/deeper"), state.clone(), state.join("db"), state.join("db/blobs")] {
        assert!(synced.contains(&dir.display().to_string()), "{} not synced; synced: {synced:#?}", dir.display());
    }
}

#[test]
fn a_runbook_text_larger_than_sleds_blob_threshold_is_kept_without_blob_files() {
    // sled writes a page over ~128 KiB to a file of its own that it never syncs: a long
    // runbook text (a long comment here) is stored in pieces instead, and reads back whole.
    let comment: String = (0..4000).map(|i| format!("# line {i:05} of a long runbook, kept whole by the store\n")).collect();
    assert!(comment.len() > 200 << 10);
    let text = format!("{comment}{TWO_STEPS}");
    let out = Test::new().file("long.yaml", &text).file("fixed", "").args(["run", "long.yaml"]).run().success();
    let state = out.state_dir();
    let run = process::latest_run(&state);
    let blobs = std::fs::read_dir(state.join("db/blobs")).map_or(0, |d| d.count());
    assert_eq!(blobs, 0, "no blob file in db/blobs");
    let kv = open_sled(&state).unwrap();
    assert_eq!(kv.get(format!("src/{run}").as_bytes()).unwrap().as_deref(), Some(text.as_bytes()), "the text reads back whole");
}
