//! `azure_blob.put`: uploads text or a file as a block blob.
//!
//! Up to [`SINGLE_PUT_MAX`] it is one Put Blob with its Content-MD5, which Azure verifies. A
//! larger file goes up in [`BLOCK_SIZE`] blocks, read from disk one at a time (each a call with
//! its own timeout), then one Put Block List that records the whole file's MD5.

use std::path::PathBuf;

use azure_core::date::to_rfc3339;
use azure_storage_blobs::prelude::{BlobBlockType, BlobClient, BlockId, BlockList, Hash};
use md5::{Digest, Md5};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::io::AsyncReadExt;

use super::session::{Session, error_code};
use super::settings::AzureSettings;
use super::{check_common, etag, md5_base64, names, url_of};
use crate::duration::Dur;
use crate::{ActionCtx, ActionError, ActionInfo, Capabilities, Effect, Field, Issue, Kind, Plugin, Stream, Target};

/// Uploads a blob.
pub struct BlobPut;

/// `azure_blob.put`'s input.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct BlobPutInput {
    /// The container (3–63 lowercase letters, digits and hyphens).
    pub container: String,
    /// The blob's name (`reports/failover.json`).
    pub name: String,
    /// The content, as text; or `file`.
    #[serde(default)]
    pub body: Option<String>,
    /// A file to upload instead of `body` (relative to the directory phoenix runs in).
    #[serde(default)]
    pub file: Option<PathBuf>,
    /// The blob's Content-Type (default `text/plain; charset=utf-8` for `body`,
    /// `application/octet-stream` for `file`).
    #[serde(default)]
    pub content_type: Option<String>,
    /// Create the container first when it does not exist (default false).
    #[serde(default)]
    pub create_container: bool,
    /// How long each call to Azure may take (default 30s).
    #[serde(default)]
    pub timeout: Option<Dur>,
    /// Which account, and how to authenticate.
    #[serde(flatten)]
    pub azure: AzureSettings,
}

/// The largest upload sent as one request.
const SINGLE_PUT_MAX: u64 = 8 * 1024 * 1024;
/// The size of each block of a larger file.
const BLOCK_SIZE: usize = 4 * 1024 * 1024;

/// What was uploaded, as Azure acknowledged it.
struct Uploaded {
    etag: String,
    last_modified: String,
    md5: [u8; 16],
    size: u64,
    blocks: usize,
}

impl Plugin for BlobPut {
    type Input = BlobPutInput;
    fn info(&self) -> ActionInfo {
        ActionInfo {
            name: "azure_blob.put",
            summary: "Uploads text or a file to an Azure Blob Storage container (a block blob; an existing blob is replaced).",
            kind: Kind::Plugin,
            outputs: &[
                Field { name: "container", doc: "the container" },
                Field { name: "name", doc: "the blob's name" },
                Field { name: "url", doc: "the blob's URL (without any SAS)" },
                Field { name: "size", doc: "bytes uploaded" },
                Field { name: "etag", doc: "the new blob's ETag" },
                Field { name: "last_modified", doc: "when Azure stored it (RFC 3339)" },
                Field { name: "content_md5", doc: "the content's MD5, base64, as Azure shows it" },
                Field { name: "container_created", doc: "whether `create_container` created the container" },
            ],
            caps: Capabilities { probe: false, effect: Effect::Idempotent, general: false, spawns: false, network: true },
            example: "save_report:\n  uses: azure_blob.put\n  with:\n    connection_string: \"{{ secrets.dr_storage }}\"\n    container: dr-reports\n    name: \"failover/{{ run.id }}.json\"\n    body: \"{{ steps.verify.outputs.body }}\"\n    content_type: application/json\n    create_container: true",
        }
    }

    fn check(&self, with: &Value) -> Vec<Issue> {
        let mut issues = check_common(with);
        let has = |k: &str| with.get(k).is_some_and(|v| !v.is_null());
        match (has("body"), has("file")) {
            (true, true) => issues.push(Issue::at("file", "`azure_blob.put` takes `body` or `file`, not both")),
            (false, false) => issues.push(Issue::at("", "`azure_blob.put` needs `body` (text) or `file` (a path)")),
            _ => {}
        }
        if let Some(Err(e)) = with.get("name").and_then(Value::as_str).map(|n| names::blob("name", n)) {
            issues.push(Issue::at("name", e));
        }
        issues
    }

