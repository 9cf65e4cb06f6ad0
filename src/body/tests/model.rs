//! Rewriting `model`: replaced in place, escaped, added when absent; nothing changes when
//! nothing needs to.

use super::*;
use crate::testing::test;

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
