//! PostgreSQL spans, per the OpenTelemetry database conventions: a client span per
//! connection of an action (`postgres.query`, `postgres.replication_lag`) named after the
//! statement's first keyword and the database (`SELECT app`), and a span per `pg_dump` /
//! `pg_restore` process of `postgres.replicate`.
//!
//! A span carries `db.system.name = postgresql`, `server.address`, `server.port`,
//! `db.namespace` (the database) and `db.operation.name` (the first keyword of the SQL, only
//! when it is a plain word). Never the DSN, the user, the password, or the statement's text
//! (its values may be anything).

use tokio_postgres::config::Host;
use tracing::Span;
use tracing::field::Empty;

use super::dsn::Dsn;
use crate::telemetry::{client_span, fail};

/// Where a connection goes, as a span may show it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Db {
    host: String,
    port: u16,
    name: String,
}

impl Db {
    /// The first host of `dsn` (a Unix socket's directory for a socket), its port and database.
    pub(crate) fn of(dsn: &Dsn) -> Db {
        let c = &dsn.config;
        let host = match c.get_hosts().first() {
            Some(Host::Tcp(h)) => h.clone(),
            Some(Host::Unix(p)) => p.display().to_string(),
            None => "localhost".into(),
        };
        let port = c.get_ports().first().copied().unwrap_or(5432);
        let name = c.get_dbname().or(c.get_user()).unwrap_or_default().to_string();
        Db { host, port, name }
    }

    /// A client span for a connection and its statements, named `postgresql {db}` until
    /// [`operation`] names the statement.
    pub(crate) fn span(&self) -> Span {
        client_span!(
            "db.postgresql",
            otel.name = format!("postgresql {}", self.name),
            db.system.name = "postgresql",
            server.address = self.host.as_str(),
            server.port = self.port,
            db.namespace = self.name.as_str(),
            db.operation.name = Empty,
            db.response.status_code = Empty,
        )
    }

    /// A span for one program (`pg_dump`, `pg_restore`) working on this database.
    pub(crate) fn process_span(&self, program: &'static str) -> Span {
        client_span!(
            "process",
            otel.name = program,
            process.executable.name = program,
            process.exit.code = Empty,
            db.system.name = "postgresql",
            server.address = self.host.as_str(),
            server.port = self.port,
            db.namespace = self.name.as_str(),
        )
    }
}

/// Names `span` after the statement: `db.operation.name` and `{KEYWORD} {db}`.
pub(crate) fn operation(span: &Span, db: &Db, sql: &str) {
    if let Some(word) = first_keyword(sql) {
        span.record("otel.name", format!("{word} {}", db.name));
        span.record("db.operation.name", word.as_str());
    }
}

/// Marks `span` failed: `error.type` is the SQLSTATE for a server error, else `error`.
pub(crate) fn failed(span: &Span, sqlstate: Option<&str>) {
    if let Some(code) = sqlstate {
        span.record("db.response.status_code", code);
    }
    fail(span, sqlstate.unwrap_or("error"));
}

/// The statement's first keyword, upper case; None unless it is a plain word (comments,
/// parentheses or anything else first: nothing is guessed).
fn first_keyword(sql: &str) -> Option<String> {
    let word: String = sql.trim_start().chars().take_while(char::is_ascii_alphabetic).collect();
    let rest = &sql.trim_start()[word.len()..];
    let ends = rest.is_empty() || rest.starts_with(|c: char| c.is_whitespace() || c == ';' || c == '(');
    (!word.is_empty() && word.len() <= 20 && ends).then(|| word.to_ascii_uppercase())
}

#[cfg(test)]
mod tests {
    use opentelemetry::trace::{Status, TraceContextExt};
    use serde_json::json;
    use tracing::{Instrument, Level, info_span};
    use tracing_opentelemetry::OpenTelemetrySpanExt;

    use super::first_keyword;
    use crate::Plugin;
    use crate::telemetry::testing::{assert_no_secret, attrs, ctx, install};

    const PASSWORD: &str = "pg-pa55-SECRET-77";

    /// A port on 127.0.0.1 nothing listens on.
    async fn closed_port() -> u16 {
        tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap().port()
    }

    #[tokio::test]
    async fn a_refused_connection_is_a_failed_child_span_without_the_dsn() {
        let traces = install(Level::INFO);
        let port = closed_port().await;
        let dsn = format!("postgresql://opsuser:{PASSWORD}@127.0.0.1:{port}/appdb?connect_timeout=2");
        let with = json!({ "dsn": dsn, "sql": "select * from accounts where token = 'tok-in-sql-123'" });
        let step = info_span!("step");
        crate::postgres::Query.run(&ctx(), serde_json::from_value(with).unwrap()).instrument(step.clone()).await.expect_err("refused");
        let step_cx = step.context();
        drop(step);
        let span = traces.one("postgresql appdb");
        let a = attrs(&span);
        assert_eq!(a["db.system.name"], "postgresql");
        assert_eq!(a["server.address"], "127.0.0.1");
        assert_eq!(a["server.port"], port.to_string());
        assert_eq!(a["db.namespace"], "appdb");
        assert_eq!(a["error.type"], "error");
        assert!(matches!(span.status, Status::Error { .. }));
        assert_eq!(span.parent_span_id, step_cx.span().span_context().span_id());
        for secret in [PASSWORD, "opsuser", "tok-in-sql-123", "accounts"] {
            assert_no_secret(&traces.spans(), secret);
        }
    }

    #[tokio::test]
    async fn pg_dump_and_pg_restore_are_process_spans_with_their_exit() {
        if super::super::replicate::tools_on_path().is_none() {
            eprintln!("pg_dump/pg_restore not on PATH: this test checks nothing here");
            return;
        }
        let traces = install(Level::INFO);
        let (a, b) = (closed_port().await, closed_port().await);
        let with = json!({ "source": format!("postgresql://opsuser:{PASSWORD}@127.0.0.1:{a}/src?connect_timeout=2"),
                           "target": format!("postgresql://opsuser:{PASSWORD}@127.0.0.1:{b}/dst?connect_timeout=2") });
        crate::postgres::Replicate
            .run(&ctx(), serde_json::from_value(with).unwrap())
            .instrument(info_span!("step"))
            .await
            .expect_err("no server");
        let dump = attrs(&traces.one("pg_dump"));
        assert_eq!(dump["db.namespace"], "src");
        assert_eq!(dump["process.executable.name"], "pg_dump");
        assert_ne!(dump.get("process.exit.code").map(String::as_str), Some("0"), "{dump:?}");
        assert!(dump.contains_key("error.type"), "{dump:?}");
        let restore = attrs(&traces.one("pg_restore"));
        assert_eq!(restore["db.namespace"], "dst");
        assert_eq!(restore["server.port"], b.to_string());
        for secret in [PASSWORD, "opsuser"] {
            assert_no_secret(&traces.spans(), secret);
        }
    }

    #[test]
    fn only_a_plain_first_word_names_the_operation() {
        assert_eq!(first_keyword("  select * from t where pw = 'x'").as_deref(), Some("SELECT"));
        assert_eq!(first_keyword("WITH a AS (select 1) select 2").as_deref(), Some("WITH"));
        assert_eq!(first_keyword("vacuum;").as_deref(), Some("VACUUM"));
        assert_eq!(first_keyword("-- secret\nselect 1"), None);
        assert_eq!(first_keyword("'s3cr3t'"), None);
        assert_eq!(first_keyword("selectpassword123"), None);
        assert_eq!(first_keyword("abcdefghijklmnopqrstuvwxyz now"), None);
    }
}
