//! The `storage.sync` action.
//!
//! 1. List both sides (one listing each, paged).
//! 2. An object is current when the destination has it with the same size and either the
//!    source's ETag recorded on it at the last copy, or the same MD5. Current objects are
//!    skipped: a second sync with nothing changed only lists, and a sync that crashed half-way
//!    copies only what it had not finished (each object is written whole or not at all).
//! 3. The others are copied `concurrency` at a time, streaming: an object never passes through
//!    a file; each copy holds at most two parts (8 MiB to S3, 4 MiB to Azure) in memory, and
//!    all copies together at most `MEMORY` (a copy waits for room before it starts). What is
//!    read must hash to the source's MD5 when the listing tells it, or the copy is not written.
//! 4. With `delete`, objects only the destination has are removed.
//! 5. Verification lists the destination again: every source object must be there, current
//!    (when nothing was copied or deleted, the first listing showed that already).

use std::time::{Duration, Instant};

use futures::StreamExt;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};
use tracing::Instrument;
use tracing::field::Empty;

use super::Location;
use super::side::{Entry, Side};
use crate::aws::S3Settings;
use crate::azure::AzureSettings;
use crate::duration::Dur;
use crate::telemetry;
use crate::{ActionCtx, ActionError, ActionInfo, Capabilities, Effect, Field, Issue, Kind as ActionKind, Plugin, Stream, Target};

/// Copies objects between S3 and Azure Blob.
pub struct StorageSync;

/// `storage.sync`'s input.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StorageSyncInput {
    /// The source: `s3://bucket/prefix` or `azblob://container/prefix`.
    pub from: String,
    /// The destination, of either kind.
    pub to: String,
    /// Remove destination objects that the source does not have (default false).
    #[serde(default)]
    pub delete: bool,
    /// How many objects are copied at once (default 16).
    #[serde(default)]
    pub concurrency: Option<usize>,
    /// List the destination again afterwards and check every object (default true).
    #[serde(default)]
    pub verify: Option<bool>,
    /// How long each call may take (default 60s).
    #[serde(default)]
    pub timeout: Option<Dur>,
    /// S3's settings (endpoint, region, credentials, path style); default: the environment.
    #[serde(default)]
    pub s3: S3Settings,
    /// Azure's settings (connection string, account, endpoint…); default: the environment.
    #[serde(default)]
    pub azure: AzureSettings,
}

impl Plugin for StorageSync {
    type Input = StorageSyncInput;
    fn info(&self) -> ActionInfo {
        ActionInfo {
            name: "storage.sync",
            summary: "Syncs objects between S3 and Azure Blob (either way): concurrent streaming copies, unchanged objects skipped, optional delete, verified.",
            kind: ActionKind::Plugin,
            outputs: &[
                Field { name: "objects", doc: "how many objects the source has" },
                Field { name: "copied", doc: "how many were copied" },
                Field { name: "skipped", doc: "how many were already current" },
                Field { name: "deleted", doc: "how many destination-only objects were removed (with `delete`)" },
                Field { name: "bytes", doc: "bytes copied" },
                Field { name: "total_bytes", doc: "bytes the source holds" },
                Field { name: "verified", doc: "whether the destination was listed again and matched (null without `verify`)" },
                Field { name: "duration_ms", doc: "how long the sync took" },
            ],
            caps: Capabilities { probe: false, effect: Effect::Idempotent, general: false, spawns: false, network: true },
            example: "sync_storage:\n  uses: storage.sync\n  with: { from: \"s3://prod-assets\", to: \"azblob://dr-assets\", concurrency: 16 }",
        }
    }

    fn check(&self, with: &Value) -> Vec<Issue> {
        let mut issues = vec![];
        let mut kinds = vec![];
        for key in ["from", "to"] {
            if let Some(url) = with.get(key).and_then(Value::as_str).filter(|u| !u.contains("{{")) {
                match Location::parse(url) {
                    Ok(l) => kinds.push(l),
                    Err(e) => issues.push(Issue::at(key, e).help("e.g. `s3://prod-assets` or `azblob://dr-assets/images`")),
                }
            }
        }
        if let [a, b] = kinds.as_slice() {
            if a.kind == b.kind && a.root == b.root && (a.prefix.starts_with(&b.prefix) || b.prefix.starts_with(&a.prefix)) {
                issues.push(Issue::at("to", format!("`{b}` overlaps `{a}`: a sync into itself")));
            }
        }
        if with.get("concurrency").and_then(Value::as_u64) == Some(0) {
            issues.push(Issue::at("concurrency", "`concurrency` must be at least 1"));
        }
        issues
    }

