//! The system message prepended to a chat body's `messages`.

use super::*;
use crate::testing::test;

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
