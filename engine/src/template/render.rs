//! Rendering templates into values at run time.

use std::sync::OnceLock;

use minijinja::{Environment, UndefinedBehavior, Value as MjValue};
use serde_json::Value;

use super::check::{is_template, whole_expression};
use super::shell::{VAR_PREFIX, contextualize, reference, shell_quote, var_name};

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

/// The values of a script's tags, in order, as the `__shell` filter meets them.
#[derive(Default)]
struct ShellValues(Vec<String>);

/// The environment for `exec` scripts: every output goes through `__shell`, which keeps its
/// text as the next `PHX_Vn` variable and writes a reference to it for its place in the
/// script. Whatever a filter marked safe (`tojson`, `e`…) goes the same way: only a tag
/// ending in `| safe` is pasted as it is, and it never reaches this filter.
fn shell_environment() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = base();
        env.add_filter("__shell", |state: &mut minijinja::State, value: MjValue, context: String| -> Result<MjValue, minijinja::Error> {
            // Strict as everywhere else: a filter is handed an undefined value (a secret that
            // cannot be read) where printing it would have failed; it was an empty string.
            if value.is_undefined() {
                return Err(minijinja::Error::new(minijinja::ErrorKind::UndefinedError, "a value of the script is undefined"));
            }
            let text = match (plain_text(&value), value.as_str()) {
                (Some(t), _) => t.to_string(),
                (None, Some(s)) => s.to_string(),
                (None, None) => value.to_string(),
            };
            let first = state.lookup(FIRST_VAR).and_then(|v| usize::try_from(v).ok()).unwrap_or(1);
            let values = state.get_or_insert_extension(ShellValues::default());
            values.0.push(text);
            reference(&var_name(first + values.0.len() - 1), &context)
                .map(MjValue::from_safe_string)
                .map_err(|e| minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, e))
        });
        env
    })
}

/// The context variable that numbers a script's first value (after another shell field's).
const FIRST_VAR: &str = "__phx_first_value";

