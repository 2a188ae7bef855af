//! Processes seen from outside: `phoenix` started in the background, signals, process
//! trees, and a whole-tree crash (what a dying machine does to a run).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The phoenix binary under test.
pub(crate) fn phoenix_bin() -> &'static str {
    env!("CARGO_BIN_EXE_phoenix")
}

/// Sends a signal (`INT`, `TERM`, `KILL`, `STOP`, …) to processes, through kill(1).
pub(crate) fn signal(sig: &str, pids: &[u32]) {
    if pids.is_empty() {
        return;
    }
    let _ = Command::new("kill")
        .arg(format!("-{sig}"))
        .args(pids.iter().map(u32::to_string))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// `(pid, parent pid)` of every process, read from /proc.
fn process_table() -> Vec<(u32, u32)> {
    let Ok(dir) = std::fs::read_dir("/proc") else { return vec![] };
    dir.filter_map(|e| {
        let e = e.ok()?;
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
        // `pid (comm) state ppid …`; comm may hold spaces and parentheses.
        let rest = &stat[stat.rfind(')')? + 1..];
        let ppid: u32 = rest.split_whitespace().nth(1)?.parse().ok()?;
        Some((pid, ppid))
    })
    .collect()
}

/// Every process below `root` (not `root` itself).
pub(crate) fn descendants(root: u32) -> Vec<u32> {
    let table = process_table();
    let mut found = vec![];
    let mut frontier = vec![root];
    while let Some(p) = frontier.pop() {
        for &(pid, ppid) in &table {
            if ppid == p && !found.contains(&pid) {
                found.push(pid);
                frontier.push(pid);
            }
        }
    }
    found
}

/// Crashes a process tree as a dying machine would: freezes `root` (the instant of the
/// crash: it writes nothing more), freezes everything below it until nothing new appears,
/// then SIGKILLs them all. Nothing in the tree runs a single instruction after the freeze
/// of its parent has been observed.
pub(crate) fn crash_tree(root: u32) {
    signal("STOP", &[root]);
    let mut all = vec![root];
    loop {
        let new: Vec<u32> = descendants(root).into_iter().filter(|p| !all.contains(p)).collect();
        if new.is_empty() {
            break;
        }
        signal("STOP", &new);
        all.extend(new);
    }
    signal("KILL", &all);
}

/// Whether a process whose command line contains `marker` is alive (not a zombie).
pub(crate) fn alive_with_marker(marker: &str) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else { return vec![] };
    dir.filter_map(|e| {
        let e = e.ok()?;
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
        let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
        let state = stat[stat.rfind(')')? + 1..].split_whitespace().next()?.to_string();
        (state != "Z" && String::from_utf8_lossy(&cmdline).contains(marker)).then_some(pid)
    })
    .collect()
}

/// Polls `cond` every 10 ms; panics with `what` if it does not hold within `limit`.
/// (A guard against a hung test, never an assertion about speed: limits are generous.)
pub(crate) fn wait_for(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < limit, "gave up waiting for {what} after {limit:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A `phoenix` process started in the background, its stdout and stderr going to files.
pub(crate) struct Background {
    /// The process.
    pub(crate) child: Child,
    out: PathBuf,
    err: PathBuf,
}

/// How a background process ended.
#[derive(Debug)]
pub(crate) struct Ended {
    /// The exit code (none when killed by a signal).
    pub(crate) code: Option<i32>,
    /// Its standard output.
    pub(crate) stdout: String,
    /// Its standard error.
    pub(crate) stderr: String,
}

impl Background {
    /// Starts `phoenix ARGS` in `dir` with stdin closed; output is kept in `dir`.
    pub(crate) fn start(dir: &Path, args: &[&str]) -> Background {
        Self::start_env(dir, args, &[])
    }

    /// The same, with extra environment variables.
    pub(crate) fn start_env(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Background {
        let n = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
        let out = dir.join(format!("bg-{n}.out"));
        let err = dir.join(format!("bg-{n}.err"));
        let child = Command::new(phoenix_bin())
            .args(args)
            .envs(env.iter().copied())
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out).expect("stdout file"))
            .stderr(std::fs::File::create(&err).expect("stderr file"))
            .spawn()
            .expect("phoenix starts");
        Background { child, out, err }
    }

    /// Its pid.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What it has written to stderr so far.
    pub(crate) fn stderr_so_far(&self) -> String {
        std::fs::read_to_string(&self.err).unwrap_or_default()
    }

    /// Whether it has exited (without reaping it twice).
    pub(crate) fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("try_wait")
    }

    /// Waits for the end (a guard of `limit` against a hang).
    pub(crate) fn wait(mut self, limit: Duration) -> Ended {
        let start = Instant::now();
        let status = loop {
            if let Some(s) = self.child.try_wait().expect("try_wait") {
                break s;
            }
            if start.elapsed() > limit {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("phoenix did not end within {limit:?}; stderr:\n{}", self.stderr_so_far());
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        Ended {
            code: status.code(),
            stdout: std::fs::read_to_string(&self.out).unwrap_or_default(),
            stderr: std::fs::read_to_string(&self.err).unwrap_or_default(),
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        // A test that failed half-way leaves nothing running.
        if let Ok(None) = self.child.try_wait() {
            crash_tree(self.child.id());
            let _ = self.child.wait();
        }
    }
}
