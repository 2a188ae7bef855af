//! `postgres.replicate` through `phoenix run`, between two real PostgreSQL 15 clusters from
//! `tests/support/postgres.rs`: streamed, in parallel through a directory, through a kept
//! file; row counts verified; pg_dump and pg_restore stopped by a timeout or a cancel; and
//! the password kept off command lines, out of status and out of logs.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use serde_json::{Value, json};

use crate::postgres::{Postgres, free_port};
use crate::process::{self, Background, step};
use crate::support::{Output, Test};

/// A source worth copying: two schemas, thousands of rows, a foreign key, an index, a
/// standalone sequence that a column uses, a view.
fn seed(pg: &Postgres) {
    pg.sql(
        "CREATE TABLE customers (id serial PRIMARY KEY, name text NOT NULL, email text UNIQUE); \
         CREATE TABLE orders (id bigserial PRIMARY KEY, customer_id int NOT NULL REFERENCES customers(id), total numeric(10,2)); \
         CREATE INDEX orders_customer_idx ON orders (customer_id); \
         CREATE TABLE audit (id serial PRIMARY KEY, note text); \
         CREATE SEQUENCE invoice_numbers START 1000; \
         SELECT setval('invoice_numbers', 4242); \
         CREATE SCHEMA billing; \
         CREATE TABLE billing.invoices (no bigint PRIMARY KEY DEFAULT nextval('invoice_numbers'), order_id bigint, amount numeric); \
         CREATE VIEW big_customers AS SELECT c.id, c.name, sum(o.total) AS spent FROM customers c JOIN orders o ON o.customer_id = c.id \
           GROUP BY c.id, c.name HAVING sum(o.total) > 100; \
         INSERT INTO customers (name, email) SELECT 'customer ' || i, 'c' || i || '@example.com' FROM generate_series(1, 2000) i; \
         INSERT INTO orders (customer_id, total) SELECT 1 + (i % 2000), (i % 97) + 0.5 FROM generate_series(1, 6000) i; \
         INSERT INTO audit (note) SELECT 'event ' || i FROM generate_series(1, 3000) i; \
         INSERT INTO billing.invoices (order_id, amount) SELECT i, i * 1.5 FROM generate_series(1, 1500) i",
    );
}

/// What a target had before: a stale `orders` of another shape, a stale `audit`, and a table
/// the source does not have (left alone).
fn stale(pg: &Postgres) {
    pg.sql(
        "CREATE TABLE orders (id int, junk text); INSERT INTO orders VALUES (1, 'old'), (2, 'old'), (3, 'old'); \
         CREATE TABLE audit (id int, note text); INSERT INTO audit VALUES (1, 'old'), (2, 'old'), (3, 'old'); \
         CREATE TABLE keep_me (x int); INSERT INTO keep_me VALUES (7)",
    );
}

const VERIFY: &str = "[customers, public.orders, billing.invoices, audit]";

fn runbook(with: &str) -> String {
    format!(
        "version: 1\nname: replicate\nsecrets:\n  source: {{ env: SOURCE_DSN }}\n  target: {{ env: TARGET_DSN }}\nsteps:\n  copy:\n    uses: postgres.replicate\n    with:\n      source: \"{{{{ secrets.source }}}}\"\n      target: \"{{{{ secrets.target }}}}\"\n{with}"
    )
}

/// Runs a runbook with the two DSNs; the run's output and status.
fn run(yaml: &str, source: &str, target: &str, code: i32) -> (Output, Value) {
    let out = Test::new().file("r.yaml", yaml).args(["run", "r.yaml"]).env("SOURCE_DSN", source).env("TARGET_DSN", target).run().code(code);
    let s = process::status(&out.state_dir(), &process::latest_run(&out.state_dir()));
    (out, s)
}

/// The same DSN naming another database.
fn other_db(dsn: &str, db: &str) -> String {
    let (server, _) = dsn.rsplit_once('/').expect("a DSN URL ends with its database");
    format!("{server}/{db}")
}

/// Every line the step logged, as one text.
fn logs(out: &Output, step_id: &str) -> String {
    let run = process::latest_run(&out.state_dir());
    let logs = process::json(&out.state_dir(), &["logs", &run, step_id]);
    logs["lines"].as_array().map_or(String::new(), |l| l.iter().filter_map(|l| l["text"].as_str()).collect::<Vec<_>>().join("\n"))
}

