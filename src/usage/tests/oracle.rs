//! serde_json as a test oracle: the fixtures are what they claim, and the scanner and the
//! stripper agree with a full parse on random documents.

use crate::testing::test;
use serde_json::{Map, Number, Value};

use super::fixtures::*;
use super::*;

fn usage_fields(object: &Map<String, Value>) -> Usage {
    // Map iteration order is serialization order (sorted, or insertion order with
    // `preserve_order`): the last valid value of a field wins, as in the scanner.
    let mut usage = Usage::default();
    for (key, value) in object {
        match (key.as_str(), value.as_u64()) {
            ("prompt_tokens" | "input_tokens", Some(n)) => usage.prompt_tokens = n,
            ("completion_tokens" | "output_tokens", Some(n)) => usage.completion_tokens = n,
            _ => {}
        }
    }
    usage
}

/// The last `usage` object at the top level or at `response.usage`, in document order.
fn oracle_usage(doc: &Value) -> Option<Usage> {
    let mut found = None;
    for (key, value) in doc.as_object()? {
        match (key.as_str(), value) {
            ("usage", Value::Object(usage)) => found = Some(usage_fields(usage)),
            ("response", Value::Object(response)) => {
                if let Some(Value::Object(usage)) = response.get("usage") {
                    found = Some(usage_fields(usage));
                }
            }
            _ => {}
        }
    }
    found
}

fn oracle_usage_only(doc: &Value) -> bool {
    matches!(doc.get("choices"), Some(Value::Array(a)) if a.is_empty())
        && matches!(doc.get("usage"), Some(Value::Object(_)))
}

