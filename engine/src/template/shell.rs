//! Values reach scripts as data: each `{{ }}` of a script becomes an environment variable of
//! the step's process (`PHX_V1`, `PHX_V2`, …) and the text gets a quoted reference to it.
//!
//! bash never parses a value, so no value can run as code: a mistake in reading the script
//! can at worst split a word. The reference's form depends on where the tag stands, so the
//! script's text is read the way bash reads it (see `lexer`): `echo {{ x }}` becomes
//! `echo "${PHX_V1}"`, `"… {{ x }}"` becomes `"… ${PHX_V1}"`, `'… {{ x }}'` becomes
//! `'… '"${PHX_V1}"'` (close, reference, reopen). Places where a reference does not expand
//! or where bash evaluates data as code (a quoted here-document, arithmetic, `${…}`, `$'…'`,
//! backquotes, a here-document's delimiter, `let`, `eval`, an array subscript, `[[ ]]` with
//! `-eq`) are refused when the runbook is loaded. `| safe` at the end of a tag pastes the
//! text as it is: the one explicit way out.

/// Quotes a word for bash: `it's` → `'it'\''s'`. Plain words stay as they are.
pub fn shell_quote(s: &str) -> String {
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:,@%+".contains(c)) {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The prefix of the variables that carry a script's values; users cannot set them.
pub(crate) const VAR_PREFIX: &str = "PHX_V";

/// The name of the `n`th value's variable (from 1).
pub(crate) fn var_name(n: usize) -> String {
    format!("{VAR_PREFIX}{n}")
}

/// Where a `{{ }}` stands in a script, as bash will read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Context {
    /// A bare word (also inside `$( )`).
    Word,
    /// Inside `"…"`.
    Double,
    /// Inside `'…'`.
    Single,
    /// In a `#` comment.
    Comment,
    /// In the body of an unquoted here-document (`<<EOF`: expansions happen in the body).
    Heredoc,
    /// Nowhere a reference keeps the value data; the text says where.
    Unsafe(&'static str),
}

impl Context {
    /// The name the renderer's filter takes.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Context::Word => "word",
            Context::Double => "double",
            Context::Single => "single",
            Context::Comment => "comment",
            Context::Heredoc => "heredoc",
            Context::Unsafe(_) => "unsafe",
        }
    }
}

/// The text that stands for variable `name` in `context` (named as by [`Context::name`]).
/// Errors where no reference is safe (refused at load; reached only by a bypassed check).
pub(crate) fn reference(name: &str, context: &str) -> Result<String, String> {
    match context {
        "word" => Ok(format!("\"${{{name}}}\"")),
        "double" | "heredoc" | "comment" => Ok(format!("${{{name}}}")),
        "single" => Ok(format!("'\"${{{name}}}\"'")),
        _ => Err("a template value cannot stand here as data (see `phoenix validate`)".into()),
    }
}

mod lexer;
mod parts;

use parts::{Part, parts};

/// The places in a script template where no reference keeps a value data: the tag's
/// expression, the script's line and column it starts at (from 1), and where it stands.
pub(crate) fn unsafe_tags(src: &str) -> Vec<(String, usize, usize, &'static str)> {
    let (mut line, mut column) = (1, 1);
    let mut out = Vec::new();
    let advance = |t: &str, line: &mut usize, column: &mut usize| {
        for c in t.chars() {
            if c == '\n' {
                *line += 1;
                *column = 1;
            } else {
                *column += 1;
            }
        }
    };
    for p in parts(src).unwrap_or_default() {
        match p {
            Part::Text(t) => advance(t, &mut line, &mut column),
            Part::Output { open, expr, close, context } => {
                if let (Context::Unsafe(why), false) = (&context, is_safe(expr)) {
                    out.push((expr.trim().to_string(), line, column, *why));
                }
                advance(open, &mut line, &mut column);
                advance(expr, &mut line, &mut column);
                advance(close, &mut line, &mut column);
            }
        }
    }
    out
}

/// Whether a tag's expression ends with `| safe`: its text is pasted as it is.
fn is_safe(expr: &str) -> bool {
    expr.trim_end().strip_suffix("safe").and_then(|e| e.trim_end().strip_suffix('|')).is_some()
}

/// Rewrites a script template so that each `{{ x }}` passes its value through the shell
/// filter for its context: `{{ (x) | __shell("double") }}`. A tag ending in `| safe` stays.
pub(crate) fn contextualize(src: &str) -> Result<String, String> {
    let mut out = String::with_capacity(src.len() + 64);
    for p in parts(src)? {
        match p {
            Part::Text(t) => out.push_str(t),
            Part::Output { open, expr, close, .. } if is_safe(expr) => out.push_str(&format!("{open}{expr}{close}")),
            Part::Output { open, expr, close, context } => {
                out.push_str(&format!("{open} ({expr}) | __shell(\"{}\") {close}", context.name()));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
