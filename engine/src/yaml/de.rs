//! serde over [`Node`]: typed values out of the spanned tree.
//!
//! Type errors carry the path and span of the value at fault. Keys a struct does not know
//! are not errors here: they are collected (with a "did you mean") and skipped, so one run
//! reports every unknown key of a file at once.

use std::cell::RefCell;
use std::fmt;

use serde::de::{self, DeserializeOwned, DeserializeSeed, IntoDeserializer, MapAccess, SeqAccess, Visitor};

use super::node::{Key, Node, NodeKind, Span};
use super::path::{Path, Seg};

/// What went wrong reading one value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DeError {
    pub(crate) kind: DeErrorKind,
    pub(crate) message: String,
    pub(crate) help: Option<String>,
    pub(crate) path: Option<Path>,
    pub(crate) span: Option<Span>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DeErrorKind {
    Type,
    Missing,
    UnknownField,
    UnknownVariant,
    Invalid,
}

impl DeError {
    fn new(kind: DeErrorKind, message: String) -> Self {
        DeError { kind, message, help: None, path: None, span: None }
    }
    fn at(mut self, span: Span, chain: Option<&Chain<'_>>) -> Self {
        if self.path.is_none() {
            self.path = Some(materialize(chain));
            self.span = Some(span);
        }
        self
    }
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DeError {}

fn plain_expected(exp: &dyn de::Expected) -> String {
    let s = exp.to_string();
    match s.as_str() {
        "u8" | "u16" | "u32" | "u64" | "usize" => "a whole number (0 or more)".into(),
        "i8" | "i16" | "i32" | "i64" | "isize" => "an integer".into(),
        "f32" | "f64" => "a number".into(),
        "a sequence" => "a list".into(),
        "a map" => "a mapping".into(),
        "a string" | "a boolean" => s,
        _ if s.starts_with("struct ") => "a mapping".into(),
        _ if s.starts_with("a sequence") => "a list".into(),
        _ if s.starts_with("a map") => "a mapping".into(),
        _ => s,
    }
}

fn plain_unexpected(u: &de::Unexpected<'_>) -> String {
    match u {
        de::Unexpected::Map => "a mapping".into(),
        de::Unexpected::Seq => "a list".into(),
        de::Unexpected::Unit => "nothing (null)".into(),
        de::Unexpected::Str(s) => format!("the string \"{s}\""),
        de::Unexpected::Signed(i) => format!("the number {i}"),
        de::Unexpected::Unsigned(i) => format!("the number {i}"),
        de::Unexpected::Float(x) => format!("the number {x}"),
        de::Unexpected::Bool(b) => format!("the boolean {b}"),
        other => other.to_string(),
    }
}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DeError::new(DeErrorKind::Invalid, msg.to_string())
    }
    fn invalid_type(unexp: de::Unexpected<'_>, exp: &dyn de::Expected) -> Self {
        DeError::new(DeErrorKind::Type, format!("expected {}, found {}", plain_expected(exp), plain_unexpected(&unexp)))
    }
    fn invalid_value(unexp: de::Unexpected<'_>, exp: &dyn de::Expected) -> Self {
        DeError::new(DeErrorKind::Type, format!("expected {}, found {}", plain_expected(exp), plain_unexpected(&unexp)))
    }
    fn unknown_variant(variant: &str, expected: &'static [&'static str]) -> Self {
        let mut e = DeError::new(DeErrorKind::UnknownVariant, format!("`{variant}` is not allowed here"));
        e.help = Some(crate::suggest::hint(variant, expected.iter().copied()));
        e
    }
    fn missing_field(field: &'static str) -> Self {
        let mut e = DeError::new(DeErrorKind::Missing, format!("the required field `{field}` is missing"));
        e.help = Some(format!("add `{field}:` here"));
        e
    }
}

/// A borrowed path from the root to the value being read; made owned only for an error.
#[derive(Clone, Copy)]
pub(crate) struct Chain<'c> {
    parent: Option<&'c Chain<'c>>,
    seg: SegRef<'c>,
}

