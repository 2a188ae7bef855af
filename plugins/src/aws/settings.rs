//! The connection settings every AWS action shares, and the SDK configuration built from them.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_sts::config::Credentials;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

use crate::Issue;

/// Where and as whom to call AWS. Each field left out comes from the standard environment.
#[derive(Debug, Default, Clone, Deserialize, JsonSchema)]
pub struct AwsSettings {
    /// The region (`us-east-1`); default `AWS_REGION`, then the profile's region.
    #[serde(default)]
    pub region: Option<String>,
    /// Another endpoint for every service (a VPC endpoint, LocalStack, the moto server);
    /// default `AWS_ENDPOINT_URL`.
    #[serde(default)]
    pub endpoint_url: Option<String>,
    /// A named profile of `~/.aws/config`; default `AWS_PROFILE`.
    #[serde(default)]
    pub profile: Option<String>,
    /// An access key id (usually `{{ secrets.… }}`); needs `secret_access_key`. Default: the
    /// standard credential chain (environment, profile, SSO, container, instance role).
    #[serde(default)]
    pub access_key_id: Option<String>,
    /// The secret access key that goes with `access_key_id` (a secret).
    #[serde(default)]
    pub secret_access_key: Option<String>,
    /// A session token for temporary credentials (a secret).
    #[serde(default)]
    pub session_token: Option<String>,
}

/// Keys a with may hold for [`AwsSettings`]; checks their pairing before anything runs.
pub(crate) fn check(with: &Value) -> Vec<Issue> {
    let has = |k: &str| with.get(k).is_some_and(|v| !v.is_null());
    let mut issues = vec![];
    if has("access_key_id") != has("secret_access_key") {
        let (set, missing) =
            if has("access_key_id") { ("access_key_id", "secret_access_key") } else { ("secret_access_key", "access_key_id") };
        issues.push(
            Issue::at(set, format!("`{set}` is set without `{missing}`"))
                .help("set both (from secrets), or neither to use the standard credential chain"),
        );
    }
    if has("session_token") && !has("access_key_id") {
        issues.push(Issue::at("session_token", "`session_token` needs `access_key_id` and `secret_access_key`"));
    }
    for key in ["secret_access_key", "session_token"] {
        if with.get(key).and_then(Value::as_str).is_some_and(|v| !v.contains("{{")) {
            issues.push(
                Issue::at(key, format!("`{key}` is written in the runbook: a credential would live in git and in the run's inputs"))
                    .help(format!("declare it under `secrets:` and write `{key}: \"{{{{ secrets.aws_{key} }}}}\"`")),
            );
        }
    }
    if let Some(url) = with.get("endpoint_url").and_then(Value::as_str) {
        let literal = !url.contains("{{");
        if literal && !url.starts_with("http://") && !url.starts_with("https://") {
            issues.push(Issue::at("endpoint_url", format!("`{url}` is not an http(s) URL")).help("e.g. `http://127.0.0.1:5000`"));
        }
    }
    issues
}

impl AwsSettings {
    /// The SDK configuration: these settings over the environment, no SDK retries (the step's
    /// `retry` is the one policy), and `timeout` on each call.
    pub(crate) async fn load(&self, timeout: Duration) -> Result<SdkConfig, String> {
        let mut loader = aws_config::defaults(BehaviorVersion::latest()).retry_config(RetryConfig::disabled()).timeout_config(
            TimeoutConfig::builder().connect_timeout(timeout.min(Duration::from_secs(5))).operation_timeout(timeout).build(),
        );
        if let Some(region) = &self.region {
            loader = loader.region(Region::new(region.clone()));
        }
        if let Some(url) = &self.endpoint_url {
            loader = loader.endpoint_url(url);
        }
        if let Some(profile) = &self.profile {
            loader = loader.profile_name(profile);
        }
        if let (Some(id), Some(secret)) = (&self.access_key_id, &self.secret_access_key) {
            loader = loader.credentials_provider(Credentials::new(id, secret, self.session_token.clone(), None, "phoenix-with"));
        }
        let config = loader.load().await;
        if config.region().is_none() {
            return Err("no AWS region: set `region` in `with`, or AWS_REGION, or a region in the profile".into());
        }
        Ok(config)
    }

    /// [`load`](Self::load) for a global service (Route 53): any region reaches it, so when
    /// none is configured anywhere the SDK is given `fallback` instead of failing.
    pub(crate) async fn load_global(&self, timeout: Duration, fallback: &str) -> Result<SdkConfig, String> {
        match self.load(timeout).await {
            Err(_) if self.region.is_none() => AwsSettings { region: Some(fallback.to_string()), ..self.clone() }.load(timeout).await,
            loaded => loaded,
        }
    }

    /// The region a call went to, for outputs and messages.
    pub(crate) fn region_of(config: &SdkConfig) -> String {
        config.region().map(ToString::to_string).unwrap_or_default()
    }
}
