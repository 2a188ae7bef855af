//! `loki.query`: recent log lines from Loki (`GET /loki/api/v1/query_range`), newest first.
//!
//! Loki answers one list of entries per stream (label set); with `direction=backward` and
//! `limit` it keeps the newest `limit` entries over all streams. They are merged here into
//! one list, newest first, each line with its stream's labels.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::timestamp::{format_rfc3339_nanos, now_ns, parse_rfc3339};
use super::{
    Found, Unavailable, check_headers, check_not_empty, check_url, decode, endpoint, gather, get, header_map, refused, shown_text, snippet,
    timeout_of,
};
use crate::duration::{Dur, format_duration, parse_duration};
use crate::{ActionCtx, ActionError, ActionInfo, Capabilities, Effect, Field, Issue, Kind, Plugin};

/// How far back `since` looks when it is not set.
const DEFAULT_SINCE: std::time::Duration = std::time::Duration::from_secs(3600);
/// Lines kept when `limit` is not set.
const DEFAULT_LIMIT: u32 = 100;
/// Loki's own default `max_entries_limit_per_query`.
const MAX_LIMIT: u32 = 5000;

/// Reads log lines from Loki.
pub struct LokiQuery;

/// `loki.query`'s input.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LokiQueryInput {
    /// Loki's base URL, e.g. `http://loki:3100` (`/loki/api/v1/query_range` is added).
    pub url: String,
    /// The LogQL log query, e.g. `{app="api"} |= "error"`.
    pub query: String,
    /// How far back from `end` to look (default 1h); `start` replaces it.
    #[serde(default)]
    pub since: Option<Dur>,
    /// The range's start, RFC 3339 (default: `end` minus `since`).
    #[serde(default)]
    pub start: Option<String>,
    /// The range's end, RFC 3339 (default: now).
    #[serde(default)]
    pub end: Option<String>,
    /// At most this many lines, the newest (default 100; Loki's own default cap is 5000).
    #[serde(default)]
    #[schemars(range(min = 1, max = 5000))]
    pub limit: Option<u32>,
    /// Request headers, e.g. `X-Scope-OrgID` or `Authorization` from `secrets`; their values
    /// are never logged.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// How long the request may take, connecting and reading included (default 10s).
    #[serde(default)]
    pub timeout: Option<Dur>,
    /// Whether a failed query fails the step (default false: the step succeeds with
    /// `available: false` and `error`).
    #[serde(default)]
    pub required: bool,
}

/// Loki's answer to `query_range`.
#[derive(Deserialize)]
struct Reply {
    data: ReplyData,
}

#[derive(Deserialize)]
struct ReplyData {
    #[serde(rename = "resultType")]
    result_type: String,
    result: Value,
}

#[derive(Deserialize)]
struct LokiStream {
    #[serde(default)]
    stream: Map<String, Value>,
    /// `["<unix ns>", "line"]`, and a third element (structured metadata) on newer Lokis
    /// when asked for it, which is not read.
    values: Vec<Vec<Value>>,
}

/// One line of the merged list.
struct Entry {
    ns: i128,
    stream: usize,
    line: String,
}

impl Plugin for LokiQuery {
    type Input = LokiQueryInput;
    fn info(&self) -> ActionInfo {
        ActionInfo {
            name: "loki.query",
            summary: "Reads log lines from Loki (query_range, newest first, merged across streams). A failed query gives `available: false` unless `required`.",
            kind: Kind::Plugin,
            outputs: &[
                Field { name: "available", doc: "whether Loki answered" },
                Field { name: "error", doc: "why not, for people (null when available)" },
                Field {
                    name: "lines",
                    doc: "the lines, newest first, at most `limit`: `timestamp` (RFC 3339, nanoseconds), `labels` (the stream's), `line`",
                },
                Field { name: "count", doc: "how many lines" },
            ],
            caps: Capabilities { probe: true, effect: Effect::Read, general: false, spawns: false, network: true },
            example: "api_errors:\n  uses: loki.query\n  with: { url: \"http://loki:3100\", query: '{app=\"api\"} |= \"error\"', since: 15m, limit: 50 }",
        }
    }