#[derive(Clone, Copy)]
enum SegRef<'c> {
    Base(&'c Path),
    Key(&'c str),
    Index(usize),
}

fn materialize(chain: Option<&Chain<'_>>) -> Path {
    let mut segs = Vec::new();
    let mut cur = chain;
    let mut base = Path::root();
    while let Some(c) = cur {
        match c.seg {
            SegRef::Base(p) => base = p.clone(),
            SegRef::Key(k) => segs.push(Seg::Key(k.to_string())),
            SegRef::Index(i) => segs.push(Seg::Index(i)),
        }
        cur = c.parent;
    }
    segs.reverse();
    let mut all = base.segs().to_vec();
    all.extend(segs);
    Path::from_segs(all)
}

/// Reads a `T` from `node`, which stands at `path`. Unknown keys are appended to `unknown`.
pub(crate) fn from_node<T: DeserializeOwned>(node: &Node, path: &Path, unknown: &RefCell<Vec<DeError>>) -> Result<T, DeError> {
    let chain = Chain { parent: None, seg: SegRef::Base(path) };
    T::deserialize(De { node, chain: Some(&chain), unknown })
}

struct De<'n, 'c> {
    node: &'n Node,
    chain: Option<&'c Chain<'c>>,
    unknown: &'n RefCell<Vec<DeError>>,
}

impl<'de> de::Deserializer<'de> for De<'_, '_> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        let span = self.node.span;
        let chain = self.chain;
        let r = match &self.node.kind {
            NodeKind::Null => v.visit_unit(),
            NodeKind::Bool(b) => v.visit_bool(*b),
            NodeKind::Int(i) => v.visit_i64(*i),
            NodeKind::Float(f) => v.visit_f64(*f),
            NodeKind::Str(s) => v.visit_str(s),
            NodeKind::Seq(items) => v.visit_seq(Seq { items, i: 0, chain, unknown: self.unknown }),
            NodeKind::Map(entries) => v.visit_map(Map { entries, i: 0, fields: None, chain, unknown: self.unknown, value: None }),
        };
        r.map_err(|e| e.at(span, chain))
    }

    fn deserialize_option<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        match self.node.kind {
            NodeKind::Null => v.visit_none(),
            _ => v.visit_some(self),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(self, _name: &'static str, v: V) -> Result<V::Value, DeError> {
        v.visit_newtype_struct(self)
    }

    fn deserialize_struct<V: Visitor<'de>>(self, _name: &'static str, fields: &'static [&'static str], v: V) -> Result<V::Value, DeError> {
        let span = self.node.span;
        let chain = self.chain;
        match &self.node.kind {
            NodeKind::Map(entries) => v
                .visit_map(Map { entries, i: 0, fields: Some(fields), chain, unknown: self.unknown, value: None })
                .map_err(|e| e.at(span, chain)),
            _ => Err(DeError::new(DeErrorKind::Type, format!("expected a mapping, found {}", self.node.describe())).at(span, chain)),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(self, _name: &'static str, variants: &'static [&'static str], v: V) -> Result<V::Value, DeError> {
        let span = self.node.span;
        let chain = self.chain;
        let r = match &self.node.kind {
            NodeKind::Str(s) => v.visit_enum(s.as_str().into_deserializer()),
            NodeKind::Map(entries) if entries.len() == 1 => {
                v.visit_enum(Enum { key: &entries[0].0, value: &entries[0].1, chain, unknown: self.unknown })
            }
            _ => {
                let mut e = DeError::new(DeErrorKind::Type, format!("expected one of the names below, found {}", self.node.describe()));
                e.help = Some(format!("expected one of {}", variants.iter().map(|v| format!("`{v}`")).collect::<Vec<_>>().join(", ")));
                Err(e)
            }
        };
        r.map_err(|e| e.at(span, chain))
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        v.visit_unit()
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct seq tuple tuple_struct map identifier
    }
}

struct Seq<'n, 'c> {
    items: &'n [Node],
    i: usize,
    chain: Option<&'c Chain<'c>>,
    unknown: &'n RefCell<Vec<DeError>>,
}

impl<'de> SeqAccess<'de> for Seq<'_, '_> {
    type Error = DeError;
    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>, DeError> {
        let Some(node) = self.items.get(self.i) else { return Ok(None) };
        let chain = Chain { parent: self.chain, seg: SegRef::Index(self.i) };
        self.i += 1;
        seed.deserialize(De { node, chain: Some(&chain), unknown: self.unknown }).map(Some)
    }
    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len() - self.i)
    }
}

struct Map<'n, 'c> {
    entries: &'n [(Key, Node)],
    i: usize,
    fields: Option<&'static [&'static str]>,
    chain: Option<&'c Chain<'c>>,
    unknown: &'n RefCell<Vec<DeError>>,
    value: Option<&'n (Key, Node)>,
}

