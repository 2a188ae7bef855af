//! Raw runbook → checked [`Runbook`]: runs every validation pass, then builds the model.

use phoenix_plugins::Effect;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use indexmap::IndexMap;
use serde_json::Value;

use super::model::{Level, Param, Plan, RetryPolicy, Role, Runbook, SecretSource, SecretSpec, Signal, Step, WeightRule};
use super::raw::{Backoff, Jitter, RawRetry, RawRunbook};
use super::sections::Sections;
use crate::dag::Dag;
use crate::diag::{Code, Diagnostic};
use crate::validate::defs::{self, Def, Section};
use crate::validate::{actions, invariants, levels, names, needs, params, templates};
use crate::yaml::Path;

/// The default number of steps running at once.
pub(crate) const DEFAULT_MAX_PARALLEL: usize = 8;

pub(crate) fn compile(sections: Sections, source: Arc<str>, file: PathBuf, diags: &mut Vec<Diagnostic>) -> Option<Runbook> {
    let raw = &sections.raw;
    let before = diags.len();
    names::check(raw, diags);
    params::check(raw, &sections.broken_params, diags);
    levels::check(raw, diags);
    let (main, fail) = defs::defs(raw);
    let abort = defs::abort_defs(raw);
    let teardown = defs::teardown_defs(raw);
    let dir = file.parent().map_or_else(|| std::path::PathBuf::from("."), std::path::Path::to_path_buf);
    actions::check(&main, &dir, diags);
    actions::check(&fail, &dir, diags);
    invariants::check(raw, &main, &fail, diags);
    actions::check(&abort, &dir, diags);
    actions::check(&teardown, &dir, diags);
    let main_needs = needs::resolve(&main, &fail, &sections.broken, diags);
    let fail_needs = needs::resolve(&fail, &main, &sections.broken, diags);
    let abort_needs = needs::resolve(&abort, &main, &sections.broken, diags);
    let main_dag = needs::dag(&main, &main_needs, diags);
    let fail_dag = needs::dag(&fail, &fail_needs, diags);
    let abort_dag = needs::dag(&abort, &abort_needs, diags);
    let teardown_needs = needs::resolve(&teardown, &main, &sections.broken, diags);
    let teardown_dag = needs::dag(&teardown, &teardown_needs, diags);
    let decision_ttl = crate::validate::decision::ttl(raw, diags);
    crate::validate::drill::check(raw, diags);
    let defaults = raw.defaults.clone().unwrap_or_default();
    for def in main.iter().chain(&fail).chain(&abort).chain(&teardown) {
        retry_policy(defaults.retry.as_ref(), def.retry, &def.path().key("retry"), diags);
        if def.max_parallel == Some(0) {
            diags.push(Diagnostic::new(Code::InvalidValue, def.path().key("max_parallel"), "`max_parallel` must be at least 1"));
        }
        if def.max_parallel.is_some() && def.for_each.is_none() {
            diags.push(
                Diagnostic::new(
                    Code::InvalidValue,
                    def.path().key("max_parallel"),
                    "a step's `max_parallel` limits its `for_each` items, and this step has no `for_each`",
                )
                .help("remove it, or set `max_parallel` at the top of the runbook"),
            );
        }
        if def.timeout == Some(Duration::ZERO) {
            diags.push(Diagnostic::new(Code::Duration, def.path().key("timeout"), "a timeout of 0 would stop every attempt at once"));
        }
    }
    if let Some(r) = &defaults.retry {
        retry_policy(None, Some(r), &Path::root().key("defaults").key("retry"), diags);
    }
    let (Some(main_dag), Some(fail_dag), Some(abort_dag), Some(teardown_dag)) = (main_dag, fail_dag, abort_dag, teardown_dag) else {
        // A cycle leaves no order to check reads against, but the templates' syntax and the
        // names they read are checked all the same: every error of the file in one pass.
        let flat = |n: usize| Dag::build(&vec![Vec::new(); n]).expect("no needs, no cycle");
        let (m, f, a) = (flat(main.len()), flat(fail.len()), flat(abort.len()));
        templates::Checker::new(raw, &main, &fail, &m, &f, diags).with_abort(&abort, &a).without_races().run();
        return None;
    };
    templates::Checker::new(raw, &main, &fail, &main_dag, &fail_dag, diags).with_abort(&abort, &abort_dag).run();
    // The teardown is checked as on_abort steps are (it may read any main step, and its own
    // ancestors); the main and on_failure steps' repeated diagnostics are dropped as equal.
    if !teardown.is_empty() {
        let mut again = Vec::new();
        templates::Checker::new(raw, &main, &fail, &main_dag, &fail_dag, &mut again).with_abort(&teardown, &teardown_dag).run();
        diags.extend(again.into_iter().filter(|d| d.path.to_string().starts_with("drill.")));
    }
    if diags[before..].iter().any(|d| !d.warning) || !sections.broken.is_empty() || !sections.broken_invariants.is_empty() {
        return None;
    }
    levels::warn_unheld(raw, diags);
    let steps =
        |defs: &[Def<'_>], needs: &[Vec<usize>]| -> Vec<Step> { defs.iter().zip(needs).map(|(d, n)| step(d, n, defs, raw)).collect() };
    let main_steps = steps(&main, &main_needs);
    let fail_steps = steps(&fail, &fail_needs);
    let abort_steps = steps(&abort, &abort_needs);
    let teardown_steps = steps(&teardown, &teardown_needs);
    Some(Runbook {
        name: raw.name.clone(),
        description: raw.description.clone(),
        file,
        source,
        params: raw
            .params
            .iter()
            .map(|(k, p)| {
                (
                    k.clone(),
                    Param {
                        ty: p.ty,
                        default: p.default.clone(),
                        choices: p.choices.clone(),
                        description: p.description.clone(),
                        operator_only: p.operator_only,
                    },
                )
            })
            .collect(),
        vars: raw.vars.clone(),
        secrets: raw
            .secrets
            .iter()
            .map(|(k, s)| {
                let src = secret_source(s);
                (k.clone(), SecretSpec { source: src, hosts: s.hosts.clone(), allow_http: s.allow_http })
            })
            .collect(),
        lock: raw.lock.clone(),
        max_parallel: raw.max_parallel.map_or(DEFAULT_MAX_PARALLEL, |n| n as usize),
        main: Plan { steps: main_steps, dag: main_dag },
        on_failure: Plan { steps: fail_steps, dag: fail_dag },
        on_abort: Plan { steps: abort_steps, dag: abort_dag },
        teardown: Plan { steps: teardown_steps, dag: teardown_dag },
        decision_ttl,
        drill: raw.drill.as_ref().map(|d| super::model::Drill { params: d.params.clone(), protect: d.protect.clone() }),
        signals: raw
            .signals
            .iter()
            .enumerate()
            .map(|(i, (name, s))| Signal {
                name: name.clone(),
                step: i,
                rules: s.weight.iter().map(|r| WeightRule { when: r.when.clone(), weight: r.weight }).collect(),
                description: s.description.clone(),
                vantage: s.vantage,
            })
            .collect(),
        levels: raw
            .levels
            .iter()
            .map(|l| Level { name: l.name.clone(), max: l.max, hold: l.hold.unwrap_or(1), description: l.description.clone() })
            .collect(),
        outputs: raw.outputs.clone().into_iter().collect::<IndexMap<_, _>>(),
        invariants: raw
            .invariants
            .iter()
            .map(|(name, inv)| super::model::Invariant {
                name: name.clone(),
                description: inv.description.clone(),
                uses: inv.check.uses.clone(),
                with: inv.check.with.clone().unwrap_or(Value::Object(Default::default())),
                timeout: inv.check.timeout.map_or(Duration::from_secs(30), |d| d.get()),
                that: inv.that.clone(),
                around: invariants::around(inv, &main),
            })
            .collect(),
    })
}

fn merged(defaults: Option<&RawRetry>, own: Option<&RawRetry>) -> RawRetry {
    let d = defaults.cloned().unwrap_or_default();
    let o = own.cloned().unwrap_or_default();
    RawRetry {
        attempts: o.attempts.or(d.attempts),
        backoff: o.backoff.or(d.backoff),
        delay: o.delay.or(d.delay),
        max_delay: o.max_delay.or(d.max_delay),
        jitter: o.jitter.or(d.jitter),
    }
}

fn retry_policy(defaults: Option<&RawRetry>, own: Option<&RawRetry>, path: &Path, diags: &mut Vec<Diagnostic>) -> RetryPolicy {
    let r = merged(defaults, own);
    let base = RetryPolicy::default();
    let policy = RetryPolicy {
        attempts: r.attempts.unwrap_or(base.attempts),
        backoff: r.backoff.unwrap_or(if r.attempts.is_some() { Backoff::Exponential } else { base.backoff }),
        delay: r.delay.map_or(base.delay, |d| d.get()),
        max_delay: r.max_delay.map_or(base.max_delay.max(r.delay.map_or(Duration::ZERO, |d| d.get())), |d| d.get()),
        jitter: match r.jitter {
            None | Some(Jitter::Bool(false)) => 0.0,
            Some(Jitter::Bool(true)) => 1.0,
            Some(Jitter::Fraction(f)) => f,
        },
    };
    // A problem of `defaults.retry` alone is reported there, once, not again at every step.
    let own_sets = |field: fn(&RawRetry) -> bool| own.is_some_and(field);
    if policy.attempts == 0 && own_sets(|o| o.attempts.is_some()) {
        diags.push(
            Diagnostic::new(
                Code::Retry,
                path.key("attempts"),
                "`attempts` counts every attempt, the first included, and must be at least 1",
            )
            .help("`attempts: 1` means no retry"),
        );
    }
    if policy.max_delay < policy.delay && own_sets(|o| o.delay.is_some() || o.max_delay.is_some()) {
        diags.push(
            Diagnostic::new(
                Code::Retry,
                path.key("max_delay"),
                format!("`max_delay` ({:?}) is shorter than `delay` ({:?})", policy.max_delay, policy.delay),
            )
            .help("raise `max_delay` or lower `delay`"),
        );
    }
    policy
}

/// A step's effect: its own (`effect`, or `idempotent`), else the runbook's `defaults`, else
/// its action's. Never below the action's, but for a general action (validation refuses a
/// step that says less; a default that says less does not apply to it). Probes and `score`
/// read.
fn effect_of(def: &Def<'_>, defaults: &super::raw::RawDefaults) -> Effect {
    if matches!(def.section, Section::Signals | Section::Score) {
        return Effect::Read;
    }
    let caps = phoenix_plugins::find(def.uses).map(|a| a.info().caps);
    let action = caps.map_or(Effect::Idempotent, |c| c.effect);
    let general = caps.is_some_and(|c| c.general);
    let own = def.effect.or(def.idempotent.map(crate::validate::effects::from_idempotent));
    let default = defaults.effect.or(defaults.idempotent.map(crate::validate::effects::from_idempotent));
    match (own, default) {
        (Some(e), _) => e,
        (None, Some(d)) if general => d,
        (None, Some(d)) => d.max(action),
        (None, None) => action,
    }
}

fn step(def: &Def<'_>, needs: &[usize], plan: &[Def<'_>], raw: &RawRunbook) -> Step {
    let defaults = raw.defaults.clone().unwrap_or_default();
    let mut sink = Vec::new();
    let retry = retry_policy(defaults.retry.as_ref(), def.retry, &Path::root(), &mut sink);
    let effect = effect_of(def, &defaults);
    let role = match def.section {
        Section::Signals => Role::Probe(def.signal.expect("a signal def knows its index")),
        Section::Score => Role::Score,
        _ => Role::Action,
    };
    let with = def.with.cloned().unwrap_or(Value::Object(Default::default()));
    let timeout = def.timeout.or(defaults.timeout.map(|d| d.get()));
    let idempotent = effect.reruns_safely();
    let need_ids: Vec<&str> = needs.iter().map(|&n| plan[n].id).collect();
    let fingerprint = fingerprint(&serde_json::json!({
        "uses": def.uses,
        "with": with,
        "needs": need_ids,
        "when": def.when.map(|c| match c { super::raw::Cond::Bool(b) => Value::Bool(*b), super::raw::Cond::Expr(e) => Value::String(e.clone()) }),
        "for_each": def.for_each,
        "timeout": timeout.map(|t| t.as_millis() as u64),
        "retry": [retry.attempts, retry.delay.as_millis() as u32, retry.max_delay.as_millis() as u32],
        "continue_on_error": def.continue_on_error,
        "trigger_rule": def.trigger_rule,
        "idempotent": idempotent,
    }));
    Step {
        id: def.id.to_string(),
        uses: def.uses.to_string(),
        role,
        with,
        needs: needs.to_vec(),
        when: def.when.cloned(),
        timeout,
        retry,
        continue_on_error: def.continue_on_error.unwrap_or(false),
        trigger_rule: def.trigger_rule,
        idempotent,
        effect,
        for_each: def.for_each.cloned(),
        max_parallel: def.max_parallel.map(|n| n as usize),
        description: def.description.map(str::to_string),
        fingerprint,
    }
}

