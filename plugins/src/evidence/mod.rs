//! Evidence for the incident-analysis gate: what a provider's status page, Prometheus and
//! Loki say while an incident is being judged.
//!
//! Evidence is optional by default. A source that cannot be read — refused, silent past
//! `timeout`, answering non-2xx or something unreadable — does not stop the analysis: the
//! step succeeds with `available: false` and `error` saying what went wrong, and its other
//! outputs empty. `required: true` makes that a (retryable) failure of the step instead.
//! [`gather`] is that rule, once, for all three.

mod loki;
mod prometheus;
mod statuspage;
mod timestamp;

pub use loki::{LokiQuery, LokiQueryInput};
pub use prometheus::{EvalTime, PrometheusQuery, PrometheusQueryInput};
pub use statuspage::{Statuspage, StatuspageInput};

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{StatusCode, Url};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use tracing::Instrument;

use crate::duration::format_duration;
use crate::net::client;
use crate::net::traced::{self, Path};
use crate::{ActionCtx, ActionError, At, Issue, Stream};

/// Each request's timeout when `timeout` is not set.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// The most of an answer that is read: evidence is a summary, not a download.
const MAX_BODY: usize = 16 << 20;

/// Why a source could not be read.
#[derive(Debug)]
pub(crate) struct Unavailable {
    /// For people: what was asked and what went wrong (never a credential).
    message: String,
    /// Whether asking again could help (false when the source refused the question itself).
    retryable: bool,
}

impl Unavailable {
    /// A failure that another attempt might not meet (refused, silent, a 5xx).
    fn retryable(message: impl Into<String>) -> Self {
        Unavailable { message: message.into(), retryable: true }
    }
    /// A failure that another attempt would repeat (a bad query, a wrong URL).
    fn permanent(message: impl Into<String>) -> Self {
        Unavailable { message: message.into(), retryable: false }
    }
}

/// What a source said: the outputs besides `available` and `error`, and the one line logged.
pub(crate) struct Found {
    outputs: Value,
    summary: String,
}

/// Runs `work` until it ends or the step is cancelled, and applies the evidence rule: found →
/// `available: true`; unavailable → `available: false` with `empty` outputs, or a failure of
/// the step when `required`. A cancel is always a cancel, never "unavailable".
pub(crate) async fn gather(
    ctx: &ActionCtx,
    source: &str,
    required: bool,
    empty: Value,
    work: impl Future<Output = Result<Found, Unavailable>>,
) -> Result<Value, ActionError> {
    let result = tokio::select! {
        r = work => r,
        _ = ctx.cancel.cancelled() => return Err(ActionError::Cancelled(format!("reading {source} stopped"))),
    };
    match result {
        Ok(found) => {
            ctx.log(Stream::Info, found.summary);
            Ok(availability(true, Value::Null, found.outputs))
        }
        Err(u) => {
            let outputs = availability(false, Value::String(u.message.clone()), empty);
            if required {
                return Err(ActionError::Failed {
                    message: u.message,
                    outputs: Some(outputs),
                    retryable: u.retryable,
                    before_effect: false,
                });
            }
            ctx.log(Stream::Info, format!("{source} unavailable, going on without it (required: false): {}", u.message));
            Ok(outputs)
        }
    }
}

/// `{available, error, …rest}`, in that order.
fn availability(available: bool, error: Value, rest: Value) -> Value {
    let mut out = Map::new();
    out.insert("available".into(), Value::Bool(available));
    out.insert("error".into(), error);
    if let Value::Object(rest) = rest {
        out.extend(rest);
    }
    Value::Object(out)
}

/// The `timeout` input, or the default.
fn timeout_of(input: Option<crate::duration::Dur>) -> Duration {
    input.map_or(DEFAULT_TIMEOUT, crate::duration::Dur::get)
}

