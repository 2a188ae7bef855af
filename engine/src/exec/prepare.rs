//! Before a run starts: typed params, rendered vars and lock key, a new run id. Any error
//! here is bad input: nothing has been written yet.

use serde_json::{Map, Value, json};

use super::context::Context;
use crate::runbook::Runbook;
use crate::template::render_tree;
use crate::validate::params::{coerce, fits};

/// Milliseconds since the epoch.
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// This process's working directory, as a run records it (none if it is not UTF-8).
pub(crate) fn working_dir() -> Option<String> {
    std::env::current_dir().ok().and_then(|d| d.to_str().map(String::from))
}

/// A sortable, readable run id: `20261128-193012-4f2a`.
pub(crate) fn new_run_id(at: u64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(at);
    let s = humantime::format_rfc3339_seconds(t).to_string();
    let compact: String = s.chars().filter(|c| c.is_ascii_digit() || *c == 'T').collect::<String>().replace('T', "-");
    format!("{compact}-{:04x}", rand::random::<u16>())
}

/// Typed params from `--param name=value` pairs, defaults filled in, enums checked.
pub(crate) fn params(rb: &Runbook, given: &[(String, String)]) -> Result<Value, String> {
    let mut out = Map::new();
    let mut errors = Vec::new();
    for (k, v) in given {
        match rb.params.get(k) {
            None => errors.push(format!(
                "`{k}` is not a param of `{}`; {}",
                rb.name,
                crate::suggest::hint(k, rb.params.keys().map(String::as_str))
            )),
            Some(p) => match coerce(p.ty, v) {
                Ok(val) => {
                    out.insert(k.clone(), val);
                }
                Err(e) => errors.push(format!("--param {k}: {e} (the param is of type `{}`)", p.ty)),
            },
        }
    }
    for (k, p) in &rb.params {
        if !out.contains_key(k) {
            match &p.default {
                Some(d) => {
                    out.insert(k.clone(), d.clone());
                }
                None => errors.push(format!("the param `{k}` is required: add `--param {k}=…`")),
            }
        }
        if let (Some(v), Some(choices)) = (out.get(k), &p.choices) {
            if !choices.contains(v) {
                let list: Vec<String> = choices.iter().map(|c| c.as_str().map_or_else(|| c.to_string(), str::to_string)).collect();
                errors.push(format!("--param {k}: {v} is not allowed; choose one of {}", list.join(", ")));
            }
        }
        if let Some(v) = out.get(k) {
            if !fits(p.ty, v) {
                errors.push(format!("--param {k}: {v} is not of type `{}`", p.ty));
            }
        }
    }
    if errors.is_empty() { Ok(Value::Object(out)) } else { Err(errors.join("\n")) }
}

/// The `run` template value.
pub(crate) fn run_value(rb: &Runbook, id: &str, started_at: u64, attempt: u32, dry_run: bool) -> Value {
    let started = humantime::format_rfc3339_millis(std::time::UNIX_EPOCH + std::time::Duration::from_millis(started_at)).to_string();
    // `.` rather than empty for a runbook named without a directory: `{{ run.dir }}/x` must
    // stay relative.
    let dir = rb.file.parent().map(|p| p.display().to_string()).filter(|d| !d.is_empty()).unwrap_or_else(|| ".".into());
    json!({ "id": id, "runbook": rb.name, "started_at": started, "attempt": attempt, "dry_run": dry_run, "file": rb.file.display().to_string(), "dir": dir, "status": "running", "failed_steps": [], "error": null, "fence": 0 })
}

/// Renders the vars in order, then the lock key.
pub(crate) fn vars_and_lock(rb: &Runbook, params: &Value, run: &Value) -> Result<(Value, Option<String>), String> {
    let mut vars = Map::new();
    for (k, v) in &rb.vars {
        let ctx = Context::for_vars(params, &vars, run);
        let rendered =
            render_tree(&json!({ "v": v }), &ctx, &[], &[]).map_err(|(p, e)| format!("vars.{k}{}: {e}", p.trim_start_matches('v')))?;
        vars.insert(k.clone(), rendered["v"].clone());
    }
    let lock = match &rb.lock {
        None => None,
        Some(l) => {
            let ctx = Context::for_vars(params, &vars, run);
            let v = render_tree(&json!({ "v": l }), &ctx, &[], &[]).map_err(|(_, e)| format!("lock: {e}"))?;
            Some(v["v"].as_str().map_or_else(|| v["v"].to_string(), str::to_string))
        }
    };
    Ok((Value::Object(vars), lock))
}