    fn targets(&self, with: &Value) -> Vec<Target> {
        let to = with.get("to").and_then(Value::as_str).unwrap_or_default();
        super::location_target(to, with.get("azure")).into_iter().collect()
    }
    fn targets_doc(&self) -> &'static str {
        "the destination (`to`) only: its S3 bucket, or its Azure container with the endpoint and account"
    }

    fn plan(&self, with: &Value) -> String {
        let get = |k: &str| with.get(k).and_then(Value::as_str).unwrap_or("?").to_string();
        let delete = if with.get("delete").and_then(Value::as_bool) == Some(true) { ", deleting what the source lacks" } else { "" };
        format!("sync {} → {}{delete}", get("from"), get("to"))
    }

    /// One `storage.sync` span with the counts; each request under it is a span at `debug`
    /// level only ([`telemetry::bulk`]): an `info` filter keeps one span for thousands of objects.
    async fn run(&self, ctx: &ActionCtx, input: StorageSyncInput) -> Result<Value, ActionError> {
        let span = tracing::info_span!(
            "storage.sync",
            storage.from = input.from.as_str(),
            storage.to = input.to.as_str(),
            storage.objects = Empty,
            storage.copied = Empty,
            storage.skipped = Empty,
            storage.deleted = Empty,
            storage.bytes = Empty,
            otel.status_code = Empty,
            "error.type" = Empty,
        );
        let result = telemetry::bulk(sync(ctx, input)).instrument(span.clone()).await;
        let outputs = match &result {
            Ok(o) => Some(o),
            Err(ActionError::Failed { outputs, .. }) => outputs.as_ref(),
            Err(_) => None,
        };
        for (field, key) in [
            ("storage.objects", "objects"),
            ("storage.copied", "copied"),
            ("storage.skipped", "skipped"),
            ("storage.deleted", "deleted"),
            ("storage.bytes", "bytes"),
        ] {
            if let Some(n) = outputs.and_then(|o| o.get(key)).and_then(Value::as_u64) {
                span.record(field, n);
            }
        }
        if let Err(e) = &result {
            telemetry::fail(&span, if matches!(e, ActionError::Cancelled(_)) { "cancelled" } else { "failed" });
        }
        result
    }
}

