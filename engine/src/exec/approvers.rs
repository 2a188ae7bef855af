//! Who may decide on an approval step: its `approvers`, rendered when it starts waiting
//! (`"{{ params.approvers }}"` included) and recorded in the step's `inputs`. Every check —
//! the driver, `phoenix approve` on a halted run, the page — reads the recorded list.

use serde_json::{Value, json};

use crate::template::render_tree;
/// Renders a step's `approvers`: `None` when it has none (anyone may decide).
pub fn render_approvers(given: Option<&Value>, ctx: &minijinja::Value) -> Result<Option<Vec<String>>, String> {
    let Some(given) = given else { return Ok(None) };
    let rendered =
        render_tree(&json!({ "a": given }), ctx, &[], &[]).map_err(|(_, e)| format!("`approvers` could not be rendered: {e}"))?;
    match approvers_in(&rendered["a"])? {
        Some(list) => Ok(Some(list)),
        None => Err("`approvers` rendered to nothing".into()),
    }
}

/// Approvers as recorded or rendered: a list of names, or a string of names separated by
/// commas. Empty, or anything else, is an error: nobody could decide.
pub fn approvers_in(v: &Value) -> Result<Option<Vec<String>>, String> {
    let names: Vec<String> = match v {
        Value::Null => return Ok(None),
        Value::Array(a) => a
            .iter()
            .map(|x| x.as_str().map(|s| s.trim().to_string()).ok_or_else(|| format!("`approvers` holds {x}, not a name")))
            .collect::<Result<_, _>>()?,
        Value::String(s) => s.split(',').map(|n| n.trim().to_string()).collect(),
        other => return Err(format!("`approvers` is {other}, not a list of names")),
    };
    if names.is_empty() || names.iter().any(String::is_empty) {
        return Err(format!(
            "`approvers` is {v} once rendered: nobody could decide. Give the names of who may approve, or leave `approvers` out to let anyone who can reach the run decide"
        ));
    }
    Ok(Some(names))
}

/// The approvers recorded in a waiting step's `inputs`: `None` when it was not asked yet,
/// `Some(Ok(None))` when anyone may decide.
pub fn recorded(inputs: Option<&Value>) -> Option<Result<Option<Vec<String>>, String>> {
    inputs?.get("approvers").map(approvers_in)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_lists_strings_and_what_is_refused() {
        assert_eq!(approvers_in(&json!(["alice", " bob "])), Ok(Some(vec!["alice".into(), "bob".into()])));
        assert_eq!(approvers_in(&json!("alice, bob")), Ok(Some(vec!["alice".into(), "bob".into()])));
        assert_eq!(approvers_in(&Value::Null), Ok(None));
        for bad in [json!([]), json!(""), json!([""]), json!([1]), json!({"a": 1}), json!("alice,,bob")] {
            assert!(approvers_in(&bad).is_err(), "{bad}");
        }
        assert!(approvers_in(&json!([])).unwrap_err().contains("nobody could decide"));
    }

    #[test]
    fn a_template_renders_to_the_list_it_names() {
        let ctx =
            minijinja::Value::from(minijinja::value::Serde(json!({ "params": { "approvers": ["alice"], "none": [], "one": "carol" } })));
        assert_eq!(render_approvers(Some(&json!("{{ params.approvers }}")), &ctx), Ok(Some(vec!["alice".into()])));
        assert_eq!(render_approvers(Some(&json!(["{{ params.one }}", "dave"])), &ctx), Ok(Some(vec!["carol".into(), "dave".into()])));
        assert_eq!(render_approvers(None, &ctx), Ok(None));
        assert!(render_approvers(Some(&json!("{{ params.none }}")), &ctx).is_err());
        assert!(render_approvers(Some(&json!("{{ params.missing }}")), &ctx).is_err());
    }
}
