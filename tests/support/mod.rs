//! The harness every integration test goes through: a fluent builder that writes files into
//! a fresh temporary directory, runs the real `phoenix` binary there, and checks what it did.
//!
//! ```ignore
//! Test::new()
//!     .file("r.yaml", "version: 1\nname: r\nsteps:\n  a: { uses: noop }\n")
//!     .args(["validate", "r.yaml"])
//!     .run()
//!     .success()
//!     .stdout_contains("ok  r.yaml");
//! ```
//!
//! Each test gets its own directory (the process's cwd) and its own state directory inside
//! it (`PHOENIX_STATE`), so tests never share runs, locks or level history.
#![allow(dead_code)]

use std::ffi::{OsStr, OsString};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::rc::Rc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;

/// The `phoenix` binary under test.
pub(crate) fn phoenix_bin() -> &'static str {
    env!("CARGO_BIN_EXE_phoenix")
}

/// The repository root (where `runbooks/`, `docs/` and `schemas/` live).
pub(crate) fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A guard against a hung `phoenix`, never an assertion about speed.
const HANG: Duration = Duration::from_secs(120);

/// One invocation of `phoenix`, being set up.
#[must_use = "a Test does nothing until `.run()`"]
pub(crate) struct Test {
    dir: Rc<TempDir>,
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    stdin: Option<Vec<u8>>,
    cwd: Option<PathBuf>,
}

impl Test {
    /// A test in a new, empty temporary directory.
    pub(crate) fn new() -> Self {
        let dir = tempfile::Builder::new().prefix("phoenix-test-").tempdir().expect("a temporary directory");
        Test { dir: Rc::new(dir), args: Vec::new(), env: Vec::new(), stdin: None, cwd: None }
    }

    /// The test's directory (the process's cwd).
    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The state directory the process is given (`PHOENIX_STATE`); not created in advance.
    pub(crate) fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// Writes a file, relative to the test's directory (parent directories are created).
    pub(crate) fn file(self, path: impl AsRef<Path>, contents: impl AsRef<[u8]>) -> Self {
        let full = self.dir.path().join(path);
        if let Some(parent) = full.parent() {
            std::fs::create_dir_all(parent).expect("create the file's directory");
        }
        std::fs::write(&full, contents).expect("write a test file");
        self
    }

    /// Copies a file from the repository into the test's directory under `to`.
    pub(crate) fn copy(self, from_repo: impl AsRef<Path>, to: impl AsRef<Path>) -> Self {
        let text = std::fs::read(repo_root().join(from_repo.as_ref())).expect("read a repository file");
        self.file(to, text)
    }

    /// Appends arguments.
    pub(crate) fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args.extend(args.into_iter().map(|a| a.as_ref().to_os_string()));
        self
    }

    /// Appends one argument.
    pub(crate) fn arg(self, arg: impl AsRef<OsStr>) -> Self {
        self.args([arg])
    }

    /// Sets an environment variable for the process.
    pub(crate) fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.env.push((key.as_ref().to_os_string(), value.as_ref().to_os_string()));
        self
    }

    /// Text given on standard input (otherwise stdin is empty).
    pub(crate) fn stdin(mut self, text: impl AsRef<[u8]>) -> Self {
        self.stdin = Some(text.as_ref().to_vec());
        self
    }

    /// Runs in a subdirectory of the test's directory instead of its root.
    pub(crate) fn current_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.cwd = Some(self.dir.path().join(dir));
        self
    }

    /// The command as it would run (for tests that need to spawn it themselves).
    pub(crate) fn command(&self) -> Command {
        let mut cmd = Command::new(phoenix_bin());
        cmd.args(&self.args)
            .current_dir(self.cwd.as_deref().unwrap_or(self.dir.path()))
            .env("PHOENIX_STATE", self.state_dir())
            .env("XDG_STATE_HOME", self.dir.path().join("xdg-state"))
            .env("NO_COLOR", "1")
            .env_remove("RUST_LOG")
            // AWS actions read the standard environment: give them none of the machine's (no
            // profile, no instance metadata), so a test reaches only the endpoints it names.
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_CONFIG_FILE", self.dir.path().join("no-aws-config"))
            .env("AWS_SHARED_CREDENTIALS_FILE", self.dir.path().join("no-aws-credentials"));
        for k in [
            "AWS_PROFILE",
            "AWS_REGION",
            "AWS_DEFAULT_REGION",
            "AWS_ENDPOINT_URL",
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN",
        ] {
            cmd.env_remove(k);
        }
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }

    /// Runs `phoenix` and waits for it.
    pub(crate) fn run(self) -> Output {
        let mut child = self
            .command()
            .stdin(if self.stdin.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start phoenix");
        if let Some(input) = &self.stdin {
            // A process that exits without reading its stdin is not an error here.
            let _ = child.stdin.take().expect("piped stdin").write_all(input);
        }
        let mut out_pipe = child.stdout.take().expect("piped stdout");
        let mut err_pipe = child.stderr.take().expect("piped stderr");
        let out_reader = std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = out_pipe.read_to_end(&mut buf);
            buf
        });
        let err_reader = std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = err_pipe.read_to_end(&mut buf);
            buf
        });
        let started = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait for phoenix") {
                break status;
            }
            if started.elapsed() > HANG {
                let _ = child.kill();
                let _ = child.wait();
                panic!("phoenix {:?} hung for {HANG:?} and was killed", self.args);
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let stdout = String::from_utf8_lossy(&out_reader.join().expect("stdout reader")).into_owned();
        let stderr = String::from_utf8_lossy(&err_reader.join().expect("stderr reader")).into_owned();
        Output { dir: self.dir, env: self.env, args: self.args, status, stdout, stderr }
    }
}

