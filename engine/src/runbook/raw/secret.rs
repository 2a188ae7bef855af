//! `secrets:` entries as written: where each value comes from, and where it may go.

use phoenix_plugins::duration::Dur;
use schemars::JsonSchema;
use serde::Deserialize;

/// Where a secret comes from: exactly one of `env`, `file`, `aws_secretsmanager` or `exec`.
/// It is read when a step first needs it, kept for that run only, and never stored.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSecret {
    /// The environment variable that holds it.
    #[serde(default)]
    pub env: Option<String>,
    /// A file that holds it (trailing newline removed).
    #[serde(default)]
    pub file: Option<String>,
    /// The name or ARN of a secret in AWS Secrets Manager (the default credential chain;
    /// `region`, `endpoint_url`, `profile` as for the AWS actions).
    #[serde(default)]
    pub aws_secretsmanager: Option<String>,
    /// With `aws_secretsmanager`: the member of a JSON object secret to take
    /// (`{"dsn": …, "password": …}` → `key: dsn`).
    #[serde(default)]
    pub key: Option<String>,
    /// With `aws_secretsmanager`: the region (default `AWS_REGION`, then the profile's).
    #[serde(default)]
    pub region: Option<String>,
    /// With `aws_secretsmanager`: another endpoint (a VPC endpoint; default `AWS_ENDPOINT_URL`).
    #[serde(default)]
    pub endpoint_url: Option<String>,
    /// With `aws_secretsmanager`: a named profile of `~/.aws/config` (default `AWS_PROFILE`).
    #[serde(default)]
    pub profile: Option<String>,
    /// A command that prints the secret on stdout, as an argv (no shell; no templates):
    /// `[vault, kv, get, -field=password, secret/db]`, `[op, read, "op://prod/db/password"]`.
    /// Its trailing newline is removed; a non-zero exit fails the steps that need it.
    #[serde(default)]
    pub exec: Option<Vec<String>>,
    /// With `aws_secretsmanager` or `exec`: how long reading it may take (default 10s).
    #[serde(default)]
    pub timeout: Option<Dur>,
    /// The hosts a step may send it to: `api.openai.com`, `*.example.com`,
    /// `127.0.0.1:8080` (that port only). A step whose request would carry it elsewhere
    /// fails before sending. Absent: any host.
    #[serde(default)]
    pub hosts: Option<Vec<String>>,
    /// Whether it may travel over plain `http://` to a host other than the loopback
    /// (`127.0.0.1`, `::1`, `localhost`); default false.
    #[serde(default)]
    pub allow_http: bool,
    /// What the secret is for.
    #[serde(default)]
    pub description: Option<String>,
}
