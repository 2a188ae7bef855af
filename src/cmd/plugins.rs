//! `phoenix plugins [NAME]`

use phoenix_plugins::{Action, Effect, Kind, find, names, registry};
use serde_json::{Value, json};

use crate::cli::Output;
use crate::exit::Exit;

fn describe(a: &dyn Action) -> Value {
    let info = a.info();
    json!({
        "name": info.name,
        "summary": info.summary,
        "kind": info.kind,
        "capabilities": info.caps,
        "inputs": a.input_schema(),
        "outputs": info.outputs,
        "example": info.example,
        "targets": targets_line(a),
    })
}

/// What the action can say about what it changes, for a drill (`Action::targets`).
fn targets_line(a: &dyn Action) -> String {
    match a.targets_doc() {
        "" if a.info().caps.effect == Effect::Read => "none: it only reads".to_string(),
        "" => "none declared: a drill cannot tell what it changes".to_string(),
        doc => doc.to_string(),
    }
}

pub(crate) fn run(name: Option<&str>, out: Output) -> Exit {
    match name {
        None => {
            if out == Output::Json {
                let all: Vec<Value> = registry().map(describe).collect();
                println!("{}", serde_json::to_string_pretty(&all).expect("JSON"));
            } else {
                for a in registry() {
                    let info = a.info();
                    let kind = match info.kind {
                        Kind::Engine | Kind::Builtin => "built-in",
                        Kind::Plugin => "plugin",
                    };
                    println!("{:<26} {:<9} {}", info.name, kind, info.summary);
                }
                println!("\n`phoenix plugins NAME` documents one action's inputs and outputs.");
            }
            Exit::Ok
        }
        Some(n) => {
            let Some(a) = find(n) else {
                eprintln!("error: `{n}` is not a known action; {}", phoenix_engine::suggest::hint(n, names()));
                return Exit::BadInput;
            };
            if out == Output::Json {
                println!("{}", serde_json::to_string_pretty(&describe(a)).expect("JSON"));
                return Exit::Ok;
            }
            let info = a.info();
            println!("{} — {}\n", info.name, info.summary);
            println!("Inputs (`with`):");
            let schema = serde_json::to_value(a.input_schema()).expect("JSON");
            let required: Vec<&str> =
                schema["required"].as_array().map(|r| r.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
            let width = schema["properties"]
                .as_object()
                .into_iter()
                .flat_map(|p| p.keys().map(String::len))
                .chain(info.outputs.iter().map(|f| f.name.len()))
                .max()
                .unwrap_or(0)
                .max(16);
            if let Some(props) = schema["properties"].as_object() {
                for (k, p) in props {
                    let req = if required.contains(&k.as_str()) { " (required)" } else { "" };
                    let doc = p["description"].as_str().unwrap_or("").replace('\n', " ");
                    println!("  {k:<width$}{req} {doc}");
                }
            }
            if props_empty(&schema) {
                println!("  (none)");
            }
            println!("\nOutputs:");
            if info.outputs.is_empty() {
                println!("  (none)");
            }
            for f in info.outputs {
                println!("  {:<width$} {}", f.name, f.doc);
            }
            let caps = info.caps;
            println!(
                "\nCapabilities: probe={} effect={}{} spawns={} network={}",
                caps.probe,
                caps.effect.as_str(),
                if caps.general { " (a step may declare any effect)" } else { "" },
                caps.spawns,
                caps.network
            );
            println!("Targets (what a drill checks): {}", targets_line(a));
            println!("\nExample:\n{}", info.example.lines().map(|l| format!("  {l}")).collect::<Vec<_>>().join("\n"));
            Exit::Ok
        }
    }
}

fn props_empty(schema: &Value) -> bool {
    schema["properties"].as_object().is_none_or(|p| p.is_empty())
}
