//! What a step skipped by its `when` records: the condition and the values it read, so
//! `status` can say why (`when` was false: score.level == 'x' (read score.level = "y")).

use crate::template::{Redactor, check_expression, eval_value};

/// The longest value shown for one name the condition read.
const MAX_SHOWN: usize = 80;

/// The note for a `when` that was false. Secrets and environment variables are named, never
/// shown, and every value passes the run's redactor (a step's output may hold a secret's value).
pub(super) fn when_false(expr: &str, ctx: &minijinja::Value, redactor: &Redactor) -> String {
    let mut read: Vec<String> = Vec::new();
    for r in check_expression(expr).unwrap_or_default() {
        let name = std::iter::once(r.root.as_str()).chain(r.path.iter().map(String::as_str)).collect::<Vec<_>>().join(".");
        if read.iter().any(|x| x.starts_with(&format!("{name} = "))) {
            continue;
        }
        let shown = if r.root == "secrets" {
            "(a secret, not shown)".to_string()
        } else if r.root == "env" {
            // A variable may hold a credential the redactor has not learnt (a secret's source).
            "(environment, not shown)".to_string()
        } else {
            match eval_value(&name, ctx) {
                Ok(v) => cut(&redactor.text(&v.to_string())),
                Err(_) => "(undefined)".to_string(),
            }
        };
        read.push(format!("{name} = {shown}"));
    }
    let expr = redactor.text(expr.trim());
    if read.is_empty() { format!("`when` was false: {expr}") } else { format!("`when` was false: {expr} (read {})", read.join(", ")) }
}

fn cut(s: &str) -> String {
    if s.chars().count() <= MAX_SHOWN { s.to_string() } else { format!("{}…", s.chars().take(MAX_SHOWN).collect::<String>()) }
}
