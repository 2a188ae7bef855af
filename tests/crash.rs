//! The crash test: `kill -9` at random instants during a 30-step DAG, then `phoenix resume`.
//!
//! Each trial generates a DAG of `exec` steps that append `start ID` / `done ID` to a ledger,
//! starts `phoenix run`, and crashes the whole process tree at a random instant (phoenix and
//! the steps' processes are frozen, then SIGKILLed: what a dying machine does). Sometimes the
//! first resume is crashed too. The last `phoenix resume` must finish the run. Every other
//! trial gives the store's write-ahead log its smallest size, so that sled's own writes (at
//! the log's rounds) are hit by crashes as often as the log's.
//!
//! What is proved, for every crash, from the ledger and the store as the crash left it:
//! - a step started only after its `running` state and its needs' success were durable;
//! - a step the store records as succeeded ran its work exactly once and never again;
//! - a step that was in flight runs again (its ledger may show a `start` without `done`);
//! - at most `max_parallel` steps ran at once, and never before their needs were done.
//!
//! One window cannot be closed by any engine: a step's process can write `done` and exit
//! an instant before the crash, while its success is not yet checkpointed. Such a step is
//! found `running` and, being idempotent, runs again. The test counts these precisely
//! (done in the ledger, not succeeded in the store) and allows exactly them a second `done`.
//!
//! `PHOENIX_CRASH_SEED=N` replays one trial; `PHOENIX_CRASH_TRIALS=N` changes the count.

#[path = "crash/ledger.rs"]
mod ledger;
#[path = "support/process.rs"]
mod process;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use ledger::{Crash, Figures, check, read_ledger};

const STEPS: usize = 30;
const MAX_PARALLEL: usize = 4;
const BASE_SEED: u64 = 0x5eed_0000;
const TRIALS: u64 = 60;
/// A guard against a hung phoenix, never an assertion about speed.
const HANG: Duration = Duration::from_secs(60);

/// splitmix64: small, seedable, good enough to pick shapes and instants.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn id(i: usize) -> String {
    format!("s{i:02}")
}

/// A DAG of `STEPS` steps: chains, fan-outs from a recent hub, fan-ins, and new roots.
fn dag(rng: &mut Rng) -> Vec<Vec<usize>> {
    (0..STEPS)
        .map(|i| {
            if i == 0 {
                return vec![];
            }
            match rng.below(10) {
                0..=2 => vec![i - 1],
                3..=5 => vec![i.saturating_sub(1 + rng.below(6) as usize)],
                6..=7 => {
                    let mut n: Vec<usize> = (0..2 + rng.below(2)).map(|_| rng.below(i as u64) as usize).collect();
                    n.sort_unstable();
                    n.dedup();
                    n
                }
                _ => vec![],
            }
        })
        .collect()
}

fn runbook(needs: &[Vec<usize>], ledger: &Path, rng: &mut Rng) -> String {
    let ledger = ledger.display();
    let mut y = format!("version: 1\nname: crash\nlock: crash-test\nmax_parallel: {MAX_PARALLEL}\nsteps:\n");
    for (i, n) in needs.iter().enumerate() {
        let s = id(i);
        y += &format!("  {s}:\n");
        if !n.is_empty() {
            let list: Vec<String> = n.iter().map(|&j| id(j)).collect();
            y += &format!("    needs: [{}]\n", list.join(", "));
        }
        let ms = rng.below(31);
        let nap = if ms == 0 { String::new() } else { format!("        sleep 0.{ms:03}\n") };
        y += &format!(
            "    uses: exec\n    with:\n      script: |\n        echo 'start {s}' >> '{ledger}'\n{nap}        echo 'done {s}' >> '{ledger}'\n"
        );
    }
    y
}

