//! Reading a script the way bash reads it, to tell which context each `{{ }}` tag stands in
//! (a bare word, quotes, `$( )`, a comment, a here-document, or a place where no reference
//! keeps a value data).

use super::Context;
use words::is_name;

/// What bash is inside of at a point of the script.
#[derive(Debug, Clone)]
enum Frame {
    Top,
    Double,
    Single,
    AnsiC,
    Comment,
    Backquote,
    /// `$( )` with its open parentheses, and the `case` statements open in it (whose
    /// patterns end with a `)` that closes nothing).
    Command(u32, u32),
    /// `${ }` with its open braces.
    Param(u32),
    /// `$(( ))` or `(( ))` with its open parentheses.
    Arith(u32),
    /// `$[ ]` (the old arithmetic) with its open brackets.
    Bracket(u32),
    /// `name[ ]`: an array subscript, which bash evaluates as arithmetic.
    Subscript(u32),
    /// The arguments of `let` or `eval`, which bash reads as code, up to the command's end.
    Code(&'static str),
    /// `[[ … ]]`: the first tag in it (by count), and whether it compares numbers (`-eq`…),
    /// which evaluates both sides as arithmetic.
    Cond {
        first_tag: usize,
        arith: bool,
    },
    Here {
        delimiter: String,
        quoted: bool,
        strip_tabs: bool,
    },
}

impl Frame {
    /// Why no value can stand anywhere inside this frame, even quoted in a frame inside it.
    fn refuses(&self) -> Option<&'static str> {
        Some(match self {
            Frame::AnsiC => "inside `$'…'`",
            Frame::Backquote => "inside backquotes",
            Frame::Param(_) => "inside `${…}`",
            Frame::Arith(_) | Frame::Bracket(_) => ARITH,
            Frame::Subscript(_) => "in an array subscript (`a[…]`), which bash evaluates as arithmetic",
            Frame::Code(why) => why,
            Frame::Here { quoted: true, .. } => "in a quoted here-document (`<<'EOF'`), where no reference expands",
            _ => return None,
        })
    }
}

const ARITH: &str = "in arithmetic (`$((…))`, `((…))`, `$[…]`)";
/// Why a tag in a `[[ ]]` that compares numbers is refused.
pub(super) const COND_ARITH: &str = "in `[[ … ]]` with a numeric test (`-eq`, `-lt`, …), which evaluates the value as arithmetic";
const BACKSLASH: &str = "right after a backslash, which would escape the first character of the value's reference";

/// Reads a script in pieces (the text between tags) and tells each tag's context.
pub(super) struct Lexer {
    stack: Vec<Frame>,
    /// Here-documents declared on the current line, to start at its end.
    pending: Vec<Frame>,
    /// The current line of a here-document's body, while it is plain text.
    line: String,
    /// The current line of a here-document's body holds a `{{ }}`.
    line_tagged: bool,
    /// The last character was part of a word (a `#` then does not start a comment).
    in_word: bool,
    /// The unquoted word being read, to spot keywords (`case`, `let`, `[[`…) and `name[`.
    word: String,
    /// The word being read is a command's first (where keywords count).
    command_start: bool,
    /// The previous piece ended with a backslash that escapes what comes next.
    escaped: bool,
    /// Reading the options of `declare`/`local`/`typeset`/`export`/`readonly`.
    declaring: bool,
    /// Reading the delimiter word after `<<` / `<<-`.
    delimiter: Option<(String, bool, bool)>,
    /// How many tags were read.
    tags: usize,
    /// Ranges of tags (by count) inside a `[[ ]]` that compares numbers.
    pub(super) arith_tags: Vec<std::ops::Range<usize>>,
}

impl Lexer {
    pub(super) fn new() -> Lexer {
        Lexer {
            stack: vec![Frame::Top],
            pending: vec![],
            line: String::new(),
            line_tagged: false,
            in_word: false,
            word: String::new(),
            command_start: true,
            escaped: false,
            declaring: false,
            delimiter: None,
            tags: 0,
            arith_tags: vec![],
        }
    }

    fn top(&self) -> &Frame {
        self.stack.last().expect("the bottom frame stays")
    }

    fn top_mut(&mut self) -> &mut Frame {
        self.stack.last_mut().expect("the bottom frame stays")
    }

