//! Templates parse, and read only what exists and is ready: known params, vars and secrets,
//! and steps that are guaranteed to have finished (ancestors), never a race.

mod ready;
mod shell;

use std::collections::HashMap;

use phoenix_plugins::find;
use serde_json::Value;

use super::defs::{Def, Section};
use crate::dag::Dag;
use crate::diag::{Code, Diagnostic};
use crate::runbook::raw::{Cond, RawRunbook};
use crate::suggest;
use crate::template::{Reference, check_expression, check_template, is_template, whole_expression};
use crate::yaml::Path;

/// Where a template is rendered, which decides what it may read.
#[derive(Clone, Copy)]
enum Scope<'s> {
    /// A step of the main plan: its ancestors are ready.
    Step { index: usize, dag: &'s Dag, item: bool },
    /// An on_failure step: every main step has ended; on_failure ancestors are ready.
    Failure { index: usize, dag: &'s Dag, item: bool },
    /// An on_abort step: the main steps have ended or been cancelled; on_abort ancestors
    /// are ready.
    Abort { index: usize, dag: &'s Dag, item: bool },
    /// A signal's probe inputs: run before any step.
    Probe,
    /// A weight rule: the probe's own `outputs`, `status` and `error`.
    Weight,
    /// The Nth var: params, env, run and earlier vars.
    Var(usize),
    /// The lock key.
    Lock,
    /// The run's outputs: any main step.
    Outputs,
    /// An invariant's check `with` (`that: false`) or its `that`: the steps every around
    /// step needs are ready; `that` also reads the check's `outputs`, and no secret.
    Invariant { around: &'s [usize], dag: &'s Dag, that: bool },
}

pub(crate) struct Checker<'a> {
    raw: &'a RawRunbook,
    main: &'a [Def<'a>],
    fail: &'a [Def<'a>],
    main_dag: &'a Dag,
    fail_dag: &'a Dag,
    /// Step id → index in `main` / `fail` (a runbook can have 10,000 steps, each read by id).
    main_index: HashMap<&'a str, usize>,
    fail_index: HashMap<&'a str, usize>,
    /// The on_abort steps and their DAG (`with_abort`).
    abort: &'a [Def<'a>],
    abort_dag: Option<&'a Dag>,
    abort_index: HashMap<&'a str, usize>,
    out: &'a mut Vec<Diagnostic>,
    /// Whether the DAGs are real: with a cycle there is no order to check reads against,
    /// and only the templates' syntax and names are checked.
    races: bool,
}

