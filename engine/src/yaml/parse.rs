//! YAML text → [`Node`] tree, with the YAML 1.2 core schema, anchors and merge keys.

use std::collections::HashMap;

use saphyr_parser::{Event, Marker, Parser, ScalarStyle, Span as YSpan, Tag};

use super::node::{Key, Node, NodeKind, Span};

/// Nesting deeper than this is refused (no runbook needs it; it keeps recursion bounded).
const MAX_DEPTH: usize = 64;
/// Nodes created by alias expansion beyond this are refused ("billion laughs").
const MAX_NODES: usize = 2_000_000;

/// Why a document could not be read.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ParseError {
    pub(crate) message: String,
    pub(crate) span: Span,
    pub(crate) help: Option<String>,
}

fn span_of(s: &YSpan) -> Span {
    let len = if s.end.line() == s.start.line() { s.end.col().saturating_sub(s.start.col()) } else { 1 };
    Span { line: s.start.line(), col: s.start.col() + 1, len: len.max(1) }
}

fn point(m: &Marker) -> Span {
    Span { line: m.line(), col: m.col() + 1, len: 1 }
}

enum Frame {
    Seq { items: Vec<Node>, span: Span, anchor: usize },
    Map { entries: Vec<(Key, Node)>, index: HashMap<String, usize>, pending_key: Option<Node>, span: Span, anchor: usize },
}

/// Parses exactly one YAML document.
pub(crate) fn parse(src: &str) -> Result<Node, ParseError> {
    let mut parser = Parser::new_from_str(src);
    let mut stack: Vec<Frame> = Vec::new();
    let mut anchors: HashMap<usize, Node> = HashMap::new();
    let mut root: Option<Node> = None;
    let mut docs = 0usize;
    let mut created = 0usize;

    while let Some(ev) = parser.next_event() {
        let (event, yspan) = ev.map_err(|e| ParseError {
            message: format!("this is not valid YAML: {}", e.info()),
            span: point(e.marker()),
            help: Some("check the indentation and quoting around this position".into()),
        })?;
        let span = span_of(&yspan);
        let complete: Option<(Node, usize)> = match event {
            Event::StreamStart | Event::StreamEnd | Event::Nothing | Event::DocumentEnd => None,
            Event::DocumentStart(_) => {
                docs += 1;
                if docs > 1 {
                    return Err(ParseError {
                        message: "a runbook file holds one YAML document, this is a second one".into(),
                        span,
                        help: Some("put each runbook in its own file, or remove this `---`".into()),
                    });
                }
                None
            }
            Event::Alias(id) => {
                let node = anchors.get(&id).cloned().ok_or_else(|| ParseError {
                    message: "this alias refers to an anchor that is not defined before it".into(),
                    span,
                    help: None,
                })?;
                created += count(&node);
                if created > MAX_NODES {
                    return Err(ParseError {
                        message: "aliases expand to too many values".into(),
                        span,
                        help: Some("a runbook cannot expand to more than 2,000,000 values".into()),
                    });
                }
                Some((Node { span, ..node }, 0))
            }
            Event::Scalar(value, style, anchor, tag) => {
                created += 1;
                Some((Node { kind: scalar(&value, style, tag.as_deref(), span)?, span }, anchor))
            }
            Event::SequenceStart(anchor, tag) => {
                reject_tag(tag.as_deref(), "seq", span)?;
                if stack.len() >= MAX_DEPTH {
                    return Err(too_deep(span));
                }
                stack.push(Frame::Seq { items: Vec::new(), span, anchor });
                None
            }
            Event::MappingStart(anchor, tag) => {
                reject_tag(tag.as_deref(), "map", span)?;
                if stack.len() >= MAX_DEPTH {
                    return Err(too_deep(span));
                }
                stack.push(Frame::Map { entries: Vec::new(), index: HashMap::new(), pending_key: None, span, anchor });
                None
            }
            Event::SequenceEnd => match stack.pop() {
                Some(Frame::Seq { items, span, anchor }) => {
                    created += 1;
                    Some((Node { kind: NodeKind::Seq(items), span }, anchor))
                }
                _ => unreachable!("the YAML parser balances sequences"),
            },
            Event::MappingEnd => match stack.pop() {
                Some(Frame::Map { entries, span, anchor, .. }) => {
                    created += 1;
                    Some((Node { kind: NodeKind::Map(entries), span }, anchor))
                }
                _ => unreachable!("the YAML parser balances mappings"),
            },
        };
        let Some((node, anchor)) = complete else { continue };
        if anchor != 0 {
            anchors.insert(anchor, node.clone());
        }
        match stack.last_mut() {
            None => root = Some(node),
            Some(Frame::Seq { items, .. }) => items.push(node),
            Some(Frame::Map { entries, index, pending_key, .. }) => match pending_key.take() {
                None => *pending_key = Some(node),
                Some(key) => insert(entries, index, key, node)?,
            },
        }
    }

    root.filter(|n| n.kind != NodeKind::Null).ok_or_else(|| ParseError {
        message: "the file is empty".into(),
        span: Span { line: 1, col: 1, len: 1 },
        help: Some("a runbook needs at least `version: 1`, a `name` and `steps`".into()),
    })
}

