//! Reads the top-level sections of a runbook one by one, so that one bad step does not hide
//! the errors of the others.

use std::cell::RefCell;
use std::collections::HashSet;

use indexmap::IndexMap;
use serde::de::DeserializeOwned;

use super::raw::{RawRunbook, TOP_LEVEL_KEYS};
use crate::diag::{Code, Diagnostic};
use crate::suggest;
use crate::yaml::de::{DeError, DeErrorKind, from_node};
use crate::yaml::{Node, NodeKind, Path};

/// What the sections reader produced: the raw runbook, and the ids of steps that did not
/// parse (so later checks do not report them as missing).
pub(crate) struct Sections {
    pub(crate) raw: RawRunbook,
    pub(crate) broken: HashSet<String>,
    /// Params with a faulty field: already reported, so their defaults are not checked
    /// against a type that was never read.
    pub(crate) broken_params: HashSet<String>,
    /// Invariants with a faulty field: already reported; the runbook does not compile.
    pub(crate) broken_invariants: HashSet<String>,
}

struct Reader<'a> {
    root: &'a Node,
    unknown: RefCell<Vec<DeError>>,
    diags: Vec<Diagnostic>,
}

pub(crate) fn diag_from(e: DeError) -> Diagnostic {
    let code = match e.kind {
        DeErrorKind::Type => Code::WrongType,
        DeErrorKind::Missing => Code::MissingField,
        DeErrorKind::UnknownField => Code::UnknownField,
        DeErrorKind::UnknownVariant => Code::InvalidValue,
        DeErrorKind::Invalid if e.message.contains("unit") || e.message.contains("duration") || e.message.contains("longer than") => {
            Code::Duration
        }
        DeErrorKind::Invalid => Code::InvalidValue,
    };
    let mut d = Diagnostic::new(code, e.path.unwrap_or_default(), e.message);
    d.help = e.help;
    if e.kind == DeErrorKind::UnknownField {
        d.on_key = true;
    }
    d
}

impl Reader<'_> {
    /// Reads one entry. On an error inside a field, the field is dropped and the entry read
    /// again, so that every faulty field of the entry is reported, and the rest of the entry
    /// is still checked (the entry stays marked broken).
    fn entry<T: DeserializeOwned>(&mut self, node: &Node, path: &Path, mut mark_broken: impl FnMut()) -> Option<T> {
        // The common case reads the entry in place; a copy is made only to drop bad fields.
        match from_node(node, path, &self.unknown) {
            Ok(t) => return Some(t),
            Err(e) if e.path.as_ref().is_none_or(|p| p.segs().len() <= path.segs().len()) => {
                mark_broken();
                self.diags.push(diag_from(e));
                return None;
            }
            Err(_) => {}
        }
        let mut node = node.clone();
        let mut dropped: Vec<String> = Vec::new();
        for _ in 0..32 {
            match from_node(&node, path, &self.unknown) {
                Ok(t) => return Some(t),
                Err(e) => {
                    mark_broken();
                    let field = e.path.as_ref().and_then(|p| p.segs().get(path.segs().len()).cloned());
                    let missing_dropped = e.kind == DeErrorKind::Missing && dropped.iter().any(|d| e.message.contains(&format!("`{d}`")));
                    if !missing_dropped {
                        self.diags.push(diag_from(e));
                    }
                    match (field, &mut node.kind) {
                        (Some(crate::yaml::Seg::Key(f)), NodeKind::Map(entries)) if !missing_dropped => {
                            entries.retain(|(k, _)| k.name != f);
                            dropped.push(f);
                        }
                        _ => return None,
                    }
                }
            }
        }
        None
    }

    fn one<T: DeserializeOwned>(&mut self, key: &str) -> Option<T> {
        let node = self.root.get(key)?;
        match from_node(node, &Path::root().key(key), &self.unknown) {
            Ok(v) => Some(v),
            Err(e) => {
                self.diags.push(diag_from(e));
                None
            }
        }
    }

    /// A mapping section read entry by entry; returns the entries that parsed and the
    /// names of those that did not.
    fn map_of<T: DeserializeOwned>(&mut self, key: &str, broken: &mut HashSet<String>) -> IndexMap<String, T> {
        let mut out = IndexMap::new();
        let Some(node) = self.root.get(key) else { return out };
        let path = Path::root().key(key);
        match &node.kind {
            NodeKind::Map(entries) => {
                for (k, v) in entries {
                    let entry_path = path.key(&k.name);
                    if let Some(t) = self.entry(v, &entry_path, || {
                        broken.insert(k.name.clone());
                    }) {
                        out.insert(k.name.clone(), t);
                    }
                }
            }
            NodeKind::Null => {}
            _ => self.diags.push(
                Diagnostic::new(Code::WrongType, path, format!("`{key}` must be a mapping keyed by name, found {}", node.describe()))
                    .help(format!("write `{key}:` followed by indented `name: …` entries")),
            ),
        }
        out
    }
}

