//! Rendering templates into values at run time.

use std::sync::OnceLock;

use minijinja::{Environment, UndefinedBehavior, Value as MjValue};
use serde_json::Value;

use super::check::{is_template, whole_expression};
use super::shell::{contextualize, escape, shell_quote};

/// Any serializable value as a template value.
pub fn to_mj<T: serde::Serialize>(v: &T) -> MjValue {
    MjValue::from(minijinja::value::Serde(v))
}

/// Enough for any sane template; a runaway loop stops with an error instead of hanging.
const FUEL: u64 = 5_000_000;

fn base() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_fuel(Some(FUEL));
    env.set_recursion_limit(100);
    // Values print as they are written in YAML and JSON: `true`, not Python's `True`.
    env.set_formatter(|out, state, value| match plain_text(value) {
        Some(t) => out.write_str(t).map_err(minijinja::Error::from),
        None => minijinja::escape_formatter(out, state, value),
    });
    env.add_filter("shell_quote", |s: String| shell_quote(&s));
    env.add_filter("basename", |s: String| s.rsplit('/').next().unwrap_or_default().to_string());
    env.add_filter("dirname", |s: String| s.rsplit_once('/').map_or(String::new(), |(d, _)| d.to_string()));
    env.add_filter("fromjson", |s: String| -> Result<MjValue, minijinja::Error> {
        let v: Value = serde_json::from_str(&s)
            .map_err(|e| minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, format!("not JSON: {e}")))?;
        Ok(to_mj(&v))
    });
    env
}

/// How booleans and none print: as in YAML and JSON.
fn plain_text(v: &MjValue) -> Option<&'static str> {
    match v.kind() {
        minijinja::value::ValueKind::Bool => Some(if v.is_true() { "true" } else { "false" }),
        minijinja::value::ValueKind::None => Some("null"),
        _ => None,
    }
}

/// The environment for ordinary values.
pub(crate) fn environment() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(base)
}

/// The environment for `exec` scripts: every output goes through `__shell`, which escapes it
/// for its place in the script (a value marked `| safe` is written as it is).
fn shell_environment() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = base();
        env.add_filter("__shell", |value: MjValue, context: String, delimiter: String| -> Result<MjValue, minijinja::Error> {
            if value.is_safe() {
                return Ok(value);
            }
            let text = match (plain_text(&value), value.as_str()) {
                (Some(t), _) => t.to_string(),
                (None, Some(s)) => s.to_string(),
                (None, None) => value.to_string(),
            };
            escape(&text, &context, &delimiter)
                .map(MjValue::from_safe_string)
                .map_err(|e| minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, e))
        });
        env
    })
}

/// How to render one value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Renderer {
    /// Plain values; whole expressions keep their type.
    Value,
    /// Shell script text: outputs are quoted.
    Shell,
}

fn error_text(e: &minijinja::Error) -> String {
    let mut m = e.detail().map_or_else(|| e.kind().to_string(), str::to_string);
    if e.kind() == minijinja::ErrorKind::UndefinedError && m == e.kind().to_string() {
        m = "a name in the template is undefined".into();
    }
    m
}

/// Renders one string.
pub(crate) fn render_string(s: &str, ctx: &MjValue, how: Renderer) -> Result<Value, String> {
    if !is_template(s) {
        return Ok(Value::String(s.to_string()));
    }
    if how == Renderer::Value {
        if let Some(expr) = whole_expression(s) {
            let e = environment().compile_expression(expr).map_err(|e| error_text(&e))?;
            let v = e.eval(ctx.clone()).map_err(|e| error_text(&e))?;
            if v.is_undefined() {
                return Err(format!("`{expr}` is undefined"));
            }
            return serde_json::to_value(&v).map_err(|e| e.to_string());
        }
    }
    if how == Renderer::Shell {
        // Each value is escaped for where it stands in the script (see `shell`).
        let src = contextualize(s)?;
        return shell_environment().render_str(&src, ctx.clone()).map(Value::String).map_err(|e| error_text(&e));
    }
    environment().render_str(s, ctx.clone()).map(Value::String).map_err(|e| error_text(&e))
}

/// Renders a whole template text (a template file) to text; errors name the line.
pub(crate) fn render_text(s: &str, ctx: &MjValue) -> Result<String, String> {
    environment().render_str(s, ctx.clone()).map_err(|e| match e.line() {
        Some(line) => format!("line {line}: {}", error_text(&e)),
        None => error_text(&e),
    })
}