/// `{base}{path}` as a URL (a trailing `/` of `base` is dropped; a path prefix is kept).
fn endpoint(base: &str, path: &str) -> Result<Url, ActionError> {
    let base = base.trim().trim_end_matches('/');
    let url = Url::parse(&format!("{base}{path}")).map_err(|e| ActionError::Input(format!("`url` is not a valid URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ActionError::Input(format!("`url` is a {}: URL; evidence is read over http:// or https://", url.scheme())));
    }
    Ok(url)
}

/// A URL as it may be shown: no user, password or query string (they may hold credentials).
fn shown(url: &Url) -> String {
    let mut u = url.clone();
    let _ = u.set_username("");
    let _ = u.set_password(None);
    u.set_query(None);
    u.set_fragment(None);
    u.to_string()
}

/// `url` from a `with` as it may be shown in a plan (as written when it does not parse).
fn shown_text(url: &str) -> String {
    match Url::parse(url.trim()) {
        Ok(u) => shown(&u).trim_end_matches('/').to_string(),
        Err(_) => url.trim().to_string(),
    }
}

/// Request headers from `with`; an error names the header, never its value.
fn header_map(headers: &BTreeMap<String, String>) -> Result<HeaderMap, ActionError> {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        let key =
            HeaderName::from_bytes(name.as_bytes()).map_err(|_| ActionError::Input(format!("`{name}` is not a valid HTTP header name")))?;
        let mut value = HeaderValue::from_str(value)
            .map_err(|_| ActionError::Input(format!("the value of header `{name}` is not a valid header value")))?;
        value.set_sensitive(true);
        map.insert(key, value);
    }
    Ok(map)
}

/// A complete answer.
struct Answer {
    status: StatusCode,
    body: Vec<u8>,
    /// The URL asked, as it may be shown.
    shown: String,
}

/// GETs `url` within `timeout` (connecting and reading the body included).
async fn get(url: &Url, headers: &HeaderMap, timeout: Duration) -> Result<Answer, Unavailable> {
    let shown = shown(url);
    let fail = |e: reqwest::Error| Unavailable::retryable(format!("GET {shown}: {}", describe(e, timeout)));
    let (resp, span) = traced::send(client().get(url.clone()).headers(headers.clone()).timeout(timeout), Path::Shown).await;
    let mut resp = resp.map_err(fail)?;
    let status = resp.status();
    let mut body = Vec::new();
    let read = async {
        while let Some(chunk) = resp.chunk().await.map_err(|e| {
            span.body_failed(&e);
            fail(e)
        })? {
            if body.len() + chunk.len() > MAX_BODY {
                crate::telemetry::fail(span.span(), "body_too_large");
                return Err(Unavailable::retryable(format!("GET {shown}: the answer is larger than {} MiB", MAX_BODY >> 20)));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(())
    };
    read.instrument(span.span().clone()).await?;
    span.body_bytes(body.len());
    Ok(Answer { status, body, shown })
}

/// A request error for people: what kind, and its innermost cause. Never the URL (reqwest's
/// own text holds it with any password in it).
fn describe(e: reqwest::Error, timeout: Duration) -> String {
    let e = e.without_url();
    if e.is_timeout() {
        return format!("no answer within {}", format_duration(timeout));
    }
    let what = if e.is_connect() {
        "could not connect"
    } else if e.is_redirect() {
        "too many redirects"
    } else if e.is_body() || e.is_decode() {
        "the answer broke off"
    } else {
        "the request failed"
    };
    let mut cause = None;
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        cause = Some(s.to_string());
        source = s.source();
    }
    match cause {
        Some(c) => format!("{what} ({c})"),
        None => what.to_string(),
    }
}

/// A non-2xx answer; `detail` is what the source said about it, when it said something useful.
fn refused(answer: &Answer, detail: Option<String>) -> Unavailable {
    let code = answer.status.as_u16();
    let mut message = format!("GET {} answered {}", answer.shown, answer.status);
    if let Some(d) = detail {
        message = format!("{message}: {d}");
    }
    Unavailable { message, retryable: answer.status.is_server_error() || code == 408 || code == 429 }
}

/// The start of a text body, on one line, for an error message (None for nothing or HTML).
fn snippet(body: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() || text.starts_with('<') {
        return None;
    }
    let line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    Some(if line.chars().count() > 300 { format!("{}…", line.chars().take(300).collect::<String>()) } else { line })
}

/// A 2xx answer's body as `T`; `what` names the format expected.
fn decode<T: DeserializeOwned>(answer: &Answer, what: &str) -> Result<T, Unavailable> {
    serde_json::from_slice(&answer.body)
        .map_err(|e| Unavailable::retryable(format!("GET {} answered {} but not with {what} ({e})", answer.shown, answer.status)))
}

fn is_template(s: &str) -> bool {
    s.contains("{{")
}

/// `url` is not empty, is http(s), and is the base URL rather than one holding the API's
/// path (`api`, the start of `added`, the path the plugin adds).
fn check_url(with: &Value, api: &str, added: &str, example: &str) -> Vec<Issue> {
    let Some(url) = with.get("url").and_then(Value::as_str) else { return vec![] };
    let url = url.trim();
    if is_template(url) {
        return vec![];
    }
    if url.is_empty() {
        return vec![Issue::at("url", "`url` is empty").help(format!("the base URL, e.g. `{example}`"))];
    }
    match Url::parse(url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.has_host() => {
            if u.path().contains(api) {
                let base = &url[..url.find(api).unwrap_or(url.len())];
                vec![
                    Issue::at("url", format!("`url` holds the API path; give the base URL (`{added}` is added)"))
                        .help(format!("write `{base}`")),
                ]
            } else {
                vec![]
            }
        }
        _ => vec![Issue::at("url", format!("`{}` is not an http:// or https:// URL", shown_text(url))).help(format!("e.g. `{example}`"))],
    }
}

/// A text input that must say something (`query`).
fn check_not_empty(with: &Value, key: &str, example: &str) -> Vec<Issue> {
    match with.get(key).and_then(Value::as_str) {
        Some(s) if s.trim().is_empty() => vec![Issue::at(key, format!("`{key}` is empty")).help(format!("e.g. `{example}`"))],
        _ => vec![],
    }
}

/// Header names are valid, and a credential header's value comes from `secrets`.
fn check_headers(with: &Value) -> Vec<Issue> {
    let Some(headers) = with.get("headers").and_then(Value::as_object) else { return vec![] };
    let mut issues = vec![];
    for (name, value) in headers {
        if HeaderName::from_bytes(name.as_bytes()).is_err() {
            issues.push(header_issue(name, format!("`{name}` is not a valid HTTP header name")));
            continue;
        }
        let lower = name.to_ascii_lowercase();
        let secret = matches!(lower.as_str(), "authorization" | "proxy-authorization" | "cookie")
            || ["token", "key", "secret", "password"].iter().any(|w| lower.contains(w));
        if secret && value.as_str().is_some_and(|v| !is_template(v)) {
            issues.push(
                header_issue(
                    name,
                    format!("header `{name}` is written in the runbook: a credential would live in git and in the run's inputs"),
                )
                .help(format!("declare it under `secrets:` and write `{name}: \"{{{{ secrets.… }}}}\"`")),
            );
        }
    }
    issues
}

/// An issue at `headers.<name>`.
fn header_issue(name: &str, message: String) -> Issue {
    Issue { at: vec![At::Key("headers".into()), At::Key(name.into())], message, help: None }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn shown_urls_hold_no_credentials() {
        let u = Url::parse("https://user:hunter2@prom.example.com/api/v1/query?query=up&token=abc").unwrap();
        assert_eq!(shown(&u), "https://prom.example.com/api/v1/query");
        assert_eq!(shown_text("https://me:pw@loki.example.com/"), "https://loki.example.com");
    }

    #[test]
    fn endpoints_keep_a_path_prefix() {
        assert_eq!(endpoint("https://h.example/prom/", "/api/v1/query").unwrap().as_str(), "https://h.example/prom/api/v1/query");
        assert!(matches!(endpoint("ftp://h.example", "/x"), Err(ActionError::Input(_))));
        assert!(matches!(endpoint("", "/x"), Err(ActionError::Input(_))));
    }

    #[test]
    fn urls_and_headers_are_checked() {
        let msgs = |issues: Vec<Issue>| issues.into_iter().map(|i| i.message).collect::<Vec<_>>();
        assert_eq!(msgs(check_url(&json!({"url": " "}), "/api/v1", "/api/v1/query", "http://x")), ["`url` is empty"]);
        assert_eq!(
            msgs(check_url(&json!({"url": "prometheus:9090"}), "/api/v1", "/api/v1/query", "http://x")),
            ["`prometheus:9090` is not an http:// or https:// URL"]
        );
        assert!(
            msgs(check_url(&json!({"url": "http://p:9090/api/v1/query"}), "/api/v1", "/api/v1/query", "http://x"))[0]
                .contains("holds the API path")
        );
        assert!(check_url(&json!({"url": "{{ vars.prom }}"}), "/api/v1", "/api/v1/query", "http://x").is_empty());
        assert!(check_url(&json!({"url": "http://p:9090/prom"}), "/api/v1", "/api/v1/query", "http://x").is_empty());
        let h =
            json!({"headers": {"Authorization": "Bearer abc", "X-Scope-OrgID": "tenant", "X-Api-Key": "{{ secrets.k }}", "bad name": "x"}});
        let found = msgs(check_headers(&h));
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found[0].contains("`Authorization` is written in the runbook") && !found[0].contains("abc"));
        assert!(found[1].contains("`bad name` is not a valid"));
    }

    #[test]
    fn snippets_are_one_bounded_line() {
        assert_eq!(snippet(b"  parse error\n at line 1 \n").as_deref(), Some("parse error at line 1"));
        assert_eq!(snippet(b"<html>oops</html>"), None);
        assert!(snippet("x".repeat(1000).as_bytes()).unwrap().chars().count() == 301);
    }
}
