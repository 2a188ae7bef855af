//! Step processes that outlived the phoenix process that started them (it was killed, or
//! the machine's OOM killer chose it). Each step's processes carry `PHOENIX_RUN_ID` and
//! `PHOENIX_STEP_ID` in their environment; before a resume runs anything again, the
//! leftovers of that run are stopped, so a step never runs twice at once.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::{Pid, getpgid};

/// The processes (pid → step) whose environment names this run.
fn find(run_id: &str) -> BTreeMap<i32, String> {
    let want = format!("PHOENIX_RUN_ID={run_id}");
    let mut out = BTreeMap::new();
    let Ok(dir) = std::fs::read_dir("/proc") else { return out };
    for entry in dir.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else { continue };
        if pid == std::process::id() as i32 {
            continue;
        }
        let Ok(env) = std::fs::read(entry.path().join("environ")) else { continue };
        let vars: Vec<&[u8]> = env.split(|b| *b == 0).collect();
        if vars.contains(&want.as_bytes()) {
            let step = vars
                .iter()
                .find_map(|v| v.strip_prefix(b"PHOENIX_STEP_ID="))
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .unwrap_or_default();
            out.insert(pid, step);
        }
    }
    out
}

/// Stops every leftover process of the run: SIGTERM to their process groups, SIGKILL after
/// `grace`. Returns the steps they belonged to.
pub async fn stop(run_id: &str, grace: Duration) -> BTreeSet<String> {
    let found = find(run_id);
    let steps: BTreeSet<String> = found.values().cloned().collect();
    if found.is_empty() {
        return steps;
    }
    let groups: BTreeSet<Pid> = found.keys().filter_map(|&p| getpgid(Some(Pid::from_raw(p))).ok()).collect();
    for g in &groups {
        let _ = killpg(*g, Signal::SIGTERM);
    }
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline && !find(run_id).is_empty() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for g in &groups {
        let _ = killpg(*g, Signal::SIGKILL);
    }
    for (pid, _) in find(run_id) {
        let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
    }
    steps
}

/// Kills this process's children at once, each with its process group (SIGKILL): what a forced
/// stop (a second Ctrl-C) does to the steps, which would otherwise run on without anybody
/// recording them. A child in this process's own group is killed alone. Returns how many
/// children there were.
pub fn kill_children() -> usize {
    let me = std::process::id();
    let own = getpgid(None).ok();
    let Ok(dir) = std::fs::read_dir("/proc") else { return 0 };
    let mut n = 0;
    for entry in dir.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else { continue };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
        // `pid (comm) state ppid pgrp …`; comm may hold spaces and parentheses.
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else { continue };
        let mut fields = rest.split_whitespace().skip(1);
        let (Some(ppid), Some(pgrp)) =
            (fields.next().and_then(|f| f.parse::<u32>().ok()), fields.next().and_then(|f| f.parse::<i32>().ok()))
        else {
            continue;
        };
        if ppid != me {
            continue;
        }
        n += 1;
        let pgrp = Pid::from_raw(pgrp);
        if Some(pgrp) == own {
            let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
        } else {
            let _ = killpg(pgrp, Signal::SIGKILL);
        }
    }
    n
}
