//! `aws.eks_nodegroups`: the status of each managed node group of an EKS cluster.
//!
//! The seed lists the node groups of `cloudphoenix-eks` and counts those not ACTIVE
//! (0 → weight 0, 1 → 2, 2+ → 4). This lists every page, describes the groups concurrently,
//! and reports each group's status and health issues, so the weight rules can count.

use std::time::Duration;

use futures::{StreamExt, TryStreamExt, stream};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use super::settings::{self, AwsSettings};
use super::{call, describe};
use crate::duration::Dur;
use crate::{ActionCtx, ActionError, ActionInfo, Capabilities, Effect, Field, Issue, Kind, Plugin, Stream};

/// Reads the node groups of an EKS cluster.
pub struct EksNodegroups;

/// `aws.eks_nodegroups`'s input.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct EksNodegroupsInput {
    /// The cluster's name (`cloudphoenix-eks`).
    pub cluster: String,
    /// How long each AWS call may take (default 10s).
    #[serde(default)]
    pub timeout: Option<Dur>,
    /// Where and as whom to call AWS.
    #[serde(flatten)]
    pub aws: AwsSettings,
}

/// How many node groups are described at once.
const CONCURRENCY: usize = 8;

impl Plugin for EksNodegroups {
    type Input = EksNodegroupsInput;
    fn info(&self) -> ActionInfo {
        ActionInfo {
            name: "aws.eks_nodegroups",
            summary: "Lists an EKS cluster's managed node groups with their status and health issues, and counts those not ACTIVE.",
            kind: Kind::Plugin,
            outputs: &[
                Field { name: "cluster", doc: "the cluster's name" },
                Field { name: "region", doc: "the region asked" },
                Field { name: "cluster_status", doc: "the cluster's own status (ACTIVE, UPDATING, FAILED…)" },
                Field { name: "total", doc: "how many node groups the cluster has" },
                Field { name: "not_active", doc: "how many are not ACTIVE (CREATING, UPDATING, DEGRADED, CREATE_FAILED…)" },
                Field { name: "unhealthy", doc: "the names of those not ACTIVE, sorted" },
                Field { name: "statuses", doc: "each node group's status, by name" },
                Field { name: "nodegroups", doc: "each node group: name, status, health_issues [{code, message}], desired_size" },
            ],
            caps: Capabilities { probe: true, effect: Effect::Read, general: false, spawns: false, network: true },
            example: "eks_nodes:\n  uses: aws.eks_nodegroups\n  with: { cluster: cloudphoenix-eks, region: us-east-1 }\n  weight:\n    - { when: \"outputs.not_active == 0\", weight: 0 }\n    - { when: \"outputs.not_active == 1\", weight: 2 }\n    - { weight: 4 }",
        }
    }

    fn check(&self, with: &Value) -> Vec<Issue> {
        let mut issues = settings::check(with);
        if with.get("cluster").and_then(Value::as_str).is_some_and(|c| c.trim().is_empty()) {
            issues.push(Issue::at("cluster", "`cluster` is empty").help("name the EKS cluster, e.g. `cloudphoenix-eks`"));
        }
        issues
    }

    fn plan(&self, with: &Value) -> String {
        let cluster = with.get("cluster").and_then(Value::as_str).unwrap_or("?");
        format!("list the node groups of EKS cluster {cluster}")
    }

    async fn run(&self, ctx: &ActionCtx, input: EksNodegroupsInput) -> Result<Value, ActionError> {
        let timeout = input.timeout.map_or(Duration::from_secs(10), Dur::get);
        let config = input.aws.load(timeout).await.map_err(ActionError::Input)?;
        let region = AwsSettings::region_of(&config);
        let client = aws_sdk_eks::Client::from_conf(aws_sdk_eks::config::Builder::from(&config).interceptor(super::traced::Traced).build());
        let cluster = input.cluster.as_str();
        let failed = |what: &str, e: String, retryable: bool| ActionError::Failed {
            message: format!("{what} EKS cluster {cluster} in {region} failed: {e}"),
            outputs: None,
            retryable,
            before_effect: false,
        };

        // The cluster first: a missing one is named as such, and its own status is reported.
        let described = call(ctx, "describing the cluster", client.describe_cluster().name(cluster).send()).await?.map_err(|e| {
            // A cluster that does not exist will not appear on a retry.
            let missing = e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception());
            failed("describing", describe(&e), !missing)
        })?;
        let cluster_status = described.cluster().and_then(|c| c.status()).map(|s| s.as_str().to_string());

        let pages = client.list_nodegroups().cluster_name(cluster).into_paginator().items().send();
        let names: Vec<String> = call(ctx, "listing node groups", pages.collect::<Vec<_>>())
            .await?
            .into_iter()
            .collect::<Result<_, _>>()
            .map_err(|e| failed("listing the node groups of", describe(&e), true))?;

        let describe_all = stream::iter(names.into_iter().map(|name| {
            let (client, cluster) = (client.clone(), cluster.to_string());
            async move {
                let out = client.describe_nodegroup().cluster_name(&cluster).nodegroup_name(&name).send().await;
                match out {
                    Ok(o) => Ok(o.nodegroup.map_or_else(|| json!({ "name": name, "status": null }), |g| group_json(&name, &g))),
                    Err(e) => Err((name, describe(&e))),
                }
            }
        }))
        .buffered(CONCURRENCY)
        .try_collect::<Vec<Value>>();
        let groups = call(ctx, "describing node groups", describe_all)
            .await?
            .map_err(|(name, e)| failed(&format!("describing node group {name} of"), e, true))?;

        let mut unhealthy: Vec<&str> =
            groups.iter().filter(|g| g["status"] != "ACTIVE").map(|g| g["name"].as_str().unwrap_or_default()).collect();
        unhealthy.sort_unstable();
        let statuses: serde_json::Map<String, Value> =
            groups.iter().map(|g| (g["name"].as_str().unwrap_or_default().to_string(), g["status"].clone())).collect();
        ctx.log(Stream::Info, format!("{cluster}: {} node groups, {} not ACTIVE", groups.len(), unhealthy.len()));
        Ok(json!({
            "cluster": cluster,
            "region": region,
            "cluster_status": cluster_status,
            "total": groups.len(),
            "not_active": unhealthy.len(),
            "unhealthy": unhealthy,
            "statuses": statuses,
            "nodegroups": groups,
        }))
    }
}

fn group_json(name: &str, g: &aws_sdk_eks::types::Nodegroup) -> Value {
    let issues: Vec<Value> = g
        .health()
        .map(|h| h.issues())
        .unwrap_or_default()
        .iter()
        .map(|i| json!({ "code": i.code().map(|c| c.as_str().to_string()), "message": i.message() }))
        .collect();
    json!({
        "name": name,
        "status": g.status().map(|s| s.as_str().to_string()),
        "health_issues": issues,
        "desired_size": g.scaling_config().and_then(|s| s.desired_size()),
    })
}
