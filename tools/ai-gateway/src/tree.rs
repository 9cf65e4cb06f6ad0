//! A JSON-like document tree that remembers where every value is in its source text, so a
//! field path (`routes[0].targets[1].weight`) leads back to a line and a byte range: the
//! first for error messages, the second for in-place edits that keep everything else of the
//! file as it was. Built by [`crate::json`] and [`crate::yaml`].

use serde_json::{Map, Number};

/// A value and the byte range `start..end` of its text in the source it was parsed from.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub start: usize,
    pub end: usize,
    pub value: Value,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Number(Number),
    /// A string; `scalar` says how it was written, which decides whether it can be edited in
    /// place (see [`Scalar`]).
    String(String, Scalar),
    Array(Vec<Node>),
    /// Members in source order (duplicates are refused by the parsers).
    Object(Vec<Member>),
}

/// How a string was written in the source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scalar {
    /// A JSON string (with its quotes in the span).
    Json,
    /// YAML plain (unquoted) text.
    Plain,
    /// YAML `'…'` or `"…"`.
    Quoted,
    /// YAML `|` block: the value is the source lines minus their indentation.
    Literal,
    /// YAML `>` block.
    Folded,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    pub key: String,
    /// Byte offset of the key's text.
    pub key_start: usize,
    pub node: Node,
}

impl Node {
    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.value {
            Value::Object(members) => members.iter().find(|m| m.key == key).map(|m| &m.node),
            _ => None,
        }
    }

    pub fn members(&self) -> &[Member] {
        match &self.value {
            Value::Object(members) => members,
            _ => &[],
        }
    }

    pub fn items(&self) -> &[Node] {
        match &self.value {
            Value::Array(items) => items,
            _ => &[],
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::String(s, _) => Some(s),
            _ => None,
        }
    }

    pub fn is_object(&self) -> bool {
        matches!(self.value, Value::Object(_))
    }

    /// The plain JSON value (what Envoy, Istio and the filter see).
    pub fn to_json(&self) -> serde_json::Value {
        match &self.value {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Number(n) => serde_json::Value::Number(n.clone()),
            Value::String(s, _) => serde_json::Value::String(s.clone()),
            Value::Array(items) => {
                serde_json::Value::Array(items.iter().map(Node::to_json).collect())
            }
            Value::Object(members) => {
                let mut map = Map::new();
                for m in members {
                    map.insert(m.key.clone(), m.node.to_json());
                }
                serde_json::Value::Object(map)
            }
        }
    }

    /// The node at a config-compiler path (`models[1].version`, `prices.gpt-4.1.input`,
    /// `routes[0].targets`; empty = this node). Object keys may contain dots, so at each
    /// object the longest key that matches is taken. Returns the deepest node reached: an
    /// error about a missing field points at the object that lacks it.
    pub fn resolve(&self, path: &str) -> &Node {
        let mut node = self;
        let mut rest = path;
        loop {
            rest = rest.strip_prefix('.').unwrap_or(rest);
            if rest.is_empty() {
                return node;
            }
            if let Some(after) = rest.strip_prefix('[') {
                let Some(close) = after.find(']') else {
                    return node;
                };
                let Ok(i) = after[..close].parse::<usize>() else {
                    return node;
                };
                match node.items().get(i) {
                    Some(n) => {
                        node = n;
                        rest = &after[close + 1..];
                    }
                    None => return node,
                }
                continue;
            }
            let best = node
                .members()
                .iter()
                .filter(|m| {
                    rest.starts_with(m.key.as_str())
                        && matches!(rest.as_bytes().get(m.key.len()), None | Some(b'.' | b'['))
                })
                .max_by_key(|m| m.key.len());
            match best {
                Some(m) => {
                    node = &m.node;
                    rest = &rest[m.key.len()..];
                }
                None => return node,
            }
        }
    }
}

/// 1-based line number of a byte offset in `text`.
pub fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// Byte offset of 1-based (line, column) in `text` (column counted in characters), as
/// serde_json reports positions.
pub fn offset_of(text: &str, line: usize, column: usize) -> usize {
    let mut off = 0;
    for (i, l) in text.split_inclusive('\n').enumerate() {
        if i + 1 == line {
            let col = column.saturating_sub(1);
            return off + l.char_indices().nth(col).map(|(b, _)| b).unwrap_or(l.len());
        }
        off += l.len();
    }
    text.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_takes_the_longest_key_so_dotted_model_names_work() {
        let text = r#"{"prices": {"gpt-4.1": {"input": 2}, "gpt-4": {"input": 1}}}"#;
        let root = crate::json::parse(text).unwrap();
        let n = root.resolve("prices.gpt-4.1.input");
        assert_eq!(&text[n.start..n.end], "2");
        let n = root.resolve("prices.gpt-4.input");
        assert_eq!(&text[n.start..n.end], "1");
    }

    #[test]
    fn resolve_stops_at_the_deepest_existing_node() {
        let text = r#"{"models": [{"name": "a"}]}"#;
        let root = crate::json::parse(text).unwrap();
        let n = root.resolve("models[0].version");
        assert_eq!(&text[n.start..n.end], r#"{"name": "a"}"#);
        let n = root.resolve("models[3]");
        assert!(text[n.start..n.end].starts_with('['));
    }

    #[test]
    fn positions() {
        let text = "ab\ncdé\nf";
        assert_eq!(line_of(text, 0), 1);
        assert_eq!(line_of(text, 3), 2);
        assert_eq!(offset_of(text, 2, 3), 5);
        assert_eq!(offset_of(text, 3, 1), 8);
    }
}
