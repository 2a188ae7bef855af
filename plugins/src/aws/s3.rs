//! `s3.*`: objects in Amazon S3 (or anything that speaks its API: moto, MinIO, LocalStack).
//!
//! Every S3 action takes [`S3Settings`]: the shared AWS settings plus the addressing style.
//! Buckets are named alone (`prod-assets`, not `s3://prod-assets`); keys are full keys.

mod delete;
mod get;
mod list;
mod multipart;
mod put;

pub use delete::{S3Delete, S3DeleteInput};
pub use get::{S3Get, S3GetInput};
pub use list::{S3List, S3ListInput};
pub use put::{S3Put, S3PutInput};

pub(crate) use multipart::MultipartUpload;

use std::time::Duration;

use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

use super::describe;
use super::settings::{self, AwsSettings};
use crate::{ActionError, Issue, Target};

/// Where and as whom to call S3, and how to address a bucket.
#[derive(Debug, Default, Clone, Deserialize, JsonSchema)]
pub struct S3Settings {
    /// Address buckets in the path (`http://host/bucket/key`) instead of the host name
    /// (`http://bucket.host/key`). Default: true when an endpoint URL is set (in `with`,
    /// `AWS_ENDPOINT_URL` or `AWS_ENDPOINT_URL_S3`: moto, MinIO and LocalStack need it), else false.
    #[serde(default)]
    pub force_path_style: Option<bool>,
    /// Where and as whom to call AWS.
    #[serde(flatten)]
    pub aws: AwsSettings,
}

impl S3Settings {
    /// An S3 client; `timeout` bounds each call.
    pub(crate) async fn client(&self, timeout: Duration) -> Result<aws_sdk_s3::Client, String> {
        let config = self.aws.load(timeout).await?;
        // aws-config reads `AWS_ENDPOINT_URL` into the shared config; the S3-only variable is
        // read by the S3 client itself, so it is looked at here.
        let custom_endpoint = config.endpoint_url().is_some() || std::env::var_os("AWS_ENDPOINT_URL_S3").is_some_and(|v| !v.is_empty());
        let path_style = self.force_path_style.unwrap_or(custom_endpoint);
        let s3 = aws_sdk_s3::config::Builder::from(&config).force_path_style(path_style).interceptor(super::traced::Traced).build();
        Ok(aws_sdk_s3::Client::from_conf(s3))
    }
}

/// `s3://bucket/key`, for messages and outputs.
pub(crate) fn url(bucket: &str, key: &str) -> String {
    format!("s3://{bucket}/{key}")
}

/// An ETag without the quotes S3 wraps it in.
fn etag(tag: Option<&str>) -> Option<String> {
    tag.map(|t| t.trim_matches('"').to_string())
}

/// A timestamp as RFC 3339 text.
fn time(t: Option<&aws_sdk_s3::primitives::DateTime>) -> Value {
    t.and_then(|t| t.fmt(aws_sdk_s3::primitives::DateTimeFormat::DateTime).ok()).map_or(Value::Null, Value::String)
}

/// A failed S3 call: what was being done, and the service's answer. An answer that names
/// something missing (no such bucket or key) or refused will not change on a retry.
fn failed<E, R>(what: &str, e: &SdkError<E, R>) -> ActionError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    let permanent = matches!(e.code(), Some("NoSuchBucket" | "NoSuchKey" | "AccessDenied" | "InvalidBucketName" | "InvalidArgument"));
    // A request that could not be built, or a connection never made, sent nothing.
    let before_effect = match e {
        SdkError::ConstructionFailure(_) => true,
        SdkError::DispatchFailure(_) => crate::action_error::never_connected(e),
        _ => false,
    };
    ActionError::Failed { message: format!("{what} failed: {}", describe(e)), outputs: None, retryable: !permanent, before_effect }
}

/// A text input for a plan, `?` when it is missing.
fn str_of<'a>(with: &'a Value, key: &str) -> &'a str {
    with.get(key).and_then(Value::as_str).unwrap_or("?")
}

