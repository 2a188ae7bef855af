//! `phoenix health`: the signals alone, scored and levelled like the seed's table, with the
//! level history kept in the state store across invocations.

use std::time::{Duration, Instant};

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
    let started = Instant::now();
    let score = health_json(&t);
    let took = started.elapsed();
    assert_eq!(score["signals"]["uptime"]["weight"], 3.0, "{score}");
    assert_eq!(score["signals"]["service_a"]["weight"], 0.0, "{score}");
    assert_eq!(score["total"], 3.0, "{score}");
    // Generous: the probe's timeout is 2 s; the others do not wait behind it.
    assert!(took < Duration::from_secs(25), "took {took:?}");
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
