//! `s3.put`: writes one object from text or from a file.

use std::path::PathBuf;
use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{S3Settings, etag, failed, guess_content_type, key_problem, multipart, rendered_bucket, str_of, url};
use crate::aws::call;
use crate::duration::Dur;
use crate::{ActionCtx, ActionError, ActionInfo, Capabilities, Effect, Field, Issue, Kind, Plugin, Stream, Target};

/// Writes an S3 object.
pub struct S3Put;

/// `s3.put`'s input.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct S3PutInput {
    /// The bucket's name (`dr-assets`).
    pub bucket: String,
    /// The object's key (`markers/failover.json`).
    pub key: String,
    /// The object's content, as text. Exactly one of `body` and `file`.
    #[serde(default)]
    pub body: Option<String>,
    /// A file to upload, streamed from disk (relative to the directory phoenix runs in). A
    /// file larger than 8 MiB goes up as a multipart upload, four parts at a time (parts
    /// of 8 MiB, larger past 78 GiB; up to S3's 5 TiB).
    #[serde(default)]
    pub file: Option<PathBuf>,
    /// The object's Content-Type. Default: from the key's extension (`.json`, `.yaml`,
    /// `.txt`, `.gz`…), else `text/plain; charset=utf-8` for a `body` and
    /// `application/octet-stream` for a `file`.
    #[serde(default)]
    pub content_type: Option<String>,
    /// How long one request may take (default 5m): the upload, or each part of a multipart
    /// upload.
    #[serde(default)]
    pub timeout: Option<Dur>,
    /// Where and as whom to call S3.
    #[serde(flatten)]
    pub s3: S3Settings,
}

impl Plugin for S3Put {
    type Input = S3PutInput;
    fn info(&self) -> ActionInfo {
        ActionInfo {
            name: "s3.put",
            summary: "Writes one S3 object from text (`body`) or from a file, replacing any object with that key.",
            kind: Kind::Plugin,
            outputs: &[
                Field { name: "url", doc: "`s3://bucket/key`" },
                Field { name: "bucket", doc: "the bucket" },
                Field { name: "key", doc: "the key" },
                Field { name: "size", doc: "the object's size in bytes" },
                Field { name: "etag", doc: "the object's ETag, without quotes (`…-N` for an upload in N parts)" },
                Field { name: "parts", doc: "how many parts it was uploaded in (1: a single request)" },
                Field { name: "version_id", doc: "the new version's id (null unless the bucket is versioned)" },
                Field { name: "content_type", doc: "the Content-Type it was stored with" },
            ],
            caps: Capabilities { probe: false, effect: Effect::Idempotent, general: false, spawns: false, network: true },
            example: "mark_failover:\n  uses: s3.put\n  with:\n    bucket: dr-state\n    key: \"failovers/{{ run.id }}.json\"\n    body: '{\"from\": \"us-east-1\", \"to\": \"eastus\"}'",
        }
    }

    fn check(&self, with: &Value) -> Vec<Issue> {
        let mut issues = super::check(with);
        issues.extend(key_problem(with, "key"));
        let has = |k: &str| with.get(k).is_some_and(|v| !v.is_null());
        match (has("body"), has("file")) {
            (true, true) => {
                issues.push(Issue::at("file", "`body` and `file` are both set").help("upload either text (`body`) or a file (`file`)"))
            }
            (false, false) => {
                issues.push(Issue::at("", "`s3.put` needs `body` or `file`").help("`body: some text`, or `file: path/to/upload`"))
            }
            _ => {}
        }
        issues
    }

    fn targets(&self, with: &Value) -> Vec<Target> {
        super::bucket_target(with)
    }
    fn targets_doc(&self) -> &'static str {
        "the bucket: `S3 bucket NAME`"
    }

    fn plan(&self, with: &Value) -> String {
        let target = url(str_of(with, "bucket"), str_of(with, "key"));
        match with.get("file").and_then(Value::as_str) {
            Some(file) => format!("upload {file} to {target}"),
            None => format!("write text to {target}"),
        }
    }

    async fn run(&self, ctx: &ActionCtx, input: S3PutInput) -> Result<Value, ActionError> {
        rendered_bucket(&input.bucket)?;
        let target = url(&input.bucket, &input.key);
        let unreadable =
            |path: &std::path::Path, e: &dyn std::fmt::Display| ActionError::Input(format!("cannot read {}: {e}", path.display()));
        let (size, default_type) = match (&input.body, &input.file) {
            (Some(text), None) => (text.len() as u64, "text/plain; charset=utf-8"),
            (None, Some(path)) => (tokio::fs::metadata(path).await.map_err(|e| unreadable(path, &e))?.len(), "application/octet-stream"),
            _ => return Err(ActionError::Input("give exactly one of `body` and `file`".into())),
        };
        let content_type = input
            .content_type
            .clone()
            .or_else(|| guess_content_type(&input.key).map(str::to_string))
            .unwrap_or_else(|| default_type.to_string());
        let timeout = input.timeout.map_or(Duration::from_secs(300), Dur::get);
        let client = input.s3.client(timeout).await.map_err(ActionError::Input)?;
        let (etag, version_id, parts) = match &input.file {
            Some(path) if size > multipart::PART => {
                let up = multipart::upload(ctx, &client, (&input.bucket, &input.key), path, size, &content_type).await?;
                (up.etag, up.version_id, up.parts)
            }
            _ => {
                let body = match (&input.body, &input.file) {
                    (Some(text), _) => ByteStream::from(text.clone().into_bytes()),
                    (_, Some(path)) => ByteStream::from_path(path).await.map_err(|e| unreadable(path, &e))?,
                    _ => unreachable!("checked above"),
                };
                let put = client.put_object().bucket(&input.bucket).key(&input.key).content_type(&content_type).body(body).send();
                let out = call(ctx, "the upload", put).await?.map_err(|e| failed(&format!("writing {target}"), &e))?;
                (etag(out.e_tag()), out.version_id().map(str::to_string), 1)
            }
        };
        ctx.log(Stream::Info, format!("wrote {target} ({size} bytes)"));
        Ok(json!({
            "url": target,
            "bucket": input.bucket,
            "key": input.key,
            "size": size,
            "etag": etag,
            "parts": parts,
            "version_id": version_id,
            "content_type": content_type,
        }))
    }
}
