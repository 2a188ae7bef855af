//! Parsing templates once at validation time, and finding the names they read.

use super::render::environment;

/// A name a template reads: `steps.a.outputs.count` → root `steps`, path `[a, outputs, count]`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Reference {
    /// The top-level name.
    pub root: String,
    /// Attribute names after it, as far as they are constant.
    pub path: Vec<String>,
}

impl Reference {
    fn parse(dotted: &str) -> Self {
        let mut parts = dotted.split('.').map(str::to_string);
        let root = parts.next().unwrap_or_default();
        Reference { root, path: parts.collect() }
    }
}

/// A template or expression that does not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    /// What minijinja says is wrong.
    pub message: String,
}

/// Names minijinja provides itself.
const GLOBALS: &[&str] = &["range", "dict", "namespace", "debug", "lipsum", "cycler", "joiner", "loop", "true", "false", "none"];

/// Whether a string holds template syntax.
pub fn is_template(s: &str) -> bool {
    s.contains("{{") || s.contains("{%") || s.contains("{#")
}

/// The expression inside a value that is one whole `{{ … }}` (it keeps its native type).
pub fn whole_expression(s: &str) -> Option<&str> {
    let t = s.trim();
    let inner = t.strip_prefix("{{")?.strip_suffix("}}")?;
    let inner = inner.strip_prefix('-').unwrap_or(inner).strip_suffix('-').unwrap_or(inner);
    if inner.contains("{{") || inner.contains("}}") || inner.contains("{%") || inner.contains("{#") {
        return None;
    }
    Some(inner.trim())
}

fn message(e: &minijinja::Error) -> String {
    let mut m = e.detail().map_or_else(|| e.kind().to_string(), str::to_string);
    if let Some(line) = e.line().filter(|l| *l > 1) {
        m = format!("{m} (line {line} of the template)");
    }
    m
}

fn references(vars: std::collections::HashSet<String>) -> Vec<Reference> {
    let mut refs: Vec<Reference> = vars.iter().map(|v| Reference::parse(v)).filter(|r| !GLOBALS.contains(&r.root.as_str())).collect();
    refs.sort();
    refs
}

/// Parses a template string and returns the names it reads.
pub fn check_template(s: &str) -> Result<Vec<Reference>, TemplateError> {
    let env = environment();
    let t = env.template_from_str(s).map_err(|e| TemplateError { message: message(&e) })?;
    Ok(references(t.undeclared_variables(true)))
}

/// Parses an expression (`when`, `assert.that`, `for_each`) and returns the names it reads.
pub fn check_expression(s: &str) -> Result<Vec<Reference>, TemplateError> {
    if s.trim().is_empty() {
        return Err(TemplateError { message: "the expression is empty".into() });
    }
    if s.contains("{{") || s.contains("{%") {
        return Err(TemplateError { message: "an expression needs no `{{ }}`: write the expression itself".into() });
    }
    let env = environment();
    let e = env.compile_expression(s).map_err(|e| TemplateError { message: message(&e) })?;
    Ok(references(e.undeclared_variables(true)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_nested_references() {
        let refs = check_template("{{ steps.a.outputs.count }} {{ params.x | upper }} {% for i in range(3) %}{{ i }}{% endfor %}").unwrap();
        let names: Vec<String> = refs.iter().map(|r| format!("{}.{}", r.root, r.path.join("."))).collect();
        assert_eq!(names, vec!["params.x", "steps.a.outputs.count"]);
    }

    #[test]
    fn whole_expressions() {
        assert_eq!(whole_expression("{{ steps.a.outputs.n }}"), Some("steps.a.outputs.n"));
        assert_eq!(whole_expression(" {{x}} "), Some("x"));
        assert_eq!(whole_expression("{{ a }}-{{ b }}"), None);
        assert_eq!(whole_expression("n={{ a }}"), None);
    }

    #[test]
    fn syntax_errors_are_reported() {
        assert!(check_template("{{ steps.a.outputs.count ").is_err());
        assert!(check_expression("a ==").is_err());
        assert!(check_expression("{{ a }}").unwrap_err().message.contains("needs no"));
    }
}