/// What one run of `phoenix` did. Every check returns `self`, so checks chain; a failed
/// check panics with the command, its exit code, stdout and stderr.
pub(crate) struct Output {
    dir: Rc<TempDir>,
    env: Vec<(OsString, OsString)>,
    args: Vec<OsString>,
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Output {
    fn fail(&self, what: &str) -> ! {
        panic!(
            "{what}\n--- command: phoenix {}\n--- exit: {:?}\n--- stdout:\n{}\n--- stderr:\n{}",
            self.args.iter().map(|a| a.to_string_lossy()).collect::<Vec<_>>().join(" "),
            self.status.code(),
            self.stdout,
            self.stderr
        )
    }

    /// Asserts the exit code.
    #[track_caller]
    pub(crate) fn code(self, expected: i32) -> Self {
        if self.status.code() != Some(expected) {
            self.fail(&format!("expected exit code {expected}"));
        }
        self
    }

    /// Asserts exit code 0.
    #[track_caller]
    pub(crate) fn success(self) -> Self {
        self.code(0)
    }

    /// Asserts that stdout contains `needle`.
    #[track_caller]
    pub(crate) fn stdout_contains(self, needle: &str) -> Self {
        if !self.stdout.contains(needle) {
            self.fail(&format!("expected stdout to contain {needle:?}"));
        }
        self
    }

    /// Asserts that stderr contains `needle`.
    #[track_caller]
    pub(crate) fn stderr_contains(self, needle: &str) -> Self {
        if !self.stderr.contains(needle) {
            self.fail(&format!("expected stderr to contain {needle:?}"));
        }
        self
    }

    /// Asserts that stdout does not contain `needle`.
    #[track_caller]
    pub(crate) fn stdout_lacks(self, needle: &str) -> Self {
        if self.stdout.contains(needle) {
            self.fail(&format!("expected stdout not to contain {needle:?}"));
        }
        self
    }

    /// Asserts that stderr does not contain `needle`.
    #[track_caller]
    pub(crate) fn stderr_lacks(self, needle: &str) -> Self {
        if self.stderr.contains(needle) {
            self.fail(&format!("expected stderr not to contain {needle:?}"));
        }
        self
    }

    /// Asserts stdout exactly.
    #[track_caller]
    pub(crate) fn stdout_is(self, expected: &str) -> Self {
        if self.stdout != expected {
            self.fail(&format!("expected stdout to be exactly:\n{expected}"));
        }
        self
    }

    /// Asserts stderr exactly.
    #[track_caller]
    pub(crate) fn stderr_is(self, expected: &str) -> Self {
        if self.stderr != expected {
            self.fail(&format!("expected stderr to be exactly:\n{expected}"));
        }
        self
    }

    /// Asserts that stdout is empty.
    #[track_caller]
    pub(crate) fn stdout_empty(self) -> Self {
        self.stdout_is("")
    }

    /// Stdout parsed as JSON.
    #[track_caller]
    pub(crate) fn stdout_json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| self.fail(&format!("stdout is not JSON: {e}")))
    }

    /// Stdout.
    pub(crate) fn stdout(&self) -> &str {
        &self.stdout
    }

    /// Stderr.
    pub(crate) fn stderr(&self) -> &str {
        &self.stderr
    }

    /// The exit code (None if killed by a signal).
    pub(crate) fn exit_code(&self) -> Option<i32> {
        self.status.code()
    }

    /// The test's directory.
    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The state directory the process was given.
    pub(crate) fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// A next command in the same directory, with the same state and environment.
    pub(crate) fn then(&self) -> Test {
        Test { dir: Rc::clone(&self.dir), args: Vec::new(), env: self.env.clone(), stdin: None, cwd: None }
    }
}