/// The target holds what the source holds: every row, the sequences' positions, the index
/// and the view.
fn assert_same(source: &Postgres, target: &Postgres) {
    for q in [
        "SELECT count(*) FROM customers",
        "SELECT count(*) || ' ' || sum(total) FROM orders",
        "SELECT count(*) FROM audit",
        "SELECT count(*) || ' ' || max(no) FROM billing.invoices",
        "SELECT last_value FROM invoice_numbers",
        "SELECT last_value FROM orders_id_seq",
        "SELECT count(*) || ' ' || sum(spent) FROM big_customers",
        "SELECT indexdef FROM pg_indexes WHERE indexname = 'orders_customer_idx'",
    ] {
        assert_eq!(source.sql(q), target.sql(q), "{q}");
    }
    assert_eq!(target.sql("SELECT last_value FROM invoice_numbers"), "5742");
}

#[test]
fn the_seeds_path_stages_the_dump_through_s3_then_azure_blob() {
    let (source, target) = (Postgres::primary(), Postgres::primary());
    seed(&source);
    let (moto, azurite) = (crate::moto::Moto::start(), crate::azurite::Azurite::start());
    moto.s3_bucket("us-east-1", "backups");
    // The Azure container must exist: create it with a one-step runbook.
    let make = "version: 1\nname: mk\nsteps:\n  c: { uses: azure_blob.put, with: { container: dumps, name: .keep, body: x, create_container: true } }\n";
    Test::new()
        .file("c.yaml", make)
        .env("AZURE_STORAGE_CONNECTION_STRING", azurite.connection_string())
        .args(["run", "c.yaml"])
        .run()
        .success();
    let yaml = runbook(&format!("      via: [s3://backups/db/prod.dump, azblob://dumps/prod.dump]\n      verify_tables: {VERIFY}\n"));
    let out = Test::new()
        .file("r.yaml", yaml)
        .args(["run", "r.yaml"])
        .env("SOURCE_DSN", source.dsn())
        .env("TARGET_DSN", target.dsn())
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ENDPOINT_URL", moto.url())
        .env("AZURE_STORAGE_CONNECTION_STRING", azurite.connection_string())
        .run()
        .success();
    let s = process::status(&out.state_dir(), &process::latest_run(&out.state_dir()));
    assert_eq!(step(&s, "copy")["outputs"]["verified"], true, "{s:#}");
    assert_same(&source, &target);
    let text = logs(&out, "copy");
    assert!(
        text.contains("staged the dump at s3://backups/db/prod.dump") && text.contains("staged the dump at azblob://dumps/prod.dump"),
        "{text}"
    );
    assert!(text.contains("downloaded azblob://dumps/prod.dump for the restore"), "{text}");
    // The staged dumps stay in both stores: list them through the product.
    let list = "version: 1\nname: ls\nsteps:\n  s3: { uses: s3.list, with: { bucket: backups } }\n  az: { uses: azure_blob.list, with: { container: dumps, prefix: prod } }\n";
    let ls = Test::new()
        .file("l.yaml", list)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ENDPOINT_URL", moto.url())
        .env("AZURE_STORAGE_CONNECTION_STRING", azurite.connection_string())
        .args(["run", "l.yaml"])
        .run()
        .success();
    let l = process::status(&ls.state_dir(), &process::latest_run(&ls.state_dir()));
    assert_eq!(step(&l, "s3")["outputs"]["count"], 1, "{l:#}");
    assert_eq!(step(&l, "az")["outputs"]["count"], 1, "{l:#}");
    assert_eq!(step(&l, "s3")["outputs"]["total_bytes"], step(&l, "az")["outputs"]["total_bytes"]);
}

#[test]
fn streams_a_database_over_stale_data_and_verifies_it() {
    let (source, target) = (Postgres::primary(), Postgres::primary());
    seed(&source);
    stale(&target);
    let yaml = runbook(&format!("      verify_tables: {VERIFY}\n"));
    let (out, s) = run(&yaml, &source.dsn(), &target.dsn(), 0);
    let outputs = &step(&s, "copy")["outputs"];
    assert_eq!(outputs["format"], "custom", "{outputs:#}");
    assert_eq!(outputs["verified"], true);
    assert_eq!(outputs["rows"], json!({"customers": 2000, "public.orders": 6000, "billing.invoices": 1500, "audit": 3000}));
    // customers, orders, audit, billing.invoices, and the untouched keep_me.
    assert_eq!(outputs["tables"], 5);
    assert!(outputs["bytes"].as_u64().is_some_and(|b| b > 50_000), "{outputs:#}");
    assert!(outputs["duration_ms"].is_u64());
    assert_eq!(outputs["file"], Value::Null);
    assert_same(&source, &target);
    // --clean replaced the stale tables (not merely added rows) and left other tables alone.
    assert_eq!(target.sql("SELECT count(*) FROM information_schema.columns WHERE table_name = 'orders' AND column_name = 'junk'"), "0");
    assert_eq!(target.sql("SELECT x FROM keep_me"), "7");
    let log = logs(&out, "copy");
    assert!(log.contains("--format=custom") && log.contains(" | ") && log.contains("--clean --if-exists --no-owner"), "{log}");
    assert!(log.contains("verified public.orders: 6000 rows on both sides"), "{log}");
}