async fn sync(ctx: &ActionCtx, input: StorageSyncInput) -> Result<Value, ActionError> {
    let started = Instant::now();
    let timeout = input.timeout.map_or(Duration::from_secs(60), Dur::get);
    let from = Side::open(&input.from, &input.s3, &input.azure, timeout).await?;
    let to = Side::open(&input.to, &input.s3, &input.azure, timeout).await?;
    let failed = |message: String| ActionError::Failed { message, outputs: None, retryable: true, before_effect: false };
    to.prepare(ctx).await.map_err(failed)?;
    let lists = futures::future::join(from.list(ctx), to.list(ctx));
    let (src, dst) = tokio::select! {
        r = lists => r,
        _ = ctx.cancel.cancelled() => return Err(ActionError::Cancelled("listing stopped".into())),
    };
    let (src, dst) = (src.map_err(failed)?, dst.map_err(failed)?);
    let total_bytes: u64 = src.values().map(|e| e.size).sum();

    // What is current already.
    let mut todo = Vec::new();
    for (key, s) in &src {
        if !to.has_current(key, s, dst.get(key)).await {
            todo.push((key.clone(), s.clone()));
        }
    }
    let skipped = src.len() - todo.len();
    ctx.log(
        Stream::Info,
        format!("{}: {} objects ({}), {} to copy, {skipped} current", from.at(), src.len(), human(total_bytes), todo.len()),
    );

    let concurrency = input.concurrency.unwrap_or(16).max(1);
    let every = (todo.len() / 10).max(25);
    let (mut copied, mut bytes, mut errors) = (0usize, 0u64, Vec::new());
    type Copy<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = Result<u64, String>> + Send + 'a>>;
    let budget = tokio::sync::Semaphore::new(MEMORY_KIB as usize);
    let jobs: Vec<Copy<'_>> = todo.iter().map(|(key, s)| Box::pin(copy_one(&from, &to, ctx, &budget, key, s)) as Copy<'_>).collect();
    let mut copies = futures::stream::iter(jobs).buffer_unordered(concurrency);
    loop {
        let next = tokio::select! {
            n = copies.next() => n,
            _ = ctx.cancel.cancelled() => {
                return Err(ActionError::Cancelled(format!("sync stopped after {copied} of {} copies; a rerun copies only the rest", todo.len())))
            }
        };
        match next {
            None => break,
            Some(Ok(n)) => {
                copied += 1;
                bytes += n;
                if copied % every == 0 {
                    ctx.log(Stream::Info, format!("copied {copied}/{} ({})", todo.len(), human(bytes)));
                }
            }
            Some(Err(e)) => errors.push(e),
        }
    }
    drop(copies);

    let mut deleted = 0;
    if input.delete {
        for key in dst.keys().filter(|k| !src.contains_key(*k)) {
            to.delete(ctx, key).await.map_err(failed)?;
            deleted += 1;
        }
    }
    let outputs = |verified: Value| {
        json!({
            "from": from.at().to_string(), "to": to.at().to_string(),
            "objects": src.len(), "copied": copied, "skipped": skipped, "deleted": deleted,
            "bytes": bytes, "total_bytes": total_bytes, "verified": verified,
            "duration_ms": started.elapsed().as_millis() as u64,
        })
    };
    if !errors.is_empty() {
        let first: Vec<&str> = errors.iter().take(3).map(String::as_str).collect();
        return Err(ActionError::Failed {
            message: format!("{} of {} copies failed (a retry copies only those): {}", errors.len(), todo.len(), first.join("; ")),
            outputs: Some(outputs(Value::Null)),
            retryable: true,
            before_effect: false,
        });
    }
    let verified = if input.verify.unwrap_or(true) && copied == 0 && deleted == 0 {
        // Nothing was written: the first listing already showed every object current.
        json!(true)
    } else if input.verify.unwrap_or(true) {
        let again = to.list(ctx).await.map_err(failed)?;
        let mut missing = Vec::new();
        for (key, s) in &src {
            if !to.has_current(key, s, again.get(key)).await {
                missing.push(key.as_str());
            }
        }
        if !missing.is_empty() {
            return Err(ActionError::Failed {
                message: format!(
                    "verification: {} of {} objects are missing or differ at {}: {}",
                    missing.len(),
                    src.len(),
                    to.at(),
                    missing[..missing.len().min(5)].join(", ")
                ),
                outputs: Some(outputs(json!(false))),
                retryable: true,
                before_effect: false,
            });
        }
        json!(true)
    } else {
        Value::Null
    };
    ctx.log(Stream::Info, format!("{} → {}: {copied} copied ({}), {skipped} current, {deleted} deleted", from.at(), to.at(), human(bytes)));
    Ok(outputs(verified))
}

/// What all copies of a sync may hold in memory at once, in KiB.
const MEMORY_KIB: u32 = 48 << 10;

/// One object, streamed from one side to the other; its size.
async fn copy_one(from: &Side, to: &Side, ctx: &ActionCtx, budget: &tokio::sync::Semaphore, key: &str, s: &Entry) -> Result<u64, String> {
    let need = to.buffer_bound(s.size).div_ceil(1024).clamp(1, MEMORY_KIB.into()) as u32;
    let _room = budget.acquire_many(need).await.map_err(|e| e.to_string())?;
    let chunks = from.read(key).await?;
    to.write(ctx, key, s.size, chunks, &s.etag, s.md5).await.map(|_| s.size).map_err(|e| format!("{key}: {e}"))
}

fn human(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 30 => format!("{:.1} GiB", b as f64 / (1u64 << 30) as f64),
        b if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / (1u64 << 20) as f64),
        b if b >= 1 << 10 => format!("{:.1} KiB", b as f64 / 1024.0),
        b => format!("{b} B"),
    }
}