/// The first index of each id (a duplicate id is reported elsewhere).
fn index_of<'a>(defs: &'a [Def<'a>]) -> HashMap<&'a str, usize> {
    let mut index = HashMap::with_capacity(defs.len());
    for (i, d) in defs.iter().enumerate() {
        index.entry(d.id).or_insert(i);
    }
    index
}

const RUN_KEYS: &[&str] = &["id", "runbook", "started_at", "attempt", "dry_run", "status", "failed_steps", "error", "file", "dir", "fence"];

impl<'a> Checker<'a> {
    pub(crate) fn new(
        raw: &'a RawRunbook,
        main: &'a [Def<'a>],
        fail: &'a [Def<'a>],
        main_dag: &'a Dag,
        fail_dag: &'a Dag,
        out: &'a mut Vec<Diagnostic>,
    ) -> Self {
        Checker {
            raw,
            main,
            fail,
            main_dag,
            fail_dag,
            main_index: index_of(main),
            fail_index: index_of(fail),
            abort: &[],
            abort_dag: None,
            abort_index: HashMap::new(),
            out,
            races: true,
        }
    }

    /// Checks the on_abort steps too.
    pub(crate) fn with_abort(mut self, abort: &'a [Def<'a>], dag: &'a Dag) -> Self {
        self.abort = abort;
        self.abort_dag = Some(dag);
        self.abort_index = index_of(abort);
        self
    }

    /// Checks syntax and names only: the DAGs given are placeholders (a plan has a cycle).
    pub(crate) fn without_races(mut self) -> Self {
        self.races = false;
        self
    }

    pub(crate) fn run(mut self) {
        let raw = self.raw;
        for (i, (name, v)) in raw.vars.iter().enumerate() {
            self.value(v, &Path::root().key("vars").key(name), Scope::Var(i));
        }
        if let Some(lock) = &raw.lock {
            self.string(lock, &Path::root().key("lock"), Scope::Lock, false);
        }
        for (name, v) in &raw.outputs {
            self.value(v, &Path::root().key("outputs").key(name), Scope::Outputs);
        }
        for (name, s) in &raw.signals {
            for (i, rule) in s.weight.iter().enumerate() {
                if let Some(Cond::Expr(e)) = &rule.when {
                    self.string(e, &Path::root().key("signals").key(name).key("weight").index(i).key("when"), Scope::Weight, true);
                }
            }
        }
        let (main, fail, main_dag, fail_dag) = (self.main, self.fail, self.main_dag, self.fail_dag);
        for (name, inv) in &raw.invariants {
            let path = Path::root().key("invariants").key(name);
            let around = super::invariants::around(inv, main);
            if let Some(with) = &inv.check.with {
                self.value(with, &path.key("check").key("with"), Scope::Invariant { around: &around, dag: main_dag, that: false });
            }
            let that = whole_expression(&inv.that).unwrap_or(&inv.that);
            self.string(that, &path.key("that"), Scope::Invariant { around: &around, dag: main_dag, that: true }, true);
        }
        for (i, def) in main.iter().enumerate() {
            let scope = |item| match def.section {
                Section::Signals => Scope::Probe,
                _ => Scope::Step { index: i, dag: main_dag, item },
            };
            self.def(def, scope(false), scope(def.for_each.is_some()));
        }
        for (i, def) in fail.iter().enumerate() {
            let scope = |item| Scope::Failure { index: i, dag: fail_dag, item };
            self.def(def, scope(false), scope(def.for_each.is_some()));
        }
        if let Some(abort_dag) = self.abort_dag {
            for (i, def) in self.abort.iter().enumerate() {
                let scope = |item| Scope::Abort { index: i, dag: abort_dag, item };
                self.def(def, scope(false), scope(def.for_each.is_some()));
            }
        }
    }

    fn def(&mut self, def: &Def<'_>, outer: Scope<'_>, inner: Scope<'_>) {
        let path = def.path();
        if let Some(Cond::Expr(e)) = def.when {
            self.string(e, &path.key("when"), outer, true);
        }
        match def.for_each {
            Some(Value::String(s)) => {
                let expr = whole_expression(s).unwrap_or(s);
                self.string(expr, &path.key("for_each"), outer, true);
            }
            Some(v @ Value::Array(_)) => self.value(v, &path.key("for_each"), outer),
            Some(other) => self.out.push(
                Diagnostic::new(
                    Code::WrongType,
                    path.key("for_each"),
                    format!("`for_each` takes an expression or a list, found {}", kind(other)),
                )
                .help("for example `for_each: \"params.regions\"` or `for_each: [a, b]`"),
            ),
            None => {}
        }
        let Some(Value::Object(with)) = def.with else { return };
        let exprs = find(def.uses).map_or(&[][..], |a| a.expression_fields());
        let shell = find(def.uses).map_or(&[][..], |a| a.shell_fields());
        for (k, v) in with {
            let p = path.key("with").key(k);
            if let (true, Value::String(script)) = (shell.contains(&k.as_str()), v) {
                self.shell_quoting(script, &p);
            }
            match v {
                // `that: "{{ x }}"` is reported once, by the action's own check (`{{ }}` is not
                // needed); the names inside are still checked here.
                Value::String(s) if exprs.contains(&k.as_str()) => self.string(whole_expression(s).unwrap_or(s), &p, inner, true),
                other => self.value(other, &p, inner),
            }
        }
    }

    fn value(&mut self, v: &Value, path: &Path, scope: Scope<'_>) {
        match v {
            Value::String(s) if is_template(s) => self.string(s, path, scope, false),
            Value::Array(a) => a.iter().enumerate().for_each(|(i, x)| self.value(x, &path.index(i), scope)),
            Value::Object(m) => m.iter().for_each(|(k, x)| self.value(x, &path.key(k), scope)),
            _ => {}
        }
    }

    fn string(&mut self, s: &str, path: &Path, scope: Scope<'_>, expression: bool) {
        let parsed = if expression { check_expression(s) } else { check_template(s) };
        match parsed {
            Ok(refs) => {
                for r in refs {
                    self.reference(&r, path, scope);
                }
            }
            Err(e) => {
                let what = if expression { "expression" } else { "template" };
                self.out.push(
                    Diagnostic::new(Code::TemplateSyntax, path.clone(), format!("this {what} does not parse: {}", e.message)).help(
                        if expression {
                            "expressions are minijinja (Jinja2) expressions, e.g. `params.dry_run == false`".to_string()
                        } else {
                            "templates are minijinja (Jinja2): `{{ params.name }}`".to_string()
                        },
                    ),
                );
            }
        }
    }

    fn roots(&self, scope: Scope<'_>) -> Vec<&'static str> {
        let mut r = vec!["params", "env", "run"];
        match scope {
            Scope::Var(_) => r.push("vars"),
            Scope::Lock => r.push("vars"),
            Scope::Probe => r.extend(["vars", "secrets"]),
            Scope::Weight => r.extend(["vars", "outputs", "status", "error"]),
            Scope::Outputs => r.extend(["vars", "steps", "score"]),
            Scope::Invariant { that: true, .. } => r.extend(["vars", "steps", "score", "outputs"]),
            Scope::Invariant { that: false, .. } => r.extend(["vars", "secrets", "steps", "score"]),
            Scope::Step { item, .. } | Scope::Failure { item, .. } | Scope::Abort { item, .. } => {
                r.extend(["vars", "secrets", "steps", "score"]);
                if item {
                    r.push("item");
                }
            }
        }
        r
    }

    fn reference(&mut self, r: &Reference, path: &Path, scope: Scope<'_>) {
        let raw = self.raw;
        let first = r.path.first().map(String::as_str);
        let allowed = self.roots(scope);
        let root = r.root.as_str();
        if !allowed.contains(&root) {
            let d = match (root, scope) {
                ("secrets", Scope::Invariant { .. }) => super::invariants::reads_secret(path),
                ("secrets", Scope::Var(_) | Scope::Lock | Scope::Outputs) => {
                    Diagnostic::new(Code::SecretLeak, path.clone(), "a secret cannot be used here: this value is stored with the run")
                        .help("use the secret directly in the step's `with`, where it is rendered only when the step runs")
                }
                ("steps" | "score", Scope::Var(_) | Scope::Lock | Scope::Probe) => Diagnostic::new(
                    Code::Race,
                    path.clone(),
                    format!("`{root}` is not available here: this is rendered before any step runs"),
                ),
                ("item", _) => Diagnostic::new(
                    Code::UnknownReference,
                    path.clone(),
                    "`item` exists only inside the `with` of a step that has `for_each`",
                ),
                _ => Diagnostic::new(Code::UnknownReference, path.clone(), format!("`{root}` is not defined here"))
                    .help(suggest::hint(root, allowed.iter().copied())),
            };
            self.out.push(d);
            return;
        }
        match root {
            "params" => self.known(first, raw.params.keys(), "params", path),
            "secrets" => self.known(first, raw.secrets.keys(), "secrets", path),
            "vars" => {
                let upto = match scope {
                    Scope::Var(i) => i,
                    _ => raw.vars.len(),
                };
                if let (Some(name), Scope::Var(i)) = (first, scope) {
                    if raw.vars.get_index_of(name).is_some_and(|j| j >= i) {
                        self.out.push(
                            Diagnostic::new(
                                Code::UnknownReference,
                                path.clone(),
                                format!("`vars.{name}` is not rendered yet: vars are rendered in order"),
                            )
                            .help(format!("move `{name}` above this var")),
                        );
                        return;
                    }
                }
                self.known(first, raw.vars.keys().take(upto), "vars", path)
            }
            "run" => {
                if let Some(k) = first.filter(|k| !RUN_KEYS.contains(k)) {
                    self.out.push(
                        Diagnostic::new(Code::UnknownReference, path.clone(), format!("`run.{k}` does not exist"))
                            .help(suggest::hint(k, RUN_KEYS.iter().copied())),
                    );
                }
            }
            "score" => self.score(path, scope),
            "steps" => {
                if let Some(id) = first {
                    self.step(id, r.path.get(1).map(String::as_str), path, scope);
                }
            }
            _ => {}
        }
    }

    fn known<'k>(&mut self, name: Option<&str>, names: impl Iterator<Item = &'k String> + Clone, root: &str, path: &Path) {
        let Some(name) = name else { return };
        if names.clone().any(|n| n == name) {
            return;
        }
        let what = match root {
            "params" => "param",
            "vars" => "var",
            _ => "secret",
        };
        let help = if names.clone().next().is_none() {
            format!("this runbook declares no {what}s here: add it under `{root}:`")
        } else {
            suggest::hint(name, names.map(String::as_str))
        };
        self.out.push(
            Diagnostic::new(Code::UnknownReference, path.clone(), format!("`{root}.{name}` names no {what} of this runbook")).help(help),
        );
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}
