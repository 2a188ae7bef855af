//! Structured inputs: runbooks that are well-formed YAML (JSON, pretty-printed) with ids,
//! needs, actions, templates, signals and levels drawn from small sets, so that most inputs
//! get past the parser and exercise the semantic checks: needs graphs with cycles and
//! duplicates, races, scopes of templates, retries, levels and weights.
#![no_main]

#[path = "check.rs"]
mod check;

use arbitrary::Arbitrary;
use serde_json::{Map, Value, json};

const IDS: &[&str] = &["a", "b", "c", "d", "e", "score", "switch_dns", "bad-id", "x1", "_", "item", "steps"];
const USES: &[&str] = &["noop", "sleep", "assert", "approval", "runbook", "exec", "http", "score", "exce", "postgres.query"];
const KEYS: &[&str] = &["cmd", "script", "url", "duration", "that", "message", "outputs", "file", "params", "json", "nope", "timeout"];
const TYPES: &[&str] = &["string", "int", "float", "bool", "list", "object", "integer"];
const DURATIONS: &[&str] = &["1s", "500ms", "0s", "1h30m", "5 minutes", "10", "", "99999999d", "1.5s", "x"];
const FRAGMENTS: &[&str] = &[
    "{{ ",
    " }}",
    "{% if ",
    " %}",
    "{% endif %}",
    "{% for i in ",
    "{% endfor %}",
    "params.",
    "vars.",
    "secrets.",
    "steps.",
    "score.",
    ".outputs.",
    ".status",
    ".total",
    ".level",
    "item",
    "run.id",
    "run.nope",
    "env.HOME",
    " == ",
    " | upper",
    " and ",
    "'x'",
    "1",
    "(",
    ")",
    "[0]",
    "{#",
    "#}",
    "\"",
    "\\",
    "\n",
    "outputs.status",
    "status",
    "true",
    "none",
    " ",
    "-",
    ".",
];

#[derive(Arbitrary, Debug)]
struct Text(Vec<Piece>);

#[derive(Arbitrary, Debug)]
enum Piece {
    Fragment(u8),
    Id(u8),
    Literal(u8),
}

impl Text {
    fn render(&self) -> String {
        self.0
            .iter()
            .take(24)
            .map(|p| match p {
                Piece::Fragment(i) => FRAGMENTS[*i as usize % FRAGMENTS.len()].to_string(),
                Piece::Id(i) => pick(IDS, *i).to_string(),
                Piece::Literal(n) => n.to_string(),
            })
            .collect()
    }
}

#[derive(Arbitrary, Debug)]
enum Val {
    Text(Text),
    Int(i16),
    Bool(bool),
    Float(f32),
    List(Vec<Text>),
    Null,
}

impl Val {
    fn json(&self) -> Value {
        match self {
            Val::Text(t) => Value::String(t.render()),
            Val::Int(i) => json!(i),
            Val::Bool(b) => json!(b),
            Val::Float(f) => serde_json::Number::from_f64(f64::from(*f)).map_or(Value::Null, Value::Number),
            Val::List(items) => Value::Array(items.iter().take(6).map(|t| Value::String(t.render())).collect()),
            Val::Null => Value::Null,
        }
    }
}

#[derive(Arbitrary, Debug)]
struct Retry {
    attempts: Option<u8>,
    backoff: Option<bool>,
    delay: Option<u8>,
    max_delay: Option<u8>,
    jitter: Option<u8>,
}

impl Retry {
    fn json(&self) -> Value {
        let mut m = Map::new();
        if let Some(a) = self.attempts {
            m.insert("attempts".into(), json!(a % 6));
        }
        if let Some(b) = self.backoff {
            m.insert("backoff".into(), json!(if b { "fixed" } else { "exponential" }));
        }
        if let Some(d) = self.delay {
            m.insert("delay".into(), json!(pick(DURATIONS, d)));
        }
        if let Some(d) = self.max_delay {
            m.insert("max_delay".into(), json!(pick(DURATIONS, d)));
        }
        if let Some(j) = self.jitter {
            m.insert("jitter".into(), json!(f64::from(j) / 100.0));
        }
        Value::Object(m)
    }
}

#[derive(Arbitrary, Debug)]
struct Step {
    id: u8,
    uses: u8,
    needs: Vec<u8>,
    needs_one: bool,
    with: Vec<(u8, Val)>,
    when: Option<Text>,
    for_each: Option<Val>,
    timeout: Option<u8>,
    retry: Option<Retry>,
    max_parallel: Option<u8>,
    extra_key: Option<u8>,
}

impl Step {
    fn json(&self) -> Value {
        let mut m = Map::new();
        m.insert("uses".into(), json!(pick(USES, self.uses)));
        match (self.needs.as_slice(), self.needs_one) {
            ([], _) => {}
            ([one, ..], true) => {
                m.insert("needs".into(), json!(pick(IDS, *one)));
            }
            (many, false) => {
                m.insert("needs".into(), Value::Array(many.iter().take(5).map(|i| json!(pick(IDS, *i))).collect()));
            }
        }
        if !self.with.is_empty() {
            let with: Map<String, Value> = self.with.iter().take(5).map(|(k, v)| (pick(KEYS, *k).to_string(), v.json())).collect();
            m.insert("with".into(), Value::Object(with));
        }
        if let Some(w) = &self.when {
            m.insert("when".into(), json!(w.render()));
        }
        if let Some(f) = &self.for_each {
            m.insert("for_each".into(), f.json());
        }
        if let Some(t) = self.timeout {
            m.insert("timeout".into(), json!(pick(DURATIONS, t)));
        }
        if let Some(r) = &self.retry {
            m.insert("retry".into(), r.json());
        }
        if let Some(p) = self.max_parallel {
            m.insert("max_parallel".into(), json!(p % 4));
        }
        if let Some(k) = self.extra_key {
            m.insert(pick(KEYS, k).to_string(), json!(1));
        }
        Value::Object(m)
    }
}

