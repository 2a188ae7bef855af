//! `postgres.replication_lag`: how far a streaming standby's replay is behind, in seconds.
//!
//! The seed measures `now() - pg_last_xact_replay_timestamp()`. On its own that is NULL until
//! the standby has replayed a transaction, and it grows while the primary is idle (no writes
//! is not lag). So: a standby that has replayed everything it received is 0 seconds behind;
//! only one that has WAL still to replay is measured by the seed's clock.

use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio_postgres::Client;

use super::dsn::Dsn;
use super::session::{connect, failure};
use super::{check_dsn, plan_dsn};
use crate::duration::Dur;
use crate::{ActionCtx, ActionError, ActionInfo, Capabilities, Effect, Field, Issue, Kind, Plugin, Stream};

/// Measures a standby's replication lag.
pub struct ReplicationLag;

/// `postgres.replication_lag`'s input.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplicationLagInput {
    /// The standby's connection string: `postgresql://user:password@host:5432/db` or
    /// `host=… user=… password=…` (usually a template of a secret). TLS is not supported yet.
    pub dsn: String,
    /// How long connecting may take (default 5s).
    #[serde(default)]
    pub connect_timeout: Option<Dur>,
}

const STATE: &str = "SELECT pg_is_in_recovery(), \
     pg_last_wal_receive_lsn()::text, \
     pg_last_wal_replay_lsn()::text, \
     CASE WHEN pg_is_in_recovery() THEN pg_is_wal_replay_paused() ELSE false END, \
     EXTRACT(EPOCH FROM (now() - pg_last_xact_replay_timestamp()))::float8";

/// A standby that lags by less than this (replay reached, within it, what had been received)
/// is caught up: WAL that arrived a moment ago is not lag.
const SETTLE: Duration = Duration::from_millis(200);

/// One reading of the standby's state.
struct Reading {
    in_recovery: bool,
    receive: Option<String>,
    replay: Option<String>,
    paused: bool,
    seed_lag: Option<f64>,
}

impl Reading {
    /// Bytes received but not yet replayed (None without a WAL receiver).
    fn behind_bytes(&self) -> Option<u64> {
        Some(lsn(self.receive.as_deref()?)?.saturating_sub(lsn(self.replay.as_deref()?)?))
    }
}

async fn read(client: &Client, dsn: &Dsn) -> Result<Reading, ActionError> {
    let row = client.query_one(STATE, &[]).await.map_err(|e| failure(dsn, "reading the standby's state failed", &e))?;
    Ok(Reading { in_recovery: row.get(0), receive: row.get(1), replay: row.get(2), paused: row.get(3), seed_lag: row.get(4) })
}

/// `16/B374D848` → its position in bytes.
fn lsn(text: &str) -> Option<u64> {
    let (hi, lo) = text.split_once('/')?;
    Some((u64::from_str_radix(hi, 16).ok()? << 32) | u64::from_str_radix(lo, 16).ok()?)
}

impl Plugin for ReplicationLag {
    type Input = ReplicationLagInput;
    fn info(&self) -> ActionInfo {
        ActionInfo {
            name: "postgres.replication_lag",
            summary: "Measures how many seconds a PostgreSQL streaming standby's replay is behind; fails on a server that is not a standby.",
            kind: Kind::Plugin,
            outputs: &[
                Field {
                    name: "lag_seconds",
                    doc: "0 when the standby has replayed all it received; otherwise now() - pg_last_xact_replay_timestamp()",
                },
                Field { name: "lag_bytes", doc: "WAL received but not yet replayed, in bytes (null without a WAL receiver)" },
                Field { name: "receive_lsn", doc: "pg_last_wal_receive_lsn() (null without a WAL receiver)" },
                Field { name: "replay_lsn", doc: "pg_last_wal_replay_lsn()" },
                Field { name: "replay_paused", doc: "whether replay is paused (pg_wal_replay_pause())" },
                Field { name: "in_recovery", doc: "pg_is_in_recovery(): always true on success" },
            ],
            caps: Capabilities { probe: true, effect: Effect::Read, general: false, spawns: false, network: true },
            example: "rds_lag:\n  uses: postgres.replication_lag\n  with: { dsn: \"{{ secrets.replica_dsn }}\" }\n  weight:\n    - { when: \"outputs.lag_seconds < 5\", weight: 0 }\n    - { when: \"outputs.lag_seconds <= 30\", weight: 1 }\n    - { weight: 3 }",
        }
    }

    fn check(&self, with: &Value) -> Vec<Issue> {
        check_dsn(with)
    }

    fn plan(&self, with: &Value) -> String {
        format!("measure the replication lag of {}", plan_dsn(with))
    }

    async fn run(&self, ctx: &ActionCtx, input: ReplicationLagInput) -> Result<Value, ActionError> {
        let dsn = Dsn::parse(&input.dsn).map_err(ActionError::Input)?;
        let session = connect(ctx, &dsn, dsn.connect_timeout(input.connect_timeout.map(Dur::get))).await?;
        session.operation("SELECT");
        let client = &session.client;
        let work = async {
            let first = read(client, &dsn).await?;
            if !first.in_recovery || first.paused || first.behind_bytes().is_none_or(|b| b == 0) {
                return Ok((first, None));
            }
            // WAL still to replay: if replay reaches what had been received within a moment,
            // the standby is keeping up.
            tokio::time::sleep(SETTLE).await;
            let second = read(client, &dsn).await?;
            let reached = match (first.receive.as_deref().and_then(lsn), second.replay.as_deref().and_then(lsn)) {
                (Some(received), Some(replayed)) => replayed >= received,
                _ => false,
            };
            Ok((second, Some(reached)))
        };
        let (r, settled) = session.run(ctx, "measuring the lag", work).await?;
        let state = json!({
            "in_recovery": r.in_recovery,
            "receive_lsn": r.receive,
            "replay_lsn": r.replay,
            "replay_paused": r.paused,
            "lag_bytes": r.behind_bytes(),
        });
        if !r.in_recovery {
            return Err(ActionError::Failed {
                message: format!(
                    "{} is not a standby (pg_is_in_recovery() is false): point `dsn` at the replica, not the primary",
                    dsn.described
                ),
                outputs: Some(state),
                retryable: false,
                before_effect: false,
            });
        }
        let caught_up = r.behind_bytes() == Some(0) || settled == Some(true);
        let lag = if caught_up {
            0.0
        } else {
            match r.seed_lag {
                // The clocks of one machine may disagree by a hair; lag is never negative.
                Some(s) => (s.max(0.0) * 1000.0).round() / 1000.0,
                None => {
                    return Err(ActionError::Failed {
                        message: format!(
                            "{} has WAL to replay but has not replayed a transaction yet, so its lag is unknown",
                            dsn.described
                        ),
                        outputs: Some(state),
                        retryable: true,
                        before_effect: false,
                    });
                }
            }
        };
        ctx.log(
            Stream::Info,
            format!(
                "{}: lag {lag}s (receive {}, replay {}{})",
                dsn.described,
                r.receive.as_deref().unwrap_or("none"),
                r.replay.as_deref().unwrap_or("none"),
                if r.paused { ", replay paused" } else { "" }
            ),
        );
        let mut out = state;
        out["lag_seconds"] = json!(lag);
        Ok(out)
    }
}
