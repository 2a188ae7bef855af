//! The template context of a run: params, vars, lazily resolved secrets and env, the
//! outputs of finished steps, `score`, `run` and `item`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use minijinja::Value as MjValue;
use minijinja::value::{Enumerator, Object};
use serde_json::Value;

use crate::runbook::{Runbook, SecretSource};
use crate::template::{Redactor, Secret, to_mj};

/// Secrets are read when a template first touches them, and remembered for redaction.
#[derive(Debug)]
pub(crate) struct Secrets {
    sources: indexmap::IndexMap<String, SecretSource>,
    cache: Mutex<HashMap<String, Secret>>,
    redactor: Arc<RwLock<Redactor>>,
}

impl Secrets {
    pub(crate) fn new(rb: &Runbook, redactor: Arc<RwLock<Redactor>>) -> Self {
        Secrets { sources: rb.secrets.clone(), cache: Mutex::new(HashMap::new()), redactor }
    }

    /// Resolves one secret.
    pub(crate) fn resolve(&self, name: &str) -> Result<Secret, String> {
        if let Some(s) = self.cache.lock().expect("poisoned").get(name) {
            return Ok(s.clone());
        }
        let src = self.sources.get(name).ok_or_else(|| format!("no secret `{name}`"))?;
        let value = match src {
            SecretSource::Env(var) => {
                std::env::var(var).map_err(|_| format!("secret `{name}`: the environment variable {var} is not set"))?
            }
            SecretSource::File(path) => std::fs::read_to_string(path)
                .map(|s| s.trim_end_matches(['\n', '\r']).to_string())
                .map_err(|e| format!("secret `{name}`: cannot read {}: {e}", path.display()))?,
        };
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
        std::env::var(key.as_str()?).ok().map(MjValue::from)
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

    /// The context before any step: params, env, run and the vars rendered so far.
    pub(crate) fn for_vars(params: &Value, vars: &serde_json::Map<String, Value>, run: &Value) -> MjValue {
        map(vec![("params", to_mj(params)), ("vars", to_mj(vars)), ("env", MjValue::from_object(Env)), ("run", to_mj(run))])
    }
}

/// A template mapping from name/value pairs.
pub(crate) fn map(pairs: Vec<(&str, MjValue)>) -> MjValue {
    MjValue::from_object(pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect::<std::collections::BTreeMap<String, MjValue>>())
}
