//! After the restore: how many tables the target holds, and whether the tables to verify
//! have as many rows on both sides.

use std::time::Duration;

use serde_json::{Map, Value, json};

use super::super::dsn::Dsn;
use super::super::session::{Session, connect, failure};
use crate::{ActionCtx, ActionError, Stream};

/// User tables, as information_schema shows them to the connected role.
const USER_TABLES: &str = "SELECT count(*) FROM information_schema.tables \
     WHERE table_type = 'BASE TABLE' \
     AND table_schema NOT IN ('pg_catalog', 'information_schema') \
     AND table_schema NOT LIKE 'pg\\_toast%' AND table_schema NOT LIKE 'pg\\_temp\\_%'";

/// The number of user tables in `dsn`'s database.
pub(crate) async fn user_tables(ctx: &ActionCtx, session: &Session, dsn: &Dsn) -> Result<i64, ActionError> {
    let work = async {
        let row = session.client.query_one(USER_TABLES, &[]).await.map_err(|e| failure(dsn, "counting the target's tables failed", &e))?;
        Ok(row.get::<_, i64>(0))
    };
    session.run(ctx, "counting the target's tables", work).await
}

/// One table's rows on both sides (`None`: no such table there).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Count {
    pub(crate) table: String,
    pub(crate) source: Option<i64>,
    pub(crate) target: Option<i64>,
}

impl Count {
    pub(crate) fn matches(&self) -> bool {
        self.source.is_some() && self.source == self.target
    }

    /// `public.audit: 5000 rows on the source, 3 rows on the target`.
    pub(crate) fn describe(&self) -> String {
        let side = |n: Option<i64>| n.map_or_else(|| "no such table".to_string(), |n| format!("{n} rows"));
        format!("{}: {} on the source, {} on the target", self.table, side(self.source), side(self.target))
    }
}

/// Counts every table in `tables` on the source, then on the target.
/// `source_timeout` bounds connecting to the source (the target's session is open already).
pub(crate) async fn compare(
    ctx: &ActionCtx,
    source: &Dsn,
    target: &Dsn,
    target_session: &Session,
    tables: &[String],
    source_timeout: Duration,
) -> Result<Vec<Count>, ActionError> {
    let source_session = connect(ctx, source, source_timeout).await?;
    let on_source = count_all(ctx, &source_session, source, tables).await?;
    drop(source_session);
    let on_target = count_all(ctx, target_session, target, tables).await?;
    Ok(tables
        .iter()
        .zip(on_source.into_iter().zip(on_target))
        .map(|(t, (s, d))| Count { table: t.clone(), source: s, target: d })
        .collect())
}

async fn count_all(ctx: &ActionCtx, session: &Session, dsn: &Dsn, tables: &[String]) -> Result<Vec<Option<i64>>, ActionError> {
    let work = async {
        let mut counts = Vec::with_capacity(tables.len());
        for t in tables {
            counts.push(count(session, dsn, t).await?);
        }
        Ok(counts)
    };
    session.run(ctx, "counting rows", work).await
}

/// `SELECT count(*)` of a table named as SQL would read it (`orders`, `sales.orders`,
/// `"Mixed"`): the server resolves and quotes the name, so it cannot inject anything.
async fn count(session: &Session, dsn: &Dsn, table: &str) -> Result<Option<i64>, ActionError> {
    let client = &session.client;
    let context = format!("counting the rows of `{table}` on {}", dsn.described);
    let row = client.query_one("SELECT to_regclass($1)::text", &[&table]).await.map_err(|e| failure(dsn, &context, &e))?;
    let Some(qualified) = row.get::<_, Option<String>>(0) else { return Ok(None) };
    let row = client.query_one(&format!("SELECT count(*) FROM {qualified}"), &[]).await.map_err(|e| failure(dsn, &context, &e))?;
    Ok(Some(row.get(0)))
}

/// The counts as outputs (table → rows), and a failure naming every table that differs.
pub(crate) fn judge(ctx: &ActionCtx, counts: &[Count]) -> Result<Value, (String, Value)> {
    let mut rows = Map::new();
    for c in counts {
        rows.insert(c.table.clone(), c.target.map_or(Value::Null, |n| json!(n)));
        let note = if c.matches() { format!("verified {}: {} rows on both sides", c.table, c.target.unwrap_or(0)) } else { c.describe() };
        ctx.log(Stream::Info, note);
    }
    let differ: Vec<&Count> = counts.iter().filter(|c| !c.matches()).collect();
    if differ.is_empty() {
        return Ok(Value::Object(rows));
    }
    let message = format!(
        "verification failed: {} of {} table(s) differ: {}",
        differ.len(),
        counts.len(),
        differ.iter().map(|c| c.describe()).collect::<Vec<_>>().join("; ")
    );
    let mismatches: Vec<Value> = differ.iter().map(|c| json!({ "table": c.table, "source": c.source, "target": c.target })).collect();
    Err((message, json!({ "rows": rows, "mismatches": mismatches })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_difference_names_the_table_and_both_counts() {
        let c = Count { table: "public.audit".into(), source: Some(5000), target: Some(3) };
        assert_eq!(c.describe(), "public.audit: 5000 rows on the source, 3 rows on the target");
        let gone = Count { table: "audit".into(), source: Some(5), target: None };
        assert_eq!(gone.describe(), "audit: 5 rows on the source, no such table on the target");
        assert!(!Count { table: "x".into(), source: None, target: None }.matches());
    }
}
