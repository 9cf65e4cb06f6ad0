//! A JSON parser that records the byte span of every value ([`crate::tree::Node`]).
//! serde_json checks the syntax first (its messages are good); this one only builds the tree.

use crate::tree::{Member, Node, Scalar, Value};

/// Parses `text` (RFC 8259 JSON). Errors read like serde_json's, with line and column.
pub fn parse(text: &str) -> Result<Node, String> {
    if let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(text) {
        return Err(e.to_string());
    }
    let mut p = P {
        s: text.as_bytes(),
        text,
        i: 0,
    };
    p.ws();
    let node = p.value(0)?;
    p.ws();
    if p.i != p.s.len() {
        return Err(p.err("trailing characters"));
    }
    Ok(node)
}

struct P<'a> {
    s: &'a [u8],
    text: &'a str,
    i: usize,
}

/// Deeper than this is refused (serde_json's own limit is 128).
const MAX_DEPTH: usize = 128;

impl P<'_> {
    fn err(&self, what: &str) -> String {
        let line = crate::tree::line_of(self.text, self.i);
        format!("{what} at line {line}")
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.s.get(self.i) {
            self.i += 1;
        }
    }

    fn value(&mut self, depth: usize) -> Result<Node, String> {
        if depth > MAX_DEPTH {
            return Err(self.err("recursion limit exceeded"));
        }
        let start = self.i;
        let value = match self.s.get(self.i) {
            Some(b'{') => {
                self.i += 1;
                let mut members = Vec::new();
                self.ws();
                if self.s.get(self.i) == Some(&b'}') {
                    self.i += 1;
                } else {
                    loop {
                        self.ws();
                        let key_start = self.i;
                        let key = self.string()?;
                        self.ws();
                        self.expect(b':')?;
                        self.ws();
                        let node = self.value(depth + 1)?;
                        members.push(Member {
                            key,
                            key_start,
                            node,
                        });
                        self.ws();
                        match self.s.get(self.i) {
                            Some(b',') => self.i += 1,
                            Some(b'}') => {
                                self.i += 1;
                                break;
                            }
                            _ => return Err(self.err("expected `,` or `}`")),
                        }
                    }
                }
                Value::Object(members)
            }
            Some(b'[') => {
                self.i += 1;
                let mut items = Vec::new();
                self.ws();
                if self.s.get(self.i) == Some(&b']') {
                    self.i += 1;
                } else {
                    loop {
                        self.ws();
                        items.push(self.value(depth + 1)?);
                        self.ws();
                        match self.s.get(self.i) {
                            Some(b',') => self.i += 1,
                            Some(b']') => {
                                self.i += 1;
                                break;
                            }
                            _ => return Err(self.err("expected `,` or `]`")),
                        }
                    }
                }
                Value::Array(items)
            }
            Some(b'"') => Value::String(self.string()?, Scalar::Json),
            Some(b't') => self.word("true", Value::Bool(true))?,
            Some(b'f') => self.word("false", Value::Bool(false))?,
            Some(b'n') => self.word("null", Value::Null)?,
            Some(b'-' | b'0'..=b'9') => {
                while let Some(b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9') = self.s.get(self.i)
                {
                    self.i += 1;
                }
                let raw = &self.text[start..self.i];
                let n: serde_json::Number = serde_json::from_str(raw)
                    .map_err(|_| self.err(&format!("invalid number {raw}")))?;
                Value::Number(n)
            }
            _ => return Err(self.err("expected a value")),
        };
        Ok(Node {
            start,
            end: self.i,
            value,
        })
    }

    fn expect(&mut self, b: u8) -> Result<(), String> {
        if self.s.get(self.i) == Some(&b) {
            self.i += 1;
            Ok(())
        } else {
            Err(self.err(&format!("expected `{}`", b as char)))
        }
    }

    fn word(&mut self, w: &str, v: Value) -> Result<Value, String> {
        if self.s[self.i..].starts_with(w.as_bytes()) {
            self.i += w.len();
            Ok(v)
        } else {
            Err(self.err("expected a value"))
        }
    }

    /// A string at `self.i` (which must be `"`), decoded by serde_json.
    fn string(&mut self) -> Result<String, String> {
        let start = self.i;
        self.expect(b'"')?;
        loop {
            match self.s.get(self.i) {
                Some(b'"') => {
                    self.i += 1;
                    break;
                }
                Some(b'\\') => self.i += 2,
                Some(_) => self.i += 1,
                None => return Err(self.err("EOF while parsing a string")),
            }
        }
        serde_json::from_str::<String>(&self.text[start..self.i])
            .map_err(|e| self.err(&format!("invalid string: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_cover_each_value_exactly() {
        let text = "{\n  \"a\": [1, 2.5, -3e2],\n  \"b\": {\"c\": \"x\\\"y\"}, \"d\": null\n}";
        let root = parse(text).unwrap();
        let a = root.get("a").unwrap();
        let spans: Vec<&str> = a.items().iter().map(|n| &text[n.start..n.end]).collect();
        assert_eq!(spans, ["1", "2.5", "-3e2"]);
        let c = root.get("b").unwrap().get("c").unwrap();
        assert_eq!(&text[c.start..c.end], "\"x\\\"y\"");
        assert_eq!(c.as_str(), Some("x\"y"));
        assert_eq!(root.to_json()["d"], serde_json::Value::Null);
    }

    #[test]
    fn syntax_errors_come_from_serde_json() {
        let e = parse("{\"a\": 1,}").unwrap_err();
        assert!(e.contains("line 1 column 9"), "{e}");
    }

    #[test]
    fn unicode_keys_and_values() {
        let text = r#"{"é": "ü€"}"#;
        let root = parse(text).unwrap();
        assert_eq!(root.get("é").unwrap().as_str(), Some("ü€"));
    }
}
