//! `phoenix watch`: evaluations on a schedule that start a run when the level calls for it,
//! never while the lock is held, not again within the cooldown, and that carry on after a restart.

use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::Duration;

use crate::health_server::{Answer, HealthServer};
use crate::process::{signal, wait_for};
use crate::support::{Output, Test};

fn runbook(server: &HealthServer, extra: &str, hold: u32) -> String {
    format!(
        "version: 1\nname: watched\n{extra}signals:\n  svc:\n    uses: http\n    with: {{ url: \"{}\", timeout: 2s }}\n    weight:\n      - {{ when: \"outputs.json.status == 'healthy'\", weight: 0 }}\n      - {{ weight: 5 }}\nlevels:\n  - {{ name: no_action, max: 3 }}\n  - {{ name: act, for: {hold} }}\nsteps:\n  heal:\n    needs: [score]\n    uses: noop\n",
        server.url()
    )
}

/// A `phoenix watch` in the background, its stdout in a file.
struct Watch {
    child: Child,
    out: PathBuf,
}

impl Watch {
    fn start(t: &Output, args: &[&str]) -> Watch {
        let out =
            t.path().join(format!("watch-{}.out", std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()));
        let mut cmd = t.then().args(["watch", "w.yaml", "--every", "200ms"]).args(args).command();
        cmd.stdin(Stdio::null()).stdout(std::fs::File::create(&out).unwrap()).stderr(Stdio::null());
        Watch { child: cmd.spawn().expect("phoenix watch starts"), out }
    }

    fn lines(&self) -> Vec<String> {
        std::fs::read_to_string(&self.out).unwrap_or_default().lines().map(String::from).collect()
    }

    fn until(&self, what: &str, n: usize) -> Vec<String> {
        wait_for(what, Duration::from_secs(60), || self.lines().iter().filter(|l| l.contains(what)).count() >= n);
        self.lines()
    }

    /// Ctrl-C: exit 130.
    fn stop(mut self) -> Vec<String> {
        signal("INT", &[self.child.id()]);
        let status = self.child.wait().unwrap();
        assert_eq!(status.code(), Some(130), "{:?}", self.lines());
        self.lines()
    }
}

fn runs(t: &Output) -> usize {
    t.then().args(["runs", "--output", "json"]).run().success().stdout_json()["runs"].as_array().map_or(0, Vec::len)
}

#[test]
fn starts_a_run_then_honours_the_cooldown_across_a_restart() {
    let server = HealthServer::start(Answer::Status("healthy"));
    let t = Test::new().file("w.yaml", runbook(&server, "", 1)).args(["validate", "w.yaml"]).run().success();
    let w = Watch::start(&t, &["--cooldown", "1h"]);
    w.until("nothing to do", 1);
    server.set(Answer::Status("unhealthy"));
    w.until("started run", 1);
    w.until("cooldown", 2);
    let lines = w.stop();
    assert_eq!(lines.iter().filter(|l| l.contains("started run")).count(), 1, "{lines:?}");
    assert!(lines.iter().any(|l| l.contains("total 5 level act: started run") && l.contains("succeeded")), "{lines:?}");
    assert_eq!(runs(&t), 1);
    // The cooldown's start is in the store: a restarted watch does not act again.
    let w = Watch::start(&t, &["--cooldown", "1h"]);
    let lines = w.until("cooldown", 2);
    w.stop();
    assert!(!lines.iter().any(|l| l.contains("started run")), "{lines:?}");
    assert_eq!(runs(&t), 1);
}

#[test]
fn does_not_start_a_run_while_the_lock_is_held() {
    let server = HealthServer::start(Answer::Status("unhealthy"));
    let rb = runbook(&server, "lock: failover\n", 1).replace("    uses: noop\n", "    uses: approval\n    with: { message: go? }\n");
    let t = Test::new().file("w.yaml", rb).args(["run", "w.yaml", "--no-wait"]).run().code(3);
    let w = Watch::start(&t, &[]);
    let lines = w.until("not started: the lock `failover` is held by run", 2);
    w.stop();
    assert!(!lines.iter().any(|l| l.contains("started run")), "{lines:?}");
    assert_eq!(runs(&t), 1);
}

#[test]
fn for_counts_on_across_a_restart() {
    let server = HealthServer::start(Answer::Status("unhealthy"));
    let t = Test::new().file("w.yaml", runbook(&server, "", 4)).args(["validate", "w.yaml"]).run().success();
    let w = Watch::start(&t, &[]);
    w.until("streak 2)", 1);
    let first = w.stop();
    let last_streak = first
        .iter()
        .filter_map(|l| l.split("streak ").nth(1))
        .filter_map(|s| s.trim_end_matches(')').split(')').next()?.parse::<u32>().ok())
        .max()
        .unwrap();
    let w = Watch::start(&t, &[]);
    let lines = w.until("level", 1);
    w.stop();
    let expect = if last_streak + 1 >= 4 { "level act: started run".to_string() } else { format!("streak {})", last_streak + 1) };
    assert!(lines[0].contains(&expect), "after {first:?}: {lines:?}");
}

/// GET on 127.0.0.1 with std only; the whole answer (status line, headers, body).
pub(crate) fn http_get(url: &str) -> String {
    use std::io::{Read, Write};
    let rest = url.trim_start_matches("http://");
    let (host, path) = rest.split_once('/').unwrap();
    let Ok(mut s) = std::net::TcpStream::connect(host) else { return String::new() };
    let _ = write!(s, "GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[test]
fn metrics_are_scraped_by_a_real_prometheus() {
    let server = HealthServer::start(Answer::Status("unhealthy"));
    let t = Test::new().file("w.yaml", runbook(&server, "", 1)).args(["validate", "w.yaml"]).run().success();
    let addr = format!("127.0.0.1:{}", free_port());
    let w = Watch::start(&t, &["--metrics", &addr, "--cooldown", "1h"]);
    w.until("level", 1);
    let page = http_get(&format!("http://{addr}/metrics"));
    assert!(page.contains("text/plain; version=0.0.4"), "{page}");
    for line in [
        "# TYPE phoenix_health_score gauge",
        "phoenix_health_score{runbook=\"watched\"} 5",
        "phoenix_health_signal_up{runbook=\"watched\",signal=\"svc\"} 1",
        "phoenix_health_level{runbook=\"watched\",level=\"act\"} 1",
        "phoenix_health_level{runbook=\"watched\",level=\"no_action\"} 0",
    ] {
        assert!(page.contains(line), "no `{line}` in\n{page}");
    }
    assert!(http_get(&format!("http://{addr}/other")).starts_with("HTTP/1.1 404"));
    let prom_port = free_port();
    let dir = t.path().join("prom");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("p.yml"),
        format!(
            "global: {{ scrape_interval: 1s }}\nscrape_configs:\n  - job_name: phoenix\n    static_configs: [{{ targets: ['{addr}'] }}]\n"
        ),
    )
    .unwrap();
    let mut prom = std::process::Command::new("/usr/bin/prometheus")
        .arg(format!("--config.file={}", dir.join("p.yml").display()))
        .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("prometheus starts (scripts/install-deps.sh installs it)");
    let query = format!("http://127.0.0.1:{prom_port}/api/v1/query?query=phoenix_health_score");
    let mut answer = String::new();
    wait_for("prometheus to scrape phoenix_health_score", Duration::from_secs(90), || {
        answer = http_get(&query);
        answer.contains("\"runbook\":\"watched\"") && answer.contains(",\"5\"]")
    });
    let _ = prom.kill();
    let _ = prom.wait();
    w.stop();
}
