use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use tracing::Instrument;

use super::client::client;
use super::traced::{self, Path};
use crate::duration::Dur;
use crate::{ActionCtx, ActionError, ActionInfo, Capabilities, Effect, Field, Issue, Kind, Plugin, Stream, Target};

/// Sends one HTTP request.
pub struct Http;

/// `http`'s input.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpInput {
    /// `GET` (default), `POST`, `PUT`, `PATCH`, `DELETE`, `HEAD`.
    #[serde(default)]
    pub method: Option<String>,
    /// The URL.
    pub url: String,
    /// Request headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// A JSON body (sets `Content-Type: application/json`).
    #[serde(default)]
    pub json: Option<Value>,
    /// A text body.
    #[serde(default)]
    pub body: Option<String>,
    /// Statuses that count as success (default: any 2xx).
    #[serde(default)]
    pub expect_status: Option<Vec<u16>>,
    /// Timeout of the request (default 30s).
    #[serde(default)]
    pub timeout: Option<Dur>,
    /// How many bytes of the body the outputs keep (default 1 MiB).
    #[serde(default)]
    pub max_body_bytes: Option<usize>,
}

const METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];

impl Plugin for Http {
    type Input = HttpInput;
    fn info(&self) -> ActionInfo {
        ActionInfo {
            name: "http",
            summary: "Sends an HTTP request; fails unless the status is expected (any 2xx by default).",
            kind: Kind::Plugin,
            outputs: &[
                Field { name: "status", doc: "the response status code" },
                Field { name: "headers", doc: "response headers (lower-case names)" },
                Field { name: "body", doc: "the response body as text (bounded)" },
                Field { name: "json", doc: "the body parsed as JSON, or null" },
                Field { name: "elapsed_ms", doc: "time to the full response" },
                Field { name: "truncated", doc: "whether the body was cut at `max_body_bytes`" },
            ],
            caps: Capabilities { probe: true, effect: Effect::Idempotent, general: true, spawns: false, network: true },
            example: "verify_a:\n  uses: http\n  with: { url: \"https://app.example.com/service-a/health\", expect_status: [200] }",
        }
    }

    fn check(&self, with: &Value) -> Vec<Issue> {
        let mut issues = vec![];
        if let Some(m) = with.get("method").and_then(Value::as_str) {
            if !m.contains("{{") && !METHODS.contains(&m.to_ascii_uppercase().as_str()) {
                issues.push(Issue::at("method", format!("`{m}` is not an HTTP method")).help(format!("use one of {}", METHODS.join(", "))));
            }
        }
        if with.get("json").is_some_and(|v| !v.is_null()) && with.get("body").is_some_and(|v| !v.is_null()) {
            issues.push(Issue::at("", "`http` takes `json` or `body`, not both"));
        }
        if let Some(u) = with.get("url").and_then(Value::as_str) {
            if !(u.contains("{{") || u.starts_with("http://") || u.starts_with("https://")) {
                issues.push(Issue::at("url", format!("`{u}` is not an http:// or https:// URL")));
            }
        }
        issues
    }

