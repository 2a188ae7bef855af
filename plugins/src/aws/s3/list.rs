//! `s3.list`: the objects under a prefix, every page of them up to a limit.

use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{S3Settings, etag, failed, rendered_bucket, str_of, time, url};
use crate::aws::call;
use crate::duration::Dur;
use crate::{ActionCtx, ActionError, ActionInfo, Capabilities, Effect, Field, Issue, Kind, Plugin, Stream};

/// Lists S3 objects.
pub struct S3List;

/// `s3.list`'s input.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct S3ListInput {
    /// The bucket's name.
    pub bucket: String,
    /// Only keys that start with this (`backups/2026-11-`); default every key.
    #[serde(default)]
    pub prefix: String,
    /// At most this many objects (default 10000): listing stops there and `truncated` is true.
    #[serde(default)]
    pub limit: Option<u64>,
    /// How many keys each request asks for, 1 to 1000 (default 1000).
    #[serde(default)]
    #[schemars(range(min = 1, max = 1000))]
    pub page_size: Option<u16>,
    /// How long each request may take (default 10s).
    #[serde(default)]
    pub timeout: Option<Dur>,
    /// Where and as whom to call S3.
    #[serde(flatten)]
    pub s3: S3Settings,
}

/// The default `limit`: the objects are stored with the run's outputs.
const DEFAULT_LIMIT: u64 = 10_000;

impl Plugin for S3List {
    type Input = S3ListInput;
    fn info(&self) -> ActionInfo {
        ActionInfo {
            name: "s3.list",
            summary: "Lists the objects under a prefix, following every page up to `limit`, with their count and total size.",
            kind: Kind::Plugin,
            outputs: &[
                Field { name: "objects", doc: "in key order: key, size, etag, last_modified (RFC 3339)" },
                Field { name: "count", doc: "how many objects were listed" },
                Field { name: "total_bytes", doc: "their total size in bytes" },
                Field { name: "truncated", doc: "whether more objects were left out because of `limit`" },
                Field { name: "url", doc: "`s3://bucket/prefix`" },
            ],
            caps: Capabilities { probe: true, effect: Effect::Read, general: false, spawns: false, network: true },
            example: "backups:\n  uses: s3.list\n  with: { bucket: dr-backups, prefix: db/, limit: 100 }",
        }
    }

    fn check(&self, with: &Value) -> Vec<Issue> {
        let mut issues = super::check(with);
        if with.get("limit").and_then(Value::as_u64) == Some(0) {
            issues.push(Issue::at("limit", "`limit` is 0: nothing would be listed").help(format!("leave it out for {DEFAULT_LIMIT}")));
        }
        issues
    }

    fn plan(&self, with: &Value) -> String {
        let prefix = with.get("prefix").and_then(Value::as_str).unwrap_or_default();
        format!("list {}", url(str_of(with, "bucket"), prefix))
    }

    async fn run(&self, ctx: &ActionCtx, input: S3ListInput) -> Result<Value, ActionError> {
        rendered_bucket(&input.bucket)?;
        let limit = input.limit.unwrap_or(DEFAULT_LIMIT);
        if limit == 0 {
            return Err(ActionError::Input("`limit` is 0: nothing would be listed".into()));
        }
        let page_size = input.page_size.unwrap_or(1000).clamp(1, 1000);
        let source = url(&input.bucket, &input.prefix);
        let timeout = input.timeout.map_or(Duration::from_secs(10), Dur::get);
        let client = input.s3.client(timeout).await.map_err(ActionError::Input)?;
        let mut pages =
            client.list_objects_v2().bucket(&input.bucket).prefix(&input.prefix).into_paginator().page_size(i32::from(page_size)).send();
        let (mut objects, mut total_bytes, mut truncated, mut requests) = (Vec::new(), 0u64, false, 0);
        while let Some(page) = call(ctx, "listing", pages.next()).await? {
            let page = page.map_err(|e| failed(&format!("listing {source}"), &e))?;
            requests += 1;
            for o in page.contents() {
                if objects.len() as u64 == limit {
                    truncated = true;
                    break;
                }
                let size = o.size().unwrap_or(0).max(0) as u64;
                total_bytes += size;
                objects.push(json!({
                    "key": o.key(),
                    "size": size,
                    "etag": etag(o.e_tag()),
                    "last_modified": time(o.last_modified()),
                }));
            }
            if objects.len() as u64 == limit {
                // More pages, or more on this one: there was more than `limit`.
                truncated |= page.is_truncated().unwrap_or(false);
                break;
            }
        }
        let more = if truncated { format!(", stopped at the limit of {limit}") } else { String::new() };
        ctx.log(Stream::Info, format!("{source}: {} objects, {total_bytes} bytes, in {requests} requests{more}", objects.len()));
        Ok(json!({ "url": source, "count": objects.len(), "total_bytes": total_bytes, "truncated": truncated, "objects": objects }))
    }
}
