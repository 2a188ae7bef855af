//! `postgres.replication_lag` and `postgres.query` through `phoenix run`, against real
//! PostgreSQL 15 clusters (a primary and a `pg_basebackup -R` standby) started by the
//! fixture in `tests/support/postgres.rs`.

use serde_json::{Value, json};

use crate::postgres::{Postgres, free_port, wait};
use crate::process::{self, step};
use crate::support::{Output, Test};

/// The seed's weights for replication lag.
const LAG_RULES: &str = r#"    weight:
      - { when: "outputs.lag_seconds < 5", weight: 0 }
      - { when: "outputs.lag_seconds <= 30", weight: 1 }
      - { weight: 3 }
"#;

/// A runbook with one lag signal per `(name, dsn env var)`, scored, and a step after it.
fn lag_runbook(signals: &[(&str, &str)]) -> String {
    let mut yaml = String::from("version: 1\nname: lag\nsecrets:\n");
    for (name, env) in signals {
        yaml += &format!("  {name}_dsn: {{ env: {env} }}\n");
    }
    yaml += "signals:\n";
    for (name, _) in signals {
        yaml += &format!(
            "  {name}:\n    uses: postgres.replication_lag\n    with: {{ dsn: \"{{{{ secrets.{name}_dsn }}}}\", connect_timeout: 5s }}\n{LAG_RULES}"
        );
    }
    yaml += "levels:\n  - { name: fine, max: 0 }\n  - { name: lagging, max: 1 }\n  - { name: broken }\n";
    yaml += "steps:\n  after:\n    needs: [score]\n    uses: noop\n";
    yaml
}

/// Runs a runbook with `env` set; the run's status.
fn run(yaml: &str, env: &[(&str, &str)], code: i32) -> (Output, Value) {
    let mut t = Test::new().file("r.yaml", yaml).args(["run", "r.yaml"]);
    for (k, v) in env {
        t = t.env(k, v);
    }
    let out = t.run().code(code);
    let s = process::status(&out.state_dir(), &process::latest_run(&out.state_dir()));
    (out, s)
}

fn signal<'a>(status: &'a Value, name: &str) -> &'a Value {
    &step(status, "score")["outputs"]["signals"][name]
}

fn lag_of(status: &Value) -> f64 {
    let sig = signal(status, "replica");
    sig["outputs"]["lag_seconds"].as_f64().unwrap_or_else(|| panic!("lag_seconds is a number: {sig:#}"))
}

#[test]
fn an_idle_caught_up_standby_has_no_lag() {
    let pg = Postgres::with_standby();
    let yaml = lag_runbook(&[("replica", "REPLICA_DSN")]);
    let dsn = pg.standby_dsn();
    let (_, first) = run(&yaml, &[("REPLICA_DSN", &dsn)], 0);
    let sig = signal(&first, "replica");
    assert_eq!(sig["status"], "succeeded", "{sig:#}");
    assert_eq!(lag_of(&first), 0.0, "{sig:#}");
    assert_eq!(sig["weight"], json!(0.0), "{sig:#}");
    assert_eq!(sig["outputs"]["in_recovery"], true);
    assert_eq!(sig["outputs"]["replay_paused"], false);
    assert_eq!(sig["outputs"]["receive_lsn"], sig["outputs"]["replay_lsn"]);
    assert_eq!(step(&first, "score")["outputs"]["level"], "fine");
    // The seed's own query keeps counting while the primary is idle; the probe does not.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let (_, again) = run(&yaml, &[("REPLICA_DSN", &dsn)], 0);
    assert_eq!(lag_of(&again), 0.0, "{:#}", signal(&again, "replica"));
}

#[test]
fn paused_replay_behind_writes_is_real_lag_with_its_weight() {
    let pg = Postgres::with_standby();
    // One transaction replayed first: a standby that has replayed none since it started (its
    // base backup had everything) has no last replay time, and the seed's lag stays NULL
    // (this wait then never ended: a flaky test).
    pg.sql("INSERT INTO phoenix_fixture DEFAULT VALUES");
    pg.wait_replayed();
    wait("the standby to have replayed a transaction", || pg.standby_sql("SELECT pg_last_xact_replay_timestamp() IS NOT NULL") == "t");
    pg.pause_replay();
    pg.sql("INSERT INTO phoenix_fixture DEFAULT VALUES");
    pg.wait_received();
    // Lag as the seed measures it passes 5 s while replay stays paused.
    wait("the standby's lag to pass 5 s", || {
        pg.standby_sql("SELECT EXTRACT(EPOCH FROM (now() - pg_last_xact_replay_timestamp())) > 5") == "t"
    });
    let yaml = lag_runbook(&[("replica", "REPLICA_DSN")]);
    let (_, s) = run(&yaml, &[("REPLICA_DSN", &pg.standby_dsn())], 0);
    let sig = signal(&s, "replica");
    let lag = lag_of(&s);
    assert!(lag > 5.0, "{sig:#}");
    assert_eq!(sig["outputs"]["replay_paused"], true);
    assert!(sig["outputs"]["lag_bytes"].as_u64().is_some_and(|b| b > 0), "{sig:#}");
    // 1 when the lag is at most 30 s (as it is unless this machine stalled for half a minute).
    let expected = if lag <= 30.0 { 1.0 } else { 3.0 };
    assert_eq!(sig["weight"], json!(expected), "{sig:#}");
    assert_eq!(step(&s, "score")["outputs"]["total"], json!(expected));

    pg.resume_replay();
    pg.wait_replayed();
    let (_, after) = run(&yaml, &[("REPLICA_DSN", &pg.standby_dsn())], 0);
    assert_eq!(lag_of(&after), 0.0, "{:#}", signal(&after, "replica"));
    assert_eq!(signal(&after, "replica")["weight"], json!(0.0));
}

