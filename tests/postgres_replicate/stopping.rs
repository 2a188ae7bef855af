//! `postgres.replicate` when pg_dump or pg_restore fails, and when a timeout or a cancel stops
//! them.

use super::*;

#[test]
fn a_failing_pg_dump_or_pg_restore_fails_the_step_with_its_stderr() {
    let pg = Postgres::primary();
    seed(&pg);
    let closed = format!("postgresql://postgres@127.0.0.1:{}/postgres", free_port());
    let no_db = other_db(&pg.dsn(), "no_such_db");
    let yaml = format!(
        r#"version: 1
name: failures
steps:
  unreachable_source:
    uses: postgres.replicate
    continue_on_error: true
    with: {{ source: "{closed}", target: "{target}" }}
  missing_target:
    uses: postgres.replicate
    continue_on_error: true
    with: {{ source: "{source}", target: "{no_db}", jobs: 2 }}
"#,
        target = pg.dsn(),
        source = pg.dsn(),
    );
    let (_, s) = run(&yaml, "", "", 0);
    let unreachable = step(&s, "unreachable_source");
    let error = unreachable["error"].as_str().unwrap_or_default();
    assert!(error.contains("pg_dump exited with 1") && error.contains("pg_restore exited with 1"), "{unreachable:#}");
    assert!(error.contains("pg_dump stderr:") && error.contains("Connection refused"), "{unreachable:#}");
    assert_eq!(unreachable["outputs"]["pg_dump"]["exit_code"], 1);
    assert!(unreachable["outputs"]["pg_restore"]["stderr"].is_string());
    let missing = step(&s, "missing_target");
    let error = missing["error"].as_str().unwrap_or_default();
    assert!(error.contains("pg_restore exited with 1") && error.contains(r#"database "no_such_db" does not exist"#), "{missing:#}");
}

/// pg_dump's and pg_restore's pids, once both run with `marker` in their command lines.
fn both_running(marker: &str) -> Vec<u32> {
    let mut pids = vec![];
    process::wait_for("pg_dump and pg_restore to run", Duration::from_secs(30), || {
        pids = process::alive_with_marker(marker);
        let names: Vec<String> = pids.iter().map(|p| cmdline(*p)).collect();
        names.iter().any(|c| c.contains("pg_dump")) && names.iter().any(|c| c.contains("pg_restore"))
    });
    pids
}

fn cmdline(pid: u32) -> String {
    String::from_utf8_lossy(&std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default()).replace('\0', " ")
}

#[test]
fn a_timeout_or_a_cancel_stops_pg_dump_and_pg_restore() {
    let (source, target) = (Postgres::primary(), Postgres::primary());
    seed(&source);
    let password = format!("pw{}", process::unique());
    let marker = format!("phx_replicate_{}", process::unique());
    let with_marker = |dsn: String| format!("{dsn}?application_name={marker}");
    let source_dsn = with_marker(source.password_role("replicator", &password));
    let target_dsn = with_marker(target.password_role("replicator", &password));
    // pg_dump waits for this lock for as long as it is held.
    let _held = source.hold_lock("orders");

    let timeout = runbook("    timeout: 2s\n");
    let (_, s) = run(&timeout, &source_dsn, &target_dsn, 1);
    let copy = step(&s, "copy");
    assert!(copy["error"].as_str().unwrap_or_default().contains("timed out after 2s"), "{copy:#}");
    process::wait_for("pg_dump and pg_restore to be gone", Duration::from_secs(20), || process::alive_with_marker(&marker).is_empty());

    // The same copy, cancelled by the operator while both programs run.
    let t = Test::new().file("r.yaml", runbook("")).env("SOURCE_DSN", &source_dsn).env("TARGET_DSN", &target_dsn).args(["run", "r.yaml"]);
    let bg = Background::spawn(t.command(), t.path());
    for pid in both_running(&marker) {
        let line = cmdline(pid);
        assert!(!line.contains(&password), "a password on a command line: {line}");
    }
    let run_id = process::latest_run(&t.state_dir());
    let cancel =
        std::process::Command::new(process::phoenix_bin()).arg("--state").arg(t.state_dir()).args(["cancel", &run_id]).output().unwrap();
    assert!(cancel.status.success(), "{}", String::from_utf8_lossy(&cancel.stderr));
    let end = bg.wait(Duration::from_secs(60));
    assert_eq!(end.code, Some(1), "{}", end.stderr);
    process::wait_for("pg_dump and pg_restore to be gone", Duration::from_secs(20), || process::alive_with_marker(&marker).is_empty());
    let s = process::status(&t.state_dir(), &run_id);
    assert_eq!(step(&s, "copy")["status"], "cancelled", "{s:#}");
    let logs = process::json(&t.state_dir(), &["logs", &run_id]).to_string();
    for text in [&end.stdout, &end.stderr, &logs, &s.to_string()] {
        assert!(!text.contains(&password), "the password leaked:\n{text}");
    }
}
