//! `runbooks/health.yaml` on real local servers: the seed's scenario gives the seed's table
//! (total 13, `dr_failover`), and the level boundaries (3/4, 7/8, 10/11) land where the seed
//! puts them. Services A, B, the external check and the Azure probe are HTTP servers; the lag
//! is a real PostgreSQL standby; EKS and the cross-region call are the moto server.

use serde_json::{Value, json};

use crate::health_server::{Answer, HealthServer};
use crate::moto::Moto;
use crate::postgres::{Postgres, free_port};
use crate::scripted::{Reply, Scripted};
use crate::support::Test;

/// Everything `runbooks/health.yaml` probes, on 127.0.0.1.
struct Site {
    service_a: HealthServer,
    service_b: HealthServer,
    external: HealthServer,
    azure: HealthServer,
    /// The observer's own reference (the vantage signal).
    reference: HealthServer,
    pg: Postgres,
    moto: Moto,
}

impl Site {
    fn healthy() -> Site {
        let moto = Moto::start();
        moto.eks_cluster("us-east-1", "all-active", &[("ng-a", "ACTIVE"), ("ng-b", "ACTIVE"), ("ng-c", "ACTIVE")]);
        moto.eks_cluster("us-east-1", "one-degraded", &[("ng-a", "ACTIVE"), ("ng-b", "DEGRADED"), ("ng-c", "ACTIVE")]);
        Site {
            service_a: HealthServer::start(Answer::Status("healthy")),
            service_b: HealthServer::start(Answer::Status("healthy")),
            external: HealthServer::start(Answer::Code(200)),
            azure: HealthServer::start(Answer::Code(200)),
            reference: HealthServer::start(Answer::Code(200)),
            pg: Postgres::with_standby(),
            moto,
        }
    }

    /// `phoenix health runbooks/health.yaml --output json` with the Azure probe `azure_up`
    /// and the EKS cluster `cluster`.
    fn health(&self, azure_up: bool, cluster: &str) -> (String, Value) {
        let base = |s: &HealthServer| s.url().trim_end_matches("/health").to_string();
        let azure = if azure_up { self.azure.url() } else { format!("http://127.0.0.1:{}/health", free_port()) };
        let params = [
            format!("service_a={}", base(&self.service_a)),
            format!("service_b={}", base(&self.service_b)),
            format!("external_url={}", self.external.url()),
            format!("azure_probe={azure}"),
            format!("vantage_url={}", self.reference.url()),
            format!("eks_cluster={cluster}"),
            format!("aws_endpoint_url={}", self.moto.url()),
            "probe_timeout=3s".to_string(),
        ];
        let mut args = vec!["health".to_string(), "health.yaml".to_string()];
        args.extend(params.iter().flat_map(|p| ["--param".to_string(), p.clone()]));
        let out = Test::new()
            .copy("runbooks/health.yaml", "health.yaml")
            .env("PHOENIX_REPLICA_DSN", self.pg.standby_dsn())
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .args(&args)
            .run()
            .success();
        let text = out.stdout().to_string();
        let json = out.then().args(&args).args(["--output", "json"]).run().success().stdout_json();
        (text, json)
    }
}

