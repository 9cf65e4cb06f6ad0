use super::*;
use crate::testing::test;
use serde_json::{json, Value};
use std::borrow::Cow;

fn parsed(body: &str) -> Parsed<'_> {
    match parse(body.as_bytes()) {
        Ok(p) => p,
        Err(e) => panic!("{body:?} should parse, got {e}"),
    }
}

fn parse_err(body: &[u8]) -> BodyError {
    match parse(body) {
        Ok(_) => panic!("{:?} should be refused", String::from_utf8_lossy(body)),
        Err(e) => e,
    }
}

fn syntax_reason(body: &str) -> &'static str {
    match parse_err(body.as_bytes()) {
        BodyError::Syntax { reason, .. } => reason,
        other => panic!("{body:?}: expected a syntax error, got {other:?}"),
    }
}

/// The rewritten body as text, or None when nothing changed.
fn rw(body: &str, endpoint: Endpoint, plan: &Plan<'_>) -> Option<String> {
    let p = parsed(body);
    let out = rewrite(body.as_bytes(), &p, endpoint, plan).unwrap();
    out.body.map(|b| {
        assert_eq!(b.capacity(), b.len(), "output is sized exactly");
        String::from_utf8(b).unwrap()
    })
}

fn rw_err(body: &str, endpoint: Endpoint, plan: &Plan<'_>) -> BodyError {
    let p = parsed(body);
    rewrite(body.as_bytes(), &p, endpoint, plan).unwrap_err()
}

fn json_of(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

fn cap(n: u64) -> Plan<'static> {
    Plan {
        max_tokens: Some(n),
        ..Plan::default()
    }
}

fn model(m: &str) -> Plan<'_> {
    Plan {
        model: Some(m),
        ..Plan::default()
    }
}

const USAGE: Plan<'static> = Plan {
    model: None,
    max_tokens: None,
    temperature: None,
    system_prompt: None,
    include_usage: true,
};

// ---------------------------------------------------------------- parse: model and stream

