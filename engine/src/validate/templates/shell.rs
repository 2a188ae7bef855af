//! Script text: each `{{ }}` becomes a variable behind a quoted reference, but some places in
//! a shell script admit none (arithmetic, quoted here-documents, `eval`, …): refused, with a fix.

use super::Checker;
use crate::diag::{Code, Diagnostic};
use crate::template::unsafe_tags;
use crate::yaml::Path;

impl Checker<'_> {
    /// Script text: each value becomes a variable with a reference, but some places admit none.
    pub(super) fn shell_quoting(&mut self, script: &str, path: &Path) {
        for (expr, line, column, place) in unsafe_tags(script) {
            self.out.push(
                Diagnostic::new(Code::ShellQuoting, path.clone(), format!(
                    "`{{{{ {expr} }}}}` at line {line}, column {column} of the script stands {place}, where its value would not stay data"
                ))
                    .help(shell_fix(place)),
            );
        }
    }
}

/// How to fix a tag that stands where its value would not stay data.
fn shell_fix(place: &str) -> String {
    let data = "assign it to a variable first, on its own: `v={{ ... }}` (the value arrives as data), then use `\"$v\"`";
    if place.contains("arithmetic")
        || place.contains("subscript")
        || place.contains("`let`")
        || place.contains("numeric")
        || place.contains("integer")
    {
        format!(
            "{data}, and check it is a number before arithmetic reads it: `[[ $v =~ ^-?[0-9]+$ ]] || exit 2; echo $((v + 1))` (arithmetic evaluates a variable's text as an expression, so an unchecked `a[$(cmd)]` would run `cmd`)"
        )
    } else if place.contains("quoted here-document") {
        "use an unquoted delimiter (`<<EOF`: the value arrives as data, nothing in it expands), or `printf '%s\\n' \"$v\"` after `v={{ ... }}`".to_string()
    } else if place.contains("backslash") {
        "remove the backslash (the value arrives as data, it needs no escaping), or write `\\\\` for a literal backslash".to_string()
    } else if place.contains("`eval`") {
        "do not `eval` a value: run the command with the value as an argument, `cmd \"{{ ... }}\"`".to_string()
    } else {
        format!("{data} there (`${{v:-default}}`, `$(cmd \"$v\")`), or set it in the step's `env:` and read that variable")
    }
}
