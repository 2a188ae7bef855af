//! One change to one record set, as `route53.upsert` and `route53.delete` make it: the zone
//! and the record reached, the change sent once, then waited on until every name server has
//! it.

use std::time::{Duration, Instant};

use aws_sdk_route53::error::SdkError;
use aws_sdk_route53::types::{Change, ChangeAction, ChangeBatch, ChangeStatus, ResourceRecordSet, RrType};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

use super::{GLOBAL_REGION, failed, fqdn, record_type, zone_id};
use crate::aws::{call, describe, settings::AwsSettings};
use crate::duration::{Dur, format_duration};
use crate::{ActionCtx, ActionError, Issue, Stream};

/// What a change to a record takes besides the record: waiting, a comment, and where and as
/// whom to call AWS (shared by `route53.upsert` and `route53.delete`).
#[derive(Debug, Deserialize, JsonSchema)]
pub struct ChangeSettings {
    /// Wait until Route 53 reports the change INSYNC on all its name servers (default true).
    #[serde(default = "yes")]
    pub wait: bool,
    /// How long to wait for INSYNC before failing (default 5m).
    #[serde(default)]
    pub wait_timeout: Option<Dur>,
    /// A comment recorded with the change (default: the run and step).
    #[serde(default)]
    pub comment: Option<String>,
    /// How long each AWS call may take (default 10s).
    #[serde(default)]
    pub timeout: Option<Dur>,
    /// Where and as whom to call AWS (Route 53 is global: `region` is not needed).
    #[serde(flatten)]
    pub aws: AwsSettings,
}

fn yes() -> bool {
    true
}

/// `wait_timeout` means nothing without `wait`.
pub(super) fn check_wait(with: &Value) -> Option<Issue> {
    let waits = with.get("wait").and_then(Value::as_bool) != Some(false);
    (!waits && with.get("wait_timeout").is_some())
        .then(|| Issue::at("wait_timeout", "`wait_timeout` is set but `wait` is false").help("remove one of them"))
}

/// A record set's place: the client, the hosted zone, the name (with its final dot), the type.
pub(super) struct Record {
    pub(super) client: aws_sdk_route53::Client,
    pub(super) zone: String,
    pub(super) name: String,
    pub(super) rtype: RrType,
}

impl Record {
    /// Reaches Route 53 (global: any region, us-east-1 without one) for this record.
    pub(super) async fn open(zone: &str, name: &str, rtype: &str, timeout: Option<Dur>, aws: &AwsSettings) -> Result<Record, ActionError> {
        let rtype = record_type(rtype).map_err(ActionError::Input)?;
        let timeout = timeout.map_or(Duration::from_secs(10), Dur::get);
        let config = aws.load_global(timeout, GLOBAL_REGION).await.map_err(ActionError::Input)?;
        Ok(Record {
            client: aws_sdk_route53::Client::from_conf(
                aws_sdk_route53::config::Builder::from(&config).interceptor(crate::aws::traced::Traced).build(),
            ),
            zone: zone_id(zone).to_string(),
            name: fqdn(name),
            rtype,
        })
    }

