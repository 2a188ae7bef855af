use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::{ENGINE_CAPS, engine_only};
use crate::{Action, ActionCtx, ActionError, ActionInfo, Field, Kind, Plugin};

/// Runs another runbook as a child run and waits for it.
pub struct RunbookAction;

/// `runbook`'s input.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunbookInput {
    /// The child runbook, relative to this runbook's directory.
    pub file: String,
    /// The child's params.
    #[serde(default)]
    pub params: Map<String, Value>,
}

impl Plugin for RunbookAction {
    type Input = RunbookInput;
    fn info(&self) -> ActionInfo {
        ActionInfo {
            name: "runbook",
            summary: "Runs another runbook as a child run with its own id; resuming the parent resumes the child.",
            kind: Kind::Engine,
            outputs: &[
                Field { name: "run_id", doc: "the child run's id" },
                Field { name: "status", doc: "the child run's final state" },
                Field { name: "outputs", doc: "the child runbook's outputs" },
            ],
            caps: ENGINE_CAPS,
            example: "failover:\n  uses: runbook\n  with: { file: dr-failover.yaml, params: { target: azure } }",
        }
    }
    fn plan(&self, with: &Value) -> String {
        format!("run runbook {}", with.get("file").and_then(Value::as_str).unwrap_or("?"))
    }
    async fn run(&self, _ctx: &ActionCtx, _input: RunbookInput) -> Result<Value, ActionError> {
        Err(engine_only(Action::info(self).name))
    }
}
