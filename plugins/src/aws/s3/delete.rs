//! `s3.delete`: deletes listed keys, or every object under a prefix, 1000 per request.

use std::time::Duration;

use aws_sdk_s3::types::{Delete, ObjectIdentifier};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{S3Settings, failed, rendered_bucket, str_of, url};
use crate::aws::call;
use crate::duration::Dur;
use crate::{ActionCtx, ActionError, ActionInfo, At, Capabilities, Effect, Field, Issue, Kind, Plugin, Stream, Target};

/// Deletes S3 objects.
pub struct S3Delete;

/// `s3.delete`'s input.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct S3DeleteInput {
    /// The bucket's name.
    pub bucket: String,
    /// These keys. Exactly one of `keys` and `prefix`.
    #[serde(default)]
    pub keys: Option<Vec<String>>,
    /// Every object whose key starts with this (not empty: a whole bucket is not emptied by
    /// accident).
    #[serde(default)]
    pub prefix: Option<String>,
    /// How long each request may take (default 10s).
    #[serde(default)]
    pub timeout: Option<Dur>,
    /// Where and as whom to call S3.
    #[serde(flatten)]
    pub s3: S3Settings,
}

/// S3's most keys in one DeleteObjects request.
const BATCH: usize = 1000;

impl Plugin for S3Delete {
    type Input = S3DeleteInput;
    fn info(&self) -> ActionInfo {
        ActionInfo {
            name: "s3.delete",
            summary: "Deletes the listed `keys`, or every object under a `prefix`, in batches of 1000; a key that is not there counts as deleted.",
            kind: Kind::Plugin,
            outputs: &[
                Field { name: "deleted", doc: "how many keys were deleted (S3 does not say which of them existed)" },
                Field { name: "errors", doc: "keys S3 refused to delete: key, code, message (the step fails when there are any)" },
                Field { name: "url", doc: "`s3://bucket/` or `s3://bucket/prefix`" },
            ],
            caps: Capabilities { probe: false, effect: Effect::Idempotent, general: false, spawns: false, network: true },
            example: "clean_staging:\n  uses: s3.delete\n  with: { bucket: dr-staging, prefix: \"restore/{{ run.id }}/\" }",
        }
    }

    fn check(&self, with: &Value) -> Vec<Issue> {
        let mut issues = super::check(with);
        let has = |k: &str| with.get(k).is_some_and(|v| !v.is_null());
        match (has("keys"), has("prefix")) {
            (true, true) => {
                issues.push(Issue::at("prefix", "`keys` and `prefix` are both set").help("delete either listed keys or a prefix"))
            }
            (false, false) => {
                issues.push(Issue::at("", "`s3.delete` needs `keys` or `prefix`").help("`keys: [a.json, b.json]`, or `prefix: staging/`"))
            }
            _ => {}
        }
        if let Some(keys) = with.get("keys").and_then(Value::as_array) {
            if keys.is_empty() {
                issues.push(Issue::at("keys", "`keys` is an empty list: nothing would be deleted"));
            }
            for (i, k) in keys.iter().enumerate() {
                if k.as_str() == Some("") {
                    let mut issue = Issue::at("keys", "an empty key");
                    issue.at.push(At::Index(i));
                    issues.push(issue);
                }
            }
        }
        if with.get("prefix").and_then(Value::as_str) == Some("") {
            issues.push(empty_prefix());
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
        let bucket = str_of(with, "bucket");
        match (with.get("keys"), with.get("prefix").and_then(Value::as_str)) {
            (Some(Value::Array(keys)), _) => format!("delete {} keys from {}", keys.len(), url(bucket, "")),
            (_, Some(prefix)) => format!("delete every object under {}", url(bucket, prefix)),
            _ => format!("delete objects from {}", url(bucket, "")),
        }
    }

    async fn run(&self, ctx: &ActionCtx, input: S3DeleteInput) -> Result<Value, ActionError> {
        rendered_bucket(&input.bucket)?;
        let timeout = input.timeout.map_or(Duration::from_secs(10), Dur::get);
        let client = input.s3.client(timeout).await.map_err(ActionError::Input)?;
        let bucket = input.bucket.as_str();
        let (keys, target) = match (input.keys, input.prefix) {
            (Some(keys), None) => (keys, url(bucket, "")),
            (None, Some(prefix)) if prefix.is_empty() => return Err(ActionError::Input(empty_prefix().message)),
            (None, Some(prefix)) => {
                let target = url(bucket, &prefix);
                let mut pages = client.list_objects_v2().bucket(bucket).prefix(&prefix).into_paginator().send();
                let mut keys = Vec::new();
                while let Some(page) = call(ctx, "listing", pages.next()).await? {
                    let page = page.map_err(|e| failed(&format!("listing {target}"), &e))?;
                    keys.extend(page.contents().iter().filter_map(|o| o.key().map(str::to_string)));
                }
                ctx.log(Stream::Info, format!("{} objects under {target}", keys.len()));
                (keys, target)
            }
            _ => return Err(ActionError::Input("give exactly one of `keys` and `prefix`".into())),
        };
        let (mut deleted, mut errors) = (0usize, Vec::new());
        for batch in keys.chunks(BATCH) {
            let objects = batch
                .iter()
                .map(|k| ObjectIdentifier::builder().key(k).build())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| ActionError::Input(e.to_string()))?;
            let delete = Delete::builder().set_objects(Some(objects)).quiet(true).build().map_err(|e| ActionError::Input(e.to_string()))?;
            let sent = client.delete_objects().bucket(bucket).delete(delete).send();
            let out = call(ctx, "deleting", sent).await?.map_err(|e| {
                let mut err = failed(&format!("deleting from {target}"), &e);
                if let ActionError::Failed { outputs, .. } = &mut err {
                    *outputs = Some(json!({ "url": target, "deleted": deleted, "errors": [] }));
                }
                err
            })?;
            // Quiet mode: S3 names only the keys it could not delete.
            let refused = out.errors();
            deleted += batch.len() - refused.len();
            errors.extend(refused.iter().map(|e| json!({ "key": e.key(), "code": e.code(), "message": e.message() })));
        }
        ctx.log(Stream::Info, format!("deleted {deleted} keys from {target}"));
        let outputs = json!({ "url": target, "deleted": deleted, "errors": errors });
        if !errors.is_empty() {
            let first = &errors[0];
            return Err(ActionError::Failed {
                message: format!(
                    "S3 refused to delete {} keys from {target}, e.g. {}: {}: {}",
                    errors.len(),
                    first["key"].as_str().unwrap_or("?"),
                    first["code"].as_str().unwrap_or("?"),
                    first["message"].as_str().unwrap_or("")
                ),
                outputs: Some(outputs),
                retryable: true,
                before_effect: false,
            });
        }
        Ok(outputs)
    }
}

fn empty_prefix() -> Issue {
    Issue::at("prefix", "`prefix` is empty: every object in the bucket would be deleted")
        .help("name a prefix (`staging/`), or list the keys in `keys`")
}