    fn destinations(&self, with: &Value) -> Vec<(&'static str, String)> {
        crate::action::url_fields(with, &["url"])
    }
    fn targets(&self, with: &Value) -> Vec<Target> {
        let method = with.get("method").and_then(Value::as_str).unwrap_or("GET").trim().to_ascii_uppercase();
        match with.get("url").and_then(Value::as_str) {
            Some(url) if !matches!(method.as_str(), "GET" | "HEAD" | "OPTIONS") => vec![Target::http_endpoint(&method, url)],
            _ => vec![],
        }
    }
    fn targets_doc(&self) -> &'static str {
        "for a method other than GET, HEAD or OPTIONS: `HTTP METHOD host/path` (no query, no user info)"
    }

    fn plan(&self, with: &Value) -> String {
        let method = with.get("method").and_then(Value::as_str).unwrap_or("GET").to_ascii_uppercase();
        format!("{method} {}", with.get("url").and_then(Value::as_str).unwrap_or("?"))
    }

    async fn run(&self, ctx: &ActionCtx, input: HttpInput) -> Result<Value, ActionError> {
        let method_name = input.method.as_deref().unwrap_or("GET").to_ascii_uppercase();
        let method = reqwest::Method::from_bytes(method_name.as_bytes())
            .map_err(|_| ActionError::Input(format!("`{method_name}` is not an HTTP method")))?;
        let timeout = input.timeout.map_or(Duration::from_secs(30), Dur::get);
        let mut req = client().request(method, &input.url).timeout(timeout);
        for (k, v) in &input.headers {
            req = req.header(k, v);
        }
        if let Some(j) = &input.json {
            req = req.json(j);
        } else if let Some(b) = &input.body {
            req = req.body(b.clone());
        }
        let started = Instant::now();
        let send = async {
            let (resp, span) = traced::send(req, Path::Shown).await;
            let resp = resp?;
            let status = resp.status().as_u16();
            let headers: Map<String, Value> = resp
                .headers()
                .iter()
                .map(|(k, v)| (k.as_str().to_string(), Value::String(String::from_utf8_lossy(v.as_bytes()).into_owned())))
                .collect();
            let limit = input.max_body_bytes.unwrap_or(1 << 20);
            let mut body = Vec::new();
            let mut resp = resp;
            let mut truncated = false;
            let read = async {
                while let Some(chunk) = resp.chunk().await? {
                    let room = limit.saturating_sub(body.len());
                    body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                    if chunk.len() > room {
                        truncated = true;
                        break;
                    }
                }
                Ok::<_, reqwest::Error>(())
            };
            if let Err(e) = read.instrument(span.span().clone()).await {
                span.body_failed(&e);
                return Err(e);
            }
            span.body_bytes(body.len());
            Ok::<_, reqwest::Error>((status, headers, body, truncated))
        };
        let (status, headers, body, truncated) = tokio::select! {
            r = send => r.map_err(|e| failure(&e, &input.url))?,
            _ = ctx.cancel.cancelled() => return Err(ActionError::Cancelled(format!("request to {} stopped", input.url))),
        };
        let elapsed_ms = started.elapsed().as_millis() as u64;
        let text = String::from_utf8_lossy(&body).into_owned();
        let parsed = if truncated { Value::Null } else { serde_json::from_str::<Value>(&text).unwrap_or(Value::Null) };
        ctx.log(Stream::Info, format!("{method_name} {} → {status} in {elapsed_ms}ms", input.url));
        let outputs =
            json!({ "status": status, "headers": headers, "body": text, "json": parsed, "elapsed_ms": elapsed_ms, "truncated": truncated });
        let ok = match &input.expect_status {
            Some(list) => list.contains(&status),
            None => (200..300).contains(&status),
        };
        if ok {
            Ok(outputs)
        } else {
            let expected = input.expect_status.as_ref().map_or("2xx".to_string(), |l| format!("{l:?}"));
            Err(ActionError::Failed {
                message: format!("{method_name} {} answered {status}, expected {expected}", input.url),
                outputs: Some(outputs),
                retryable: status >= 500 || status == 429,
                before_effect: false,
            })
        }
    }
}

/// A request that failed: before any effect when the connection was never made (refused, a
/// name that did not resolve, a TLS handshake that failed), since then nothing was sent.
fn failure(e: &reqwest::Error, url: &str) -> ActionError {
    let message = describe(e, url);
    if e.is_connect() || e.is_builder() { ActionError::before_effect(message) } else { ActionError::failed(message) }
}

fn describe(e: &reqwest::Error, url: &str) -> String {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else if e.is_builder() {
        "is not a valid request"
    } else {
        "failed"
    };
    let mut msg = format!("request to {url} {what}");
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        msg = format!("{msg}: {s}");
        source = s.source();
    }
    msg
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::{Action, Target};

    #[test]
    fn only_a_request_that_may_change_something_has_a_target() {
        let http = super::Http;
        assert!(http.targets(&json!({ "url": "https://app.example.com/health" })).is_empty());
        for method in ["get", "HEAD", "options"] {
            assert!(http.targets(&json!({ "method": method, "url": "https://app.example.com/" })).is_empty(), "{method}");
        }
        let t = http.targets(&json!({ "method": "post", "url": "https://ops:tok@LB.example.com/v1/drain?key=s3cr3t" }));
        assert_eq!(t, vec![Target::http_endpoint("POST", "https://lb.example.com/v1/drain")]);
        assert_eq!(t[0].to_string(), "HTTP POST lb.example.com/v1/drain");
    }
}
