//! The Gantt chart, as one self-contained SVG (no script, no external font or image): a row
//! per step, child runs' steps indented under the step that started them; a bar per span,
//! coloured by how it ended; approval waits hatched; a mark at each retry, followed by its
//! backoff; a time axis counted from the top run's start.

use std::fmt::Write;

use super::run::{RunReport, StepReport};
use super::spans::Span;
use super::time::duration;
use super::xml::escape;
use super::{Report, Time};

const WIDTH: f64 = 960.0;
/// The label column.
const LABEL: f64 = 240.0;
const RIGHT: f64 = 48.0;
/// Title and axis labels.
const TOP: f64 = 48.0;
const ROW: f64 = 22.0;
const BAR: f64 = 14.0;
const LEGEND: f64 = 36.0;
/// Child runs' steps are indented this much per level.
const INDENT: f64 = 14.0;

/// One row: a step of some run, at some depth of child runs.
struct Row<'a> {
    run: &'a str,
    step: &'a StepReport,
    depth: usize,
}

/// Where instants fall on the chart.
struct Axis {
    start: Time,
    span_ms: u64,
}

impl Axis {
    fn x(&self, t: Time) -> f64 {
        LABEL + (t.since(self.start).min(self.span_ms) as f64 / self.span_ms as f64) * (WIDTH - LABEL - RIGHT)
    }
}

/// The chart of the report's run and its child runs.
pub(crate) fn svg(report: &Report) -> String {
    let mut rows = Vec::new();
    collect(&report.run, 0, &mut rows);
    let axis = Axis { start: report.start, span_ms: report.end.since(report.start).max(1) };
    let height = TOP + ROW * rows.len() as f64 + LEGEND;
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="12" role="img">"##
    );
    let run = &report.run;
    let _ = writeln!(svg, "<title>Steps of run {} ({}) over time</title>", escape(&run.id), escape(&run.runbook));
    svg.push_str(r##"<defs><pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="6" height="6" fill="#fff3c4"/><rect width="3" height="6" fill="#f9a825"/></pattern></defs>"##);
    let _ = writeln!(svg, r##"<rect width="{WIDTH}" height="{height}" fill="#ffffff"/>"##);
    let _ = writeln!(
        svg,
        r##"<text x="8" y="18" font-weight="bold">{} — run {} — {}</text>"##,
        escape(&run.runbook),
        escape(&run.id),
        escape(&run.status)
    );
    for (i, row) in rows.iter().enumerate() {
        draw_row(&mut svg, &axis, report.end, i, row);
    }
    ticks(&mut svg, &axis, height);
    if run.in_progress() {
        let x = axis.x(report.end);
        let _ = writeln!(
            svg,
            r##"<line class="now" x1="{x:.1}" x2="{x:.1}" y1="{}" y2="{:.1}" stroke="#1565c0" stroke-dasharray="4 2"/>"##,
            TOP - 4.0,
            height - LEGEND
        );
    }
    legend(&mut svg, height);
    svg.push_str("</svg>");
    svg
}

fn collect<'a>(run: &'a RunReport, depth: usize, rows: &mut Vec<Row<'a>>) {
    for step in &run.steps {
        rows.push(Row { run: &run.id, step, depth });
        if let Some(child) = run.child_of(&step.id) {
            collect(child, depth + 1, rows);
        }
    }
}

