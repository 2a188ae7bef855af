//! The words of a script the lexer tells apart: keywords that open or close a context
//! (`case`, `esac`, `[[`, `]]`, `let`, `eval`, `declare -i`) and a `case` pattern's `)`.

use super::{Frame, Lexer};

impl Lexer {
    /// A bare parenthesis in `$( )`: it opens or closes, unless it ends a `case` pattern.
    pub(super) fn paren(&mut self, ch: char, frame: Frame) {
        let Frame::Command(depth, cases) = frame else { return };
        match ch {
            _ if cases > 0 => {}
            '(' => *self.top_mut() = Frame::Command(depth + 1, cases),
            _ if depth == 1 => {
                self.stack.pop();
                self.word = "$".into();
            }
            _ => *self.top_mut() = Frame::Command(depth - 1, cases),
        }
    }

    /// A word ends: keywords open or close frames.
    pub(super) fn end_word(&mut self) {
        let word = std::mem::take(&mut self.word);
        if word.is_empty() {
            return;
        }
        let at_start = std::mem::replace(&mut self.command_start, false);
        let declaring = std::mem::replace(&mut self.declaring, false);
        match (self.top().clone(), word.as_str()) {
            (Frame::Cond { first_tag, arith }, "]]") => {
                self.stack.pop();
                if arith {
                    self.arith_tags.push(first_tag..self.tags);
                }
            }
            (Frame::Cond { first_tag, .. }, "-eq" | "-ne" | "-lt" | "-le" | "-gt" | "-ge") => {
                *self.top_mut() = Frame::Cond { first_tag, arith: true };
            }
            (Frame::Cond { .. }, _) => {}
            (_, "[[") if at_start => self.stack.push(Frame::Cond { first_tag: self.tags, arith: false }),
            (_, "declare" | "local" | "typeset" | "export" | "readonly") if at_start => self.declaring = true,
            (_, w) if declaring && w.starts_with('-') => {
                if w[1..].contains('i') {
                    self.stack.push(Frame::Code("after `declare -i` (an integer variable), whose values bash evaluates as arithmetic"));
                } else {
                    self.declaring = true;
                }
            }
            (_, "let") if at_start => self.stack.push(Frame::Code("in the arguments of `let`, which bash evaluates as arithmetic")),
            (_, "eval") if at_start => self.stack.push(Frame::Code("in the arguments of `eval`, which bash runs as code")),
            (Frame::Command(depth, cases), "case") if at_start => *self.top_mut() = Frame::Command(depth, cases + 1),
            (Frame::Command(depth, cases), "esac") if at_start && cases > 0 => *self.top_mut() = Frame::Command(depth, cases - 1),
            // Keywords and assignments before a command: the next word is still a command's.
            (_, w) if at_start => {
                self.command_start =
                    matches!(w, "if" | "then" | "else" | "elif" | "do" | "while" | "until" | "!" | "{" | "time") || is_assignment(w);
            }
            _ => {}
        }
    }
}

/// A shell variable's name.
pub(super) fn is_name(w: &str) -> bool {
    let mut c = w.chars();
    c.next().is_some_and(|f| f.is_ascii_alphabetic() || f == '_') && c.all(|x| x.is_ascii_alphanumeric() || x == '_')
}

/// `NAME=value`, `NAME+=value`, `NAME[i]=value`.
fn is_assignment(w: &str) -> bool {
    w.split_once('=').is_some_and(|(n, _)| is_name(n.trim_end_matches('+').split('[').next().unwrap_or_default()))
}
