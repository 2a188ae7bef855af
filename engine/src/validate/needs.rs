//! `needs`: every name is a step of the same plan, and the steps form no cycle.

use std::collections::{HashMap, HashSet};

use super::defs::{Def, SCORE, Section};
use crate::dag::Dag;
use crate::diag::{Code, Diagnostic};
use crate::suggest;
use crate::yaml::Path;

fn need_path(def: &Def<'_>, i: usize) -> Path {
    let p = def.path().key("needs");
    if def.needs.is_one() { p } else { p.index(i) }
}

/// Resolves each step's needs to indices in its own plan. Unknown names are reported
/// (names of steps that did not parse are skipped quietly: they were reported already).
pub(crate) fn resolve(plan: &[Def<'_>], other: &[Def<'_>], broken: &HashSet<String>, out: &mut Vec<Diagnostic>) -> Vec<Vec<usize>> {
    let index: HashMap<&str, usize> = plan.iter().enumerate().map(|(i, d)| (d.id, i)).collect();
    let others: HashSet<&str> = other.iter().map(|d| d.id).collect();
    let mut all = Vec::with_capacity(plan.len());
    for def in plan {
        let mut resolved: Vec<usize> = Vec::new();
        for (i, need) in def.needs.ids().into_iter().enumerate() {
            let path = need_path(def, i);
            if need == def.id {
                out.push(Diagnostic::new(Code::Cycle, path, format!("`{need}` needs itself")).help("remove it from its own `needs`"));
                continue;
            }
            if let Some(&n) = index.get(need) {
                if !resolved.contains(&n) {
                    resolved.push(n);
                }
                continue;
            }
            if broken.contains(need) {
                continue;
            }
            let d = if others.contains(need) && matches!(def.section, Section::OnFailure | Section::OnAbort | Section::Teardown) {
                let s = def.section.key();
                Diagnostic::new(
                    Code::UnknownNeed,
                    path,
                    format!("`{need}` is a step of the main DAG; {s} steps run after it ends and can only need other {s} steps"),
                )
                .help(format!("remove it from `needs`; an {s} step may still read `steps.{need}.status`"))
            } else if others.contains(need) {
                Diagnostic::new(
                    Code::UnknownNeed,
                    path,
                    format!("`{need}` is an on_failure step; it runs only when the run fails, so no step can need it"),
                )
                .help("move the step into `steps`, or drop this need")
            } else if need == SCORE {
                Diagnostic::new(Code::ScoreWithoutSignals, path, "`score` exists only when the runbook has `signals`")
                    .help("add `signals:` and `levels:`, or remove this need")
            } else {
                Diagnostic::new(Code::UnknownNeed, path, format!("`{need}` is not a step of this runbook"))
                    .help(suggest::hint(need, plan.iter().map(|d| d.id).filter(|id| *id != def.id)))
            };
            out.push(d);
        }
        all.push(resolved);
    }
    all
}

/// Builds the DAG, or reports each cycle as `a -> b -> a`.
pub(crate) fn dag(plan: &[Def<'_>], needs: &[Vec<usize>], out: &mut Vec<Diagnostic>) -> Option<Dag> {
    match Dag::build(needs) {
        Ok(d) => Some(d),
        Err(cycles) => {
            for cycle in cycles {
                let names: Vec<&str> = cycle.iter().map(|&i| plan[i].id).collect();
                let first = &plan[cycle[0]];
                let next = plan[cycle[1]].id;
                let pos = first.needs.ids().iter().position(|n| *n == next).unwrap_or(0);
                out.push(
                    Diagnostic::new(
                        Code::Cycle,
                        need_path(first, pos),
                        format!("these steps need each other in a cycle: {}", names.join(" -> ")),
                    )
                    .help("a step can only run after its needs; remove one of these needs to break the cycle"),
                );
            }
            None
        }
    }
}
