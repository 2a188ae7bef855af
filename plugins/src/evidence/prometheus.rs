//! `prometheus.query`: one PromQL instant query (`GET /api/v1/query`), e.g. the share of 5xx
//! answers right now.
//!
//! Prometheus's own error (bad PromQL, a query that timed out inside Prometheus) is reported
//! in its words. Samples become numbers; `NaN` and `±Inf`, which JSON cannot hold, become null.

use std::collections::BTreeMap;
use std::fmt;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::timestamp::{parse_rfc3339, parse_unix_seconds, unix_seconds_text};
use super::{
    Answer, Found, Unavailable, check_headers, check_not_empty, check_url, endpoint, gather, get, header_map, refused, shown_text, snippet,
    timeout_of,
};
use crate::duration::Dur;
use crate::{ActionCtx, ActionError, ActionInfo, Capabilities, Effect, Field, Issue, Kind, Plugin};

/// Runs a PromQL instant query.
pub struct PrometheusQuery;

/// `prometheus.query`'s input.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PrometheusQueryInput {
    /// Prometheus's base URL, e.g. `http://prometheus:9090`; a path prefix is kept
    /// (`https://grafana.example.com/api/prom`). `/api/v1/query` is added.
    pub url: String,
    /// The PromQL expression, e.g. `sum(rate(http_requests_total{status=~"5.."}[5m]))`.
    pub query: String,
    /// When to evaluate it: RFC 3339 (`2024-05-01T10:00:00Z`) or unix seconds (default: now).
    #[serde(default)]
    pub time: Option<EvalTime>,
    /// Request headers, e.g. `Authorization` from `secrets` or `X-Scope-OrgID`; their values
    /// are never logged.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// How long the request may take, connecting and reading included (default 10s); also
    /// sent as the query's own `timeout`.
    #[serde(default)]
    pub timeout: Option<Dur>,
    /// Whether a failed query fails the step (default false: the step succeeds with
    /// `available: false` and `error`).
    #[serde(default)]
    pub required: bool,
}

/// An evaluation time: RFC 3339 text or unix seconds (a number, or a string of digits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EvalTime(i128);

/// Reads the time as written, into nanoseconds.
fn read_time(text: &str) -> Result<i128, String> {
    let t = text.trim();
    if t.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        parse_unix_seconds(t)
    } else {
        parse_rfc3339(t).map_err(|_| format!("`{t}` is neither RFC 3339 (e.g. 2024-05-01T10:00:00Z) nor unix seconds (e.g. 1714557600)"))
    }
}

impl<'de> Deserialize<'de> for EvalTime {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = EvalTime;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an RFC 3339 time or unix seconds")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<EvalTime, E> {
                read_time(s).map(EvalTime).map_err(E::custom)
            }
            fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<EvalTime, E> {
                Ok(EvalTime(i128::from(n) * 1_000_000_000))
            }
            fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<EvalTime, E> {
                u64::try_from(n).map_err(|_| E::custom(format!("`{n}` is before 1970"))).and_then(|n| self.visit_u64(n))
            }
            fn visit_f64<E: serde::de::Error>(self, n: f64) -> Result<EvalTime, E> {
                if n.is_finite() && n >= 0.0 {
                    Ok(EvalTime((n * 1e9) as i128))
                } else {
                    Err(E::custom(format!("`{n}` is not unix seconds")))
                }
            }
        }
        d.deserialize_any(V)
    }
}

impl JsonSchema for EvalTime {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "EvalTime".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": ["string", "number"],
            "description": "An RFC 3339 time (`2024-05-01T10:00:00Z`) or unix seconds (`1714557600`).",
            "examples": ["2024-05-01T10:00:00Z", 1714557600]
        })
    }
}

/// Prometheus's answer, success or error.
#[derive(Deserialize)]
struct Reply {
    status: String,
    #[serde(default)]
    data: Option<ReplyData>,
    #[serde(default, rename = "errorType")]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    warnings: Vec<String>,
}

#[derive(Deserialize)]
struct ReplyData {
    #[serde(rename = "resultType")]
    result_type: String,
    result: Value,
}

/// `[unix seconds, "value"]`.
type Sample = (f64, String);

#[derive(Deserialize)]
struct Instant {
    metric: Map<String, Value>,
    /// Absent for a native histogram's sample (it has `histogram` instead).
    #[serde(default)]
    value: Option<Sample>,
}

#[derive(Deserialize)]
struct Range {
    metric: Map<String, Value>,
    #[serde(default)]
    values: Vec<Sample>,
}