impl<'de> MapAccess<'de> for Map<'_, '_> {
    type Error = DeError;
    fn next_key_seed<K: de::DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, DeError> {
        while let Some(entry) = self.entries.get(self.i) {
            self.i += 1;
            if let Some(fields) = self.fields {
                if !fields.contains(&entry.0.name.as_str()) {
                    let chain = Chain { parent: self.chain, seg: SegRef::Key(&entry.0.name) };
                    let mut e = DeError::new(DeErrorKind::UnknownField, format!("unknown field `{}`", entry.0.name));
                    e.help = Some(crate::suggest::hint(&entry.0.name, fields.iter().copied()));
                    self.unknown.borrow_mut().push(e.at(entry.0.span, Some(&chain)));
                    continue;
                }
            }
            self.value = Some(entry);
            return seed.deserialize(entry.0.name.as_str().into_deserializer()).map(Some);
        }
        Ok(None)
    }
    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        let (key, node) = self.value.take().expect("serde asks for a value after its key");
        let chain = Chain { parent: self.chain, seg: SegRef::Key(&key.name) };
        seed.deserialize(De { node, chain: Some(&chain), unknown: self.unknown })
    }
    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len() - self.i)
    }
}

struct Enum<'n, 'c> {
    key: &'n Key,
    value: &'n Node,
    chain: Option<&'c Chain<'c>>,
    unknown: &'n RefCell<Vec<DeError>>,
}

impl<'de, 'n, 'c> de::EnumAccess<'de> for Enum<'n, 'c> {
    type Error = DeError;
    type Variant = Variant<'n, 'c>;
    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, Self::Variant), DeError> {
        let v = seed.deserialize(self.key.name.as_str().into_deserializer())?;
        Ok((v, Variant { key: self.key, value: self.value, chain: self.chain, unknown: self.unknown }))
    }
}

struct Variant<'n, 'c> {
    key: &'n Key,
    value: &'n Node,
    chain: Option<&'c Chain<'c>>,
    unknown: &'n RefCell<Vec<DeError>>,
}

impl<'de> de::VariantAccess<'de> for Variant<'_, '_> {
    type Error = DeError;
    fn unit_variant(self) -> Result<(), DeError> {
        Err(DeError::new(DeErrorKind::Type, format!("`{}` takes no value", self.key.name)))
    }
    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, DeError> {
        let chain = Chain { parent: self.chain, seg: SegRef::Key(&self.key.name) };
        seed.deserialize(De { node: self.value, chain: Some(&chain), unknown: self.unknown })
    }
    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, v: V) -> Result<V::Value, DeError> {
        let chain = Chain { parent: self.chain, seg: SegRef::Key(&self.key.name) };
        de::Deserializer::deserialize_any(De { node: self.value, chain: Some(&chain), unknown: self.unknown }, v)
    }
    fn struct_variant<V: Visitor<'de>>(self, fields: &'static [&'static str], v: V) -> Result<V::Value, DeError> {
        let chain = Chain { parent: self.chain, seg: SegRef::Key(&self.key.name) };
        de::Deserializer::deserialize_struct(De { node: self.value, chain: Some(&chain), unknown: self.unknown }, "", fields, v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml::parse;

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Step {
        uses: String,
        #[serde(default)]
        needs: Vec<String>,
        attempts: Option<u32>,
    }

    #[test]
    fn unknown_fields_are_collected_with_a_suggestion() {
        let node = parse("uses: noop\nnedes: [a]\nwhat: 1\n").unwrap();
        let unknown = RefCell::new(Vec::new());
        let s: Step = from_node(&node, &Path::root().key("steps").key("x"), &unknown).unwrap();
        assert_eq!(s.uses, "noop");
        let u = unknown.into_inner();
        assert_eq!(u.len(), 2);
        assert_eq!(u[0].path.as_ref().unwrap().to_string(), "steps.x.nedes");
        assert_eq!(u[0].help.as_deref(), Some("did you mean `needs`?"));
        assert_eq!(u[0].span.unwrap().line, 2);
    }

    #[test]
    fn type_errors_point_at_the_value() {
        let node = parse("uses: noop\nneeds: [a, {b: 1}]\n").unwrap();
        let unknown = RefCell::new(Vec::new());
        let e = from_node::<Step>(&node, &Path::root(), &unknown).unwrap_err();
        assert_eq!(e.path.unwrap().to_string(), "needs[1]");
        assert_eq!(e.message, "expected a string, found a mapping");
        assert_eq!(e.span.unwrap().line, 2);

        let node = parse("uses: noop\nattempts: -1\n").unwrap();
        let e = from_node::<Step>(&node, &Path::root(), &unknown).unwrap_err();
        assert_eq!(e.path.unwrap().to_string(), "attempts");
        assert!(e.message.contains("whole number"), "{}", e.message);
    }

    #[test]
    fn missing_fields_name_the_mapping() {
        let node = parse("needs: []\n").unwrap();
        let unknown = RefCell::new(Vec::new());
        let e = from_node::<Step>(&node, &Path::root().key("steps").key("s"), &unknown).unwrap_err();
        assert_eq!(e.message, "the required field `uses` is missing");
        assert_eq!(e.path.unwrap().to_string(), "steps.s");
    }
}
