//! Text made safe for XML and HTML.

/// Escapes `& < > " '`, and drops the control characters XML 1.0 does not allow (an error
/// message may carry a program's terminal colours).
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{7f}' || c == '\u{fffe}' || c == '\u{ffff}' => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn markup_and_control_characters_are_neutralised() {
        assert_eq!(super::escape("<a href='x'>\u{1b}[31m&</a>"), "&lt;a href=&#39;x&#39;&gt;[31m&amp;&lt;/a&gt;");
    }
}
