//! The report as one self-contained HTML page: inline CSS, the chart as inline SVG, no
//! script, nothing fetched.

use super::Report;
use super::document::{self, Block};
use super::xml::escape;

const STYLE: &str = "body{font-family:sans-serif;margin:2em auto;max-width:1100px;color:#1f2328;line-height:1.45}\
h1{font-size:1.6em;border-bottom:1px solid #d0d7de;padding-bottom:.3em}\
table{border-collapse:collapse;margin:.6em 0 1.2em}\
th,td{border:1px solid #d0d7de;padding:3px 8px;text-align:left;vertical-align:top;font-size:.92em}\
th{background:#f6f8fa}\
pre{background:#f6f8fa;padding:.8em;overflow-x:auto;white-space:pre-wrap}\
.gantt{overflow-x:auto}\
.status{font-weight:bold}.succeeded{color:#2e7d32}.failed{color:#c62828}.running{color:#1565c0}\
.waiting,.halted{color:#b26a00}.cancelled,.skipped,.pending{color:#757575}\
.upstream_failed{color:#ad1457;font-style:italic}";

/// The whole page.
pub(crate) fn render(report: &Report) -> String {
    let title = format!("Post-incident report: {} — run {}", report.run.runbook, report.run.id);
    let mut out = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
        escape(&title)
    );
    for block in document::blocks(report) {
        out += &block_html(&block);
    }
    out += &format!("<p><small>Made by phoenix report at {}.</small></p>\n</body>\n</html>\n", report.generated_at.rfc3339());
    out
}

fn block_html(block: &Block) -> String {
    match block {
        Block::Heading(level, text) => format!("<h{level}>{}</h{level}>\n", escape(text)),
        Block::Para(text) => format!("<p>{}</p>\n", escape(text)),
        Block::Table(head, rows) => table(head, rows.iter().map(|r| r.iter().map(String::as_str).collect())),
        Block::Pairs(pairs) => table(&["Field", "Value"], pairs.iter().map(|(k, v)| vec![k.as_str(), v.as_str()])),
        Block::List(items) => format!("<ul>\n{}</ul>\n", items.iter().map(|i| format!("<li>{}</li>\n", escape(i))).collect::<String>()),
        Block::Pre(text) => format!("<pre>{}</pre>\n", escape(text)),
        Block::Svg(svg) => format!("<div class=\"gantt\">\n{svg}\n</div>\n"),
    }
}

fn table<'a>(head: &[&str], rows: impl Iterator<Item = Vec<&'a str>>) -> String {
    let th: String = head.iter().map(|h| format!("<th>{}</th>", escape(h))).collect();
    let mut out = format!("<table>\n<tr>{th}</tr>\n");
    for row in rows {
        out += &format!("<tr>{}</tr>\n", row.iter().map(|c| cell(c)).collect::<String>());
    }
    out + "</table>\n"
}

/// A cell; a step or run state is coloured.
fn cell(text: &str) -> String {
    let status =
        ["succeeded", "failed", "running", "waiting", "halted", "cancelled", "skipped", "upstream_failed", "pending"].contains(&text);
    if status {
        format!("<td><span class=\"status {text}\">{text}</span></td>")
    } else {
        format!("<td>{}</td>", escape(text).replace('\n', "<br>"))
    }
}
