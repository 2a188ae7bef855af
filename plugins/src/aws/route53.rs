//! `route53.*`: DNS records in a Route 53 hosted zone.
//!
//! Names are written with or without the final dot and compared without regard to case or
//! Route 53's escapes (`\052` for `*`). Only simple records (no `set_identifier`: not weighted,
//! latency, failover or geo routing) are read and written. TXT and SPF values are written as
//! plain text and quoted for Route 53; a single quoted string read back is unquoted, so what
//! `route53.get` or an upsert's `previous` reports can be written back as it is.

mod change;
mod delete;
mod get;
mod upsert;

pub use delete::{Route53Delete, Route53DeleteInput};
pub use get::{Route53Get, Route53GetInput};
pub use upsert::{Route53Upsert, Route53UpsertInput};

use std::net::{Ipv4Addr, Ipv6Addr};

use aws_sdk_route53::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_route53::types::{ResourceRecordSet, RrType};
use serde::{Deserialize, Deserializer};
use serde_json::{Value, json};

use super::{call, describe, settings};
use crate::{ActionCtx, ActionError, At, Issue, Target};

/// The record types Route 53 serves.
const TYPES: &[&str] =
    &["A", "AAAA", "CAA", "CNAME", "DS", "HTTPS", "MX", "NAPTR", "NS", "PTR", "SOA", "SPF", "SRV", "SSHFP", "SVCB", "TLSA", "TXT"];

/// Route 53 is global: any region reaches it, so one is not required.
const GLOBAL_REGION: &str = "us-east-1";

/// A hosted zone's id without the `/hostedzone/` prefix the API sometimes returns.
fn zone_id(id: &str) -> &str {
    let id = id.trim();
    id.strip_prefix("/hostedzone/").unwrap_or(id)
}

/// A name as Route 53 stores it: fully qualified, with the final dot, in lowercase (DNS
/// names are case-insensitive; Route 53 keeps them in lowercase).
fn fqdn(name: &str) -> String {
    let name = name.trim().to_ascii_lowercase();
    if name.ends_with('.') { name } else { format!("{name}.") }
}

/// A name for comparison: Route 53's `\ddd` escapes decoded, lowercase, no final dot (the
/// spelling a drill's [`Target`] uses too).
fn canonical(name: &str) -> String {
    crate::target::dns_name(name)
}

/// The record an upsert or a delete changes, from its rendered `with`.
fn record_target(with: &Value) -> Vec<Target> {
    let text = |k: &str| with.get(k).and_then(Value::as_str);
    match (text("zone_id"), text("name"), text("type")) {
        (Some(zone), Some(name), Some(rtype)) => vec![Target::dns(zone, name, rtype)],
        _ => vec![],
    }
}

/// Whether two record names are the same name.
fn same_name(a: &str, b: &str) -> bool {
    canonical(a) == canonical(b)
}

/// A record type as Route 53 spells it; any case is accepted.
fn record_type(t: &str) -> Result<RrType, String> {
    let upper = t.trim().to_ascii_uppercase();
    if TYPES.contains(&upper.as_str()) {
        Ok(RrType::from(upper.as_str()))
    } else {
        Err(format!("`{t}` is not a record type Route 53 serves ({})", TYPES.join(", ")))
    }
}

/// Values as text: numbers are accepted too (a template may render `10` for an MX priority).
fn strings<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Vec::<Value>::deserialize(d)?
        .into_iter()
        .map(|v| match v {
            Value::String(s) => Ok(s),
            Value::Number(n) => Ok(n.to_string()),
            other => Err(serde::de::Error::custom(format!("a record value is text, not {other}"))),
        })
        .collect()
}

/// A literal (not templated) text input.
fn literal<'a>(with: &'a Value, key: &str) -> Option<&'a str> {
    with.get(key).and_then(Value::as_str).filter(|s| !s.contains("{{"))
}

/// The checks every Route 53 action shares: settings, zone, name and type. Templates are
/// checked once rendered (`run` calls this on its rendered input).
fn check_record(with: &Value) -> Vec<Issue> {
    let mut issues = settings::check(with);
    if literal(with, "zone_id").is_some_and(|z| zone_id(z).is_empty()) {
        issues.push(Issue::at("zone_id", "`zone_id` is empty").help("the hosted zone's id, e.g. `Z0123456789ABCDEFGHIJ`"));
    }
    if literal(with, "name").is_some_and(|n| n.trim().trim_end_matches('.').is_empty()) {
        issues.push(Issue::at("name", "`name` is empty").help("the record's full name, e.g. `app.example.com`"));
    }
    if let Some(Err(e)) = literal(with, "type").map(record_type) {
        issues.push(Issue::at("type", e).help("e.g. `type: A`"));
    }
    issues
}