#[test]
fn jobs_dump_and_restore_in_parallel_through_a_directory_that_is_removed() {
    let (source, target) = (Postgres::primary(), Postgres::primary());
    seed(&source);
    let yaml = runbook(&format!("      jobs: 2\n      verify_tables: {VERIFY}\n"));
    let (out, s) = run(&yaml, &source.dsn(), &target.dsn(), 0);
    let outputs = &step(&s, "copy")["outputs"];
    assert_eq!(outputs["format"], "directory", "{outputs:#}");
    assert_eq!(outputs["verified"], true);
    assert_eq!(outputs["tables"], 4);
    assert!(outputs["bytes"].as_u64().is_some_and(|b| b > 10_000), "{outputs:#}");
    assert_same(&source, &target);
    let log = logs(&out, "copy");
    assert!(log.contains("--format=directory") && log.matches("--jobs=2").count() == 2, "{log}");
    let work = out.state_dir().join("work").join(process::latest_run(&out.state_dir()));
    let left: Vec<_> = std::fs::read_dir(&work).map(|d| d.flatten().map(|e| e.file_name()).collect()).unwrap_or_default();
    assert!(left.is_empty(), "the dump directory is removed: {left:?}");
}

#[test]
fn via_a_file_keeps_the_dump_and_restores_from_it() {
    let (source, target) = (Postgres::primary(), Postgres::primary());
    seed(&source);
    stale(&target);
    let yaml = runbook(&format!("      via: {{ file: dumps/prod.dump }}\n      jobs: 2\n      verify_tables: {VERIFY}\n"));
    let (out, s) = run(&yaml, &source.dsn(), &target.dsn(), 0);
    let outputs = &step(&s, "copy")["outputs"];
    let file = out.path().join("dumps/prod.dump");
    assert_eq!(outputs["file"], file.display().to_string(), "{outputs:#}");
    assert_eq!(outputs["format"], "custom");
    assert_eq!(outputs["verified"], true);
    let meta = std::fs::metadata(&file).expect("the dump is kept");
    assert_eq!(outputs["bytes"], meta.len());
    assert_eq!(meta.permissions().mode() & 0o777, 0o600, "only its owner reads the dump");
    assert!(std::fs::read(&file).unwrap().starts_with(b"PGDMP"), "a custom-format archive");
    assert!(!out.path().join("dumps/prod.dump.partial").exists());
    assert_same(&source, &target);
    // The archive is a file: the restore runs in parallel even though the dump cannot.
    let log = logs(&out, "copy");
    assert!(log.contains("--format=custom") && log.contains("--jobs=2") && log.contains("kept the dump at"), "{log}");
}

#[test]
fn a_row_count_that_differs_fails_naming_the_table_and_both_counts() {
    let (source, target) = (Postgres::primary(), Postgres::primary());
    seed(&source);
    stale(&target);
    // `audit` is not copied, but it is verified: the target keeps its 3 stale rows.
    let yaml = runbook(&format!("      tables: [customers, orders]\n      verify_tables: {VERIFY}\n"));
    let (_, s) = run(&yaml, &source.dsn(), &target.dsn(), 1);
    let copy = step(&s, "copy");
    assert_eq!(copy["status"], "failed");
    let error = copy["error"].as_str().unwrap_or_default();
    assert!(error.contains("audit: 3000 rows on the source, 3 rows on the target"), "{copy:#}");
    assert!(error.contains("billing.invoices: 1500 rows on the source, no such table on the target"), "{copy:#}");
    assert!(!error.contains("public.orders:"), "orders was copied and matches: {error}");
    let outputs = &copy["outputs"];
    assert_eq!(outputs["verified"], false);
    assert_eq!(outputs["mismatches"][0], json!({"table": "billing.invoices", "source": 1500, "target": null}));
    assert_eq!(outputs["mismatches"][1], json!({"table": "audit", "source": 3000, "target": 3}));
    assert_eq!(outputs["rows"]["public.orders"], 6000);
    assert_eq!(target.sql("SELECT count(*) FROM orders"), "6000");
}