fn too_deep(span: Span) -> ParseError {
    ParseError {
        message: format!("values are nested more than {MAX_DEPTH} levels deep"),
        span,
        help: Some("flatten this structure".into()),
    }
}

fn count(node: &Node) -> usize {
    match &node.kind {
        NodeKind::Seq(items) => 1 + items.iter().map(count).sum::<usize>(),
        NodeKind::Map(entries) => 1 + entries.iter().map(|(_, v)| 1 + count(v)).sum::<usize>(),
        _ => 1,
    }
}

/// Adds a key to a mapping; `index` maps names to positions (mappings can have 10,000 keys).
fn insert(entries: &mut Vec<(Key, Node)>, index: &mut HashMap<String, usize>, key: Node, value: Node) -> Result<(), ParseError> {
    let name = match key.kind {
        NodeKind::Str(s) => s,
        NodeKind::Int(i) => i.to_string(),
        NodeKind::Bool(b) => b.to_string(),
        NodeKind::Float(f) => f.to_string(),
        NodeKind::Null => "null".to_string(),
        NodeKind::Seq(_) | NodeKind::Map(_) => {
            return Err(ParseError {
                message: "a mapping key must be a plain value, not a list or mapping".into(),
                span: key.span,
                help: None,
            });
        }
    };
    if name == "<<" {
        return merge(entries, index, value, key.span);
    }
    if let Some(&pos) = index.get(&name) {
        let first = &entries[pos].0;
        if first.merged {
            entries[pos] = (Key { name, span: key.span, merged: false }, value);
            return Ok(());
        }
        return Err(ParseError {
            message: format!("the key `{name}` appears twice in this mapping (first at line {})", first.span.line),
            span: key.span,
            help: Some("remove one of them; YAML would silently keep only the last".into()),
        });
    }
    index.insert(name.clone(), entries.len());
    entries.push((Key { name, span: key.span, merged: false }, value));
    Ok(())
}

/// `<<: *base` (or a list of them) copies keys the mapping does not set itself.
fn merge(entries: &mut Vec<(Key, Node)>, index: &mut HashMap<String, usize>, value: Node, span: Span) -> Result<(), ParseError> {
    let sources = match value.kind {
        NodeKind::Map(_) => vec![value],
        NodeKind::Seq(items) if items.iter().all(|n| matches!(n.kind, NodeKind::Map(_))) => items,
        _ => {
            return Err(ParseError {
                message: "a merge key `<<` takes a mapping or a list of mappings".into(),
                span,
                help: Some("write `<<: *anchor` where the anchor names a mapping".into()),
            });
        }
    };
    for source in sources {
        if let NodeKind::Map(src) = source.kind {
            for (k, v) in src {
                if !index.contains_key(&k.name) {
                    index.insert(k.name.clone(), entries.len());
                    entries.push((Key { merged: true, ..k }, v));
                }
            }
        }
    }
    Ok(())
}

fn reject_tag(tag: Option<&Tag>, allowed: &str, span: Span) -> Result<(), ParseError> {
    match tag {
        None => Ok(()),
        Some(t) if t.is_yaml_core_schema() && t.suffix == allowed => Ok(()),
        Some(t) => Err(ParseError {
            message: format!("the tag `{t}` is not supported here"),
            span,
            help: Some("remove the tag; runbooks use plain YAML values".into()),
        }),
    }
}

fn scalar(v: &str, style: ScalarStyle, tag: Option<&Tag>, span: Span) -> Result<NodeKind, ParseError> {
    if let Some(t) = tag {
        if !t.is_yaml_core_schema() {
            return Err(ParseError {
                message: format!("the tag `{t}` is not supported"),
                span,
                help: Some("remove the tag; runbooks use plain YAML values".into()),
            });
        }
        let bad = |what: &str| ParseError { message: format!("`{v}` is not {what}"), span, help: None };
        return match t.suffix.as_str() {
            "str" => Ok(NodeKind::Str(v.to_string())),
            "null" => Ok(NodeKind::Null),
            "bool" => match resolve_plain(v) {
                NodeKind::Bool(b) => Ok(NodeKind::Bool(b)),
                _ => Err(bad("a boolean")),
            },
            "int" => match resolve_plain(v) {
                NodeKind::Int(i) => Ok(NodeKind::Int(i)),
                _ => Err(bad("an integer")),
            },
            "float" => match resolve_plain(v) {
                NodeKind::Int(i) => Ok(NodeKind::Float(i as f64)),
                NodeKind::Float(f) => Ok(NodeKind::Float(f)),
                _ => Err(bad("a number")),
            },
            other => Err(ParseError {
                message: format!("the tag `!!{other}` is not supported"),
                span,
                help: Some("remove the tag; runbooks use plain YAML values".into()),
            }),
        };
    }
    Ok(match style {
        ScalarStyle::Plain => resolve_plain(v),
        _ => NodeKind::Str(v.to_string()),
    })
}

