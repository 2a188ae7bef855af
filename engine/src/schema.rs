//! The runbook JSON Schema, generated from the raw model and every action's input type.
//!
//! `schemas/runbook.schema.json` is this output; a test regenerates and compares it.

use serde_json::{Map, Value, json};

use crate::runbook::raw::RawRunbook;

/// A string with template syntax, accepted wherever a typed value is expected.
const TEMPLATE: &str = "Template";

/// The whole schema, with `with` typed per `uses`.
pub fn runbook_schema() -> Value {
    let gen_settings = schemars::generate::SchemaSettings::draft2020_12();
    let mut root = serde_json::to_value(gen_settings.into_generator().into_root_schema_for::<RawRunbook>()).expect("schemas serialize");
    root["$id"] = json!("https://phoenix.dev/schemas/runbook.schema.json");
    let defs = root["$defs"].as_object_mut().expect("the runbook schema has $defs");
    defs.insert(
        TEMPLATE.into(),
        json!({ "type": "string", "pattern": "\\{\\{|\\{%", "description": "A minijinja template: `{{ params.name }}`. Checked when the runbook is validated, typed when the step runs." }),
    );
    let names: Vec<&str> = phoenix_plugins::names().collect();
    let mut branches = Vec::new();
    let mut probe_branches = Vec::new();
    let mut probe_names = Vec::new();
    for action in phoenix_plugins::registry() {
        let info = action.info();
        let mut s = serde_json::to_value(action.input_schema()).expect("schemas serialize");
        let local = s.as_object_mut().and_then(|o| o.remove("$defs"));
        if let Some(Value::Object(local)) = local {
            for (k, v) in local {
                let mut v = v;
                prefix_refs(&mut v, info.name);
                defs.insert(format!("{}.{k}", info.name), templatable(v));
            }
        }
        prefix_refs(&mut s, info.name);
        if let Some(o) = s.as_object_mut() {
            o.remove("$schema");
            o.remove("title");
            o.insert("description".into(), json!(format!("Inputs of `{}`: {}", info.name, info.summary)));
        }
        // An action with required inputs needs a `with` (as `phoenix validate` says too).
        let needs_with = s.get("required").and_then(Value::as_array).is_some_and(|r| !r.is_empty());
        let with_name = format!("{}.with", info.name);
        defs.insert(with_name.clone(), templatable(s));
        let mut then = json!({ "properties": { "with": { "$ref": format!("#/$defs/{with_name}") } } });
        if needs_with {
            then["required"] = json!(["with"]);
        }
        let branch = json!({
            "if": { "properties": { "uses": { "const": info.name } }, "required": ["uses"] },
            "then": then
        });
        if info.caps.probe {
            probe_branches.push(branch.clone());
            probe_names.push(info.name);
        }
        branches.push(branch);
    }
    if let Some(step) = defs.get_mut("RawStep").and_then(Value::as_object_mut) {
        step.insert("allOf".into(), Value::Array(branches));
        step["properties"]["uses"] = json!({ "type": "string", "enum": names, "description": step["properties"]["uses"]["description"] });
    }
    if let Some(sig) = defs.get_mut("RawSignal").and_then(Value::as_object_mut) {
        sig.insert("allOf".into(), Value::Array(probe_branches));
        sig["properties"]["uses"] =
            json!({ "type": "string", "enum": probe_names, "description": sig["properties"]["uses"]["description"] });
    }
    root
}

fn prefix_refs(v: &mut Value, action: &str) {
    match v {
        Value::Object(m) => {
            if let Some(Value::String(r)) = m.get_mut("$ref") {
                if let Some(name) = r.strip_prefix("#/$defs/") {
                    *r = format!("#/$defs/{action}.{name}");
                }
            }
            m.values_mut().for_each(|x| prefix_refs(x, action));
        }
        Value::Array(a) => a.iter_mut().for_each(|x| prefix_refs(x, action)),
        _ => {}
    }
}

/// Lets a template string stand wherever a non-string value is typed.
fn templatable(v: Value) -> Value {
    let Value::Object(mut m) = v else { return v };
    for key in ["properties", "$defs"] {
        if let Some(Value::Object(props)) = m.remove(key) {
            let props: Map<String, Value> = props.into_iter().map(|(k, x)| (k, templatable(x))).collect();
            m.insert(key.into(), Value::Object(props));
        }
    }
    for key in ["items", "additionalProperties"] {
        if let Some(x) = m.remove(key) {
            m.insert(key.into(), templatable(x));
        }
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(Value::Array(a)) = m.remove(key) {
            m.insert(key.into(), Value::Array(a.into_iter().map(templatable).collect()));
        }
    }
    let typed_non_string = match m.get("type") {
        Some(Value::String(t)) => t != "string",
        Some(Value::Array(ts)) => !ts.iter().any(|t| t == "string"),
        _ => m.contains_key("enum") || m.contains_key("$ref"),
    };
    let is_object_root = m.get("type") == Some(&json!("object")) && m.contains_key("properties") && m.contains_key("description");
    if typed_non_string && !is_object_root {
        let description = m.get("description").cloned();
        let mut out = Map::new();
        if let Some(d) = description {
            out.insert("description".into(), d);
        }
        out.insert("anyOf".into(), json!([Value::Object(m), { "$ref": format!("#/$defs/{TEMPLATE}") }]));
        return Value::Object(out);
    }
    Value::Object(m)
}