#[test]
fn the_password_reaches_the_programs_but_never_status_logs_or_errors() {
    let (source, target) = (Postgres::primary(), Postgres::primary());
    seed(&source);
    let password = format!("pw{}", process::unique());
    let source_dsn = source.password_role("replicator", &password);
    let target_dsn = target.password_role("replicator", &password);
    // From secrets (as runbooks should), and literal in `with` for steps that fail: only the
    // action itself can keep a literal out of what it says.
    let yaml = format!(
        r#"{good}      verify_tables: [customers]
  missing_db:
    uses: postgres.replicate
    continue_on_error: true
    with: {{ source: "{source_dsn}", target: "{missing_db}" }}
  wrong_password:
    uses: postgres.replicate
    continue_on_error: true
    with: {{ source: "{wrong}", target: "{target_dsn}", via: {{ file: x.dump }} }}
"#,
        good = runbook(""),
        missing_db = other_db(&target_dsn, "no_such_db"),
        wrong = source_dsn.replace(&password, &format!("{password}x")),
    );
    let (out, s) = run(&yaml, &source_dsn, &target_dsn, 0);
    assert_eq!(step(&s, "copy")["outputs"]["verified"], true, "scram over TCP: the password reached both programs");
    let missing = step(&s, "missing_db");
    assert!(missing["error"].as_str().unwrap_or_default().contains(r#"database "no_such_db" does not exist"#), "{missing:#}");
    let wrong = step(&s, "wrong_password");
    assert!(wrong["error"].as_str().unwrap_or_default().contains("password authentication failed"), "{wrong:#}");
    // `inputs` echo a literal `with` as written (the engine redacts only secrets); what the
    // action says must never hold the password.
    let run_id = process::latest_run(&out.state_dir());
    let mut seen = vec![out.stdout().to_string(), out.stderr().to_string()];
    for id in ["copy", "missing_db", "wrong_password"] {
        let st = step(&s, id);
        seen.push(format!("{id}: error {} outputs {}", st["error"], st["outputs"]));
        seen.push(process::json(&out.state_dir(), &["logs", &run_id, id]).to_string());
    }
    for text in &seen {
        assert!(!text.contains(&password), "the password leaked:\n{text}");
    }
    assert!(seen.iter().any(|t| t.contains("replicator@127.0.0.1:")), "messages still say where they connected");
}

#[test]
fn validate_refuses_bad_inputs_and_unknown_staging() {
    let dsn = |db: &str| format!("postgresql://u@db.example:5432/{db}");
    let step = |id: &str, extra: &str| {
        format!("  {id}:\n    uses: postgres.replicate\n    with: {{ source: \"{}\", target: \"{}\"{extra} }}\n", dsn("prod"), dsn("dr"))
    };
    let yaml = format!(
        "version: 1\nname: bad\nsteps:\n{}{}{}{}{}{}  same_db:\n    uses: postgres.replicate\n    with: {{ source: \"{}\", target: \"{}\" }}\n",
        step("zero_jobs", ", jobs: 0"),
        step("empty_name", r#", verify_tables: [orders, "", " "]"#),
        step("unknown_scheme", ", via: gs://bucket/db.dump"),
        step("no_hops", ", via: []"),
        step("reserved", ", extra_args: [--format=plain, -h, other]"),
        step("empty_file", r#", via: { file: "" }"#),
        dsn("prod"),
        dsn("prod").replace("u@", "admin:pw@"),
    );
    let out = Test::new().file("r.yaml", yaml).args(["validate", "r.yaml"]).run().code(2);
    for says in [
        "`jobs` must be at least 1",
        "an empty name in `verify_tables`",
        "`gs://` is not a staging scheme",
        "`via` lists no URL",
        "`--format=plain`: postgres.replicate chooses the format",
        "`-h`: the connection comes from `source`",
        "`via.file` is empty",
        "`source` and `target` are the same database (admin@db.example:5432/prod)",
    ] {
        assert!(out.stderr().contains(says), "validate should say {says:?}:\n{}", out.stderr());
    }
    // The snippet quotes the runbook as written; the message names the server without it.
    assert!(!out.stderr().lines().any(|l| l.starts_with("error[") && l.contains("admin:pw")), "{}", out.stderr());
    assert_eq!(out.stderr().matches("an empty name in `verify_tables`").count(), 2, "{}", out.stderr());

    // A templated `via` is checked when the step runs: refused before anything connects.
    let yaml = format!(
        "version: 1\nname: later\nparams:\n  via: {{ type: string }}\nsteps:\n  copy:\n    uses: postgres.replicate\n    retry: {{ attempts: 3, delay: 10ms }}\n    with: {{ source: \"{}\", target: \"{}\", via: \"{{{{ params.via }}}}\" }}\n",
        dsn("prod"),
        dsn("dr")
    );
    let out = Test::new().file("r.yaml", yaml).args(["run", "r.yaml", "--param", "via=gs://dumps/prod.dump"]).run().code(1);
    let s = process::status(&out.state_dir(), &process::latest_run(&out.state_dir()));
    let copy = process::step(&s, "copy");
    let error = copy["error"].as_str().unwrap_or_default();
    assert!(error.contains("`gs://` is not a staging scheme"), "{copy:#}");
    assert_eq!(copy["attempts"], 1, "bad input is not retried: {copy:#}");
}

mod reuse;
mod stopping;
