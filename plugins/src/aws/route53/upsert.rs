//! `route53.upsert`: sets a record, remembering what it replaced.
//!
//! The record set in place before the change is read first and reported as `previous`, so a
//! rollback (`on_failure`) or a later failback can write it back; it is also noted in the run's
//! event log before the change is sent, so it survives a step that is stopped while waiting.
//! Once Route 53 has accepted the change, no failure is retryable: a second attempt would read
//! the new record as the "previous" one.

use aws_sdk_route53::types::{ChangeAction, ResourceRecord, ResourceRecordSet};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use super::change::{ChangeSettings, Record, check_wait};
use super::{check_record, check_values, find, quote, rendered, set_json, strings};
use crate::{ActionCtx, ActionError, ActionInfo, Capabilities, Effect, Field, Issue, Kind, Plugin, Target};

/// Creates or replaces a DNS record.
pub struct Route53Upsert;

/// `route53.upsert`'s input.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Route53UpsertInput {
    /// The hosted zone's id (`Z0123456789ABCDEFGHIJ`, or `/hostedzone/Z…`).
    pub zone_id: String,
    /// The record's name (`app.example.com`, with or without the final dot).
    pub name: String,
    /// The record type: A, AAAA, CNAME, TXT, MX, SRV, CAA, NS…
    pub r#type: String,
    /// How long resolvers may cache the record, in seconds (at least 1).
    #[schemars(range(max = 2147483647))]
    pub ttl: u32,
    /// The record's values (`[203.0.113.10]`); TXT values as plain text, quoted for you.
    #[serde(deserialize_with = "strings")]
    pub values: Vec<String>,
    /// Waiting, the change's comment, and where and as whom to call AWS.
    #[serde(flatten)]
    pub change: ChangeSettings,
}

impl Plugin for Route53Upsert {
    type Input = Route53UpsertInput;
    fn info(&self) -> ActionInfo {
        ActionInfo {
            name: "route53.upsert",
            summary: "Creates or replaces a simple DNS record in a Route 53 hosted zone, reports the record set it replaced, and waits until the change is INSYNC.",
            kind: Kind::Plugin,
            outputs: &[
                Field { name: "change_id", doc: "Route 53's id of the change (`/change/C…`)" },
                Field { name: "status", doc: "INSYNC, or PENDING when `wait` is false" },
                Field { name: "previous", doc: "the record set before the change: name, type, ttl, values (null when there was none)" },
                Field { name: "record", doc: "the record set now: name, type, ttl, values" },
                Field { name: "changed", doc: "whether the record differs from `previous` (ttl or values, in any order)" },
                Field { name: "zone_id", doc: "the hosted zone" },
            ],
            caps: Capabilities { probe: false, effect: Effect::Idempotent, general: false, spawns: false, network: true },
            example: "switch_dns:\n  uses: route53.upsert\n  with:\n    zone_id: Z0123456789ABCDEFGHIJ\n    name: app.example.com\n    type: A\n    ttl: 60\n    values: [\"{{ steps.provision.outputs.ip }}\"]",
        }
    }

    fn check(&self, with: &Value) -> Vec<Issue> {
        let mut issues = check_record(with);
        issues.extend(check_values(with));
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
        let values = with.get("values").map_or_else(|| "?".to_string(), Value::to_string);
        format!(
            "set {} {} to {values} (ttl {}) in hosted zone {}",
            s("name"),
            s("type"),
            with.get("ttl").unwrap_or(&Value::Null),
            s("zone_id")
        )
    }

    async fn run(&self, ctx: &ActionCtx, input: Route53UpsertInput) -> Result<Value, ActionError> {
        let as_with =
            json!({ "zone_id": input.zone_id, "name": input.name, "type": input.r#type, "ttl": input.ttl, "values": input.values });
        rendered(check_record(&as_with).into_iter().chain(check_values(&as_with)).collect())?;
        let r = Record::open(&input.zone_id, &input.name, &input.r#type, input.change.timeout, &input.change.aws).await?;
        let (name, rtype, zone) = (&r.name, &r.rtype, &r.zone);

        let previous = find(ctx, &r.client, zone, name, rtype).await?;
        let previous = previous.as_ref().map(set_json);
        ctx.note(
            format!("{name} {rtype} before the change: {}", previous.as_ref().map_or("none".to_string(), |p| p["values"].to_string())),
            json!({ "zone_id": zone, "name": name, "type": rtype.as_str(), "previous": previous }),
        );

        let text = matches!(rtype.as_str(), "TXT" | "SPF");
        let records = input
            .values
            .iter()
            .map(|v| ResourceRecord::builder().value(if text { quote(v) } else { v.trim().to_string() }).build())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ActionError::Input(e.to_string()))?;
        let set = ResourceRecordSet::builder()
            .name(name)
            .r#type(rtype.clone())
            .ttl(i64::from(input.ttl))
            .set_resource_records(Some(records))
            .build()
            .map_err(|e| ActionError::Input(e.to_string()))?;
        let record = set_json(&set);
        let doing = format!("setting {name} {rtype}");
        let kept = json!({ "previous": previous, "zone_id": zone });
        let (change_id, status) = r.send(ctx, ChangeAction::Upsert, set, input.change.comment.as_deref(), &doing, kept).await?;
        let changed = previous.as_ref().is_none_or(|p| differs(p, &record));
        let mut outputs = json!({
            "change_id": change_id,
            "status": status.as_str(),
            "previous": previous,
            "record": record,
            "changed": changed,
            "zone_id": zone,
        });
        r.settle(ctx, (&change_id, status), (input.change.wait, input.change.wait_timeout), &doing, &mut outputs).await?;
        Ok(outputs)
    }
}

/// Whether the record set asked for differs from the one before (values in any order).
fn differs(previous: &Value, record: &Value) -> bool {
    previous["ttl"] != record["ttl"] || sorted_values(previous) != sorted_values(record) || previous.get("alias_target").is_some()
}

fn sorted_values(set: &Value) -> Vec<&str> {
    let mut values: Vec<&str> = set["values"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
    values.sort_unstable();
    values
}
