//! What an action declares about itself once: who runs it, what it does to the world
//! ([`Effect`], [`Capabilities`]), its outputs and an example ([`ActionInfo`]).

/// Who carries an action out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Built into the engine (`assert`, `approval`, `runbook`): the engine runs it itself.
    Engine,
    /// A built-in that runs like a plugin (`noop`, `sleep`).
    Builtin,
    /// A plugin (`exec`, `http`, …).
    Plugin,
}

/// What running a step does to the world, from least to most: what resume may run again
/// (`read`, `idempotent`), what the report lists as changed (`mutating`, `irreversible`), and
/// what `validate --strict` wants an approval before (`irreversible`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Effect {
    /// Reads only: running it again changes nothing (a probe, a GET, a list).
    Read,
    /// Changes something, and running it twice leaves the same result (an upsert, a sync).
    Idempotent,
    /// Changes something, and running it twice may not be harmless (a promotion, a page).
    Mutating,
    /// Cannot be undone (dropping data, cutting over for good).
    Irreversible,
}

impl Effect {
    /// Every effect, least first.
    pub const ALL: [Effect; 4] = [Effect::Read, Effect::Idempotent, Effect::Mutating, Effect::Irreversible];

    /// Whether a step found running after a crash may simply be run again.
    pub fn reruns_safely(self) -> bool {
        self <= Effect::Idempotent
    }

    /// The lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Effect::Read => "read",
            Effect::Idempotent => "idempotent",
            Effect::Mutating => "mutating",
            Effect::Irreversible => "irreversible",
        }
    }
}

/// What an action can do, declared once.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Capabilities {
    /// Whether it may be a health signal's probe.
    pub probe: bool,
    /// What it does to the world: the step's `effect` by default. A runbook may raise it
    /// (`effect: irreversible` on an upsert that must not be repeated), not lower it…
    pub effect: Effect,
    /// …unless what it does depends entirely on its inputs (`exec`, `http`, `postgres.query`,
    /// a child runbook): then the runbook says, and may declare any effect.
    pub general: bool,
    /// Whether it starts processes.
    pub spawns: bool,
    /// Whether it talks to the network.
    pub network: bool,
}

/// A documented input or output field.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Field {
    /// Its name.
    pub name: &'static str,
    /// What it holds.
    pub doc: &'static str,
}

/// What `phoenix plugins NAME` shows.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ActionInfo {
    /// The name used in `uses`.
    pub name: &'static str,
    /// One line on what it does.
    pub summary: &'static str,
    /// Who runs it.
    pub kind: Kind,
    /// Its outputs.
    pub outputs: &'static [Field],
    /// Its capabilities.
    pub caps: Capabilities,
    /// A short example of its use in a runbook.
    pub example: &'static str,
}

impl Capabilities {
    /// Whether a step of this action, as declared by default, may be run again after a crash.
    pub fn idempotent(&self) -> bool {
        self.effect.reruns_safely()
    }
}
