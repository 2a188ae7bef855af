use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

use super::{ENGINE_CAPS, engine_only};
use crate::{Action, ActionCtx, ActionError, ActionInfo, Issue, Kind, Plugin};

/// Fails the step unless an expression holds.
pub struct Assert;

/// `assert`'s input.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AssertInput {
    /// An expression (no `{{ }}`), e.g. `score.level == 'dr_failover'`.
    pub that: String,
    /// The failure message.
    #[serde(default)]
    pub message: Option<String>,
}

impl Plugin for Assert {
    type Input = AssertInput;
    fn info(&self) -> ActionInfo {
        ActionInfo {
            name: "assert",
            summary: "Fails the step (and so its dependents) unless an expression holds.",
            kind: Kind::Engine,
            outputs: &[],
            caps: ENGINE_CAPS,
            example: "confirm:\n  needs: [score]\n  uses: assert\n  with: { that: \"score.level == 'dr_failover'\", message: health no longer calls for DR }",
        }
    }
    fn expression_fields(&self) -> &'static [&'static str] {
        &["that"]
    }
    fn check(&self, with: &Value) -> Vec<Issue> {
        match with.get("that").and_then(Value::as_str) {
            Some(s) if s.trim_start().starts_with("{{") => vec![
                Issue::at("that", "`that` is an expression; it needs no `{{ }}`")
                    .help(format!("write `that: \"{}\"`", s.trim().trim_start_matches("{{").trim_end_matches("}}").trim())),
            ],
            _ => vec![],
        }
    }
    fn plan(&self, with: &Value) -> String {
        format!("assert {}", with.get("that").and_then(Value::as_str).unwrap_or("?"))
    }
    async fn run(&self, _ctx: &ActionCtx, _input: AssertInput) -> Result<Value, ActionError> {
        Err(engine_only(Action::info(self).name))
    }
}