/// Renders a script: its text with references, and the values, numbered from `first`.
pub(crate) fn render_script(s: &str, ctx: &MjValue, first: usize) -> Result<(String, Vec<String>), String> {
    if !is_template(s) {
        return Ok((s.to_string(), Vec::new()));
    }
    // Each value becomes a variable, referenced for where it stands in the script (`shell`).
    let src = contextualize(s)?;
    let ctx = minijinja::value::merge_maps([minijinja::context! { __phx_first_value => first }, ctx.clone()]);
    let t = shell_environment().template_from_str(&src).map_err(|e| error_text(&e))?;
    let captured = t.render_captured(ctx).map_err(|e| error_text(&e))?;
    let values = captured.state().get_extension::<ShellValues>().map(|v| v.0.clone()).unwrap_or_default();
    Ok((captured.output().to_string(), values))
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
        return render_script(s, ctx, 1).map(|(text, _)| Value::String(text));
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
/// render as scripts, whose values go into `env` as `PHX_V1`, `PHX_V2`, … (see `shell`);
/// those in `expressions` are evaluated as expressions.
pub fn render_tree(v: &Value, ctx: &MjValue, shell: &[&str], expressions: &[&str]) -> Result<Value, (String, String)> {
    match v {
        Value::Object(m) => {
            let mut out = serde_json::Map::with_capacity(m.len());
            let mut values: Vec<String> = Vec::new();
            for (k, x) in m {
                let rendered = if shell.contains(&k.as_str()) {
                    match x {
                        Value::String(s) => {
                            let (text, more) = render_script(s, ctx, values.len() + 1).map_err(|e| (k.clone(), e))?;
                            values.extend(more);
                            Value::String(text)
                        }
                        other => render_inner(other, ctx).map_err(|(p, e)| (format!("{k}{p}"), e))?,
                    }
                } else if expressions.contains(&k.as_str()) {
                    x.clone()
                } else {
                    render_inner(x, ctx).map_err(|(p, e)| (format!("{k}{p}"), e))?
                };
                out.insert(k.clone(), rendered);
            }
            if !values.is_empty() {
                let env = out.entry("env").or_insert_with(|| Value::Object(serde_json::Map::new()));
                let Value::Object(env) = env else {
                    return Err(("env".into(), "`env` must be a mapping: the script's values are added to it".into()));
                };
                if let Some(k) = env.keys().find(|k| k.starts_with(VAR_PREFIX)) {
                    return Err((format!("env.{k}"), format!("`{VAR_PREFIX}…` variables are reserved for the script's values")));
                }
                for (i, text) in values.into_iter().enumerate() {
                    env.insert(var_name(i + 1), Value::String(text));
                }
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
        assert_eq!(render_script("if {{ params.flag }}; then", &ctx(), 1).unwrap().1, ["false"]);
        assert_eq!(render_string("{{ none }}!", &ctx(), Renderer::Value).unwrap(), json!("null!"));
    }

    #[test]
    fn undefined_names_are_errors() {
        assert!(render_string("{{ params.nope }}", &ctx(), Renderer::Value).is_err());
        assert!(render_string("x{{ params.nope }}", &ctx(), Renderer::Value).is_err());
        assert!(eval_condition("params.nope == 1", &ctx()).is_err());
        // In a script too: an undefined value (a secret that cannot be read) was an empty
        // string there, and the script ran without it.
        assert!(render_script("psql \"{{ params.nope }}\"", &ctx(), 1).is_err());
        assert!(render_script("echo {{ params.nope }}", &ctx(), 1).is_err());
    }

    #[test]
    fn script_values_become_variables_unless_safe() {
        let s = render_script("echo {{ params.name }} \"{{ params.n }}\" '{{ params.flag }}'", &ctx(), 1).unwrap();
        assert_eq!(s.0, "echo \"${PHX_V1}\" \"${PHX_V2}\" ''\"${PHX_V3}\"''");
        assert_eq!(s.1, ["a b; rm -rf /", "3", "false"]);
        let s = render_script("echo {{ params.name | safe }}", &ctx(), 1).unwrap();
        assert_eq!(s, ("echo a b; rm -rf /".to_string(), vec![]));
    }

    #[test]
    fn filters_marked_safe_still_go_through_a_variable() {
        let s = render_script("echo {{ params.name | tojson }} {{ params.name | e }} {{ params.name | safe | upper }}", &ctx(), 1).unwrap();
        assert_eq!(s.0, "echo \"${PHX_V1}\" \"${PHX_V2}\" \"${PHX_V3}\"");
        // `e` escapes for HTML, which is what it is for; the text still arrives as data.
        assert_eq!(s.1, ["\"a b; rm -rf /\"", "a b; rm -rf &#x2f;", "A B; RM -RF /"]);
    }

    #[test]
    fn a_loop_gives_each_value_its_own_variable() {
        let s = render_script("{% for x in steps.a.outputs.list %}echo {{ x }}\n{% endfor %}", &ctx(), 3).unwrap();
        assert_eq!(s.0, "echo \"${PHX_V3}\"\necho \"${PHX_V4}\"\n");
        assert_eq!(s.1, ["1", "2"]);
    }

    #[test]
    fn tree_rendering_reports_the_path() {
        let with = json!({"cmd": ["echo", "{{ params.nope }}"], "script": "echo {{ params.name }}"});
        let err = render_tree(&with, &ctx(), &["script"], &[]).unwrap_err();
        assert_eq!(err.0, "cmd[1]");
        let with = json!({"script": "echo {{ params.name }}", "env": {"A": "{{ params.n }}"}});
        assert_eq!(
            render_tree(&with, &ctx(), &["script"], &[]).unwrap(),
            json!({"script": "echo \"${PHX_V1}\"", "env": {"A": 3, "PHX_V1": "a b; rm -rf /"}})
        );
        let with = json!({"script": "echo {{ params.name }}", "env": {"PHX_V1": "x"}});
        assert_eq!(render_tree(&with, &ctx(), &["script"], &[]).unwrap_err().0, "env.PHX_V1");
    }
}