#[test]
fn the_seeds_scenario_gives_the_seeds_table_total_13_and_dr_failover() {
    let site = Site::healthy();
    site.service_a.set(Answer::Status("unhealthy"));
    site.service_b.set(Answer::Status("degraded"));
    let (text, score) = site.health(false, "one-degraded");
    // The seed's table, row for row: signal, status, weight, contribution.
    let rows = [
        ("internal_service_a", "5", "+5"),
        ("internal_service_b", "2", "+2"),
        ("external_uptime", "0", "+0"),
        ("azure_probe", "4", "+4"),
        ("rds_lag", "0", "+0"),
        ("eks_nodes", "2", "+2"),
        ("aws_cross_region", "0", "+0"),
    ];
    for (name, weight, contribution) in rows {
        let line = text.lines().find(|l| l.starts_with(name)).unwrap_or_else(|| panic!("no row for {name} in\n{text}"));
        let cells: Vec<&str> = line.split_whitespace().collect();
        assert_eq!((cells[2], cells[3]), (weight, contribution), "{name} in\n{text}");
        assert_eq!(score["signals"][name]["weight"], json!(weight.parse::<f64>().unwrap()), "{name}: {score:#}");
    }
    assert!(text.contains("TOTAL 13\n"), "{text}");
    // The score says dr_failover; its `for: 3` holds it back on a first evaluation.
    assert!(text.contains("(raw level dr_failover, streak 1)"), "{text}");
    assert_eq!(score["total"], json!(13.0));
    assert_eq!(score["raw_level"], "dr_failover");
    // The JSON is the second evaluation on the same state: region_failover's `for: 2` is met.
    assert_eq!((score["level"].as_str(), score["streak"].as_u64()), (Some("region_failover"), Some(2)), "{score:#}");
    assert_eq!(score["signals"]["observer_reach"]["status"], "succeeded");
    // Why each one weighs what it does.
    assert_eq!(score["signals"]["internal_service_a"]["outputs"]["json"]["status"], "unhealthy");
    assert_eq!(score["signals"]["azure_probe"]["status"], "failed");
    assert_eq!(score["signals"]["rds_lag"]["outputs"]["lag_seconds"], json!(0.0));
    assert_eq!(score["signals"]["eks_nodes"]["outputs"]["unhealthy"], json!(["ng-b"]));
    assert_eq!(score["signals"]["aws_cross_region"]["outputs"]["status"], "ok");
}

#[test]
fn scores_on_each_boundary_take_the_seeds_levels() {
    let site = Site::healthy();
    let (_, all_well) = site.health(true, "all-active");
    assert_eq!((all_well["total"].clone(), all_well["level"].clone()), (json!(0.0), json!("no_action")), "{all_well:#}");

    // (service A, service B, external up, Azure up, EKS cluster) → total, level.
    let cases: [(&str, &str, u16, bool, &str, f64, &str); 6] = [
        ("healthy", "healthy", 503, true, "all-active", 3.0, "no_action"),
        ("healthy", "healthy", 200, false, "all-active", 4.0, "app_self_healing"),
        ("unhealthy", "degraded", 200, true, "all-active", 7.0, "app_self_healing"),
        ("unhealthy", "healthy", 503, true, "all-active", 8.0, "region_failover"),
        ("unhealthy", "unhealthy", 200, true, "all-active", 10.0, "region_failover"),
        ("unhealthy", "degraded", 200, false, "all-active", 11.0, "dr_failover"),
    ];
    for (a, b, external, azure_up, cluster, total, level) in cases {
        site.service_a.set(Answer::Status(a));
        site.service_b.set(Answer::Status(b));
        site.external.set(Answer::Code(external));
        let (text, score) = site.health(azure_up, cluster);
        assert_eq!(score["total"], json!(total), "{text}");
        assert_eq!(score["raw_level"], level, "{text}");
    }
}

/// A Statuspage v2 site reporting a major outage.
fn status_page_in_outage() -> Scripted {
    Scripted::start(|req, _| {
        let page = json!({ "id": "p1", "name": "Cloudflare", "url": "https://www.cloudflarestatus.com", "time_zone": "Etc/UTC", "updated_at": "2026-11-28T20:00:00Z" });
        match req.path.as_str() {
            "/api/v2/status.json" => Reply::Json(
                200,
                json!({ "page": page, "status": { "indicator": "major", "description": "Major Service Outage" } }).to_string(),
            ),
            "/api/v2/incidents/unresolved.json" => Reply::Json(
                200,
                json!({ "page": page, "incidents": [{
                "id": "i1", "name": "Network performance issues", "status": "identified", "impact": "major",
                "created_at": "2026-11-28T19:30:00Z", "updated_at": "2026-11-28T19:45:00Z", "shortlink": "https://stspg.io/x",
                "components": [{ "name": "CDN/Cache" }] }] })
                .to_string(),
            ),
            _ => Reply::Json(404, "{}".into()),
        }
    })
}

