//! Actions that run processes on this machine.

mod exec;
mod exec_targets;
mod tail;

pub use exec::{Exec, ExecInput};
