//! Built-in actions: `noop`, `sleep`, `assert`, `approval`, `runbook`.

mod approval;
mod assert;
mod noop;
mod runbook;
mod sleep;

pub use approval::{Approval, ApprovalInput};
pub use assert::{Assert, AssertInput};
pub use noop::Noop;
pub use runbook::{RunbookAction, RunbookInput};
pub use sleep::Sleep;

use crate::{ActionError, Capabilities, Effect};

pub(crate) const ENGINE_CAPS: Capabilities =
    Capabilities { probe: false, effect: Effect::Read, general: true, spawns: false, network: false };

pub(crate) fn engine_only(name: &str) -> ActionError {
    ActionError::Input(format!("`{name}` is carried out by the engine, not as a plugin"))
}
