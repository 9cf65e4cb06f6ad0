//! Reading a valid body: `model` and `stream`, tracked keys however spelled, duplicates and
//! wrong types of the members the gateway reads.

use std::borrow::Cow;

use super::*;
use crate::testing::test;

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
    let keys = [
        "model",
        "stream",
        "stream_options",
        "max_tokens",
        "max_completion_tokens",
        "max_output_tokens",
        "temperature",
        "messages",
    ];
    // The list the generators and the fuzz target draw from is this one.
    assert_eq!(keys, crate::body::TRACKED_KEYS);
    for key in keys {
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
