//! Reading a runbook's secret from AWS Secrets Manager (`secrets: { name: {
//! aws_secretsmanager: ID, key: … } }`): the engine asks when a step first needs the value.
//! The value is returned to the caller only: never logged, never in an error.

use std::time::Duration;

use serde_json::Value;

use super::settings::AwsSettings;

/// Where a secret is in Secrets Manager, and how to reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretsManagerRef {
    /// The secret's name or ARN.
    pub id: String,
    /// For a secret whose value is a JSON object: the member to take.
    pub key: Option<String>,
    /// The region; default `AWS_REGION`, then the profile's.
    pub region: Option<String>,
    /// Another endpoint (a VPC endpoint, the moto server); default `AWS_ENDPOINT_URL`.
    pub endpoint_url: Option<String>,
    /// A named profile; default `AWS_PROFILE`.
    pub profile: Option<String>,
}

impl SecretsManagerRef {
    /// Reads the value, waiting at most `timeout`. Blocking: it runs on a thread of its own
    /// (callers render templates synchronously, some on a runtime's only thread).
    pub fn read(&self, timeout: Duration) -> Result<String, String> {
        let this = self.clone();
        // The read's spans belong under the step that needs the secret, not in a trace of
        // their own: the caller's span goes along to the thread.
        let span = tracing::Span::current();
        let worker = std::thread::Builder::new()
            .name("phoenix-secret".into())
            .spawn(move || {
                let _in_caller = span.enter();
                let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
                runtime.block_on(this.fetch(timeout))
            })
            .map_err(|e| format!("cannot start a thread to read it: {e}"))?;
        worker.join().unwrap_or_else(|_| Err("reading it failed unexpectedly".into()))
    }

    async fn fetch(&self, timeout: Duration) -> Result<String, String> {
        let settings = AwsSettings {
            region: self.region.clone(),
            endpoint_url: self.endpoint_url.clone(),
            profile: self.profile.clone(),
            ..AwsSettings::default()
        };
        let config = settings.load(timeout).await?;
        let client = aws_sdk_secretsmanager::Client::from_conf(
            aws_sdk_secretsmanager::config::Builder::from(&config).interceptor(super::traced::Traced).build(),
        );
        let out = client.get_secret_value().secret_id(&self.id).send().await.map_err(|e| {
            format!("AWS Secrets Manager in {} did not give `{}`: {}", AwsSettings::region_of(&config), self.id, super::describe(&e))
        })?;
        let text = match (out.secret_string(), out.secret_binary()) {
            (Some(s), _) => s.to_string(),
            (None, Some(b)) => {
                String::from_utf8(b.as_ref().to_vec()).map_err(|_| format!("`{}` holds binary data that is not UTF-8 text", self.id))?
            }
            (None, None) => return Err(format!("`{}` has no value (no current version?)", self.id)),
        };
        match &self.key {
            None => Ok(text),
            Some(key) => member(&text, key).map_err(|e| format!("`{}`: {e}", self.id)),
        }
    }
}

/// The member `key` of a JSON object secret: a string as it is, anything else as JSON text.
/// Errors never quote the value.
pub(crate) fn member(text: &str, key: &str) -> Result<String, String> {
    let Ok(Value::Object(map)) = serde_json::from_str::<Value>(text) else {
        return Err(format!("`key: {key}` needs a JSON object, and the value is not one (leave `key` out to take it whole)"));
    };
    match map.get(key) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(other) => Ok(other.to_string()),
        None => {
            let keys: Vec<&str> = map.keys().map(String::as_str).collect();
            Err(format!("no member `{key}`; it has {}", if keys.is_empty() { "none".into() } else { keys.join(", ") }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::member;

    #[test]
    fn a_member_is_taken_and_a_missing_one_is_named_without_the_values() {
        let text = r#"{"dsn": "postgres://u:s3cret@h/db", "port": 5432}"#;
        assert_eq!(member(text, "dsn").unwrap(), "postgres://u:s3cret@h/db");
        assert_eq!(member(text, "port").unwrap(), "5432");
        let e = member(text, "password").unwrap_err();
        assert!(e.contains("dsn, port") && !e.contains("s3cret"), "{e}");
        let e = member("s3cret-plain", "dsn").unwrap_err();
        assert!(!e.contains("s3cret"), "{e}");
    }
}
