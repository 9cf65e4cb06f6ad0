//! Reading a file and finding every ai-gateway plugin configuration in it:
//!
//! - a plugin configuration itself (JSON or YAML);
//! - Envoy configs (bootstrap, LDS or ECDS resource files, any document): every
//!   `type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm` (also inside a
//!   `TypedStruct`), whose `config.configuration` is a `google.protobuf.StringValue` holding
//!   the JSON;
//! - Kubernetes manifests: an Istio `WasmPlugin`'s `spec.pluginConfig` (a YAML object, which
//!   Istio hands to the filter as JSON), and `EnvoyFilter` patches carrying the wasm filter.
//!
//! Multi-document YAML is read document by document. Each configuration found knows where it
//! is (a location for messages) and how its text maps back onto the file, for edits.

use crate::tree::{line_of, Node, Scalar, Value};
use std::path::Path;

pub const WASM_TYPE: &str = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm";
const STRING_VALUE: &str = "type.googleapis.com/google.protobuf.StringValue";
const STRUCT: &str = "type.googleapis.com/google.protobuf.Struct";
pub const TYPED_STRUCTS: [&str; 2] = [
    "type.googleapis.com/udpa.type.v1.TypedStruct",
    "type.googleapis.com/xds.type.v3.TypedStruct",
];
const WASM_FILTER_NAME: &str = "envoy.filters.http.wasm";

/// Keys that mark a document as an Envoy or Kubernetes document rather than a plugin config.
const ENVELOPE_KEYS: [&str; 14] = [
    "@type",
    "static_resources",
    "dynamic_resources",
    "admin",
    "node",
    "resources",
    "apiVersion",
    "kind",
    "layered_runtime",
    "stats_config",
    "overload_manager",
    "cluster_manager",
    "version_info",
    "type_url",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Yaml,
}

/// A file, read and parsed.
#[derive(Debug)]
pub struct Source {
    /// As given on the command line (used in every message).
    pub name: String,
    pub text: String,
    pub format: Format,
    pub docs: Vec<Node>,
}

impl Source {
    /// The document (of a multi-document YAML stream) that holds byte `offset`.
    pub fn doc_at(&self, offset: usize) -> Option<&Node> {
        self.docs
            .iter()
            .find(|d| d.start <= offset && offset < d.end)
    }
}

/// The wasm filter's own node when `node` is one: an `envoy.extensions.filters.http.wasm.v3.Wasm`,
/// directly or wrapped in a `TypedStruct` (`type_url` + `value`).
pub fn wasm_of(node: &Node) -> Option<&Node> {
    let ty = node.get("@type").and_then(Node::as_str);
    if ty == Some(WASM_TYPE) {
        Some(node)
    } else if ty.is_some_and(|t| TYPED_STRUCTS.contains(&t))
        && node.get("type_url").and_then(Node::as_str) == Some(WASM_TYPE)
    {
        node.get("value")
    } else {
        None
    }
}

/// Why a file could not be read (exit code 2).
#[derive(Debug)]
pub struct Unreadable(pub String);

impl Source {
    pub fn read(path: &Path) -> Result<Source, Unreadable> {
        let name = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|e| Unreadable(e.to_string()))?;
        let text = String::from_utf8(bytes).map_err(|e| {
            Unreadable(format!(
                "not UTF-8 text (invalid byte at offset {})",
                e.utf8_error().valid_up_to()
            ))
        })?;
        Source::parse(name, text)
    }

    /// `name` ends in `.json`, or the text starts with `{`: JSON; otherwise YAML.
    pub fn parse(name: String, text: String) -> Result<Source, Unreadable> {
        let first = text.trim_start().chars().next();
        let is_json = name.ends_with(".json") || first == Some('{');
        if is_json {
            match crate::json::parse(&text) {
                Ok(root) => {
                    return Ok(Source {
                        name,
                        text,
                        format: Format::Json,
                        docs: vec![root],
                    })
                }
                Err(e) if name.ends_with(".json") => {
                    return Err(Unreadable(format!("not valid JSON: {e}")))
                }
                Err(_) => {} // maybe YAML flow style
            }
        }
        match crate::yaml::parse_all(&text) {
            Ok(docs) if docs.is_empty() => Err(Unreadable("the file is empty".into())),
            Ok(docs) => Ok(Source {
                name,
                text,
                format: Format::Yaml,
                docs,
            }),
            Err(e) => Err(Unreadable(format!("not valid YAML: {e}"))),
        }
    }

    pub fn line(&self, offset: usize) -> usize {
        line_of(&self.text, offset)
    }
}