/// Reads every section. Returns `None` when the document cannot be a runbook at all.
pub(crate) fn read(root: &Node, diags: &mut Vec<Diagnostic>) -> Option<Sections> {
    if !matches!(root.kind, NodeKind::Map(_)) {
        diags.push(
            Diagnostic::new(Code::WrongType, Path::root(), format!("a runbook is a mapping of sections, found {}", root.describe()))
                .help("start the file with `version: 1` and `name: …`"),
        );
        return None;
    }
    let mut r = Reader { root, unknown: RefCell::new(Vec::new()), diags: Vec::new() };
    for (k, _) in root.entries() {
        if !TOP_LEVEL_KEYS.contains(&k.name.as_str()) {
            r.diags.push(
                Diagnostic::new(Code::UnknownField, Path::root().key(&k.name), format!("unknown section `{}`", k.name))
                    .help(suggest::hint(&k.name, TOP_LEVEL_KEYS.iter().copied()))
                    .on_key(),
            );
        }
    }
    for key in ["version", "name"] {
        if root.get(key).is_none() {
            r.diags.push(
                Diagnostic::new(Code::MissingField, Path::root(), format!("the required field `{key}` is missing"))
                    .help(if key == "version" { "add `version: 1` at the top".to_string() } else { "add `name: my-runbook`".to_string() }),
            );
        }
    }
    // Judged on what was written, so a section or step that failed to read is not also
    // reported as missing.
    let written = |key: &str| {
        root.get(key).is_some_and(|n| match &n.kind {
            NodeKind::Null => false,
            NodeKind::Map(entries) => !entries.is_empty(),
            _ => true,
        })
    };
    if !written("steps") && !written("signals") {
        r.diags.push(
            Diagnostic::new(Code::MissingField, Path::root(), "the runbook has no `steps` and no `signals`: there is nothing to run")
                .help("add a `steps:` section"),
        );
    }
    let mut broken = HashSet::new();
    let mut broken_params = HashSet::new();
    let mut ignored = HashSet::new();
    let mut broken_invariants = HashSet::new();
    let version = r.one::<u32>("version");
    let name = r.one::<String>("name");
    let raw = RawRunbook {
        version: version.unwrap_or(1),
        name: name.unwrap_or_default(),
        description: r.one("description"),
        params: r.map_of("params", &mut broken_params),
        vars: r.map_of("vars", &mut ignored),
        secrets: r.map_of("secrets", &mut ignored),
        lock: r.one("lock"),
        max_parallel: r.one("max_parallel"),
        defaults: r.one("defaults"),
        signals: r.map_of("signals", &mut broken),
        levels: r.one("levels").unwrap_or_default(),
        steps: r.map_of("steps", &mut broken),
        on_failure: r.map_of("on_failure", &mut broken),
        outputs: r.map_of("outputs", &mut ignored),
        invariants: r.map_of("invariants", &mut broken_invariants),
        decision_ttl: r.one("decision_ttl"),
        on_abort: r.map_of("on_abort", &mut broken),
        drill: r.one("drill"),
    };
    let mut unknown = r.unknown.into_inner();
    let mut all = r.diags;
    all.extend(unknown.drain(..).map(diag_from));
    diags.extend(all);
    Some(Sections { raw, broken, broken_params, broken_invariants })
}