#[test]
fn a_probe_that_cannot_measure_takes_the_fallback_weight() {
    let pg = Postgres::primary();
    let closed = format!("postgresql://postgres@127.0.0.1:{}/postgres", free_port());
    let yaml = lag_runbook(&[("primary", "PRIMARY_DSN"), ("nowhere", "CLOSED_DSN")]);
    let (_, s) = run(&yaml, &[("PRIMARY_DSN", &pg.dsn()), ("CLOSED_DSN", &closed)], 0);
    assert_eq!(s["status"], "succeeded");
    assert_eq!(step(&s, "after")["status"], "succeeded");
    let primary = signal(&s, "primary");
    assert_eq!(primary["status"], "failed", "{primary:#}");
    assert_eq!(primary["weight"], json!(3.0));
    let error = primary["error"].as_str().unwrap_or_default();
    assert!(error.contains("is not a standby") && error.contains("point `dsn` at the replica"), "{error}");
    let nowhere = signal(&s, "nowhere");
    assert_eq!(nowhere["status"], "failed", "{nowhere:#}");
    assert_eq!(nowhere["weight"], json!(3.0));
    assert!(nowhere["error"].as_str().unwrap_or_default().contains("could not connect to postgres@127.0.0.1:"), "{nowhere:#}");
    assert_eq!(step(&s, "score")["outputs"]["total"], json!(6.0));
}

#[test]
fn a_query_returns_typed_rows_and_binds_params() {
    let pg = Postgres::primary();
    pg.sql(
        "CREATE TABLE orders (id int PRIMARY KEY, big bigint, price numeric(10,2), ratio float8, status text, paid bool, \
         placed timestamptz, due date, meta jsonb, tags text[], note text); \
         INSERT INTO orders VALUES \
         (1, 9000000000, 12.50, 0.25, 'open', false, '2026-11-28 20:15:00.5+00', '2026-12-01', '{\"rush\": true}', '{a,b}', NULL), \
         (2, -1, 3.00, 1.5, 'open', true, '2026-11-28 21:00:00+00', '2026-12-02', '[1, 2]', '{}', 'gift'), \
         (3, 0, 0.10, 0, 'closed', true, '2026-11-27 08:00:00+00', '2026-11-30', 'null', '{c}', NULL)",
    );
    let yaml = format!(
        r#"version: 1
name: query
steps:
  open:
    uses: postgres.query
    with:
      dsn: "{dsn}"
      sql: "SELECT * FROM orders WHERE status = $1 AND price >= $2 ORDER BY id"
      params: [open, 1.5]
  counted:
    uses: postgres.query
    with:
      dsn: "{dsn}"
      sql: "SELECT count(*) AS n, sum(price) AS total, $1::int + 1 AS next, $2::text IS NULL AS missing, 1 AS x, 2 AS x FROM orders"
      params: [41, null]
  use_it:
    needs: [open, counted]
    uses: assert
    with: {{ that: "steps.counted.outputs.rows[0].n == 3 and steps.open.outputs.rows[1].meta[1] == 2" }}
"#,
        dsn = pg.dsn()
    );
    let (_, s) = run(&yaml, &[], 0);
    let open = &step(&s, "open")["outputs"];
    assert_eq!(open["row_count"], 2);
    assert_eq!(
        open["rows"][0],
        json!({"id": 1, "big": 9000000000i64, "price": 12.5, "ratio": 0.25, "status": "open", "paid": false,
               "placed": "2026-11-28T20:15:00.5Z", "due": "2026-12-01", "meta": {"rush": true}, "tags": ["a", "b"], "note": null})
    );
    assert_eq!(open["rows"][1]["meta"], json!([1, 2]));
    assert_eq!(open["rows"][1]["tags"], json!([]));
    assert_eq!(open["columns"][2], json!({"name": "price", "type": "numeric"}));
    let counted = &step(&s, "counted")["outputs"];
    assert_eq!(counted["rows"], json!([{"n": 3, "total": 15.6, "next": 42, "missing": true, "x": 1, "x_2": 2}]));
    assert_eq!(counted["row_count"], 1);
}

