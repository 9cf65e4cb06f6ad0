//! Several edits at once: the added members come first, right after the opening brace, in a
//! fixed order; every other byte stays.

use super::*;
use crate::testing::test;

#[test]
fn added_members_come_first_in_a_fixed_order() {
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
fn an_edit_of_the_last_member_and_added_members_both_apply() {
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