/// What is wrong with the values of an upsert, for types whose values can be checked here.
fn check_values(with: &Value) -> Vec<Issue> {
    let mut issues = vec![];
    if with.get("ttl").and_then(Value::as_u64) == Some(0) {
        issues.push(
            Issue::at("ttl", "`ttl` is 0: resolvers would not cache the record and ask Route 53 on every lookup")
                .help("a failover record usually has a short TTL such as `ttl: 60`"),
        );
    }
    let Some(values) = with.get("values").and_then(Value::as_array) else { return issues };
    if values.is_empty() {
        issues.push(Issue::at("values", "`values` is empty: a record set needs at least one value").help("e.g. `values: [203.0.113.10]`"));
        return issues;
    }
    let rtype = literal(with, "type").map(|t| t.trim().to_ascii_uppercase());
    let at = |i: usize, message: String| {
        let mut issue = Issue::at("values", message);
        issue.at.push(At::Index(i));
        issue
    };
    if rtype.as_deref() == Some("CNAME") && values.len() > 1 {
        issues.push(Issue::at("values", format!("a CNAME record has one value, not {}", values.len())));
    }
    for (i, v) in values.iter().enumerate() {
        let Some(v) = v.as_str().filter(|s| !s.contains("{{")) else { continue };
        let v = v.trim();
        if v.is_empty() {
            issues.push(at(i, "an empty value".into()));
            continue;
        }
        match rtype.as_deref() {
            Some("A") if v.parse::<Ipv4Addr>().is_err() => issues.push(at(i, format!("`{v}` is not an IPv4 address (an A record)"))),
            Some("AAAA") if v.parse::<Ipv6Addr>().is_err() => issues.push(at(i, format!("`{v}` is not an IPv6 address (an AAAA record)"))),
            _ => {}
        }
    }
    issues
}

/// Issues found at run time (in the rendered input) as one error.
fn rendered(issues: Vec<Issue>) -> Result<(), ActionError> {
    if issues.is_empty() {
        return Ok(());
    }
    Err(ActionError::Input(issues.into_iter().map(|i| i.message).collect::<Vec<_>>().join("; ")))
}

/// A failed Route 53 call. A missing zone or a change Route 53 refuses will not succeed on a
/// retry; throttling (`PriorRequestNotComplete`, `Throttling`) and the network may.
fn failed<E, R>(what: &str, e: &SdkError<E, R>) -> ActionError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    let permanent = matches!(e.code(), Some("NoSuchHostedZone" | "InvalidChangeBatch" | "InvalidInput" | "AccessDenied"));
    // A request that could not be built, or a connection never made, sent nothing.
    let before_effect = match e {
        SdkError::ConstructionFailure(_) => true,
        SdkError::DispatchFailure(_) => crate::action_error::never_connected(e),
        _ => false,
    };
    ActionError::Failed { message: format!("{what} failed: {}", describe(e)), outputs: None, retryable: !permanent, before_effect }
}

/// The simple record set with this name and type, if there is one.
async fn find(
    ctx: &ActionCtx,
    client: &aws_sdk_route53::Client,
    zone: &str,
    name: &str,
    rtype: &RrType,
) -> Result<Option<ResourceRecordSet>, ActionError> {
    let what = format!("reading {name} {rtype} in hosted zone {zone}");
    let (mut start_name, mut start_type, mut start_id) = (fqdn(name), rtype.clone(), None::<String>);
    loop {
        let list = client
            .list_resource_record_sets()
            .hosted_zone_id(zone)
            .start_record_name(&start_name)
            .start_record_type(start_type.clone())
            .set_start_record_identifier(start_id.clone())
            .max_items(10)
            .send();
        let page = call(ctx, "reading the record", list).await?.map_err(|e| failed(&what, &e))?;
        // Sets come in name, then type order: those of this name and type come first, the
        // weighted, latency… ones (with a set identifier) among them.
        for set in page.resource_record_sets() {
            if !(same_name(set.name(), name) && set.r#type() == rtype) {
                return Ok(None);
            }
            if set.set_identifier().is_none() {
                return Ok(Some(set.clone()));
            }
        }
        match (page.is_truncated(), page.next_record_name(), page.next_record_type()) {
            (true, Some(n), Some(t)) if same_name(n, name) && t == rtype => {
                (start_name, start_type, start_id) = (n.to_string(), t.clone(), page.next_record_identifier().map(str::to_string));
            }
            _ => return Ok(None),
        }
    }
}

