//! Text that others wrote (a step's output, an error, an approval's message, a comment),
//! made harmless to print: a control character could otherwise clear the operator's screen,
//! fake a prompt, set the window title or, through OSC 52, the clipboard. Each one is shown
//! instead of sent: `ESC` as `^[`, `BEL` as `^G`, a C1 control as `<U+009B>`. Newlines and
//! tabs stay; a carriage return stays only before a newline. `--output json` needs none of
//! this: JSON escapes control characters itself, and the store keeps the exact bytes.

use std::borrow::Cow;

/// `s` with every control character (but `\n`, `\t` and `\r\n`) and every bidirectional
/// override shown in a visible form.
pub(crate) fn visible(s: &str) -> Cow<'_, str> {
    if !s.chars().any(needs_escape) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\n' | '\t' => out.push(c),
            '\r' if chars.peek() == Some(&'\n') => out.push(c),
            '\x7f' => out.push_str("^?"),
            c if (c as u32) < 0x20 => {
                out.push('^');
                out.push(char::from(b'@' + c as u8));
            }
            c if needs_escape(c) => out.push_str(&format!("<U+{:04X}>", c as u32)),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

fn needs_escape(c: char) -> bool {
    let n = c as u32;
    (c.is_control() && c != '\n' && c != '\t')
        // Bidirectional embeddings, overrides and isolates: they reorder what is shown.
        || (0x202A..=0x202E).contains(&n)
        || (0x2066..=0x2069).contains(&n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_shown_not_sent() {
        assert_eq!(visible("\x1b]0;pwned\x07\x1b[2J"), "^[]0;pwned^G^[[2J");
        assert_eq!(visible("a\tb\nc\r\nd\re"), "a\tb\nc\r\nd^Me");
        assert_eq!(visible("\u{9b}31m \u{202e}x \x7f"), "<U+009B>31m <U+202E>x ^?");
        assert!(matches!(visible("plain ✓ text"), Cow::Borrowed(_)));
    }
}
