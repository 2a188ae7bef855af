//! `route53.get`: reads one record set, to check where a name points.

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use super::change::Record;
use super::{check_record, find, rendered, set_json};
use crate::aws::settings::AwsSettings;
use crate::duration::Dur;
use crate::{ActionCtx, ActionError, ActionInfo, Capabilities, Effect, Field, Issue, Kind, Plugin, Stream};

/// Reads a DNS record.
pub struct Route53Get;

/// `route53.get`'s input.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Route53GetInput {
    /// The hosted zone's id (`Z0123456789ABCDEFGHIJ`, or `/hostedzone/Z…`).
    pub zone_id: String,
    /// The record's name (`app.example.com`, with or without the final dot).
    pub name: String,
    /// The record type: A, AAAA, CNAME, TXT…
    pub r#type: String,
    /// How long each AWS call may take (default 10s).
    #[serde(default)]
    pub timeout: Option<Dur>,
    /// Where and as whom to call AWS (Route 53 is global: `region` is not needed).
    #[serde(flatten)]
    pub aws: AwsSettings,
}

impl Plugin for Route53Get {
    type Input = Route53GetInput;
    fn info(&self) -> ActionInfo {
        ActionInfo {
            name: "route53.get",
            summary: "Reads a simple DNS record set from a Route 53 hosted zone: whether it exists, its TTL and values.",
            kind: Kind::Plugin,
            outputs: &[
                Field { name: "exists", doc: "whether the zone has a simple record set of that name and type" },
                Field { name: "ttl", doc: "its TTL in seconds (null when it does not exist, or for an alias)" },
                Field { name: "values", doc: "its values, TXT unquoted (empty when it does not exist)" },
                Field {
                    name: "alias_target",
                    doc: "an alias record's target: hosted_zone_id, dns_name, evaluate_target_health (else null)",
                },
                Field { name: "name", doc: "the name asked, with the final dot" },
                Field { name: "type", doc: "the type asked" },
            ],
            caps: Capabilities { probe: true, effect: Effect::Read, general: false, spawns: false, network: true },
            example: "dns_now:\n  uses: route53.get\n  with: { zone_id: Z0123456789ABCDEFGHIJ, name: app.example.com, type: A }",
        }
    }

    fn check(&self, with: &Value) -> Vec<Issue> {
        check_record(with)
    }

    fn plan(&self, with: &Value) -> String {
        let s = |k: &str| with.get(k).and_then(Value::as_str).unwrap_or("?");
        format!("read {} {} in hosted zone {}", s("name"), s("type"), s("zone_id"))
    }

    async fn run(&self, ctx: &ActionCtx, input: Route53GetInput) -> Result<Value, ActionError> {
        rendered(check_record(&json!({ "zone_id": input.zone_id, "name": input.name, "type": input.r#type })))?;
        let r = Record::open(&input.zone_id, &input.name, &input.r#type, input.timeout, &input.aws).await?;
        let (name, rtype, zone) = (&r.name, &r.rtype, &r.zone);
        let found = find(ctx, &r.client, zone, name, rtype).await?;
        let mut outputs =
            json!({ "exists": found.is_some(), "name": name, "type": rtype.as_str(), "ttl": null, "values": [], "alias_target": null });
        match &found {
            Some(set) => {
                let set = set_json(set);
                for key in ["ttl", "values", "alias_target"] {
                    if let Some(v) = set.get(key) {
                        outputs[key] = v.clone();
                    }
                }
                ctx.log(Stream::Info, format!("{name} {rtype}: {} (ttl {})", set["values"], set["ttl"]));
            }
            None => ctx.log(Stream::Info, format!("{name} {rtype}: no such record in hosted zone {zone}")),
        }
        Ok(outputs)
    }
}
