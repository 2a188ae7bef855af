//! Actions that talk to PostgreSQL (tokio-postgres, plain connections: TLS is not wired up yet).

mod dsn;
mod query;
mod replicate;
mod replication_lag;
mod session;
mod traced;
mod value;

pub use query::{Query, QueryInput};
pub use replicate::{Replicate, ReplicateInput, Via, ViaFile};
pub use replication_lag::{ReplicationLag, ReplicationLagInput};

/// The databases a connection string reaches (host, port, dbname; never the user or the
/// password): one per host of a libpq host list. Nothing when the text is not a DSN.
pub fn dsn_targets(text: &str) -> Vec<crate::Target> {
    dsn::targets(text)
}

use serde_json::Value;

use crate::Issue;

/// Checks a literal `dsn` before anything runs (a template is checked once rendered).
fn check_dsn(with: &Value) -> Vec<Issue> {
    check_dsn_at(with, "dsn")
}

/// Checks the literal connection string under `key` (`dsn`, `source`, `target`).
fn check_dsn_at(with: &Value, key: &str) -> Vec<Issue> {
    match with.get(key).and_then(Value::as_str) {
        Some(d) if is_template(d) => vec![],
        Some(d) if d.trim().is_empty() => vec![Issue::at(key, format!("`{key}` is empty")).help("e.g. `postgresql://user@host:5432/db`")],
        Some(d) => match dsn::Dsn::parse(d) {
            Ok(_) => vec![],
            Err(e) => vec![Issue::at(key, e.replace("`dsn`", &format!("`{key}`")))],
        },
        None => vec![],
    }
}

/// Whether unrendered text holds a template (checked once rendered).
fn is_template(text: &str) -> bool {
    text.contains("{{") || text.contains("{%")
}

/// The `dsn` of a `with` for a plan, its password hidden.
fn plan_dsn(with: &Value) -> String {
    plan_dsn_at(with, "dsn")
}

/// The connection string under `key` for a plan, its password hidden.
fn plan_dsn_at(with: &Value, key: &str) -> String {
    with.get(key).and_then(Value::as_str).map_or_else(|| "?".to_string(), dsn::display)
}