    fn targets(&self, with: &Value) -> Vec<Target> {
        super::container_target(with)
    }
    fn targets_doc(&self) -> &'static str {
        "the container, with the endpoint's host and the account the settings resolve to"
    }

    fn plan(&self, with: &Value) -> String {
        let s = |k: &str| with.get(k).and_then(Value::as_str).unwrap_or("?").to_string();
        let what = with.get("file").and_then(Value::as_str).map_or("text".to_string(), |f| format!("file {f}"));
        let create = if with.get("create_container").and_then(Value::as_bool) == Some(true) { " (creating it if missing)" } else { "" };
        format!("upload {what} as blob {} to Azure container {}{create}", s("name"), s("container"))
    }

    async fn run(&self, ctx: &ActionCtx, input: BlobPutInput) -> Result<Value, ActionError> {
        names::container(&input.container).map_err(ActionError::Input)?;
        names::blob("name", &input.name).map_err(ActionError::Input)?;
        let session = Session::open(&input.azure, input.timeout)?;
        let (container, name) = (input.container.as_str(), input.name.as_str());

        let mut container_created = false;
        if input.create_container {
            let what = format!("creating container {container}");
            match session.call(ctx, &what, session.container(container).create().into_future()).await? {
                Ok(_) => container_created = true,
                Err(e) if error_code(&e) == Some("ContainerAlreadyExists") => {}
                Err(e) => return Err(session.failed(&what, &e)),
            }
        }

        let blob = session.container(container).blob_client(name);
        let what = format!("uploading blob {name} to container {container}");
        let uploaded = match (&input.body, &input.file) {
            (Some(body), None) => {
                let ct = input.content_type.as_deref().unwrap_or("text/plain; charset=utf-8");
                put_whole(ctx, &session, &blob, &what, body.clone().into_bytes(), ct).await
            }
            (None, Some(file)) => {
                let ct = input.content_type.as_deref().unwrap_or("application/octet-stream");
                put_file(ctx, &session, &blob, &what, file, ct).await
            }
            _ => Err(ActionError::Input("`azure_blob.put` takes one of `body` (text) and `file` (a path)".into())),
        }
        .map_err(|e| explain_missing_container(e, container, input.create_container))?;

        let how = if uploaded.blocks == 0 { "in one request".to_string() } else { format!("in {} blocks", uploaded.blocks) };
        ctx.log(Stream::Info, format!("uploaded {} bytes to {container}/{name} {how}", uploaded.size));
        Ok(json!({
            "container": container,
            "name": name,
            "url": url_of(&blob),
            "size": uploaded.size,
            "etag": etag(&uploaded.etag),
            "last_modified": uploaded.last_modified,
            "content_md5": md5_base64(&uploaded.md5),
            "container_created": container_created,
        }))
    }
}

/// A missing container is named as such, with the way out; it will not appear on a retry.
fn explain_missing_container(e: ActionError, container: &str, create: bool) -> ActionError {
    match e {
        ActionError::Failed { message, outputs, before_effect, .. } if message.contains("failed: 404 ContainerNotFound") && !create => {
            ActionError::Failed {
                message: format!("{message} (container {container} does not exist: create it, or set `create_container: true`)"),
                outputs,
                retryable: false,
                before_effect,
            }
        }
        other => other,
    }
}

/// One Put Blob with the content's MD5, which Azure checks.
async fn put_whole(
    ctx: &ActionCtx,
    session: &Session,
    blob: &BlobClient,
    what: &str,
    bytes: Vec<u8>,
    ct: &str,
) -> Result<Uploaded, ActionError> {
    let md5: [u8; 16] = Md5::digest(&bytes).into();
    let size = bytes.len() as u64;
    let put = blob.put_block_blob(bytes).content_type(ct.to_string()).hash(Hash::MD5(md5));
    let r = session.call_ok(ctx, what, put.into_future()).await?;
    Ok(Uploaded { etag: r.etag, last_modified: to_rfc3339(&r.last_modified), md5, size, blocks: 0 })
}

async fn put_file(
    ctx: &ActionCtx,
    session: &Session,
    blob: &BlobClient,
    what: &str,
    path: &PathBuf,
    ct: &str,
) -> Result<Uploaded, ActionError> {
    let cannot = |e: std::io::Error| ActionError::Input(format!("cannot read `file` {}: {e}", path.display()));
    let mut file = tokio::fs::File::open(path).await.map_err(cannot)?;
    let size = file.metadata().await.map_err(cannot)?.len();
    if size <= SINGLE_PUT_MAX {
        let mut bytes = Vec::with_capacity(size as usize);
        file.read_to_end(&mut bytes).await.map_err(cannot)?;
        return put_whole(ctx, session, blob, what, bytes, ct).await;
    }
    let mut md5 = Md5::new();
    let mut blocks = BlockList::default();
    let mut sent = 0u64;
    loop {
        let mut chunk = Vec::with_capacity(BLOCK_SIZE);
        (&mut file).take(BLOCK_SIZE as u64).read_to_end(&mut chunk).await.map_err(cannot)?;
        if chunk.is_empty() {
            break;
        }
        md5.update(&chunk);
        sent += chunk.len() as u64;
        // Block ids of one blob must all have the same length.
        let id = BlockId::new(format!("phoenix-{:06}", blocks.blocks.len()).into_bytes());
        let part = format!("{what} (block {} at byte {})", blocks.blocks.len() + 1, sent - chunk.len() as u64);
        session.call_ok(ctx, &part, blob.put_block(id.clone(), chunk).into_future()).await?;
        blocks.blocks.push(BlobBlockType::new_uncommitted(id));
    }
    let md5: [u8; 16] = md5.finalize().into();
    let n = blocks.blocks.len();
    let commit = blob.put_block_list(blocks).content_type(ct.to_string()).content_md5(md5);
    let r = session.call_ok(ctx, &format!("{what} (committing {n} blocks)"), commit.into_future()).await?;
    Ok(Uploaded { etag: r.etag, last_modified: to_rfc3339(&r.last_modified), md5, size: sent, blocks: n })
}
