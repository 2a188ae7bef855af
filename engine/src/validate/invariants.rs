//! The `invariants:` section: each check is a read-only action whose `with` fits it, each
//! `around` names steps of `steps:`. (The templates of `with` and `that` are checked with the
//! others, in `templates/`: names exist, steps read are ancestors of every around step.)

use phoenix_plugins::{Effect, find, names};
use serde_json::Value;

use super::defs::{Def, Section};
use super::schema_check::SchemaCheck;
use crate::diag::{Code, Diagnostic};
use crate::runbook::raw::{RawInvariant, RawRunbook};
use crate::suggest;
use crate::yaml::Path;

/// The main-plan indexes of an invariant's `around` steps that name a step of `steps:`.
pub(crate) fn around(inv: &RawInvariant, main: &[Def<'_>]) -> Vec<usize> {
    inv.around.iter().filter_map(|id| main.iter().position(|d| d.id == id && d.section == Section::Steps)).collect()
}

pub(crate) fn check(raw: &RawRunbook, main: &[Def<'_>], fail: &[Def<'_>], out: &mut Vec<Diagnostic>) {
    for (name, inv) in &raw.invariants {
        let path = Path::root().key("invariants").key(name);
        if !super::names::is_identifier(name) {
            out.push(
                Diagnostic::new(Code::BadName, path.clone(), format!("`{name}` is not a valid invariant name"))
                    .help("use letters, digits and `_` (`resume --override NAME` names it)")
                    .on_key(),
            );
        }
        check_action(inv, &path.key("check"), out);
        check_around(inv, &path.key("around"), main, fail, out);
    }
}

fn check_action(inv: &RawInvariant, path: &Path, out: &mut Vec<Diagnostic>) {
    let uses = inv.check.uses.as_str();
    let Some(action) = find(uses).filter(|a| a.info().kind != phoenix_plugins::Kind::Engine) else {
        out.push(Diagnostic::new(Code::UnknownAction, path.key("uses"), format!("`{uses}` is not an action a check can use")).help(
            format!("{} (`phoenix plugins` lists them; `assert`, `approval` and `runbook` cannot check)", suggest::hint(uses, names())),
        ));
        return;
    };
    let info = action.info();
    let effect = match inv.check.effect {
        Some(e) if info.caps.general => e,
        Some(e) if e < info.caps.effect => info.caps.effect,
        Some(e) => e,
        None => info.caps.effect,
    };
    if effect != Effect::Read {
        let help = if info.caps.general {
            format!("`{uses}`'s effect is whatever its inputs do: if these inputs only read, say so with `effect: read` in `check`")
        } else {
            "use an action that only reads (`route53.get`, `s3.get`, `postgres.replication_lag`, `http` with `effect: read`, …)".to_string()
        };
        out.push(
            Diagnostic::new(
                Code::InvariantEffect,
                path.key(if inv.check.effect.is_some() { "effect" } else { "uses" }),
                format!("an invariant's check must only read, and `{uses}` here is `{}`: checking would change the world", effect.as_str()),
            )
            .help(help),
        );
    }
    let with = inv.check.with.clone().unwrap_or(Value::Object(Default::default()));
    let with_path = path.key("with");
    if !with.is_object() {
        out.push(
            Diagnostic::new(Code::ActionInput, with_path, "`with` must be a mapping of inputs")
                .help(format!("see `phoenix plugins {uses}`")),
        );
        return;
    }
    let schema = serde_json::to_value(action.input_schema()).expect("schemas serialize");
    SchemaCheck::new(&schema, info.name).check(&with, &with_path, out);
    super::actions::action_issues(action, &with, &with_path, out);
}

fn check_around(inv: &RawInvariant, path: &Path, main: &[Def<'_>], fail: &[Def<'_>], out: &mut Vec<Diagnostic>) {
    if inv.around.is_empty() {
        out.push(
            Diagnostic::new(Code::UnknownAround, path.clone(), "`around` is empty: the invariant would never be checked")
                .help("name the steps it guards, e.g. `around: [switch_dns]`"),
        );
    }
    let steps = || main.iter().filter(|d| d.section == Section::Steps).map(|d| d.id);
    for (i, id) in inv.around.iter().enumerate() {
        if steps().any(|s| s == id) {
            continue;
        }
        let msg = if fail.iter().any(|d| d.id == id) {
            format!("`{id}` is an on_failure step: invariants guard the steps of `steps:`")
        } else if main.iter().any(|d| d.id == id) {
            format!("`{id}` is a signal: invariants guard the steps of `steps:`")
        } else {
            format!("`around` names `{id}`, which is no step of `steps:`")
        };
        out.push(Diagnostic::new(Code::UnknownAround, path.index(i), msg).help(suggest::hint(id, steps())));
    }
}

/// `that` reads a secret: what it read is shown when it fails.
pub(crate) fn reads_secret(path: &Path) -> Diagnostic {
    Diagnostic::new(Code::SecretLeak, path.clone(), "a secret cannot be read by `that`: what the condition read is shown when it fails")
        .help("use the secret in the check's `with`, and compare its outputs here")
}

/// An invariant reads `what` (`score`, or a step id), which `around` (a step it guards) does
/// not need: it may not have run when the check does.
pub(crate) fn reads_unready(path: &Path, what: &str, around: &str) -> Diagnostic {
    let name = if what == "score" { "score".to_string() } else { format!("steps.{what}") };
    Diagnostic::new(
        Code::Race,
        path.clone(),
        format!(
            "this invariant reads `{name}`, which `{around}` (a step it is around) does not need: it may not have run when the check does"
        ),
    )
    .help(format!("add `{what}` to the `needs` of `{around}`, or read something the check can see for itself"))
}
