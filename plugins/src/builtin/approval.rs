use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

use super::{ENGINE_CAPS, engine_only};
use crate::{Action, ActionCtx, ActionError, ActionInfo, Field, Issue, Kind, Plugin};

/// Waits for a person to approve or reject.
pub struct Approval;

/// `approval`'s input.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApprovalInput {
    /// The question put to the approver.
    pub message: String,
    /// Who may approve (names as given to `phoenix approve --as`, or API token names), or a
    /// template giving them (`"{{ params.approvers }}"`), rendered when the step starts
    /// waiting. Left out: anyone may decide. Empty once rendered: the step fails.
    #[serde(default)]
    pub approvers: Vec<String>,
}

impl Plugin for Approval {
    type Input = ApprovalInput;
    fn info(&self) -> ActionInfo {
        ActionInfo {
            name: "approval",
            summary: "Waits for `phoenix approve RUN STEP` (or --reject); the step's timeout rejects it.",
            kind: Kind::Engine,
            outputs: &[
                Field { name: "approved", doc: "true, or the step fails when rejected" },
                Field { name: "by", doc: "who approved" },
                Field { name: "comment", doc: "the approver's comment" },
                Field { name: "at", doc: "when (RFC 3339)" },
            ],
            caps: ENGINE_CAPS,
            example: "approve_dns:\n  needs: [replicate_db]\n  uses: approval\n  with: { message: \"Point app.example.com at Azure?\" }\n  timeout: 30m",
        }
    }
    fn check(&self, with: &Value) -> Vec<Issue> {
        match with.get("approvers") {
            Some(Value::Array(a)) if a.is_empty() => vec![
                Issue::at("approvers", "an empty `approvers` list lets nobody decide")
                    .help("list who may approve, or leave `approvers` out to let anyone who can reach the run decide"),
            ],
            _ => vec![],
        }
    }

    fn plan(&self, with: &Value) -> String {
        format!("ask for approval: {}", with.get("message").and_then(Value::as_str).unwrap_or("?"))
    }
    async fn run(&self, _ctx: &ActionCtx, _input: ApprovalInput) -> Result<Value, ActionError> {
        Err(engine_only(Action::info(self).name))
    }
}
