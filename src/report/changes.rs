//! What changed, read from the outputs of the actions that change things: DNS records,
//! database copies, object syncs and uploads, commands and HTTP calls.

use serde::Serialize;
use serde_json::Value;

use super::run::StepReport;
use super::time::duration;

/// One change.
#[derive(Debug, Serialize)]
pub(crate) struct Change {
    pub(crate) step: String,
    /// The action (`route53.upsert`…), from the runbook or, without it, from the outputs' shape.
    pub(crate) action: String,
    /// How the step ended: a failed step may still have changed something.
    pub(crate) status: String,
    /// One line: `DNS app.example.com. A: 192.0.2.10 → 198.51.100.7`.
    pub(crate) summary: String,
    pub(crate) details: Vec<String>,
}

/// The changes of the steps whose outputs say what they changed.
pub(crate) fn changes(steps: &[StepReport]) -> Vec<Change> {
    steps
        .iter()
        // A signal probe only looks, and so does a step declared `effect: read`.
        .filter(|s| s.outputs.is_object() && s.role.as_deref() != Some("probe") && s.effect.as_deref() != Some("read"))
        .filter_map(|s| {
            let action = s.uses.clone().or_else(|| shape(&s.outputs).map(str::to_string))?;
            let (mut summary, details) = describe(&action, &s.inputs, &s.outputs)?;
            if s.effect.as_deref() == Some("irreversible") {
                summary.push_str(" (irreversible)");
            }
            Some(Change { step: s.id.clone(), action, status: s.status.clone(), summary, details })
        })
        .collect()
}

/// The action whose outputs look like these, for a run whose runbook could not be read.
fn shape(out: &Value) -> Option<&'static str> {
    let has = |keys: &[&str]| keys.iter().all(|k| out.get(*k).is_some());
    [
        (&["previous", "record", "change_id"][..], "route53.upsert"),
        (&["deleted", "previous", "change_id", "zone_id"][..], "route53.delete"),
        (&["copied", "skipped", "from", "to"][..], "storage.sync"),
        (&["tables", "rows", "verified", "format"][..], "postgres.replicate"),
        (&["exit_code", "stdout"][..], "exec"),
        (&["status", "elapsed_ms", "headers"][..], "http"),
    ]
    .into_iter()
    .find(|(keys, _)| has(keys))
    .map(|(_, action)| action)
}

type Described = Option<(String, Vec<String>)>;

fn describe(action: &str, inputs: &Value, out: &Value) -> Described {
    match action {
        "route53.upsert" => Some(dns(inputs, out)),
        "route53.delete" => Some(dns_deleted(inputs, out)),
        "postgres.replicate" => Some(database(out)),
        "storage.sync" => Some(objects(out)),
        "s3.put" | "azure_blob.put" => Some((format!("put {} ({})", text(&out["url"]), bytes(&out["size"])), vec![])),
        "s3.delete" | "azure_blob.delete" => {
            let place = out["url"].as_str().or(out["container"].as_str()).unwrap_or("?");
            Some((format!("deleted {} object(s) in {place}", text(&out["deleted"])), vec![]))
        }
        "exec" => out.get("exit_code").map(|code| (format!("ran {} → exit {}", command(inputs), text(code)), script_values(inputs))),
        "http" => out.get("status").map(|status| {
            let method = inputs["method"].as_str().unwrap_or("GET").to_ascii_uppercase();
            (format!("{method} {} → {}", text(&inputs["url"]), text(status)), vec![])
        }),
        _ => None,
    }
}

/// `DNS app.example.com. A: 192.0.2.10 → 198.51.100.7`, with the TTLs and the change.
fn dns(inputs: &Value, out: &Value) -> (String, Vec<String>) {
    let (prev, now) = (&out["previous"], &out["record"]);
    let name = now["name"].as_str().or(prev["name"].as_str()).or(inputs["name"].as_str()).unwrap_or("?");
    let kind = now["type"].as_str().or(prev["type"].as_str()).or(inputs["type"].as_str()).unwrap_or("?");
    let values = |r: &Value| match r["values"].as_array() {
        Some(v) => v.iter().map(text).collect::<Vec<_>>().join(", "),
        None if r.is_null() => "(none)".to_string(),
        None => "(alias)".to_string(),
    };
    let after = if now.is_null() { "(not applied, or unknown)".to_string() } else { values(now) };
    let ttl = |r: &Value| if r.is_null() { "(none)".to_string() } else { text(&r["ttl"]) };
    let mut details = vec![format!("TTL {} → {}", ttl(prev), ttl(now))];
    if let Some(id) = out["change_id"].as_str() {
        details.push(format!("change {id} {}", text(&out["status"])));
    }
    if out["changed"] == Value::Bool(false) {
        details.push("the record was already so: nothing changed".into());
    }
    (format!("DNS {name} {kind}: {} → {after}", values(prev)), details)
}

/// `DNS dr.example.com. A deleted: 203.0.113.5 (TTL 120)`, or that it was already gone.
fn dns_deleted(inputs: &Value, out: &Value) -> (String, Vec<String>) {
    let prev = &out["previous"];
    let name = prev["name"].as_str().or(inputs["name"].as_str()).unwrap_or("?");
    let kind = prev["type"].as_str().or(inputs["type"].as_str()).unwrap_or("?");
    if out["deleted"] != Value::Bool(true) {
        return (format!("DNS {name} {kind}: already gone, nothing deleted"), vec![]);
    }
    let values = prev["values"].as_array().map_or_else(|| "(alias)".to_string(), |v| v.iter().map(text).collect::<Vec<_>>().join(", "));
    let details = out["change_id"].as_str().map(|id| format!("change {id} {}", text(&out["status"]))).into_iter().collect();
    (format!("DNS {name} {kind} deleted: {values} (TTL {})", text(&prev["ttl"])), details)
}

