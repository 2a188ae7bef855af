//! Alertmanager's webhook (payload version 4): route each notification to a runbook, start
//! one run per alert group, record repeats and resolution on that run.

use std::collections::BTreeMap;

use phoenix_engine::exec::{RunError, StartOptions};
use phoenix_engine::state::{AlertGroup, Batch, EventKind};
use regex::Regex;
use serde::Deserialize;
use serde_json::{Value, json};

use super::App;
use super::config::Route;

/// The webhook's body. Fields Phoenix does not use are ignored.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Notification {
    pub(crate) version: String,
    pub(crate) group_key: String,
    pub(crate) status: String,
    #[serde(default)]
    pub(crate) receiver: String,
    #[serde(default)]
    pub(crate) group_labels: BTreeMap<String, String>,
    #[serde(default)]
    pub(crate) common_labels: BTreeMap<String, String>,
    #[serde(default)]
    pub(crate) common_annotations: BTreeMap<String, String>,
    #[serde(default, rename = "externalURL")]
    pub(crate) external_url: String,
    #[serde(default)]
    pub(crate) alerts: Vec<Alert>,
}

/// One alert of a notification.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Alert {
    pub(crate) status: String,
    #[serde(default)]
    pub(crate) labels: BTreeMap<String, String>,
    #[serde(default)]
    pub(crate) annotations: BTreeMap<String, String>,
    #[serde(default)]
    pub(crate) starts_at: String,
    #[serde(default)]
    pub(crate) ends_at: String,
    #[serde(default, rename = "generatorURL")]
    pub(crate) generator_url: String,
    #[serde(default)]
    pub(crate) fingerprint: String,
}

/// An Alertmanager label matcher: `name="value"`, `name!="value"`, `name=~"regex"`,
/// `name!~"regex"` (regexes anchored at both ends, as Alertmanager's are).
#[derive(Debug)]
pub(crate) struct Matcher {
    name: String,
    re: Regex,
    negate: bool,
}

impl Matcher {
    pub(crate) fn parse(text: &str) -> Result<Matcher, String> {
        let at = text.find(['=', '!']).ok_or_else(|| format!("`{text}` is not a matcher such as `alertname=\"RegionDown\"`"))?;
        let name = text[..at].trim();
        let rest = &text[at..];
        let (op, value) = ["=~", "!~", "!=", "="]
            .iter()
            .find_map(|op| rest.strip_prefix(op).map(|v| (*op, v.trim())))
            .ok_or_else(|| format!("`{text}`: the operator is one of =, !=, =~, !~"))?;
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("`{text}`: `{name}` is not a label name"));
        }
        let value = match value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
            Some(v) => v.replace("\\\"", "\"").replace("\\\\", "\\"),
            None => value.to_string(),
        };
        let pattern = if op.ends_with('~') { value } else { regex::escape(&value) };
        let re = Regex::new(&format!("^(?:{pattern})$")).map_err(|e| format!("`{text}`: {e}"))?;
        Ok(Matcher { name: name.to_string(), re, negate: op.starts_with('!') })
    }

    /// A missing label matches as the empty string, as in Alertmanager.
    fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.re.is_match(labels.get(&self.name).map_or("", String::as_str)) != self.negate
    }
}

/// A route's param template must parse and read only `alert` and `group`.
pub(crate) fn check_template(t: &str) -> Result<(), String> {
    let refs = phoenix_engine::template::check_template(t).map_err(|e| e.message)?;
    match refs.iter().find(|r| r.root != "alert" && r.root != "group") {
        Some(r) => Err(format!(
            "`{}` is unknown here: a route's params read `alert` (labels, annotations, startsAt…) and `group` (key, labels, externalURL…)",
            r.root
        )),
        None => Ok(()),
    }
}

/// What became of one notification.
#[derive(Debug, Default, serde::Serialize)]
pub(crate) struct Handled {
    pub(crate) started: Vec<String>,
    pub(crate) deduplicated: Vec<String>,
    pub(crate) resolved: Vec<String>,
    pub(crate) unrouted: usize,
    /// Why a routed alert started nothing (a held lock, bad params).
    pub(crate) refused: Vec<String>,
}

