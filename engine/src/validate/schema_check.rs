//! Checks an action's `with` against the JSON Schema of its input type, before rendering.
//!
//! A string holding a template satisfies any type: it is checked again, typed, when the
//! step runs. Everything else (unknown keys, missing required keys, types, enums,
//! durations, bounds) is reported here with the path of the value at fault.

use serde_json::Value;

use crate::diag::{Code, Diagnostic};
use crate::suggest;
use crate::template::is_template;
use crate::yaml::Path;

pub(crate) struct SchemaCheck<'a> {
    root: &'a Value,
    action: &'a str,
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "nothing (null)",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_f64() => "a number",
        Value::Number(_) => "an integer",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

fn matches_type(t: &str, v: &Value) -> bool {
    match t {
        "null" => v.is_null(),
        "boolean" => v.is_boolean(),
        "integer" => v.is_i64() || v.is_u64() || v.as_f64().is_some_and(|f| f.fract() == 0.0),
        "number" => v.is_number(),
        "string" => v.is_string(),
        "array" => v.is_array(),
        "object" => v.is_object(),
        _ => true,
    }
}

fn describe_type(t: &str) -> &str {
    match t {
        "null" => "nothing",
        "boolean" => "true or false",
        "integer" => "a whole number",
        "number" => "a number",
        "string" => "a string",
        "array" => "a list",
        "object" => "a mapping",
        other => other,
    }
}

impl<'a> SchemaCheck<'a> {
    pub(crate) fn new(root: &'a Value, action: &'a str) -> Self {
        SchemaCheck { root, action }
    }