    /// The context of a tag standing here.
    pub(super) fn context(&self) -> Context {
        if self.delimiter.is_some() {
            return Context::Unsafe("as a here-document's delimiter");
        }
        if self.escaped {
            return Context::Unsafe(BACKSLASH);
        }
        if let Some(why) = self.stack.iter().rev().find_map(Frame::refuses) {
            return Context::Unsafe(why);
        }
        match self.top() {
            Frame::Top | Frame::Command(..) | Frame::Cond { .. } => Context::Word,
            Frame::Double => Context::Double,
            Frame::Single => Context::Single,
            Frame::Comment => Context::Comment,
            Frame::Here { .. } => Context::Heredoc,
            _ => Context::Unsafe(ARITH),
        }
    }

    /// A tag's value stands here: it is part of a word, and of a here-document line.
    pub(super) fn tag(&mut self) {
        self.in_word = true;
        self.line_tagged = true;
        self.escaped = false;
        // A reference is quoted: the word is no keyword and no array name.
        self.word.push('"');
        self.tags += 1;
    }

    /// Reads a piece of shell text.
    pub(super) fn text(&mut self, text: &str) {
        let chars: Vec<char> = text.chars().collect();
        let mut i = 0;
        if self.escaped && !chars.is_empty() {
            // The character a backslash at the end of the last piece escapes.
            self.escaped = false;
            self.in_word = true;
            self.word.push(chars[0]);
            i = 1;
        }
        while i < chars.len() {
            i += self.step(&chars[i..]);
        }
    }

    /// The end of the script: a `[[` left open still counts.
    pub(super) fn finish(&mut self) {
        self.end_word();
        while let Some(f) = self.stack.pop() {
            if let Frame::Cond { first_tag, arith: true } = f {
                self.arith_tags.push(first_tag..self.tags);
            }
        }
    }

    /// A backslash escapes the next character, which may be in the next piece.
    fn backslash(&mut self, c: &[char]) -> usize {
        if c.len() < 2 {
            self.escaped = true;
            return 1;
        }
        2
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
                if quoted {
                    return 1;
                }
                if let Some(n) = self.expansion(c) {
                    self.line.extend(&c[1..n]);
                    return n;
                }
                if ch == '\\' {
                    let n = self.backslash(c);
                    self.line.extend(&c[1..n]);
                    return n;
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
                '\\' => self.backslash(c),
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
                    '{' => *self.top_mut() = Frame::Param(depth + 1),
                    '}' if depth == 1 => {
                        self.stack.pop();
                    }
                    '}' => *self.top_mut() = Frame::Param(depth - 1),
                    _ => {}
                }
                1
            }
            Frame::Arith(depth) => {
                match ch {
                    '(' => *self.top_mut() = Frame::Arith(depth + 1),
                    ')' if depth <= 2 && at(1) == Some(')') => {
                        self.stack.pop();
                        return 2;
                    }
                    ')' => *self.top_mut() = Frame::Arith(depth.saturating_sub(1)),
                    _ => {}
                }
                1
            }
            Frame::Bracket(depth) | Frame::Subscript(depth) => {
                let nested = |d| if matches!(frame, Frame::Bracket(_)) { Frame::Bracket(d) } else { Frame::Subscript(d) };
                match ch {
                    '[' => *self.top_mut() = nested(depth + 1),
                    ']' if depth == 1 => {
                        self.stack.pop();
                    }
                    ']' => *self.top_mut() = nested(depth - 1),
                    _ => {}
                }
                1
            }
            Frame::Code(_) if ch == '\n' || ";&|)".contains(ch) => {
                // The command ends: what follows is read as it would be without `let`/`eval`.
                self.end_word();
                self.stack.pop();
                self.step(c)
            }
            Frame::Top | Frame::Command(..) | Frame::Code(_) | Frame::Cond { .. } => self.unquoted(c),
        }
    }

    /// `$(`, `$((`, `${`, or a backquote: the frame it opens, and how many characters it takes.
    fn expansion(&mut self, c: &[char]) -> Option<usize> {
        let (frame, n) = match (c[0], c.get(1), c.get(2)) {
            ('$', Some('('), Some('(')) => (Frame::Arith(2), 3),
            ('$', Some('('), _) => (Frame::Command(1, 0), 2),
            ('$', Some('{'), _) => (Frame::Param(1), 2),
            ('$', Some('['), _) => (Frame::Bracket(1), 2),
            ('`', _, _) => (Frame::Backquote, 1),
            _ => return None,
        };
        let command = matches!(frame, Frame::Command(..));
        self.stack.push(frame);
        self.in_word = false;
        // A command inside starts its own words; the word around it is no keyword.
        self.word = if command { String::new() } else { "$".into() };
        self.command_start = command;
        Some(n)
    }
}

mod unquoted;
mod words;
