//! The `drill:` section as written: what a drill of the runbook changes.

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

/// What `phoenix drill` changes: the same runbook, run against drill targets.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawDrill {
    /// Params overlaid on the ones given to `phoenix drill` (the overlay wins): the drill's
    /// DNS record, container, database… Each must be a declared param, with a value of its
    /// type.
    #[serde(default)]
    pub params: IndexMap<String, Value>,
    /// Production targets a drill must never touch: templates of params and vars (a DNS
    /// name, a bucket, a container, `host/db`, a DSN, `namespace/release`…). A drill whose
    /// mutating steps would change one is refused before any step runs.
    #[serde(default)]
    pub protect: Vec<String>,
    /// Steps run when a drill ends, however it ended (succeeded, failed, cancelled,
    /// aborted): put the drill's targets back. Same schema as `steps`; they may read any
    /// step's status and outputs. Resumable; a failed teardown fails the drill.
    #[serde(default)]
    pub teardown: IndexMap<String, super::RawStep>,
}