/// A literal text input (not a template).
fn literal<'a>(with: &'a Value, key: &str) -> Option<&'a str> {
    with.get(key).and_then(Value::as_str).filter(|s| !s.contains("{{"))
}

/// The checks every S3 action shares: the AWS settings and the bucket's name.
fn check(with: &Value) -> Vec<Issue> {
    let mut issues = settings::check(with);
    if let Some(bucket) = literal(with, "bucket") {
        if let Some(problem) = bucket_problem(bucket) {
            issues.push(problem);
        }
    }
    issues
}

/// What is wrong with a bucket's name, if anything (also for a rendered one).
fn bucket_problem(bucket: &str) -> Option<Issue> {
    if bucket.trim().is_empty() {
        return Some(Issue::at("bucket", "`bucket` is empty").help("name the bucket, e.g. `dr-assets`"));
    }
    if let Some(rest) = bucket.strip_prefix("s3://") {
        let name = rest.split('/').next().unwrap_or_default();
        return Some(
            Issue::at("bucket", format!("`bucket` is a URL (`{bucket}`): write the bucket's name alone"))
                .help(format!("`bucket: {name}`, and the rest of the path in `key` or `prefix`")),
        );
    }
    if bucket.contains('/') {
        return Some(
            Issue::at("bucket", format!("`{bucket}` is not a bucket name: it holds a `/`")).help("put the path in `key` or `prefix`"),
        );
    }
    None
}

/// The bucket a put or a delete changes, from its rendered `with`.
fn bucket_target(with: &Value) -> Vec<Target> {
    with.get("bucket").and_then(Value::as_str).filter(|b| !b.trim().is_empty()).map(Target::s3_bucket).into_iter().collect()
}

/// A key that must not be empty.
fn key_problem(with: &Value, field: &str) -> Option<Issue> {
    let key = with.get(field)?.as_str()?;
    key.is_empty().then(|| Issue::at(field, format!("`{field}` is empty")).help("give the object's full key, e.g. `backups/db.dump`"))
}

/// Checks the rendered bucket (a template may have rendered to nothing).
fn rendered_bucket(bucket: &str) -> Result<(), ActionError> {
    match bucket_problem(bucket) {
        Some(issue) => Err(ActionError::Input(issue.message)),
        None => Ok(()),
    }
}

/// A content type from a key's or file's extension, for the few kinds DR data comes in.
fn guess_content_type(name: &str) -> Option<&'static str> {
    let ext = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase())?;
    Some(match ext.as_str() {
        "json" => "application/json",
        "yaml" | "yml" => "application/yaml",
        "txt" | "log" | "md" => "text/plain; charset=utf-8",
        "csv" => "text/csv",
        "html" | "htm" => "text/html",
        "xml" => "application/xml",
        "sql" => "application/sql",
        "gz" | "tgz" => "application/gzip",
        "zip" => "application/zip",
        "tar" => "application/x-tar",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_bucket_is_a_name_not_a_url_or_a_path() {
        assert!(bucket_problem("dr-assets").is_none());
        assert!(bucket_problem(" ").unwrap().message.contains("is empty"));
        let url = bucket_problem("s3://dr-assets/x").unwrap();
        assert!(url.help.unwrap().contains("`bucket: dr-assets`"));
        assert!(bucket_problem("dr-assets/x").unwrap().message.contains("holds a `/`"));
        // A template is checked when it has been rendered.
        assert!(check(&json!({ "bucket": "{{ params.bucket }}" })).is_empty());
    }

    #[test]
    fn the_target_is_the_bucket() {
        let with = json!({ "bucket": "prod-assets", "key": "a/b.json", "body": "{}" });
        for name in ["s3.put", "s3.delete"] {
            assert_eq!(crate::find(name).unwrap().targets(&with), vec![Target::s3_bucket("prod-assets")], "{name}");
        }
        assert!(bucket_target(&json!({ "bucket": "" })).is_empty());
    }

    #[test]
    fn content_types_follow_the_extension() {
        assert_eq!(guess_content_type("a/b.JSON"), Some("application/json"));
        assert_eq!(guess_content_type("db.dump"), None);
        assert_eq!(guess_content_type("noext"), None);
    }
}
