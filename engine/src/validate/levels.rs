//! Levels ascend and end with a level without `max`; weight rules end with the fallback.

use std::collections::HashSet;

use crate::diag::{Code, Diagnostic};
use crate::runbook::raw::RawRunbook;
use crate::yaml::Path;

pub(crate) fn check(raw: &RawRunbook, out: &mut Vec<Diagnostic>) {
    let levels_path = Path::root().key("levels");
    if !raw.signals.is_empty() && raw.levels.is_empty() {
        out.push(
            Diagnostic::new(Code::Levels, Path::root().key("signals"), "`signals` need `levels` to turn the score into a level")
                .help("add `levels:`, e.g. `- { name: ok, max: 3 }` and `- { name: failover }`"),
        );
    }
    if raw.signals.is_empty() && !raw.levels.is_empty() {
        out.push(
            Diagnostic::new(Code::Levels, levels_path.clone(), "`levels` without `signals`: there is no score to compare")
                .help("add `signals:` or remove `levels:`"),
        );
    }
    let mut names = HashSet::new();
    let mut prev: Option<f64> = None;
    let n = raw.levels.len();
    for (i, level) in raw.levels.iter().enumerate() {
        let path = levels_path.index(i);
        if !names.insert(level.name.as_str()) {
            out.push(Diagnostic::new(Code::Levels, path.key("name"), format!("the level `{}` is declared twice", level.name)));
        }
        let last = i + 1 == n;
        match (level.max, last) {
            (Some(_), true) => out.push(
                Diagnostic::new(
                    Code::Levels,
                    path.key("max"),
                    format!("the last level (`{}`) must not have a `max`: it takes every score above the others", level.name),
                )
                .help("remove `max` from the last level"),
            ),
            (None, false) => out.push(
                Diagnostic::new(
                    Code::Levels,
                    path.clone(),
                    format!("the level `{}` needs a `max`: only the last level has none", level.name),
                )
                .help("add `max: N`, the highest score that takes this level"),
            ),
            (Some(m), false) => {
                if let Some(p) = prev.filter(|p| m <= *p) {
                    out.push(
                        Diagnostic::new(
                            Code::Levels,
                            path.key("max"),
                            format!("levels must ascend: `max: {m}` is not above the previous level's `max: {p}`"),
                        )
                        .help("order levels from the lowest score to the highest"),
                    );
                }
                prev = Some(m);
            }
            (None, true) => {}
        }
        if level.hold == Some(0) {
            out.push(
                Diagnostic::new(Code::Levels, path.key("for"), "`for` counts evaluations and must be at least 1")
                    .help("remove `for` to confirm the level at once"),
            );
        }
    }
    for (name, s) in &raw.signals {
        let path = Path::root().key("signals").key(name).key("weight");
        if s.weight.is_empty() {
            out.push(
                Diagnostic::new(Code::Weights, path, format!("signal `{name}` has no weight rules"))
                    .help("end the list with a fallback: `- { weight: 5 }`"),
            );
            continue;
        }
        let m = s.weight.len();
        for (i, rule) in s.weight.iter().enumerate() {
            let last = i + 1 == m;
            if rule.when.is_none() && !last {
                out.push(
                    Diagnostic::new(
                        Code::Weights,
                        path.index(i),
                        format!("the fallback rule (no `when`) of `{name}` must come last; the rules after it would never apply"),
                    )
                    .help("move it to the end of the list"),
                );
            }
            if rule.when.is_some() && last {
                out.push(
                    Diagnostic::new(
                        Code::Weights,
                        path.index(i),
                        format!("signal `{name}` needs a fallback rule without `when` at the end"),
                    )
                    .help("it is also the weight taken when the probe fails: add `- { weight: N }`"),
                );
            }
            if !rule.weight.is_finite() {
                out.push(Diagnostic::new(Code::Weights, path.index(i).key("weight"), "a weight must be a finite number"));
            }
        }
    }
}

/// Warns about a level above the first with no `for:` whose name a `uses: runbook` step's
/// `when` compares to: one evaluation at that level starts the runbook, so one bad probe
/// (or a blind observer without a vantage signal) is enough to fail over.
pub(crate) fn warn_unheld(raw: &RawRunbook, out: &mut Vec<Diagnostic>) {
    for (i, level) in raw.levels.iter().enumerate().skip(1) {
        if level.hold.is_some_and(|h| h > 1) {
            continue;
        }
        let quoted = [format!("'{}'", level.name), format!("\"{}\"", level.name)];
        let starts = raw.steps.iter().find(|(_, s)| {
            s.uses == "runbook"
                && matches!(&s.when, Some(crate::runbook::raw::Cond::Expr(e)) if e.contains("score.level") && quoted.iter().any(|q| e.contains(q.as_str())))
        });
        if let Some((step, _)) = starts {
            out.push(
                Diagnostic::new(
                    Code::LevelWithoutFor,
                    Path::root().key("levels").index(i),
                    format!("the level `{}` starts the runbook of step `{step}` on its first evaluation: it has no `for:`", level.name),
                )
                .help("add `for: 2` (or more) so the level must hold for several evaluations in a row before it acts")
                .warning(),
            );
        }
    }
}
