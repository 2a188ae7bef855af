//! Processes seen from outside: `phoenix` started in the background, signals, process
//! trees, and a whole-tree crash (what a dying machine does to a run).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

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

/// Crashes a process tree as a dying machine would: freezes `root` and everything below it
/// (the instant of the crash: phoenix writes nothing more), then whatever appeared in
/// between until nothing new does, then SIGKILLs them all.
pub(crate) fn crash_tree(root: u32) {
    // Freeze the tree as it is now in one go, then whatever it spawned meanwhile.
    let mut all = vec![root];
    all.extend(descendants(root));
    signal("STOP", &all);
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
        let mut cmd = Command::new(phoenix_bin());
        cmd.args(args).current_dir(dir);
        Self::spawn(cmd, dir)
    }

    /// Starts a prepared command (as the harness builds it) with stdin closed; its output
    /// is kept in files in `dir`.
    pub(crate) fn spawn(mut cmd: Command, dir: &Path) -> Background {
        let n = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
        let out = dir.join(format!("bg-{n}.out"));
        let err = dir.join(format!("bg-{n}.err"));
        let child = cmd
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out).expect("stdout file"))
            .stderr(std::fs::File::create(&err).expect("stderr file"))
            .spawn()
            .expect("phoenix starts");
        Background { child, out, err }
    }

    /// Kills it alone (SIGKILL; what it started goes on) and reaps it, so that dropping it
    /// afterwards does not take its descendants down as a half-way failure would.
    pub(crate) fn kill_alone(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Its pid.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What it has written to stdout so far.
    pub(crate) fn stdout_so_far(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
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

/// `phoenix --state STATE ARGS --output json`; panics unless it exits 0 with JSON.
pub(crate) fn json(state: &Path, args: &[&str]) -> Value {
    let out = Command::new(phoenix_bin())
        .arg("--state")
        .arg(state)
        .args(args)
        .args(["--output", "json"])
        .stdin(Stdio::null())
        .output()
        .expect("phoenix runs");
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "phoenix {args:?} exited {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}", out.status.code());
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("phoenix {args:?} printed no JSON ({e}):\n{stdout}"))
}

/// The ids of the runs in a state directory, newest first.
pub(crate) fn run_ids(state: &Path) -> Vec<String> {
    json(state, &["runs"])["runs"]
        .as_array()
        .expect("a list of runs")
        .iter()
        .map(|r| r["id"].as_str().expect("an id").to_string())
        .collect()
}

/// The id of the newest run.
pub(crate) fn latest_run(state: &Path) -> String {
    run_ids(state).into_iter().next().expect("a run in the state directory")
}

/// The id of the newest run of a runbook (by name).
pub(crate) fn run_of(state: &Path, runbook: &str) -> String {
    let runs = json(state, &["runs"]);
    let found = runs["runs"].as_array().expect("a list of runs").iter().find(|r| r["runbook"] == runbook).map(|r| r["id"].clone());
    found.and_then(|v| v.as_str().map(str::to_string)).unwrap_or_else(|| panic!("no run of `{runbook}`: {runs:#}"))
}

/// `phoenix status RUN --output json`.
pub(crate) fn status(state: &Path, run: &str) -> Value {
    json(state, &["status", run])
}

/// One step of a status, by id.
pub(crate) fn step<'a>(status: &'a Value, id: &str) -> &'a Value {
    status["steps"]
        .as_array()
        .expect("status lists steps")
        .iter()
        .find(|s| s["id"] == id)
        .unwrap_or_else(|| panic!("no step `{id}` in the status:\n{status:#}"))
}

/// Each step's status, as `id=status` in the order shown (for compact assertions).
pub(crate) fn step_states(status: &Value) -> Vec<String> {
    status["steps"]
        .as_array()
        .expect("status lists steps")
        .iter()
        .map(|s| format!("{}={}", s["id"].as_str().unwrap_or("?"), s["status"].as_str().unwrap_or("?")))
        .collect()
}

/// The lines of a file steps append to (empty if it does not exist).
pub(crate) fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path).unwrap_or_default().lines().map(str::to_string).collect()
}

/// How many times `line` occurs in a ledger.
pub(crate) fn count(ledger: &[String], line: &str) -> usize {
    ledger.iter().filter(|l| *l == line).count()
}

/// The most `start X` lines open (without their `end X`) at once in a ledger.
pub(crate) fn max_overlap(ledger: &[String]) -> usize {
    let (mut open, mut max) = (0usize, 0usize);
    for l in ledger {
        if l.starts_with("start ") {
            open += 1;
            max = max.max(open);
        } else if l.starts_with("end ") {
            open = open.saturating_sub(1);
        }
    }
    max
}

/// A string no other test (or leftover process) uses: for markers in command lines.
pub(crate) fn unique() -> String {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    format!("{}{:03}{:09}", std::process::id() % 1000, n % 1000, t)
}

/// Runs `phoenix ARGS` on a pseudo-terminal (through script(1)), as a person would. The
/// returned stdin stays open until dropped: that is the person at the keyboard.
pub(crate) struct Terminal {
    child: std::process::Child,
    keys: Option<std::process::ChildStdin>,
    screen: std::path::PathBuf,
}

impl Terminal {
    /// Starts `phoenix ARGS` in `dir` with `PHOENIX_STATE=state`.
    pub(crate) fn start(dir: &Path, state: &Path, args: &str) -> Terminal {
        let screen = dir.join(format!("screen-{}.txt", unique()));
        let child = std::process::Command::new("script")
            .args(["-q", "-e", "-c", &format!("'{}' {args}", phoenix_bin()), "/dev/null"])
            .current_dir(dir)
            .env("PHOENIX_STATE", state)
            .stdin(std::process::Stdio::piped())
            .stdout(std::fs::File::create(&screen).unwrap())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("script(1) runs");
        let mut t = Terminal { child, keys: None, screen };
        t.keys = t.child.stdin.take();
        t
    }

    /// What the terminal showed so far.
    pub(crate) fn screen(&self) -> String {
        std::fs::read_to_string(&self.screen).unwrap_or_default()
    }

    /// The file the terminal's output goes to.
    pub(crate) fn screen_path(&self) -> PathBuf {
        self.screen.clone()
    }

    /// Types a line.
    pub(crate) fn type_line(&mut self, line: &str) {
        use std::io::Write;
        writeln!(self.keys.as_mut().expect("the keyboard"), "{line}").unwrap();
    }

    /// Waits for the process to end (the keyboard stays open); its exit code.
    pub(crate) fn wait(mut self) -> Option<i32> {
        let start = std::time::Instant::now();
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s.code();
            }
            if start.elapsed() > Duration::from_secs(60) {
                let _ = self.child.kill();
                panic!("phoenix did not end on the terminal; screen:\n{}", self.screen());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// Every file under `dir`, in its subdirectories too.
pub(crate) fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() { out.extend(files_under(&p)) } else { out.push(p) }
    }
    out
}
