//! YAML 1.2 (core schema) → [`crate::tree::Node`] with byte spans, on top of
//! `saphyr-parser`'s event stream. Every document of a multi-document stream is returned.
//!
//! Resolution follows the YAML 1.2 core schema (what Envoy's and Kubernetes' loaders do for
//! the values that matter here): plain `10` is an integer, `1.5` a float, `true` a boolean,
//! `null`/`~`/empty a null, anything quoted a string. Duplicate keys are an error (the YAML
//! spec forbids them; loaders disagree on which one wins). Aliases are expanded.

use crate::tree::{Member, Node, Scalar, Value};
use saphyr_parser::{Event, Parser, ScalarStyle, Span, Tag};
use std::collections::HashMap;

/// Every document in `text`.
pub fn parse_all(text: &str) -> Result<Vec<Node>, String> {
    // saphyr's markers count characters; the tree records byte offsets.
    let byte_at: Vec<usize> = text
        .char_indices()
        .map(|(b, _)| b)
        .chain(std::iter::once(text.len()))
        .collect();
    let at = |m: saphyr_parser::Marker| byte_at.get(m.index()).copied().unwrap_or(text.len());

    let mut docs = Vec::new();
    let mut stack: Vec<Frame> = Vec::new();
    let mut anchors: HashMap<usize, Node> = HashMap::new();
    let mut root: Option<Node> = None;

    for item in Parser::new_from_str(text) {
        let (event, span): (Event, Span) = item.map_err(|e| e.to_string())?;
        let done: Option<(Node, usize)> = match event {
            Event::DocumentStart(_) => {
                root = None;
                None
            }
            Event::DocumentEnd => {
                // An empty document (a trailing `---`) holds nothing to check.
                if let Some(node) = root.take().filter(|n| n.value != Value::Null) {
                    docs.push(node);
                }
                anchors.clear();
                None
            }
            Event::MappingStart(anchor, _) => {
                stack.push(Frame::Map {
                    start: at(span.start),
                    anchor,
                    members: Vec::new(),
                    key: None,
                });
                None
            }
            Event::SequenceStart(anchor, _) => {
                stack.push(Frame::Seq {
                    start: at(span.start),
                    anchor,
                    items: Vec::new(),
                });
                None
            }
            Event::MappingEnd => match stack.pop() {
                Some(Frame::Map {
                    start,
                    anchor,
                    members,
                    ..
                }) => Some((
                    Node {
                        start,
                        end: at(span.end),
                        value: Value::Object(members),
                    },
                    anchor,
                )),
                _ => return Err("unbalanced mapping".into()),
            },
            Event::SequenceEnd => match stack.pop() {
                Some(Frame::Seq {
                    start,
                    anchor,
                    items,
                }) => Some((
                    Node {
                        start,
                        end: at(span.end),
                        value: Value::Array(items),
                    },
                    anchor,
                )),
                _ => return Err("unbalanced sequence".into()),
            },
            Event::Scalar(value, style, anchor, tag) => {
                let start = at(span.start);
                let mut end = at(span.end);
                // A single-quoted scalar's span may include the blank after it.
                while end > start && matches!(text.as_bytes()[end - 1], b' ' | b'\t') {
                    end -= 1;
                }
                let value = resolve(&value, style, tag.as_deref())
                    .map_err(|e| format!("{e} at line {}", span.start.line()))?;
                Some((Node { start, end, value }, anchor))
            }
            Event::Alias(id) => match anchors.get(&id) {
                Some(n) => Some((n.clone(), 0)),
                None => return Err(format!("unknown alias at line {}", span.start.line())),
            },
            Event::StreamStart | Event::StreamEnd | Event::Nothing => None,
        };
        let Some((node, anchor)) = done else {
            continue;
        };
        if anchor != 0 {
            anchors.insert(anchor, node.clone());
        }
        match stack.last_mut() {
            None => root = Some(node),
            Some(Frame::Seq { items, .. }) => items.push(node),
            Some(Frame::Map { members, key, .. }) => match key.take() {
                None => {
                    let k = match &node.value {
                        Value::String(s, _) => s.clone(),
                        Value::Null => String::new(),
                        Value::Bool(b) => b.to_string(),
                        Value::Number(n) => n.to_string(),
                        _ => {
                            return Err(format!(
                                "a mapping key must be a scalar (line {})",
                                crate::tree::line_of(text, node.start)
                            ))
                        }
                    };
                    if members.iter().any(|m: &Member| m.key == k) {
                        return Err(format!(
                            "duplicate key `{k}` at line {}",
                            crate::tree::line_of(text, node.start)
                        ));
                    }
                    *key = Some((k, node.start));
                }
                Some((k, key_start)) => members.push(Member {
                    key: k,
                    key_start,
                    node,
                }),
            },
        }
    }
    Ok(docs)
}

enum Frame {
    Map {
        start: usize,
        anchor: usize,
        members: Vec<Member>,
        key: Option<(String, usize)>,
    },
    Seq {
        start: usize,
        anchor: usize,
        items: Vec<Node>,
    },
}

