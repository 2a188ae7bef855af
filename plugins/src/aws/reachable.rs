//! `aws.reachable`: whether AWS answers in a region, quickly, slowly, or not at all.
//!
//! The seed calls EC2 `DescribeRegions` in another region (reachable 0, degraded 2,
//! unreachable 3). Phoenix asks STS `GetCallerIdentity` at the region's own endpoint instead:
//! it needs no IAM permission (a probe should not need ec2:Describe*), every account has it,
//! and it still crosses the network to that region's API front door. Any answer from AWS —
//! an error too, like a denied or expired key — proves the region is reachable; the answer's
//! time decides between `ok` and `slow`; no answer within `timeout` fails the probe, so its
//! signal takes the fallback weight.

use std::time::{Duration, Instant};

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use super::settings::{self, AwsSettings};
use super::{answered, call, describe};
use crate::duration::{Dur, format_duration};
use crate::{ActionCtx, ActionError, ActionInfo, Capabilities, Effect, Field, Issue, Kind, Plugin, Stream};

/// Times one AWS API call in a region.
pub struct Reachable;

/// `aws.reachable`'s input.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct ReachableInput {
    /// An answer slower than this is `slow` (default 2s).
    #[serde(default)]
    pub slow_after: Option<Dur>,
    /// No answer within this fails the probe (default 10s).
    #[serde(default)]
    pub timeout: Option<Dur>,
    /// Where and as whom to call AWS; `region` is the one to probe.
    #[serde(flatten)]
    pub aws: AwsSettings,
}

impl Plugin for Reachable {
    type Input = ReachableInput;
    fn info(&self) -> ActionInfo {
        ActionInfo {
            name: "aws.reachable",
            summary: "Calls STS GetCallerIdentity at a region's endpoint: `ok`, `slow` (answered after `slow_after`), or fails when nothing answers within `timeout`.",
            kind: Kind::Plugin,
            outputs: &[
                Field { name: "status", doc: "`ok` or `slow` (no answer fails the step)" },
                Field { name: "latency_ms", doc: "how long the answer took, in milliseconds" },
                Field { name: "region", doc: "the region asked" },
                Field { name: "account", doc: "the caller's account id (null when AWS answered with an error)" },
                Field { name: "error", doc: "the error AWS answered with, e.g. `InvalidClientTokenId: …` (null on success)" },
            ],
            caps: Capabilities { probe: true, effect: Effect::Read, general: false, spawns: false, network: true },
            example: "aws_cross_region:\n  uses: aws.reachable\n  with: { region: us-west-2, slow_after: 2s, timeout: 10s }\n  weight:\n    - { when: \"outputs.status == 'ok'\", weight: 0 }\n    - { when: \"outputs.status == 'slow'\", weight: 2 }\n    - { weight: 3 }",
        }
    }

    fn check(&self, with: &Value) -> Vec<Issue> {
        let mut issues = settings::check(with);
        let dur = |k: &str| with.get(k).and_then(Value::as_str).and_then(|s| crate::duration::parse_duration(s).ok());
        if let (Some(slow), Some(timeout)) = (dur("slow_after"), dur("timeout")) {
            if slow >= timeout {
                issues.push(
                    Issue::at("slow_after", "`slow_after` is not shorter than `timeout`, so no answer can be `slow`")
                        .help("e.g. `slow_after: 2s` with `timeout: 10s`"),
                );
            }
        }
        issues
    }

    fn plan(&self, with: &Value) -> String {
        let region = with.get("region").and_then(Value::as_str).unwrap_or("the default region");
        format!("check that AWS answers in {region}")
    }

    async fn run(&self, ctx: &ActionCtx, input: ReachableInput) -> Result<Value, ActionError> {
        let timeout = input.timeout.map_or(Duration::from_secs(10), Dur::get);
        let slow_after = input.slow_after.map_or(Duration::from_secs(2), Dur::get);
        let config = input.aws.load(timeout).await.map_err(ActionError::Input)?;
        let region = AwsSettings::region_of(&config);
        let client = aws_sdk_sts::Client::from_conf(aws_sdk_sts::config::Builder::from(&config).interceptor(super::traced::Traced).build());
        let started = Instant::now();
        let result = call(ctx, "calling STS", client.get_caller_identity().send()).await?;
        let took = started.elapsed();
        let (account, error) = match &result {
            Ok(out) => (out.account().map(str::to_string), None),
            Err(e) if answered(e) => (None, Some(describe(e))),
            Err(e) => {
                return Err(ActionError::failed(format!(
                    "AWS in {region} did not answer within {}: {}",
                    format_duration(timeout),
                    describe(e)
                )));
            }
        };
        let status = if took > slow_after { "slow" } else { "ok" };
        let latency_ms = took.as_millis() as u64;
        match &error {
            Some(e) => ctx.log(Stream::Info, format!("{region} answered in {latency_ms}ms with an error ({e}): reachable")),
            None => ctx.log(Stream::Info, format!("{region} answered in {latency_ms}ms: {status}")),
        }
        Ok(json!({ "status": status, "latency_ms": latency_ms, "region": region, "account": account, "error": error }))
    }
}