/// Renders every string in a JSON tree. Keys of the top-level mapping listed in `shell`
/// render as shell text; those in `expressions` are evaluated as expressions.
pub fn render_tree(v: &Value, ctx: &MjValue, shell: &[&str], expressions: &[&str]) -> Result<Value, (String, String)> {
    match v {
        Value::Object(m) => {
            let mut out = serde_json::Map::with_capacity(m.len());
            for (k, x) in m {
                let rendered = if shell.contains(&k.as_str()) {
                    match x {
                        Value::String(s) => render_string(s, ctx, Renderer::Shell).map_err(|e| (k.clone(), e))?,
                        other => render_inner(other, ctx).map_err(|(p, e)| (format!("{k}{p}"), e))?,
                    }
                } else if expressions.contains(&k.as_str()) {
                    x.clone()
                } else {
                    render_inner(x, ctx).map_err(|(p, e)| (format!("{k}{p}"), e))?
                };
                out.insert(k.clone(), rendered);
            }
            Ok(Value::Object(out))
        }
        other => render_inner(other, ctx),
    }
}

fn render_inner(v: &Value, ctx: &MjValue) -> Result<Value, (String, String)> {
    match v {
        Value::String(s) => render_string(s, ctx, Renderer::Value).map_err(|e| (String::new(), e)),
        Value::Array(a) => a
            .iter()
            .enumerate()
            .map(|(i, x)| render_inner(x, ctx).map_err(|(p, e)| (format!("[{i}]{p}"), e)))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array),
        Value::Object(m) => {
            let mut out = serde_json::Map::with_capacity(m.len());
            for (k, x) in m {
                out.insert(k.clone(), render_inner(x, ctx).map_err(|(p, e)| (format!(".{k}{p}"), e))?);
            }
            Ok(Value::Object(out))
        }
        other => Ok(other.clone()),
    }
}

/// Evaluates an expression as a condition (`when`, `assert.that`).
pub fn eval_condition(expr: &str, ctx: &MjValue) -> Result<bool, String> {
    let e = environment().compile_expression(expr).map_err(|e| error_text(&e))?;
    let v = e.eval(ctx.clone()).map_err(|e| error_text(&e))?;
    if v.is_undefined() {
        return Err(format!("`{expr}` is undefined"));
    }
    Ok(v.is_true())
}

/// Evaluates an expression to a value (`for_each`).
pub fn eval_value(expr: &str, ctx: &MjValue) -> Result<Value, String> {
    let e = environment().compile_expression(expr).map_err(|e| error_text(&e))?;
    let v = e.eval(ctx.clone()).map_err(|e| error_text(&e))?;
    if v.is_undefined() {
        return Err(format!("`{expr}` is undefined"));
    }
    serde_json::to_value(&v).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ctx() -> MjValue {
        to_mj(&json!({"params": {"n": 3, "name": "a b; rm -rf /", "flag": false}, "steps": {"a": {"outputs": {"list": [1, 2]}}}}))
    }

    #[test]
    fn whole_expressions_keep_their_type() {
        assert_eq!(render_string("{{ params.n }}", &ctx(), Renderer::Value).unwrap(), json!(3));
        assert_eq!(render_string("{{ steps.a.outputs.list }}", &ctx(), Renderer::Value).unwrap(), json!([1, 2]));
        assert_eq!(render_string("n={{ params.n }}", &ctx(), Renderer::Value).unwrap(), json!("n=3"));
        assert_eq!(render_string("{{ params.flag }}", &ctx(), Renderer::Value).unwrap(), json!(false));
    }

    #[test]
    fn booleans_and_none_print_as_in_yaml() {
        assert_eq!(render_string("x{{ params.flag }}", &ctx(), Renderer::Value).unwrap(), json!("xfalse"));
        assert_eq!(render_string("if {{ params.flag }}; then", &ctx(), Renderer::Shell).unwrap(), json!("if false; then"));
        assert_eq!(render_string("{{ none }}!", &ctx(), Renderer::Value).unwrap(), json!("null!"));
    }

    #[test]
    fn undefined_names_are_errors() {
        assert!(render_string("{{ params.nope }}", &ctx(), Renderer::Value).is_err());
        assert!(render_string("x{{ params.nope }}", &ctx(), Renderer::Value).is_err());
        assert!(eval_condition("params.nope == 1", &ctx()).is_err());
    }

    #[test]
    fn scripts_quote_unless_safe() {
        let s = render_string("echo {{ params.name }} {{ params.n }}", &ctx(), Renderer::Shell).unwrap();
        assert_eq!(s, json!("echo 'a b; rm -rf /' 3"));
        let s = render_string("echo {{ params.name | safe }}", &ctx(), Renderer::Shell).unwrap();
        assert_eq!(s, json!("echo a b; rm -rf /"));
    }

    #[test]
    fn tree_rendering_reports_the_path() {
        let with = json!({"cmd": ["echo", "{{ params.nope }}"], "script": "echo {{ params.name }}"});
        let err = render_tree(&with, &ctx(), &["script"], &[]).unwrap_err();
        assert_eq!(err.0, "cmd[1]");
        let with = json!({"script": "echo {{ params.name }}"});
        assert_eq!(render_tree(&with, &ctx(), &["script"], &[]).unwrap(), json!({"script": "echo 'a b; rm -rf /'"}));
    }
}
