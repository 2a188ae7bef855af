//! One connection for one attempt: connect within a timeout, run work that a cancel (step
//! timeout, `phoenix cancel`, Ctrl-C) stops on the server too, and describe errors safely.

use std::future::Future;
use std::time::Duration;

use serde_json::json;
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, NoTls};
use tracing::{Instrument, Span};

use super::dsn::{Dsn, chain};
use super::traced::{self, Db};
use crate::{ActionCtx, ActionError, Stream};

/// A connected client; the connection task ends when it is dropped. Its span (the
/// connection's and its statements', `postgres/traced.rs`) ends with it.
pub(crate) struct Session {
    pub(crate) client: Client,
    span: Span,
    db: Db,
}

/// Connects, giving up after `timeout` (the whole handshake, not just the TCP connect).
pub(crate) async fn connect(ctx: &ActionCtx, dsn: &Dsn, timeout: Duration) -> Result<Session, ActionError> {
    let db = Db::of(dsn);
    let span = db.span();
    let result = connect_in(ctx, dsn, timeout).instrument(span.clone()).await;
    match result {
        Ok(client) => Ok(Session { client, span, db }),
        Err(e) => {
            traced::failed(&span, sqlstate(&e));
            Err(e)
        }
    }
}

async fn connect_in(ctx: &ActionCtx, dsn: &Dsn, timeout: Duration) -> Result<Client, ActionError> {
    let mut config = dsn.config.clone();
    config.connect_timeout(timeout);
    if ctx.read_only {
        // The server holds the session to reading: a statement that writes fails with
        // "cannot execute … in a read-only transaction", before it changes anything. One
        // statement a query (the extended protocol), so it cannot turn this off first.
        let options = match config.get_options() {
            Some(o) if !o.trim().is_empty() => format!("{o} -c default_transaction_read_only=on"),
            _ => "-c default_transaction_read_only=on".to_string(),
        };
        config.options(&options);
    }
    let attempt = tokio::time::timeout(timeout, config.connect(NoTls));
    let result = tokio::select! {
        r = attempt => r,
        _ = ctx.cancel.cancelled() => return Err(ActionError::Cancelled(format!("connecting to {} stopped", dsn.described))),
    };
    let (client, connection) = match result {
        Err(_) => {
            return Err(ActionError::before_effect(format!(
                "could not connect to {} within {}",
                dsn.described,
                crate::duration::format_duration(timeout)
            )));
        }
        // Refused, unreachable, or the login refused: no statement was sent.
        Ok(Err(e)) => return Err(failure(dsn, &format!("could not connect to {}", dsn.described), &e).before_any_effect()),
        Ok(Ok(pair)) => pair,
    };
    tokio::spawn(async move {
        // Errors here surface on the client's next call as "connection closed".
        let _ = connection.await;
    });
    ctx.log(Stream::Info, format!("connected to {}", dsn.described));
    Ok(client)
}

/// The SQLSTATE a failure carries in its outputs, if any.
fn sqlstate(e: &ActionError) -> Option<&str> {
    match e {
        ActionError::Failed { outputs: Some(o), .. } => o.get("sqlstate").and_then(serde_json::Value::as_str),
        _ => None,
    }
}

impl Session {
    /// Names the session's span after the statement's first keyword (`SELECT`); never the text.
    pub(crate) fn operation(&self, sql: &str) {
        traced::operation(&self.span, &self.db, sql);
    }

    /// Runs `work`; on cancel, asks the server to cancel the running query and stops.
    pub(crate) async fn run<T>(
        &self,
        ctx: &ActionCtx,
        what: &str,
        work: impl Future<Output = Result<T, ActionError>>,
    ) -> Result<T, ActionError> {
        let token = self.client.cancel_token();
        let work = async {
            let r = work.await;
            if let Err(e) = &r {
                traced::failed(&self.span, sqlstate(e));
            }
            r
        };
        tokio::select! {
            r = work.instrument(self.span.clone()) => r,
            _ = ctx.cancel.cancelled() => {
                // Best effort, bounded: the server may be the thing that hangs.
                let _ = tokio::time::timeout(Duration::from_secs(2), token.cancel_query(NoTls)).await;
                Err(ActionError::Cancelled(format!("{what} stopped; the server was asked to cancel it")))
            }
        }
    }
}

/// A failure from tokio-postgres: the server's own words for database errors (with SQLSTATE,
/// detail and hint), the cause chain otherwise; never the password.
pub(crate) fn failure(dsn: &Dsn, context: &str, e: &tokio_postgres::Error) -> ActionError {
    if let Some(db) = e.as_db_error() {
        let mut msg = format!("{context}: {}: {} (SQLSTATE {})", db.severity(), db.message(), db.code().code());
        if let Some(d) = db.detail() {
            msg += &format!("; detail: {d}");
        }
        if let Some(h) = db.hint() {
            msg += &format!("; hint: {h}");
        }
        let retryable = retryable_state(db.code());
        return ActionError::Failed {
            message: dsn.redact(&msg),
            outputs: Some(json!({ "sqlstate": db.code().code() })),
            retryable,
            before_effect: false,
        };
    }
    ActionError::failed(dsn.redact(&format!("{context}: {}", chain(e))))
}

/// Connection trouble, serialization failures, shutdowns and resource limits may pass;
/// bad SQL, missing objects and denied permissions will not.
fn retryable_state(code: &SqlState) -> bool {
    let c = code.code();
    ["08", "40", "53", "57", "58"].iter().any(|class| c.starts_with(class))
}
