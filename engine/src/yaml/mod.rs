//! A YAML document as a tree of nodes that remember where they came from.
//!
//! The runbook loader needs a line, a column and a path for every diagnostic, so the file
//! is parsed once into [`Node`]s carrying spans, and typed values are read out of that tree
//! by [`de`]. Nothing else in the engine reads YAML.

pub(crate) mod de;
mod node;
mod parse;
mod path;

pub use node::{Node, NodeKind, Span};
pub(crate) use parse::parse;
pub use path::{Path, Seg};
