//! `statuspage`: what a provider says about itself on its Atlassian Statuspage site
//! (Cloudflare's is https://www.cloudflarestatus.com).
//!
//! Two public, unauthenticated documents of the v2 API, asked at once:
//! `/api/v2/status.json` (the page's overall indicator) and
//! `/api/v2/incidents/unresolved.json` (what is still open). Both must answer for the site to
//! count as available: an indicator without its incidents would tell half the story.

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use super::timestamp::parse_rfc3339;
use super::{Found, Unavailable, check_url, decode, endpoint, gather, get, refused, shown_text, snippet, timeout_of};
use crate::duration::Dur;
use crate::{ActionCtx, ActionError, ActionInfo, Capabilities, Effect, Field, Issue, Kind, Plugin};

/// The most incidents kept in the outputs, newest first.
const MAX_INCIDENTS: usize = 20;

/// Reads a Statuspage site's status and unresolved incidents.
pub struct Statuspage;

/// `statuspage`'s input.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StatuspageInput {
    /// The site's base URL, e.g. `https://www.cloudflarestatus.com` (`/api/v2/…` is added).
    pub url: String,
    /// How long each request may take, connecting and reading included (default 10s).
    #[serde(default)]
    pub timeout: Option<Dur>,
    /// Whether a site that cannot be read fails the step (default false: the step succeeds
    /// with `available: false` and `error`).
    #[serde(default)]
    pub required: bool,
}

/// `/api/v2/status.json`.
#[derive(Deserialize)]
struct StatusDoc {
    page: Page,
    status: Status,
}

#[derive(Deserialize)]
struct Page {
    name: String,
}

#[derive(Deserialize)]
struct Status {
    indicator: String,
    description: String,
}

/// `/api/v2/incidents/unresolved.json`.
#[derive(Deserialize)]
struct IncidentsDoc {
    incidents: Vec<Incident>,
}

#[derive(Deserialize)]
struct Incident {
    name: String,
    status: String,
    impact: String,
    #[serde(default)]
    created_at: Option<String>,
    #[serde(default)]
    updated_at: Option<String>,
    #[serde(default)]
    shortlink: Option<String>,
    #[serde(default)]
    components: Vec<Component>,
}

#[derive(Deserialize)]
struct Component {
    name: String,
}

impl Plugin for Statuspage {
    type Input = StatuspageInput;
    fn info(&self) -> ActionInfo {
        ActionInfo {
            name: "statuspage",
            summary: "Reads an Atlassian Statuspage site (v2 API): its indicator and unresolved incidents. An unreadable site gives `available: false` unless `required`.",
            kind: Kind::Plugin,
            outputs: &[
                Field { name: "available", doc: "whether the site could be read" },
                Field { name: "error", doc: "why it could not, for people (null when available)" },
                Field { name: "page", doc: "the page's name, e.g. `Cloudflare`" },
                Field { name: "indicator", doc: "`none`, `minor`, `major` or `critical`" },
                Field { name: "description", doc: "the page's summary, e.g. `All Systems Operational`" },
                Field { name: "has_active_incidents", doc: "whether any incident is unresolved" },
                Field {
                    name: "incidents",
                    doc: "unresolved incidents, newest first (at most 20): `name`, `status`, `impact`, `created_at`, `updated_at`, `shortlink`, `components` (names)",
                },
            ],
            caps: Capabilities { probe: true, effect: Effect::Read, general: false, spawns: false, network: true },
            example: "cloudflare:\n  uses: statuspage\n  with: { url: \"https://www.cloudflarestatus.com\", timeout: 5s }",
        }
    }

    fn check(&self, with: &Value) -> Vec<Issue> {
        check_url(with, "/api/v2", "/api/v2/…", "https://www.cloudflarestatus.com")
    }

    fn destinations(&self, with: &Value) -> Vec<(&'static str, String)> {
        crate::action::url_fields(with, &["url"])
    }
    fn plan(&self, with: &Value) -> String {
        let url = with.get("url").and_then(Value::as_str).map_or_else(|| "?".to_string(), shown_text);
        format!("read the status and unresolved incidents of {url}")
    }

    async fn run(&self, ctx: &ActionCtx, input: StatuspageInput) -> Result<Value, ActionError> {
        let status_url = endpoint(&input.url, "/api/v2/status.json")?;
        let incidents_url = endpoint(&input.url, "/api/v2/incidents/unresolved.json")?;
        let site = shown_text(&input.url);
        let timeout = timeout_of(input.timeout);
        let empty = json!({ "page": null, "indicator": null, "description": null, "has_active_incidents": null, "incidents": [] });
        let work = async {
            let status = async {
                let answer = get(&status_url, &Default::default(), timeout).await?;
                if !answer.status.is_success() {
                    return Err(not_ok(&answer));
                }
                decode::<StatusDoc>(&answer, "Statuspage v2 status JSON")
            };
            let incidents = async {
                let answer = get(&incidents_url, &Default::default(), timeout).await?;
                if !answer.status.is_success() {
                    return Err(not_ok(&answer));
                }
                decode::<IncidentsDoc>(&answer, "Statuspage v2 incidents JSON")
            };
            let (status, incidents) = tokio::try_join!(status, incidents)?;
            Ok::<_, Unavailable>(found(status, incidents))
        };
        gather(ctx, &format!("Statuspage {site}"), input.required, empty, work).await
    }
}

/// A non-2xx answer: a 404 usually means `url` is not a Statuspage site.
fn not_ok(answer: &super::Answer) -> Unavailable {
    let detail = if answer.status.as_u16() == 404 { Some("is `url` a Statuspage site?".to_string()) } else { snippet(&answer.body) };
    refused(answer, detail)
}

/// The outputs and the log line, from both documents.
fn found(status: StatusDoc, doc: IncidentsDoc) -> Found {
    let total = doc.incidents.len();
    let mut incidents = doc.incidents;
    // Newest first; an incident whose time does not read sorts last, in the page's order.
    incidents.sort_by_key(|i| std::cmp::Reverse(i.created_at.as_deref().and_then(|t| parse_rfc3339(t).ok()).unwrap_or(i128::MIN)));
    incidents.truncate(MAX_INCIDENTS);
    let newest = incidents.first().map(|i| format!(", newest: {} ({}, impact {})", i.name, i.status, i.impact)).unwrap_or_default();
    let summary = format!(
        "{}: {} ({}), {} unresolved incident{}{newest}",
        status.page.name,
        status.status.indicator,
        status.status.description,
        total,
        if total == 1 { "" } else { "s" }
    );
    let incidents: Vec<Value> = incidents
        .into_iter()
        .map(|i| {
            json!({
                "name": i.name,
                "status": i.status,
                "impact": i.impact,
                "created_at": i.created_at,
                "updated_at": i.updated_at,
                "shortlink": i.shortlink,
                "components": i.components.into_iter().map(|c| c.name).collect::<Vec<_>>(),
            })
        })
        .collect();
    Found {
        outputs: json!({
            "page": status.page.name,
            "indicator": status.status.indicator,
            "description": status.status.description,
            "has_active_incidents": total > 0,
            "incidents": incidents,
        }),
        summary,
    }
}
