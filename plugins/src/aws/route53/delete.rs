//! `route53.delete`: removes a record, remembering what it removed.
//!
//! Route 53 deletes a record set only when given it exactly (ttl and values), so the set in
//! place is read first; it is reported as `previous` and noted in the run's event log before
//! the change is sent, so that a later step can write it back. A record already gone is not
//! an error (`deleted: false`): running the step again ends the same. With `values`, the
//! record is deleted only if it still holds those values, so that a record someone changed
//! since the runbook was written is left alone. As for an upsert, once Route 53 has accepted
//! the change no failure is retryable.

use std::time::Duration;

use aws_sdk_route53::error::SdkError;
use aws_sdk_route53::types::{Change, ChangeAction, ChangeBatch, ChangeStatus};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use super::wait::wait_insync;
use super::{GLOBAL_REGION, check_record, failed, find, fqdn, record_type, rendered, set_json, zone_id};
use crate::aws::{call, describe, settings::AwsSettings};
use crate::duration::{Dur, format_duration};
use crate::{ActionCtx, ActionError, ActionInfo, Capabilities, Field, Issue, Kind, Plugin, Stream};

/// Removes a DNS record.
pub struct Route53Delete;

/// `route53.delete`'s input.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Route53DeleteInput {
    /// The hosted zone's id (`Z0123456789ABCDEFGHIJ`, or `/hostedzone/Z…`).
    pub zone_id: String,
    /// The record's name (`dr.example.com`, with or without the final dot).
    pub name: String,
    /// The record type: A, AAAA, CNAME, TXT…
    pub r#type: String,
    /// Delete only if the record holds exactly these values (in any order); else the step
    /// fails and nothing is deleted.
    #[serde(default, deserialize_with = "optional_strings")]
    pub values: Option<Vec<String>>,
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

fn optional_strings<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    super::strings(d).map(Some)
}

impl Plugin for Route53Delete {
    type Input = Route53DeleteInput;
    fn info(&self) -> ActionInfo {
        ActionInfo {
            name: "route53.delete",
            summary: "Deletes a simple DNS record set from a Route 53 hosted zone (nothing to do if it is gone), reports what it deleted, and waits until the change is INSYNC.",
            kind: Kind::Plugin,
            outputs: &[
                Field { name: "deleted", doc: "whether a record was deleted (false: it was already gone)" },
                Field { name: "previous", doc: "the record set deleted: name, type, ttl, values (null when there was none)" },
                Field { name: "change_id", doc: "Route 53's id of the change (null when nothing was deleted)" },
                Field { name: "status", doc: "INSYNC, or PENDING when `wait` is false (null when nothing was deleted)" },
                Field { name: "zone_id", doc: "the hosted zone" },
            ],
            caps: Capabilities { probe: false, idempotent: true, spawns: false, network: true },
            example: "drop_dr_record:\n  uses: route53.delete\n  with:\n    zone_id: Z0123456789ABCDEFGHIJ\n    name: dr.example.com\n    type: A\n    values: [\"{{ steps.provision.outputs.ip }}\"]",
        }
    }

    fn check(&self, with: &Value) -> Vec<Issue> {
        let mut issues = check_record(with);
        if with.get("values").and_then(Value::as_array).is_some_and(Vec::is_empty) {
            issues.push(Issue::at("values", "`values` is empty").help("list the values the record must hold, or leave `values` out"));
        }
        let waits = with.get("wait").and_then(Value::as_bool) != Some(false);
        if !waits && with.get("wait_timeout").is_some() {
            issues.push(Issue::at("wait_timeout", "`wait_timeout` is set but `wait` is false").help("remove one of them"));
        }
        issues
    }

    fn plan(&self, with: &Value) -> String {
        let s = |k: &str| with.get(k).and_then(Value::as_str).unwrap_or("?");
        let only = with.get("values").map_or(String::new(), |v| format!(" if it holds {v}"));
        format!("delete {} {}{only} in hosted zone {}", s("name"), s("type"), s("zone_id"))
    }

