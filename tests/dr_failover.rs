//! The DR runbooks on the sandbox of real services (`scripts/sandbox.py`: PostgreSQL primary,
//! standby and DR databases, the moto server, Azurite, the services, terraform/helm/kubectl
//! stand-ins): `make demo`'s whole story, then failback, self-healing and a region failover,
//! and a failover aborted before DNS moved.

use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

use crate::process::{self, step};
use crate::support::{phoenix_bin, repo_root};

/// A sandbox in a temporary directory; `down` on Drop.
struct Sandbox {
    dir: tempfile::TempDir,
    params: Value,
}

impl Sandbox {
    fn up() -> Sandbox {
        let dir = tempfile::Builder::new().prefix("phoenix-sandbox-").tempdir().expect("a temporary directory");
        let out =
            Command::new("python3").arg(repo_root().join("scripts/sandbox.py")).arg("up").arg(dir.path()).output().expect("python3 runs");
        assert!(out.status.success(), "the sandbox did not come up:\n{}", String::from_utf8_lossy(&out.stderr));
        let params = serde_json::from_str(&std::fs::read_to_string(dir.path().join("params.json")).unwrap()).unwrap();
        Sandbox { dir, params }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `phoenix run RUNBOOK` with the sandbox's secrets in the environment; its run's status.
    fn run(&self, runbook: &str, params: &[(&str, Value)], code: i32) -> Value {
        let state = self.path().join("state");
        let mut cmd = Command::new(phoenix_bin());
        cmd.arg("--state").arg(&state).arg("run").arg(repo_root().join("runbooks").join(runbook));
        for (k, v) in params {
            let v = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            cmd.arg("--param").arg(format!("{k}={v}"));
        }
        for (k, v) in self.params["env"].as_object().unwrap() {
            cmd.env(k, v.as_str().unwrap());
        }
        let out =
            cmd.env("NO_COLOR", "1").env("AWS_CONFIG_FILE", "/nonexistent").env("AWS_EC2_METADATA_DISABLED", "true").output().unwrap();
        assert_eq!(out.status.code(), Some(code), "{runbook}:\n{}", String::from_utf8_lossy(&out.stderr));
        let name = runbook.trim_end_matches(".yaml");
        process::run_ids(&state)
            .iter()
            .map(|id| process::status(&state, id))
            .find(|s| s["runbook"] == name)
            .unwrap_or_else(|| panic!("no run of {name}"))
    }

    fn dr(&self, key: &str) -> Value {
        self.params["dr"][key].clone()
    }

    fn sql(&self, port: &str, query: &str) -> String {
        let port = self.ports()[port].to_string();
        let out = Command::new("/usr/lib/postgresql/15/bin/psql")
            .args(["-X", "-A", "-t", "-h", "127.0.0.1", "-p", &port, "-U", "postgres", "-d", "app", "-c", query])
            .env("PGPASSWORD", "sandbox-app-Pw-4417")
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// The values of the sandbox's `app.example.com` A record, read from moto with boto3.
    fn dns_record(&self) -> Vec<String> {
        let venv = std::env::var_os("PHOENIX_VENV").map_or_else(|| repo_root().join(".tools/venv"), std::path::PathBuf::from);
        let code = format!(
            r#"
import boto3
r53 = boto3.client("route53", region_name="us-east-1", endpoint_url="{}", aws_access_key_id="sandbox", aws_secret_access_key="sandbox")
for r in r53.list_resource_record_sets(HostedZoneId="{}")["ResourceRecordSets"]:
    if r["Name"].rstrip(".") == "app.example.com" and r["Type"] == "A":
        print(" ".join(v["Value"] for v in r["ResourceRecords"]))
"#,
            self.dr("aws_endpoint_url").as_str().unwrap(),
            self.dr("zone_id").as_str().unwrap()
        );
        let out = Command::new(venv.join("bin/python")).arg("-c").arg(code).output().expect("the sandbox's python runs");
        assert!(out.status.success(), "reading the record from moto failed:\n{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).split_whitespace().map(str::to_string).collect()
    }

    fn ports(&self) -> Value {
        let cfg: Value = serde_json::from_str(&std::fs::read_to_string(self.path().join("sandbox.json")).unwrap()).unwrap();
        cfg["ports"].clone()
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = Command::new("python3").arg(repo_root().join("scripts/sandbox.py")).arg("down").arg(self.dir.path()).output();
    }
}

#[test]
fn make_demo_fails_over_everything_through_a_crash() {
    let dir = tempfile::Builder::new().prefix("phoenix-demo-").tempdir().unwrap();
    let out = Command::new(repo_root().join("scripts/demo.sh"))
        .env("PHOENIX", phoenix_bin())
        .env("DEMO_DIR", dir.path().join("demo"))
        .env("NO_COLOR", "1")
        .output()
        .expect("the demo runs");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "make demo failed:\n{text}");
    assert!(text.contains("TOTAL 13") && text.contains("(raw level dr_failover, streak 1)"), "{text}");
    assert!(text.contains("decision: trigger_dr high"), "{text}");
    for what in ["database  customers", "database  orders", "storage   300 objects", "dns       app.example.com → 20.50.0.10", "services"]
    {
        assert!(text.contains(&format!("ok  {what}")), "not verified: {what}\n{text}");
    }
    assert!(text.contains("after 2 attempts"), "the run was not killed and resumed:\n{text}");
}

#[test]
fn failback_self_healing_and_a_region_failover_on_the_sandbox() {
    let sb = Sandbox::up();
    let ports = sb.ports();
    let common = |extra: &[(&str, Value)]| -> Vec<(String, Value)> {
        let mut v: Vec<(String, Value)> =
            vec![("zone_id".into(), sb.dr("zone_id")), ("aws_endpoint_url".into(), sb.dr("aws_endpoint_url"))];
        v.extend(extra.iter().map(|(k, x)| (k.to_string(), x.clone())));
        v
    };

    // Fail over (forced: a drill needs no incident).
    let p = common(&[
        ("force", json!(true)),
        ("dr_site_url", sb.dr("azure_site")),
        ("tools_dir", sb.dr("tools_dir")),
        ("terraform_dir", sb.dr("work_dir")),
    ]);
    let s = sb.run("dr-failover.yaml", &args(&p), 0);
    assert_eq!(step(&s, "health")["status"], "skipped");
    // Its invariants were checked around the switch, before and after, and held.
    assert_eq!(
        invariant_checks(&sb, &s),
        [
            "one_active_region before true",
            "dr_database_writable before true",
            "one_active_region after true",
            "dr_database_writable after true"
        ]
    );
    assert_eq!(s["outputs"]["dns_now"]["values"], json!(["20.50.0.10"]), "{s:#}");

    // During the outage the DR site takes writes: a row and an object.
    sb.sql("pg_azure", "INSERT INTO customers VALUES (9001, 'signed up during the outage')");
    let put = "version: 1\nname: write\nsteps:\n  put:\n    uses: azure_blob.put\n    with: { container: dr-assets, name: assets/new-during-outage.json, body: '{}' }\n";
    std::fs::write(sb.path().join("write.yaml"), put).unwrap();
    let out = Command::new(phoenix_bin())
        .args(["--state"])
        .arg(sb.path().join("state"))
        .arg("run")
        .arg(sb.path().join("write.yaml"))
        .env("AZURE_STORAGE_CONNECTION_STRING", sb.params["env"]["AZURE_STORAGE_CONNECTION_STRING"].as_str().unwrap())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // Failback: the new row and object come home, DNS points at AWS again.
    let aws_site = format!("http://127.0.0.1:{}", ports["svc_a"]);
    let p = common(&[("aws_lb_ip", json!("10.0.1.10")), ("aws_site_url", json!(aws_site)), ("approve_dns", json!(false))]);
    let s = sb.run("failback.yaml", &args(&p), 0);
    assert_eq!(s["outputs"]["dns_previous"]["values"], json!(["20.50.0.10"]), "{s:#}");
    assert_eq!(
        invariant_checks(&sb, &s),
        [
            "one_active_region before true",
            "aws_database_writable before true",
            "one_active_region after true",
            "aws_database_writable after true"
        ]
    );
    assert_eq!(s["outputs"]["objects"], 301);
    // Only what the outage added travels: the rest is recognised as the same content (MD5).
    let sync = &step(&s, "sync_storage")["outputs"];
    assert_eq!((sync["copied"].as_u64(), sync["skipped"].as_u64()), (Some(1), Some(300)), "{sync:#}");
    assert_eq!(sb.sql("pg_aws", "SELECT name FROM customers WHERE id = 9001"), "signed up during the outage");

    // Self-healing restarts the services (kubectl stand-in) and waits for them.
    let s = sb.run("app-self-healing.yaml", &[("kubectl", json!(format!("{}/kubectl", sb.dr("tools_dir").as_str().unwrap())))], 0);
    assert_eq!(s["status"], "succeeded");
    let tools = std::fs::read_to_string(sb.path().join("tools.log")).unwrap();
    assert!(tools.contains("rollout restart deployment/service-a") && tools.contains("rollout status deployment/service-b"), "{tools}");

    // A region failover promotes the standby and moves DNS to the standby region.
    assert_eq!(sb.sql("pg_standby", "SELECT pg_is_in_recovery()"), "t");
    let p = common(&[
        ("standby_lb_ip", json!("10.0.2.10")),
        ("verify_url", json!(format!("http://127.0.0.1:{}/health", ports["svc_b"]))),
        ("tools_dir", sb.dr("tools_dir")),
    ]);
    let s = sb.run("region-failover.yaml", &args(&p), 0);
    assert_eq!(s["outputs"]["dns_now"]["values"], json!(["10.0.2.10"]), "{s:#}");
    assert_eq!(sb.sql("pg_standby", "SELECT pg_is_in_recovery()"), "f", "the standby was not promoted");
}

/// A run's invariant checks: `NAME WHEN HELD`, in order.
fn invariant_checks(sb: &Sandbox, status: &Value) -> Vec<String> {
    let logs = process::json(&sb.path().join("state"), &["logs", status["id"].as_str().unwrap()]);
    let events = logs["events"].as_array().cloned().unwrap_or_default();
    events
        .iter()
        .filter(|e| e["kind"] == "invariant")
        .map(|e| format!("{} {} {}", e["name"].as_str().unwrap_or(""), e["when"].as_str().unwrap_or(""), e["held"]))
        .collect()
}

/// `(name, value)` pairs as `run` takes them.
fn args(v: &[(String, Value)]) -> Vec<(&str, Value)> {
    v.iter().map(|(k, x)| (k.as_str(), x.clone())).collect()
}

/// The issue's first finding on the real runbook: helm fails, `rollout` is not run for it,
/// the optional `approve_dns` is skipped by its `when`, and `switch_dns` (`none_failed`) must
/// not move the record to a site whose services never came up.
#[test]
fn a_failed_helm_deploy_leaves_the_dns_record_where_it_was() {
    let sb = Sandbox::up();
    assert_eq!(sb.dns_record(), ["10.0.1.10"], "the sandbox's record does not start at the primary");
    // The sandbox's tools, but a helm that fails as a cluster that never became ready does.
    let sandbox_bin = std::path::PathBuf::from(sb.dr("tools_dir").as_str().unwrap());
    let bin = sb.path().join("broken-helm-bin");
    std::fs::create_dir_all(&bin).unwrap();
    for tool in ["terraform", "kubectl"] {
        std::os::unix::fs::symlink(sandbox_bin.join(tool), bin.join(tool)).unwrap();
    }
    let helm = format!(
        "#!/usr/bin/env bash\necho \"helm $*\" >> {}\necho 'Error: UPGRADE FAILED: timed out waiting for the condition' >&2\nexit 1\n",
        sb.path().join("tools.log").display()
    );
    std::fs::write(bin.join("helm"), helm).unwrap();
    std::fs::set_permissions(bin.join("helm"), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();

    let p = [
        ("zone_id", sb.dr("zone_id")),
        ("aws_endpoint_url", sb.dr("aws_endpoint_url")),
        ("force", json!(true)),
        ("dr_site_url", sb.dr("azure_site")),
        ("tools_dir", json!(bin.to_str().unwrap())),
        ("terraform_dir", sb.dr("work_dir")),
    ];
    let s = sb.run("dr-failover.yaml", &p, 1);

    // What must not happen: the record still points at the primary, nothing was verified.
    assert_eq!(sb.dns_record(), ["10.0.1.10"], "DNS moved after a failed deploy:\n{s:#}");
    let tools = std::fs::read_to_string(sb.path().join("tools.log")).unwrap_or_default();
    assert!(tools.contains("helm upgrade --install service-a"), "helm was never asked: {tools}");
    assert!(!tools.contains("rollout status"), "kubectl rolled out after helm failed: {tools}");
    // What must happen: the run failed at deploy, and status says why switch_dns did not run.
    assert_eq!(s["status"], "failed", "{s:#}");
    assert_eq!(step(&s, "deploy")["status"], "failed");
    assert_eq!(step(&s, "rollout")["status"], "upstream_failed");
    assert_eq!(step(&s, "approve_dns")["status"], "upstream_failed", "the gate is after rollout: not run for the failure");
    let switch = step(&s, "switch_dns");
    assert_eq!((switch["status"].as_str(), switch["upstream"].as_str()), (Some("upstream_failed"), Some("deploy")), "{switch:#}");
    assert!(switch["error"].as_str().unwrap_or_default().contains("`deploy` failed"), "{switch:#}");
    assert!(switch["outputs"].is_null() && switch["attempts"] == 0, "{switch:#}");
    for verify in ["verify_http", "verify_db", "verify_storage"] {
        assert_eq!(step(&s, verify)["status"], "upstream_failed", "{verify}");
    }
    // The steps that do not depend on the deploy did their work.
    for done in ["confirm", "replicate_db", "sync_storage", "tf_apply"] {
        assert_eq!(step(&s, done)["status"], "succeeded", "{done}: {s:#}");
    }
}

/// `phoenix --state STATE ARGS` with the sandbox's secrets in the environment.
fn phoenix(sb: &Sandbox, args: &[String]) -> std::process::Output {
    let mut cmd = Command::new(phoenix_bin());
    cmd.arg("--state").arg(sb.path().join("state")).args(args);
    for (k, v) in sb.params["env"].as_object().unwrap() {
        cmd.env(k, v.as_str().unwrap());
    }
    cmd.env("NO_COLOR", "1").env("AWS_CONFIG_FILE", "/nonexistent").env("AWS_EC2_METADATA_DISABLED", "true").output().unwrap()
}

/// The stale-decision guard's way out on the real runbook: a failover halted at its DNS
/// approval with the DR site built is aborted (`phoenix resume --abort`): DNS never leaves
/// the primary, and what the failover built (services, terraform's site, the copied tables
/// and objects) is taken down.
#[test]
fn an_aborted_failover_leaves_the_primary_serving_and_cleans_up_the_dr_site() {
    let sb = Sandbox::up();
    let primary = sb.dns_record();
    assert_eq!(primary, ["10.0.1.10"]);
    let mut args: Vec<String> = vec!["run".into(), repo_root().join("runbooks/dr-failover.yaml").display().to_string(), "--no-wait".into()];
    for (k, v) in [
        ("zone_id", sb.dr("zone_id")),
        ("aws_endpoint_url", sb.dr("aws_endpoint_url")),
        ("force", json!(true)),
        ("approve_dns", json!(true)),
        ("dr_site_url", sb.dr("azure_site")),
        ("tools_dir", sb.dr("tools_dir")),
        ("terraform_dir", sb.dr("work_dir")),
    ] {
        args.push("--param".into());
        args.push(format!("{k}={}", v.as_str().map_or_else(|| v.to_string(), str::to_string)));
    }
    let out = phoenix(&sb, &args);
    assert_eq!(out.status.code(), Some(3), "halts at approve_dns:\n{}", String::from_utf8_lossy(&out.stderr));
    let state = sb.path().join("state");
    let run = process::run_of(&state, "dr-failover");
    let s = process::status(&state, &run);
    assert_eq!(step(&s, "approve_dns")["status"], "waiting", "{s:#}");
    let provisioned = sb.path().join("state/azure-provisioned");
    assert!(provisioned.exists(), "terraform built the DR site");
    assert!(sb.path().join("state/deployed-service-a").exists(), "helm deployed service-a");
    assert_eq!(sb.sql("pg_azure", "SELECT to_regclass('public.customers') IS NULL"), "f", "the DR copy was made");

    let out = phoenix(&sb, &["resume".into(), run.clone(), "--abort".into(), "--reason".into(), "primary recovered".into()]);
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(0), "an abort carried out is the command's success (the run ends cancelled):\n{err}");
    let s = process::status(&state, &run);
    assert_eq!(s["status"], "cancelled", "{s:#}");
    assert!(s["error"].as_str().unwrap_or_default().contains("primary recovered"), "{s:#}");
    for done in ["dns_now", "dns_at_primary", "tf_destroy", "drop_dr_tables", "delete_dr_objects"] {
        assert_eq!(step(&s, done)["status"], "succeeded", "{done}: {s:#}");
    }
    assert_eq!(step(&s, "restore_dns")["status"], "skipped", "DNS never moved: nothing to restore");
    assert_eq!(step(&s, "switch_dns")["status"], "cancelled");
    // What must hold: the primary serves, the DR site and its copies are gone.
    assert_eq!(sb.dns_record(), primary, "DNS left the primary");
    let tools = std::fs::read_to_string(sb.path().join("tools.log")).unwrap_or_default();
    assert!(tools.contains("helm uninstall service-a") && tools.contains("helm uninstall service-b"), "{tools}");
    assert!(tools.contains("terraform destroy -auto-approve"), "{tools}");
    assert!(!provisioned.exists() && !sb.path().join("state/deployed-service-a").exists(), "the DR site is still up");
    assert_eq!(sb.sql("pg_azure", "SELECT to_regclass('public.customers') IS NULL"), "t", "the copied tables were dropped");
    assert_eq!(step(&s, "dr_objects")["outputs"]["count"], 300, "{s:#}");
    let list = "version: 1\nname: list\nsteps:\n  ls:\n    uses: azure_blob.list\n    with: { container: dr-assets }\n";
    std::fs::write(sb.path().join("list.yaml"), list).unwrap();
    let out = phoenix(&sb, &["run".into(), sb.path().join("list.yaml").display().to_string()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let l = process::status(&state, &process::run_of(&state, "list"));
    assert_eq!(step(&l, "ls")["outputs"]["count"], 0, "the synced objects were deleted: {l:#}");
}

/// DNS had moved when the failover failed (its DR site never answered): `--abort` puts the
/// record back at the primary, checks it, then takes the DR site down.
#[test]
fn an_aborted_failover_after_dns_moved_points_it_back_at_the_primary() {
    let sb = Sandbox::up();
    assert_eq!(sb.dns_record(), ["10.0.1.10"]);
    let p = [
        ("zone_id", sb.dr("zone_id")),
        ("aws_endpoint_url", sb.dr("aws_endpoint_url")),
        ("force", json!(true)),
        ("dr_site_url", json!("http://127.0.0.1:1")),
        ("tools_dir", sb.dr("tools_dir")),
        ("terraform_dir", sb.dr("work_dir")),
    ];
    let s = sb.run("dr-failover.yaml", &p, 1);
    assert_eq!(step(&s, "switch_dns")["status"], "succeeded", "{s:#}");
    assert_eq!(step(&s, "verify_http")["status"], "failed");
    assert_eq!(sb.dns_record(), ["20.50.0.10"], "DNS moved to the DR site");
    let run = s["id"].as_str().unwrap().to_string();
    let out = phoenix(&sb, &["resume".into(), run.clone(), "--abort".into(), "--reason".into(), "DR site dead".into()]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let s = process::status(&sb.path().join("state"), &run);
    assert_eq!(s["status"], "cancelled", "{s:#}");
    for done in ["restore_dns", "dns_at_primary", "tf_destroy"] {
        assert_eq!(step(&s, done)["status"], "succeeded", "{done}: {s:#}");
    }
    assert_eq!(sb.dns_record(), ["10.0.1.10"], "the record is back at the primary");
}
