//! `phoenix health`: the signals alone, scored and levelled like the seed's table, with the
//! level history kept in the state store across invocations.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;

use crate::health_server::{Answer, HealthServer};
use crate::support::{Output, Test};

/// The seed's signals and levels, each signal on its own switchable server.
struct Seed {
    svc_a: HealthServer,
    svc_b: HealthServer,
    uptime: HealthServer,
    azure: HealthServer,
    lag: HealthServer,
}

impl Seed {
    fn healthy() -> Seed {
        Seed {
            svc_a: HealthServer::start(Answer::Status("healthy")),
            svc_b: HealthServer::start(Answer::Status("healthy")),
            uptime: HealthServer::start(Answer::Code(200)),
            azure: HealthServer::start(Answer::Code(200)),
            lag: HealthServer::start(Answer::Status("healthy")),
        }
    }

    fn runbook(&self) -> String {
        let svc = |name: &str, s: &HealthServer| {
            format!(
                "  {name}:\n    uses: http\n    with: {{ url: \"{}\", timeout: 2s }}\n    weight:\n      - {{ when: \"outputs.json.status == 'healthy'\", weight: 0 }}\n      - {{ when: \"outputs.json.status == 'degraded'\", weight: 2 }}\n      - {{ weight: 5 }}\n",
                s.url()
            )
        };
        let code = |name: &str, s: &HealthServer, w: u32| {
            format!(
                "  {name}:\n    uses: http\n    with: {{ url: \"{}\", timeout: 2s }}\n    weight:\n      - {{ when: \"outputs.status == 200\", weight: 0 }}\n      - {{ weight: {w} }}\n",
                s.url()
            )
        };
        let lag = format!(
            "  rds_lag:\n    uses: http\n    with: {{ url: \"{}\", timeout: 2s }}\n    weight:\n      - {{ when: \"outputs.json.status == 'healthy'\", weight: 0 }}\n      - {{ when: \"outputs.json.status == 'degraded'\", weight: 1 }}\n      - {{ weight: 3 }}\n",
            self.lag.url()
        );
        format!(
            "version: 1\nname: seed-health\nsignals:\n{}{}{}{}{lag}levels:\n  - {{ name: no_action, max: 3 }}\n  - {{ name: app_self_healing, max: 7 }}\n  - {{ name: region_failover, max: 10 }}\n  - {{ name: dr_failover, for: 3 }}\nsteps:\n  act:\n    needs: [score]\n    uses: noop\n",
            svc("service_a", &self.svc_a),
            svc("service_b", &self.svc_b),
            code("uptime", &self.uptime, 3),
            code("azure_probe", &self.azure, 4),
        )
    }
}

/// A test directory holding `h.yaml` (validated once), to run `phoenix health` in.
fn setup(seed: &Seed) -> Output {
    Test::new().file("h.yaml", seed.runbook()).args(["validate", "h.yaml"]).run().success()
}

fn health_json(t: &Output) -> serde_json::Value {
    t.then().args(["health", "h.yaml", "--output", "json"]).run().success().stdout_json()
}

#[test]
fn prints_the_seed_table_and_total_and_records_no_run() {
    let seed = Seed::healthy();
    seed.svc_a.set(Answer::Status("degraded"));
    seed.uptime.set(Answer::Code(503));
    let out: Output = Test::new().file("h.yaml", seed.runbook()).args(["health", "h.yaml"]).run().success();
    let text = out.stdout();
    for row in [("service_a", "succeeded", "2", "+2"), ("service_b", "succeeded", "0", "+0"), ("uptime", "failed", "3", "+3")] {
        let line = text.lines().find(|l| l.starts_with(row.0)).unwrap_or_else(|| panic!("no row for {} in\n{text}", row.0));
        let cells: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(cells, [row.0, row.1, row.2, row.3], "{text}");
    }
    assert!(text.contains("TOTAL 5\n"), "{text}");
    assert!(text.contains("level: app_self_healing\n"), "{text}");
    out.then().args(["runs"]).run().success().stdout_contains("no runs yet");
}

#[test]
fn boundary_scores_land_on_the_seeds_levels() {
    let seed = Seed::healthy();
    let t = setup(&seed);
    let set = |a, b, up, az, lag| {
        seed.svc_a.set(Answer::Status(a));
        seed.svc_b.set(Answer::Status(b));
        seed.uptime.set(Answer::Code(up));
        seed.azure.set(Answer::Code(az));
        seed.lag.set(Answer::Status(lag));
    };
    let cases: [(_, f64, &str); 6] = [
        (("healthy", "healthy", 500, 200, "healthy"), 3.0, "no_action"),
        (("healthy", "healthy", 200, 500, "healthy"), 4.0, "app_self_healing"),
        (("unhealthy", "degraded", 200, 200, "healthy"), 7.0, "app_self_healing"),
        (("unhealthy", "healthy", 500, 200, "healthy"), 8.0, "region_failover"),
        (("unhealthy", "unhealthy", 200, 200, "healthy"), 10.0, "region_failover"),
        (("unhealthy", "unhealthy", 200, 200, "degraded"), 11.0, "dr_failover"),
    ];
    for ((a, b, up, az, lag), total, raw) in cases {
        set(a, b, up, az, lag);
        let score = health_json(&t);
        assert_eq!(score["total"], total, "{score}");
        assert_eq!(score["raw_level"], raw, "{score}");
    }
}