    async fn run(&self, ctx: &ActionCtx, input: Route53DeleteInput) -> Result<Value, ActionError> {
        rendered(check_record(&json!({ "zone_id": input.zone_id, "name": input.name, "type": input.r#type })))?;
        let rtype = record_type(&input.r#type).map_err(ActionError::Input)?;
        let zone = zone_id(&input.zone_id).to_string();
        let name = fqdn(&input.name);
        let timeout = input.timeout.map_or(Duration::from_secs(10), Dur::get);
        let config = input.aws.load_global(timeout, GLOBAL_REGION).await.map_err(ActionError::Input)?;
        let client = aws_sdk_route53::Client::new(&config);

        let Some(set) = find(ctx, &client, &zone, &name, &rtype).await? else {
            ctx.log(Stream::Info, format!("{name} {rtype}: no such record in hosted zone {zone}; nothing to delete"));
            return Ok(json!({ "deleted": false, "previous": null, "change_id": null, "status": null, "zone_id": zone }));
        };
        let previous = set_json(&set);
        if let Some(want) = &input.values {
            let mut want: Vec<&str> = want.iter().map(|v| v.trim()).collect();
            let mut have: Vec<&str> = previous["values"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
            want.sort_unstable();
            have.sort_unstable();
            if want != have {
                return Err(ActionError::Failed {
                    message: format!("{name} {rtype} holds {}, not {}: it was not deleted", previous["values"], json!(want)),
                    outputs: Some(json!({ "deleted": false, "previous": previous, "zone_id": zone })),
                    retryable: false,
                });
            }
        }
        ctx.note(
            format!("{name} {rtype} before the deletion: {}", previous["values"]),
            json!({ "zone_id": zone, "name": name, "type": rtype.as_str(), "previous": previous }),
        );
        let comment = input.comment.clone().unwrap_or_else(|| format!("phoenix run {} step {}", ctx.run_id, ctx.step_id));
        let change = Change::builder()
            .action(ChangeAction::Delete)
            .resource_record_set(set)
            .build()
            .map_err(|e| ActionError::Input(e.to_string()))?;
        let batch = ChangeBatch::builder().comment(comment).changes(change).build().map_err(|e| ActionError::Input(e.to_string()))?;
        let what = format!("deleting {name} {rtype} in hosted zone {zone}");
        let sent = client.change_resource_record_sets().hosted_zone_id(&zone).change_batch(batch).send();
        let info = call(ctx, "the change", sent)
            .await?
            .map_err(|e| match e {
                SdkError::TimeoutError(_) | SdkError::ResponseError(_) => ActionError::Failed {
                    message: format!(
                        "{what}: no answer ({}); Route 53 may have applied the change: the record before it is in the run's event log",
                        describe(&e)
                    ),
                    outputs: Some(json!({ "deleted": null, "previous": previous, "zone_id": zone })),
                    retryable: false,
                },
                e => failed(&what, &e),
            })?
            .change_info;
        let (change_id, mut status) = info.map_or((String::new(), ChangeStatus::Pending), |i| (i.id, i.status));
        ctx.log(Stream::Info, format!("{what}: change {change_id} {status}"));
        let mut outputs =
            json!({ "deleted": true, "previous": previous, "change_id": change_id, "status": status.as_str(), "zone_id": zone });
        if input.wait && status != ChangeStatus::Insync {
            let limit = input.wait_timeout.map_or(Duration::from_secs(300), Dur::get);
            let (last, error) = wait_insync(ctx, &client, &change_id, limit).await?;
            status = last;
            outputs["status"] = status.as_str().into();
            if status != ChangeStatus::Insync {
                let why = error.map_or(String::new(), |e| format!(" (the last GetChange failed: {e})"));
                return Err(ActionError::Failed {
                    message: format!(
                        "change {change_id} deleting {name} {rtype} is still {status} after {}{why}; Route 53 accepted it and will apply it",
                        format_duration(limit)
                    ),
                    outputs: Some(outputs),
                    retryable: false,
                });
            }
            ctx.log(Stream::Info, format!("change {change_id} is INSYNC"));
        }
        Ok(outputs)
    }
}