#[derive(Arbitrary, Debug)]
struct Signal {
    id: u8,
    uses: u8,
    with: Vec<(u8, Val)>,
    rules: Vec<(Option<Text>, i8)>,
}

/// A param: id, type, default, enum.
#[derive(Arbitrary, Debug)]
struct Param(u8, u8, Option<Val>, Option<Vec<Val>>);

#[derive(Arbitrary, Debug)]
struct Doc {
    version: u8,
    name: Text,
    params: Vec<Param>,
    vars: Vec<(u8, Val)>,
    secrets: Vec<(u8, Option<u8>, bool)>,
    lock: Option<Text>,
    max_parallel: Option<u8>,
    retry: Option<Retry>,
    signals: Vec<Signal>,
    levels: Vec<(u8, Option<i8>, Option<u8>)>,
    steps: Vec<Step>,
    on_failure: Vec<Step>,
    outputs: Vec<(u8, Val)>,
}

fn pick<'a>(from: &[&'a str], i: u8) -> &'a str {
    from[i as usize % from.len()]
}

fn named<T>(items: &[(u8, T)], f: impl Fn(&T) -> Value) -> Value {
    Value::Object(items.iter().take(8).map(|(id, x)| (pick(IDS, *id).to_string(), f(x))).collect())
}

impl Doc {
    fn json(&self) -> Value {
        let mut m = Map::new();
        m.insert("version".into(), json!(if self.version < 240 { 1 } else { self.version }));
        let name = self.name.render();
        m.insert("name".into(), json!(if name.is_empty() { "fuzz".to_string() } else { name }));
        if !self.params.is_empty() {
            let params: Map<String, Value> = self
                .params
                .iter()
                .take(6)
                .map(|Param(id, ty, default, choices)| {
                    let mut p = Map::new();
                    p.insert("type".into(), json!(pick(TYPES, *ty)));
                    if let Some(d) = default {
                        p.insert("default".into(), d.json());
                    }
                    if let Some(c) = choices {
                        p.insert("enum".into(), Value::Array(c.iter().take(4).map(Val::json).collect()));
                    }
                    (pick(IDS, *id).to_string(), Value::Object(p))
                })
                .collect();
            m.insert("params".into(), Value::Object(params));
        }
        if !self.vars.is_empty() {
            m.insert("vars".into(), named(&self.vars, Val::json));
        }
        if !self.secrets.is_empty() {
            let secrets: Map<String, Value> = self
                .secrets
                .iter()
                .take(4)
                .map(|(id, env, file)| {
                    let mut s = Map::new();
                    if let Some(e) = env {
                        s.insert("env".into(), json!(pick(IDS, *e).to_uppercase()));
                    }
                    if *file {
                        s.insert("file".into(), json!("/run/secrets/x"));
                    }
                    (pick(IDS, *id).to_string(), Value::Object(s))
                })
                .collect();
            m.insert("secrets".into(), Value::Object(secrets));
        }
        if let Some(l) = &self.lock {
            m.insert("lock".into(), json!(l.render()));
        }
        if let Some(p) = self.max_parallel {
            m.insert("max_parallel".into(), json!(p % 4));
        }
        if let Some(r) = &self.retry {
            m.insert("defaults".into(), json!({ "retry": r.json() }));
        }
        if !self.signals.is_empty() {
            let signals: Map<String, Value> = self
                .signals
                .iter()
                .take(4)
                .map(|s| {
                    let with: Map<String, Value> = s.with.iter().take(4).map(|(k, v)| (pick(KEYS, *k).to_string(), v.json())).collect();
                    let rules: Vec<Value> = s
                        .rules
                        .iter()
                        .take(4)
                        .map(|(when, w)| match when {
                            Some(t) => json!({ "when": t.render(), "weight": w }),
                            None => json!({ "weight": w }),
                        })
                        .collect();
                    (pick(IDS, s.id).to_string(), json!({ "uses": pick(USES, s.uses), "with": with, "weight": rules }))
                })
                .collect();
            m.insert("signals".into(), Value::Object(signals));
        }
        if !self.levels.is_empty() {
            let levels: Vec<Value> = self
                .levels
                .iter()
                .take(5)
                .map(|(name, max, hold)| {
                    let mut l = Map::new();
                    l.insert("name".into(), json!(pick(IDS, *name)));
                    if let Some(x) = max {
                        l.insert("max".into(), json!(x));
                    }
                    if let Some(h) = hold {
                        l.insert("for".into(), json!(h % 4));
                    }
                    Value::Object(l)
                })
                .collect();
            m.insert("levels".into(), Value::Array(levels));
        }
        for (key, steps) in [("steps", &self.steps), ("on_failure", &self.on_failure)] {
            if !steps.is_empty() {
                let map: Map<String, Value> = steps.iter().take(10).map(|s| (pick(IDS, s.id).to_string(), s.json())).collect();
                m.insert(key.into(), Value::Object(map));
            }
        }
        if !self.outputs.is_empty() {
            m.insert("outputs".into(), named(&self.outputs, Val::json));
        }
        Value::Object(m)
    }
}

libfuzzer_sys::fuzz_target!(|doc: Doc| {
    let text = serde_json::to_string_pretty(&doc.json()).expect("JSON serializes");
    check::load_and_check(&text);
});
