//! `s3.get`: reads one object, as text into the outputs or streamed into a file.

use std::path::{Path, PathBuf};
use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

use super::{S3Settings, etag, failed, key_problem, rendered_bucket, str_of, time, url};
use crate::aws::call;
use crate::duration::Dur;
use crate::{ActionCtx, ActionError, ActionInfo, Capabilities, Effect, Field, Issue, Kind, Plugin, Stream};

/// Reads an S3 object.
pub struct S3Get;

/// `s3.get`'s input.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct S3GetInput {
    /// The bucket's name.
    pub bucket: String,
    /// The object's key.
    pub key: String,
    /// Download the object into this file (relative to the directory phoenix runs in) instead
    /// of into the `body` output; its directory is created, and it appears whole or not at all.
    #[serde(default)]
    pub file: Option<PathBuf>,
    /// How long the download may take (default 5m).
    #[serde(default)]
    pub timeout: Option<Dur>,
    /// Where and as whom to call S3.
    #[serde(flatten)]
    pub s3: S3Settings,
}

/// The largest body given as text in the outputs (they are stored with the run).
const MAX_TEXT: u64 = 1024 * 1024;

impl Plugin for S3Get {
    type Input = S3GetInput;
    fn info(&self) -> ActionInfo {
        ActionInfo {
            name: "s3.get",
            summary: "Reads one S3 object: its body as text (UTF-8, up to 1 MiB) in the outputs, or streamed into a `file`.",
            kind: Kind::Plugin,
            outputs: &[
                Field { name: "body", doc: "the content as text; null when it is over 1 MiB or not UTF-8, or when `file` is set" },
                Field { name: "size", doc: "the object's size in bytes" },
                Field { name: "etag", doc: "the object's ETag, without quotes" },
                Field { name: "content_type", doc: "the object's Content-Type" },
                Field { name: "last_modified", doc: "when it was last written (RFC 3339)" },
                Field { name: "version_id", doc: "the version read (null unless the bucket is versioned)" },
                Field { name: "file", doc: "the file written (null without `file`)" },
                Field { name: "url", doc: "`s3://bucket/key`" },
            ],
            caps: Capabilities { probe: true, effect: Effect::Read, general: false, spawns: false, network: true },
            example: "read_marker:\n  uses: s3.get\n  with: { bucket: dr-state, key: markers/last-failover.json }",
        }
    }

    fn check(&self, with: &Value) -> Vec<Issue> {
        let mut issues = super::check(with);
        issues.extend(key_problem(with, "key"));
        issues
    }

    fn plan(&self, with: &Value) -> String {
        let source = url(str_of(with, "bucket"), str_of(with, "key"));
        match with.get("file").and_then(Value::as_str) {
            Some(file) => format!("download {source} to {file}"),
            None => format!("read {source}"),
        }
    }

    async fn run(&self, ctx: &ActionCtx, input: S3GetInput) -> Result<Value, ActionError> {
        rendered_bucket(&input.bucket)?;
        let source = url(&input.bucket, &input.key);
        let timeout = input.timeout.map_or(Duration::from_secs(300), Dur::get);
        let client = input.s3.client(timeout).await.map_err(ActionError::Input)?;
        let mut out = call(ctx, "the download", client.get_object().bucket(&input.bucket).key(&input.key).send())
            .await?
            .map_err(|e| failed(&format!("reading {source}"), &e))?;
        let length = out.content_length().map(|n| n.max(0) as u64);
        let mut outputs = json!({
            "url": source,
            "bucket": input.bucket,
            "key": input.key,
            "size": length,
            "etag": etag(out.e_tag()),
            "content_type": out.content_type(),
            "last_modified": time(out.last_modified()),
            "version_id": out.version_id(),
            "body": null,
            "file": null,
        });
        let body = std::mem::take(&mut out.body);
        if let Some(path) = &input.file {
            let written = call(ctx, "the download", download(body, path)).await?.map_err(|e| ActionError::Failed {
                message: format!("downloading {source} to {} failed: {e}", path.display()),
                outputs: None,
                retryable: true,
                before_effect: false,
            })?;
            outputs["size"] = written.into();
            outputs["file"] = path.display().to_string().into();
            ctx.log(Stream::Info, format!("downloaded {source} to {} ({written} bytes)", path.display()));
            return Ok(outputs);
        }
        if length.is_some_and(|n| n > MAX_TEXT) {
            ctx.log(
                Stream::Info,
                format!("{source} is {} bytes, over 1 MiB: `body` is null (set `file` to download it)", length.unwrap_or(0)),
            );
            return Ok(outputs);
        }
        let bytes = call(ctx, "the download", read_bounded(body))
            .await?
            .map_err(|e| ActionError::failed(format!("reading {source} failed: {e}")))?;
        match bytes {
            Some(bytes) => {
                outputs["size"] = bytes.len().into();
                match String::from_utf8(bytes) {
                    Ok(text) => {
                        ctx.log(Stream::Info, format!("read {source} ({} bytes)", text.len()));
                        outputs["body"] = text.into();
                    }
                    Err(e) => ctx.log(Stream::Info, format!("{source} is not UTF-8 text: `body` is null (set `file` to download it): {e}")),
                }
            }
            None => ctx.log(Stream::Info, format!("{source} is over 1 MiB: `body` is null (set `file` to download it)")),
        }
        Ok(outputs)
    }
}

/// The whole body, or None when it passes [`MAX_TEXT`].
async fn read_bounded(mut body: ByteStream) -> Result<Option<Vec<u8>>, String> {
    let mut bytes = Vec::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| e.to_string())?;
        if (bytes.len() + chunk.len()) as u64 > MAX_TEXT {
            return Ok(None);
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(Some(bytes))
}

/// Streams the body into `<path>.partial`, then renames it to `path`; the bytes written. A
/// download that fails or is stopped leaves no partial file behind.
async fn download(mut body: ByteStream, path: &Path) -> Result<u64, String> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        tokio::fs::create_dir_all(dir).await.map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let mut partial = path.as_os_str().to_owned();
    partial.push(".partial");
    let partial = Partial(PathBuf::from(partial));
    let name = partial.0.display();
    let mut file = tokio::fs::File::create(&partial.0).await.map_err(|e| format!("cannot create {name}: {e}"))?;
    let mut written = 0u64;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| e.to_string())?;
        file.write_all(&chunk).await.map_err(|e| format!("cannot write {name}: {e}"))?;
        written += chunk.len() as u64;
    }
    file.sync_all().await.map_err(|e| format!("cannot write {name}: {e}"))?;
    tokio::fs::rename(&partial.0, path).await.map_err(|e| format!("cannot rename {name} to {}: {e}", path.display()))?;
    Ok(written)
}

/// A download in progress: removed when dropped (after the rename there is nothing to remove).
struct Partial(PathBuf);

impl Drop for Partial {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