impl Plugin for PrometheusQuery {
    type Input = PrometheusQueryInput;
    fn info(&self) -> ActionInfo {
        ActionInfo {
            name: "prometheus.query",
            summary: "Runs a PromQL instant query (GET /api/v1/query). A failed query gives `available: false` with Prometheus's message unless `required`.",
            kind: Kind::Plugin,
            outputs: &[
                Field { name: "available", doc: "whether the query was answered" },
                Field { name: "error", doc: "why not, for people: Prometheus's own message for bad PromQL (null when available)" },
                Field { name: "result_type", doc: "`vector`, `scalar`, `matrix` or `string`" },
                Field {
                    name: "result",
                    doc: "the samples: `metric` (labels) and `value` (a number; null for NaN/±Inf); a scalar is one sample with empty `metric`; a matrix's series also have `values` ([time, value] pairs)",
                },
                Field { name: "value", doc: "the first sample's value as a number, or null when the result is empty" },
            ],
            caps: Capabilities { probe: true, effect: Effect::Read, general: false, spawns: false, network: true },
            example: "error_rate:\n  uses: prometheus.query\n  with:\n    url: \"http://prometheus:9090\"\n    query: 'sum(rate(http_requests_total{status=~\"5..\"}[5m])) / sum(rate(http_requests_total[5m]))'",
        }
    }

    fn check(&self, with: &Value) -> Vec<Issue> {
        let mut issues = check_url(with, "/api/v1", "/api/v1/query", "http://prometheus:9090");
        issues.extend(check_not_empty(with, "query", "sum(rate(http_requests_total[5m]))"));
        match with.get("time") {
            Some(Value::String(t)) if !super::is_template(t) => {
                if let Err(e) = read_time(t) {
                    issues.push(Issue::at("time", e).help("leave `time` out to evaluate now"));
                }
            }
            Some(Value::Number(n)) if n.as_f64().is_some_and(|f| f < 0.0) => {
                issues.push(Issue::at("time", format!("`{n}` is before 1970")).help("unix seconds, e.g. 1714557600"));
            }
            _ => {}
        }
        issues.extend(check_headers(with));
        issues
    }

    fn destinations(&self, with: &Value) -> Vec<(&'static str, String)> {
        crate::action::url_fields(with, &["url"])
    }
    fn plan(&self, with: &Value) -> String {
        let url = with.get("url").and_then(Value::as_str).map_or_else(|| "?".to_string(), shown_text);
        format!("query Prometheus at {url}: {}", with.get("query").and_then(Value::as_str).unwrap_or("?"))
    }

    async fn run(&self, ctx: &ActionCtx, input: PrometheusQueryInput) -> Result<Value, ActionError> {
        let mut url = endpoint(&input.url, "/api/v1/query")?;
        let headers = header_map(&input.headers)?;
        let timeout = timeout_of(input.timeout);
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("query", &input.query);
            if let Some(EvalTime(ns)) = input.time {
                q.append_pair("time", &unix_seconds_text(ns));
            }
            q.append_pair("timeout", &format!("{:.3}", timeout.as_secs_f64()));
        }
        let empty = json!({ "result_type": null, "result": [], "value": null });
        let source = format!("Prometheus {}", shown_text(&input.url));
        let query = input.query.trim().to_string();
        let work = async {
            let answer = get(&url, &headers, timeout).await?;
            let reply = read_reply(&answer)?;
            let data = reply.data.ok_or_else(|| Unavailable::retryable(format!("GET {} answered success without `data`", answer.shown)))?;
            let (result, value) = samples(&data).map_err(|e| {
                Unavailable::retryable(format!("GET {} answered a {} that does not read ({e})", answer.shown, data.result_type))
            })?;
            let summary = summarize(&query, &data.result_type, &result, &value, &reply.warnings);
            Ok(Found { outputs: json!({ "result_type": data.result_type, "result": result, "value": value }), summary })
        };
        gather(ctx, &source, input.required, empty, work).await
    }
}

/// The answer as Prometheus's JSON; an `error` reply (at any HTTP status) in Prometheus's words.
fn read_reply(answer: &Answer) -> Result<Reply, Unavailable> {
    let Ok(reply) = serde_json::from_slice::<Reply>(&answer.body) else {
        if answer.status.is_success() {
            return Err(Unavailable::retryable(format!(
                "GET {} answered {} but not with Prometheus's API JSON",
                answer.shown, answer.status
            )));
        }
        return Err(refused(answer, snippet(&answer.body)));
    };
    if reply.status != "success" {
        let kind = reply.error_type.as_deref().unwrap_or("error");
        let message = format!("Prometheus refused the query ({kind}): {}", reply.error.as_deref().unwrap_or("no message"));
        let code = answer.status.as_u16();
        // bad_data and execution errors (400, 422) come back the same on every attempt.
        let retryable = answer.status.is_server_error() || code == 429 || code == 408;
        return Err(Unavailable { message, retryable });
    }
    if !answer.status.is_success() {
        return Err(refused(answer, None));
    }
    Ok(reply)
}

