//! The real Prometheus (`/usr/bin/prometheus`, Debian's package; `scripts/install-deps.sh`
//! installs it) on a free loopback port, scraping one target every second, its storage in a
//! temporary directory. Dropping it kills it.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// A running Prometheus.
pub(crate) struct Prometheus {
    child: Child,
    port: u16,
    dir: TempDir,
}

impl Prometheus {
    /// Starts Prometheus scraping `target` (`127.0.0.1:PORT`, `/metrics`) every second.
    pub(crate) fn start(target: &str) -> Prometheus {
        Self::start_with_token(target, None)
    }

    /// The same, sending `Authorization: Bearer TOKEN` when scraping (as `phoenix serve` asks).
    pub(crate) fn start_with_token(target: &str, token: Option<&str>) -> Prometheus {
        let auth = token.map_or(String::new(), |t| format!("    authorization: {{ credentials: '{t}' }}\n"));
        let dir = tempfile::Builder::new().prefix("phoenix-prometheus-").tempdir().expect("a temporary directory");
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global: {{ scrape_interval: 1s, evaluation_interval: 1s }}\nscrape_configs:\n  - job_name: app\n{auth}    static_configs: [{{ targets: ['{target}'] }}]\n"
            ),
        )
        .expect("write prometheus.yml");
        let port = TcpListener::bind("127.0.0.1:0").expect("a free loopback port").local_addr().expect("bound").port();
        let child = Command::new("/usr/bin/prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("prometheus.log")).expect("a log file"))
            .spawn()
            .expect("prometheus starts (scripts/install-deps.sh installs it)");
        Prometheus { child, port, dir }
    }

    /// Its base URL.
    pub(crate) fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Polls an instant query (no characters that need escaping) until the answer contains
    /// every one of `needles`; a guard of `limit` against a Prometheus that never scrapes.
    pub(crate) fn wait_for(&mut self, query: &str, needles: &[&str], limit: Duration) {
        let started = Instant::now();
        let mut last = String::new();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("prometheus exited ({status}):\n{}", self.log());
            }
            last = get(self.port, &format!("/api/v1/query?query={query}")).unwrap_or(last);
            if needles.iter().all(|n| last.contains(n)) {
                return;
            }
            assert!(
                started.elapsed() < limit,
                "prometheus did not have {needles:?} for `{query}` within {limit:?}; last answer:\n{last}\nlog:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// GET on 127.0.0.1 with std only; the whole answer, headers included.
fn get(port: u16, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}
