//! Splitting a script template into shell text and `{{ }}` tags, each tag with the context
//! the lexer reads it in.

use super::Context;
use super::lexer::{COND_ARITH, Lexer};

/// One part of a script template: shell text, or a `{{ }}` tag with where it stands.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Part<'a> {
    /// Template text passed through: shell text, `{% %}` and `{# #}` tags.
    Text(&'a str),
    /// An output tag: the text between its delimiters (whitespace markers included), and
    /// its context.
    Output { open: &'a str, expr: &'a str, close: &'a str, context: Context },
}

/// Splits a script template into text and output tags, each tag with its shell context.
/// `{% raw %}` blocks and comments are text. Errors only for an unclosed tag (the template
/// check reports those with more detail).
pub(super) fn parts(src: &str) -> Result<Vec<Part<'_>>, String> {
    let mut out = Vec::new();
    let mut lexer = Lexer::new();
    let mut rest = src;
    while let Some(open_at) = rest.find('{') {
        let after = &rest[open_at..];
        let kind = after.as_bytes().get(1).copied();
        if !matches!(kind, Some(b'{' | b'%' | b'#')) {
            let (text, tail) = rest.split_at(open_at + 1);
            lexer.text(text);
            out.push(Part::Text(text));
            rest = tail;
            continue;
        }
        let (text, tag_and_rest) = rest.split_at(open_at);
        lexer.text(text);
        out.push(Part::Text(text));
        let close = match kind {
            Some(b'{') => "}}",
            Some(b'%') => "%}",
            _ => "#}",
        };
        let end = tag_end(tag_and_rest, close).ok_or_else(|| format!("a tag opened with `{}` is not closed", &tag_and_rest[..2]))?;
        let tag = &tag_and_rest[..end];
        rest = &tag_and_rest[end..];
        if kind == Some(b'{') {
            let inner = &tag[2..tag.len() - 2];
            let lead = usize::from(inner.starts_with(['-', '+']));
            let trail = usize::from(inner.len() > lead && inner.ends_with(['-', '+']));
            out.push(Part::Output {
                open: &tag[..2 + lead],
                expr: &inner[lead..inner.len() - trail],
                close: &tag[tag.len() - 2 - trail..],
                context: lexer.context(),
            });
            lexer.tag();
        } else {
            out.push(Part::Text(tag));
            if kind == Some(b'%') && tag[2..tag.len() - 2].trim_matches(['-', '+', ' ']).trim() == "raw" {
                // Everything up to `{% endraw %}` is shell text.
                let stop = find_endraw(rest).unwrap_or(rest.len());
                let (raw, tail) = rest.split_at(stop);
                lexer.text(raw);
                out.push(Part::Text(raw));
                rest = tail;
            }
        }
    }
    lexer.text(rest);
    out.push(Part::Text(rest));
    lexer.finish();
    // Tags in a `[[ ]]` that turned out to compare numbers: known only at its end.
    let mut n = 0;
    for p in &mut out {
        if let Part::Output { context, .. } = p {
            if lexer.arith_tags.iter().any(|r| r.contains(&n)) && !matches!(context, Context::Unsafe(_)) {
                *context = Context::Unsafe(COND_ARITH);
            }
            n += 1;
        }
    }
    Ok(out)
}

/// Where a tag starting at `s[0]` ends (after `close`), skipping string literals inside it.
fn tag_end(s: &str, close: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut i = 2;
    let mut quote: Option<u8> = None;
    while i < b.len() {
        match quote {
            Some(_) if b[i] == b'\\' => i += 1,
            Some(q) if b[i] == q => quote = None,
            Some(_) => {}
            None if close != "#}" && (b[i] == b'"' || b[i] == b'\'') => quote = Some(b[i]),
            // Bytes, not `&s[i..]`: `i` may be inside a multi-byte character.
            None if b[i..].starts_with(close.as_bytes()) => return Some(i + 2),
            None => {}
        }
        i += 1;
    }
    None
}

fn find_endraw(s: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(at) = s[from..].find("{%") {
        let start = from + at;
        let end = tag_end(&s[start..], "%}")? + start;
        if s[start + 2..end - 2].trim_matches(['-', '+', ' ']).trim() == "endraw" {
            return Some(start);
        }
        from = end;
    }
    None
}

#[cfg(test)]
mod tests;