    fn check(&self, with: &Value) -> Vec<Issue> {
        let mut issues = check_url(with, "/loki/api", "/loki/api/v1/query_range", "http://loki:3100");
        issues.extend(check_not_empty(with, "query", "{app=\"api\"} |= \"error\""));
        let literal = |k: &str| with.get(k).and_then(Value::as_str).filter(|s| !super::is_template(s));
        let mut times = [None, None];
        for (slot, key) in times.iter_mut().zip(["start", "end"]) {
            if let Some(t) = literal(key) {
                match parse_rfc3339(t) {
                    Ok(ns) => *slot = Some(ns),
                    Err(e) => issues.push(Issue::at(key, e)),
                }
            }
        }
        if let [Some(start), Some(end)] = times {
            if start >= end {
                issues.push(Issue::at("start", "`start` is not before `end`"));
            }
        }
        if with.get("start").is_some_and(|v| !v.is_null()) && with.get("since").is_some_and(|v| !v.is_null()) {
            issues.push(Issue::at("since", "`since` and `start` both set the range's start").help("keep one of them"));
        }
        if let Some(since) = literal("since").and_then(|s| parse_duration(s).ok()) {
            if since.is_zero() {
                issues.push(Issue::at("since", "`since` is zero: the range would be empty"));
            }
        }
        issues.extend(check_headers(with));
        issues
    }

    fn destinations(&self, with: &Value) -> Vec<(&'static str, String)> {
        crate::action::url_fields(with, &["url"])
    }
    fn plan(&self, with: &Value) -> String {
        let url = with.get("url").and_then(Value::as_str).map_or_else(|| "?".to_string(), shown_text);
        let range = match (with.get("start").and_then(Value::as_str), with.get("since").and_then(Value::as_str)) {
            (Some(start), _) => format!("since {start}"),
            (None, Some(since)) => format!("over the last {since}"),
            (None, None) => "over the last 1h".to_string(),
        };
        let limit = with.get("limit").map_or_else(|| DEFAULT_LIMIT.to_string(), |l| l.to_string().trim_matches('"').to_string());
        format!("read at most {limit} lines from Loki at {url} {range}: {}", with.get("query").and_then(Value::as_str).unwrap_or("?"))
    }