/// One plugin configuration found in a file.
#[derive(Debug, Clone)]
pub struct Found {
    /// Where it was found (empty for a file that is a plugin configuration); no `: ` in it.
    pub location: String,
    /// Byte offset in the file of what `location` names.
    pub offset: usize,
    pub body: Body,
    /// The `config` object of the wasm filter (Envoy) or the `spec` (WasmPlugin), for the
    /// checks of what surrounds the plugin configuration.
    pub envelope: Option<Envelope>,
}

#[derive(Debug, Clone)]
pub enum Envelope {
    Wasm(Node),
    WasmPlugin(Node),
}

#[derive(Debug, Clone)]
pub enum Body {
    /// The configuration is this node of the file (a plugin config file, a YAML
    /// `pluginConfig`): its offsets are file offsets. `raw` is the file's own JSON text when
    /// the node is a whole JSON file (then the compiler reads exactly those bytes).
    Tree { node: Node, raw: Option<String> },
    /// JSON text inside a YAML/JSON string (`StringValue.value`).
    Embedded(Embedded),
    /// There, but not usable: the reason, at `path` relative to `location`.
    Unusable { path: String, reason: String },
}

#[derive(Debug, Clone)]
pub struct Embedded {
    /// The string node in the file.
    pub scalar: Node,
    /// Its value: the plugin configuration's JSON text.
    pub text: String,
    /// The JSON tree of `text` (offsets into `text`), when it parses.
    pub tree: Result<Node, String>,
    /// For `|` blocks: (offset in `text`, offset in the file) of each line's start, when
    /// every line was found verbatim in the file. Then an edit of the JSON maps to an edit of
    /// the file in place.
    pub lines: Option<Vec<(usize, usize)>>,
}

impl Embedded {
    fn new(scalar: Node, file: &str) -> Option<Embedded> {
        let text = scalar.as_str()?.to_owned();
        let tree = crate::json::parse(&text);
        let lines = match scalar.value {
            Value::String(_, Scalar::Literal) => literal_lines(&text, file, scalar.start),
            // A JSON file holding a string whose text has no escapes maps one to one.
            Value::String(_, Scalar::Json)
                if file.get(scalar.start + 1..scalar.end.saturating_sub(1)) == Some(&text) =>
            {
                Some(vec![(0, scalar.start + 1)])
            }
            Value::String(_, Scalar::Plain | Scalar::Quoted)
                if !text.contains('\n')
                    && file.get(scalar.start..scalar.end) == Some(text.as_str()) =>
            {
                Some(vec![(0, scalar.start)])
            }
            Value::String(_, Scalar::Quoted)
                if !text.contains('\n')
                    && file.get(scalar.start + 1..scalar.end.saturating_sub(1))
                        == Some(text.as_str())
                    && !text.contains(['\'', '"', '\\']) =>
            {
                Some(vec![(0, scalar.start + 1)])
            }
            _ => None,
        };
        Some(Embedded {
            scalar,
            text,
            tree,
            lines,
        })
    }

    /// The file offset of `off` in the embedded text, when the text maps verbatim.
    pub fn file_offset(&self, off: usize) -> Option<usize> {
        let lines = self.lines.as_ref()?;
        let i = lines.partition_point(|&(t, _)| t <= off).checked_sub(1)?;
        let (t, f) = lines[i];
        Some(f + (off - t))
    }
}

/// Maps each line of a literal block's value to where it is in the file: the block's lines
/// are the file's lines minus the block indentation.
fn literal_lines(text: &str, file: &str, start: usize) -> Option<Vec<(usize, usize)>> {
    let line_start = file[..start].rfind('\n').map_or(0, |i| i + 1);
    let indent = start - line_start;
    let mut out = Vec::new();
    let mut pos = start;
    let mut toff = 0;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        if i > 0 {
            // Skip the indentation (an empty line may have less).
            let avail = file[pos..]
                .bytes()
                .take(indent)
                .take_while(|&b| b == b' ')
                .count();
            pos += avail;
        }
        let content = line.strip_suffix('\n').unwrap_or(line);
        if file.get(pos..pos + content.len()) != Some(content) {
            return None;
        }
        out.push((toff, pos));
        pos += content.len();
        if line.ends_with('\n') {
            if file.as_bytes().get(pos) != Some(&b'\n') {
                // Trailing newlines of `|+` blocks and the like: the lines before are enough.
                break;
            }
            pos += 1;
        }
        toff += line.len();
    }
    Some(out)
}