#[test]
fn reads_model_and_stream_from_a_chat_body() {
    let p =
        parsed(r#"{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}],"stream":true}"#);
    assert_eq!(p.model(), Some("gpt-4o"));
    assert!(p.stream());
}

#[test]
fn model_is_none_and_stream_false_when_absent() {
    let p = parsed(r#"{"input":"hello"}"#);
    assert_eq!(p.model(), None);
    assert!(!p.stream());
    assert!(!p.client_asked_usage());
}

#[test]
fn an_empty_object_parses() {
    let p = parsed("{}");
    assert_eq!(p.model(), None);
    let p = parsed(" \n\t{ \r\n } \n");
    assert_eq!(p.model(), None);
}

#[test]
fn model_escapes_are_decoded() {
    let p = parsed(r#"{"model":"gpt\u002d4.1"}"#);
    assert_eq!(p.model(), Some("gpt-4.1"));
    let p = parsed(r#"{"model":"a\"b\\c\/d\b\f\n\r\t"}"#);
    assert_eq!(p.model(), Some("a\"b\\c/d\u{8}\u{c}\n\r\t"));
}

#[test]
fn model_without_escapes_is_borrowed_from_the_body() {
    let p = parsed(r#"{"model":"gpt-4o"}"#);
    assert!(matches!(p.model, Some(Cow::Borrowed(_))));
    let p = parsed(r#"{"model":"gpt\u002d4o"}"#);
    assert!(matches!(p.model, Some(Cow::Owned(_))));
}

#[test]
fn model_surrogate_pairs_decode_and_lone_surrogates_become_replacement_characters() {
    let p = parsed(r#"{"model":"x\ud83d\ude00y"}"#);
    assert_eq!(p.model(), Some("x😀y"));
    let p = parsed(r#"{"model":"\ud800"}"#);
    assert_eq!(p.model(), Some("\u{FFFD}"));
    let p = parsed(r#"{"model":"\udc00\ud800\u0041\ud83d"}"#);
    assert_eq!(p.model(), Some("\u{FFFD}\u{FFFD}A\u{FFFD}"));
    let p = parsed(r#"{"model":"\uD83D\uDE00"}"#);
    assert_eq!(p.model(), Some("😀"));
}

#[test]
fn unicode_model_names_are_read_as_is() {
    let p = parsed(r#"{"model":"模型-🙂-é"}"#);
    assert_eq!(p.model(), Some("模型-🙂-é"));
}

#[test]
fn keys_are_compared_after_unescaping() {
    let p = parsed(r#"{"mod\u0065l":"gpt-4o","\u0073tream":true}"#);
    assert_eq!(p.model(), Some("gpt-4o"));
    assert!(p.stream());
    let p = parsed(r#"{"\u006D\u006F\u0064\u0065\u006C":"m"}"#);
    assert_eq!(p.model(), Some("m"));
}

#[test]
fn keys_that_only_resemble_tracked_ones_are_ignored() {
    let p = parsed(r#"{"Model":"a","model ":"b","models":"c","mode":"d","\u006dodel\u0000":"e"}"#);
    assert_eq!(p.model(), None);
    let long = format!(r#"{{"model\u0020{}":1}}"#, "x".repeat(100));
    assert_eq!(parsed(&long).model(), None);
}

#[test]
fn model_nested_inside_messages_is_not_the_model() {
    let p = parsed(
        r#"{"messages":[{"role":"user","content":"x","model":"evil"}],"metadata":{"model":"also-not"}}"#,
    );
    assert_eq!(p.model(), None);
    let p = parsed(r#"{"a":{"model":"x"},"model":"real","b":[{"model":"y"}]}"#);
    assert_eq!(p.model(), Some("real"));
}

#[test]
fn duplicate_model_is_refused() {
    assert_eq!(
        parse_err(br#"{"model":"a","model":"b"}"#),
        BodyError::DuplicateKey("model")
    );
    assert_eq!(
        parse_err(br#"{"model":"a","mod\u0065l":"b"}"#),
        BodyError::DuplicateKey("model")
    );
    assert_eq!(
        parse_err(br#"{"model":"a","x":{},"model":null}"#),
        BodyError::DuplicateKey("model")
    );
}

#[test]
fn duplicates_of_every_tracked_key_are_refused() {
    for key in [
        "model",
        "stream",
        "stream_options",
        "max_tokens",
        "max_completion_tokens",
        "max_output_tokens",
        "temperature",
        "messages",
    ] {
        let body = format!(r#"{{"{key}":null,"other":1,"{key}":null}}"#);
        assert_eq!(parse_err(body.as_bytes()), BodyError::DuplicateKey(key));
    }
}

#[test]
fn duplicates_of_untracked_keys_are_fine() {
    let p = parsed(r#"{"user":"a","user":"b","model":"m","n":1,"n":2}"#);
    assert_eq!(p.model(), Some("m"));
}

#[test]
fn a_model_that_is_not_a_string_is_refused() {
    for v in [
        "null",
        "1",
        "true",
        "false",
        "{}",
        "[\"gpt\"]",
        "{\"name\":\"gpt\"}",
        "-0.5",
    ] {
        let body = format!(r#"{{"model":{v}}}"#);
        assert_eq!(
            parse_err(body.as_bytes()),
            BodyError::NotAString("model"),
            "{body}"
        );
    }
}

#[test]
fn stream_is_true_false_or_null_and_nothing_else() {
    assert!(parsed(r#"{"stream":true}"#).stream());
    assert!(!parsed(r#"{"stream":false}"#).stream());
    assert!(!parsed(r#"{"stream":null}"#).stream());
    for v in ["1", "0", "\"true\"", "{}", "[]", "[true]"] {
        let body = format!(r#"{{"stream":{v}}}"#);
        assert_eq!(
            parse_err(body.as_bytes()),
            BodyError::NotABoolean("stream"),
            "{body}"
        );
    }
}

#[test]
fn syntax_errors_win_over_semantic_ones() {
    // The duplicate is seen first, but the body is not JSON at all.
    assert!(matches!(
        parse_err(br#"{"model":"a","model":"b",}"#),
        BodyError::Syntax { .. }
    ));
    assert!(matches!(
        parse_err(br#"{"model":1,"x":tru}"#),
        BodyError::Syntax { .. }
    ));
}

// ---------------------------------------------------------------- parse: refusals

#[test]
fn an_empty_or_blank_body_is_refused() {
    assert_eq!(parse_err(b""), BodyError::Empty);
    assert_eq!(parse_err(b" \n\r\t "), BodyError::Empty);
}

#[test]
fn a_byte_order_mark_is_refused() {
    assert_eq!(parse_err(b"\xEF\xBB\xBF{}"), BodyError::ByteOrderMark);
    assert_eq!(parse_err(b"\xEF\xBB\xBF"), BodyError::ByteOrderMark);
    // Not at the start: it is just invalid JSON.
    assert!(matches!(
        parse_err(b" \xEF\xBB\xBF{}"),
        BodyError::Syntax { offset: 1, .. }
    ));
}

#[test]
fn invalid_utf8_is_refused_wherever_it_is() {
    let cases: [(&[u8], usize); 7] = [
        (b"{\"model\":\"a\xffb\"}", 11),
        (b"{\"a\xc3\":1}", 3),
        (b"{\"a\":\"\xed\xa0\x80\"}", 6),     // encoded surrogate
        (b"{\"a\":\"\xc0\xaf\"}", 6),         // overlong
        (b"{\"a\":\"\xf4\x90\x80\x80\"}", 6), // above U+10FFFF
        (b"{\"a\":1}\xff", 7),
        (b"{\"a\":\"\xe6\x97\"}", 6), // truncated
    ];
    for (body, offset) in cases {
        assert_eq!(
            parse_err(body),
            BodyError::InvalidUtf8 { offset },
            "{body:?}"
        );
    }
}

#[test]
fn top_level_values_other_than_objects_are_refused() {
    for body in [
        "[]",
        "[1,2]",
        "\"model\"",
        "42",
        "-1.5e3",
        "true",
        "false",
        "null",
        " [{}] ",
    ] {
        assert_eq!(parse_err(body.as_bytes()), BodyError::NotAnObject, "{body}");
    }
}

#[test]
fn trailing_commas_are_refused() {
    assert_eq!(syntax_reason(r#"{"a":1,}"#), "trailing comma");
    assert_eq!(syntax_reason(r#"{"a":[1,2,]}"#), "trailing comma");
    assert_eq!(syntax_reason(r#"{"a":{"b":1,}}"#), "trailing comma");
    assert_eq!(syntax_reason(r#"{,}"#), "expected a string key");
    assert_eq!(syntax_reason(r#"{"a":[,1]}"#), "unexpected ','");
}

#[test]
fn numbers_must_follow_the_json_grammar() {
    for (v, reason) in [
        ("01", "leading zero in number"),
        ("-01", "leading zero in number"),
        ("00", "leading zero in number"),
        ("1.", "invalid number"),
        ("1.e5", "invalid number"),
        (".5", "unexpected '.'"),
        ("+1", "unexpected '+'"),
        ("-", "invalid number"),
        ("-a", "invalid number"),
        ("1e", "invalid number"),
        ("1e+", "invalid number"),
        ("1E-", "invalid number"),
        ("NaN", "unexpected character"),
        ("Infinity", "unexpected character"),
        ("-Infinity", "invalid number"),
        ("0x10", "expected ',' or '}'"),
        ("1_000", "expected ',' or '}'"),
    ] {
        let body = format!(r#"{{"max_tokens":{v}}}"#);
        assert_eq!(syntax_reason(&body), reason, "{body}");
    }
    for v in [
        "0",
        "-0",
        "0.0",
        "-0.0e-0",
        "1e5",
        "1E+5",
        "123.456e-78",
        "99999999999999999999999",
        "1e400",
    ] {
        let body = format!(r#"{{"max_tokens":{v}}}"#);
        parsed(&body);
    }
}

#[test]
fn literals_must_be_exact() {
    for v in [
        "tru",
        "True",
        "nul",
        "NULL",
        "falsey",
        "t",
        "undefined",
        "nulll",
    ] {
        let body = format!(r#"{{"a":{v}}}"#);
        assert!(
            matches!(parse_err(body.as_bytes()), BodyError::Syntax { .. }),
            "{body}"
        );
    }
}

#[test]
fn string_escapes_must_be_valid() {
    assert_eq!(syntax_reason(r#"{"a":"\x41"}"#), "invalid escape in string");
    assert_eq!(syntax_reason(r#"{"a":"\'"}"#), "invalid escape in string");
    assert_eq!(
        syntax_reason(r#"{"a":"\U0041"}"#),
        "invalid escape in string"
    );
    assert_eq!(
        syntax_reason(r#"{"a":"\u12G4"}"#),
        "invalid \\u escape in string"
    );
    assert_eq!(
        syntax_reason(r#"{"a":"\u12"}"#),
        "invalid \\u escape in string"
    );
    assert_eq!(syntax_reason(r#"{"a\q":1}"#), "invalid escape in string");
    // Any four hex digits are accepted, lone surrogates included (RFC 8259 grammar).
    parsed(r#"{"a":"\u0000\uffff\uD800\udfff\uABCD"}"#);
}

#[test]
fn raw_control_characters_in_strings_are_refused() {
    for c in ['\u{0}', '\u{1}', '\n', '\r', '\t', '\u{1f}'] {
        let body = format!("{{\"a\":\"x{c}y\"}}");
        assert_eq!(
            syntax_reason(&body),
            "unescaped control character in string",
            "{body:?}"
        );
        let body = format!("{{\"k{c}\":1}}");
        assert_eq!(
            syntax_reason(&body),
            "unescaped control character in string"
        );
    }
    // DEL and everything above U+001F is fine.
    parsed("{\"a\":\"\u{7f}\u{80}\u{2028}\"}");
}

#[test]
fn truncated_bodies_are_refused() {
    for body in [
        "{",
        "{\"",
        "{\"a",
        "{\"a\"",
        "{\"a\":",
        "{\"a\":1",
        "{\"a\":1,",
        "{\"a\":\"x",
        "{\"a\":\"x\\",
        "{\"a\":\"\\u00",
        "{\"a\":[",
        "{\"a\":[1",
        "{\"a\":{\"b\":",
        "{\"a\":tr",
    ] {
        assert!(
            matches!(parse_err(body.as_bytes()), BodyError::Syntax { .. }),
            "{body}"
        );
    }
}

#[test]
fn structure_errors_are_refused() {
    assert_eq!(syntax_reason(r#"{"a" 1}"#), "expected ':' after object key");
    assert_eq!(syntax_reason(r#"{"a":1 "b":2}"#), "expected ',' or '}'");
    assert_eq!(syntax_reason(r#"{"a":[1 2]}"#), "expected ',' or ']'");
    assert_eq!(syntax_reason(r#"{a:1}"#), "expected a string key");
    assert_eq!(syntax_reason(r#"{'a':1}"#), "expected a string key");
    assert_eq!(syntax_reason(r#"{"a":'x'}"#), "unexpected '\\''");
    assert_eq!(syntax_reason(r#"{"a":1]"#), "expected ',' or '}'");
    assert_eq!(syntax_reason(r#"{"a":[1}"#), "expected ',' or ']'");
    assert_eq!(syntax_reason(r#"{"a":}"#), "unexpected '}'");
    assert_eq!(syntax_reason(r#"{"a"::1}"#), "unexpected ':'");
    assert_eq!(syntax_reason("}"), "unexpected '}'");
    assert_eq!(syntax_reason("{/*c*/}"), "expected a string key");
    assert_eq!(
        syntax_reason("{\"a\":1}\u{a0}"),
        "unexpected data after the JSON value"
    );
    assert_eq!(syntax_reason("{\u{a0}}"), "expected a string key");
}

#[test]
fn trailing_data_after_the_object_is_refused() {
    for body in [
        r#"{"a":1}}"#,
        r#"{"a":1}{}"#,
        r#"{} x"#,
        "{}\0",
        r#"{}[]"#,
        "{} ,",
    ] {
        assert_eq!(
            syntax_reason(body),
            "unexpected data after the JSON value",
            "{body}"
        );
    }
    // Trailing whitespace is fine.
    parsed("{}\n\r\t ");
}

#[test]
fn syntax_errors_point_at_the_offending_byte() {
    let e = parse_err(br#"{"model":"a","x":]"#);
    assert_eq!(
        e,
        BodyError::Syntax {
            offset: 17,
            reason: "unexpected ']'"
        }
    );
    assert_eq!(
        e.to_string(),
        "request body is not valid JSON: unexpected ']' at byte 17"
    );
    assert_eq!(
        parse_err(b"{\"a\":1"),
        BodyError::Syntax {
            offset: 6,
            reason: "unexpected end of input"
        }
    );
}

#[test]
fn error_messages_are_fit_for_clients() {
    let cases = [
        (BodyError::Empty, "request body is empty"),
        (
            BodyError::ByteOrderMark,
            "request body must not start with a byte order mark",
        ),
        (
            BodyError::InvalidUtf8 { offset: 3 },
            "request body is not valid UTF-8: bad byte at byte 3",
        ),
        (BodyError::NotAnObject, "request body must be a JSON object"),
        (
            BodyError::DuplicateKey("model"),
            "duplicate top-level key \"model\"",
        ),
        (
            BodyError::DuplicateNestedKey("stream_options.include_usage"),
            "duplicate key \"stream_options.include_usage\"",
        ),
        (BodyError::NotAString("model"), "\"model\" must be a string"),
        (
            BodyError::NotABoolean("stream"),
            "\"stream\" must be a boolean",
        ),
        (
            BodyError::NotANumber("max_tokens"),
            "\"max_tokens\" must be a number",
        ),
    ];
    for (e, text) in cases {
        assert_eq!(e.to_string(), text);
    }
}

#[test]
fn whitespace_is_allowed_between_every_token() {
    let body = " \r\n\t{ \"model\" \n:\t\"m\" , \"a\" : [ 1 , { \"b\" : null } , [ ] , { } ] , \"stream\"\r:\rtrue }\n";
    let p = parsed(body);
    assert_eq!(p.model(), Some("m"));
    assert!(p.stream());
}

#[test]
fn deep_nesting_does_not_overflow_the_stack() {
    let n = 100_000;
    let open = "[".repeat(n);
    assert!(matches!(
        parse_err(open.as_bytes()),
        BodyError::Syntax {
            reason: "unexpected end of input",
            ..
        }
    ));
    let balanced = format!("{}{}", open, "]".repeat(n));
    assert_eq!(parse_err(balanced.as_bytes()), BodyError::NotAnObject);
    let inside = format!(
        r#"{{"model":"m","a":{}{}, "stream":true}}"#,
        open,
        "]".repeat(n)
    );
    let p = parsed(&inside);
    assert_eq!(p.model(), Some("m"));
    assert!(p.stream());
    let objects = format!("{}1{}", r#"{"model":"#.repeat(n), "}".repeat(n));
    assert_eq!(
        parse_err(objects.as_bytes()),
        BodyError::NotAString("model")
    );
    let mismatched = format!(r#"{{"a":{}{}]}}"#, open, "]".repeat(n - 2));
    assert!(matches!(
        parse_err(mismatched.as_bytes()),
        BodyError::Syntax { .. }
    ));
    // Alternating objects and arrays, to exercise the bit stack past its inline part.
    let mut mixed = String::from(r#"{"x":"#);
    for _ in 0..5000 {
        mixed.push_str(r#"[{"k":"#);
    }
    mixed.push('0');
    for _ in 0..5000 {
        mixed.push_str("}]");
    }
    mixed.push('}');
    parsed(&mixed);
    let wrong = mixed.replacen("}]", "]}", 1);
    assert!(matches!(
        parse_err(wrong.as_bytes()),
        BodyError::Syntax { .. }
    ));
}

#[test]
fn parse_agrees_with_serde_json_on_validity() {
    let samples: &[&str] = &[
        "{}",
        "{\"a\":1}",
        "{\"a\":[1,2,{\"b\":null}],\"c\":\"\\u00e9\\n\"}",
        "{\"a\":1,}",
        "{\"a\":[1,]}",
        "{\"a\":01}",
        "{\"a\":1.}",
        "{\"a\":.1}",
        "{\"a\":-}",
        "{\"a\":1e}",
        "{\"a\":1e-5}",
        "{\"a\":-0.0E+1}",
        "{\"a\":NaN}",
        "{\"a\":Infinity}",
        "{\"a\":\"\\x\"}",
        "{\"a\":\"\\u00\"}",
        "{\"a\":\"\\ud83d\\ude00\"}",
        "{\"a\":\"\t\"}",
        "{\"a\":\"\u{7f}\"}",
        "{\"a\":tru}",
        "{\"a\":true}",
        "{\"a\":nul}",
        "{\"a\" 1}",
        "{\"a\":1 \"b\":2}",
        "{\"a\":1}}",
        "{\"a\":1} x",
        "{\"a\":1} ",
        "{a:1}",
        "{'a':1}",
        "",
        " ",
        "[]",
        "\"s\"",
        "1",
        "null",
        "{\"a\":[[[[[]]]]]}",
        "{\"a\":{\"b\":{\"c\":{}}}}",
        "{\"\":\"\"}",
        "{\"a\":\"\\/\\b\\f\\n\\r\\t\\\"\\\\\"}",
        "{\"a\":[1 2]}",
        "{\"a\":{\"b\"}}",
        "{\"a\":\"unterminated}",
        "{\"a\":12345678901234567890123}",
        "{\"model\":\"a\",\"model\":\"b\"}",
        "{\"a\":1}\u{0}",
        "\u{feff}{}",
    ];
    for s in samples {
        check_validity_agrees(s.as_bytes());
    }
    check_validity_agrees(b"{\"a\":\"\xff\"}");
    check_validity_agrees(b"{\"a\":\"\xc3\xa9\"}");
}

/// Whether parse() thinks `body` is JSON (it may still refuse it for what it holds).
fn parse_says_json(body: &[u8]) -> bool {
    !matches!(
        parse(body),
        Err(BodyError::Empty
            | BodyError::ByteOrderMark
            | BodyError::InvalidUtf8 { .. }
            | BodyError::Syntax { .. })
    )
}

fn check_validity_agrees(body: &[u8]) {
    let ours = parse_says_json(body);
    let theirs = serde_json::from_slice::<Value>(body).is_ok();
    assert_eq!(
        ours,
        theirs,
        "validity of {:?}: parse says {ours}, serde_json says {theirs}",
        String::from_utf8_lossy(body)
    );
}

/// The only places where parse() accepts what serde_json refuses, on purpose.
#[test]
fn parse_accepts_what_rfc_8259_allows_beyond_serde_json() {
    // Lone surrogates: any \uXXXX is grammatical.
    assert!(serde_json::from_str::<Value>(r#"{"a":"\ud800"}"#).is_err());
    parsed(r#"{"a":"\ud800"}"#);
    // Numbers beyond f64 range.
    assert!(serde_json::from_str::<Value>(r#"{"a":1e400}"#).is_err());
    parsed(r#"{"a":1e400}"#);
    // Nesting deeper than serde_json's recursion limit (128).
    let deep = format!(r#"{{"a":{}{}}}"#, "[".repeat(200), "]".repeat(200));
    assert!(serde_json::from_str::<Value>(&deep).is_err());
    parsed(&deep);
}

#[test]
fn mutated_bodies_never_panic_and_agree_with_serde_json() {
    let seeds = [
        r#"{"model":"gpt-4o","messages":[{"role":"user","content":"h\u00e9 \"q\" 🙂"}],"stream":true,"stream_options":{"include_usage":false},"max_tokens":100,"temperature":0.5}"#,
        r#"{ "a" : [ 1 , -2.5e3 , true , false , null , { "b" : "c" } ] , "d" : { } }"#,
        "{\"x\":[[],[[]],{\"y\":{\"z\":[0]}}],\"w\":\"\\\\\\/\\n\"}",
    ];
    let alphabet = b"{}[]:,\"\\ 0123456789-+.eEtrufalsn\n\tu\x00\x1f\xff\xc3\xa9ab";
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let (mut accepted, mut refused) = (0, 0);
    for _ in 0..20_000 {
        let seed = seeds[rng.below(seeds.len())];
        let mut body = seed.as_bytes().to_vec();
        for _ in 0..1 + rng.below(3) {
            let at = rng.below(body.len() + 1);
            match rng.below(3) {
                0 if at < body.len() => {
                    body.remove(at);
                }
                1 if at < body.len() => body[at] = alphabet[rng.below(alphabet.len())],
                _ => body.insert(at, alphabet[rng.below(alphabet.len())]),
            }
        }
        let ours = parse_says_json(&body);
        match serde_json::from_slice::<Value>(&body) {
            Ok(_) => assert!(ours, "{:?} refused", String::from_utf8_lossy(&body)),
            // The deliberate differences: lone surrogates and numbers beyond f64.
            Err(e)
                if e.to_string().contains("surrogate")
                    || e.to_string().contains("hex escape")
                    || e.to_string().contains("number out of range") => {}
            Err(e) => assert!(
                !ours,
                "{:?} accepted; serde_json: {e}",
                String::from_utf8_lossy(&body)
            ),
        }
        if parse(&body).is_ok() {
            accepted += 1;
        } else {
            refused += 1;
        }
        if let Ok(p) = parse(&body) {
            // Whatever parses must rewrite without panicking and stay valid.
            let plan = Plan {
                model: Some("m"),
                max_tokens: Some(10),
                temperature: Some(0.5),
                system_prompt: Some("s"),
                include_usage: true,
            };
            for endpoint in [Endpoint::Chat, Endpoint::Completions, Endpoint::Responses] {
                if let Ok(out) = rewrite(&body, &p, endpoint, &plan) {
                    if let Some(out) = out.body {
                        serde_json::from_slice::<Value>(&out).unwrap();
                        assert_eq!(parse(&out).unwrap().model(), Some("m"));
                    }
                }
            }
        }
    }
    println!("mutated bodies: {accepted} accepted, {refused} refused");
    assert!(
        accepted > 2000 && refused > 5000,
        "{accepted} accepted, {refused} refused"
    );
}

// ---------------------------------------------------------------- rewrite: model

#[test]
fn rewrites_model_and_keeps_every_other_byte() {
    let body = "{\n  \"model\" : \"gpt-4o\",\n  \"messages\": [ {\"role\":\"user\", \"content\":\"h\\u00e9llo 🙂 你好\"} ],\n  \"x\": 1.50e+2\n}\n";
    let out = rw(body, Endpoint::Chat, &model("claude-3")).unwrap();
    assert_eq!(out, body.replace("\"gpt-4o\"", "\"claude-3\""));
}

#[test]
fn the_new_model_is_escaped_as_a_json_string() {
    let target = "a\"b\\c\nd\u{1}e\u{1f}é🙂\t\u{8}\u{c}\r/";
    let out = rw(r#"{"model":"x"}"#, Endpoint::Other, &model(target)).unwrap();
    assert_eq!(out, r#"{"model":"a\"b\\c\nd\u0001e\u001fé🙂\t\b\f\r/"}"#);
    assert_eq!(parsed(&out).model(), Some(target));
    assert_eq!(json_of(&out)["model"], json!(target));
}

#[test]
fn an_escaped_model_is_replaced_whole() {
    let out = rw(
        r#"{"mod\u0065l":"gpt\u002d4","n":1}"#,
        Endpoint::Chat,
        &model("o3"),
    )
    .unwrap();
    assert_eq!(out, r#"{"mod\u0065l":"o3","n":1}"#);
}

#[test]
fn the_model_is_added_when_absent() {
    assert_eq!(
        rw("{}", Endpoint::Embeddings, &model("m")).unwrap(),
        r#"{"model":"m"}"#
    );
    assert_eq!(
        rw(r#"{"input":"x"}"#, Endpoint::Embeddings, &model("m")).unwrap(),
        r#"{"model":"m","input":"x"}"#
    );
    assert_eq!(
        rw("{ \n }", Endpoint::Other, &model("m")).unwrap(),
        "{\"model\":\"m\" \n }"
    );
}

#[test]
fn the_same_model_changes_nothing() {
    assert_eq!(rw(r#"{"model":"m"}"#, Endpoint::Chat, &model("m")), None);
    // Equal once decoded: the client's spelling stays.
    assert_eq!(
        rw(r#"{"model":"gpt\u002d4"}"#, Endpoint::Chat, &model("gpt-4")),
        None
    );
}

#[test]
fn an_empty_plan_changes_nothing() {
    for endpoint in [
        Endpoint::Chat,
        Endpoint::Completions,
        Endpoint::Embeddings,
        Endpoint::Responses,
        Endpoint::Other,
    ] {
        let out = rewrite(
            br#"{"model":"m","stream":true}"#,
            &parsed(r#"{"model":"m","stream":true}"#),
            endpoint,
            &Plan::default(),
        )
        .unwrap();
        assert_eq!(out.body, None);
        assert!(!out.client_asked_usage);
    }
}

#[test]
fn rewrite_reparses_a_body_that_is_not_the_parsed_one() {
    let a = br#"{"model":"a","x":"long enough to differ"}"#.to_vec();
    let b = br#"{"model":"b"}"#.to_vec();
    let p = parse(&a).unwrap();
    let out = rewrite(&b, &p, Endpoint::Chat, &model("c")).unwrap();
    assert_eq!(out.body.unwrap(), br#"{"model":"c"}"#);
    let same_len = br#"{"model":"b","x":"long enough to differ"}"#.to_vec();
    let out = rewrite(&same_len, &p, Endpoint::Chat, &model("b")).unwrap();
    assert_eq!(out.body, None);
    assert_eq!(
        rewrite(b"[]", &p, Endpoint::Chat, &model("c")).unwrap_err(),
        BodyError::NotAnObject
    );
}

// ---------------------------------------------------------------- rewrite: max tokens

#[test]
fn number_comparison_is_exact() {
    use super::number::exceeds;
    let n = 4096;
    for (text, expected) in [
        ("4096", false),
        ("4097", true),
        ("4095", false),
        ("0", false),
        ("-0", false),
        ("-5000", false),
        ("-1e400", false),
        ("4096.0", false),
        ("4096.5", true),
        ("4096.0000000000001", true),
        ("4095.9999", false),
        ("40.96e2", false),
        ("40.961e2", true),
        ("4.096E3", false),
        ("4.0961E+3", true),
        ("409600e-2", false),
        ("409601e-2", true),
        ("0.4096e4", false),
        ("0.000004097e9", true),
        ("1e400", true),
        ("1e4", true),
        ("1e3", false),
        ("1e-400", false),
        ("99999999999999999999999", true),
        ("18446744073709551616", true),
        ("0.00000", false),
        ("0e999999999999999999", false),
        ("5e99999999999999999999999", true),
        ("5e-99999999999999999999999", false),
        ("00004097", true), // not valid JSON, but harmless
    ] {
        assert_eq!(exceeds(text.as_bytes(), n), expected, "{text} > {n}");
    }
    assert!(!exceeds(b"18446744073709551615", u64::MAX));
    assert!(exceeds(b"18446744073709551615.5", u64::MAX));
    assert!(exceeds(b"18446744073709551616", u64::MAX));
    assert!(exceeds(b"9007199254740993", 9_007_199_254_740_992));
    assert!(exceeds(b"0.5", 0));
    assert!(exceeds(b"1e-300", 0));
    assert!(!exceeds(b"0.0", 0));
    assert!(!exceeds(b"", 0));
    assert!(!exceeds(b"garbage", 0));
}

#[test]
fn chat_caps_max_completion_tokens_and_max_tokens_when_present() {
    assert_eq!(
        rw(
            r#"{"max_completion_tokens":9000,"max_tokens":100}"#,
            Endpoint::Chat,
            &cap(4096)
        )
        .unwrap(),
        r#"{"max_completion_tokens":4096,"max_tokens":100}"#
    );
    assert_eq!(
        rw(
            r#"{"max_completion_tokens":9000,"max_tokens":9e9}"#,
            Endpoint::Chat,
            &cap(4096)
        )
        .unwrap(),
        r#"{"max_completion_tokens":4096,"max_tokens":4096}"#
    );
    assert_eq!(
        rw(r#"{"max_completion_tokens":null}"#, Endpoint::Chat, &cap(7)).unwrap(),
        r#"{"max_completion_tokens":7}"#
    );
    assert_eq!(
        rw(r#"{"max_tokens":5000}"#, Endpoint::Chat, &cap(4096)).unwrap(),
        r#"{"max_tokens":4096}"#
    );
}

#[test]
fn chat_adds_max_tokens_when_neither_limit_is_present() {
    assert_eq!(
        rw("{}", Endpoint::Chat, &cap(4096)).unwrap(),
        r#"{"max_tokens":4096}"#
    );
    assert_eq!(
        rw(r#"{"model":"m"}"#, Endpoint::Chat, &cap(4096)).unwrap(),
        r#"{"max_tokens":4096,"model":"m"}"#
    );
}

#[test]
fn smaller_negative_and_equal_limits_are_left_alone() {
    for v in [
        "100",
        "4096",
        "-1",
        "-99999999999999999999",
        "0",
        "4096.0",
        "1e3",
        "-1e400",
    ] {
        let body = format!(r#"{{"max_tokens":{v}}}"#);
        assert_eq!(rw(&body, Endpoint::Completions, &cap(4096)), None, "{body}");
    }
}

#[test]
fn huge_limits_are_lowered() {
    for v in [
        "1e400",
        "99999999999999999999999",
        "18446744073709551616",
        "4096.5",
        "4.0961e3",
        "1E+10",
    ] {
        let body = format!(r#"{{"max_tokens" : {v} , "x":1}}"#);
        assert_eq!(
            rw(&body, Endpoint::Completions, &cap(4096)).unwrap(),
            r#"{"max_tokens" : 4096 , "x":1}"#,
            "{body}"
        );
    }
}

#[test]
fn each_endpoint_caps_its_own_field() {
    let body = r#"{"max_tokens":9000,"max_completion_tokens":9000,"max_output_tokens":9000}"#;
    assert_eq!(
        rw(body, Endpoint::Completions, &cap(10)).unwrap(),
        r#"{"max_tokens":10,"max_completion_tokens":9000,"max_output_tokens":9000}"#
    );
    assert_eq!(
        rw(body, Endpoint::Responses, &cap(10)).unwrap(),
        r#"{"max_tokens":9000,"max_completion_tokens":9000,"max_output_tokens":10}"#
    );
    assert_eq!(
        rw(body, Endpoint::Chat, &cap(10)).unwrap(),
        r#"{"max_tokens":10,"max_completion_tokens":10,"max_output_tokens":9000}"#
    );
    assert_eq!(rw(body, Endpoint::Embeddings, &cap(10)), None);
    assert_eq!(rw(body, Endpoint::Other, &cap(10)), None);
    assert_eq!(
        rw("{}", Endpoint::Responses, &cap(10)).unwrap(),
        r#"{"max_output_tokens":10}"#
    );
    assert_eq!(
        rw(r#"{"max_tokens":1}"#, Endpoint::Responses, &cap(10)).unwrap(),
        r#"{"max_output_tokens":10,"max_tokens":1}"#
    );
    assert_eq!(
        rw("{}", Endpoint::Completions, &cap(10)).unwrap(),
        r#"{"max_tokens":10}"#
    );
    assert_eq!(rw("{}", Endpoint::Embeddings, &cap(10)), None);
}

#[test]
fn a_null_limit_is_set() {
    assert_eq!(
        rw(
            r#"{"max_output_tokens": null }"#,
            Endpoint::Responses,
            &cap(3)
        )
        .unwrap(),
        r#"{"max_output_tokens": 3 }"#
    );
}

#[test]
fn a_limit_that_is_not_a_number_is_refused_where_it_is_capped() {
    for v in ["\"100\"", "true", "false", "{}", "[1]"] {
        let body = format!(r#"{{"max_tokens":{v}}}"#);
        assert_eq!(
            rw_err(&body, Endpoint::Completions, &cap(10)),
            BodyError::NotANumber("max_tokens")
        );
        assert_eq!(
            rw_err(&body, Endpoint::Chat, &cap(10)),
            BodyError::NotANumber("max_tokens")
        );
        // Not capped there: left to the provider.
        assert_eq!(rw(&body, Endpoint::Embeddings, &cap(10)), None);
        assert_eq!(
            rw(&body, Endpoint::Responses, &cap(10)).unwrap(),
            format!(r#"{{"max_output_tokens":10,"max_tokens":{v}}}"#)
        );
        // No cap planned: nothing is checked.
        assert_eq!(rw(&body, Endpoint::Completions, &Plan::default()), None);
    }
    assert_eq!(
        rw_err(r#"{"max_completion_tokens":"9"}"#, Endpoint::Chat, &cap(10)),
        BodyError::NotANumber("max_completion_tokens")
    );
    assert_eq!(
        rw_err(r#"{"max_output_tokens":[]}"#, Endpoint::Responses, &cap(10)),
        BodyError::NotANumber("max_output_tokens")
    );
}

#[test]
fn the_cap_can_be_u64_max_or_zero() {
    assert_eq!(
        rw("{}", Endpoint::Completions, &cap(u64::MAX)).unwrap(),
        r#"{"max_tokens":18446744073709551615}"#
    );
    assert_eq!(
        rw(r#"{"max_tokens":1}"#, Endpoint::Completions, &cap(0)).unwrap(),
        r#"{"max_tokens":0}"#
    );
}

// ---------------------------------------------------------------- rewrite: temperature

fn temp(t: f64) -> Plan<'static> {
    Plan {
        temperature: Some(t),
        ..Plan::default()
    }
}

#[test]
fn temperature_is_added_when_absent() {
    assert_eq!(
        rw("{}", Endpoint::Chat, &temp(0.7)).unwrap(),
        r#"{"temperature":0.7}"#
    );
    assert_eq!(
        rw(r#"{"a":1}"#, Endpoint::Completions, &temp(1.0)).unwrap(),
        r#"{"temperature":1,"a":1}"#
    );
    assert_eq!(
        rw(r#"{"a":1}"#, Endpoint::Responses, &temp(0.0)).unwrap(),
        r#"{"temperature":0,"a":1}"#
    );
    for t in [0.7, 1.0, 0.0, -0.0, 2.0, 1e-7, 0.1 + 0.2, 1e300, 123.456] {
        let out = rw("{}", Endpoint::Chat, &temp(t)).unwrap();
        assert_eq!(json_of(&out)["temperature"].as_f64(), Some(t), "{out}");
    }
}

#[test]
fn a_null_temperature_is_set_and_a_present_one_kept() {
    assert_eq!(
        rw(r#"{"temperature":null,"b":2}"#, Endpoint::Chat, &temp(0.5)).unwrap(),
        r#"{"temperature":0.5,"b":2}"#
    );
    for v in ["0", "1.5", "\"hot\"", "true", "{}"] {
        let body = format!(r#"{{"temperature":{v}}}"#);
        assert_eq!(rw(&body, Endpoint::Chat, &temp(0.5)), None, "{body}");
    }
}

#[test]
fn temperature_is_only_for_generating_endpoints_and_finite_values() {
    assert_eq!(rw("{}", Endpoint::Embeddings, &temp(0.5)), None);
    assert_eq!(rw("{}", Endpoint::Other, &temp(0.5)), None);
    for t in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        assert_eq!(rw("{}", Endpoint::Chat, &temp(t)), None);
    }
}

// ---------------------------------------------------------------- rewrite: system prompt

fn system(s: &str) -> Plan<'_> {
    Plan {
        system_prompt: Some(s),
        ..Plan::default()
    }
}

#[test]
fn a_system_message_is_prepended_to_messages() {
    assert_eq!(
        rw(r#"{"messages":[]}"#, Endpoint::Chat, &system("Be brief.")).unwrap(),
        r#"{"messages":[{"role":"system","content":"Be brief."}]}"#
    );
    assert_eq!(
        rw(
            r#"{"messages":[{"role":"user","content":"hi"}]}"#,
            Endpoint::Chat,
            &system("S")
        )
        .unwrap(),
        r#"{"messages":[{"role":"system","content":"S"},{"role":"user","content":"hi"}]}"#
    );
    assert_eq!(
        rw(
            "{\"messages\": [\n  1 ,\n  2\n]}",
            Endpoint::Chat,
            &system("S")
        )
        .unwrap(),
        "{\"messages\": [{\"role\":\"system\",\"content\":\"S\"},\n  1 ,\n  2\n]}"
    );
    assert_eq!(
        rw("{\"messages\":[ \n ]}", Endpoint::Chat, &system("S")).unwrap(),
        "{\"messages\":[{\"role\":\"system\",\"content\":\"S\"} \n ]}"
    );
}

#[test]
fn the_system_prompt_is_escaped() {
    let prompt = "Say \"hi\"\n\\ 你好 🙂 \u{0}";
    let out = rw(r#"{"messages":[]}"#, Endpoint::Chat, &system(prompt)).unwrap();
    assert_eq!(
        json_of(&out)["messages"][0],
        json!({"role":"system","content":prompt})
    );
}

#[test]
fn no_system_message_without_a_messages_array_or_outside_chat() {
    for body in [
        "{}",
        r#"{"messages":null}"#,
        r#"{"messages":"hi"}"#,
        r#"{"messages":{"role":"user"}}"#,
        r#"{"input":[{"messages":[]}]}"#,
    ] {
        assert_eq!(rw(body, Endpoint::Chat, &system("S")), None, "{body}");
    }
    for endpoint in [
        Endpoint::Completions,
        Endpoint::Embeddings,
        Endpoint::Responses,
        Endpoint::Other,
    ] {
        assert_eq!(rw(r#"{"messages":[]}"#, endpoint, &system("S")), None);
    }
}

// ---------------------------------------------------------------- rewrite: stream usage

fn usage(body: &str, endpoint: Endpoint) -> (Option<String>, bool) {
    let p = parsed(body);
    let out = rewrite(body.as_bytes(), &p, endpoint, &USAGE).unwrap();
    assert_eq!(out.client_asked_usage, p.client_asked_usage());
    (
        out.body.map(|b| String::from_utf8(b).unwrap()),
        out.client_asked_usage,
    )
}

#[test]
fn stream_options_are_added_when_absent_or_null() {
    assert_eq!(
        usage(r#"{"stream":true}"#, Endpoint::Chat),
        (
            Some(r#"{"stream_options":{"include_usage":true},"stream":true}"#.into()),
            false
        )
    );
    assert_eq!(
        usage(
            r#"{"stream":true,"stream_options":null}"#,
            Endpoint::Completions
        ),
        (
            Some(r#"{"stream":true,"stream_options":{"include_usage":true}}"#.into()),
            false
        )
    );
}

#[test]
fn include_usage_true_from_the_client_changes_nothing_and_is_reported() {
    assert_eq!(
        usage(
            r#"{"stream":true,"stream_options":{"include_usage":true}}"#,
            Endpoint::Chat
        ),
        (None, true)
    );
    assert_eq!(
        usage(
            r#"{"stream":true,"stream_options":{"a":1,"include\u005fusage" : true }}"#,
            Endpoint::Chat
        ),
        (None, true)
    );
}

#[test]
fn client_asked_usage_is_reported_whatever_the_plan() {
    let body = r#"{"stream_options":{"include_usage":true}}"#;
    let p = parsed(body);
    assert!(p.client_asked_usage());
    for endpoint in [Endpoint::Chat, Endpoint::Embeddings, Endpoint::Other] {
        let out = rewrite(body.as_bytes(), &p, endpoint, &model("m")).unwrap();
        assert!(out.client_asked_usage);
        assert!(out.body.is_some());
    }
    for body in [
        r#"{"stream_options":{"include_usage":false}}"#,
        r#"{"stream_options":{"include_usage":"true"}}"#,
        r#"{"stream_options":{"x":{"include_usage":true}}}"#,
        r#"{"stream_options":null}"#,
        r#"{"include_usage":true}"#,
    ] {
        assert!(!parsed(body).client_asked_usage(), "{body}");
    }
}

#[test]
fn include_usage_false_or_null_becomes_true() {
    for v in ["false", "null", "0", "\"no\""] {
        let body = format!(r#"{{"stream":true,"stream_options":{{"include_usage": {v} ,"x":1}}}}"#);
        assert_eq!(
            usage(&body, Endpoint::Chat),
            (
                Some(r#"{"stream":true,"stream_options":{"include_usage": true ,"x":1}}"#.into()),
                false
            ),
            "{body}"
        );
    }
}

#[test]
fn include_usage_is_inserted_into_existing_stream_options() {
    assert_eq!(
        usage(r#"{"stream":true,"stream_options":{}}"#, Endpoint::Chat)
            .0
            .unwrap(),
        r#"{"stream":true,"stream_options":{"include_usage":true}}"#
    );
    assert_eq!(
        usage(r#"{"stream":true,"stream_options":{ }}"#, Endpoint::Chat)
            .0
            .unwrap(),
        r#"{"stream":true,"stream_options":{"include_usage":true }}"#
    );
    assert_eq!(
        usage(
            r#"{"stream":true,"stream_options":{"a":1}}"#,
            Endpoint::Chat
        )
        .0
        .unwrap(),
        r#"{"stream":true,"stream_options":{"a":1,"include_usage":true}}"#
    );
    assert_eq!(
        usage(
            "{\"stream_options\":{\"a\":{\"include_usage\":false} \n},\"stream\":true}",
            Endpoint::Completions
        )
        .0
        .unwrap(),
        "{\"stream_options\":{\"a\":{\"include_usage\":false},\"include_usage\":true \n},\"stream\":true}"
    );
}

#[test]
fn stream_options_of_another_type_are_left_alone() {
    for v in ["\"x\"", "[]", "1", "true"] {
        let body = format!(r#"{{"stream":true,"stream_options":{v}}}"#);
        assert_eq!(usage(&body, Endpoint::Chat), (None, false), "{body}");
    }
}

#[test]
fn usage_is_only_injected_for_streamed_chat_and_completions() {
    for body in [r#"{}"#, r#"{"stream":false}"#, r#"{"stream":null}"#] {
        assert_eq!(usage(body, Endpoint::Chat), (None, false), "{body}");
    }
    for endpoint in [Endpoint::Responses, Endpoint::Embeddings, Endpoint::Other] {
        assert_eq!(usage(r#"{"stream":true}"#, endpoint), (None, false));
    }
    let no = Plan {
        include_usage: false,
        ..USAGE
    };
    assert_eq!(rw(r#"{"stream":true}"#, Endpoint::Chat, &no), None);
}

#[test]
fn duplicate_include_usage_is_refused() {
    assert_eq!(
        parse_err(br#"{"stream_options":{"include_usage":false,"include_usage":true}}"#),
        BodyError::DuplicateNestedKey("stream_options.include_usage")
    );
    assert_eq!(
        parse_err(br#"{"stream_options":{"include_usage":true,"include\u005Fusage":true}}"#),
        BodyError::DuplicateNestedKey("stream_options.include_usage")
    );
}

// ---------------------------------------------------------------- rewrite: combined

#[test]
fn new_members_are_appended_in_a_fixed_order() {
    let plan = Plan {
        model: Some("m"),
        max_tokens: Some(4096),
        temperature: Some(0.7),
        system_prompt: None,
        include_usage: true,
    };
    assert_eq!(
        rw(r#"{"stream":true}"#, Endpoint::Chat, &plan).unwrap(),
        r#"{"model":"m","max_tokens":4096,"temperature":0.7,"stream_options":{"include_usage":true},"stream":true}"#
    );
    assert_eq!(
        rw("{}", Endpoint::Chat, &plan).unwrap(),
        r#"{"model":"m","max_tokens":4096,"temperature":0.7}"#
    );
    assert_eq!(
        rw("{}", Endpoint::Completions, &cap(4096)).unwrap(),
        r#"{"max_tokens":4096}"#
    );
}

#[test]
fn added_members_go_right_after_the_opening_brace_keeping_the_layout() {
    let body = "{\n  \"stream\": true\n}\n";
    let plan = Plan {
        max_tokens: Some(5),
        include_usage: true,
        ..Plan::default()
    };
    assert_eq!(
        rw(body, Endpoint::Chat, &plan).unwrap(),
        "{\"max_tokens\":5,\"stream_options\":{\"include_usage\":true},\n  \"stream\": true\n}\n"
    );
}

#[test]
fn every_edit_at_once_splices_correctly() {
    let body = "{ \"temperature\" : null, \"messages\" : [ {\"role\":\"user\",\"content\":\"é🙂\"} ], \"max_completion_tokens\": 99999, \"model\":\"old\", \"stream\" : true, \"stream_options\": {\"x\":[]} }";
    let plan = Plan {
        model: Some("new"),
        max_tokens: Some(100),
        temperature: Some(0.25),
        system_prompt: Some("sys"),
        include_usage: true,
    };
    assert_eq!(
        rw(body, Endpoint::Chat, &plan).unwrap(),
        "{ \"temperature\" : 0.25, \"messages\" : [{\"role\":\"system\",\"content\":\"sys\"}, {\"role\":\"user\",\"content\":\"é🙂\"} ], \"max_completion_tokens\": 100, \"model\":\"new\", \"stream\" : true, \"stream_options\": {\"x\":[],\"include_usage\":true} }"
    );
}

#[test]
fn an_edit_of_the_last_member_and_an_append_both_apply() {
    let plan = Plan {
        model: Some("new"),
        max_tokens: Some(1),
        ..Plan::default()
    };
    assert_eq!(
        rw(r#"{"model":"old"}"#, Endpoint::Chat, &plan).unwrap(),
        r#"{"max_tokens":1,"model":"new"}"#
    );
    let plan = Plan {
        include_usage: true,
        max_tokens: Some(1),
        ..Plan::default()
    };
    assert_eq!(
        rw(
            r#"{"stream":true,"stream_options":{"a":1}}"#,
            Endpoint::Chat,
            &plan
        )
        .unwrap(),
        r#"{"max_tokens":1,"stream":true,"stream_options":{"a":1,"include_usage":true}}"#
    );
}

#[test]
fn unicode_and_escapes_elsewhere_are_preserved_byte_for_byte() {
    let body = "{\"content\":\"🙂 你好 \\ud83d\\ude00 \\u4f60 \\\"q\\\" \\\\ \\/ é\",\"模型\":\"值\",\"model\":\"a\",\"\\u006e\":1}";
    let out = rw(body, Endpoint::Other, &model("b")).unwrap();
    assert_eq!(out, body.replace("\"model\":\"a\"", "\"model\":\"b\""));
}

// ---------------------------------------------------------------- size and speed

/// A realistic chat body of about `size` bytes: many messages with mixed text.
fn big_chat_body(size: usize) -> String {
    let mut messages = String::new();
    let mut k = 0;
    while messages.len() < size {
        if !messages.is_empty() {
            messages.push(',');
        }
        let role = if k % 2 == 0 { "user" } else { "assistant" };
        messages.push_str(&format!(
            r#"{{"role":"{role}","content":"Message {k}: the quick brown fox jumps over the lazy dog. \"Quoted\" text, a tab\t, a newline\n, unicode é 你好 🙂 and an escape \u00e9. {}"}}"#,
            "Lorem ipsum dolor sit amet, consectetur adipiscing elit. ".repeat(1 + k % 7)
        ));
        k += 1;
    }
    format!(
        r#"{{"model":"gpt-4o","messages":[{messages}],"stream":true,"temperature":0.2,"max_tokens":100000,"tools":[{{"type":"function","function":{{"name":"f","parameters":{{"type":"object","properties":{{"model":{{"type":"string"}}}}}}}}}}]}}"#
    )
}

#[test]
fn edits_near_the_start_swap_only_a_short_prefix_of_a_big_body() {
    // The shape of most SDK bodies with the model first: every edit (the model, the members
    // the gateway adds) lands in the first bytes, so the filter hands Envoy a short prefix
    // instead of a copy of the whole megabyte.
    let messages = "x".repeat(1 << 20);
    let body = format!(
        r#"{{"model":"chat","stream":true,"messages":[{{"role":"user","content":"{messages}"}}]}}"#
    );
    let plan = Plan {
        model: Some("gpt-4.1"),
        max_tokens: Some(4096),
        temperature: Some(0.5),
        system_prompt: None,
        include_usage: true,
    };
    let p = parsed(&body);
    let pre = rewrite_prefix(body.as_bytes(), &p, Endpoint::Chat, &plan).unwrap();
    let (replaced, prefix) = pre.splice.unwrap();
    assert_eq!(&body[..replaced], r#"{"model":"chat""#);
    assert_eq!(
        String::from_utf8(prefix).unwrap(),
        r#"{"max_tokens":4096,"temperature":0.5,"stream_options":{"include_usage":true},"model":"gpt-4.1""#
    );
    // A model after the messages (as some SDKs send it) puts the swap past them.
    let late =
        format!(r#"{{"messages":[{{"role":"user","content":"{messages}"}}],"model":"chat"}}"#);
    let p = parsed(&late);
    let pre = rewrite_prefix(late.as_bytes(), &p, Endpoint::Chat, &model("m")).unwrap();
    let (replaced, prefix) = pre.splice.unwrap();
    assert_eq!(replaced, late.len() - 1);
    assert!(prefix.ends_with(br#""model":"m""#));
    // Nothing to change: nothing to swap.
    let p = parsed(&body);
    let pre = rewrite_prefix(body.as_bytes(), &p, Endpoint::Embeddings, &model("chat")).unwrap();
    assert_eq!(pre.splice, None);
}

#[test]
fn a_one_megabyte_body_is_rewritten_correctly() {
    let body = big_chat_body(1 << 20);
    assert!(body.len() >= 1 << 20);
    let plan = Plan {
        model: Some("claude-3-5-sonnet"),
        max_tokens: Some(4096),
        temperature: Some(0.9),
        system_prompt: Some("You are terse."),
        include_usage: true,
    };
    let p = parsed(&body);
    assert_eq!(p.model(), Some("gpt-4o"));
    let out = rewrite(body.as_bytes(), &p, Endpoint::Chat, &plan).unwrap();
    let out = String::from_utf8(out.body.unwrap()).unwrap();
    let expected = body
        .replacen(r#""model":"gpt-4o""#, r#""model":"claude-3-5-sonnet""#, 1)
        .replacen(
            r#""messages":["#,
            r#""messages":[{"role":"system","content":"You are terse."},"#,
            1,
        )
        .replacen(r#""max_tokens":100000"#, r#""max_tokens":4096"#, 1);
    // Added members come right after the opening brace.
    let expected = format!(
        "{{\"stream_options\":{{\"include_usage\":true}},{}",
        &expected[1..]
    );
    assert_eq!(out, expected);
    let before = json_of(&body);
    let after = json_of(&out);
    assert_eq!(after["tools"], before["tools"]);
    assert_eq!(
        after["messages"].as_array().unwrap()[1..],
        before["messages"].as_array().unwrap()[..]
    );
}

#[test]
#[ignore = "timing; run with --release -- --ignored --nocapture"]
fn reports_parse_and_rewrite_throughput() {
    use std::time::Instant;
    /// Best and median time of one call, in ms per MiB of `len` bytes.
    fn time(len: usize, mut f: impl FnMut()) -> (f64, f64) {
        let mut samples: Vec<f64> = (0..200)
            .map(|_| {
                let start = Instant::now();
                f();
                start.elapsed().as_secs_f64()
            })
            .collect();
        samples.sort_by(f64::total_cmp);
        let per_mib = 1e3 * (1 << 20) as f64 / len as f64;
        (samples[0] * per_mib, samples[samples.len() / 2] * per_mib)
    }
    let chat = big_chat_body(1 << 20);
    let ascii = format!(
        r#"{{"model":"m","input":"{}"}}"#,
        "abcdefghijklmnopqrstuvwxyz0123456789 ".repeat((1 << 20) / 37)
    );
    let cjk = format!(
        r#"{{"model":"m","messages":[{}]}}"#,
        vec![r#"{"role":"user","content":"你好，世界。这是一个很长的中文句子，用来测试解析速度！🙂"}"#; 11_000]
            .join(",")
    );
    let pretty = serde_json::to_string_pretty(&json_of(&chat)).unwrap();
    let plan = Plan {
        model: Some("other"),
        max_tokens: Some(4096),
        temperature: None,
        system_prompt: Some("sys"),
        include_usage: true,
    };
    for (name, body) in [
        ("chat", &chat),
        ("one long ASCII string", &ascii),
        ("CJK chat", &cjk),
        ("pretty-printed chat", &pretty),
    ] {
        let bytes = body.as_bytes();
        let (parse_best, parse_median) = time(bytes.len(), || {
            let p = parse(std::hint::black_box(bytes)).unwrap();
            std::hint::black_box(p.model());
        });
        let (both_best, both_median) = time(bytes.len(), || {
            let p = parse(std::hint::black_box(bytes)).unwrap();
            let out = rewrite(bytes, &p, Endpoint::Chat, &plan).unwrap();
            std::hint::black_box(out.body);
        });
        println!(
            "{name} ({} bytes): parse {:.0} MB/s best, {:.0} MB/s median ({parse_best:.3} / {parse_median:.3} ms/MiB); \
             parse+rewrite {:.0} MB/s best ({both_best:.3} / {both_median:.3} ms/MiB)",
            bytes.len(),
            1.048576e3 / parse_best,
            1.048576e3 / parse_median,
            1.048576e3 / both_best,
        );
    }
}

// ---------------------------------------------------------------- property test

/// xorshift64*: small, deterministic, good enough for generating bodies.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
    fn pick<'x>(&mut self, items: &[&'x str]) -> &'x str {
        items[self.below(items.len())]
    }
}

fn ws(rng: &mut Rng) -> &'static str {
    rng.pick(&["", "", "", " ", "\n  ", "\t", " \r\n "])
}

/// Raw JSON string contents (without quotes) that decode to assorted text.
fn gen_string(rng: &mut Rng) -> String {
    let parts = [
        "a",
        "hello",
        " ",
        "é",
        "你好",
        "🙂",
        "\\n",
        "\\\"",
        "\\\\",
        "\\/",
        "\\u00e9",
        "\\ud83d\\ude00",
        "\\t",
        "model",
        "\\u0000",
        "}",
        "]",
        ",",
        ":",
        "{",
        "[",
        "\u{7f}",
        "\u{2028}",
    ];
    let mut s = String::new();
    for _ in 0..rng.below(6) {
        s.push_str(rng.pick(&parts));
    }
    s
}

fn gen_number(rng: &mut Rng) -> String {
    rng.pick(&[
        "0",
        "-0",
        "1",
        "-1",
        "42",
        "100",
        "4096",
        "4097",
        "9000",
        "1.5",
        "-2.5e3",
        "1e3",
        "1E+5",
        "123456789012",
        "99999999999999999999999",
        "0.001",
        "4096.5",
        "2e-3",
        "18446744073709551615",
    ])
    .to_string()
}

fn gen_value(rng: &mut Rng, depth: usize) -> String {
    let kind = if depth > 3 {
        rng.below(5)
    } else {
        rng.below(7)
    };
    match kind {
        0 => format!("\"{}\"", gen_string(rng)),
        1 => gen_number(rng),
        2 => rng.pick(&["true", "false", "null"]).to_string(),
        3 | 4 => format!("\"{}\"", gen_string(rng)),
        5 => {
            let n = rng.below(4);
            let items: Vec<String> = (0..n).map(|_| gen_value(rng, depth + 1)).collect();
            let sep = format!("{},{}", ws(rng), ws(rng));
            format!("[{}{}{}]", ws(rng), items.join(&sep), ws(rng))
        }
        _ => {
            let n = rng.below(4);
            let keys = [
                "model",
                "role",
                "content",
                "x",
                "stream",
                "max_tokens",
                "include_usage",
            ];
            let mut used = Vec::new();
            let mut members = Vec::new();
            for _ in 0..n {
                let k = rng.pick(&keys);
                if used.contains(&k) {
                    continue;
                }
                used.push(k);
                members.push(format!(
                    "\"{k}\"{}:{}{}",
                    ws(rng),
                    ws(rng),
                    gen_value(rng, depth + 1)
                ));
            }
            let sep = format!("{},{}", ws(rng), ws(rng));
            format!("{{{}{}{}}}", ws(rng), members.join(&sep), ws(rng))
        }
    }
}

/// Spellings of a key, some with escapes, all decoding to `key`.
fn spell(rng: &mut Rng, key: &str) -> String {
    match rng.below(4) {
        0 => {
            // Escape the first character.
            let mut chars = key.chars();
            let first = chars.next().unwrap();
            format!("\\u{:04x}{}", first as u32, chars.as_str())
        }
        1 => key.replace('_', "\\u005f").replace('e', "\\u0065"),
        _ => key.to_string(),
    }
}

fn gen_tracked(rng: &mut Rng, key: &str) -> String {
    match key {
        "model" => format!("\"{}\"", gen_string(rng)),
        "stream" => rng.pick(&["true", "true", "false", "null"]).to_string(),
        "stream_options" => match rng.below(5) {
            0 => "null".to_string(),
            1 => "\"x\"".to_string(),
            2 => format!("{{{}}}", ws(rng)),
            _ => {
                let mut members = Vec::new();
                if rng.chance(50) {
                    members.push(format!("\"x\":{}", gen_value(rng, 2)));
                }
                if rng.chance(70) {
                    let key = spell(rng, "include_usage");
                    let v = rng.pick(&["true", "false", "null", "1"]);
                    members.push(format!("\"{key}\"{}:{}{v}", ws(rng), ws(rng)));
                }
                if rng.chance(30) {
                    members.push(format!("\"y\":{}", gen_value(rng, 2)));
                }
                format!("{{{}{}}}", members.join(","), ws(rng))
            }
        },
        "max_tokens" | "max_completion_tokens" | "max_output_tokens" | "temperature" => {
            if rng.chance(20) {
                "null".to_string()
            } else {
                gen_number(rng)
            }
        }
        "messages" => match rng.below(6) {
            0 => "\"not an array\"".to_string(),
            1 => format!("[{}]", ws(rng)),
            _ => {
                let n = 1 + rng.below(3);
                let items: Vec<String> = (0..n)
                    .map(|_| {
                        format!(
                            "{{\"role\":\"user\",\"content\":\"{}\",\"model\":\"nested\"}}",
                            gen_string(rng)
                        )
                    })
                    .collect();
                format!(
                    "[{}{}{}]",
                    ws(rng),
                    items.join(&format!(",{}", ws(rng))),
                    ws(rng)
                )
            }
        },
        _ => unreachable!(),
    }
}

const TRACKED: [&str; 8] = [
    "model",
    "stream",
    "stream_options",
    "max_tokens",
    "max_completion_tokens",
    "max_output_tokens",
    "temperature",
    "messages",
];

/// A generated body: its text, and each top-level member as (decoded key, raw member text).
fn gen_body(rng: &mut Rng) -> String {
    let mut members: Vec<String> = Vec::new();
    let extra = [
        "user", "n", "tools", "metadata", "x\\\"y", "é", "🙂", "modelx", "Model", "seed",
    ];
    let mut used = Vec::new();
    for _ in 0..rng.below(10) {
        let take_tracked = rng.chance(60);
        let key = if take_tracked {
            rng.pick(&TRACKED)
        } else {
            rng.pick(&extra)
        };
        if used.contains(&key) {
            continue;
        }
        used.push(key);
        let value = if take_tracked {
            gen_tracked(rng, key)
        } else {
            gen_value(rng, 0)
        };
        let spelled = if take_tracked {
            spell(rng, key)
        } else {
            key.to_string()
        };
        members.push(format!(
            "{}\"{spelled}\"{}:{}{value}{}",
            ws(rng),
            ws(rng),
            ws(rng),
            ws(rng)
        ));
    }
    format!("{}{{{}{}}}{}", ws(rng), members.join(","), ws(rng), ws(rng))
}

/// An independent, recursive (test-only) splitter: the raw text of each top-level member,
/// from its key's opening quote to its value's end, with the decoded key.
fn raw_members(body: &str) -> Vec<(String, String)> {
    fn skip_ws(b: &[u8], mut i: usize) -> usize {
        while i < b.len() && b" \t\r\n".contains(&b[i]) {
            i += 1;
        }
        i
    }
    fn skip_string(b: &[u8], mut i: usize) -> usize {
        i += 1;
        while b[i] != b'"' {
            i += if b[i] == b'\\' { 2 } else { 1 };
        }
        i + 1
    }
    fn skip_value(b: &[u8], i: usize) -> usize {
        match b[i] {
            b'"' => skip_string(b, i),
            b'{' | b'[' => {
                let mut j = skip_ws(b, i + 1);
                while b[j] != b'}' && b[j] != b']' {
                    if b[i] == b'{' {
                        j = skip_string(b, j);
                        j = skip_ws(b, j) + 1;
                        j = skip_ws(b, j);
                    }
                    j = skip_ws(b, skip_value(b, j));
                    if b[j] == b',' {
                        j = skip_ws(b, j + 1);
                    }
                }
                j + 1
            }
            _ => {
                let mut j = i;
                while j < b.len() && !b",]} \t\r\n".contains(&b[j]) {
                    j += 1;
                }
                j
            }
        }
    }
    let b = body.as_bytes();
    let mut out = Vec::new();
    let mut j = skip_ws(b, skip_ws(b, 0) + 1);
    while b[j] != b'}' {
        let key_end = skip_string(b, j);
        let key: String = serde_json::from_str(&body[j..key_end]).unwrap();
        let v = skip_ws(b, skip_ws(b, key_end) + 1);
        let end = skip_value(b, v);
        out.push((key, body[j..end].to_string()));
        j = skip_ws(b, end);
        if b[j] == b',' {
            j = skip_ws(b, j + 1);
        }
    }
    out
}

fn expected_cap(before: Option<&Value>, n: u64) -> Value {
    match before {
        None | Some(Value::Null) => json!(n),
        Some(v) => {
            let f = v.as_f64().unwrap();
            if f > n as f64 {
                json!(n)
            } else {
                v.clone()
            }
        }
    }
}

#[test]
fn generated_bodies_rewrite_to_valid_json_that_changes_only_the_planned_members() {
    let mut rng = Rng(0x1234_5678_9abc_def1);
    let endpoints = [
        Endpoint::Chat,
        Endpoint::Completions,
        Endpoint::Embeddings,
        Endpoint::Responses,
        Endpoint::Other,
    ];
    let targets = ["gpt-4o", "claude \"3\"", "模型🙂", "a\\b\nc", ""];
    let mut rewritten = 0;
    for round in 0..5000 {
        let body = gen_body(&mut rng);
        let before: Value = serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("generator made invalid JSON {body}: {e}"));
        let before = before.as_object().unwrap();
        let p = match parse(body.as_bytes()) {
            Ok(p) => p,
            Err(e) => panic!("round {round}: {body:?} refused: {e}"),
        };
        assert_eq!(p.model(), before.get("model").and_then(Value::as_str));
        assert_eq!(p.stream(), before.get("stream") == Some(&json!(true)));
        let endpoint = endpoints[rng.below(endpoints.len())];
        let plan = Plan {
            model: if rng.chance(70) {
                Some(targets[rng.below(targets.len())])
            } else {
                None
            },
            max_tokens: if rng.chance(60) {
                Some([0, 1, 100, 4096, u64::MAX][rng.below(5)])
            } else {
                None
            },
            temperature: if rng.chance(50) {
                Some([0.7, 1.0, 0.0, 2.5][rng.below(4)])
            } else {
                None
            },
            system_prompt: if rng.chance(50) {
                Some(targets[rng.below(targets.len())])
            } else {
                None
            },
            include_usage: rng.chance(60),
        };
        let out = rewrite(body.as_bytes(), &p, endpoint, &plan).unwrap();
        // The prefix form is the same edit: its prefix + the untouched rest = the body.
        let pre = rewrite_prefix(body.as_bytes(), &p, endpoint, &plan).unwrap();
        assert_eq!(pre.client_asked_usage, out.client_asked_usage);
        match (&pre.splice, &out.body) {
            (None, None) => {}
            (Some((replaced, prefix)), Some(whole)) => {
                assert!(*replaced <= body.len());
                assert_eq!(&whole[..prefix.len()], &prefix[..]);
                assert_eq!(&whole[prefix.len()..], &body.as_bytes()[*replaced..]);
            }
            other => panic!("prefix {other:?} disagrees for {body}"),
        }
        assert_eq!(
            out.client_asked_usage,
            before
                .get("stream_options")
                .and_then(|o| o.get("include_usage"))
                == Some(&json!(true))
        );
        let changed = out.body.is_some();
        let text = match out.body {
            Some(b) => {
                rewritten += 1;
                assert_eq!(b.capacity(), b.len());
                String::from_utf8(b).unwrap()
            }
            None => body.clone(),
        };
        let after: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("round {round}: invalid output {text}\nfrom {body}\n{e}"));
        let after = after.as_object().unwrap();
        // Our own parser agrees with the output too.
        let again = parse(text.as_bytes()).unwrap();

        // model
        match plan.model {
            Some(m) => {
                assert_eq!(after["model"], json!(m));
                assert_eq!(again.model(), Some(m));
            }
            None => assert_eq!(after.get("model"), before.get("model")),
        }
        // token limits
        let n = plan.max_tokens;
        let capped: &[&str] = match (n, endpoint) {
            (None, _) | (_, Endpoint::Embeddings | Endpoint::Other) => &[],
            (_, Endpoint::Chat) => &["max_completion_tokens", "max_tokens"],
            (_, Endpoint::Completions) => &["max_tokens"],
            (_, Endpoint::Responses) => &["max_output_tokens"],
        };
        for field in ["max_tokens", "max_completion_tokens", "max_output_tokens"] {
            let expected = if !capped.contains(&field) {
                before.get(field).cloned()
            } else if endpoint == Endpoint::Chat
                && !before.contains_key("max_tokens")
                && !before.contains_key("max_completion_tokens")
            {
                (field == "max_tokens").then(|| json!(n.unwrap()))
            } else if endpoint == Endpoint::Chat && !before.contains_key(field) {
                None
            } else {
                Some(expected_cap(before.get(field), n.unwrap()))
            };
            assert_eq!(
                after.get(field),
                expected.as_ref(),
                "{field} in {text}\nfrom {body}"
            );
        }
        // temperature
        let generates = matches!(
            endpoint,
            Endpoint::Chat | Endpoint::Completions | Endpoint::Responses
        );
        match (plan.temperature, before.get("temperature")) {
            (Some(t), None | Some(Value::Null)) if generates => {
                // Written as Rust prints it: 1.0 as `1`, so compare numerically.
                assert_eq!(after["temperature"].as_f64(), Some(t));
            }
            (_, v) => assert_eq!(after.get("temperature"), v),
        }
        // messages
        match (plan.system_prompt, endpoint, before.get("messages")) {
            (Some(s), Endpoint::Chat, Some(Value::Array(old))) => {
                let new = after["messages"].as_array().unwrap();
                assert_eq!(new[0], json!({"role":"system","content":s}));
                assert_eq!(new[1..], old[..]);
            }
            _ => assert_eq!(after.get("messages"), before.get("messages")),
        }
        // stream_options
        let wants = plan.include_usage
            && p.stream()
            && matches!(endpoint, Endpoint::Chat | Endpoint::Completions);
        match (wants, before.get("stream_options")) {
            (true, None | Some(Value::Null)) => {
                assert_eq!(after["stream_options"], json!({"include_usage":true}));
            }
            (true, Some(Value::Object(old))) => {
                let mut old = old.clone();
                old.insert("include_usage".into(), json!(true));
                assert_eq!(after["stream_options"], Value::Object(old));
            }
            (_, old) => assert_eq!(after.get("stream_options"), old),
        }
        // Every other member: same value, and the very same bytes.
        let edited = [
            "model",
            "max_tokens",
            "max_completion_tokens",
            "max_output_tokens",
            "temperature",
            "messages",
            "stream_options",
        ];
        for (k, v) in before {
            if !edited.contains(&k.as_str()) {
                assert_eq!(after.get(k), Some(v));
            }
        }
        let keep = |members: Vec<(String, String)>| -> Vec<(String, String)> {
            members
                .into_iter()
                .filter(|(k, _)| !edited.contains(&k.as_str()))
                .collect()
        };
        assert_eq!(
            keep(raw_members(&text)),
            keep(raw_members(&body)),
            "{text}\nfrom {body}"
        );
        // Members edited in place keep their key bytes and position; added ones come first.
        let old_keys: Vec<String> = raw_members(&body).into_iter().map(|(k, _)| k).collect();
        let new_keys: Vec<String> = raw_members(&text).into_iter().map(|(k, _)| k).collect();
        let added = new_keys.len() - old_keys.len();
        assert_eq!(new_keys[added..], old_keys[..]);
        assert_eq!(after.len(), new_keys.len(), "no duplicate keys in {text}");
        // A rewritten body really differs (None means unchanged).
        assert_eq!(changed, text != body);
    }
    assert!(rewritten > 2000, "only {rewritten} bodies were rewritten");
}

// ---------------------------------------------------------------- UTF-8 validation

/// parse() must refuse exactly the bodies std refuses as UTF-8, at the same offset.
fn check_utf8_like_std(body: &[u8]) {
    match std::str::from_utf8(body) {
        Ok(_) => assert!(
            !matches!(parse(body), Err(BodyError::InvalidUtf8 { .. })),
            "{body:x?} is valid UTF-8"
        ),
        Err(e) => assert_eq!(
            parse(body).err(),
            Some(BodyError::InvalidUtf8 {
                offset: e.valid_up_to()
            }),
            "{body:x?}"
        ),
    }
}

#[test]
fn utf8_validation_matches_std_on_every_boundary_case() {
    let others = [
        0x41u8, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc2, 0xe0, 0xed, 0xf0, 0xf4, 0xff,
    ];
    for lead in 0x80..=0xffu8 {
        for &b2 in &others {
            for &b3 in &others {
                for &b4 in &others {
                    let seq = [lead, b2, b3, b4];
                    let mut body = b"{\"a\":\"x".to_vec();
                    body.extend_from_slice(&seq);
                    body.extend_from_slice(b"y\"}");
                    check_utf8_like_std(&body);
                    // In a key, too.
                    let mut body = b"{\"".to_vec();
                    body.extend_from_slice(&seq);
                    body.extend_from_slice(b"\":1}");
                    check_utf8_like_std(&body);
                }
            }
            // Cut short by the end of the body.
            for n in 1..=2 {
                let mut body = b"{\"a\":\"".to_vec();
                body.extend_from_slice(&[lead, b2][..n]);
                check_utf8_like_std(&body);
            }
        }
    }
}

#[test]
fn utf8_validation_matches_std_on_random_text() {
    let pieces: [&[u8]; 14] = [
        b"a",
        b" ",
        "é".as_bytes(),
        "你".as_bytes(),
        "🙂".as_bytes(),
        "\u{10ffff}".as_bytes(),
        "\u{800}".as_bytes(),
        "\u{fffd}".as_bytes(),
        b"\x80",
        b"\xc3",
        b"\xe4\xbd",
        b"\xf0\x9f\x99",
        b"\xed\xa0\x80",
        b"\xff",
    ];
    let mut rng = Rng(42);
    for _ in 0..20_000 {
        let mut text = Vec::new();
        for _ in 0..rng.below(12) {
            let p = if rng.chance(90) {
                pieces[rng.below(8)]
            } else {
                pieces[rng.below(pieces.len())]
            };
            text.extend_from_slice(p);
        }
        let mut body = b"{\"k".to_vec();
        body.extend_from_slice(&text);
        body.extend_from_slice(b"\":\"");
        body.extend_from_slice(&text);
        body.extend_from_slice(b"\"}");
        check_utf8_like_std(&body);
        let cut = rng.below(body.len() + 1);
        check_utf8_like_std(&body[..cut]);
        // Outside strings, whatever comes first is reported: a syntax error at a valid
        // character, or invalid UTF-8 at the very place std finds it.
        let mut outside = b"{\"a\":1}".to_vec();
        let at = rng.below(outside.len() + 1);
        outside.splice(at..at, text.iter().copied());
        match (std::str::from_utf8(&outside), parse(&outside)) {
            (Ok(_), Err(BodyError::InvalidUtf8 { .. })) => panic!("{outside:x?} is valid UTF-8"),
            (Err(_), Ok(_)) => panic!("{outside:x?} is not UTF-8"),
            (Err(e), Err(BodyError::InvalidUtf8 { offset })) => {
                assert_eq!(offset, e.valid_up_to(), "{outside:x?}")
            }
            _ => {}
        }
    }
}

#[test]
fn non_ascii_outside_strings_is_a_syntax_error_or_invalid_utf8() {
    assert_eq!(
        parse_err("{é:1}".as_bytes()),
        BodyError::Syntax {
            offset: 1,
            reason: "expected a string key"
        }
    );
    assert_eq!(parse_err(b"{\xff:1}"), BodyError::InvalidUtf8 { offset: 1 });
    assert_eq!(parse_err(b"\xff{}"), BodyError::InvalidUtf8 { offset: 0 });
    assert_eq!(parse_err(b" \xc3"), BodyError::InvalidUtf8 { offset: 1 });
    assert_eq!(
        parse_err(b"{\"a\":\xe4\xbd}"),
        BodyError::InvalidUtf8 { offset: 5 }
    );
    assert_eq!(
        parse_err("{\"a\":你}".as_bytes()),
        BodyError::Syntax {
            offset: 5,
            reason: "unexpected character"
        }
    );
}
