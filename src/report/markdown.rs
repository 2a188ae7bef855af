//! The report as Markdown (GitHub-flavoured tables). The chart is inline, as an `<svg>` block
//! inside a `<div>`: renderers that allow HTML draw it; `--format html` always does.

use super::Report;
use super::document::{self, Block};

/// The whole report.
pub(crate) fn render(report: &Report) -> String {
    let mut out = String::new();
    for block in document::blocks(report) {
        out += &block_md(&block);
        out += "\n";
    }
    out
}

fn block_md(block: &Block) -> String {
    match block {
        Block::Heading(level, text) => format!("{} {}\n", "#".repeat(*level), inline(text)),
        Block::Para(text) => format!("{}\n", inline(text)),
        Block::Table(head, rows) => table(head, rows.iter().map(|r| r.iter().map(String::as_str).collect())),
        Block::Pairs(pairs) => table(&["Field", "Value"], pairs.iter().map(|(k, v)| vec![k.as_str(), v.as_str()])),
        Block::List(items) => items.iter().map(|i| format!("- {}\n", inline(i))).collect(),
        // An indented code block: nothing inside it is read as Markdown, fences included.
        Block::Pre(text) => text.lines().map(|l| format!("    {l}\n")).collect(),
        Block::Svg(svg) => format!("<div class=\"gantt\">\n{svg}\n</div>\n"),
    }
}

fn table<'a>(head: &[&str], rows: impl Iterator<Item = Vec<&'a str>>) -> String {
    let mut out = format!("| {} |\n|{}\n", head.join(" | "), " --- |".repeat(head.len()));
    for row in rows {
        out += &format!("| {} |\n", row.iter().map(|c| cell(c)).collect::<Vec<_>>().join(" | "));
    }
    out
}

/// Text that stays text: no HTML gets through, and a line break does not end the paragraph.
fn inline(text: &str) -> String {
    escape(text).replace('\n', " ")
}

/// A table cell: also no `|`, and line breaks as `<br>`.
fn cell(text: &str) -> String {
    escape(text.trim_end()).replace('|', "\\|").replace('\n', "<br>")
}

/// `&`, `<` and `>` as entities, except inside `code spans`, where Markdown shows text as it
/// is (an entity there would show as `&lt;`) and no HTML is read anyway.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut code = false;
    let ticks = text.matches('`').count();
    let mut seen = 0;
    for c in text.chars() {
        match c {
            '`' => {
                seen += 1;
                // An unpaired last backtick opens no code span.
                code = !code && (seen < ticks || ticks.is_multiple_of(2));
                out.push(c);
            }
            '&' if !code => out.push_str("&amp;"),
            '<' if !code => out.push_str("&lt;"),
            '>' if !code => out.push_str("&gt;"),
            c if c.is_control() && c != '\n' => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn html_is_escaped_outside_code_spans_only() {
        assert_eq!(super::escape("`a <b>` and <b> & `c"), "`a <b>` and &lt;b&gt; &amp; `c");
        assert_eq!(super::cell("x | `y|z`\nw"), "x \\| `y\\|z`<br>w");
    }
}
