//! `postgres.query`: one SQL statement, its rows as JSON objects.

use std::time::Instant;

use futures::StreamExt;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::dsn::Dsn;
use super::session::{connect, failure};
use super::value::{Cell, Param};
use super::{check_dsn, plan_dsn};
use crate::duration::Dur;
use crate::{ActionCtx, ActionError, ActionInfo, Capabilities, Effect, Field, Issue, Kind, Plugin, Stream, Target};

/// Runs one SQL statement.
pub struct Query;

/// `postgres.query`'s input.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct QueryInput {
    /// The connection string: `postgresql://user:password@host:5432/db` or `host=… user=… password=…`
    /// (usually a template of a secret). TLS is not supported yet: `sslmode` disable or prefer.
    pub dsn: String,
    /// One SQL statement; `$1`, `$2`, … take `params`.
    pub sql: String,
    /// Values bound to `$1`, `$2`, …, sent as text for the server to read as each parameter's type.
    #[serde(default)]
    pub params: Vec<Value>,
    /// How long connecting may take (default 5s).
    #[serde(default)]
    pub connect_timeout: Option<Dur>,
    /// How many rows the outputs keep (default 1000); `row_count` still counts them all.
    #[serde(default)]
    pub max_rows: Option<usize>,
}

impl Plugin for Query {
    type Input = QueryInput;
    fn info(&self) -> ActionInfo {
        ActionInfo {
            name: "postgres.query",
            summary: "Runs one SQL statement on PostgreSQL; returns its rows as objects (column → value).",
            kind: Kind::Plugin,
            outputs: &[
                Field {
                    name: "rows",
                    doc: "one object per row, column → value: numbers, text, booleans, json as JSON, timestamps as RFC 3339, numeric as a number when exact (else text), NULL as null",
                },
                Field { name: "row_count", doc: "rows returned, or rows affected by a statement that returns none" },
                Field { name: "columns", doc: "the result's columns: name and type" },
                Field { name: "truncated", doc: "whether more than `max_rows` rows came back (only the first are kept)" },
            ],
            caps: Capabilities { probe: true, effect: Effect::Mutating, general: true, spawns: false, network: true },
            example: "open_orders:\n  uses: postgres.query\n  with:\n    dsn: \"{{ secrets.replica_dsn }}\"\n    sql: \"SELECT count(*) AS n FROM orders WHERE status = $1\"\n    params: [open]",
        }
    }

    fn check(&self, with: &Value) -> Vec<Issue> {
        let mut issues = check_dsn(with);
        if let Some(sql) = with.get("sql").and_then(Value::as_str) {
            if sql.trim().is_empty() {
                issues.push(Issue::at("sql", "`sql` is empty").help("write one SQL statement, e.g. `SELECT 1`"));
            }
        }
        if with.get("max_rows").and_then(Value::as_u64) == Some(0) {
            issues.push(Issue::at("max_rows", "`max_rows` must be at least 1"));
        }
        issues
    }

    fn targets(&self, with: &Value) -> Vec<Target> {
        with.get("dsn").and_then(Value::as_str).map(super::dsn::targets).unwrap_or_default()
    }
    fn targets_doc(&self) -> &'static str {
        "the database of `dsn` (host, port, dbname; never the user or password), whatever the SQL does"
    }

    fn plan(&self, with: &Value) -> String {
        let sql = with.get("sql").and_then(Value::as_str).unwrap_or("?");
        let first = sql.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("");
        format!("run `{first}` on {}", plan_dsn(with))
    }

    async fn run(&self, ctx: &ActionCtx, input: QueryInput) -> Result<Value, ActionError> {
        let dsn = Dsn::parse(&input.dsn).map_err(ActionError::Input)?;
        if input.sql.trim().is_empty() {
            return Err(ActionError::Input("`sql` is empty".into()));
        }
        let session = connect(ctx, &dsn, dsn.connect_timeout(input.connect_timeout.map(Dur::get))).await?;
        session.operation(&input.sql);
        let max_rows = input.max_rows.unwrap_or(1000).max(1);
        let client = &session.client;
        let started = Instant::now();
        let work = async {
            // Refused when parsed or planned: nothing was executed.
            let stmt = client.prepare(&input.sql).await.map_err(|e| failure(&dsn, "the statement was refused", &e).before_any_effect())?;
            let columns: Vec<(String, String)> =
                stmt.columns().iter().map(|c| (c.name().to_string(), c.type_().name().to_string())).collect();
            let names = unique_names(columns.iter().map(|(n, _)| n.as_str()));
            let params: Vec<Param> = input.params.iter().cloned().map(Param).collect();
            let stream = client.query_raw(&stmt, params.iter()).await.map_err(|e| failure(&dsn, "the statement failed", &e))?;
            futures::pin_mut!(stream);
            let (mut rows, mut seen) = (Vec::new(), 0u64);
            while let Some(row) = stream.next().await {
                let row = row.map_err(|e| failure(&dsn, "the statement failed", &e))?;
                seen += 1;
                if rows.len() >= max_rows {
                    continue;
                }
                let mut obj = Map::new();
                for (i, name) in names.iter().enumerate() {
                    let cell: Cell = row.try_get(i).map_err(|e| {
                        let why = std::error::Error::source(&e).map_or_else(|| e.to_string(), |s| s.to_string());
                        ActionError::Failed {
                            message: format!("column `{name}` ({}): {why}", columns[i].1),
                            outputs: None,
                            retryable: false,
                            before_effect: false,
                        }
                    })?;
                    obj.insert(name.clone(), cell.0);
                }
                rows.push(Value::Object(obj));
            }
            let row_count = stream.rows_affected().unwrap_or(seen);
            Ok((columns, rows, row_count, seen))
        };
        let (columns, rows, row_count, seen) = session.run(ctx, "the query", work).await?;
        let truncated = seen > rows.len() as u64;
        ctx.log(
            Stream::Info,
            format!(
                "{} → {row_count} row(s) in {}ms{}",
                dsn.described,
                started.elapsed().as_millis(),
                if truncated { ", outputs keep the first" } else { "" }
            ),
        );
        let columns: Vec<Value> = columns.into_iter().map(|(name, ty)| json!({ "name": name, "type": ty })).collect();
        Ok(json!({ "rows": rows, "row_count": row_count, "columns": columns, "truncated": truncated }))
    }
}

/// Column names as object keys: a repeated name (`?column?`) gets `_2`, `_3`, ….
fn unique_names<'a>(names: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for n in names {
        let mut name = n.to_string();
        let mut k = 2;
        while out.contains(&name) {
            name = format!("{n}_{k}");
            k += 1;
        }
        out.push(name);
    }
    out
}
