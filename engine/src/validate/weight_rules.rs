//! Warnings about weight rules that can never match: a comparison of the probe's `status`
//! with a status no probe has, or a read of an output its action never returns. Warnings,
//! not errors: the runbook still runs (the rule just never gives its weight), and the check
//! stays conservative — it only speaks when it is sure.

use phoenix_plugins::find;

use crate::diag::{Code, Diagnostic};
use crate::runbook::{Cond, Loaded};
use crate::template::check_expression;
use crate::yaml::Path;

/// The statuses a probe's rule can see.
const STATUSES: &[&str] = &["succeeded", "failed"];

/// Actions whose declared outputs are all they ever return, on success and on failure (for
/// `http`, the one `json!` in plugins/src/net/http.rs, next to its list): only for these is
/// an unknown `outputs.X` certain never to exist. Add an action once that is checked.
const COMPLETE_OUTPUTS: &[&str] = &["http"];

/// The rules of a valid runbook that can never match, as warnings placed in the file.
pub fn never_matching_rules(loaded: &Loaded) -> Vec<Diagnostic> {
    let Some(rb) = &loaded.runbook else { return Vec::new() };
    let node = crate::yaml::parse(&loaded.source).ok();
    let mut out = Vec::new();
    for sig in &rb.signals {
        let uses = rb.main.find(&sig.name).map(|i| rb.main.steps[i].uses.as_str()).unwrap_or_default();
        for (i, rule) in sig.rules.iter().enumerate() {
            let Some(Cond::Expr(e)) = &rule.when else { continue };
            let path = Path::root().key("signals").key(sig.name.as_str()).key("weight").index(i).key("when");
            for (message, help) in problems(e, uses) {
                let mut d = Diagnostic::new(Code::NeverMatches, path.clone(), message).help(help);
                d.file = Some(loaded.file.clone());
                d.span = node.as_ref().map(|n| n.span_at(&path, false));
                out.push(d);
            }
        }
    }
    out
}

/// What makes one `when` never true: (message, help) pairs.
fn problems(expr: &str, uses: &str) -> Vec<(String, String)> {
    let mut found = Vec::new();
    for lit in status_literals(expr).into_iter().filter(|l| !STATUSES.contains(&l.as_str())) {
        let guess = crate::suggest::did_you_mean(&lit, STATUSES.iter().copied()).unwrap_or("failed");
        found.push((
            format!("this rule compares `status` with '{lit}', which a probe never has: the comparison is never true"),
            format!("a probe's status is 'succeeded' or 'failed': write '{guess}'"),
        ));
    }
    // `outputs.X is defined` or `| default(…)` may mean to test for the absence.
    let guarded = expr.contains("defined") || expr.contains("default");
    if let (Some(info), false, true) = (find(uses).map(|a| a.info()), guarded, COMPLETE_OUTPUTS.contains(&uses)) {
        let names: Vec<&str> = info.outputs.iter().map(|f| f.name).collect();
        let refs = check_expression(expr).unwrap_or_default();
        let mut unknown: Vec<&str> =
            refs.iter().filter(|r| r.root == "outputs").filter_map(|r| r.path.first().map(String::as_str)).collect();
        unknown.retain(|x| !names.contains(x));
        unknown.dedup();
        for x in unknown {
            let hint = crate::suggest::hint(x, names.iter().copied());
            found.push((
                format!("`{uses}` has no output `{x}`: `outputs.{x}` is never there, so this rule never matches"),
                format!("{hint} (`phoenix plugins {uses}` lists its outputs)"),
            ));
        }
    }
    found
}

/// The string literals `status` is compared with for equality (`status == 'x'`,
/// `'x' == status`, `status in ['x', 'y']`); `outputs.status` and `x.status` are not `status`.
fn status_literals(expr: &str) -> Vec<String> {
    let b = expr.as_bytes();
    let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(off) = expr[at..].find("status") {
        let (s, e) = (at + off, at + off + "status".len());
        at = e;
        let before = expr[..s].trim_end();
        if s > 0 && (ident(b[s - 1]) || before.ends_with('.')) || b.get(e).is_some_and(|&c| ident(c)) {
            continue;
        }
        // Inside a string literal (`'status'`): an odd number of quotes before it.
        if expr[..s].matches(['\'', '"']).count() % 2 == 1 {
            continue;
        }
        let after = expr[e..].trim_start();
        if let Some(rest) = after.strip_prefix("==") {
            out.extend(literal(rest.trim_start()));
        } else if let Some(rest) = after.strip_prefix("in").filter(|r| r.starts_with([' ', '['])) {
            let rest = rest.trim_start();
            if let Some(list) = rest.strip_prefix('[').and_then(|r| r.split_once(']')).map(|(l, _)| l) {
                out.extend(list.split(',').filter_map(|x| literal(x.trim())));
            }
        }
        if let Some(lhs) = before.strip_suffix("==") {
            out.extend(last_literal(lhs.trim_end()));
        }
    }
    out
}

/// A quoted string at the start of `s`.
fn literal(s: &str) -> Option<String> {
    let q = s.chars().next().filter(|c| *c == '\'' || *c == '"')?;
    let body = &s[1..];
    body.find(q).map(|end| body[..end].to_string())
}

/// A quoted string at the end of `s`.
fn last_literal(s: &str) -> Option<String> {
    let q = s.chars().last().filter(|c| *c == '\'' || *c == '"')?;
    let body = &s[..s.len() - 1];
    body.rfind(q).map(|start| body[start + 1..].to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_statuses_no_probe_has() {
        assert_eq!(status_literals("status == 'faild' and outputs.status == 404"), ["faild"]);
        assert_eq!(status_literals("'ok' == status"), ["ok"]);
        assert_eq!(status_literals("status in ['failed', 'down']"), ["failed", "down"]);
        assert!(status_literals("outputs.status == 'ok'").is_empty());
        assert!(status_literals("outputs.json.status == 'healthy'").is_empty());
        assert!(status_literals("my_status == 'x' or 'status' == 'x'").is_empty());
        assert!(status_literals("status != 'x'").is_empty());
    }

    #[test]
    fn warns_only_when_sure() {
        assert_eq!(problems("status == 'failed' and outputs.status == 404", "http"), []);
        assert_eq!(problems("outputs.json.status == 'healthy'", "http"), []);
        let p = problems("outputs.code == 404", "http");
        assert!(p.len() == 1 && p[0].0.contains("`http` has no output `code`"), "{p:?}");
        // Not an action whose outputs are known to be complete; or guarded.
        assert_eq!(problems("outputs.anything == 1", "exec"), []);
        assert_eq!(problems("outputs.code is defined", "http"), []);
        let p = problems("status == 'down'", "exec");
        assert!(p.len() == 1 && p[0].1.contains("'succeeded' or 'failed'"), "{p:?}");
    }
}
