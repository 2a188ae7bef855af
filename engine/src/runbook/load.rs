//! File → checked [`Runbook`], or every diagnostic of the file.

use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;

use super::compile::compile;
use super::model::Runbook;
use super::sections;
use crate::diag::{Code, Diagnostic, yaml_lines};
use crate::yaml::{self, Path, Span};

/// The outcome of loading a runbook: the runbook, or the diagnostics with the source they
/// point into (for drawing them).
#[derive(Debug)]
pub struct Loaded {
    /// The runbook, when the file has no errors.
    pub runbook: Option<Runbook>,
    /// Every error found, sorted by position.
    pub diagnostics: Vec<Diagnostic>,
    /// Warnings of a runbook that loads (checked only once it has no error).
    pub warnings: Vec<Diagnostic>,
    /// The file's text (empty if it could not be read).
    pub source: Arc<str>,
    /// The file name as given.
    pub file: String,
}

impl Loaded {
    /// All diagnostics drawn with their source lines.
    pub fn render(&self) -> String {
        self.diagnostics.iter().chain(&self.warnings).map(|d| d.render(Some(&self.source))).collect::<Vec<_>>().join("\n")
    }
}

/// Reads and checks a runbook file.
pub fn load_file(path: &FsPath) -> Loaded {
    let file = path.display().to_string();
    match std::fs::read(path) {
        Ok(bytes) => match String::from_utf8(bytes) {
            Ok(text) => load_str(&text, path),
            Err(e) => {
                let mut d = Diagnostic::new(
                    Code::Io,
                    Path::root(),
                    format!("the file is not UTF-8 text (invalid byte at offset {})", e.utf8_error().valid_up_to()),
                );
                d.file = Some(file.clone());
                Loaded { runbook: None, diagnostics: vec![d], warnings: vec![], source: Arc::from(""), file }
            }
        },
        Err(e) => {
            let mut d = Diagnostic::new(Code::Io, Path::root(), format!("cannot read the file: {e}"));
            d.help = Some("check the path; runbooks are usually under runbooks/".into());
            d.file = Some(file.clone());
            Loaded { runbook: None, diagnostics: vec![d], warnings: vec![], source: Arc::from(""), file }
        }
    }
}

/// An error at the very end of a file that has no final newline is placed just after its
/// last character, where the snippet can show it, not on a line that does not exist.
fn within(span: Span, text: &str) -> Span {
    let lines: Vec<&str> = yaml_lines(text).collect();
    match lines.last() {
        Some(last) if span.line > lines.len() => Span { line: lines.len(), col: last.chars().count() + 1, len: 1 },
        _ => span,
    }
}

/// Checks a runbook given as text; `path` names it in diagnostics and anchors relative paths.
pub fn load_str(text: &str, path: &FsPath) -> Loaded {
    let file = path.display().to_string();
    let source: Arc<str> = Arc::from(text);
    let mut diags = Vec::new();
    let node = match yaml::parse(text) {
        Ok(n) => n,
        Err(e) => {
            let mut d = Diagnostic::new(Code::Syntax, Path::root(), e.message);
            d.help = e.help;
            d.span = Some(within(e.span, text));
            d.file = Some(file.clone());
            return Loaded { runbook: None, diagnostics: vec![d], warnings: vec![], source, file };
        }
    };
    let runbook = sections::read(&node, &mut diags).and_then(|s| compile(s, source.clone(), PathBuf::from(path), &mut diags));
    for d in &mut diags {
        d.file = Some(file.clone());
        // A key the parser placed at the end of the stream (`?` with nothing after it, in a
        // file without a final newline) is shown where the file ends, as a syntax error is.
        d.span = Some(within(d.span.unwrap_or_else(|| node.span_at(&d.path, d.on_key)), text));
    }
    diags.sort_by_key(|d| d.span.map(|s| (s.line, s.col)));
    diags.dedup();
    let (warnings, diags): (Vec<_>, Vec<_>) = diags.into_iter().partition(|d| d.warning);
    let runbook = if diags.is_empty() { runbook } else { None };
    let mut loaded = Loaded { runbook, diagnostics: diags, warnings, source, file };
    // Read off the compiled runbook: weight rules that can never match.
    let never = crate::validate::weight_rules::never_matching_rules(&loaded);
    loaded.warnings.extend(never.into_iter().map(Diagnostic::warning));
    // And irreversible steps no person approves first.
    let unapproved = crate::validate::effects::unapproved(&loaded);
    loaded.warnings.extend(unapproved);
    loaded.warnings.sort_by_key(|d| d.span.map(|s| (s.line, s.col)));
    loaded
}
