//! Quoting for bash: a templated value in a script is quoted for the place it stands in.
//!
//! `echo {{ x }}`, `echo "{{ x }}"`, `echo '{{ x }}'` and a here-document line all read
//! naturally, and each needs a different quoting: a value quoted for a bare word (`'…'`)
//! inside double quotes would leave `$(…)` and backquotes live. So the script's text is read
//! the way bash reads it, up to each `{{ }}`, and the value is escaped for that context.
//! Places where no escaping is safe (inside `${…}`, arithmetic, backquotes, `$'…'`, or as a
//! here-document's delimiter) are refused when the runbook is loaded.

/// Quotes a word for bash: `it's` → `'it'\''s'`. Plain words stay as they are.
pub fn shell_quote(s: &str) -> String {
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:,@%+".contains(c)) {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', r"'\''"))
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
    /// In the body of a here-document ending at `delimiter`; `quoted` when the delimiter
    /// was quoted (`<<'EOF'`: no expansion in the body).
    Heredoc { delimiter: String, quoted: bool },
    /// Nowhere a value can be escaped safely; the text says where.
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
            Context::Heredoc { quoted: false, .. } => "heredoc",
            Context::Heredoc { quoted: true, .. } => "heredoc_quoted",
            Context::Unsafe(_) => "unsafe",
        }
    }
}

/// Escapes `value` for `context` (named as by [`Context::name`]; `delimiter` for a
/// here-document). Errors when no escaping can keep the value data.
pub(crate) fn escape(value: &str, context: &str, delimiter: &str) -> Result<String, String> {
    let ends_heredoc = |strip: bool| value.lines().any(|l| (if strip { l.trim_start_matches('\t') } else { l }) == delimiter);
    match context {
        "word" => Ok(shell_quote(value)),
        "double" => Ok(backslash(value, &['\\', '$', '`', '"'])),
        "single" => Ok(value.replace('\'', r"'\''")),
        "comment" => Ok(value.replace(['\n', '\r'], " ")),
        "heredoc" | "heredoc_quoted" if ends_heredoc(true) => {
            Err(format!("the value has a line `{delimiter}`, which would end the here-document early"))
        }
        "heredoc" => Ok(backslash(value, &['\\', '$', '`'])),
        "heredoc_quoted" => Ok(value.to_string()),
        _ => Err("a template value cannot be quoted safely here".into()),
    }
}

fn backslash(value: &str, special: &[char]) -> String {
    let mut out = String::with_capacity(value.len() + 8);
    for c in value.chars() {
        if special.contains(&c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

mod lexer;

use lexer::{Part, parts};

/// The places in a script template where no value can be quoted safely: the tag's
/// expression, the script's line it is on (from 1), and where it stands.
pub(crate) fn unsafe_tags(src: &str) -> Vec<(String, usize, &'static str)> {
    let mut line = 1;
    let mut out = Vec::new();
    for p in parts(src).unwrap_or_default() {
        match p {
            Part::Text(t) => line += t.matches('\n').count(),
            Part::Output { expr, context: Context::Unsafe(why), .. } => out.push((expr.trim().to_string(), line, why)),
            Part::Output { .. } => {}
        }
    }
    out
}

/// Rewrites a script template so that each `{{ x }}` passes its value through the shell
/// filter for its context: `{{ (x) | __shell("double", "") }}`.
pub(crate) fn contextualize(src: &str) -> Result<String, String> {
    let mut out = String::with_capacity(src.len() + 64);
    for p in parts(src)? {
        match p {
            Part::Text(t) => out.push_str(t),
            Part::Output { open, expr, close, context } => {
                let delimiter = match &context {
                    Context::Heredoc { delimiter, .. } => delimiter.as_str(),
                    _ => "",
                };
                let d = serde_json::to_string(delimiter).expect("a string serializes");
                out.push_str(&format!("{open} ({expr}) | __shell(\"{}\", {d}) {close}", context.name()));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_what_a_shell_would_interpret() {
        assert_eq!(shell_quote("plain-word_1.2"), "plain-word_1.2");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("x; rm -rf /"), "'x; rm -rf /'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote("$(id)`id`"), "'$(id)`id`'");
    }

    #[test]
    fn places_no_escaping_makes_safe_are_named() {
        let unsafe_ones = |s: &str| unsafe_tags(s).into_iter().map(|(_, _, why)| why).collect::<Vec<_>>();
        assert_eq!(unsafe_ones("echo ${X:-{{ a }}}"), ["inside `${…}`"]);
        let arith = "in arithmetic (`$((…))`, `((…))`, `$[…]`)";
        assert_eq!(unsafe_ones("echo $(( {{ a }} + 1 )) `echo {{ b }}`"), [arith, "inside backquotes"]);
        assert_eq!(unsafe_ones("(( n = {{ a }} )); echo $[ {{ b }} ]; x=$(( ('{{ c }}') ))"), [arith, arith, arith]);
        assert!(unsafe_ones("( (echo {{ a }}) ); f(){ echo {{ b }}; }; echo $[1] {{ c }}").is_empty());
        assert_eq!(unsafe_ones("echo $'{{ a }}'; cat <<{{ b }}"), ["inside `$'…'`", "as a here-document's delimiter"]);
        assert!(unsafe_ones("echo {{ a }} \"{{ b }}\" '{{ c }}' ${X} $((1+2))").is_empty());
        assert_eq!(unsafe_tags("echo {{ a }}\n\necho `{{ b }}`"), [("b".to_string(), 3, "inside backquotes")]);
    }

    #[test]
    fn values_are_escaped_for_their_context() {
        let v = r#"a'b"c$(id)`id`\d"#;
        assert_eq!(escape(v, "word", "").unwrap(), r#"'a'\''b"c$(id)`id`\d'"#);
        assert_eq!(escape(v, "double", "").unwrap(), r#"a'b\"c\$(id)\`id\`\\d"#);
        assert_eq!(escape(v, "single", "").unwrap(), r#"a'\''b"c$(id)`id`\d"#);
        assert_eq!(escape(v, "heredoc", "EOF").unwrap(), r#"a'b"c\$(id)\`id\`\\d"#);
        assert_eq!(escape(v, "heredoc_quoted", "EOF").unwrap(), v);
        assert_eq!(escape("x\nrm -rf /", "comment", "").unwrap(), "x rm -rf /");
        assert!(escape("x\nEOF\nrm -rf /", "heredoc", "EOF").is_err());
        assert!(escape("x\n\tEOF", "heredoc_quoted", "EOF").is_err());
        assert!(escape("x", "unsafe", "").is_err());
    }

    #[test]
    fn tags_are_rewritten_with_their_context_and_whitespace_markers_kept() {
        assert_eq!(
            contextualize("echo {{- a | upper -}} \"{{ b }}\"").unwrap(),
            "echo {{- ( a | upper ) | __shell(\"word\", \"\") -}} \"{{ ( b ) | __shell(\"double\", \"\") }}\""
        );
        assert_eq!(contextualize("echo {{ '}}' }}").unwrap(), "echo {{ ( '}}' ) | __shell(\"word\", \"\") }}");
        assert!(contextualize("echo {{ a").is_err());
        // Multi-byte characters inside and around tags (found by the fuzzer).
        assert_eq!(contextualize("s/{{{{ x.o¤¤¤ }}").unwrap(), "s/{{ ({{ x.o¤¤¤ ) | __shell(\"word\", \"\") }}");
        assert_eq!(contextualize("é{{ 'ü' }}ö").unwrap(), "é{{ ( 'ü' ) | __shell(\"word\", \"\") }}ö");
    }
}
