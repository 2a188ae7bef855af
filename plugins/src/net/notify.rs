//! `notify`: tell people, in the format their tool takes — a Slack incoming webhook, a
//! Microsoft Teams workflow webhook (an Adaptive Card), PagerDuty's Events API v2, or a
//! plain JSON webhook.
//!
//! The webhook URL and the PagerDuty routing key are credentials: give them from `secrets:`.
//! They never appear in the step's outputs, logs or errors (a transport error is reported
//! without its URL).

use std::collections::BTreeMap;
use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use tracing::Instrument;

use super::client::client;
use super::traced::{self, Path};
use crate::duration::Dur;
use crate::{ActionCtx, ActionError, ActionInfo, Capabilities, Effect, Field, Issue, Kind, Plugin, Stream};

/// PagerDuty's Events API v2.
const PAGERDUTY: &str = "https://events.pagerduty.com/v2/enqueue";
const TARGETS: [&str; 4] = ["slack", "teams", "pagerduty", "webhook"];
const SEVERITIES: [&str; 4] = ["critical", "error", "warning", "info"];
const EVENTS: [&str; 3] = ["trigger", "acknowledge", "resolve"];

/// Sends a notification.
pub struct Notify;

/// `notify`'s input.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NotifyInput {
    /// Where: `slack`, `teams`, `pagerduty` or `webhook` (plain JSON).
    pub to: String,
    /// The incoming-webhook URL (Slack, Teams, webhook); for PagerDuty, another Events API
    /// endpoint than `https://events.pagerduty.com/v2/enqueue`. Give it from `secrets:`.
    #[serde(default)]
    pub url: Option<String>,
    /// PagerDuty's integration (routing) key. Give it from `secrets:`.
    #[serde(default)]
    pub routing_key: Option<String>,
    /// The headline, e.g. `DR failover {{ run.id }} failed`.
    pub title: String,
    /// The message (Slack and Teams render Markdown).
    #[serde(default)]
    pub text: Option<String>,
    /// `critical`, `error` (default), `warning` or `info`.
    #[serde(default)]
    pub severity: Option<String>,
    /// PagerDuty: `trigger` (default), `acknowledge` or `resolve`.
    #[serde(default)]
    pub event: Option<String>,
    /// PagerDuty: the incident's key, so that a later `resolve` closes it (default
    /// `phoenix/RUN`).
    #[serde(default)]
    pub dedup_key: Option<String>,
    /// Facts shown with the message (name → value).
    #[serde(default)]
    pub fields: BTreeMap<String, Value>,
    /// A link shown with the message (the run's page, a dashboard).
    #[serde(default)]
    pub link: Option<String>,
    /// How long the request may take (default 10s).
    #[serde(default)]
    pub timeout: Option<Dur>,
}

impl Plugin for Notify {
    type Input = NotifyInput;
    fn info(&self) -> ActionInfo {
        ActionInfo {
            name: "notify",
            summary: "Notifies people: Slack or Teams incoming webhooks, PagerDuty Events API v2, or a JSON webhook. Fails (retryably on 429 and 5xx) when not accepted.",
            kind: Kind::Plugin,
            outputs: &[
                Field { name: "to", doc: "where it went: `slack`, `teams`, `pagerduty` or `webhook`" },
                Field { name: "status", doc: "the HTTP status of the answer" },
                Field { name: "dedup_key", doc: "PagerDuty's incident key (null for the others)" },
                Field { name: "severity", doc: "the severity sent" },
            ],
            caps: Capabilities { probe: false, effect: Effect::Idempotent, general: false, spawns: false, network: true },
            example: "page:\n  uses: notify\n  with:\n    to: pagerduty\n    routing_key: \"{{ secrets.pagerduty_key }}\"\n    title: \"DR failover {{ run.id }} failed\"\n    severity: critical",
        }
    }

    fn check(&self, with: &Value) -> Vec<Issue> {
        let mut issues = Vec::new();
        let fixed = |k: &str| with.get(k).and_then(Value::as_str).filter(|s| !s.contains("{{"));
        for (key, allowed) in [("to", &TARGETS[..]), ("severity", &SEVERITIES[..]), ("event", &EVENTS[..])] {
            if let Some(v) = fixed(key).filter(|v| !allowed.contains(v)) {
                issues.push(Issue::at(key, format!("`{v}` is not one of {}", allowed.join(", "))));
            }
        }
        match fixed("to") {
            Some("pagerduty") if with.get("routing_key").is_none() => {
                issues
                    .push(Issue::at("", "`notify` to pagerduty needs `routing_key`").help("routing_key: \"{{ secrets.pagerduty_key }}\""));
            }
            Some(t) if t != "pagerduty" && TARGETS.contains(&t) && with.get("url").is_none() => {
                issues.push(
                    Issue::at("", format!("`notify` to {t} needs `url` (its incoming webhook)")).help("url: \"{{ secrets.webhook_url }}\""),
                );
            }
            _ => {}
        }
        if let Some(u) = fixed("url").filter(|u| !u.starts_with("https://") && !u.starts_with("http://")) {
            issues.push(Issue::at("url", format!("`{u}` is not an http:// or https:// URL")));
        }
        issues
    }

