//! serde_json as a test oracle: the fixtures are what they claim, and the scanner and the
//! stripper agree with a full parse on random documents.

use serde_json::{Map, Number, Value};
#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
use wasm_bindgen_test::wasm_bindgen_test as test;

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
        assert_eq!(usage_only, expected_usage_only);
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

fn gen_number(rng: &mut XorShift) -> Value {
    match rng.below(6) {
        0 => Value::from(rng.below(10) as u64),
        1 => Value::from(rng.next() >> rng.below(64)),
        2 => Value::from(u64::MAX),
        3 => Value::from(-(rng.below(1000) as i64) - 1),
        4 => Number::from_f64(rng.below(1000) as f64 / 8.0).map_or(Value::Null, Value::Number),
        _ => Number::from_f64(1e21).map_or(Value::Null, Value::Number),
    }
}

fn gen_value(rng: &mut XorShift, depth: usize) -> Value {
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

fn gen_object(rng: &mut XorShift, depth: usize) -> Value {
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
    let mut rng = XorShift::new(2024);
    let mut usage_only_events = 0;
    let mut usages = 0;
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

            let event: String = text
                .lines()
                .map(|l| format!("data: {l}\n"))
                .collect::<String>()
                + "\n";
            stream.push_str(&event);
            expected_usage = want.or(expected_usage);
            if oracle_usage_only(&doc) {
                usage_only_events += 1;
            } else {
                expected_stream.push_str(&event);
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
}
