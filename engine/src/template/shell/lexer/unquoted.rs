//! Unquoted shell text: where quotes, expansions, comments, here-documents and subscripts
//! start, and where words and lines end.

use super::{Frame, Lexer, is_name};

impl Lexer {
    pub(super) fn unquoted(&mut self, c: &[char]) -> usize {
        let ch = c[0];
        let at = |n: usize| c.get(n).copied();
        if ch.is_whitespace() || ";&|()<>".contains(ch) {
            self.end_word();
            if matches!(self.top(), Frame::Code(_)) && (ch == '\n' || ";&|)".contains(ch)) {
                self.stack.pop();
            }
        }
        if let Some(n) = self.expansion(c) {
            return n;
        }
        let frame = self.top().clone();
        let taken = match ch {
            '\\' => self.backslash(c),
            // `(( … ))` as a command: arithmetic, where quotes do not stop expansions.
            '(' if at(1) == Some('(') && !self.in_word => {
                self.stack.push(Frame::Arith(2));
                return 2;
            }
            // `name[…]`: a subscript, arithmetic for an indexed array.
            '[' if self.in_word && is_name(&self.word) => {
                self.stack.push(Frame::Subscript(1));
                self.word.push('[');
                return 1;
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
            '(' | ')' => {
                self.paren(ch, frame);
                1
            }
            '\n' => return self.newline(),
            _ => 1,
        };
        self.in_word = !(ch.is_whitespace() || ";&|()<>".contains(ch));
        if self.in_word {
            self.word.extend(&c[..taken]);
        }
        if ";&|(".contains(ch) {
            self.command_start = true;
        }
        taken
    }

    /// The end of a line outside quotes: declared here-documents start.
    pub(super) fn newline(&mut self) -> usize {
        self.in_word = false;
        self.command_start = true;
        self.start_pending();
        1
    }

    pub(super) fn start_pending(&mut self) {
        if !self.pending.is_empty() {
            let next = self.pending.remove(0);
            self.stack.push(next);
            self.line.clear();
            self.line_tagged = false;
        }
    }
}