/// A stable hash of a definition: FNV-1a over canonical JSON (keys sorted).
fn fingerprint(v: &Value) -> String {
    fn canon(v: &Value, out: &mut String) {
        match v {
            Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                out.push('{');
                for k in keys {
                    out.push_str(&serde_json::to_string(k).expect("strings serialize"));
                    out.push(':');
                    canon(&m[k], out);
                    out.push(',');
                }
                out.push('}');
            }
            Value::Array(a) => {
                out.push('[');
                for x in a {
                    canon(x, out);
                    out.push(',');
                }
                out.push(']');
            }
            other => out.push_str(&other.to_string()),
        }
    }
    let mut s = String::new();
    canon(v, &mut s);
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// Where a secret comes from (`names::check` saw that exactly one source is given).
fn secret_source(s: &super::raw::RawSecret) -> SecretSource {
    let timeout = s.timeout.map_or(SECRET_TIMEOUT, |t| t.0);
    if let Some(id) = &s.aws_secretsmanager {
        let at = phoenix_plugins::aws::SecretsManagerRef {
            id: id.clone(),
            key: s.key.clone(),
            region: s.region.clone(),
            endpoint_url: s.endpoint_url.clone(),
            profile: s.profile.clone(),
        };
        return SecretSource::AwsSecretsManager { at, timeout };
    }
    match (&s.env, &s.file, &s.exec) {
        (Some(e), _, _) => SecretSource::Env(e.clone()),
        (None, Some(f), _) => SecretSource::File(PathBuf::from(f)),
        (None, None, Some(argv)) => SecretSource::Exec { argv: argv.clone(), timeout },
        (None, None, None) => unreachable!("checked by names::check"),
    }
}

/// How long reading a secret from a store or a command may take, unless it says.
const SECRET_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
