//! `azure_blob.list`: the blobs of a container (under a prefix), every page of them.

use std::num::NonZeroU32;

use azure_core::date::to_rfc3339;
use azure_core::request_options::{MaxResults, Prefix};
use azure_storage_blobs::blob::Blob;
use futures::StreamExt;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use super::session::Session;
use super::settings::AzureSettings;
use super::{check_common, etag, md5_base64, names};
use crate::duration::Dur;
use crate::{ActionCtx, ActionError, ActionInfo, Capabilities, Effect, Field, Issue, Kind, Plugin, Stream};

/// Lists blobs.
pub struct BlobList;

/// `azure_blob.list`'s input.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct BlobListInput {
    /// The container.
    pub container: String,
    /// Only blobs whose names start with this (`backups/2026-11-`).
    #[serde(default)]
    pub prefix: Option<String>,
    /// At most this many blobs (default: all of them).
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub limit: Option<usize>,
    /// How many blobs each request asks for (1–5000; default Azure's 5000).
    #[serde(default)]
    #[schemars(range(min = 1, max = 5000))]
    pub page_size: Option<u32>,
    /// How long each call to Azure may take (default 30s).
    #[serde(default)]
    pub timeout: Option<Dur>,
    /// Which account, and how to authenticate.
    #[serde(flatten)]
    pub azure: AzureSettings,
}

/// A container's blobs, as listed.
pub(crate) struct Listing {
    pub(crate) blobs: Vec<Blob>,
    /// Whether `limit` left some out.
    pub(crate) truncated: bool,
    pub(crate) pages: usize,
}

/// Lists every page (or up to `limit` blobs) under `prefix`.
pub(crate) async fn list_all(
    ctx: &ActionCtx,
    session: &Session,
    container: &str,
    prefix: Option<&str>,
    page_size: Option<u32>,
    limit: Option<usize>,
) -> Result<Listing, ActionError> {
    let mut request = session.container(container).list_blobs();
    if let Some(p) = prefix.filter(|p| !p.is_empty()) {
        request = request.prefix(Prefix::from(p.to_string()));
    }
    if let Some(n) = page_size.and_then(NonZeroU32::new) {
        request = request.max_results(MaxResults::new(n));
    }
    let mut pages = request.into_stream();
    let mut listing = Listing { blobs: vec![], truncated: false, pages: 0 };
    let what = format!("listing container {container}");
    while let Some(page) = session.call_ok(ctx, &what, async { pages.next().await.transpose() }).await? {
        listing.pages += 1;
        let more = page.next_marker.is_some();
        listing.blobs.extend(page.blobs.blobs().cloned());
        if let Some(limit) = limit.filter(|l| listing.blobs.len() >= *l) {
            listing.truncated = listing.blobs.len() > limit || more;
            listing.blobs.truncate(limit);
            break;
        }
    }
    Ok(listing)
}

impl Plugin for BlobList {
    type Input = BlobListInput;
    fn info(&self) -> ActionInfo {
        ActionInfo {
            name: "azure_blob.list",
            summary: "Lists the blobs of an Azure Blob Storage container, under a prefix, following every page.",
            kind: Kind::Plugin,
            outputs: &[
                Field {
                    name: "blobs",
                    doc: "each blob: name, size, etag, last_modified (RFC 3339), content_md5 (base64 or null), content_type",
                },
                Field { name: "count", doc: "how many blobs are listed" },
                Field { name: "total_bytes", doc: "their sizes added up" },
                Field { name: "truncated", doc: "whether `limit` left some out" },
                Field { name: "pages", doc: "how many requests the listing took" },
                Field { name: "container", doc: "the container" },
                Field { name: "prefix", doc: "the prefix asked for, or null" },
            ],
            caps: Capabilities { probe: true, effect: Effect::Read, general: false, spawns: false, network: true },
            example: "dr_backups:\n  uses: azure_blob.list\n  with:\n    connection_string: \"{{ secrets.dr_storage }}\"\n    container: dr-backups\n    prefix: \"postgres/\"",
        }
    }

    fn check(&self, with: &Value) -> Vec<Issue> {
        let mut issues = check_common(with);
        if with.get("limit").and_then(Value::as_u64) == Some(0) {
            issues.push(Issue::at("limit", "`limit` is 0: nothing would be listed").help("leave it out to list every blob"));
        }
        issues
    }

    fn plan(&self, with: &Value) -> String {
        let s = |k: &str| with.get(k).and_then(Value::as_str).unwrap_or("?").to_string();
        let under = with.get("prefix").and_then(Value::as_str).map(|p| format!(" under {p}")).unwrap_or_default();
        format!("list the blobs of Azure container {}{under}", s("container"))
    }

    async fn run(&self, ctx: &ActionCtx, input: BlobListInput) -> Result<Value, ActionError> {
        names::container(&input.container).map_err(ActionError::Input)?;
        if input.page_size.is_some_and(|n| !(1..=5000).contains(&n)) {
            return Err(ActionError::Input("`page_size` is not between 1 and 5000".into()));
        }
        let session = Session::open(&input.azure, input.timeout)?;
        let container = input.container.as_str();
        let listing = list_all(ctx, &session, container, input.prefix.as_deref(), input.page_size, input.limit).await?;
        let total: u64 = listing.blobs.iter().map(|b| b.properties.content_length).sum();
        let blobs: Vec<Value> = listing.blobs.iter().map(blob_json).collect();
        ctx.log(Stream::Info, format!("{container}: {} blobs, {total} bytes, in {} page(s)", blobs.len(), listing.pages));
        Ok(json!({
            "container": container,
            "prefix": input.prefix,
            "count": blobs.len(),
            "total_bytes": total,
            "truncated": listing.truncated,
            "pages": listing.pages,
            "blobs": blobs,
        }))
    }
}

fn blob_json(b: &Blob) -> Value {
    let p = &b.properties;
    json!({
        "name": b.name,
        "size": p.content_length,
        "etag": etag(p.etag.as_ref()),
        "last_modified": to_rfc3339(&p.last_modified),
        "content_md5": p.content_md5.as_ref().map(|m| md5_base64(m.as_slice())),
        "content_type": p.content_type,
    })
}
