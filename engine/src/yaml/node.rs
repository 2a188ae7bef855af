use super::path::{Path, Seg};

/// A position in a source file: 1-based line and column (in characters), and a length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct Span {
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub col: usize,
    /// Length in characters on that line (at least 1 when drawn).
    pub len: usize,
}

/// One YAML value with the span it was read from.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// The value.
    pub kind: NodeKind,
    /// Where the value starts in the file.
    pub span: Span,
}

/// A YAML value, resolved with the YAML 1.2 core schema.
#[derive(Debug, Clone, PartialEq)]
pub enum NodeKind {
    /// `null`, `~` or nothing.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A string.
    Str(String),
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, in file order. Keys are strings.
    Map(Vec<(Key, Node)>),
}

/// A mapping key and where it stands.
#[derive(Debug, Clone, PartialEq)]
pub struct Key {
    /// The key's text.
    pub name: String,
    /// The key's span.
    pub span: Span,
    /// Whether it came from a merge key (`<<`), so an explicit key may override it.
    pub merged: bool,
}

impl Node {
    /// Looks a key up in a mapping node.
    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.kind {
            NodeKind::Map(entries) => entries.iter().find(|(k, _)| k.name == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The span of a key in a mapping node.
    pub fn key_span(&self, key: &str) -> Option<Span> {
        match &self.kind {
            NodeKind::Map(entries) => entries.iter().find(|(k, _)| k.name == key).map(|(k, _)| k.span),
            _ => None,
        }
    }

    /// The entries of a mapping node (empty for anything else).
    pub fn entries(&self) -> &[(Key, Node)] {
        match &self.kind {
            NodeKind::Map(entries) => entries,
            _ => &[],
        }
    }

    /// The closest span to `path`: the node itself, or the deepest ancestor that exists.
    /// With `key` set and a path ending in a key, the key's own span is preferred (for
    /// "unknown field" and "duplicate id" diagnostics).
    pub fn span_at(&self, path: &Path, prefer_key: bool) -> Span {
        let mut node = self;
        let segs = path.segs();
        for (i, seg) in segs.iter().enumerate() {
            let last = i + 1 == segs.len();
            match seg {
                Seg::Key(k) => {
                    if last && prefer_key {
                        if let Some(span) = node.key_span(k) {
                            return span;
                        }
                    }
                    match node.get(k) {
                        Some(child) => node = child,
                        None => return node.span,
                    }
                }
                Seg::Index(i) => match &node.kind {
                    NodeKind::Seq(items) if *i < items.len() => node = &items[*i],
                    _ => return node.span,
                },
            }
        }
        node.span
    }

    /// A short description of the node's type for messages ("a string", "a mapping").
    pub fn describe(&self) -> &'static str {
        match self.kind {
            NodeKind::Null => "null",
            NodeKind::Bool(_) => "a boolean",
            NodeKind::Int(_) => "an integer",
            NodeKind::Float(_) => "a number",
            NodeKind::Str(_) => "a string",
            NodeKind::Seq(_) => "a list",
            NodeKind::Map(_) => "a mapping",
        }
    }

    /// Converts the tree into JSON (keys in file order).
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value;
        match &self.kind {
            NodeKind::Null => Value::Null,
            NodeKind::Bool(b) => Value::Bool(*b),
            NodeKind::Int(i) => Value::from(*i),
            NodeKind::Float(f) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
            NodeKind::Str(s) => Value::String(s.clone()),
            NodeKind::Seq(items) => Value::Array(items.iter().map(Node::to_json).collect()),
            NodeKind::Map(entries) => Value::Object(entries.iter().map(|(k, v)| (k.name.clone(), v.to_json())).collect()),
        }
    }
}