    /// Sends `action` on `set` (`doing` says it: `deleting dr.example.com. A`); Route 53's
    /// change id and status. A change sent without an answer may have been applied: that
    /// failure is not retried (a retry would read the new state as the old), and the step
    /// keeps `kept` as its outputs.
    pub(super) async fn send(
        &self,
        ctx: &ActionCtx,
        action: ChangeAction,
        set: ResourceRecordSet,
        comment: Option<&str>,
        doing: &str,
        kept: Value,
    ) -> Result<(String, ChangeStatus), ActionError> {
        let comment = comment.map_or_else(|| format!("phoenix run {} step {}", ctx.run_id, ctx.step_id), str::to_string);
        let input = |e: aws_sdk_route53::error::BuildError| ActionError::Input(e.to_string());
        let change = Change::builder().action(action).resource_record_set(set).build().map_err(input)?;
        let batch = ChangeBatch::builder().comment(comment).changes(change).build().map_err(input)?;
        let what = format!("{doing} in hosted zone {}", self.zone);
        let sent = self.client.change_resource_record_sets().hosted_zone_id(&self.zone).change_batch(batch).send();
        let info = call(ctx, "the change", sent)
            .await?
            .map_err(|e| match e {
                SdkError::TimeoutError(_) | SdkError::ResponseError(_) => ActionError::Failed {
                    message: format!(
                        "{what}: no answer ({}); Route 53 may have applied the change: the record before it is in the run's event log",
                        describe(&e)
                    ),
                    outputs: Some(kept),
                    retryable: false,
                    before_effect: false,
                },
                e => failed(&what, &e),
            })?
            .change_info;
        let (id, status) = info.map_or((String::new(), ChangeStatus::Pending), |i| (i.id, i.status));
        ctx.log(Stream::Info, format!("{what}: change {id} {status}"));
        Ok((id, status))
    }

    /// With `wait`, polls the change until it is INSYNC, keeping `outputs["status"]` up to
    /// date. Still PENDING after `wait_timeout` (default 5m) fails the step, not retried:
    /// Route 53 has accepted the change.
    pub(super) async fn settle(
        &self,
        ctx: &ActionCtx,
        (id, status): (&str, ChangeStatus),
        (wait, wait_timeout): (bool, Option<Dur>),
        doing: &str,
        outputs: &mut Value,
    ) -> Result<(), ActionError> {
        if !wait || status == ChangeStatus::Insync {
            return Ok(());
        }
        let limit = wait_timeout.map_or(Duration::from_secs(300), Dur::get);
        let (last, error) = wait_insync(ctx, &self.client, id, limit).await?;
        outputs["status"] = last.as_str().into();
        if last != ChangeStatus::Insync {
            let why = error.map_or(String::new(), |e| format!(" (the last GetChange failed: {e})"));
            return Err(ActionError::Failed {
                message: format!(
                    "change {id} {doing} is still {last} after {}{why}; Route 53 accepted it and will apply it, and `previous` is in the step's outputs",
                    format_duration(limit)
                ),
                outputs: Some(outputs.clone()),
                retryable: false,
                before_effect: false,
            });
        }
        ctx.log(Stream::Info, format!("change {id} is INSYNC"));
        Ok(())
    }
}

/// The first pause between GetChange calls; it doubles up to [`MAX_POLL`].
const FIRST_POLL: Duration = Duration::from_secs(1);
const MAX_POLL: Duration = Duration::from_secs(10);

/// Polls GetChange until INSYNC or `limit`: the last status, and the last error if the last
/// poll failed. A failed poll is tried again at the next one; a cancel stops at once.
async fn wait_insync(
    ctx: &ActionCtx,
    client: &aws_sdk_route53::Client,
    change_id: &str,
    limit: Duration,
) -> Result<(ChangeStatus, Option<String>), ActionError> {
    let deadline = Instant::now() + limit;
    let (mut pause, mut status, mut error) = (FIRST_POLL, ChangeStatus::Pending, None);
    ctx.log(Stream::Info, format!("waiting up to {} for change {change_id} to be INSYNC", format_duration(limit)));
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok((status, error));
        }
        tokio::select! {
            _ = tokio::time::sleep(pause.min(left)) => {}
            _ = ctx.cancel.cancelled() => return Err(ActionError::Cancelled(format!("stopped waiting for change {change_id}"))),
        }
        match call(ctx, "waiting for the change", client.get_change().id(change_id).send()).await? {
            Ok(out) => {
                error = None;
                status = out.change_info.map_or(ChangeStatus::Pending, |i| i.status);
                if status == ChangeStatus::Insync {
                    return Ok((status, None));
                }
            }
            Err(e) => {
                let e = describe(&e);
                ctx.log(Stream::Info, format!("GetChange {change_id} failed: {e}; trying again"));
                error = Some(e);
            }
        }
        pause = (pause * 2).min(MAX_POLL);
    }
}