fn draw_row(svg: &mut String, axis: &Axis, end: Time, i: usize, row: &Row) {
    let y = TOP + ROW * i as f64;
    if i % 2 == 1 {
        let _ = writeln!(svg, r##"<rect x="0" y="{y:.1}" width="{WIDTH}" height="{ROW}" fill="#f6f8fa"/>"##);
    }
    let x = 8.0 + INDENT * row.depth as f64;
    let id = &row.step.id;
    let room = ((LABEL - x - 8.0) / 7.0).max(4.0) as usize;
    let shown = if id.chars().count() > room { format!("{}…", id.chars().take(room - 1).collect::<String>()) } else { id.clone() };
    let mark = if row.depth > 0 { "↳ " } else { "" };
    let _ = writeln!(svg, r#"<text x="{x:.1}" y="{:.1}"><title>{}</title>{mark}{}</text>"#, y + 15.0, escape(id), escape(&shown));
    if row.step.spans.is_empty() {
        let _ = writeln!(
            svg,
            r##"<text x="{:.1}" y="{:.1}" fill="#757575" font-style="italic">{}</text>"##,
            LABEL + 4.0,
            y + 15.0,
            escape(&row.step.status)
        );
    }
    for span in &row.step.spans {
        bar(svg, axis, end, y, row, span);
    }
}

fn bar(svg: &mut String, axis: &Axis, end: Time, y: f64, row: &Row, span: &Span) {
    let (x1, x2) = (axis.x(span.start), axis.x(span.end.unwrap_or(end)));
    let w = (x2 - x1).max(2.0);
    let top = y + (ROW - BAR) / 2.0;
    let (fill, kind) = if span.waiting { ("url(#hatch)", " wait") } else { (colour(&span.outcome), "") };
    let open = if span.end.is_none() { " open" } else { "" };
    let took = duration(span.end.unwrap_or(end).since(span.start));
    let attempts = if span.first_attempt == span.last_attempt {
        format!("attempt {}", span.first_attempt)
    } else {
        format!("attempts {}–{}", span.first_attempt, span.last_attempt)
    };
    let what = if span.waiting { "waiting for approval".to_string() } else { attempts };
    let _ = writeln!(
        svg,
        r##"<rect class="bar {}{kind}{open}" data-run="{}" data-step="{}" x="{x1:.1}" y="{top:.1}" width="{w:.1}" height="{BAR}" rx="2" fill="{fill}" stroke="{}"><title>{}: {}, {what}, {took} from {}</title></rect>"##,
        escape(&span.outcome),
        escape(row.run),
        escape(&row.step.id),
        colour(&span.outcome),
        escape(&row.step.id),
        escape(&span.outcome),
        span.start.offset(axis.start)
    );
    for r in &span.retries {
        let (rx, bx) = (axis.x(r.at), axis.x(r.at.plus(r.delay_ms)));
        let _ = writeln!(
            svg,
            r##"<rect class="backoff" x="{rx:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="#ffcdd2"/>"##,
            top + BAR / 4.0,
            (bx - rx).max(1.0),
            BAR / 2.0
        );
        let _ = writeln!(
            svg,
            r##"<path class="retry" d="M{rx:.1} {:.1}V{:.1}" stroke="#7f0000" stroke-width="2"><title>{}: attempt {} failed: {}; retried after {}</title></path>"##,
            top - 2.0,
            top + BAR + 2.0,
            escape(&row.step.id),
            r.attempt,
            escape(&r.error),
            duration(r.delay_ms)
        );
    }
    // The duration beside the bar: after it, before it near the right edge, else inside it.
    let (tx, anchor, ink) = match () {
        _ if x1 + w + 60.0 < WIDTH => (x1 + w + 4.0, "start", "#555"),
        _ if x1 - 48.0 > LABEL => (x1 - 4.0, "end", "#555"),
        _ => (x1 + 4.0, "start", "#000"),
    };
    let _ = writeln!(svg, r##"<text x="{tx:.1}" y="{:.1}" font-size="10" fill="{ink}" text-anchor="{anchor}">{took}</text>"##, y + 15.0);
}

/// A step state's colour.
fn colour(outcome: &str) -> &'static str {
    match outcome {
        "succeeded" => "#2e7d32",
        "failed" => "#c62828",
        "running" => "#1565c0",
        "waiting" => "#f9a825",
        _ => "#9e9e9e",
    }
}

/// Grid lines and their offsets: about eight, at 1, 2 or 5 times a power of ten milliseconds.
fn ticks(svg: &mut String, axis: &Axis, height: f64) {
    let step = [1u64, 2, 5]
        .iter()
        .flat_map(|m| (0..12).map(move |p| m * 10u64.pow(p)))
        .filter(|s| axis.span_ms / s <= 8)
        .min()
        .unwrap_or(axis.span_ms);
    let mut t = 0;
    while t <= axis.span_ms {
        let x = axis.x(axis.start.plus(t));
        let _ = writeln!(
            svg,
            r##"<line class="tick" x1="{x:.1}" x2="{x:.1}" y1="{:.1}" y2="{:.1}" stroke="#d0d7de"/><text x="{x:.1}" y="{:.1}" text-anchor="middle" font-size="10" fill="#555">{}</text>"##,
            TOP - 6.0,
            height - LEGEND,
            TOP - 10.0,
            if t == 0 { "0".to_string() } else { format!("+{}", duration(t)) }
        );
        t += step;
    }
}

fn legend(svg: &mut String, height: f64) {
    let y = height - LEGEND + 14.0;
    let items = [
        ("#2e7d32", "succeeded"),
        ("#c62828", "failed"),
        ("#9e9e9e", "cancelled, interrupted, halted"),
        ("#1565c0", "running"),
        ("url(#hatch)", "waiting for approval"),
        ("#ffcdd2", "retry backoff (dark mark: a failed attempt)"),
    ];
    let mut x = 8.0;
    for (fill, label) in items {
        let _ = writeln!(
            svg,
            r##"<rect x="{x:.1}" y="{:.1}" width="12" height="10" fill="{fill}"/><text x="{:.1}" y="{y:.1}" font-size="11">{label}</text>"##,
            y - 9.0,
            x + 16.0
        );
        x += 24.0 + 6.2 * label.len() as f64;
    }
}
