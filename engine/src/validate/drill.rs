//! The `drill:` section: its `params` overlay names declared params with values of their
//! types (PHX0502); its `protect` entries are templates that read only params and vars
//! (PHX0708), so they can be rendered before any step runs.

use crate::diag::{Code, Diagnostic};
use crate::runbook::raw::RawRunbook;
use crate::suggest;
use crate::template::check_template;
use crate::validate::params::fits;
use crate::yaml::Path;

pub(crate) fn check(raw: &RawRunbook, out: &mut Vec<Diagnostic>) {
    let Some(drill) = &raw.drill else { return };
    let path = Path::root().key("drill");
    for (name, v) in &drill.params {
        let at = path.key("params").key(name);
        match raw.params.get(name) {
            None => out.push(
                Diagnostic::new(Code::DrillParam, at, format!("the drill sets `{name}`, which is not a param of the runbook"))
                    .help(format!(
                        "{}; a drill only overlays declared params (declare it under `params:` first)",
                        suggest::hint(name, raw.params.keys().map(String::as_str))
                    ))
                    .on_key(),
            ),
            Some(p) if !fits(p.ty, v) => out.push(
                Diagnostic::new(Code::DrillParam, at, format!("the drill's `{name}` is {v}, not of the param's type `{}`", p.ty))
                    .help(format!("write a value of type `{}`", p.ty)),
            ),
            Some(p) => {
                if let Some(choices) = p.choices.as_ref().filter(|c| !c.contains(v)) {
                    let list: Vec<String> = choices.iter().map(ToString::to_string).collect();
                    out.push(
                        Diagnostic::new(Code::DrillParam, at, format!("the drill's `{name}` is {v}, not one of the param's `enum` values"))
                            .help(format!("choose one of {}", list.join(", "))),
                    );
                }
            }
        }
    }
    for (i, entry) in drill.protect.iter().enumerate() {
        let at = path.key("protect").index(i);
        if entry.trim().is_empty() {
            out.push(
                Diagnostic::new(Code::DrillProtect, at, "an empty `protect` entry protects nothing")
                    .help("name a production target: a DNS name, a bucket, a container, `host/db`…"),
            );
            continue;
        }
        match check_template(entry) {
            Err(e) => out.push(Diagnostic::new(Code::DrillProtect, at, format!("the template does not parse: {}", e.message))),
            Ok(refs) => {
                for r in &refs {
                    let (kind, known): (&str, Vec<&str>) = match r.root.as_str() {
                        "params" => ("param", raw.params.keys().map(String::as_str).collect()),
                        "vars" => ("var", raw.vars.keys().map(String::as_str).collect()),
                        _ => continue,
                    };
                    if let Some(name) = r.path.first().filter(|n| !known.contains(&n.as_str())) {
                        out.push(
                            Diagnostic::new(Code::DrillProtect, at.clone(), format!("`{}.{name}` names no {kind} of this runbook", r.root))
                                .help(suggest::hint(name, known.iter().copied())),
                        );
                    }
                }
                for r in refs.iter().filter(|r| !matches!(r.root.as_str(), "params" | "vars")) {
                    out.push(
                        Diagnostic::new(
                            Code::DrillProtect,
                            at.clone(),
                            format!("`protect` reads `{}`: it may read only params and vars, rendered before any step runs", r.root),
                        )
                        .help("name the production target from params or vars (`{{ params.record }}`), or write it out"),
                    );
                }
            }
        }
    }
}
