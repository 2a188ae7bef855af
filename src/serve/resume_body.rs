//! A resume's choices as a JSON body: the same for the HTTP API (`POST
//! /api/v1/runs/RUN/resume`) and a `phoenix resume` handed to the server over its control
//! socket, so one cannot decide what the other cannot.

use phoenix_engine::exec::{Override, ResumeOptions};
use serde_json::Value;

/// `retry`, `skip`, `rerun`, `keep`: lists of step ids; `overrides`: `[{"invariant", "reason"}]`;
/// `confirm`, `abort`: booleans; `reason`: text. A field of the wrong type is an error, never
/// read as absent: an operator's `"retry": "switch_dns"` must not resume without the retry.
pub(crate) fn options(req: &Value, by: String) -> Result<ResumeOptions, String> {
    if !req.is_object() {
        return Err("the body must be a JSON object".into());
    }
    let mut overrides = Vec::new();
    for (i, o) in array(req, "overrides")?.iter().enumerate() {
        let field = |k: &str| match &o[k] {
            Value::String(s) => Ok(s.clone()),
            Value::Null => Ok(String::new()),
            _ => Err(format!("overrides[{i}].{k} must be a string")),
        };
        overrides.push(Override { invariant: field("invariant")?, reason: field("reason")? });
    }
    Ok(ResumeOptions {
        retry: ids(req, "retry")?,
        skip: ids(req, "skip")?,
        rerun: ids(req, "rerun")?,
        keep: ids(req, "keep")?,
        by: Some(by),
        overrides,
        confirm: flag(req, "confirm")?,
        abort: flag(req, "abort")?,
        reason: match &req["reason"] {
            Value::String(s) => Some(s.clone()),
            Value::Null => None,
            _ => return Err("reason must be a string".into()),
        },
        ..ResumeOptions::default()
    })
}

fn array<'v>(req: &'v Value, key: &str) -> Result<&'v [Value], String> {
    match &req[key] {
        Value::Array(a) => Ok(a),
        Value::Null => Ok(&[]),
        _ => Err(format!("{key} must be a list")),
    }
}

fn ids(req: &Value, key: &str) -> Result<Vec<String>, String> {
    array(req, key)?.iter().map(|v| v.as_str().map(str::to_string).ok_or_else(|| format!("{key} must be a list of step ids"))).collect()
}

fn flag(req: &Value, key: &str) -> Result<bool, String> {
    match &req[key] {
        Value::Bool(b) => Ok(*b),
        Value::Null => Ok(false),
        _ => Err(format!("{key} must be true or false")),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::options;

    #[test]
    fn every_choice_of_the_command_line_reads() {
        let body = json!({"retry": ["a"], "skip": ["b"], "rerun": ["c"], "keep": ["d"], "confirm": true, "abort": false,
            "reason": "why", "overrides": [{"invariant": "one_site", "reason": "checked"}]});
        let o = options(&body, "alice".into()).unwrap();
        assert_eq!((o.retry, o.skip, o.rerun, o.keep), (vec!["a".into()], vec!["b".into()], vec!["c".into()], vec!["d".into()]));
        assert!(o.confirm && !o.abort);
        assert_eq!(o.overrides.len(), 1);
        assert_eq!((o.overrides[0].invariant.as_str(), o.overrides[0].reason.as_str()), ("one_site", "checked"));
        assert_eq!(o.by.as_deref(), Some("alice"));
    }

    #[test]
    fn a_wrong_type_is_refused_not_ignored() {
        for body in [json!({"retry": "a"}), json!({"confirm": "yes"}), json!({"overrides": [{"invariant": 1}]}), json!([1])] {
            assert!(options(&body, "x".into()).is_err(), "{body}");
        }
    }
}