#[test]
fn for_holds_dr_failover_back_across_invocations() {
    let seed = Seed::healthy();
    let t = setup(&seed);
    seed.svc_a.set(Answer::Status("unhealthy"));
    seed.svc_b.set(Answer::Status("unhealthy"));
    seed.azure.set(Answer::Code(500));
    for streak in 1..=2 {
        let score = health_json(&t);
        assert_eq!((score["raw_level"].as_str(), score["streak"].as_u64()), (Some("dr_failover"), Some(streak)), "{score}");
        assert_eq!(score["level"], "region_failover", "{score}");
    }
    let text = t.then().args(["health", "h.yaml"]).run().success();
    assert!(text.stdout().contains("level: dr_failover\n"), "{}", text.stdout());
    seed.svc_a.set(Answer::Status("healthy"));
    seed.svc_b.set(Answer::Status("healthy"));
    seed.azure.set(Answer::Code(200));
    assert_eq!(health_json(&t)["level"], "no_action");
}

#[test]
fn a_hanging_probe_takes_its_fallback_within_its_timeout() {
    let seed = Seed::healthy();
    seed.uptime.set(Answer::Hang);
    let t = setup(&seed);
    let score = health_json(&t);
    assert_eq!(score["signals"]["uptime"]["weight"], 3.0, "{score}");
    assert_eq!(score["signals"]["uptime"]["status"], "failed", "{score}");
    assert_eq!(score["signals"]["service_a"]["weight"], 0.0, "{score}");
    assert_eq!(score["total"], 3.0, "{score}");
}

/// A server that answers no request until `n` requests are open at once, then answers them
/// all `healthy`: probes that ran one after another (or `max_parallel` at a time) would time
/// out waiting, so each probe's weight shows whether all of them ran at once.
fn barrier_server(n: usize) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free loopback port");
    let port = listener.local_addr().expect("bound").port();
    std::thread::spawn(move || {
        let mut open = Vec::new();
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|r| r > 0) && line != "\r\n" {
                line.clear();
            }
            open.push(stream);
            if open.len() == n {
                for mut s in open.drain(..) {
                    let body = r#"{"status": "healthy"}"#;
                    let _ = write!(
                        s,
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                }
            }
        }
    });
    port
}

#[test]
fn all_probes_run_at_once_whatever_max_parallel_says() {
    let n = 12;
    let port = barrier_server(n);
    let mut yaml = String::from("version: 1\nname: barrier\nmax_parallel: 2\nsignals:\n");
    for i in 0..n {
        yaml += &format!(
            "  s{i}:\n    uses: http\n    with: {{ url: \"http://127.0.0.1:{port}/health\", timeout: 20s }}\n    weight:\n      - {{ when: \"outputs.json.status == 'healthy'\", weight: 0 }}\n      - {{ weight: 1 }}\n"
        );
    }
    yaml += "levels:\n  - { name: ok, max: 0 }\n  - { name: bad }\nsteps:\n  act: { needs: [score], uses: noop }\n";
    let score = Test::new().file("b.yaml", yaml).args(["health", "b.yaml", "--output", "json"]).run().success().stdout_json();
    assert_eq!(score["total"], 0.0, "a probe waited behind others: {score:#}");
}

#[test]
fn a_runbook_without_signals_is_bad_input() {
    Test::new()
        .file("r.yaml", "version: 1\nname: plain\nsteps:\n  a:\n    uses: noop\n")
        .args(["health", "r.yaml"])
        .run()
        .code(2)
        .stderr_contains("no signals");
}

/// Weight rules that ask how the probe ended see a failed probe's `status`, `outputs` and
/// `error`; rules written for an answer never give a failed probe their weight.
#[test]
fn weight_rules_see_a_failed_probe() {
    let gone = HealthServer::start(Answer::Code(404));
    let broken = HealthServer::start(Answer::Code(500));
    let strict = HealthServer::start(Answer::Status("healthy"));
    let asks = |name: &str, s: &HealthServer| {
        format!(
            "  {name}:\n    uses: http\n    with: {{ url: \"{}\", timeout: 2s }}\n    weight:\n      - {{ when: \"status == 'failed' and outputs.status == 404\", weight: 1 }}\n      - {{ when: \"status == 'failed' and 'answered 500' in error\", weight: 2 }}\n      - {{ weight: 5 }}\n",
            s.url()
        )
    };
    // Answered 200 with a healthy body, but only 204 is expected: the probe failed.
    let answer_only = format!(
        "  strict:\n    uses: http\n    with: {{ url: \"{}\", timeout: 2s, expect_status: [204] }}\n    weight:\n      - {{ when: \"outputs.json.status == 'healthy'\", weight: 0 }}\n      - {{ weight: 7 }}\n",
        strict.url()
    );
    let yaml = format!(
        "version: 1\nname: failed-probes\nsignals:\n{}{}{answer_only}levels:\n  - {{ name: calm, max: 100 }}\n  - {{ name: act }}\nsteps:\n  act:\n    needs: [score]\n    uses: noop\n",
        asks("gone", &gone),
        asks("broken", &broken),
    );
    let t = Test::new().file("h.yaml", yaml).args(["validate", "h.yaml"]).run().success();
    let v = health_json(&t);
    let sig = |n: &str| v["signals"][n].clone();
    assert_eq!((sig("gone")["status"].as_str(), sig("gone")["outputs"]["status"].as_u64()), (Some("failed"), Some(404)), "{v:#}");
    assert_eq!(sig("gone")["weight"], 1.0, "{v:#}");
    assert_eq!(sig("broken")["weight"], 2.0, "{v:#}");
    assert_eq!((sig("strict")["status"].as_str(), sig("strict")["weight"].as_f64()), (Some("failed"), Some(7.0)), "{v:#}");
    assert_eq!(v["total"], 10.0, "{v:#}");
    // Answered as hoped, the same rules fall through to the answer's own.
    gone.set(Answer::Code(200));
    assert_eq!(health_json(&t)["signals"]["gone"]["weight"], 5.0);
}