    async fn run(&self, ctx: &ActionCtx, input: LokiQueryInput) -> Result<Value, ActionError> {
        let mut url = endpoint(&input.url, "/loki/api/v1/query_range")?;
        let headers = header_map(&input.headers)?;
        let timeout = timeout_of(input.timeout);
        let time = |key: &str, text: &Option<String>| {
            text.as_deref().map(|t| parse_rfc3339(t).map_err(|e| ActionError::Input(format!("`{key}`: {e}")))).transpose()
        };
        let end = time("end", &input.end)?.unwrap_or_else(now_ns);
        let since = input.since.map_or(DEFAULT_SINCE, Dur::get);
        let start = time("start", &input.start)?.unwrap_or(end - since.as_nanos() as i128);
        if start >= end {
            return Err(ActionError::Input(format!(
                "the range is empty: `start` {} is not before `end` {}",
                format_rfc3339_nanos(start),
                format_rfc3339_nanos(end)
            )));
        }
        let limit = input.limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(ActionError::Input(format!("`limit` is {limit}; it takes 1 to {MAX_LIMIT} lines")));
        }
        url.query_pairs_mut()
            .append_pair("query", &input.query)
            .append_pair("start", &start.to_string())
            .append_pair("end", &end.to_string())
            .append_pair("limit", &limit.to_string())
            .append_pair("direction", "backward");
        let empty = json!({ "lines": [], "count": 0 });
        let source = format!("Loki {}", shown_text(&input.url));
        let range = match &input.start {
            Some(_) => format!("from {} to {}", format_rfc3339_nanos(start), format_rfc3339_nanos(end)),
            None => format!("in the {} before {}", format_duration(since), format_rfc3339_nanos(end)),
        };
        let work = async {
            let answer = get(&url, &headers, timeout).await?;
            if !answer.status.is_success() {
                // Loki explains a refused query in plain text ("parse error at line 1, col 6: …").
                return Err(refused(&answer, snippet(&answer.body)));
            }
            let reply = decode::<Reply>(&answer, "Loki's query JSON")?;
            if reply.data.result_type != "streams" {
                return Err(Unavailable::permanent(format!(
                    "Loki answered a {} instead of log lines: `query` must be a log query such as `{{app=\"api\"}} |= \"error\"`, not a metric query",
                    reply.data.result_type
                )));
            }
            let streams: Vec<LokiStream> = serde_json::from_value(reply.data.result)
                .map_err(|e| Unavailable::retryable(format!("GET {} answered streams that do not read ({e})", answer.shown)))?;
            let lines = merge(&streams, limit as usize)
                .map_err(|e| Unavailable::retryable(format!("GET {} answered an entry that does not read ({e})", answer.shown)))?;
            let count = lines.len();
            let newest = lines.first().map(|l| format!(", newest at {}", l["timestamp"].as_str().unwrap_or("?"))).unwrap_or_default();
            let summary = format!(
                "Loki: {count} line{} from {} stream{} {range}{newest}{}",
                if count == 1 { "" } else { "s" },
                streams.len(),
                if streams.len() == 1 { "" } else { "s" },
                if count == limit as usize { " (the limit: there may be more)" } else { "" }
            );
            Ok(Found { outputs: json!({ "lines": lines, "count": count }), summary })
        };
        gather(ctx, &source, input.required, empty, work).await
    }
}

/// Every stream's entries in one list, newest first (ties keep Loki's order), at most `limit`.
fn merge(streams: &[LokiStream], limit: usize) -> Result<Vec<Value>, String> {
    let mut entries = Vec::new();
    for (i, s) in streams.iter().enumerate() {
        for v in &s.values {
            let (Some(ts), Some(line)) = (v.first().and_then(Value::as_str), v.get(1).and_then(Value::as_str)) else {
                return Err(format!("`{}` is not [\"<unix ns>\", \"line\"]", Value::Array(v.clone())));
            };
            let ns = ts.parse::<i128>().map_err(|_| format!("`{ts}` is not a timestamp in nanoseconds"))?;
            entries.push(Entry { ns, stream: i, line: line.to_string() });
        }
    }
    entries.sort_by_key(|e| std::cmp::Reverse(e.ns));
    entries.truncate(limit);
    Ok(entries
        .into_iter()
        .map(|e| json!({ "timestamp": format_rfc3339_nanos(e.ns), "labels": streams[e.stream].stream, "line": e.line }))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_merge_newest_first_within_the_limit() {
        let streams: Vec<LokiStream> = serde_json::from_value(json!([
            {"stream": {"app": "api"}, "values": [["1714557600000000003", "api 3"], ["1714557600000000001", "api 1"]]},
            {"stream": {"app": "db"}, "values": [["1714557600000000004", "db 4"], ["1714557600000000002", "db 2", {"trace_id": "x"}]]}
        ]))
        .unwrap();
        let lines = merge(&streams, 3).unwrap();
        let texts: Vec<&str> = lines.iter().map(|l| l["line"].as_str().unwrap()).collect();
        assert_eq!(texts, ["db 4", "api 3", "db 2"]);
        assert_eq!(lines[0]["labels"], json!({"app": "db"}));
        assert_eq!(lines[0]["timestamp"], "2024-05-01T10:00:00.000000004Z");
        let bad: Vec<LokiStream> = serde_json::from_value(json!([{"stream": {}, "values": [["soon", "x"]]}])).unwrap();
        assert!(merge(&bad, 10).unwrap_err().contains("nanoseconds"));
    }
}