fn phoenix(state: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    let out =
        Command::new(process::phoenix_bin()).arg("--state").arg(state).args(args).stdin(Stdio::null()).output().expect("phoenix runs");
    (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn json(state: &Path, args: &[&str]) -> Result<Value, String> {
    let mut all = args.to_vec();
    all.extend(["--output", "json"]);
    let (code, out, err) = phoenix(state, &all);
    if code != Some(0) {
        return Err(format!("phoenix {args:?} exited {code:?}: {err}"));
    }
    serde_json::from_str(&out).map_err(|e| format!("phoenix {args:?} printed no JSON ({e}): {out}"))
}

/// The step states of a run as the store holds them.
fn step_states(state: &Path, run: &str) -> Result<HashMap<String, String>, String> {
    let v = json(state, &["status", run])?;
    Ok(v["steps"]
        .as_array()
        .ok_or("status has no steps")?
        .iter()
        .map(|s| (s["id"].as_str().unwrap_or_default().to_string(), s["status"].as_str().unwrap_or_default().to_string()))
        .collect())
}

/// Starts `phoenix --state STATE ARGS --no-wait`. With `small_log`, the store's write-ahead
/// log is as small as it may be, so that sled takes the log's records every few commits (and
/// a commit larger than the log goes to sled directly): crashes then land in sled's writes
/// too, not only in the log's.
fn start(state: &Path, dir: &Path, args: &[&str], small_log: bool) -> process::Background {
    let mut cmd = Command::new(process::phoenix_bin());
    cmd.arg("--state").arg(state).args(args).arg("--no-wait").current_dir(dir);
    if small_log {
        cmd.env("PHOENIX_STATE_LOG_BYTES", "4096");
    }
    process::Background::spawn(cmd, dir)
}

fn the_run(state: &Path) -> Result<Option<String>, String> {
    let v = json(state, &["runs"])?;
    let runs = v["runs"].as_array().ok_or("runs has no list")?;
    if runs.len() > 1 {
        return Err(format!("{} runs in the store; one expected", runs.len()));
    }
    Ok(runs.first().and_then(|r| r["id"].as_str()).map(str::to_string))
}

/// One trial. `typical` is the calibrated length of a whole run. Whether a crash hit.
/// One trial in a directory of its own, kept when the trial fails (its path is in the error).
fn trial(seed: u64, typical: Duration, f: &mut Figures) -> Result<bool, String> {
    let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
    trial_in(tmp.path(), seed, typical, f).map_err(|e| format!("{e}\n  its directory, kept: {}", tmp.keep().display()))
}

fn trial_in(dir: &Path, seed: u64, typical: Duration, f: &mut Figures) -> Result<bool, String> {
    let mut rng = Rng(seed);
    let state = dir.join("state");
    let ledger = dir.join("ledger");
    let needs = dag(&mut rng);
    std::fs::write(dir.join("crash.yaml"), runbook(&needs, &ledger, &mut rng)).map_err(|e| e.to_string())?;
    // One crash in most trials; a crash of the first resume too in a third of them.
    let planned = if rng.below(3) == 0 { 2 } else { 1 };
    let mut crashes: Vec<Crash> = vec![];
    let mut run_id: Option<String> = None;
    let mut finished = false;
    let small_log = seed % 2 == 1;
    for phase in 0..=planned {
        let mut child = match &run_id {
            None => start(&state, dir, &["run", "crash.yaml"], small_log),
            Some(r) => start(&state, dir, &["resume", r], small_log),
        };
        if phase < planned {
            // Now and then aim at the first milliseconds, where the run is not yet recorded;
            // a resume has less left to do than a run.
            let span = match (phase, rng.below(8)) {
                (0, 0) => Duration::from_millis(40),
                (0, _) => typical,
                _ => typical / 2,
            };
            let delay = Duration::from_micros(rng.below(span.as_micros() as u64 + 1));
            std::thread::sleep(delay);
            if let Some(status) = child.exited() {
                // The process ended before the instant: it must have succeeded.
                if status.code() != Some(0) {
                    return Err(format!("phase {phase} exited {status:?}: {}", child.stderr_so_far()));
                }
                f.ended_before_kill += 1;
                finished = true;
                break;
            }
            process::crash_tree(child.pid());
            let _ = child.child.wait();
            drop(child);
            let bound = std::fs::metadata(&ledger).map_or(0, |m| m.len() as usize);
            run_id = match run_id {
                Some(r) => Some(r),
                None => the_run(&state)?,
            };
            let states = match &run_id {
                None => {
                    f.kills_before_record += 1;
                    None
                }
                Some(r) => {
                    let s = step_states(&state, r)?;
                    let run_status = json(&state, &["status", r])?["status"].as_str().unwrap_or_default().to_string();
                    if run_status == "succeeded" {
                        // The crash came after the end: nothing to resume.
                        f.kills_after_end += 1;
                        crashes.push(Crash { bound, states: Some(s) });
                        finished = true;
                        break;
                    }
                    if phase == 0 || crashes.last().is_some_and(|c| c.states.is_none()) {
                        f.kills_mid_run += 1;
                    } else {
                        f.kills_mid_resume += 1;
                    }
                    Some(s)
                }
            };
            crashes.push(Crash { bound, states });
        } else {
            let end = child.wait(HANG);
            if end.code != Some(0) {
                return Err(format!("the last {} exited {:?}:\n{}", if run_id.is_some() { "resume" } else { "run" }, end.code, end.stderr));
            }
            finished = true;
        }
    }
    assert!(finished);
    let run = the_run(&state)?.ok_or("no run recorded at the end")?;
    let v = json(&state, &["status", &run])?;
    if v["status"] != "succeeded" {
        return Err(format!("the run is {} at the end", v["status"]));
    }
    let states = step_states(&state, &run)?;
    if states.len() != STEPS || states.values().any(|s| s != "succeeded") {
        return Err(format!("not every step succeeded: {states:?}"));
    }
    // The store opens cleanly in text mode too, and the lock was released.
    for args in [vec!["status"], vec!["runs"], vec!["logs", run.as_str()]] {
        let (code, _, err) = phoenix(&state, &args);
        if code != Some(0) {
            return Err(format!("phoenix {args:?} exited {code:?} after the crashes: {err}"));
        }
    }
    std::fs::write(dir.join("again.yaml"), "version: 1\nname: again\nlock: crash-test\nsteps:\n  a: { uses: noop }\n")
        .map_err(|e| e.to_string())?;
    let again = dir.join("again.yaml");
    let (code, _, err) = phoenix(&state, &["run", again.to_str().expect("utf-8 path"), "--no-wait"]);
    if code != Some(0) {
        return Err(format!("a new run with the same lock was refused after the run succeeded ({code:?}): {err}"));
    }
    let bounds: Vec<usize> = crashes.iter().map(|c| c.bound).collect();
    let lines = read_ledger(&ledger, &bounds)?;
    check(&needs, &lines, &crashes, f)?;
    Ok(!crashes.is_empty())
}

fn calibrate() -> Duration {
    let mut rng = Rng(BASE_SEED ^ 0xca11);
    let tmp = tempfile::tempdir().expect("tempdir");
    let ledger = tmp.path().join("ledger");
    let needs = dag(&mut rng);
    std::fs::write(tmp.path().join("crash.yaml"), runbook(&needs, &ledger, &mut rng)).expect("write");
    let mut times = vec![];
    for _ in 0..2 {
        let _ = std::fs::remove_file(&ledger);
        let state = tmp.path().join(format!("state{}", times.len()));
        let t = Instant::now();
        let end = start(&state, tmp.path(), &["run", "crash.yaml"], false).wait(HANG);
        times.push(t.elapsed());
        assert_eq!(end.code, Some(0), "the calibration run failed:\n{}", end.stderr);
        let lines = read_ledger(&ledger, &[]).expect("ledger");
        check(&needs, &lines, &[], &mut Figures::default()).expect("an uninterrupted run is clean");
    }
    times.into_iter().max().expect("timed")
}

#[test]
fn kill_9_at_random_instants_then_resume() {
    let typical = calibrate();
    // Seeds in order until `wanted` trials were hit by a crash (a run can end before its
    // instant comes); or the one seed to replay.
    let (seeds, wanted): (Vec<u64>, u64) = match std::env::var("PHOENIX_CRASH_SEED") {
        Ok(s) => (vec![s.parse().expect("PHOENIX_CRASH_SEED is a number")], 0),
        Err(_) => {
            let n = std::env::var("PHOENIX_CRASH_TRIALS").ok().and_then(|n| n.parse().ok()).unwrap_or(TRIALS);
            ((0..2 * n).map(|t| BASE_SEED + t).collect(), n)
        }
    };
    let mut f = Figures::default();
    let mut failures = BTreeMap::new();
    for &seed in &seeds {
        if wanted > 0 && f.crashed_trials >= wanted {
            break;
        }
        f.seeds += 1;
        match trial(seed, typical, &mut f) {
            Ok(crashed) => f.crashed_trials += u64::from(crashed),
            Err(e) => {
                eprintln!("trial with seed {seed} FAILED: {e}\n  replay: PHOENIX_CRASH_SEED={seed} cargo test --test crash");
                f.crashed_trials += 1;
                failures.insert(seed, e);
            }
        }
    }
    eprintln!("crash test: typical run {typical:?}; {f:#?}");
    assert!(failures.is_empty(), "{} of {} trials failed: {failures:#?}", failures.len(), f.seeds);
    assert!(f.crashed_trials >= wanted, "only {} trials were hit by a crash: {f:?}", f.crashed_trials);
    if wanted >= 50 {
        assert!(f.kills_mid_run >= 25 && f.kills_before_record >= 1, "too few crashes landed where they prove something: {f:?}");
    }
}