/// `PostgreSQL copy: 3 tables, 1.2 MiB in 2.1s, verified`, with each counted table's rows.
fn database(out: &Value) -> (String, Vec<String>) {
    let tables = out["tables"].as_array().map_or_else(|| text(&out["tables"]), |t| t.len().to_string());
    let verified = if out["verified"] == Value::Bool(true) { "verified" } else { "not verified" };
    let summary = format!("PostgreSQL copy: {tables} tables, {} in {}, {verified}", bytes(&out["bytes"]), ms(&out["duration_ms"]));
    let rows = out["rows"].as_object().into_iter().flatten().map(|(t, n)| format!("{t}: {} rows", text(n)));
    (summary, rows.chain(out["mismatches"].as_array().map(|m| format!("{} table(s) differ", m.len()))).collect())
}

/// `objects s3://a → azblob://b: 4 of 6 copied, 2 skipped, 0 deleted (1.5 MiB)`.
fn objects(out: &Value) -> (String, Vec<String>) {
    let summary = format!(
        "objects {} → {}: {} of {} copied, {} skipped, {} deleted ({})",
        text(&out["from"]),
        text(&out["to"]),
        text(&out["copied"]),
        text(&out["objects"]),
        text(&out["skipped"]),
        text(&out["deleted"]),
        bytes(&out["bytes"])
    );
    let verified = match out["verified"].as_bool() {
        Some(true) => "verified: the destination was listed again and matched",
        Some(false) => "verification failed",
        None => "not verified",
    };
    (summary, vec![verified.to_string(), format!("took {}", ms(&out["duration_ms"]))])
}

/// The command an `exec` step ran: its argv, or the first line of its script.
fn command(inputs: &Value) -> String {
    if let Some(argv) = inputs["cmd"].as_array() {
        return format!("`{}`", argv.iter().map(text).collect::<Vec<_>>().join(" "));
    }
    let script = inputs["script"].as_str().unwrap_or("").trim();
    let first = script.lines().next().unwrap_or("");
    format!("script `{first}`{}", if script.lines().nth(1).is_some() { " …" } else { "" })
}

/// The values a script's `${PHX_Vn}` references stood for (as stored: secrets redacted),
/// each cut to a line of at most 200 characters.
fn script_values(inputs: &Value) -> Vec<String> {
    let Some(env) = inputs["env"].as_object().filter(|_| inputs["script"].is_string()) else { return vec![] };
    env.iter()
        .filter(|(k, _)| k.starts_with("PHX_V"))
        .map(|(k, v)| {
            let v = text(v).replace('\n', "\\n");
            let cut: String = v.chars().take(200).collect();
            format!("{k} = {cut}{}", if cut.len() < v.len() { " …" } else { "" })
        })
        .collect()
}

/// A JSON value as text: strings without quotes, null as `-`.
fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".to_string(),
        other => other.to_string(),
    }
}

fn ms(v: &Value) -> String {
    v.as_u64().map_or_else(|| "-".to_string(), duration)
}

/// A size in bytes as people say it (`3.2 MiB`).
fn bytes(v: &Value) -> String {
    v.as_u64().map_or_else(|| text(v), phoenix_plugins::size::format_bytes)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_dns_upsert_reads_old_to_new() {
        let out = json!({
            "previous": { "name": "app.example.com.", "type": "A", "ttl": 60, "values": ["192.0.2.10"] },
            "record": { "name": "app.example.com.", "type": "A", "ttl": 30, "values": ["198.51.100.7", "198.51.100.8"] },
            "change_id": "C1", "status": "INSYNC", "changed": true, "zone_id": "Z1",
        });
        assert_eq!(shape(&out), Some("route53.upsert"));
        let (summary, details) = dns(&Value::Null, &out);
        assert_eq!(summary, "DNS app.example.com. A: 192.0.2.10 → 198.51.100.7, 198.51.100.8");
        assert_eq!(details[0], "TTL 60 → 30");
    }

    #[test]
    fn a_dns_delete_says_what_it_removed_or_that_nothing_was_there() {
        let out = json!({
            "deleted": true, "change_id": "C2", "status": "INSYNC", "zone_id": "Z1",
            "previous": { "name": "dr.example.com.", "type": "A", "ttl": 120, "values": ["203.0.113.5"] },
        });
        assert_eq!(shape(&out), Some("route53.delete"));
        let (summary, details) = dns_deleted(&Value::Null, &out);
        assert_eq!(
            (summary.as_str(), details),
            ("DNS dr.example.com. A deleted: 203.0.113.5 (TTL 120)", vec!["change C2 INSYNC".to_string()])
        );
        let gone = json!({ "deleted": false, "previous": null, "change_id": null, "status": null, "zone_id": "Z1" });
        let (summary, _) = dns_deleted(&json!({ "name": "dr.example.com", "type": "A" }), &gone);
        assert_eq!(summary, "DNS dr.example.com A: already gone, nothing deleted");
    }

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(
            (bytes(&json!(512)), bytes(&json!(1536)), bytes(&json!(3_355_443))),
            ("512 B".into(), "1.5 KiB".into(), "3.2 MiB".into())
        );
    }
}