/// Routes a notification: first matching route, one run per route and group.
pub(crate) async fn handle(app: &App, n: Notification, by: &str) -> Handled {
    let mut out = Handled::default();
    let firing = n.status == "firing";
    let candidates: Vec<&Alert> = n.alerts.iter().filter(|a| !firing || a.status == "firing").collect();
    let Some((route, alert)) =
        app.config.routes.iter().find_map(|r| candidates.iter().find(|a| r.matchers.iter().all(|m| m.matches(&a.labels))).map(|a| (r, *a)))
    else {
        out.unrouted = n.alerts.len();
        app.metrics.alert("unrouted", n.alerts.len() as u64);
        return out;
    };
    let store = app.engine.store();
    let now = now_ms();
    let known = store.alert_group(&route.name, &n.group_key).ok().flatten();
    match (firing, known) {
        (true, Some(mut g)) if !g.resolved => {
            g.notifications += 1;
            g.last_at = now;
            save(app, route, &n.group_key, &g);
            let text = format!("alert group {} is still firing (notification {})", n.group_key, g.notifications);
            let _ = app
                .engine
                .record_event(&g.run, EventKind::Note { step: None, text, data: Some(json!({ "group_key": n.group_key })) })
                .await;
            app.metrics.alert("deduplicated", 1);
            out.deduplicated.push(g.run);
        }
        (true, _) => match start(app, route, &n, alert, by).await {
            Ok(run) => {
                let g = AlertGroup { run: run.clone(), resolved: false, notifications: 1, first_at: now, last_at: now };
                save(app, route, &n.group_key, &g);
                app.metrics.alert("started", 1);
                out.started.push(run);
            }
            Err(e) => {
                app.metrics.alert("refused", 1);
                out.refused.push(format!("{}: {e}", route.name));
            }
        },
        (false, Some(mut g)) => {
            let first = !g.resolved;
            g.resolved = true;
            g.last_at = now;
            save(app, route, &n.group_key, &g);
            if first {
                let text = format!("alert group {} resolved", n.group_key);
                let _ = app
                    .engine
                    .record_event(&g.run, EventKind::Note { step: None, text, data: Some(json!({ "group_key": n.group_key })) })
                    .await;
            }
            app.metrics.alert("resolved", 1);
            out.resolved.push(g.run);
        }
        // Resolved, but this route never started a run for the group: nothing to record.
        (false, None) => {}
    }
    out
}

fn save(app: &App, route: &Route, key: &str, g: &AlertGroup) {
    let mut b = Batch::default();
    b.alert_group(&route.name, key, g);
    if let Err(e) = app.engine.store().commit(b, true) {
        tracing::error!(route = %route.name, "recording alert group {key}: {e}");
    }
}

/// Starts the route's runbook with params rendered from the alert.
async fn start(app: &App, route: &Route, n: &Notification, alert: &Alert, by: &str) -> Result<String, String> {
    let ctx = json!({
        "alert": {
            "status": alert.status, "labels": alert.labels, "annotations": alert.annotations,
            "startsAt": alert.starts_at, "endsAt": alert.ends_at, "generatorURL": alert.generator_url,
            "fingerprint": alert.fingerprint,
        },
        "group": {
            "key": n.group_key, "labels": n.group_labels, "commonLabels": n.common_labels,
            "commonAnnotations": n.common_annotations, "externalURL": n.external_url, "receiver": n.receiver,
        },
    });
    let mut params = Vec::new();
    for (k, t) in &route.params {
        let v = phoenix_engine::template::render_tree(&json!({ "v": t }), &phoenix_engine::template::to_mj(&ctx), &[], &[])
            .map_err(|(_, e)| format!("params.{k}: {e}"))?;
        let v = match &v["v"] {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        params.push((k.clone(), v));
    }
    let alertname = alert.labels.get("alertname").map_or("", String::as_str);
    let opts = StartOptions {
        params,
        by: Some(format!("{by} (alert {alertname})")),
        // The run's origin: its RTO counts from the alert's start.
        alert: Some(phoenix_engine::state::AlertOrigin::new(&alert.fingerprint, alertname, &alert.starts_at)),
        ..Default::default()
    };
    super::runs::launch(app, route.runbook.clone(), opts).await.map_err(|e| match e {
        RunError::BadInput(m) | RunError::Store(phoenix_engine::state::StoreError(m)) => m,
        e @ RunError::Stopped { .. } => e.to_string(),
    })
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn matchers_follow_alertmanager() {
        let l = labels(&[("alertname", "RegionDown"), ("severity", "critical")]);
        assert!(Matcher::parse(r#"alertname="RegionDown""#).unwrap().matches(&l));
        assert!(Matcher::parse("alertname=RegionDown").unwrap().matches(&l));
        assert!(!Matcher::parse(r#"alertname!="RegionDown""#).unwrap().matches(&l));
        assert!(Matcher::parse(r#"severity=~"critical|page""#).unwrap().matches(&l));
        assert!(!Matcher::parse(r#"severity=~"crit""#).unwrap().matches(&l), "anchored");
        assert!(Matcher::parse(r#"team!~".+""#).unwrap().matches(&l), "a missing label is empty");
        assert!(Matcher::parse(r#"alertname="Region.*""#).unwrap().matches(&labels(&[("alertname", "Region.*")])));
        assert!(!Matcher::parse(r#"alertname="Region.*""#).unwrap().matches(&l), "= is literal");
        assert!(Matcher::parse("nonsense").is_err());
        assert!(Matcher::parse(r#"a=~"(""#).is_err());
        assert!(Matcher::parse(r#"bad-name="x""#).is_err());
    }

    #[test]
    fn the_v4_payload_reads() {
        let n: Notification = serde_json::from_value(json!({
            "version": "4", "groupKey": "{}:{alertname=\"RegionDown\"}", "truncatedAlerts": 0, "status": "firing",
            "receiver": "phoenix", "groupLabels": {"alertname": "RegionDown"}, "commonLabels": {"alertname": "RegionDown"},
            "commonAnnotations": {}, "externalURL": "http://am:9093",
            "alerts": [{"status": "firing", "labels": {"alertname": "RegionDown", "region": "us-east-1"}, "annotations": {"summary": "down"},
                        "startsAt": "2026-11-29T03:00:00Z", "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "http://prom/graph", "fingerprint": "abc"}]
        }))
        .unwrap();
        assert_eq!(n.alerts[0].labels["region"], "us-east-1");
        assert_eq!(n.external_url, "http://am:9093");
    }
}
