//! Checks of what steps declare they do to the world (`effect`): a step may raise its
//! action's effect, not lower it (but for general actions, whose effect is their inputs'),
//! `idempotent:` is noted as the older spelling, and an irreversible step with no approval
//! before it is warned about (`validate`; `--strict` fails on it).

use phoenix_plugins::{ActionInfo, Effect};

use super::defs::Def;
use crate::diag::{Code, Diagnostic};
use crate::runbook::{Loaded, Plan};
use crate::yaml::Path;

/// `true` → `idempotent`, `false` → `mutating`: what `idempotent:` meant.
pub(crate) fn from_idempotent(i: bool) -> Effect {
    if i { Effect::Idempotent } else { Effect::Mutating }
}

/// A step's own `effect`/`idempotent` against its action's.
pub(crate) fn check(def: &Def<'_>, info: &ActionInfo, out: &mut Vec<Diagnostic>) {
    let path = def.path();
    if def.effect.is_some() && def.idempotent.is_some() {
        out.push(
            Diagnostic::new(Code::InvalidValue, path.key("idempotent"), "give `effect` or `idempotent`, not both")
                .help("remove `idempotent`: `effect` says it (`idempotent: true` is `effect: idempotent`)"),
        );
        return;
    }
    if let Some(i) = def.idempotent {
        let e = from_idempotent(i);
        out.push(
            Diagnostic::new(
                Code::IdempotentSpelling,
                path.key("idempotent"),
                format!("`idempotent: {i}` is the older spelling of `effect: {}`", e.as_str()),
            )
            .help(format!("write `effect: {}` (or `irreversible` if it cannot be undone)", e.as_str()))
            .warning(),
        );
    }
    let declared = def.effect.or(def.idempotent.map(from_idempotent));
    if let Some(e) = declared.filter(|e| *e < info.caps.effect && !info.caps.general) {
        let key = if def.effect.is_some() { "effect" } else { "idempotent" };
        out.push(
            Diagnostic::new(
                Code::EffectLowered,
                path.key(key),
                format!("`{}` is `{}`: a step of it cannot be `{}`", info.name, info.caps.effect.as_str(), e.as_str()),
            )
            .help(format!(
                "remove it (the step is `{}`), or raise it: {}",
                info.caps.effect.as_str(),
                Effect::ALL.iter().filter(|x| **x > info.caps.effect).map(|x| format!("`{}`", x.as_str())).collect::<Vec<_>>().join(", ")
            )),
        );
    }
}

/// Irreversible steps of a valid runbook with no `approval` step among their ancestors, as
/// warnings placed in the file.
pub(crate) fn unapproved(loaded: &Loaded) -> Vec<Diagnostic> {
    let Some(rb) = &loaded.runbook else { return Vec::new() };
    let node = crate::yaml::parse(&loaded.source).ok();
    let mut out = Vec::new();
    for (section, plan) in [("steps", &rb.main), ("on_failure", &rb.on_failure), ("on_abort", &rb.on_abort)] {
        for (i, step) in plan.steps.iter().enumerate() {
            if step.effect != Effect::Irreversible || approved_before(plan, i) {
                continue;
            }
            let path = Path::root().key(section).key(step.id.as_str()).key("effect");
            let mut d = Diagnostic::new(
                Code::Unapproved,
                path.clone(),
                format!("`{}` is irreversible and no approval comes before it: nothing asks a person first", step.id),
            )
            .help(format!(
                "add an `approval` step to its `needs` (directly or through the steps it needs), e.g. `needs: [approve_{}]`",
                step.id
            ))
            .warning();
            d.file = Some(loaded.file.clone());
            d.span = node.as_ref().map(|n| n.span_at(&path, true));
            out.push(d);
        }
    }
    out
}

/// Whether an `approval` step is among step `i`'s ancestors.
fn approved_before(plan: &Plan, i: usize) -> bool {
    let mut seen = vec![false; plan.steps.len()];
    let mut stack: Vec<usize> = plan.steps[i].needs.clone();
    while let Some(n) = stack.pop() {
        if std::mem::replace(&mut seen[n], true) {
            continue;
        }
        if plan.steps[n].uses == "approval" {
            return true;
        }
        stack.extend(plan.steps[n].needs.iter().copied());
    }
    false
}
