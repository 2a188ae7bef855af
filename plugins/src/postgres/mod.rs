//! Actions that talk to PostgreSQL (tokio-postgres, plain connections: TLS is not wired up yet).

mod dsn;
mod query;
mod replication_lag;
mod session;
mod value;

pub use query::{Query, QueryInput};
pub use replication_lag::{ReplicationLag, ReplicationLagInput};

use serde_json::Value;

use crate::Issue;

/// Checks a literal `dsn` before anything runs (a template is checked once rendered).
fn check_dsn(with: &Value) -> Vec<Issue> {
    match with.get("dsn").and_then(Value::as_str) {
        Some(d) if d.contains("{{") || d.contains("{%") => vec![],
        Some(d) if d.trim().is_empty() => vec![Issue::at("dsn", "`dsn` is empty").help("e.g. `postgresql://user@host:5432/db`")],
        Some(d) => match dsn::Dsn::parse(d) {
            Ok(_) => vec![],
            Err(e) => vec![Issue::at("dsn", e)],
        },
        None => vec![],
    }
}

/// The `dsn` of a `with` for a plan, its password hidden.
fn plan_dsn(with: &Value) -> String {
    with.get("dsn").and_then(Value::as_str).map_or_else(|| "?".to_string(), dsn::display)
}
