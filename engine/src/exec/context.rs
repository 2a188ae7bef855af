//! The template context of a run: params, vars, lazily resolved secrets and env, the
//! outputs of finished steps, `score`, `run` and `item`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use minijinja::Value as MjValue;
use minijinja::value::{Enumerator, Object};
use serde_json::Value;

use crate::runbook::{Runbook, SecretSpec};
use crate::template::{Redactor, Secret, to_mj};

/// Secrets are read when a template first touches them, and remembered for redaction.
#[derive(Debug)]
pub(crate) struct Secrets {
    sources: indexmap::IndexMap<String, SecretSpec>,
    cache: Mutex<HashMap<String, Secret>>,
    /// One gate a secret, held while it is read (`prefetch`).
    reading: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    redactor: Arc<RwLock<Redactor>>,
}

impl Secrets {
    pub(crate) fn new(rb: &Runbook, redactor: Arc<RwLock<Redactor>>) -> Self {
        Secrets { sources: rb.secrets.clone(), cache: Mutex::new(HashMap::new()), reading: Mutex::default(), redactor }
    }

    /// Resolves one secret.
    pub(crate) fn resolve(&self, name: &str) -> Result<Secret, String> {
        if let Some(s) = self.cache.lock().expect("poisoned").get(name) {
            return Ok(s.clone());
        }
        let src = self.sources.get(name).ok_or_else(|| format!("no secret `{name}`"))?;
        let value = super::secret_sources::read(name, &src.source)?;
        let secret = Secret::new(value);
        self.redactor.write().expect("poisoned").add(&secret);
        self.cache.lock().expect("poisoned").insert(name.to_string(), secret.clone());
        Ok(secret)
    }
}

impl Secrets {
    /// `v` with every secret the runbook declares scrubbed out, whether or not a template has
    /// read it yet: for text that leaves the machine (an LLM's prompt). Secrets that cannot be
    /// read cannot leak either.
    pub(crate) fn scrub(&self, v: &Value) -> Value {
        for name in self.sources.keys() {
            let _ = self.resolve(name);
        }
        self.redactor.read().expect("poisoned").json(v)
    }
}

impl Secrets {
    /// The secrets a step's `with` uses: named in its templates (`raw`), or found, in any
    /// encoding, in what they rendered (`rendered`). A template that reads `secrets` another
    /// way (as a whole, by a computed name) counts as using every secret.
    pub(crate) fn used_in(&self, raw: &Value, rendered: &Value) -> Vec<(String, SecretSpec)> {
        let (mut names, all) = self.named_in(raw);
        let cached: Vec<(String, Secret)> = self.cache.lock().expect("poisoned").iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        for (name, value) in cached {
            if all || names.contains(&name) {
                continue;
            }
            let mut one = Redactor::default();
            one.add(&value);
            let mut found = false;
            each_string(rendered, &mut |s| found |= !one.is_empty() && one.text(s) != s);
            if found {
                names.push(name);
            }
        }
        self.sources.iter().filter(|(k, _)| all || names.contains(k)).map(|(k, v)| (k.clone(), v.clone())).collect()
    }
}

impl Secrets {
    /// The declared secrets `raw`'s templates name, and whether one reads `secrets` another
    /// way (as a whole, by a computed name: then any of them).
    fn named_in(&self, raw: &Value) -> (Vec<String>, bool) {
        let mut names: Vec<String> = Vec::new();
        let mut all = false;
        each_string(raw, &mut |s| {
            for tag in template_tags(s) {
                for name in secret_names(tag) {
                    match name.filter(|n| self.sources.contains_key(n.as_str())) {
                        Some(n) if !names.contains(&n) => names.push(n),
                        Some(_) => {}
                        None => all = true,
                    }
                }
            }
        });
        (names, all)
    }

    /// Reads, off the runtime's threads, the secrets `raw`'s templates name and that are not
    /// read yet, so that rendering finds them cached: a command or Secrets Manager taking its
    /// time holds up this step only, never the run's other steps (the command line drives a
    /// run on one thread). One read a secret a run, even when steps ask at once. A failure is
    /// not kept: the render reads again and says why.
    pub(crate) async fn prefetch(self: &Arc<Self>, raw: &Value) {
        let (names, _) = self.named_in(raw);
        for name in names {
            let gate = self.reading.lock().expect("poisoned").entry(name.clone()).or_default().clone();
            let _one_at_a_time = gate.lock().await;
            if self.cache.lock().expect("poisoned").contains_key(&name) {
                continue;
            }
            let me = Arc::clone(self);
            // The read's spans (Secrets Manager's call) stay under this step's.
            let span = tracing::Span::current();
            let _ = tokio::task::spawn_blocking(move || span.in_scope(|| me.resolve(&name))).await;
        }
    }
}

/// Calls `f` with every string of `v`, keys included.
fn each_string(v: &Value, f: &mut impl FnMut(&str)) {
    match v {
        Value::String(s) => f(s),
        Value::Array(a) => a.iter().for_each(|x| each_string(x, f)),
        Value::Object(m) => m.iter().for_each(|(k, x)| {
            f(k);
            each_string(x, f)
        }),
        _ => {}
    }
}

/// The insides of the `{{ }}` and `{% %}` tags of a template.
fn template_tags(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(i) = rest.find(['{']) {
        let after = &rest[i + 1..];
        let close = match after.chars().next() {
            Some('{') => "}}",
            Some('%') => "%}",
            _ => {
                rest = after;
                continue;
            }
        };
        let body = &after[1..];
        let end = body.find(close).unwrap_or(body.len());
        out.push(&body[..end]);
        rest = &body[end..];
    }
    out
}

