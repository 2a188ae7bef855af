//! Environment variables a step's processes must not inherit: the API tokens of `phoenix
//! serve`, and the variables the runbook's secrets are read from. A step that needs a secret
//! names it with a template (`env: { TOKEN: "{{ secrets.token }}" }`), where the redactor
//! learns it; inherited, it would reach the step's output unknown to the redactor.
//!
//! The environment is one per process, and so is this list: the command that reads a token
//! from a variable declares it here once, and every engine of the process leaves it out.

use std::sync::{Arc, RwLock};

use crate::runbook::{Runbook, SecretSource};

static DECLARED: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// Declares environment variables that hold credentials of this process (serve's tokens).
pub fn declare_sensitive_env(names: impl IntoIterator<Item = String>) {
    let mut d = DECLARED.write().expect("poisoned");
    for n in names {
        if !d.contains(&n) {
            d.push(n);
        }
    }
}

/// Whether `name` was declared with [`declare_sensitive_env`]: templates cannot read it
/// through `env` either.
pub(crate) fn is_declared(name: &str) -> bool {
    DECLARED.read().expect("poisoned").iter().any(|n| n == name)
}

/// What the steps of `rb` do not inherit: the declared variables and those of its secrets.
pub(crate) fn for_runbook(rb: &Runbook) -> Arc<[String]> {
    let mut names = DECLARED.read().expect("poisoned").clone();
    for spec in rb.secrets.values() {
        if let SecretSource::Env(var) = &spec.source {
            if !names.contains(var) {
                names.push(var.clone());
            }
        }
    }
    names.into()
}