    fn resolve(&self, schema: &'a Value) -> &'a Value {
        let mut s = schema;
        for _ in 0..16 {
            match s.get("$ref").and_then(Value::as_str).and_then(|r| r.strip_prefix("#/$defs/")) {
                Some(name) => s = &self.root["$defs"][name],
                None => break,
            }
        }
        s
    }

    pub(crate) fn check(&self, value: &Value, path: &Path, out: &mut Vec<Diagnostic>) {
        self.walk(self.root, value, path, out);
    }

    fn walk(&self, schema: &'a Value, value: &Value, path: &Path, out: &mut Vec<Diagnostic>) {
        if value.as_str().is_some_and(is_template) {
            return;
        }
        let schema = self.resolve(schema);
        let Some(obj) = schema.as_object() else { return }; // `true` or `{}`: anything
        for key in ["anyOf", "oneOf"] {
            if let Some(branches) = obj.get(key).and_then(Value::as_array) {
                self.any_of(branches, value, path, out);
                return;
            }
        }
        if let Some(c) = obj.get("const") {
            if c != value {
                out.push(Diagnostic::new(Code::ActionInput, path.clone(), format!("expected `{c}`, found {}", type_name(value))));
            }
            return;
        }
        if let Some(choices) = obj.get("enum").and_then(Value::as_array) {
            if !choices.contains(value) {
                let names: Vec<&str> = choices.iter().filter_map(Value::as_str).collect();
                let shown = value.as_str().map_or_else(|| value.to_string(), str::to_string);
                out.push(
                    Diagnostic::new(Code::ActionInput, path.clone(), format!("`{shown}` is not allowed here"))
                        .help(suggest::hint(&shown, names.iter().copied())),
                );
            }
            return;
        }
        if let Some(t) = obj.get("type") {
            let types: Vec<&str> = match t {
                Value::String(s) => vec![s.as_str()],
                Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
                _ => vec![],
            };
            if !types.is_empty() && !types.iter().any(|t| matches_type(t, value)) {
                let want: Vec<&str> = types.iter().filter(|t| **t != "null").map(|t| describe_type(t)).collect();
                let want =
                    if obj.get("format").and_then(Value::as_str) == Some("duration") { vec!["a duration such as `30s`"] } else { want };
                out.push(Diagnostic::new(
                    Code::ActionInput,
                    path.clone(),
                    format!("expected {}, found {}", want.join(" or "), type_name(value)),
                ));
                return;
            }
        }
        match value {
            Value::String(s) if obj.get("format").and_then(Value::as_str) == Some("duration") => {
                if let Err(e) = phoenix_plugins::duration::parse_duration(s) {
                    out.push(Diagnostic::new(Code::Duration, path.clone(), e));
                }
            }
            Value::Number(n) => {
                let f = n.as_f64().unwrap_or(0.0);
                if let Some(min) = obj.get("minimum").and_then(Value::as_f64) {
                    if f < min {
                        out.push(Diagnostic::new(Code::ActionInput, path.clone(), format!("must be at least {min}, found {n}")));
                    }
                }
                if let Some(max) = obj.get("maximum").and_then(Value::as_f64) {
                    if f > max {
                        out.push(Diagnostic::new(Code::ActionInput, path.clone(), format!("must be at most {max}, found {n}")));
                    }
                }
            }
            Value::Array(items) => {
                if let Some(item_schema) = obj.get("items") {
                    for (i, item) in items.iter().enumerate() {
                        self.walk(item_schema, item, &path.index(i), out);
                    }
                }
            }
            Value::Object(map) => self.object(obj, map, path, out),
            _ => {}
        }
    }

    fn object(
        &self,
        obj: &'a serde_json::Map<String, Value>,
        map: &serde_json::Map<String, Value>,
        path: &Path,
        out: &mut Vec<Diagnostic>,
    ) {
        let empty = serde_json::Map::new();
        let props = obj.get("properties").and_then(Value::as_object).unwrap_or(&empty);
        if let Some(required) = obj.get("required").and_then(Value::as_array) {
            for r in required.iter().filter_map(Value::as_str) {
                if !map.contains_key(r) {
                    out.push(
                        Diagnostic::new(Code::ActionInput, path.clone(), format!("`{}` needs the input `{r}`", self.action))
                            .help(format!("add `{r}:` (see `phoenix plugins {}`)", self.action)),
                    );
                }
            }
        }
        for (k, v) in map {
            match props.get(k) {
                Some(s) => self.walk(s, v, &path.key(k), out),
                None => match obj.get("additionalProperties") {
                    Some(Value::Bool(false)) => out.push(
                        Diagnostic::new(Code::ActionInput, path.key(k), format!("`{}` has no input `{k}`", self.action))
                            .help(suggest::hint(k, props.keys().map(String::as_str)))
                            .on_key(),
                    ),
                    Some(s @ Value::Object(_)) => self.walk(s, v, &path.key(k), out),
                    _ => {}
                },
            }
        }
    }

    fn any_of(&self, branches: &'a [Value], value: &Value, path: &Path, out: &mut Vec<Diagnostic>) {
        let mut best: Option<Vec<Diagnostic>> = None;
        for b in branches {
            let mut errs = Vec::new();
            self.walk(b, value, path, &mut errs);
            if errs.is_empty() {
                return;
            }
            // Prefer a branch whose type matches: its errors are the specific ones.
            let typed = self.resolve(b).get("type").and_then(Value::as_str).is_some_and(|t| matches_type(t, value));
            if typed || best.as_ref().is_none_or(|x| errs.len() < x.len()) {
                let keep = typed || best.is_none();
                if keep {
                    best = Some(errs);
                }
            }
        }
        out.extend(best.unwrap_or_default());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use phoenix_plugins::find;
    use serde_json::json;

    fn errors(action: &str, with: Value) -> Vec<String> {
        let schema = serde_json::to_value(find(action).unwrap().input_schema()).unwrap();
        let mut out = vec![];
        SchemaCheck::new(&schema, action).check(&with, &Path::root().key("with"), &mut out);
        out.iter().map(|d| format!("{} {}", d.path, d.message)).collect()
    }

    #[test]
    fn reports_unknown_missing_and_mistyped_inputs() {
        assert_eq!(
            errors("http", json!({"urll": "http://x"})),
            vec!["with `http` needs the input `url`", "with.urll `http` has no input `urll`"]
        );
        assert_eq!(errors("exec", json!({"cmd": "echo hi"})), vec!["with.cmd expected a list, found a string"]);
        assert_eq!(errors("exec", json!({"cmd": ["echo", 1]})), vec!["with.cmd[1] expected a string, found an integer"]);
        assert_eq!(
            errors("sleep", json!({"duration": "5 minutes"})),
            vec!["with.duration `5 minutes` is not a duration: write it without spaces, e.g. `5m`, `1h30m`"]
        );
        assert_eq!(errors("exec", json!({"cmd": ["x"], "parse": "yaml"})).len(), 1);
        assert_eq!(
            errors("http", json!({"url": "http://x", "expect_status": [-1]})),
            vec!["with.expect_status[0] must be at least 0, found -1"]
        );
    }

    #[test]
    fn templates_satisfy_any_type() {
        assert!(errors("exec", json!({"cmd": "{{ params.argv }}", "tail_bytes": "{{ params.n }}"})).is_empty());
        assert!(errors("sleep", json!({"duration": "{{ params.wait }}"})).is_empty());
    }
}
