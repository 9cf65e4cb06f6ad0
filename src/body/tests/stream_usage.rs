//! `stream_options.include_usage` asked for streamed chat and completions, and what the client
//! itself asked.

use super::*;
use crate::testing::test;

const USAGE: Plan<'static> = Plan {
    model: None,
    max_tokens: None,
    temperature: None,
    system_prompt: None,
    include_usage: true,
};

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