/// The YAML 1.2 core schema: `yes`/`no`/`on`/`off` stay strings.
fn resolve_plain(v: &str) -> NodeKind {
    match v {
        "" | "~" | "null" | "Null" | "NULL" => return NodeKind::Null,
        "true" | "True" | "TRUE" => return NodeKind::Bool(true),
        "false" | "False" | "FALSE" => return NodeKind::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => return NodeKind::Float(f64::INFINITY),
        "-.inf" | "-.Inf" | "-.INF" => return NodeKind::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return NodeKind::Float(f64::NAN),
        _ => {}
    }
    if let Some(hex) = v.strip_prefix("0x") {
        if let Ok(i) = i64::from_str_radix(hex, 16) {
            return NodeKind::Int(i);
        }
    }
    if let Some(oct) = v.strip_prefix("0o") {
        if let Ok(i) = i64::from_str_radix(oct, 8) {
            return NodeKind::Int(i);
        }
    }
    let digits = v.strip_prefix(['-', '+']).unwrap_or(v);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        if let Ok(i) = v.parse::<i64>() {
            return NodeKind::Int(i);
        }
    }
    if is_float(digits) {
        if let Ok(f) = v.parse::<f64>() {
            return NodeKind::Float(f);
        }
    }
    NodeKind::Str(v.to_string())
}

/// `[0-9]*(\.[0-9]*)?([eE][-+]?[0-9]+)?` with at least one digit in the mantissa.
fn is_float(s: &str) -> bool {
    let (mantissa, exp) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = |x: &str| x.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = digits(int) && digits(frac) && (int.len() + frac.len()) > 0;
    let exp_ok = exp.is_none_or(|e| {
        let e = e.strip_prefix(['-', '+']).unwrap_or(e);
        !e.is_empty() && digits(e)
    });
    mantissa_ok && exp_ok && (mantissa.contains('.') || exp.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(src: &str) -> NodeKind {
        parse(src).unwrap().kind
    }

    #[test]
    fn core_schema_scalars() {
        let n = parse("a: yes\nb: 1\nc: 1.5\nd: true\ne: ~\nf: '1'\ng: 1e3\nh: 0x1f\n").unwrap();
        assert_eq!(n.get("a").unwrap().kind, NodeKind::Str("yes".into()));
        assert_eq!(n.get("b").unwrap().kind, NodeKind::Int(1));
        assert_eq!(n.get("c").unwrap().kind, NodeKind::Float(1.5));
        assert_eq!(n.get("d").unwrap().kind, NodeKind::Bool(true));
        assert_eq!(n.get("e").unwrap().kind, NodeKind::Null);
        assert_eq!(n.get("f").unwrap().kind, NodeKind::Str("1".into()));
        assert_eq!(n.get("g").unwrap().kind, NodeKind::Float(1000.0));
        assert_eq!(n.get("h").unwrap().kind, NodeKind::Int(31));
    }

    #[test]
    fn spans_are_one_based() {
        let n = parse("a:\n  b: [1, two]\n").unwrap();
        let b = n.get("a").unwrap().get("b").unwrap();
        assert_eq!((b.span.line, b.span.col), (2, 6));
        if let NodeKind::Seq(items) = &b.kind {
            assert_eq!((items[1].span.line, items[1].span.col, items[1].span.len), (2, 10, 3));
        } else {
            panic!("not a seq");
        }
    }

    #[test]
    fn duplicate_keys_are_refused() {
        let e = parse("a: 1\nb: 2\na: 3\n").unwrap_err();
        assert!(e.message.contains("appears twice"), "{}", e.message);
        assert_eq!(e.span.line, 3);
    }

    #[test]
    fn anchors_and_merge_keys() {
        let n = parse("base: &b {x: 1, y: 2}\nderived:\n  <<: *b\n  y: 3\n").unwrap();
        let d = n.get("derived").unwrap();
        assert_eq!(d.get("x").unwrap().kind, NodeKind::Int(1));
        assert_eq!(d.get("y").unwrap().kind, NodeKind::Int(3));
    }

    #[test]
    fn alias_bombs_are_bounded() {
        let mut src = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            let p = i - 1;
            src.push_str(&format!("a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"));
        }
        assert!(parse(&src).unwrap_err().message.contains("too many"));
    }

    #[test]
    fn empty_and_multi_document_files() {
        assert!(parse("").unwrap_err().message.contains("empty"));
        assert!(parse("# only a comment\n").unwrap_err().message.contains("empty"));
        assert!(parse("a: 1\n---\nb: 2\n").unwrap_err().message.contains("second"));
        assert_eq!(kind("[1]"), NodeKind::Seq(vec![Node { kind: NodeKind::Int(1), span: Span { line: 1, col: 2, len: 1 } }]));
    }

    #[test]
    fn deep_nesting_is_refused() {
        let src = "[".repeat(200) + &"]".repeat(200);
        assert!(parse(&src).unwrap_err().message.contains("nested"));
    }
}
