//! `uses` names a known action, and `with` fits that action's input.

use std::collections::HashMap;

use phoenix_plugins::{At, find, names};
use serde_json::Value;

use super::defs::{Def, SCORE_ACTION, Section};
use super::schema_check::SchemaCheck;
use crate::diag::{Code, Diagnostic};
use crate::suggest;

/// `dir` is the runbook's directory: template files (`prompt_file`) are relative to it.
pub(crate) fn check(defs: &[Def<'_>], dir: &std::path::Path, out: &mut Vec<Diagnostic>) {
    let mut schemas: HashMap<&str, Value> = HashMap::new();
    for def in defs {
        if def.section == Section::Score {
            continue;
        }
        let path = def.path();
        let Some(action) = find(def.uses).filter(|_| def.uses != SCORE_ACTION) else {
            out.push(
                Diagnostic::new(Code::UnknownAction, path.key("uses"), format!("`{}` is not a known action", def.uses))
                    .help(format!("{} (`phoenix plugins` lists them)", suggest::hint(def.uses, names()))),
            );
            continue;
        };
        let info = action.info();
        if def.section == Section::Signals && !info.caps.probe {
            out.push(
                Diagnostic::new(Code::UnknownAction, path.key("uses"), format!("`{}` cannot be a signal's probe", def.uses))
                    .help("signals use probe actions such as `http`, `exec` or `postgres.replication_lag`"),
            );
            continue;
        }
        super::effects::check(def, &info, out);
        if def.uses == "approval" {
            // A person is asked once: a loop or a retry of the question would be ignored.
            for (key, present, help) in [
                ("for_each", def.for_each.is_some(), "ask once, naming every item in `message`; or put the approval before the loop"),
                ("retry", def.retry.is_some(), "an approval is asked once; give it a `timeout` instead"),
            ] {
                if present {
                    out.push(
                        Diagnostic::new(Code::InvalidValue, path.key(key), format!("an `approval` step cannot have `{key}`")).help(help),
                    );
                }
            }
        }
        let with = def.with.cloned().unwrap_or(Value::Object(Default::default()));
        let with_path = path.key("with");
        if !with.is_object() {
            out.push(
                Diagnostic::new(Code::ActionInput, with_path, "`with` must be a mapping of inputs")
                    .help(format!("see `phoenix plugins {}`", def.uses)),
            );
            continue;
        }
        let schema = schemas.entry(info.name).or_insert_with(|| serde_json::to_value(action.input_schema()).expect("schemas serialize"));
        SchemaCheck::new(schema, info.name).check(&with, &with_path, out);
        action_issues(action, &with, &with_path, out);
        for &(key, _) in action.template_files() {
            let Some(rel) = with.get(key).and_then(Value::as_str).filter(|r| !crate::template::is_template(r)) else { continue };
            let problem = match crate::runbook::confine::inside(dir, rel, "the template file") {
                Err(e) => Some(e),
                Ok(file) => match std::fs::read_to_string(&file) {
                    Err(e) => Some(format!("cannot read the template file {}: {e}", file.display())),
                    Ok(text) => crate::template::check_template(&text)
                        .err()
                        .map(|e| format!("{} is not a valid template: {}", file.display(), e.message)),
                },
            };
            if let Some(problem) = problem {
                out.push(
                    Diagnostic::new(Code::ActionInput, with_path.key(key), problem).help("the path is relative to the runbook's directory"),
                );
            }
        }
        // A child runbook named as it is (not by a template) must stay in this directory too;
        // one named by a template is checked when the step runs.
        if def.uses == "runbook" {
            if let Some(rel) = with.get("file").and_then(Value::as_str).filter(|r| !crate::template::is_template(r)) {
                if let Some(problem) = crate::runbook::confine::escapes(dir, rel, "the child runbook") {
                    out.push(
                        Diagnostic::new(Code::ActionInput, with_path.key("file"), problem)
                            .help("child runbooks are named relative to this runbook's directory, and stay inside it"),
                    );
                }
            }
        }
    }
}

/// What the action's own `check` finds wrong in `with` (at `with_path`), as diagnostics.
pub(crate) fn action_issues(action: &dyn phoenix_plugins::Action, with: &Value, with_path: &crate::yaml::Path, out: &mut Vec<Diagnostic>) {
    for issue in action.check(with) {
        let mut p = with_path.clone();
        for at in &issue.at {
            p = match at {
                At::Key(k) => p.key(k),
                At::Index(i) => p.index(*i),
            };
        }
        let mut d = Diagnostic::new(Code::ActionInput, p, issue.message);
        d.help = issue.help;
        out.push(d);
    }
}