/// Each reading of `secrets` in an expression: `Some(name)` for `secrets.name` and
/// `secrets['name']`, `None` for any other use.
fn secret_names(expr: &str) -> Vec<Option<String>> {
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(i) = expr[from..].find("secrets").map(|i| i + from) {
        from = i + "secrets".len();
        if expr[..i].chars().next_back().is_some_and(|c| ident(c) || c == '.') || expr[from..].starts_with(ident) {
            continue;
        }
        let rest = expr[from..].trim_start();
        let name = if let Some(r) = rest.strip_prefix('.') {
            Some(r.trim_start().chars().take_while(|c| ident(*c)).collect::<String>())
        } else if let Some(r) = rest.strip_prefix('[') {
            let r = r.trim_start();
            r.chars().next().filter(|q| *q == '\'' || *q == '"').and_then(|q| r[1..].split_once(q).map(|(n, _)| n.to_string()))
        } else {
            None
        };
        out.push(name.filter(|n| !n.is_empty()));
    }
    out
}

impl Object for Secrets {
    fn get_value(self: &Arc<Self>, key: &MjValue) -> Option<MjValue> {
        let name = key.as_str()?;
        // An unreadable secret is undefined here; the render error names it.
        self.resolve(name).ok().map(|s| MjValue::from(s.expose().to_string()))
    }
    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Values(self.sources.keys().map(|k| MjValue::from(k.clone())).collect())
    }
}

/// Environment variables, read on access.
#[derive(Debug)]
struct Env;

impl Object for Env {
    fn get_value(self: &Arc<Self>, key: &MjValue) -> Option<MjValue> {
        let name = key.as_str()?;
        // serve's tokens are not the runbooks' to read (they would bypass the redactor).
        if super::sensitive_env::is_declared(name) {
            return None;
        }
        std::env::var(name).ok().map(MjValue::from)
    }
}

/// The views of finished steps (`{status, outputs, error, attempts}`), shared with running
/// attempts; a step appears once it has ended.
#[derive(Debug, Default)]
pub(crate) struct StepViews {
    map: RwLock<HashMap<String, MjValue>>,
}

impl StepViews {
    pub(crate) fn set(&self, id: &str, view: &Value) {
        self.map.write().expect("poisoned").insert(id.to_string(), to_mj(view));
    }
    pub(crate) fn get(&self, id: &str) -> Option<MjValue> {
        self.map.read().expect("poisoned").get(id).cloned()
    }
}

impl Object for StepViews {
    fn get_value(self: &Arc<Self>, key: &MjValue) -> Option<MjValue> {
        self.get(key.as_str()?)
    }
    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Values(self.map.read().expect("poisoned").keys().map(|k| MjValue::from(k.clone())).collect())
    }
}

/// Everything a run's templates can read.
#[derive(Debug, Clone)]
pub(crate) struct Context {
    pub(crate) params: MjValue,
    pub(crate) vars: MjValue,
    pub(crate) run: Value,
    pub(crate) secrets: Arc<Secrets>,
    pub(crate) steps: Arc<StepViews>,
}

impl Context {
    /// The context for a step (with `item` for a `for_each` item).
    pub(crate) fn value(&self, item: Option<&Value>) -> MjValue {
        let mut pairs: Vec<(&str, MjValue)> = vec![
            ("params", self.params.clone()),
            ("vars", self.vars.clone()),
            ("secrets", MjValue::from_dyn_object(self.secrets.clone())),
            ("env", MjValue::from_object(Env)),
            ("run", to_mj(&self.run)),
            ("steps", MjValue::from_dyn_object(self.steps.clone())),
        ];
        if let Some(score) = self.steps.get("score").and_then(|s| s.get_attr("outputs").ok()).filter(|v| !v.is_undefined()) {
            pairs.push(("score", score));
        }
        if let Some(i) = item {
            pairs.push(("item", to_mj(i)));
        }
        map(pairs)
    }

    /// The context of an invariant's `that`: a step's (no secrets), with the check's `outputs`.
    pub(crate) fn with_outputs(&self, outputs: &Value) -> MjValue {
        let mut pairs: Vec<(&str, MjValue)> = vec![
            ("params", self.params.clone()),
            ("vars", self.vars.clone()),
            ("env", MjValue::from_object(Env)),
            ("run", to_mj(&self.run)),
            ("steps", MjValue::from_dyn_object(self.steps.clone())),
            ("outputs", to_mj(outputs)),
        ];
        if let Some(score) = self.steps.get("score").and_then(|s| s.get_attr("outputs").ok()).filter(|v| !v.is_undefined()) {
            pairs.push(("score", score));
        }
        map(pairs)
    }

    /// The context before any step: params, env, run and the vars rendered so far.
    pub(crate) fn for_vars(params: &Value, vars: &serde_json::Map<String, Value>, run: &Value) -> MjValue {
        map(vec![("params", to_mj(params)), ("vars", to_mj(vars)), ("env", MjValue::from_object(Env)), ("run", to_mj(run))])
    }
}

/// A template mapping from name/value pairs.
pub(crate) fn map(pairs: Vec<(&str, MjValue)>) -> MjValue {
    MjValue::from_object(pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect::<std::collections::BTreeMap<String, MjValue>>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_secrets_a_template_reads() {
        assert_eq!(template_tags("a {{ x }} b {% if y %}c{% endif %} {not}"), vec![" x ", " if y ", " endif "]);
        assert_eq!(secret_names(" secrets.key if p else '' "), vec![Some("key".to_string())]);
        assert_eq!(secret_names("secrets['a'] ~ secrets[\"b\"]"), vec![Some("a".to_string()), Some("b".to_string())]);
        assert_eq!(secret_names("secrets | tojson"), vec![None]);
        assert_eq!(secret_names("secrets[name]"), vec![None]);
        assert!(secret_names("params.secrets_dir ~ mysecrets").is_empty());
    }
}