#[test]
fn the_seeds_scenario_runs_its_dr_branch_through_the_analysis_gate() {
    let site = Site::healthy();
    site.service_a.set(Answer::Status("unhealthy"));
    site.service_b.set(Answer::Status("degraded"));
    let statuspage = status_page_in_outage();
    let closed = |path: &str| format!("http://127.0.0.1:{}{path}", free_port());
    let base = |s: &HealthServer| s.url().trim_end_matches("/health").to_string();
    let params = [
        format!("service_a={}", base(&site.service_a)),
        format!("service_b={}", base(&site.service_b)),
        format!("external_url={}", site.external.url()),
        format!("azure_probe={}", closed("/health")),
        format!("vantage_url={}", site.reference.url()),
        "eks_cluster=one-degraded".to_string(),
        format!("aws_endpoint_url={}", site.moto.url()),
        "probe_timeout=3s".to_string(),
        format!("statuspage_url={}", statuspage.url()),
        format!("prometheus_url={}", closed("")),
        format!("loki_url={}", closed("")),
        "failover_runbook=failover.yaml".to_string(),
    ];
    let t = Test::new()
        .copy("runbooks/health.yaml", "health.yaml")
        .copy("runbooks/incident-analysis.yaml", "incident-analysis.yaml")
        .copy("runbooks/prompts/incident-analysis.md.j2", "prompts/incident-analysis.md.j2")
        .file(
            "failover.yaml",
            "version: 1\nname: failover-mark\nsteps:\n  mark:\n    uses: exec\n    with: { cmd: [touch, FAILED_OVER] }\n",
        )
        .env("PHOENIX_REPLICA_DSN", site.pg.standby_dsn())
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .args(["health", "health.yaml"])
        .args(params.iter().flat_map(|p| ["--param", p.as_str()]))
        .run()
        .success();
    // dr_failover holds for 3 evaluations: two `phoenix health`, then the run's own.
    let t = t.then().args(["health", "health.yaml"]).args(params.iter().flat_map(|p| ["--param", p.as_str()])).run().success();
    let out = t.then().args(["run", "health.yaml"]).args(params.iter().flat_map(|p| ["--param", p.as_str()])).run().success();
    let runs: Vec<serde_json::Value> =
        crate::process::run_ids(&out.state_dir()).iter().map(|id| crate::process::status(&out.state_dir(), id)).collect();
    let by_name = |name: &str| runs.iter().find(|r| r["runbook"] == name).unwrap_or_else(|| panic!("no run of {name}: {runs:#?}"));
    let health = by_name("health");
    assert_eq!(health["outputs"]["score"], json!(13.0), "{health:#}");
    assert_eq!(health["outputs"]["level"], "dr_failover");
    assert_eq!(crate::process::step(health, "self_heal")["status"], "skipped");
    assert_eq!(crate::process::step(health, "region_failover")["status"], "skipped");
    // The gate: no model configured, so the rules decide — a major provider outage at the DR
    // level is trigger_dr with high confidence — and the failover starts.
    let gate = by_name("incident-analysis");
    let analysis = &crate::process::step(gate, "analysis")["outputs"];
    assert_eq!(
        (analysis["rule"].as_str(), analysis["recommended_action"].as_str()),
        (Some("statuspage_incident"), Some("trigger_dr")),
        "{analysis:#}"
    );
    assert_eq!(crate::process::step(gate, "error_rate")["outputs"]["available"], false);
    assert!(out.path().join("FAILED_OVER").exists(), "the failover did not run: {gate:#}");
    assert_eq!(by_name("failover-mark")["status"], "succeeded");
}
