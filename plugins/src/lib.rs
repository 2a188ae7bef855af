//! Phoenix's step actions: the built-ins and the plugins, behind one [`Action`] trait.
//!
//! Every action declares a typed input (`with`, serde + schemars), its outputs, and its
//! capabilities once; [`registry()`] lists them all by hand so that `phoenix plugins`, the
//! JSON Schema, validation and the tests see one table.

mod action;
mod action_error;
pub mod analysis;
pub mod aws;
pub mod azure;
pub mod builtin;
pub mod duration;
pub mod evidence;
mod info;
pub mod net;
pub mod postgres;
mod registry;
pub mod size;
pub mod storage;
pub mod system;
mod target;
pub mod telemetry;

pub use action::{
    Action, ActionCtx, ActionError, ActionInfo, At, BoxFuture, Capabilities, Effect, Field, Issue, Kind, LogLine, PACE_LINES, Plugin,
    Stream, Target, compact, url_fields,
};
pub use registry::{find, names, registry};
