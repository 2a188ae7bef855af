//! One request to a model's API, in the provider's wire format (OpenAI-compatible chat
//! completions, Azure OpenAI, Anthropic messages), and the reply's text.

use std::time::Duration;

use serde_json::{Value, json};
use tracing::Instrument;

use super::{LlmInput, Provider};
use crate::ActionCtx;
use crate::duration::Dur;
use crate::net::client;
use crate::net::traced::{self, Path};

pub(super) enum AskError {
    Failed(String),
    Cancelled,
}

/// One request; the reply's text.
pub(super) async fn ask(ctx: &ActionCtx, input: &LlmInput, system: &str, messages: &[Value]) -> Result<String, AskError> {
    let base = input.base_url.trim_end_matches('/');
    let key = input.api_key.clone().unwrap_or_default();
    let temperature = input.temperature.unwrap_or(0.1);
    let max_tokens = input.max_tokens.unwrap_or(1000);
    let timeout = input.timeout.map_or(Duration::from_secs(60), Dur::get);
    let chat = || {
        let mut all = vec![json!({ "role": "system", "content": system })];
        all.extend(messages.iter().cloned());
        json!({ "model": input.model, "messages": all, "temperature": temperature, "max_tokens": max_tokens })
    };
    let req = match input.provider {
        Provider::Openai => {
            let r = client().post(format!("{base}/chat/completions")).json(&chat());
            if key.is_empty() { r } else { r.bearer_auth(&key) }
        }
        Provider::AzureOpenai => {
            let version = input.api_version.as_deref().unwrap_or("2024-06-01");
            client().post(format!("{base}/chat/completions?api-version={version}")).header("api-key", &key).json(&chat())
        }
        Provider::Anthropic => {
            let url = if base.ends_with("/v1") { format!("{base}/messages") } else { format!("{base}/v1/messages") };
            client().post(url).header("x-api-key", &key).header("anthropic-version", "2023-06-01").json(&json!({
                "model": input.model, "system": system, "messages": messages, "temperature": temperature, "max_tokens": max_tokens
            }))
        }
    };
    let send = async {
        let (resp, span) = traced::send(req.timeout(timeout), Path::Shown).await;
        let resp = resp.map_err(|e| {
            if e.is_timeout() {
                format!("the model did not answer within {}", crate::duration::format_duration(timeout))
            } else {
                format!("the model's API could not be reached: {e}")
            }
        })?;
        let status = resp.status();
        let bytes = resp.bytes().instrument(span.span().clone()).await.map_err(|e| {
            span.body_failed(&e);
            format!("the model's API answered {status} but its body broke off: {}", e.without_url())
        })?;
        span.body_bytes(bytes.len());
        drop(span);
        let body: Value =
            serde_json::from_slice(&bytes).map_err(|e| format!("the model's API answered {status} with a body that is not JSON: {e}"))?;
        if !status.is_success() {
            let detail = body["error"]["message"].as_str().or(body["error"].as_str()).unwrap_or("no message");
            return Err(format!("the model's API answered {status}: {}", truncate(detail, 300)));
        }
        let text = match input.provider {
            Provider::Anthropic => {
                body["content"].as_array().map(|parts| parts.iter().filter_map(|p| p["text"].as_str()).collect::<Vec<_>>().join(""))
            }
            _ => body["choices"][0]["message"]["content"].as_str().map(str::to_string),
        };
        text.ok_or_else(|| "the model's API answered without any text".to_string())
    };
    tokio::select! {
        r = send => r.map_err(AskError::Failed),
        _ = ctx.cancel.cancelled() => Err(AskError::Cancelled),
    }
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n { s.to_string() } else { format!("{}…", s.chars().take(n).collect::<String>()) }
}