/// Every plugin configuration in `src`, and notes about what else was seen.
pub fn find(src: &Source) -> (Vec<Found>, Vec<String>) {
    let mut found = Vec::new();
    let mut notes = Vec::new();
    let multi = src.docs.len() > 1;
    for (d, doc) in src.docs.iter().enumerate() {
        let prefix = if multi {
            format!("doc[{d}] ")
        } else {
            String::new()
        };
        let kind = doc.get("kind").and_then(Node::as_str);
        let meta_name = doc
            .get("metadata")
            .and_then(|m| m.get("name"))
            .and_then(Node::as_str)
            .unwrap_or("?");
        if kind == Some("WasmPlugin") {
            let loc = format!("{prefix}WasmPlugin/{meta_name}");
            let spec = doc.get("spec");
            match spec.and_then(|s| s.get("pluginConfig")) {
                Some(pc) if pc.is_object() => found.push(Found {
                    location: format!("{loc} spec.pluginConfig"),
                    offset: pc.start,
                    body: Body::Tree {
                        node: pc.clone(),
                        raw: None,
                    },
                    envelope: spec.cloned().map(Envelope::WasmPlugin),
                }),
                Some(pc) => found.push(Found {
                    location: format!("{loc} spec.pluginConfig"),
                    offset: pc.start,
                    body: Body::Unusable {
                        path: String::new(),
                        reason: "must be an object (Istio passes it to the filter as JSON)".into(),
                    },
                    envelope: None,
                }),
                None => found.push(Found {
                    location: loc,
                    offset: doc.start,
                    body: Body::Unusable {
                        path: "spec.pluginConfig".into(),
                        reason: "missing: the filter refuses to start without its configuration"
                            .into(),
                    },
                    envelope: None,
                }),
            }
            continue;
        }
        let is_envelope = doc.is_object()
            && doc
                .members()
                .iter()
                .any(|m| ENVELOPE_KEYS.contains(&m.key.as_str()));
        if !is_envelope {
            // A plugin configuration itself (or something that claims to be one).
            let raw = (src.format == Format::Json).then(|| src.text.clone());
            found.push(Found {
                location: prefix.trim_end().to_owned(),
                offset: doc.start,
                body: Body::Tree {
                    node: doc.clone(),
                    raw,
                },
                envelope: None,
            });
            continue;
        }
        let k8s_prefix = match kind {
            Some(k) => format!("{prefix}{k}/{meta_name} "),
            None => prefix.clone(),
        };
        let before = found.len();
        walk(src, doc, String::new(), &k8s_prefix, &mut found, &mut notes);
        if found.len() == before && kind.is_none() && !notes.iter().any(|n| n.contains("ECDS")) {
            notes.push(format!(
                "{}no ai-gateway plugin configuration (no {WASM_FILTER_NAME} filter) in this document",
                prefix
            ));
        }
    }
    (found, notes)
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

fn walk(
    src: &Source,
    node: &Node,
    path: String,
    prefix: &str,
    found: &mut Vec<Found>,
    notes: &mut Vec<String>,
) {
    match &node.value {
        Value::Object(members) => {
            if let Some(wasm) = wasm_of(node) {
                found.push(wasm_filter(src, wasm, &path, prefix));
                return;
            }
            // A wasm filter that takes its configuration from ECDS.
            if node.get("name").and_then(Node::as_str).is_some() {
                if let Some(cd) = node.get("config_discovery") {
                    let wasm_ecds = cd
                        .get("type_urls")
                        .is_some_and(|t| t.items().iter().any(|u| u.as_str() == Some(WASM_TYPE)));
                    if wasm_ecds {
                        let file = cd
                            .get("config_source")
                            .and_then(|c| c.get("path_config_source"))
                            .and_then(|p| p.get("path"))
                            .and_then(Node::as_str)
                            .map(|p| format!(" from {p}"))
                            .unwrap_or_default();
                        notes.push(format!(
                            "{prefix}{path}: the wasm filter takes its configuration through ECDS{file}: validate that file too"
                        ));
                    }
                }
            }
            for m in members {
                walk(src, &m.node, join(&path, &m.key), prefix, found, notes);
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                walk(src, item, format!("{path}[{i}]"), prefix, found, notes);
            }
        }
        _ => {}
    }
}

/// A `Wasm` message at `path`: its `config.configuration` must be a StringValue of JSON.
fn wasm_filter(src: &Source, wasm: &Node, path: &str, prefix: &str) -> Found {
    let config = wasm.get("config");
    let name = config
        .and_then(|c| c.get("name").or_else(|| c.get("root_id")))
        .and_then(Node::as_str)
        .unwrap_or("?");
    let shown = path.strip_suffix(".typed_config").unwrap_or(path);
    let shown = if shown.is_empty() { "(root)" } else { shown };
    let location = format!("{prefix}{shown} (wasm {name})");
    let unusable = |path: &str, reason: &str| Body::Unusable {
        path: path.to_owned(),
        reason: reason.to_owned(),
    };
    let body = match config.and_then(|c| c.get("configuration")) {
        None => unusable(
            "config.configuration",
            "missing: the filter refuses to start without its plugin configuration",
        ),
        Some(conf) => match conf.get("@type").and_then(Node::as_str) {
            Some(STRING_VALUE) => match conf.get("value") {
                Some(v) => match Embedded::new(v.clone(), &src.text) {
                    Some(e) => Body::Embedded(e),
                    None => unusable(
                        "config.configuration.value",
                        "must be a string holding the plugin configuration's JSON",
                    ),
                },
                None => unusable(
                    "config.configuration.value",
                    "missing: the StringValue holds no plugin configuration",
                ),
            },
            Some(STRUCT) => unusable(
                "config.configuration",
                "is a google.protobuf.Struct: Envoy hands it to the filter as protobuf binary, not JSON, and the filter refuses it; use \"@type\": type.googleapis.com/google.protobuf.StringValue with the JSON in `value`",
            ),
            Some(other) => unusable(
                "config.configuration",
                &format!("has @type {other}; the filter reads a google.protobuf.StringValue holding JSON"),
            ),
            None => unusable(
                "config.configuration",
                "has no @type; use type.googleapis.com/google.protobuf.StringValue with the JSON in `value`",
            ),
        },
    };
    Found {
        location,
        offset: wasm.start,
        body,
        envelope: config.cloned().map(Envelope::Wasm),
    }
}

// === what the compiler reads, and where its errors are ===

impl Found {
    /// The plugin configuration's JSON, as the filter would receive it.
    pub fn json_bytes(&self) -> Option<Vec<u8>> {
        match &self.body {
            Body::Tree { raw: Some(raw), .. } => Some(raw.clone().into_bytes()),
            Body::Tree { node, raw: None } => serde_json::to_vec(&node.to_json()).ok(),
            Body::Embedded(e) => Some(e.text.clone().into_bytes()),
            Body::Unusable { .. } => None,
        }
    }

    /// The plugin configuration's tree, when it parses.
    pub fn tree(&self) -> Option<&Node> {
        match &self.body {
            Body::Tree { node, .. } => Some(node),
            Body::Embedded(e) => e.tree.as_ref().ok(),
            Body::Unusable { .. } => None,
        }
    }

    /// The file offset of an offset of [`Found::tree`]'s coordinates (best effort: the
    /// string holding an embedded configuration when its lines don't map).
    pub fn file_offset(&self, off: usize) -> usize {
        match &self.body {
            Body::Tree { .. } => off,
            Body::Embedded(e) => e.file_offset(off).unwrap_or(e.scalar.start),
            Body::Unusable { .. } => self.offset,
        }
    }

    /// The file offset for a compiler error: serde's own position when it refers to the
    /// text the compiler read (`at line L column C`), else the node at `path`.
    pub fn error_offset(&self, path: &str, message: &str) -> usize {
        if let Some((l, c)) = serde_position(message) {
            let text = match &self.body {
                Body::Tree { raw: Some(raw), .. } => Some(raw.as_str()),
                Body::Embedded(e) => Some(e.text.as_str()),
                _ => None,
            };
            if let Some(text) = text {
                return self.file_offset(crate::tree::offset_of(text, l, c));
            }
        }
        match self.tree() {
            Some(t) => self.file_offset(t.resolve(path).start),
            None => self.offset,
        }
    }
}

/// serde_json's `… at line L column C` suffix.
pub fn serde_position(message: &str) -> Option<(usize, usize)> {
    let i = message.rfind(" at line ")?;
    let rest = &message[i + " at line ".len()..];
    let (l, c) = rest.split_once(" column ")?;
    Some((l.parse().ok()?, c.trim().parse().ok()?))
}

/// The message without serde's position (which names a line of a text that is not the file
/// when the configuration was converted from YAML).
pub fn strip_serde_position(message: &str) -> &str {
    match (serde_position(message), message.rfind(" at line ")) {
        (Some(_), Some(i)) => &message[..i],
        _ => message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src(name: &str, text: &str) -> Source {
        Source::parse(name.into(), text.into()).unwrap()
    }

    #[test]
    fn literal_block_lines_map_back_to_the_file() {
        let file = "a:\n  value: |\n    {\"m\": 1,\n\n     \"w\": 25}\n";
        let s = src("x.yaml", file);
        let v = s.docs[0].resolve("a.value").clone();
        let e = Embedded::new(v, file).unwrap();
        let tree = e.tree.as_ref().unwrap();
        let w = tree.get("w").unwrap();
        let f = e.file_offset(w.start).unwrap();
        assert_eq!(&file[f..f + 2], "25");
    }

    #[test]
    fn a_plain_config_is_found_as_itself() {
        let s = src("c.json", r#"{"models": []}"#);
        let (found, _) = find(&s);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].location, "");
    }

    #[test]
    fn serde_positions() {
        assert_eq!(
            serde_position("unknown field `x` at line 3 column 14"),
            Some((3, 14))
        );
        assert_eq!(strip_serde_position("bad at line 3 column 14"), "bad");
        assert_eq!(strip_serde_position("bad"), "bad");
    }
}
