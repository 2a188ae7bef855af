//! Params: defaults and enum values fit the declared type; command-line values are typed.

use std::collections::HashSet;

use serde_json::Value;

use crate::diag::{Code, Diagnostic};
use crate::runbook::raw::{ParamType, RawRunbook};
use crate::yaml::Path;

/// Whether a value has the param type.
pub(crate) fn fits(ty: ParamType, v: &Value) -> bool {
    match ty {
        ParamType::String => v.is_string(),
        ParamType::Int => v.is_i64() || v.is_u64(),
        ParamType::Float => v.is_number(),
        ParamType::Bool => v.is_boolean(),
        ParamType::List => v.is_array(),
        ParamType::Object => v.is_object(),
    }
}

/// `broken` params had a field that did not read (reported already); they are skipped.
pub(crate) fn check(raw: &RawRunbook, broken: &HashSet<String>, out: &mut Vec<Diagnostic>) {
    for (name, p) in raw.params.iter().filter(|(name, _)| !broken.contains(*name)) {
        let path = Path::root().key("params").key(name);
        if let Some(d) = &p.default {
            if !fits(p.ty, d) {
                out.push(
                    Diagnostic::new(Code::Param, path.key("default"), format!("the default of `{name}` is not of its type `{}`", p.ty))
                        .help(format!("write a value of type `{}`, or change `type`", p.ty)),
                );
            }
        }
        if let Some(choices) = &p.choices {
            if choices.is_empty() {
                out.push(Diagnostic::new(Code::Param, path.key("enum"), "`enum` is empty: no value would be allowed"));
            }
            for (i, c) in choices.iter().enumerate() {
                if !fits(p.ty, c) {
                    out.push(Diagnostic::new(
                        Code::Param,
                        path.key("enum").index(i),
                        format!("`{c}` is not of the param's type `{}`", p.ty),
                    ));
                }
            }
            if let Some(d) = &p.default {
                if fits(p.ty, d) && !choices.contains(d) {
                    out.push(
                        Diagnostic::new(Code::Param, path.key("default"), format!("the default {d} is not one of the `enum` values"))
                            .help("add it to `enum` or pick one of them"),
                    );
                }
            }
        }
    }
}

/// Turns a `--param name=value` string into the param's type.
pub fn coerce(ty: ParamType, s: &str) -> Result<Value, String> {
    match ty {
        ParamType::String => Ok(Value::String(s.to_string())),
        ParamType::Int => s.trim().parse::<i64>().map(Value::from).map_err(|_| format!("`{s}` is not a whole number")),
        ParamType::Float => s
            .trim()
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
            .ok_or_else(|| format!("`{s}` is not a number")),
        ParamType::Bool => match s.trim() {
            "true" | "yes" | "1" | "on" => Ok(Value::Bool(true)),
            "false" | "no" | "0" | "off" => Ok(Value::Bool(false)),
            _ => Err(format!("`{s}` is not true or false")),
        },
        ParamType::List => {
            if s.trim_start().starts_with('[') {
                match serde_json::from_str::<Value>(s) {
                    Ok(v @ Value::Array(_)) => Ok(v),
                    _ => Err(format!("`{s}` is not a JSON list")),
                }
            } else if s.is_empty() {
                Ok(Value::Array(vec![]))
            } else {
                Ok(Value::Array(s.split(',').map(|x| Value::String(x.trim().to_string())).collect()))
            }
        }
        ParamType::Object => match serde_json::from_str::<Value>(s) {
            Ok(v @ Value::Object(_)) => Ok(v),
            _ => Err(format!("`{s}` is not a JSON object")),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coerces_command_line_values() {
        assert_eq!(coerce(ParamType::Int, "42").unwrap(), Value::from(42));
        assert!(coerce(ParamType::Int, "4.2").is_err());
        assert_eq!(coerce(ParamType::Bool, "yes").unwrap(), Value::Bool(true));
        assert_eq!(coerce(ParamType::List, "a, b").unwrap(), serde_json::json!(["a", "b"]));
        assert_eq!(coerce(ParamType::List, "[1,2]").unwrap(), serde_json::json!([1, 2]));
        assert!(coerce(ParamType::Object, "x").is_err());
    }
}