/// `doc` without a top-level `"usage": null` member (order of the others kept).
fn oracle_without_null_usage(doc: &Value) -> Value {
    match doc {
        Value::Object(object) => Value::Object(
            object
                .iter()
                .filter(|(key, value)| !(key.as_str() == "usage" && value.is_null()))
                .map(|(key, value)| (key.clone(), value.clone()))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// What the stripper leaves of `text`, serde_json's serialization of `doc` sent as one `data`
/// line per line of it.
fn stripped_serialization(doc: &Value, text: &str) -> String {
    if oracle_without_null_usage(doc) == *doc {
        return text.to_owned();
    }
    if !text.contains('\n') {
        return serde_json::to_string(&oracle_without_null_usage(doc)).unwrap();
    }
    // Pretty, one member per line: only a first member with its comma on its line can go.
    match text.strip_prefix("{\n  \"usage\": null,\n") {
        Some(rest) => format!("{{\n  \n{rest}"),
        None => text.to_owned(),
    }
}

/// Data payloads of the events of an SSE stream (a simple, non-incremental reading).
fn sse_payloads(stream: &str) -> Vec<String> {
    let normalized = stream.replace("\r\n", "\n").replace('\r', "\n");
    normalized
        .split("\n\n")
        .filter_map(|block| {
            let data: Vec<&str> = block
                .lines()
                .filter_map(|line| line.strip_prefix("data:"))
                .map(|value| value.strip_prefix(' ').unwrap_or(value))
                .collect();
            (!data.is_empty()).then(|| data.join("\n"))
        })
        .collect()
}

#[test]
fn fixtures_agree_with_serde_json() {
    for (doc, want) in [
        (CHAT_JSON, CHAT_JSON_USAGE),
        (EMBEDDINGS_JSON, EMBEDDINGS_JSON_USAGE),
        (DECOY_JSON, DECOY_JSON_USAGE),
        (UTF8_JSON, UTF8_JSON_USAGE),
    ] {
        let value: Value = serde_json::from_str(doc).unwrap();
        assert_eq!(oracle_usage(&value), Some(want));
        assert_eq!(scan(Format::Json, &[doc.as_bytes()]), Some(want));
    }
    for (stream, want, usage_event) in [
        (CHAT_SSE, Some(CHAT_SSE_USAGE), Some(CHAT_SSE_USAGE_EVENT)),
        (
            CHAT_SSE_CRLF,
            Some(CHAT_SSE_CRLF_USAGE),
            Some(CHAT_SSE_CRLF_USAGE_EVENT),
        ),
        (RESPONSES_SSE, Some(RESPONSES_SSE_USAGE), None),
        (
            DECOY_SSE,
            Some(DECOY_SSE_USAGE),
            Some(DECOY_SSE_USAGE_EVENT),
        ),
        (UTF8_SSE, Some(UTF8_SSE_USAGE), Some(UTF8_SSE_USAGE_EVENT)),
        (CHAT_SSE_NO_USAGE, None, None),
        (
            COMPLETIONS_SSE,
            Some(COMPLETIONS_SSE_USAGE),
            Some(COMPLETIONS_SSE_USAGE_EVENT),
        ),
        (MOCK_CHAT_SSE, Some(MOCK_CHAT_SSE_USAGE), None),
    ] {
        let mut last = None;
        let mut usage_only = Vec::new();
        for payload in sse_payloads(stream) {
            if payload == "[DONE]" {
                continue;
            }
            let value: Value = serde_json::from_str(&payload).unwrap();
            last = oracle_usage(&value).or(last);
            if oracle_usage_only(&value) {
                usage_only.push(payload);
            }
        }
        assert_eq!(last, want);
        assert_eq!(scan(Format::Sse, &[stream.as_bytes()]), want);
        let expected_usage_only: Vec<String> = usage_event.map(sse_payloads).unwrap_or_default();
        if stream != MOCK_CHAT_SSE {
            assert_eq!(usage_only, expected_usage_only);
        } else {
            assert_eq!(usage_only.len(), 1);
        }
    }
}

/// The streams "recorded without `include_usage`" are the ones with it, without the usage-only
/// chunk and without the top-level `"usage": null` members, as serde_json reads them.
#[test]
fn streams_without_include_usage_are_the_streams_with_it_minus_what_it_added() {
    for (with, without) in [
        (CHAT_SSE, CHAT_SSE_WITHOUT_INCLUDE_USAGE),
        (COMPLETIONS_SSE, COMPLETIONS_SSE_WITHOUT_INCLUDE_USAGE),
        (MOCK_CHAT_SSE, MOCK_CHAT_SSE_WITHOUT_INCLUDE_USAGE),
    ] {
        let parse = |payload: &str| -> Option<Value> {
            (payload != "[DONE]").then(|| serde_json::from_str(payload).unwrap())
        };
        let mut nulls = 0;
        let with: Vec<Option<Value>> = sse_payloads(with)
            .iter()
            .map(|payload| parse(payload))
            .filter(|doc| !doc.as_ref().is_some_and(oracle_usage_only))
            .map(|doc| {
                doc.map(|doc| {
                    nulls += usize::from(doc.get("usage").is_some_and(Value::is_null));
                    oracle_without_null_usage(&doc)
                })
            })
            .collect();
        let without: Vec<Option<Value>> = sse_payloads(without).iter().map(|p| parse(p)).collect();
        assert_eq!(with, without);
        assert!(nulls >= 3);
        assert!(without
            .iter()
            .flatten()
            .all(|doc| doc.get("usage").is_none()));
    }
}

const KEYS: &[&str] = &[
    "usage",
    "response",
    "choices",
    "prompt_tokens",
    "completion_tokens",
    "input_tokens",
    "output_tokens",
    "total_tokens",
    "id",
    "delta",
    "content",
    "usage_",
    "Usage",
    "us\"age",
    "usage\u{e9}",
    "x",
];

const STRINGS: &[&str] = &[
    "",
    "usage",
    "\"usage\":{\"prompt_tokens\":1}",
    "data: {\"choices\":[],\"usage\":{}}\n\n",
    "\\",
    "\\\"",
    "你好👋🏽",
    "\u{1}\u{1f}",
    "}]{[",
];

fn gen_number(rng: &mut SplitMix64) -> Value {
    match rng.below(6) {
        0 => Value::from(rng.below(10) as u64),
        1 => Value::from(rng.next_u64() >> rng.below(64)),
        2 => Value::from(u64::MAX),
        3 => Value::from(-(rng.below(1000) as i64) - 1),
        4 => Number::from_f64(rng.below(1000) as f64 / 8.0).map_or(Value::Null, Value::Number),
        _ => Number::from_f64(1e21).map_or(Value::Null, Value::Number),
    }
}

fn gen_value(rng: &mut SplitMix64, depth: usize) -> Value {
    match rng.below(if depth > 4 { 5 } else { 9 }) {
        0 => Value::Null,
        1 => Value::Bool(rng.below(2) == 0),
        2 => gen_number(rng),
        3 | 4 => Value::from(STRINGS[rng.below(STRINGS.len())]),
        5 | 6 => Value::Array(
            (0..rng.below(4))
                .map(|_| gen_value(rng, depth + 1))
                .collect(),
        ),
        _ => gen_object(rng, depth + 1),
    }
}

fn gen_object(rng: &mut SplitMix64, depth: usize) -> Value {
    let mut object = Map::new();
    for _ in 0..rng.below(7) {
        let key = KEYS[rng.below(KEYS.len())];
        let value = match (key, rng.below(10)) {
            ("usage", 0..=5) | ("response", 0..=4) => gen_object(rng, depth + 1),
            ("choices", 0..=4) => Value::Array(Vec::new()),
            ("prompt_tokens" | "completion_tokens" | "input_tokens" | "output_tokens", 0..=6) => {
                gen_number(rng)
            }
            _ => gen_value(rng, depth),
        };
        object.insert(key.to_owned(), value);
    }
    Value::Object(object)
}

#[test]
fn scanner_and_stripper_agree_with_serde_json_on_random_documents() {
    let mut rng = SplitMix64::new(2024);
    let mut usage_only_events = 0;
    let mut usages = 0;
    let mut null_usages = 0;
    for round in 0..400 {
        let mut stream = String::new();
        let mut expected_stream = String::new();
        let mut expected_usage = None;
        for _ in 0..1 + rng.below(4) {
            let doc = match rng.below(8) {
                0 => gen_value(&mut rng, 0),
                1 | 2 => {
                    // Shaped like the usage chunk, with random extras and values.
                    let mut doc = gen_object(&mut rng, 0);
                    if let Value::Object(object) = &mut doc {
                        object.insert("choices".to_owned(), Value::Array(Vec::new()));
                        object.insert("usage".to_owned(), gen_object(&mut rng, 1));
                    }
                    doc
                }
                _ => gen_object(&mut rng, 0),
            };
            let text = if rng.below(2) == 0 {
                serde_json::to_string(&doc).unwrap()
            } else {
                serde_json::to_string_pretty(&doc).unwrap()
            };
            let want = oracle_usage(&doc);
            usages += usize::from(want.is_some());
            let cuts = random_cuts(text.len(), &mut rng, 1 + round % 40);
            let got = scan(Format::Json, &cut(text.as_bytes(), &cuts));
            assert_eq!(got, want, "{text}");

            let as_event = |text: &str| -> String {
                text.lines()
                    .map(|l| format!("data: {l}\n"))
                    .collect::<String>()
                    + "\n"
            };
            stream.push_str(&as_event(&text));
            expected_usage = want.or(expected_usage);
            if oracle_usage_only(&doc) {
                usage_only_events += 1;
            } else {
                let stripped = stripped_serialization(&doc, &text);
                null_usages += usize::from(stripped != text);
                expected_stream.push_str(&as_event(&stripped));
            }
        }
        let cuts = random_cuts(stream.len(), &mut rng, 1 + round % 70);
        let chunks = cut(stream.as_bytes(), &cuts);
        assert_eq!(scan(Format::Sse, &chunks), expected_usage, "{stream}");
        let (out, stripper_usage) = strip(&chunks, round % 2 == 0);
        assert_eq!(String::from_utf8(out).unwrap(), expected_stream, "{stream}");
        assert_eq!(stripper_usage, expected_usage);
    }
    // The generator exercises both outcomes.
    assert!(usage_only_events > 20, "{usage_only_events}");
    assert!(usages > 100, "{usages}");
    assert!(null_usages > 0, "{null_usages}");
}

/// Spellings of member names: as written, and decoded.
const NAMES: &[(&str, &str)] = &[
    (r#""usage""#, "usage"),
    (r#""usage""#, "usage"),
    (r#""us\u0061ge""#, "usage"),
    (r#""\u0075\u0073\u0061\u0067\u0065""#, "usage"),
    (r#""usag\u0065""#, "usage"),
    (r#""\u0055sage""#, "Usage"),
    (r#""usage_""#, "usage_"),
    (r#""usag""#, "usag"),
    (r#""us\"age""#, "us\"age"),
    (r#""usage\u00e9""#, "usage\u{e9}"),
    (r#""choices""#, "choices"),
    (r#""response""#, "response"),
    (r#""id""#, "id"),
    (r#""x""#, "x"),
    (r#""""#, ""),
];

const SPACES: &[&str] = &["", "", "", "", " ", "  ", "\t", " \t "];

/// A member of a generated top-level object, as written.
struct Member {
    /// Whitespace before the name (after `{` or the comma).
    lead: &'static str,
    /// Name, whitespace, `:`, whitespace, value.
    core: String,
    /// Whitespace before the next `,` or the `}`.
    trail: &'static str,
    /// Written as `"usage": null` (the name maybe escaped).
    removable: bool,
}

#[derive(Clone, Copy, PartialEq)]
enum Cut {
    Keep,
    /// While nothing was kept: the name through the next comma (through `null` when last).
    First,
    /// The comma before it through `null`.
    AfterComma,
}

/// A one-line JSON object with random spacing, escaped names and `"usage": null` members in
/// random places, and what the stripper must leave of it by the documented rule (written out
/// member by member, independently of the implementation), and how many first members go.
fn gen_spaced_object(rng: &mut SplitMix64) -> (String, String, usize) {
    let mut members = Vec::new();
    let mut names_used: Vec<&str> = Vec::new();
    for _ in 0..rng.below(7) {
        let (written, name) = NAMES[rng.below(NAMES.len())];
        if names_used.contains(&name) {
            continue;
        }
        names_used.push(name);
        let value = match (name, rng.below(8)) {
            ("usage", 0..=5) | (_, 0) => "null".to_owned(),
            ("usage", 6) => "{\"prompt_tokens\":1}".to_owned(),
            ("choices", 1..=3) => "[]".to_owned(),
            _ => serde_json::to_string(&gen_value(rng, 2)).unwrap(),
        };
        let removable = name == "usage" && value == "null";
        let mut pick = || SPACES[rng.below(SPACES.len())];
        let (lead, before_colon, after_colon, trail) = (pick(), pick(), pick(), pick());
        members.push(Member {
            lead,
            core: format!("{written}{before_colon}:{after_colon}{value}"),
            trail,
            removable,
        });
    }
    let open = SPACES[rng.below(SPACES.len())];
    let mut text = format!("{open}{{");
    for (i, member) in members.iter().enumerate() {
        if i > 0 {
            text.push(',');
        }
        text.push_str(member.lead);
        text.push_str(&member.core);
        text.push_str(member.trail);
    }
    text.push('}');

    let mut kept_any = false;
    let cuts: Vec<Cut> = members
        .iter()
        .map(|member| match (member.removable, kept_any) {
            (true, false) => Cut::First,
            (true, true) => Cut::AfterComma,
            (false, _) => {
                kept_any = true;
                Cut::Keep
            }
        })
        .collect();
    let mut expected = format!("{open}{{");
    for (i, member) in members.iter().enumerate() {
        let comma_removed = i > 0 && (cuts[i] == Cut::AfterComma || cuts[i - 1] == Cut::First);
        if i > 0 && !comma_removed {
            expected.push(',');
        }
        if cuts[i] != Cut::AfterComma {
            expected.push_str(member.lead);
        }
        if cuts[i] == Cut::Keep {
            expected.push_str(&member.core);
        }
        if cuts[i] != Cut::First || i + 1 == members.len() {
            expected.push_str(member.trail);
        }
    }
    expected.push('}');
    let firsts = cuts.iter().filter(|&&cut| cut == Cut::First).count();
    (text, expected, firsts)
}

#[test]
fn stripper_removes_exactly_the_top_level_null_usage_of_random_spaced_objects() {
    let mut rng = SplitMix64::new(77);
    let mut removed = 0;
    let mut first_removed = 0;
    for round in 0..3_000 {
        let eol = if round % 5 == 0 { "\r\n" } else { "\n" };
        let mut stream = String::new();
        let mut expected_stream = String::new();
        for _ in 0..1 + rng.below(4) {
            let (text, expected, firsts) = gen_spaced_object(&mut rng);
            let doc: Value = serde_json::from_str(&text).unwrap();
            // The oracle: the output parses to the input without its top-level null usage.
            let got: Value = serde_json::from_str(&expected)
                .unwrap_or_else(|e| panic!("{e}: {text:?} -> {expected:?}"));
            assert_eq!(got, oracle_without_null_usage(&doc), "{text:?}");
            removed += usize::from(expected != text);
            first_removed += firsts;
            let prefix = ["", ": ping\n", "event: chunk\nid: 1\n"][rng.below(3)].replace('\n', eol);
            stream.push_str(&format!("{prefix}data: {text}{eol}{eol}"));
            if !oracle_usage_only(&doc) {
                expected_stream.push_str(&format!("{prefix}data: {expected}{eol}{eol}"));
            } else if prefix.starts_with(':') {
                // Comments before the usage-only event are not part of it.
                expected_stream.push_str(&prefix);
            }
        }
        for _ in 0..3 {
            let max_piece = 1 + rng.below(40);
            let cuts = random_cuts(stream.len(), &mut rng, max_piece);
            let (out, _) = strip(&cut(stream.as_bytes(), &cuts), rng.below(2) == 0);
            assert!(
                out == expected_stream.as_bytes(),
                "split at {cuts:?}:\n got: {}\nwant: {}",
                String::from_utf8_lossy(&out).escape_debug(),
                expected_stream.escape_debug()
            );
        }
    }
    assert!(removed > 1_000, "{removed}");
    assert!(first_removed > 300, "{first_removed}");
}