fn resolve(v: &str, style: ScalarStyle, tag: Option<&Tag>) -> Result<Value, String> {
    let core_tag = tag
        .filter(|t| t.handle == "tag:yaml.org,2002:" || t.handle == "!!")
        .map(|t| t.suffix.as_str());
    let scalar = match style {
        ScalarStyle::Plain => Scalar::Plain,
        ScalarStyle::SingleQuoted | ScalarStyle::DoubleQuoted => Scalar::Quoted,
        ScalarStyle::Literal => Scalar::Literal,
        ScalarStyle::Folded => Scalar::Folded,
    };
    match core_tag {
        Some("str") => return Ok(Value::String(v.to_owned(), scalar)),
        Some("null") => return Ok(Value::Null),
        Some("bool" | "int" | "float") => {}
        _ if style != ScalarStyle::Plain => return Ok(Value::String(v.to_owned(), scalar)),
        _ => {}
    }
    match v {
        "" | "~" | "null" | "Null" | "NULL" => return Ok(Value::Null),
        "true" | "True" | "TRUE" => return Ok(Value::Bool(true)),
        "false" | "False" | "FALSE" => return Ok(Value::Bool(false)),
        _ => {}
    }
    if let Some(n) = int(v) {
        return Ok(Value::Number(n));
    }
    if is_float(v) {
        let f: f64 = v.parse().map_err(|_| format!("{v:?} is not a number"))?;
        return serde_json::Number::from_f64(f)
            .map(Value::Number)
            .ok_or_else(|| format!("{v} is out of range"));
    }
    let lower = v.trim_start_matches(['-', '+']).to_ascii_lowercase();
    if lower == ".inf" || lower == ".nan" {
        return Err(format!(
            "{v} is not a finite number (JSON has no infinity or NaN)"
        ));
    }
    Ok(Value::String(v.to_owned(), scalar))
}

fn int(v: &str) -> Option<serde_json::Number> {
    if let Some(oct) = v.strip_prefix("0o") {
        return u64::from_str_radix(oct, 8).ok().map(Into::into);
    }
    if let Some(hex) = v.strip_prefix("0x") {
        return u64::from_str_radix(hex, 16).ok().map(Into::into);
    }
    let digits = v.strip_prefix(['-', '+']).unwrap_or(v);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let v = v.strip_prefix('+').unwrap_or(v);
    if let Ok(i) = v.parse::<i64>() {
        return Some(i.into());
    }
    if let Ok(u) = v.parse::<u64>() {
        return Some(u.into());
    }
    v.parse::<f64>().ok().and_then(serde_json::Number::from_f64)
}

/// `[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?`
fn is_float(v: &str) -> bool {
    let s = v.strip_prefix(['-', '+']).unwrap_or(v).as_bytes();
    let mut i = 0;
    let int_digits = s.iter().take_while(|b| b.is_ascii_digit()).count();
    i += int_digits;
    let mut frac_digits = 0;
    if s.get(i) == Some(&b'.') {
        i += 1;
        frac_digits = s[i..].iter().take_while(|b| b.is_ascii_digit()).count();
        i += frac_digits;
    }
    if int_digits == 0 && frac_digits == 0 {
        return false;
    }
    if matches!(s.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(s.get(i), Some(b'-' | b'+')) {
            i += 1;
        }
        let exp = s[i..].iter().take_while(|b| b.is_ascii_digit()).count();
        if exp == 0 {
            return false;
        }
        i += exp;
    }
    i == s.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn core_schema_values() {
        let docs = parse_all(
            "a: 10\nb: 1.5\nc: 1.4.0\nd: true\ne: ~\nf: '10'\ng: yes\nh: -3\ni: 0x1f\nj:\nk: !!str 7\n",
        )
        .unwrap();
        assert_eq!(
            docs[0].to_json(),
            json!({"a": 10, "b": 1.5, "c": "1.4.0", "d": true, "e": null, "f": "10",
                   "g": "yes", "h": -3, "i": 31, "j": null, "k": "7"})
        );
    }

    #[test]
    fn spans_are_byte_offsets_even_after_non_ascii_text() {
        let text = "# é ü\nmodels:\n  - { name: gpt-4.1, weight: 90 }\n";
        let docs = parse_all(text).unwrap();
        let w = docs[0].resolve("models[0].weight");
        assert_eq!(&text[w.start..w.end], "90");
    }

    #[test]
    fn multi_document_streams() {
        let docs = parse_all("a: 1\n---\nb: 2\n---\n").unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[1].to_json(), json!({"b": 2}));
    }

    #[test]
    fn literal_block_scalars_are_strings_starting_at_their_content() {
        let text = "value: |\n  {\"a\": 1}\n";
        let docs = parse_all(text).unwrap();
        let v = docs[0].get("value").unwrap();
        assert_eq!(v.as_str(), Some("{\"a\": 1}\n"));
        assert!(text[v.start..].starts_with("{\"a\""));
        assert!(matches!(v.value, Value::String(_, Scalar::Literal)));
    }

    #[test]
    fn duplicate_keys_are_refused() {
        let e = parse_all("a: 1\nb: 2\na: 3\n").unwrap_err();
        assert_eq!(e, "duplicate key `a` at line 3");
    }

    #[test]
    fn aliases_are_expanded() {
        let docs = parse_all("x: &w { weight: 5 }\ny: *w\n").unwrap();
        assert_eq!(
            docs[0].to_json(),
            json!({"x": {"weight": 5}, "y": {"weight": 5}})
        );
    }

    #[test]
    fn infinity_is_not_json() {
        let e = parse_all("a: .inf\n").unwrap_err();
        assert!(e.contains("not a finite number"), "{e}");
    }

    #[test]
    fn single_quoted_spans_exclude_trailing_blanks() {
        let text = "c: { v: 'q' }\n";
        let docs = parse_all(text).unwrap();
        let v = docs[0].resolve("c.v");
        assert_eq!(&text[v.start..v.end], "'q'");
    }
}