    fn destinations(&self, with: &Value) -> Vec<(&'static str, String)> {
        match crate::action::url_fields(with, &["url"]) {
            none if none.is_empty() && with.get("to").and_then(Value::as_str) == Some("pagerduty") => vec![("to", PAGERDUTY.to_string())],
            urls => urls,
        }
    }
    fn plan(&self, with: &Value) -> String {
        let to = with.get("to").and_then(Value::as_str).unwrap_or("?");
        format!("notify {to}: {}", with.get("title").and_then(Value::as_str).unwrap_or("?"))
    }

    async fn run(&self, ctx: &ActionCtx, input: NotifyInput) -> Result<Value, ActionError> {
        let severity = input.severity.clone().unwrap_or_else(|| "error".into());
        let (url, body, dedup) = message(ctx, &input, &severity)?;
        let timeout = input.timeout.map_or(Duration::from_secs(10), Dur::get);
        // The webhook's path is its credential (Slack, Teams): not on the span either.
        let send = traced::send(client().post(&url).json(&body).timeout(timeout), Path::Hidden);
        let answer = tokio::select! {
            a = send => a,
            _ = ctx.cancel.cancelled() => return Err(ActionError::Cancelled("the notification was not sent".into())),
        };
        // Never the URL: for Slack and Teams it is the credential.
        let (answer, span) = answer;
        let answer = answer.map_err(|e| ActionError::failed(format!("{} did not answer: {}", input.to, e.without_url())))?;
        let status = answer.status().as_u16();
        let text = answer.text().instrument(span.span().clone()).await.unwrap_or_default();
        span.body_bytes(text.len());
        drop(span);
        if !(200..300).contains(&status) {
            let snippet: String = text.chars().take(300).collect();
            return Err(ActionError::Failed {
                message: format!("{} refused the notification: HTTP {status}: {}", input.to, snippet.trim()),
                outputs: Some(json!({ "to": input.to, "status": status, "dedup_key": dedup, "severity": severity })),
                retryable: status >= 500 || status == 429,
                before_effect: false,
            });
        }
        ctx.log(Stream::Info, format!("notified {}: {} (HTTP {status})", input.to, input.title));
        Ok(json!({ "to": input.to, "status": status, "dedup_key": dedup, "severity": severity }))
    }
}

/// The URL, the body in the target's format, and PagerDuty's dedup key.
fn message(ctx: &ActionCtx, input: &NotifyInput, severity: &str) -> Result<(String, Value, Option<String>), ActionError> {
    if !SEVERITIES.contains(&severity) {
        return Err(ActionError::Input(format!("severity `{severity}` is not one of {}", SEVERITIES.join(", "))));
    }
    let text = input.text.clone().unwrap_or_default();
    let fact_text = |v: &Value| v.as_str().map_or_else(|| v.to_string(), str::to_string);
    let need_url = || input.url.clone().ok_or_else(|| ActionError::Input(format!("`notify` to {} needs `url`", input.to)));
    Ok(match input.to.as_str() {
        "slack" => {
            let mut blocks = vec![json!({ "type": "header", "text": { "type": "plain_text", "text": clip(&input.title, 150) } })];
            if !text.is_empty() {
                blocks.push(json!({ "type": "section", "text": { "type": "mrkdwn", "text": clip(&text, 3000) } }));
            }
            if !input.fields.is_empty() {
                let fields: Vec<Value> = input
                    .fields
                    .iter()
                    .take(10)
                    .map(|(k, v)| json!({ "type": "mrkdwn", "text": format!("*{k}*\n{}", fact_text(v)) }))
                    .collect();
                blocks.push(json!({ "type": "section", "fields": fields }));
            }
            let mut context = vec![json!({ "type": "mrkdwn", "text": format!("severity *{severity}* · run `{}`", ctx.run_id) })];
            if let Some(l) = &input.link {
                context.push(json!({ "type": "mrkdwn", "text": format!("<{l}|open>") }));
            }
            blocks.push(json!({ "type": "context", "elements": context }));
            (need_url()?, json!({ "text": format!("{}: {text}", input.title), "blocks": blocks }), None)
        }
        "teams" => {
            let mut body = vec![
                json!({ "type": "TextBlock", "text": input.title, "weight": "Bolder", "size": "Medium", "wrap": true, "color": teams_color(severity) }),
            ];
            if !text.is_empty() {
                body.push(json!({ "type": "TextBlock", "text": text, "wrap": true }));
            }
            let mut facts: Vec<Value> =
                vec![json!({ "title": "severity", "value": severity }), json!({ "title": "run", "value": ctx.run_id })];
            facts.extend(input.fields.iter().map(|(k, v)| json!({ "title": k, "value": fact_text(v) })));
            body.push(json!({ "type": "FactSet", "facts": facts }));
            let actions: Vec<Value> = input.link.iter().map(|l| json!({ "type": "Action.OpenUrl", "title": "Open", "url": l })).collect();
            let card = json!({
                "type": "AdaptiveCard", "$schema": "http://adaptivecards.io/schemas/adaptive-card.json", "version": "1.4",
                "body": body, "actions": actions,
            });
            let msg = json!({ "type": "message", "attachments": [{ "contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": null, "content": card }] });
            (need_url()?, msg, None)
        }
        "pagerduty" => {
            let key = input.routing_key.clone().ok_or_else(|| ActionError::Input("`notify` to pagerduty needs `routing_key`".into()))?;
            let event = input.event.clone().unwrap_or_else(|| "trigger".into());
            if !EVENTS.contains(&event.as_str()) {
                return Err(ActionError::Input(format!("event `{event}` is not one of {}", EVENTS.join(", "))));
            }
            let dedup = input.dedup_key.clone().unwrap_or_else(|| format!("phoenix/{}", ctx.run_id));
            let mut details: serde_json::Map<String, Value> = input.fields.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
            if !text.is_empty() {
                details.insert("text".into(), json!(text));
            }
            details.insert("run".into(), json!(ctx.run_id));
            let mut msg = json!({
                "routing_key": key, "event_action": event, "dedup_key": dedup,
                "payload": { "summary": clip(&input.title, 1024), "source": "phoenix", "severity": severity, "custom_details": details },
                "client": "Phoenix",
            });
            if let Some(l) = &input.link {
                msg["links"] = json!([{ "href": l, "text": "Phoenix run" }]);
            }
            (input.url.clone().unwrap_or_else(|| PAGERDUTY.into()), msg, Some(dedup))
        }
        "webhook" => {
            let msg = json!({
                "title": input.title, "text": text, "severity": severity, "fields": input.fields, "link": input.link,
                "run": ctx.run_id, "step": ctx.step_id,
            });
            (need_url()?, msg, None)
        }
        other => return Err(ActionError::Input(format!("`to: {other}` is not one of {}", TARGETS.join(", ")))),
    })
}

