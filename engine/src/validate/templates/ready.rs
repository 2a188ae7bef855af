//! Whether what a template reads is ready where it is rendered: `score` and `steps.ID` only
//! from steps guaranteed to have finished (ancestors), never a race.

use super::{Checker, Scope};
use crate::diag::{Code, Diagnostic};
use crate::suggest;
use crate::validate::defs::SCORE;
use crate::yaml::Path;

impl Checker<'_> {
    pub(super) fn score(&mut self, path: &Path, scope: Scope<'_>) {
        if self.raw.signals.is_empty() {
            self.out.push(
                Diagnostic::new(Code::ScoreWithoutSignals, path.clone(), "`score` is read here but the runbook has no `signals`")
                    .help("add `signals:` and `levels:`, or remove this reference"),
            );
            return;
        }
        if let (Scope::Invariant { around, dag, .. }, true) = (scope, self.races) {
            let score = *self.main_index.get(SCORE).expect("signals imply a score step");
            if let Some(&a) = around.iter().find(|&&a| !dag.is_ancestor(score, a)) {
                self.out.push(crate::validate::invariants::reads_unready(path, "score", self.main[a].id));
            }
        }
        if let (Scope::Step { index, dag, .. }, true) = (scope, self.races) {
            let score = *self.main_index.get(SCORE).expect("signals imply a score step");
            if !dag.is_ancestor(score, index) {
                let id = self.main[index].id;
                self.out.push(
                    Diagnostic::new(
                        Code::Race,
                        path.clone(),
                        format!("`{id}` reads `score` but does not need it: it could run before the score is known"),
                    )
                    .help(format!("add `score` to the `needs` of `{id}`")),
                );
            }
        }
    }

    pub(super) fn step(&mut self, id: &str, field: Option<&str>, path: &Path, scope: Scope<'_>) {
        let in_main = self.main_index.get(id).copied();
        let in_fail = self.fail_index.get(id).copied();
        let in_abort = self.abort_index.get(id).copied();
        if in_main.is_none() && in_fail.is_none() && in_abort.is_none() {
            let all = self.main.iter().chain(self.fail).chain(self.abort).map(|d| d.id);
            self.out.push(
                Diagnostic::new(Code::UnknownReference, path.clone(), format!("`steps.{id}` names no step of this runbook"))
                    .help(suggest::hint(id, all)),
            );
            return;
        }
        if let Some(f) = field.filter(|f| !["outputs", "status", "error", "attempts"].contains(f)) {
            self.out.push(
                Diagnostic::new(Code::UnknownReference, path.clone(), format!("a step has no `{f}`"))
                    .help(format!("read `steps.{id}.outputs.<name>` or `steps.{id}.status`")),
            );
            return;
        }
        let ready = match scope {
            Scope::Step { index, dag, .. } => in_main.is_some_and(|i| dag.is_ancestor(i, index)),
            Scope::Failure { index, dag, .. } => in_main.is_some() || in_fail.is_some_and(|i| dag.is_ancestor(i, index)),
            Scope::Abort { index, dag, .. } => in_main.is_some() || in_abort.is_some_and(|i| dag.is_ancestor(i, index)),
            Scope::Outputs => in_main.is_some(),
            Scope::Invariant { around, dag, .. } => in_main.is_some_and(|i| around.iter().all(|&a| dag.is_ancestor(i, a))),
            _ => false,
        };
        if ready || !self.races {
            return;
        }
        if let Scope::Invariant { around, dag, .. } = scope {
            let a = around.iter().find(|&&a| in_main.is_none_or(|i| !dag.is_ancestor(i, a))).map_or("", |&a| self.main[a].id);
            self.out.push(crate::validate::invariants::reads_unready(path, id, a));
            return;
        }
        let reader = match scope {
            Scope::Step { index, .. } => Some(self.main[index].id),
            _ => None,
        };
        let d = match (reader, in_fail.is_some() && in_main.is_none()) {
            _ if in_abort.is_some() && in_main.is_none() && !matches!(scope, Scope::Abort { .. }) => Diagnostic::new(
                Code::Race,
                path.clone(),
                format!("`{id}` is an on_abort step: it runs only when an operator aborts the run, never before this is rendered"),
            ),
            (_, true) if !matches!(scope, Scope::Failure { .. }) => {
                Diagnostic::new(Code::Race, path.clone(), format!("`{id}` is an on_failure step: it has not run when this is rendered"))
            }
            (Some(r), _) => Diagnostic::new(
                Code::Race,
                path.clone(),
                format!(
                    "`{r}` reads `steps.{id}` but does not need it (directly or through its needs): it could run before `{id}` finishes"
                ),
            )
            .help(format!("add `{id}` to the `needs` of `{r}`")),
            (None, _) => Diagnostic::new(Code::Race, path.clone(), format!("`steps.{id}` is not ready where this is rendered"))
                .help("on_failure (on_abort) steps must need the on_failure (on_abort) steps they read"),
        };
        self.out.push(d);
    }
}
