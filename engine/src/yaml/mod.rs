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

/// Reads YAML text into JSON exactly as the runbook loader reads it (YAML 1.2 core schema,
/// anchors, merge keys), for checking runbooks against the JSON Schema. The error is
/// `line:column: message`.
pub fn to_json(src: &str) -> Result<serde_json::Value, String> {
    parse(src).map(|n| n.to_json()).map_err(|e| format!("{}:{}: {}", e.span.line, e.span.col, e.message))
}
