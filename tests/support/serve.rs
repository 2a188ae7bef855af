//! `phoenix serve` in the background on a free loopback port, and a small HTTP/1.1 client
//! (std only) to talk to it.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::postgres::free_port;
use crate::process::{Background, Ended, phoenix_bin, wait_for};

/// Tokens the tests configure (at least 16 characters, as the server requires).
pub(crate) const ONCALL: &str = "oncall-token-0123456789";
pub(crate) const VIEWER: &str = "viewer-token-0123456789";
pub(crate) const ALERTMANAGER: &str = "alertmanager-token-0123456789";

/// The `tokens:` section for the three tokens above (read from the environment).
pub(crate) const TOKENS: &str = "tokens:\n  - { name: oncall, env: T_ONCALL, rights: [read, run, approve] }\n  - { name: viewer, env: T_VIEWER, rights: [read] }\n  - { name: alertmanager, env: T_AM, rights: [alerts] }\n";

/// A running server.
pub(crate) struct Server {
    pub(crate) bg: Option<Background>,
    pub(crate) addr: String,
    pub(crate) state: PathBuf,
    /// A token with every right: the one the server made and printed when serve.yaml has no
    /// `tokens:`, else [`ONCALL`] (read, run, approve).
    pub(crate) token: String,
}

impl Server {
    /// `phoenix serve --config serve.yaml` in `dir` (state in `dir/state`); waits for /healthz.
    pub(crate) fn start(dir: &Path) -> Server {
        Self::start_with(dir, &[])
    }

    pub(crate) fn start_with(dir: &Path, extra: &[&str]) -> Server {
        let addr = format!("127.0.0.1:{}", free_port());
        let state = dir.join("state");
        let mut cmd = Command::new(phoenix_bin());
        cmd.current_dir(dir)
            .env("T_ONCALL", ONCALL)
            .env("T_VIEWER", VIEWER)
            .env("T_AM", ALERTMANAGER)
            .arg("--state")
            .arg(&state)
            .args(["serve", "--listen", &addr, "--config", "serve.yaml"])
            .args(extra);
        let mut bg = Background::spawn(cmd, dir);
        wait_for("phoenix serve to answer /healthz", Duration::from_secs(60), || {
            assert!(bg.exited().is_none(), "phoenix serve exited:\n{}", bg.stderr_so_far());
            request(&addr, "GET", "/healthz", None, None).0 == 200
        });
        // Printed before the server listens.
        let token = generated_token(&bg.stderr_so_far()).unwrap_or_else(|| ONCALL.to_string());
        Server { bg: Some(bg), addr, state, token }
    }

    /// A request with a token; the status and the body as JSON (null when not JSON).
    pub(crate) fn call(&self, method: &str, path: &str, token: Option<&str>, body: Option<&str>) -> (u16, Value) {
        let (status, text) = request(&self.addr, method, path, token, body);
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// GET with [`Server::token`]; panics unless 200.
    /// `phoenix ARGS` against the server's state directory, run from `dir` with no stdin:
    /// its exit code, stdout and stderr.
    pub(crate) fn cli(&self, dir: &Path, args: &[&str]) -> (Option<i32>, String, String) {
        let out = Command::new(phoenix_bin())
            .arg("--state")
            .arg(&self.state)
            .args(args)
            .current_dir(dir)
            .stdin(std::process::Stdio::null())
            .output()
            .expect("phoenix runs");
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
    }

    pub(crate) fn get(&self, path: &str) -> Value {
        let (status, v) = self.call("GET", path, Some(&self.token), None);
        assert_eq!(status, 200, "GET {path}: {v}");
        v
    }

    /// A run's JSON.
    pub(crate) fn run(&self, id: &str) -> Value {
        self.get(&format!("/api/v1/runs/{id}"))
    }

    /// Waits until the run's status is `want`.
    pub(crate) fn wait_status(&self, id: &str, want: &str) -> Value {
        wait_for(&format!("run {id} to be {want}"), Duration::from_secs(60), || self.run(id)["status"] == want);
        self.run(id)
    }

    /// Waits until a step of the run is in state `want`.
    pub(crate) fn wait_step(&self, id: &str, step: &str, want: &str) {
        wait_for(&format!("step {step} of run {id} to be {want}"), Duration::from_secs(60), || {
            self.run(id)["steps"].as_array().into_iter().flatten().any(|s| s["id"] == step && s["status"] == want)
        });
    }

    /// SIGTERM, then the exit.
    pub(crate) fn stop(&mut self) -> Ended {
        let bg = self.bg.take().expect("running");
        crate::process::signal("TERM", &[bg.pid()]);
        bg.wait(Duration::from_secs(60))
    }
}

/// The token in the `#token=` link a server without `tokens:` prints.
pub(crate) fn generated_token(stderr: &str) -> Option<String> {
    let at = stderr.find("/#token=")? + "/#token=".len();
    Some(stderr[at..].split(|c: char| !c.is_ascii_alphanumeric()).next()?.to_string())
}

/// One HTTP/1.1 exchange (`Connection: close`) as a JSON client sends it; the status and the body.
pub(crate) fn request(addr: &str, method: &str, path: &str, token: Option<&str>, body: Option<&str>) -> (u16, String) {
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut headers = vec![("Host", addr), ("Content-Type", "application/json")];
    if let Some(a) = &auth {
        headers.push(("Authorization", a));
    }
    let (status, _, body) = exchange(addr, method, path, &headers, body.unwrap_or(""));
    (status, body)
}

/// One HTTP/1.1 exchange with exactly these headers (plus Content-Length and
/// `Connection: close`): the status, the response's head (lower-cased names) and its body.
pub(crate) fn exchange(addr: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> (u16, String, String) {
    let Ok(mut s) = TcpStream::connect(addr) else { return (0, String::new(), String::new()) };
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut head = format!("{method} {path} HTTP/1.1\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\nConnection: close\r\n\r\n", body.len()));
    if s.write_all(head.as_bytes()).and_then(|()| s.write_all(body.as_bytes())).is_err() {
        return (0, String::new(), String::new());
    }
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let (head, body) = text.split_once("\r\n\r\n").map_or((text.as_str(), ""), |(h, b)| (h, b));
    (status, head.to_ascii_lowercase(), body.to_string())
}