fn teams_color(severity: &str) -> &'static str {
    match severity {
        "critical" | "error" => "Attention",
        "warning" => "Warning",
        _ => "Default",
    }
}

/// At most `n` characters (the services refuse longer fields).
fn clip(s: &str, n: usize) -> String {
    if s.chars().count() <= n { s.to_string() } else { s.chars().take(n - 1).chain(std::iter::once('…')).collect() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> ActionCtx {
        let (log, _) = tokio::sync::mpsc::unbounded_channel();
        ActionCtx {
            run_id: "R1".into(),
            step_id: "page".into(),
            cancel: Default::default(),
            grace: Duration::from_secs(1),
            log,
            pace: std::sync::Arc::new(tokio::sync::Semaphore::new(crate::PACE_LINES)),
            work_dir: std::env::temp_dir(),
            env_remove: std::sync::Arc::from(Vec::new()),
            fence: 0,
            read_only: false,
        }
    }

    fn input(v: Value) -> NotifyInput {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn each_target_gets_its_own_format() {
        let i = input(
            json!({ "to": "pagerduty", "routing_key": "k", "title": "down", "fields": { "region": "us-east-1" }, "link": "http://x" }),
        );
        let (url, body, dedup) = message(&ctx(), &i, "critical").unwrap();
        assert_eq!(url, PAGERDUTY);
        assert_eq!(dedup.as_deref(), Some("phoenix/R1"));
        assert_eq!(body["event_action"], "trigger");
        assert_eq!(body["payload"]["severity"], "critical");
        assert_eq!(body["payload"]["custom_details"]["region"], "us-east-1");
        let i = input(json!({ "to": "slack", "url": "https://hooks.slack.com/services/T/B/X", "title": "down", "text": "*bad*" }));
        let (_, body, _) = message(&ctx(), &i, "error").unwrap();
        assert_eq!(body["blocks"][0]["type"], "header");
        assert_eq!(body["blocks"][1]["text"]["text"], "*bad*");
        let i = input(json!({ "to": "teams", "url": "https://x.webhook.office.com/y", "title": "down" }));
        let (_, body, _) = message(&ctx(), &i, "warning").unwrap();
        assert_eq!(body["attachments"][0]["content"]["type"], "AdaptiveCard");
        assert!(message(&ctx(), &input(json!({ "to": "slack", "title": "t" })), "error").is_err());
        assert!(message(&ctx(), &input(json!({ "to": "irc", "url": "http://x", "title": "t" })), "error").is_err());
        assert!(message(&ctx(), &input(json!({ "to": "webhook", "url": "http://x", "title": "t" })), "loud").is_err());
    }

    #[test]
    fn check_catches_what_it_can_before_the_run() {
        let issues = Notify.check(&json!({ "to": "pagerduty", "title": "t" }));
        assert!(issues.iter().any(|i| i.message.contains("routing_key")), "{issues:?}");
        let issues = Notify.check(&json!({ "to": "slack", "title": "t", "severity": "loud" }));
        assert!(issues.iter().any(|i| i.message.contains("needs `url`")), "{issues:?}");
        assert!(issues.iter().any(|i| i.message.contains("`loud`")), "{issues:?}");
        assert!(Notify.check(&json!({ "to": "{{ params.to }}", "title": "t" })).is_empty());
    }
}
