//! The DAG drawn for people: Graphviz dot or Mermaid.

use crate::runbook::{Plan, Role, Runbook};

/// An output format for `phoenix graph`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Graphviz.
    Dot,
    /// Mermaid flowchart.
    Mermaid,
}

fn label(rb: &Runbook, plan: &Plan, i: usize) -> String {
    let s = &plan.steps[i];
    match s.role {
        Role::Score => format!("score\\n{} levels", rb.levels.len()),
        Role::Probe(_) => format!("{}\\nsignal: {}", s.id, s.uses),
        Role::Action => format!("{}\\n{}", s.id, s.uses),
    }
}

/// Draws the runbook's main DAG (signals and `score` included), its on_failure steps and its
/// on_abort steps.
pub fn render(rb: &Runbook, format: Format) -> String {
    match format {
        Format::Dot => dot(rb),
        Format::Mermaid => mermaid(rb),
    }
}

fn dot(rb: &Runbook) -> String {
    let mut out = format!("digraph \"{}\" {{\n  rankdir=LR;\n  node [shape=box, style=rounded, fontname=\"Helvetica\"];\n", rb.name);
    let id = |prefix: &str, plan: &Plan, i: usize| format!("\"{prefix}{}\"", plan.steps[i].id);
    for (i, s) in rb.main.steps.iter().enumerate() {
        let shape = match s.role {
            Role::Probe(_) => ", shape=ellipse",
            Role::Score => ", shape=diamond",
            Role::Action => "",
        };
        out += &format!("  {} [label=\"{}\"{shape}];\n", id("", &rb.main, i), label(rb, &rb.main, i));
    }
    for (a, b) in sorted_edges(&rb.main) {
        out += &format!("  {} -> {};\n", id("", &rb.main, a), id("", &rb.main, b));
    }
    for (name, plan) in [("on_failure", &rb.on_failure), ("on_abort", &rb.on_abort)] {
        if plan.steps.is_empty() {
            continue;
        }
        let prefix = format!("{name}.");
        out += &format!("  subgraph cluster_{name} {{\n    label=\"{name}\";\n    style=dashed;\n");
        for i in 0..plan.steps.len() {
            out += &format!("    {} [label=\"{}\"];\n", id(&prefix, plan, i), label(rb, plan, i));
        }
        for (a, b) in sorted_edges(plan) {
            out += &format!("    {} -> {};\n", id(&prefix, plan, a), id(&prefix, plan, b));
        }
        out += "  }\n";
    }
    out + "}\n"
}

fn mermaid(rb: &Runbook) -> String {
    let mut out = String::from("flowchart LR\n");
    let text = |plan: &Plan, i: usize| label(rb, plan, i).replace("\\n", "<br/>").replace('"', "#quot;");
    for (i, s) in rb.main.steps.iter().enumerate() {
        let t = text(&rb.main, i);
        out += &match s.role {
            Role::Probe(_) => format!("  {}([\"{t}\"])\n", s.id),
            Role::Score => format!("  {}{{\"{t}\"}}\n", s.id),
            Role::Action => format!("  {}[\"{t}\"]\n", s.id),
        };
    }
    for (a, b) in sorted_edges(&rb.main) {
        out += &format!("  {} --> {}\n", rb.main.steps[a].id, rb.main.steps[b].id);
    }
    for (name, plan) in [("on_failure", &rb.on_failure), ("on_abort", &rb.on_abort)] {
        if plan.steps.is_empty() {
            continue;
        }
        out += &format!("  subgraph {name}\n");
        for (i, s) in plan.steps.iter().enumerate() {
            out += &format!("    {name}.{}[\"{}\"]\n", s.id, text(plan, i));
        }
        for (a, b) in sorted_edges(plan) {
            out += &format!("    {name}.{} --> {name}.{}\n", plan.steps[a].id, plan.steps[b].id);
        }
        out += "  end\n";
    }
    out
}

fn sorted_edges(plan: &Plan) -> Vec<(usize, usize)> {
    let mut e: Vec<_> = plan.dag.edges().collect();
    e.sort_by_key(|&(a, b)| (b, a));
    e
}
