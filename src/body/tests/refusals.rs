//! Bodies `parse` refuses, and the error it reports: empty, BOM, invalid UTF-8, not an object,
//! every kind of syntax error; deep nesting without recursion.

use super::*;
use crate::testing::test;

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
