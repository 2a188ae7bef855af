//! Actions that run processes on this machine.

mod exec;
mod tail;

pub use exec::{Exec, ExecInput};