/// A record set for the outputs: type, ttl, values (TXT unquoted), and an alias's target.
fn set_json(set: &ResourceRecordSet) -> Value {
    let text = matches!(set.r#type(), RrType::Txt | RrType::Spf);
    let values: Vec<String> =
        set.resource_records().iter().map(|r| if text { unquote(r.value()) } else { r.value().to_string() }).collect();
    let mut v = json!({ "name": set.name(), "type": set.r#type().as_str(), "ttl": set.ttl(), "values": values });
    if let Some(alias) = set.alias_target() {
        v["alias_target"] = json!({
            "hosted_zone_id": alias.hosted_zone_id(),
            "dns_name": alias.dns_name(),
            "evaluate_target_health": alias.evaluate_target_health(),
        });
    }
    v
}

/// A TXT value as Route 53 takes it: quoted, in strings of at most 255 characters. A value
/// already quoted (as Route 53 returns several strings) is sent as it is.
fn quote(value: &str) -> String {
    if value.len() >= 2 && value.starts_with('"') && value.ends_with('"') {
        return value.to_string();
    }
    let chars: Vec<char> = value.chars().collect();
    let parts: Vec<String> =
        chars.chunks(255).map(|c| format!("\"{}\"", c.iter().collect::<String>().replace('\\', "\\\\").replace('"', "\\\""))).collect();
    if parts.is_empty() { "\"\"".to_string() } else { parts.join(" ") }
}

/// A TXT value read from Route 53: one quoted string is unquoted; several are left as they are.
fn unquote(value: &str) -> String {
    let Some(inner) = value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) else { return value.to_string() };
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return value.to_string(), // an unescaped quote: several strings
            '\\' => match chars.next() {
                Some(e @ ('"' | '\\')) => out.push(e),
                Some(d) if d.is_digit(8) => {
                    let digits: String = std::iter::once(d).chain(chars.clone().take(2)).collect();
                    match u8::from_str_radix(&digits, 8) {
                        Ok(b) if digits.len() == 3 => {
                            out.push(char::from(b));
                            chars.nth(1);
                        }
                        _ => out.extend(['\\', d]),
                    }
                }
                Some(other) => out.extend(['\\', other]),
                None => out.push('\\'),
            },
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_compare_without_case_final_dot_or_escapes() {
        assert!(same_name("App.Example.com", "app.example.com."));
        assert!(same_name("\\052.example.com.", "*.example.com"));
        assert!(!same_name("app.example.com", "app2.example.com"));
        assert_eq!(fqdn(" App.Example.com "), "app.example.com.");
        assert_eq!(fqdn("app.example.com."), "app.example.com.");
        assert_eq!(zone_id("/hostedzone/Z123"), "Z123");
    }

    #[test]
    fn the_target_is_the_record_in_one_spelling() {
        let with = json!({ "zone_id": "/hostedzone/Z123", "name": "App.Example.com.", "type": "a", "ttl": 60, "values": ["10.0.0.1"] });
        assert_eq!(record_target(&with), vec![Target::dns("Z123", "app.example.com", "A")]);
        assert_eq!(crate::find("route53.upsert").unwrap().targets(&with), record_target(&with));
        assert_eq!(crate::find("route53.delete").unwrap().targets(&with)[0].to_string(), "DNS app.example.com A in zone Z123");
        assert!(record_target(&json!({ "zone_id": "Z1" })).is_empty());
    }

    #[test]
    fn record_types_are_known_in_any_case() {
        assert_eq!(record_type("aaaa").unwrap(), RrType::Aaaa);
        assert!(record_type("AA").unwrap_err().contains("not a record type"));
    }

    #[test]
    fn txt_values_round_trip() {
        for v in ["v=spf1 -all", "say \"hi\"", "back\\slash", ""] {
            assert_eq!(unquote(&quote(v)), v, "{v}");
        }
        let long = "k".repeat(300);
        let quoted = quote(&long);
        assert_eq!(quoted, format!("\"{}\" \"{}\"", "k".repeat(255), "k".repeat(45)));
        // Several strings stay as Route 53 gave them, and are written back unchanged.
        assert_eq!(unquote(&quoted), quoted);
        assert_eq!(quote(&quoted), quoted);
        assert_eq!(unquote("\"a\\010b\""), "a\u{8}b");
    }

    #[test]
    fn values_are_checked_for_their_type() {
        let issues = check_values(&json!({ "type": "A", "ttl": 0, "values": ["10.0.0.1", "::1", "{{ x }}", ""] }));
        let messages: Vec<&str> = issues.iter().map(|i| i.message.as_str()).collect();
        assert_eq!(messages.len(), 3, "{messages:?}");
        assert!(messages[0].starts_with("`ttl` is 0"));
        assert_eq!(messages[1], "`::1` is not an IPv4 address (an A record)");
        assert_eq!(issues[1].at, vec![At::Key("values".into()), At::Index(1)]);
        assert_eq!(messages[2], "an empty value");
        assert!(check_values(&json!({ "type": "CNAME", "values": ["a.example.com", "b.example.com"] }))[0].message.contains("one value"));
        assert!(check_values(&json!({ "values": [] }))[0].message.contains("`values` is empty"));
    }
}
