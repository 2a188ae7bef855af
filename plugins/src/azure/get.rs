//! `azure_blob.get`: reads a blob's properties, and its content as text or into a file.
//!
//! The properties come first (one HEAD); the content is then read only if it is wanted: into
//! `file` chunk by chunk, or as `body` when it is small enough to be a step output. The
//! content is read with `If-Match` on the ETag just seen, so a blob replaced in between fails
//! the attempt instead of mixing two versions.

use std::path::{Path, PathBuf};

use azure_core::Pageable;
use azure_core::date::to_rfc3339;
use azure_core::request_options::IfMatchCondition;
use azure_storage_blobs::blob::Blob;
use azure_storage_blobs::blob::operations::GetBlobResponse;
use azure_storage_blobs::prelude::BlobClient;
use bytes::Bytes;
use futures::StreamExt;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

use super::session::Session;
use super::settings::AzureSettings;
use super::{check_common, etag, md5_base64, names, url_of};
use crate::duration::Dur;
use crate::{ActionCtx, ActionError, ActionInfo, Capabilities, Effect, Field, Issue, Kind, Plugin, Stream};

/// Reads a blob.
pub struct BlobGet;

/// `azure_blob.get`'s input.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct BlobGetInput {
    /// The container.
    pub container: String,
    /// The blob's name.
    pub name: String,
    /// Write the content to this file (relative to the directory phoenix runs in; its
    /// directory is created) instead of the `body` output; a partial download never replaces it.
    #[serde(default)]
    pub file: Option<PathBuf>,
    /// How long each call to Azure may take (default 30s).
    #[serde(default)]
    pub timeout: Option<Dur>,
    /// Which account, and how to authenticate.
    #[serde(flatten)]
    pub azure: AzureSettings,
}

/// The largest content given as the `body` output.
const MAX_BODY: u64 = 1024 * 1024;
/// How much one request downloads into a file.
const CHUNK: u64 = 4 * 1024 * 1024;

impl Plugin for BlobGet {
    type Input = BlobGetInput;
    fn info(&self) -> ActionInfo {
        ActionInfo {
            name: "azure_blob.get",
            summary: "Reads a blob from Azure Blob Storage: its properties, and its content as text (up to 1 MiB) or into a file.",
            kind: Kind::Plugin,
            outputs: &[
                Field { name: "body", doc: "the content as text when it is UTF-8 and at most 1 MiB and no `file` is given, else null" },
                Field { name: "file", doc: "the file the content was written to, or null" },
                Field { name: "size", doc: "the blob's size in bytes" },
                Field { name: "etag", doc: "the blob's ETag" },
                Field { name: "content_type", doc: "its Content-Type" },
                Field { name: "content_md5", doc: "its Content-MD5 (base64), or null when Azure has none" },
                Field { name: "last_modified", doc: "when it last changed (RFC 3339)" },
                Field { name: "container", doc: "the container" },
                Field { name: "name", doc: "the blob's name" },
                Field { name: "url", doc: "the blob's URL (without any SAS)" },
            ],
            caps: Capabilities { probe: true, effect: Effect::Read, general: false, spawns: false, network: true },
            example: "read_marker:\n  uses: azure_blob.get\n  with:\n    connection_string: \"{{ secrets.dr_storage }}\"\n    container: dr-assets\n    name: replication/last-sync.json",
        }
    }

    fn check(&self, with: &Value) -> Vec<Issue> {
        let mut issues = check_common(with);
        if let Some(Err(e)) = with.get("name").and_then(Value::as_str).map(|n| names::blob("name", n)) {
            issues.push(Issue::at("name", e));
        }
        issues
    }

    fn plan(&self, with: &Value) -> String {
        let s = |k: &str| with.get(k).and_then(Value::as_str).unwrap_or("?").to_string();
        let into = with.get("file").and_then(Value::as_str).map(|f| format!(" into {f}")).unwrap_or_default();
        format!("read blob {} from Azure container {}{into}", s("name"), s("container"))
    }

