//! Reading a script template the way bash reads the script: which context each `{{ }}` tag
//! stands in (a bare word, quotes, `$( )`, a comment, a here-document, or a place no quoting
//! makes safe).

use super::Context;

/// One part of a script template: shell text, or a `{{ }}` tag with where it stands.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Part<'a> {
    /// Template text passed through: shell text, `{% %}` and `{# #}` tags.
    Text(&'a str),
    /// An output tag: the text between its delimiters (whitespace markers included), and
    /// its context.
    Output { open: &'a str, expr: &'a str, close: &'a str, context: Context },
}

/// What bash is inside of at a point of the script.
#[derive(Debug, Clone)]
enum Frame {
    Top,
    Double,
    Single,
    AnsiC,
    Comment,
    Backquote,
    /// `$( )` with its open parentheses.
    Command(u32),
    /// `${ }` with its open braces.
    Param(u32),
    /// `$(( ))` or `(( ))` with its open parentheses.
    Arith(u32),
    /// `$[ ]` (the old arithmetic) with its open brackets.
    Bracket(u32),
    Here {
        delimiter: String,
        quoted: bool,
        strip_tabs: bool,
    },
}

struct Lexer {
    stack: Vec<Frame>,
    /// Here-documents declared on the current line, to start at its end.
    pending: Vec<Frame>,
    /// The current line of a here-document's body, while it is plain text.
    line: String,
    /// The current line of a here-document's body holds a `{{ }}`.
    line_tagged: bool,
    /// The last character was part of a word (a `#` then does not start a comment).
    in_word: bool,
    /// Reading the delimiter word after `<<` / `<<-`.
    delimiter: Option<(String, bool, bool)>,
}

impl Lexer {
    fn new() -> Lexer {
        Lexer { stack: vec![Frame::Top], pending: vec![], line: String::new(), line_tagged: false, in_word: false, delimiter: None }
    }

    fn top(&self) -> &Frame {
        self.stack.last().expect("the bottom frame stays")
    }

    fn context(&self) -> Context {
        if self.delimiter.is_some() {
            return Context::Unsafe("as a here-document's delimiter");
        }
        match self.top() {
            Frame::Top | Frame::Command(_) => Context::Word,
            Frame::Double => Context::Double,
            Frame::Single => Context::Single,
            Frame::Comment => Context::Comment,
            Frame::Here { delimiter, quoted, .. } => Context::Heredoc { delimiter: delimiter.clone(), quoted: *quoted },
            Frame::AnsiC => Context::Unsafe("inside `$'…'`"),
            Frame::Backquote => Context::Unsafe("inside backquotes"),
            Frame::Param(_) => Context::Unsafe("inside `${…}`"),
            Frame::Arith(_) | Frame::Bracket(_) => Context::Unsafe("in arithmetic (`$((…))`, `((…))`, `$[…]`)"),
        }
    }

    /// A tag's value stands here: it is part of a word, and of a here-document line.
    fn tag(&mut self) {
        self.in_word = true;
        self.line_tagged = true;
    }

    fn text(&mut self, text: &str) {
        let chars: Vec<char> = text.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            i += self.step(&chars[i..]);
        }
    }

    /// Reads from the start of `c`; returns how many characters were taken.
    fn step(&mut self, c: &[char]) -> usize {
        let at = |n: usize| c.get(n).copied();
        let ch = c[0];
        if let Some((word, quoted, strip)) = &mut self.delimiter {
            // The delimiter word after `<<`: quotes in it make the body literal.
            if ch.is_whitespace() && word.is_empty() && ch != '\n' {
                return 1;
            }
            if ch.is_whitespace() || ";&|<>()".contains(ch) {
                let (delimiter, quoted, strip_tabs) = (std::mem::take(word), *quoted, *strip);
                self.delimiter = None;
                self.pending.push(Frame::Here { delimiter, quoted, strip_tabs });
                return self.step(c);
            }
            match ch {
                '\'' | '"' => *quoted = true,
                '\\' => {
                    *quoted = true;
                    if let Some(n) = at(1) {
                        word.push(n);
                        return 2;
                    }
                }
                _ => word.push(ch),
            }
            return 1;
        }
        let frame = self.top().clone();
        match frame {
            Frame::Here { ref delimiter, quoted, strip_tabs } => {
                if ch == '\n' {
                    let line = if strip_tabs { self.line.trim_start_matches('\t') } else { self.line.as_str() };
                    if !self.line_tagged && line == delimiter {
                        self.stack.pop();
                        self.start_pending();
                    }
                    self.line.clear();
                    self.line_tagged = false;
                    return 1;
                }
                self.line.push(ch);
                if !quoted {
                    return self.expansion(c).unwrap_or(if ch == '\\' && at(1).is_some() { 2 } else { 1 });
                }
                1
            }
            Frame::Single => {
                if ch == '\'' {
                    self.stack.pop();
                }
                1
            }
            Frame::AnsiC => match ch {
                '\\' => 2.min(c.len()),
                '\'' => {
                    self.stack.pop();
                    1
                }
                _ => 1,
            },
            Frame::Comment => {
                if ch == '\n' {
                    self.stack.pop();
                    return self.newline();
                }
                1
            }
            Frame::Double => match ch {
                '\\' => 2.min(c.len()),
                '"' => {
                    self.stack.pop();
                    1
                }
                _ => self.expansion(c).unwrap_or(1),
            },
            Frame::Backquote => match ch {
                '\\' => 2.min(c.len()),
                '`' => {
                    self.stack.pop();
                    1
                }
                _ => 1,
            },
            Frame::Param(depth) => {
                match ch {
                    '\\' => return 2.min(c.len()),
                    '{' => *self.stack.last_mut().expect("frame") = Frame::Param(depth + 1),
                    '}' if depth == 1 => {
                        self.stack.pop();
                    }
                    '}' => *self.stack.last_mut().expect("frame") = Frame::Param(depth - 1),
                    _ => {}
                }
                1
            }
            Frame::Arith(depth) => {
                match ch {
                    '(' => *self.stack.last_mut().expect("frame") = Frame::Arith(depth + 1),
                    ')' if depth <= 2 && at(1) == Some(')') => {
                        self.stack.pop();
                        return 2;
                    }
                    ')' => *self.stack.last_mut().expect("frame") = Frame::Arith(depth.saturating_sub(1)),
                    _ => {}
                }
                1
            }
            Frame::Bracket(depth) => {
                match ch {
                    '[' => *self.stack.last_mut().expect("frame") = Frame::Bracket(depth + 1),
                    ']' if depth == 1 => {
                        self.stack.pop();
                    }
                    ']' => *self.stack.last_mut().expect("frame") = Frame::Bracket(depth - 1),
                    _ => {}
                }
                1
            }
            Frame::Top | Frame::Command(_) => self.unquoted(c, frame),
        }
    }

    /// `$(`, `$((`, `${`, or a backquote: the frame it opens, and how many characters it takes.
    fn expansion(&mut self, c: &[char]) -> Option<usize> {
        let (frame, n) = match (c[0], c.get(1), c.get(2)) {
            ('$', Some('('), Some('(')) => (Frame::Arith(2), 3),
            ('$', Some('('), _) => (Frame::Command(1), 2),
            ('$', Some('{'), _) => (Frame::Param(1), 2),
            ('$', Some('['), _) => (Frame::Bracket(1), 2),
            ('`', _, _) => (Frame::Backquote, 1),
            _ => return None,
        };
        self.stack.push(frame);
        self.in_word = false;
        Some(n)
    }

    fn unquoted(&mut self, c: &[char], frame: Frame) -> usize {
        let ch = c[0];
        let at = |n: usize| c.get(n).copied();
        if let Some(n) = self.expansion(c) {
            return n;
        }
        let taken = match ch {
            '\\' => 2.min(c.len()),
            // `(( … ))` as a command: arithmetic, where quotes do not stop expansions.
            '(' if at(1) == Some('(') && !self.in_word => {
                self.stack.push(Frame::Arith(2));
                return 2;
            }
            '\'' => {
                self.stack.push(Frame::Single);
                1
            }
            '$' if at(1) == Some('\'') => {
                self.stack.push(Frame::AnsiC);
                2
            }
            '"' => {
                self.stack.push(Frame::Double);
                1
            }
            '#' if !self.in_word => {
                self.stack.push(Frame::Comment);
                return 1;
            }
            '<' if at(1) == Some('<') && at(2) == Some('<') => 3,
            '<' if at(1) == Some('<') => {
                let strip = at(2) == Some('-');
                self.delimiter = Some((String::new(), false, strip));
                self.in_word = false;
                return if strip { 3 } else { 2 };
            }
            '(' => {
                if let Frame::Command(d) = frame {
                    *self.stack.last_mut().expect("frame") = Frame::Command(d + 1);
                }
                1
            }
            ')' => {
                if let Frame::Command(d) = frame {
                    if d == 1 {
                        self.stack.pop();
                    } else {
                        *self.stack.last_mut().expect("frame") = Frame::Command(d - 1);
                    }
                }
                1
            }
            '\n' => return self.newline(),
            _ => 1,
        };
        self.in_word = !(ch.is_whitespace() || ";&|()<>".contains(ch));
        taken
    }

    /// The end of a line outside quotes: declared here-documents start.
    fn newline(&mut self) -> usize {
        self.in_word = false;
        self.start_pending();
        1
    }

    fn start_pending(&mut self) {
        if !self.pending.is_empty() {
            let next = self.pending.remove(0);
            self.stack.push(next);
            self.line.clear();
            self.line_tagged = false;
        }
    }
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
