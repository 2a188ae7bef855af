//! The seed's decision: a root-cause category, a confidence and a recommended action, and the
//! JSON Schema an analysis (an LLM's reply or the built-in rules) must satisfy.

use serde_json::{Value, json};

/// `root_cause_category`'s values, as the seed's prompt lists them.
pub const CATEGORIES: &[&str] = &["aws_infrastructure", "cloudflare_infrastructure", "internal_bug", "network", "unknown"];
/// `confidence`'s values.
pub const CONFIDENCES: &[&str] = &["high", "medium", "low"];
/// `recommended_action`'s values.
pub const ACTIONS: &[&str] = &["trigger_dr", "investigate", "monitor", "wait"];

/// The default schema of a decision. Beyond the seed's enums it holds the seed's own rule as
/// data: `trigger_dr` only for an AWS or Cloudflare infrastructure problem.
pub fn schema() -> Value {
    json!({
        "type": "object",
        "required": ["root_cause_category", "confidence", "evidence", "recommended_action", "reasoning"],
        "properties": {
            "root_cause_category": { "enum": CATEGORIES },
            "confidence": { "enum": CONFIDENCES },
            "evidence": { "type": "string" },
            "recommended_action": { "enum": ACTIONS },
            "reasoning": { "type": "string" }
        },
        "if": { "properties": { "recommended_action": { "const": "trigger_dr" } } },
        "then": { "properties": { "root_cause_category": { "enum": ["aws_infrastructure", "cloudflare_infrastructure"] } } }
    })
}

/// Checks `value` against `schema`; the problems, each with where it is.
pub fn violations(schema: &Value, value: &Value) -> Result<Vec<String>, String> {
    let validator = jsonschema::validator_for(schema).map_err(|e| format!("`schema` is not a valid JSON Schema: {e}"))?;
    Ok(validator
        .iter_errors(value)
        .map(|e| {
            let at = e.instance_path().to_string();
            if at.is_empty() { e.to_string() } else { format!("{at}: {e}") }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seeds_enums_and_rule_are_enforced() {
        let ok = json!({"root_cause_category": "aws_infrastructure", "confidence": "high", "evidence": "e", "recommended_action": "trigger_dr", "reasoning": "r"});
        assert!(violations(&schema(), &ok).unwrap().is_empty());
        let bad_enum = json!({"root_cause_category": "aws", "confidence": "high", "evidence": "e", "recommended_action": "trigger_dr", "reasoning": "r"});
        assert!(violations(&schema(), &bad_enum).unwrap().iter().any(|v| v.contains("/root_cause_category")));
        let bug_dr = json!({"root_cause_category": "internal_bug", "confidence": "high", "evidence": "e", "recommended_action": "trigger_dr", "reasoning": "r"});
        assert!(!violations(&schema(), &bug_dr).unwrap().is_empty(), "trigger_dr for an internal bug");
    }
}
