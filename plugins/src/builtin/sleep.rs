use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::duration::Dur;
use crate::{ActionCtx, ActionError, ActionInfo, Capabilities, Effect, Kind, Plugin};

/// Waits; a cancel or timeout ends the wait at once.
pub struct Sleep;

/// `sleep`'s input.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SleepInput {
    /// How long to wait: `500ms`, `30s`, `5m`.
    pub duration: Dur,
}

impl Plugin for Sleep {
    type Input = SleepInput;
    fn info(&self) -> ActionInfo {
        ActionInfo {
            name: "sleep",
            summary: "Waits for a duration (for DNS TTLs, cache expiry, cool-downs).",
            kind: Kind::Builtin,
            outputs: &[],
            caps: Capabilities { probe: false, effect: Effect::Read, general: false, spawns: false, network: false },
            example: "wait_ttl:\n  uses: sleep\n  with: { duration: 60s }",
        }
    }
    fn plan(&self, with: &Value) -> String {
        format!("sleep {}", with.get("duration").and_then(Value::as_str).unwrap_or("?"))
    }
    async fn run(&self, ctx: &ActionCtx, input: SleepInput) -> Result<Value, ActionError> {
        tokio::select! {
            _ = tokio::time::sleep(input.duration.get()) => Ok(json!({})),
            _ = ctx.cancel.cancelled() => Err(ActionError::Cancelled("sleep interrupted".into())),
        }
    }
}
