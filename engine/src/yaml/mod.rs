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

/// Reads a whole YAML file as a `T` (any serde type: `phoenix serve`'s configuration) with the
/// runbook loader's diagnostics: file, line, column, YAML path, and every unknown key with a
/// "did you mean". The diagnostics come with the text, for drawing them.
pub fn load_typed<T: serde::de::DeserializeOwned>(text: &str, file: &std::path::Path) -> Result<T, Vec<crate::Diagnostic>> {
    use crate::diag::{Code, Diagnostic};
    let name = file.display().to_string();
    let node = parse(text).map_err(|e| {
        let mut d = Diagnostic::new(Code::Syntax, Path::root(), e.message);
        d.help = e.help;
        d.span = Some(e.span);
        d.file = Some(name.clone());
        vec![d]
    })?;
    let unknown = std::cell::RefCell::new(Vec::new());
    let read = de::from_node::<T>(&node, &Path::root(), &unknown);
    let mut diags: Vec<Diagnostic> = unknown.into_inner().into_iter().map(crate::runbook::diag_from).collect();
    let value = match read {
        Ok(v) => Some(v),
        Err(e) => {
            diags.push(crate::runbook::diag_from(e));
            None
        }
    };
    for d in &mut diags {
        d.file = Some(name.clone());
        if d.span.is_none() {
            d.span = Some(node.span_at(&d.path, d.on_key));
        }
    }
    diags.sort_by_key(|d| d.span.map(|s| (s.line, s.col)));
    match value {
        Some(v) if diags.is_empty() => Ok(v),
        _ => Err(diags),
    }
}
