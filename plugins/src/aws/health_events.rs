//! `aws.health_events`: open and recent AWS Health events, as evidence for the incident
//! analysis (the seed's first context source).
//!
//! AWS Health is a global API served from us-east-1, so the region defaults to us-east-1
//! whatever `AWS_REGION` says. It needs a Business, Enterprise On-Ramp or Enterprise support
//! plan; without one AWS answers `SubscriptionRequiredException`. Like every evidence source,
//! a failure is reported (`available: false`, `error`) rather than fatal, unless `required`.

use std::time::{Duration, SystemTime};

use aws_sdk_health::primitives::DateTime;
use aws_sdk_health::types::{DateTimeRange, EventFilter};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use super::settings::{self, AwsSettings};
use super::{call, describe};
use crate::duration::Dur;
use crate::{ActionCtx, ActionError, ActionInfo, Capabilities, Effect, Field, Issue, Kind, Plugin, Stream};

/// Reads AWS Health events.
pub struct HealthEvents;

/// `aws.health_events`'s input.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct HealthEventsInput {
    /// Events updated within this long before now (default 24h).
    #[serde(default)]
    pub since: Option<Dur>,
    /// Only these services (`EC2`, `RDS`, `EKS`…); default all.
    #[serde(default)]
    pub services: Vec<String>,
    /// Only events in these regions; default all.
    #[serde(default)]
    pub regions: Vec<String>,
    /// At most this many events, newest first (default 50).
    #[serde(default)]
    pub limit: Option<usize>,
    /// Fail the step when AWS Health cannot be read (default false: report it unavailable).
    #[serde(default)]
    pub required: bool,
    /// How long each AWS call may take (default 10s).
    #[serde(default)]
    pub timeout: Option<Dur>,
    /// Where and as whom to call AWS; `region` defaults to us-east-1 (AWS Health's endpoint).
    #[serde(flatten)]
    pub aws: AwsSettings,
}

impl Plugin for HealthEvents {
    type Input = HealthEventsInput;
    fn info(&self) -> ActionInfo {
        ActionInfo {
            name: "aws.health_events",
            summary: "Lists AWS Health events updated recently (open, upcoming and closed); evidence that is reported unavailable, not fatal, when AWS Health cannot be read.",
            kind: Kind::Plugin,
            outputs: &[
                Field { name: "available", doc: "whether AWS Health could be read" },
                Field { name: "error", doc: "why not (null when available)" },
                Field { name: "has_open_issues", doc: "whether any event is `open`" },
                Field { name: "open_event_count", doc: "how many events are `open`" },
                Field {
                    name: "events",
                    doc: "newest first: service, event_type_code, category, status, region, start_time, end_time, last_updated_time, arn",
                },
            ],
            caps: Capabilities { probe: true, effect: Effect::Read, general: false, spawns: false, network: true },
            example: "aws_events:\n  uses: aws.health_events\n  with: { since: 6h, services: [EC2, RDS, EKS], regions: [us-east-1] }",
        }
    }

    fn check(&self, with: &Value) -> Vec<Issue> {
        let mut issues = settings::check(with);
        if with.get("limit").and_then(Value::as_u64) == Some(0) {
            issues.push(Issue::at("limit", "`limit` is 0: no event could be reported").help("leave it out for 50"));
        }
        issues
    }

    fn plan(&self, with: &Value) -> String {
        let since = with.get("since").and_then(Value::as_str).unwrap_or("24h");
        format!("list AWS Health events of the last {since}")
    }

    async fn run(&self, ctx: &ActionCtx, mut input: HealthEventsInput) -> Result<Value, ActionError> {
        let required = input.required;
        input.aws.region.get_or_insert_with(|| "us-east-1".to_string());
        match read(ctx, &input).await {
            Ok(v) => Ok(v),
            Err(ActionError::Failed { message, .. }) if !required => {
                ctx.log(Stream::Info, format!("AWS Health unavailable: {message}"));
                Ok(json!({ "available": false, "error": message, "has_open_issues": null, "open_event_count": null, "events": [] }))
            }
            Err(e) => Err(e),
        }
    }
}

async fn read(ctx: &ActionCtx, input: &HealthEventsInput) -> Result<Value, ActionError> {
    let timeout = input.timeout.map_or(Duration::from_secs(10), Dur::get);
    let since = input.since.map_or(Duration::from_secs(24 * 3600), Dur::get);
    let limit = input.limit.unwrap_or(50);
    let config = input.aws.load(timeout).await.map_err(ActionError::Input)?;
    let client =
        aws_sdk_health::Client::from_conf(aws_sdk_health::config::Builder::from(&config).interceptor(super::traced::Traced).build());
    let from = SystemTime::now().checked_sub(since).unwrap_or(SystemTime::UNIX_EPOCH);
    let filter = EventFilter::builder()
        .last_updated_times(DateTimeRange::builder().from(DateTime::from(from)).build())
        .set_services((!input.services.is_empty()).then(|| input.services.clone()))
        .set_regions((!input.regions.is_empty()).then(|| input.regions.clone()))
        .build();
    let pages = client.describe_events().filter(filter).max_results(100).into_paginator().items().send();
    let mut events: Vec<aws_sdk_health::types::Event> = call(ctx, "reading AWS Health", pages.try_collect())
        .await?
        .map_err(|e| ActionError::failed(format!("reading AWS Health events failed: {}", describe(&e))))?;
    // Newest first by last update.
    events.sort_by_key(|e| std::cmp::Reverse(e.last_updated_time().map(|t| (t.secs(), t.subsec_nanos()))));
    let open = events.iter().filter(|e| e.status_code().is_some_and(|s| s.as_str() == "open")).count();
    let events: Vec<Value> = events.iter().take(limit).map(event_json).collect();
    ctx.log(
        Stream::Info,
        format!("AWS Health: {} events in the last {}, {open} open", events.len(), crate::duration::format_duration(since)),
    );
    Ok(json!({ "available": true, "error": null, "has_open_issues": open > 0, "open_event_count": open, "events": events }))
}

fn time(t: Option<&DateTime>) -> Value {
    t.and_then(|t| t.fmt(aws_sdk_health::primitives::DateTimeFormat::DateTime).ok()).map_or(Value::Null, Value::String)
}

fn event_json(e: &aws_sdk_health::types::Event) -> Value {
    json!({
        "service": e.service(),
        "event_type_code": e.event_type_code(),
        "category": e.event_type_category().map(|c| c.as_str()),
        "status": e.status_code().map(|s| s.as_str()),
        "region": e.region(),
        "start_time": time(e.start_time()),
        "end_time": time(e.end_time()),
        "last_updated_time": time(e.last_updated_time()),
        "arn": e.arn(),
    })
}
