//! `route53.delete`: removes a record, remembering what it removed.
//!
//! Route 53 deletes a record set only when given it exactly (ttl and values), so the set in
//! place is read first; it is reported as `previous` and noted in the run's event log before
//! the change is sent, so that a later step can write it back. A record already gone is not
//! an error (`deleted: false`): running the step again ends the same. With `values`, the
//! record is deleted only if it still holds those values, so that a record someone changed
//! since the runbook was written is left alone. As for an upsert, once Route 53 has accepted
//! the change no failure is retryable.

use aws_sdk_route53::types::ChangeAction;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use super::change::{ChangeSettings, Record, check_wait};
use super::{check_record, find, rendered, set_json};
use crate::{ActionCtx, ActionError, ActionInfo, Capabilities, Effect, Field, Issue, Kind, Plugin, Stream, Target};

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
    /// Waiting, the change's comment, and where and as whom to call AWS.
    #[serde(flatten)]
    pub change: ChangeSettings,
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
            caps: Capabilities { probe: false, effect: Effect::Idempotent, general: false, spawns: false, network: true },
            example: "drop_dr_record:\n  uses: route53.delete\n  with:\n    zone_id: Z0123456789ABCDEFGHIJ\n    name: dr.example.com\n    type: A\n    values: [\"{{ steps.provision.outputs.ip }}\"]",
        }
    }

    fn check(&self, with: &Value) -> Vec<Issue> {
        let mut issues = check_record(with);
        if with.get("values").and_then(Value::as_array).is_some_and(Vec::is_empty) {
            issues.push(Issue::at("values", "`values` is empty").help("list the values the record must hold, or leave `values` out"));
        }
        issues.extend(check_wait(with));
        issues
    }

    fn targets(&self, with: &Value) -> Vec<Target> {
        super::record_target(with)
    }
    fn targets_doc(&self) -> &'static str {
        "the record: `DNS NAME TYPE in zone ZONE`"
    }

    fn plan(&self, with: &Value) -> String {
        let s = |k: &str| with.get(k).and_then(Value::as_str).unwrap_or("?");
        let only = with.get("values").map_or(String::new(), |v| format!(" if it holds {v}"));
        format!("delete {} {}{only} in hosted zone {}", s("name"), s("type"), s("zone_id"))
    }

    async fn run(&self, ctx: &ActionCtx, input: Route53DeleteInput) -> Result<Value, ActionError> {
        rendered(check_record(&json!({ "zone_id": input.zone_id, "name": input.name, "type": input.r#type })))?;
        let r = Record::open(&input.zone_id, &input.name, &input.r#type, input.change.timeout, &input.change.aws).await?;
        let (name, rtype, zone) = (&r.name, &r.rtype, &r.zone);

        let Some(set) = find(ctx, &r.client, zone, name, rtype).await? else {
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
                    before_effect: false,
                });
            }
        }
        ctx.note(
            format!("{name} {rtype} before the deletion: {}", previous["values"]),
            json!({ "zone_id": zone, "name": name, "type": rtype.as_str(), "previous": previous }),
        );
        let doing = format!("deleting {name} {rtype}");
        let kept = json!({ "deleted": null, "previous": previous, "zone_id": zone });
        let (change_id, status) = r.send(ctx, ChangeAction::Delete, set, input.change.comment.as_deref(), &doing, kept).await?;
        let mut outputs =
            json!({ "deleted": true, "previous": previous, "change_id": change_id, "status": status.as_str(), "zone_id": zone });
        r.settle(ctx, (&change_id, status), (input.change.wait, input.change.wait_timeout), &doing, &mut outputs).await?;
        Ok(outputs)
    }
}