/// A sample's value as JSON: a number, or null for NaN and ±Inf.
fn number(text: &str) -> Value {
    text.parse::<f64>().ok().filter(|f| f.is_finite()).map_or(Value::Null, |f| json!(f))
}

/// The `result` output and `value`, from the reply's `data`.
fn samples(data: &ReplyData) -> Result<(Vec<Value>, Value), serde_json::Error> {
    let result: Vec<Value> = match data.result_type.as_str() {
        "vector" => serde_json::from_value::<Vec<Instant>>(data.result.clone())?
            .into_iter()
            .map(|s| json!({ "metric": s.metric, "value": s.value.map_or(Value::Null, |(_, v)| number(&v)) }))
            .collect(),
        "scalar" => {
            let (_, v): Sample = serde_json::from_value(data.result.clone())?;
            vec![json!({ "metric": {}, "value": number(&v) })]
        }
        "string" => {
            let (_, v): Sample = serde_json::from_value(data.result.clone())?;
            vec![json!({ "metric": {}, "value": v })]
        }
        "matrix" => serde_json::from_value::<Vec<Range>>(data.result.clone())?
            .into_iter()
            .map(|s| {
                let last = s.values.last().map_or(Value::Null, |(_, v)| number(v));
                let values: Vec<Value> = s.values.iter().map(|(t, v)| json!([t, number(v)])).collect();
                json!({ "metric": s.metric, "value": last, "values": values })
            })
            .collect(),
        other => return Err(serde::de::Error::custom(format!("unknown resultType `{other}`"))),
    };
    let value = result.first().map(|s| s["value"].clone()).filter(Value::is_number).unwrap_or(Value::Null);
    Ok((result, value))
}

/// The one log line: what the query gave.
fn summarize(query: &str, kind: &str, result: &[Value], value: &Value, warnings: &[String]) -> String {
    let query: String =
        if query.chars().count() > 120 { format!("{}…", query.chars().take(120).collect::<String>()) } else { query.into() };
    let what = match (kind, result.len()) {
        (_, 0) => format!("an empty {kind}"),
        ("scalar", _) => format!("scalar {value}"),
        (_, 1) => format!("a {kind} of 1 series, value {value}"),
        (_, n) => format!("a {kind} of {n} series, first value {value}"),
    };
    let mut line = format!("Prometheus: `{query}` → {what}");
    if !warnings.is_empty() {
        line += &format!(" (warnings: {})", warnings.join("; "));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(kind: &str, result: Value) -> ReplyData {
        ReplyData { result_type: kind.into(), result }
    }

    #[test]
    fn vectors_scalars_and_matrices_become_numbers() {
        let (r, v) = samples(&data("vector", json!([{"metric": {"job": "api"}, "value": [1714557600.5, "0.25"]}]))).unwrap();
        assert_eq!(r, vec![json!({"metric": {"job": "api"}, "value": 0.25})]);
        assert_eq!(v, json!(0.25));
        let (r, v) = samples(&data("scalar", json!([1714557600, "3"]))).unwrap();
        assert_eq!((r, v), (vec![json!({"metric": {}, "value": 3.0})], json!(3.0)));
        let (r, v) = samples(&data("vector", json!([{"metric": {}, "value": [1, "NaN"]}]))).unwrap();
        assert_eq!((r[0]["value"].clone(), v), (Value::Null, Value::Null));
        let (r, v) = samples(&data("matrix", json!([{"metric": {"a": "b"}, "values": [[1, "1"], [2, "+Inf"], [3, "7"]]}]))).unwrap();
        assert_eq!(r[0]["values"], json!([[1.0, 1.0], [2.0, null], [3.0, 7.0]]));
        assert_eq!(v, json!(7.0));
        assert_eq!(samples(&data("vector", json!([]))).unwrap(), (vec![], Value::Null));
        assert!(samples(&data("vector", json!({"not": "a list"}))).is_err());
    }

    #[test]
    fn times_are_rfc3339_or_unix_seconds() {
        assert_eq!(read_time("1714557600").unwrap(), read_time("2024-05-01T10:00:00Z").unwrap());
        assert!(read_time("yesterday").unwrap_err().contains("neither RFC 3339"));
        let t: EvalTime = serde_json::from_value(json!(1714557600)).unwrap();
        assert_eq!(unix_seconds_text(t.0), "1714557600");
        assert!(serde_json::from_value::<EvalTime>(json!(-1)).is_err());
    }
}