#[test]
fn a_statement_without_rows_counts_what_it_changed() {
    let pg = Postgres::primary();
    pg.sql("CREATE TABLE t (id int, done bool DEFAULT false); INSERT INTO t SELECT generate_series(1, 5)");
    let yaml = format!(
        r#"version: 1
name: writes
steps:
  finish:
    uses: postgres.query
    with: {{ dsn: "{dsn}", sql: "UPDATE t SET done = true WHERE id <= $1", params: [3] }}
  returning:
    needs: [finish]
    uses: postgres.query
    with: {{ dsn: "{dsn}", sql: "DELETE FROM t WHERE done RETURNING id", max_rows: 2 }}
"#,
        dsn = pg.dsn()
    );
    let (_, s) = run(&yaml, &[], 0);
    let finish = &step(&s, "finish")["outputs"];
    assert_eq!(finish["rows"], json!([]));
    assert_eq!(finish["row_count"], 3);
    let returning = &step(&s, "returning")["outputs"];
    assert_eq!(returning["row_count"], 3);
    assert_eq!(returning["rows"].as_array().map(Vec::len), Some(2));
    assert_eq!(returning["truncated"], true);
    assert_eq!(pg.sql("SELECT count(*) FROM t"), "2");
}

#[test]
fn bad_sql_fails_the_step_with_the_servers_message() {
    let pg = Postgres::primary();
    let yaml = format!(
        "version: 1\nname: bad\nsteps:\n  oops:\n    uses: postgres.query\n    with: {{ dsn: \"{}\", sql: \"SELEC 1\" }}\n",
        pg.dsn()
    );
    let (_, s) = run(&yaml, &[], 1);
    let oops = step(&s, "oops");
    assert_eq!(oops["status"], "failed");
    let error = oops["error"].as_str().unwrap_or_default();
    assert!(error.contains(r#"syntax error at or near "SELEC""#) && error.contains("42601"), "{oops:#}");
}

#[test]
fn validate_rejects_empty_sql_and_tls() {
    Test::new()
        .file(
            "r.yaml",
            "version: 1\nname: v\nsteps:\n  q:\n    uses: postgres.query\n    with: { dsn: \"postgresql://u@h/db?sslmode=require\", sql: \"  \" }\n",
        )
        .args(["validate", "r.yaml"])
        .run()
        .code(2)
        .stderr_contains("`sql` is empty")
        .stderr_contains("do not support yet");
}

#[test]
fn the_password_stays_out_of_status_and_logs() {
    let pg = Postgres::with_standby();
    let password = format!("pw-{}", process::unique());
    let with_pw = |port: u16| format!("postgresql://postgres:{password}@127.0.0.1:{port}/postgres");
    // Literal in `with` (not a secret, so only the actions can keep it out), and as key=value.
    let yaml = format!(
        r#"version: 1
name: secretive
steps:
  ok:
    uses: postgres.query
    with: {{ dsn: "{ok}", sql: "SELECT current_user AS who" }}
  bad_sql:
    uses: postgres.query
    continue_on_error: true
    with: {{ dsn: "host=127.0.0.1 port={port} user=postgres password={password} dbname=postgres", sql: "SELECT nope" }}
  closed:
    uses: postgres.query
    continue_on_error: true
    with: {{ dsn: "{closed}", sql: "SELECT 1" }}
  lag:
    uses: postgres.replication_lag
    with: {{ dsn: "{standby}" }}
  not_standby:
    uses: postgres.replication_lag
    continue_on_error: true
    with: {{ dsn: "{ok}" }}
"#,
        ok = with_pw(pg.port()),
        port = pg.port(),
        closed = with_pw(free_port()),
        standby = pg.standby_dsn().replace("postgres@", &format!("postgres:{password}@")),
    );
    let (out, s) = run(&yaml, &[], 0);
    assert_eq!(step(&s, "ok")["outputs"]["rows"], json!([{"who": "postgres"}]));
    assert_eq!(step(&s, "bad_sql")["status"], "failed");
    assert_eq!(step(&s, "closed")["status"], "failed");
    assert_eq!(step(&s, "not_standby")["status"], "failed");
    // `inputs` echo `with` as written: a literal password shows there (the engine redacts
    // only secrets), which is why DSNs belong in `secrets`. What the actions say must not.
    let run_id = process::latest_run(&out.state_dir());
    let mut seen = vec![out.stdout().to_string(), out.stderr().to_string()];
    for id in ["ok", "bad_sql", "closed", "lag", "not_standby"] {
        let st = step(&s, id);
        seen.push(format!("{id}: error {} outputs {}", st["error"], st["outputs"]));
        seen.push(process::json(&out.state_dir(), &["logs", &run_id, id]).to_string());
    }
    for text in &seen {
        assert!(!text.contains(&password), "the password leaked:\n{text}");
    }
    assert!(seen.iter().any(|t| t.contains("postgres@127.0.0.1:")), "messages still say where they connected");
}

#[test]
fn a_dsn_from_a_secret_never_shows() {
    let pg = Postgres::primary();
    let password = format!("pw-{}", process::unique());
    let yaml = r#"version: 1
name: from_secret
secrets:
  db_password: { env: DB_PASSWORD }
params:
  port: { type: string }
steps:
  ok:
    uses: postgres.query
    with: { dsn: "postgresql://postgres:{{ secrets.db_password }}@127.0.0.1:{{ params.port }}/postgres", sql: "SELECT 1 AS one" }
  bad:
    uses: postgres.query
    continue_on_error: true
    with: { dsn: "postgresql://postgres:{{ secrets.db_password }}@127.0.0.1:{{ params.port }}/postgres", sql: "SELECT nope" }
"#;
    let out = Test::new()
        .file("r.yaml", yaml)
        .args(["run", "r.yaml", "--param", &format!("port={}", pg.port())])
        .env("DB_PASSWORD", &password)
        .run()
        .success();
    let run_id = process::latest_run(&out.state_dir());
    let s = process::status(&out.state_dir(), &run_id);
    assert_eq!(step(&s, "ok")["outputs"]["rows"], json!([{"one": 1}]));
    assert_eq!(step(&s, "bad")["status"], "failed");
    let logs = process::json(&out.state_dir(), &["logs", &run_id]).to_string();
    for text in [out.stdout(), out.stderr(), &s.to_string(), &logs] {
        assert!(!text.contains(&password), "the password leaked:\n{text}");
    }
}

#[test]
fn a_step_timeout_cancels_the_query_on_the_server() {
    let pg = Postgres::primary();
    let marker = format!("phoenix_{}", process::unique());
    let yaml = format!(
        "version: 1\nname: slow\nsteps:\n  slow:\n    uses: postgres.query\n    timeout: 1s\n    with: {{ dsn: \"{}\", sql: \"SELECT pg_sleep(120) AS {marker}\" }}\n",
        pg.dsn()
    );
    let (_, s) = run(&yaml, &[], 1);
    assert_eq!(step(&s, "slow")["status"], "failed", "{s:#}");
    // The server stops the statement too: no backend is left sleeping in it.
    let busy = format!("SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%{marker}%' AND pid <> pg_backend_pid()");
    wait("the server to cancel the statement", || pg.sql(&busy) == "0");
}

/// A step that says `effect: read` runs its query in a read-only session: a statement that
/// writes (an insert, a nextval, a write through a CTE) fails before changing anything, and
/// the same statement from a step that may write goes through.
#[test]
fn a_read_step_cannot_write_even_by_mistake() {
    let pg = Postgres::primary();
    pg.sql("CREATE TABLE ledger (n int); CREATE SEQUENCE ticket");
    let yaml = format!(
        r#"version: 1
name: reads
steps:
  sneaky_insert:
    uses: postgres.query
    effect: read
    with: {{ dsn: "{dsn}", sql: "INSERT INTO ledger VALUES (1)" }}
  sneaky_cte:
    uses: postgres.query
    effect: read
    with: {{ dsn: "{dsn}", sql: "WITH w AS (INSERT INTO ledger VALUES (2) RETURNING n) SELECT n FROM w" }}
  sneaky_sequence:
    uses: postgres.query
    effect: read
    with: {{ dsn: "{dsn}", sql: "SELECT nextval('ticket')" }}
  reading:
    uses: postgres.query
    effect: read
    with: {{ dsn: "{dsn}", sql: "SELECT count(*) AS n FROM ledger" }}
  writing:
    needs: [reading]
    uses: postgres.query
    with: {{ dsn: "{dsn}", sql: "INSERT INTO ledger VALUES (3)" }}
"#,
        dsn = pg.dsn()
    );
    let (_, s) = run(&yaml, &[], 1);
    for id in ["sneaky_insert", "sneaky_cte", "sneaky_sequence"] {
        let st = step(&s, id);
        assert_eq!(st["status"], "failed", "{st:#}");
        assert!(st["error"].as_str().unwrap_or_default().contains("read-only transaction"), "{st:#}");
    }
    assert_eq!(step(&s, "reading")["outputs"]["rows"][0]["n"], 0);
    assert_eq!(step(&s, "writing")["status"], "succeeded");
    assert_eq!(pg.sql("SELECT string_agg(n::text, ',') FROM ledger"), "3");
}
