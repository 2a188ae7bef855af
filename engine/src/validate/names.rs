//! Names: the runbook's, ids of steps, signals, params, vars and secrets; duplicates and
//! reserved ids; the format version. (Secrets' sources: `secrets.rs`.)

use std::collections::HashMap;

use crate::diag::{Code, Diagnostic};
use crate::runbook::raw::RawRunbook;
use crate::yaml::Path;

/// `[a-z0-9][a-z0-9_-]*`
pub(crate) fn is_runbook_name(s: &str) -> bool {
    let mut c = s.chars();
    c.next().is_some_and(|f| f.is_ascii_lowercase() || f.is_ascii_digit())
        && c.all(|x| x.is_ascii_lowercase() || x.is_ascii_digit() || x == '_' || x == '-')
}

/// `[A-Za-z_][A-Za-z0-9_]*`: readable as `steps.<id>` in templates.
pub(crate) fn is_identifier(s: &str) -> bool {
    let mut c = s.chars();
    c.next().is_some_and(|f| f.is_ascii_alphabetic() || f == '_') && c.all(|x| x.is_ascii_alphanumeric() || x == '_')
}

fn suggest_identifier(s: &str) -> String {
    let mut out: String = s.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
    if out.starts_with(|c: char| c.is_ascii_digit()) || out.is_empty() {
        out.insert(0, '_');
    }
    out
}

pub(crate) fn check(raw: &RawRunbook, out: &mut Vec<Diagnostic>) {
    if raw.version != 1 {
        out.push(
            Diagnostic::new(Code::Version, Path::root().key("version"), format!("runbook format version {} is not supported", raw.version))
                .help("this phoenix reads `version: 1`"),
        );
    }
    if !raw.name.is_empty() && !is_runbook_name(&raw.name) {
        let fixed: String = raw
            .name
            .to_ascii_lowercase()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '-' })
            .collect();
        out.push(Diagnostic::new(Code::BadName, Path::root().key("name"), format!("`{}` is not a valid runbook name", raw.name)).help(
            format!(
                "use lower-case letters, digits, `-` and `_`, starting with a letter or digit: `{}`",
                fixed.trim_start_matches(['-', '_'])
            ),
        ));
    }
    let at = |section: &str, id: &str| match section {
        "teardown" => Path::root().key("drill").key("teardown").key(id),
        _ => Path::root().key(section).key(id),
    };
    let sections: [(&str, Vec<&String>); 8] = [
        ("params", raw.params.keys().collect()),
        ("vars", raw.vars.keys().collect()),
        ("secrets", raw.secrets.keys().collect()),
        ("signals", raw.signals.keys().collect()),
        ("steps", raw.steps.keys().collect()),
        ("on_failure", raw.on_failure.keys().collect()),
        ("on_abort", raw.on_abort.keys().collect()),
        ("teardown", raw.drill.iter().flat_map(|d| d.teardown.keys()).collect()),
    ];
    for (section, ids) in &sections {
        for id in ids {
            if !is_identifier(id) {
                out.push(
                    Diagnostic::new(Code::BadName, at(section, id.as_str()), format!("`{id}` is not a valid id"))
                        .help(format!(
                            "ids are read in templates as `{section}.<id>`: use letters, digits and `_`, e.g. `{}`",
                            suggest_identifier(id)
                        ))
                        .on_key(),
                );
            }
        }
    }
    // Steps, signals, on_failure and on_abort steps share one namespace (`steps.<id>`).
    let mut seen: HashMap<&str, &str> = HashMap::new();
    for (section, ids) in sections.iter().skip(3) {
        for id in ids {
            let path = at(section, id.as_str());
            if id.as_str() == crate::validate::defs::SCORE {
                out.push(
                    Diagnostic::new(Code::ReservedId, path, "`score` is reserved for the step that sums the signals")
                        .help("rename this step; read the score with `score.total` and `score.level`")
                        .on_key(),
                );
                continue;
            }
            if let Some(first) = seen.insert(id.as_str(), section) {
                out.push(
                    Diagnostic::new(Code::DuplicateId, path, format!("`{id}` is already the id of an entry in `{first}`"))
                        .help("signals, steps, on_failure and on_abort steps share one namespace (`steps.<id>`): rename one")
                        .on_key(),
                );
            }
        }
    }
    super::secrets::check(raw, out);
    if raw.max_parallel == Some(0) {
        out.push(Diagnostic::new(Code::InvalidValue, Path::root().key("max_parallel"), "`max_parallel` must be at least 1"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_rules() {
        assert!(is_runbook_name("dr-failover"));
        assert!(is_runbook_name("0day_x"));
        assert!(!is_runbook_name("DR"));
        assert!(!is_runbook_name("-x"));
        assert!(is_identifier("replicate_db"));
        assert!(!is_identifier("replicate-db"));
        assert_eq!(suggest_identifier("replicate-db"), "replicate_db");
    }
}
