use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::{ActionCtx, ActionError, ActionInfo, Capabilities, Effect, Field, Kind, Plugin};

/// Does nothing; joins branches, marks milestones, or publishes fixed `outputs`.
pub struct Noop;

/// `noop` takes no inputs but an optional `outputs` to publish.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoopInput {
    /// Values to publish as the step's outputs.
    #[serde(default)]
    pub outputs: Option<Map<String, Value>>,
}

impl Plugin for Noop {
    type Input = NoopInput;
    fn info(&self) -> ActionInfo {
        ActionInfo {
            name: "noop",
            summary: "Does nothing: joins branches, marks a milestone, or publishes fixed outputs.",
            kind: Kind::Builtin,
            outputs: &[Field { name: "*", doc: "the keys of `with.outputs`, if given" }],
            caps: Capabilities { probe: true, effect: Effect::Read, general: false, spawns: false, network: false },
            example: "join:\n  needs: [a, b]\n  uses: noop",
        }
    }
    fn plan(&self, _with: &Value) -> String {
        "noop".into()
    }
    async fn run(&self, _ctx: &ActionCtx, input: NoopInput) -> Result<Value, ActionError> {
        Ok(Value::Object(input.outputs.unwrap_or_default()))
    }
}