    async fn run(&self, ctx: &ActionCtx, input: BlobGetInput) -> Result<Value, ActionError> {
        names::container(&input.container).map_err(ActionError::Input)?;
        names::blob("name", &input.name).map_err(ActionError::Input)?;
        let session = Session::open(&input.azure, input.timeout)?;
        let (container, name) = (input.container.as_str(), input.name.as_str());
        let blob = session.container(container).blob_client(name);
        let what = format!("reading blob {name} in container {container}");

        let props = session.call_ok(ctx, &what, blob.get_properties().into_future()).await?.blob;
        let size = props.properties.content_length;
        let mut body = Value::Null;
        if let Some(file) = &input.file {
            download(ctx, &session, &blob, &props, &what, file).await?;
            ctx.log(Stream::Info, format!("wrote {size} bytes of {container}/{name} to {}", file.display()));
        } else if size == 0 {
            body = json!("");
        } else if size <= MAX_BODY {
            let bytes = read_all(ctx, &session, &blob, &props, &what).await?;
            match String::from_utf8(bytes) {
                Ok(text) => body = json!(text),
                Err(_) => ctx.log(Stream::Info, format!("{container}/{name} is not UTF-8 text: `body` is null (use `file`)")),
            }
        } else {
            ctx.log(Stream::Info, format!("{container}/{name} has {size} bytes, more than 1 MiB: `body` is null (use `file`)"));
        }
        let p = &props.properties;
        Ok(json!({
            "container": container,
            "name": name,
            "url": url_of(&blob),
            "body": body,
            "file": input.file.as_ref().map(|f| f.display().to_string()),
            "size": size,
            "etag": etag(p.etag.as_ref()),
            "content_type": p.content_type,
            "content_md5": p.content_md5.as_ref().map(|m| md5_base64(m.as_slice())),
            "last_modified": to_rfc3339(&p.last_modified),
        }))
    }
}

/// The content of the blob version `props` describes, one chunk of [`CHUNK`] per call.
struct Chunks<'a> {
    ctx: &'a ActionCtx,
    session: &'a Session,
    what: &'a str,
    pages: Pageable<GetBlobResponse, azure_core::Error>,
}

impl<'a> Chunks<'a> {
    fn new(ctx: &'a ActionCtx, session: &'a Session, blob: &BlobClient, props: &Blob, what: &'a str) -> Self {
        let current = IfMatchCondition::Match(props.properties.etag.to_string());
        Chunks { ctx, session, what, pages: blob.get().if_match(current).chunk_size(CHUNK).into_stream() }
    }

    async fn next(&mut self) -> Result<Option<Bytes>, ActionError> {
        let pages = &mut self.pages;
        let Some(page) = self.session.call_ok(self.ctx, self.what, async { pages.next().await.transpose() }).await? else {
            return Ok(None);
        };
        Ok(Some(self.session.call_ok(self.ctx, self.what, page.data.collect()).await?))
    }
}

async fn read_all(ctx: &ActionCtx, session: &Session, blob: &BlobClient, props: &Blob, what: &str) -> Result<Vec<u8>, ActionError> {
    let mut all = Vec::with_capacity(props.properties.content_length as usize);
    let mut chunks = Chunks::new(ctx, session, blob, props, what);
    while let Some(b) = chunks.next().await? {
        all.extend_from_slice(&b);
    }
    Ok(all)
}

/// Downloads into `file` through `file.partial`, renamed into place only when complete.
async fn download(ctx: &ActionCtx, session: &Session, blob: &BlobClient, props: &Blob, what: &str, file: &Path) -> Result<(), ActionError> {
    let partial = {
        let mut p = file.as_os_str().to_owned();
        p.push(".partial");
        PathBuf::from(p)
    };
    let cannot = |e: std::io::Error| ActionError::Failed {
        message: format!("cannot write `file` {}: {e}", file.display()),
        outputs: None,
        retryable: false,
        before_effect: false,
    };
    if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
        tokio::fs::create_dir_all(dir).await.map_err(cannot)?;
    }
    let mut out = tokio::fs::File::create(&partial).await.map_err(cannot)?;
    let result = async {
        if props.properties.content_length > 0 {
            let mut chunks = Chunks::new(ctx, session, blob, props, what);
            while let Some(b) = chunks.next().await? {
                out.write_all(&b).await.map_err(cannot)?;
            }
        }
        out.flush().await.map_err(cannot)?;
        out.sync_all().await.map_err(cannot)?;
        tokio::fs::rename(&partial, file).await.map_err(cannot)
    }
    .await;
    if result.is_err() {
        let _ = tokio::fs::remove_file(&partial).await;
    }
    result
}
