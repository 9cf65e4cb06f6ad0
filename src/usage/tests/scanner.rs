use super::fixtures::*;
use super::*;
use crate::testing::test;

fn json(input: &str) -> Option<Usage> {
    scan(Format::Json, &[input.as_bytes()])
}

fn sse(input: &str) -> Option<Usage> {
    scan(Format::Sse, &[input.as_bytes()])
}

#[test]
fn finds_usage_in_chat_json_for_every_split_point() {
    assert_usage_for_all_splits(Format::Json, CHAT_JSON.as_bytes(), Some(CHAT_JSON_USAGE));
}

#[test]
fn finds_usage_in_chat_sse_for_every_split_point() {
    assert_usage_for_all_splits(Format::Sse, CHAT_SSE.as_bytes(), Some(CHAT_SSE_USAGE));
}

#[test]
fn finds_usage_in_sse_with_crlf_line_endings_for_every_split_point() {
    assert_usage_for_all_splits(
        Format::Sse,
        CHAT_SSE_CRLF.as_bytes(),
        Some(CHAT_SSE_CRLF_USAGE),
    );
}

#[test]
fn finds_usage_in_sse_with_bare_cr_line_endings_for_every_split_point() {
    let cr = CHAT_SSE.replace('\n', "\r");
    assert_usage_for_all_splits(Format::Sse, cr.as_bytes(), Some(CHAT_SSE_USAGE));
}

#[test]
fn finds_responses_api_usage_nested_in_response_completed_for_every_split_point() {
    assert_usage_for_all_splits(
        Format::Sse,
        RESPONSES_SSE.as_bytes(),
        Some(RESPONSES_SSE_USAGE),
    );
}

#[test]
fn finds_embeddings_usage_with_zero_completion_tokens_for_every_split_point() {
    assert_usage_for_all_splits(
        Format::Json,
        EMBEDDINGS_JSON.as_bytes(),
        Some(EMBEDDINGS_JSON_USAGE),
    );
}

#[test]
fn ignores_usage_in_content_tool_arguments_and_nested_objects_for_every_split_point() {
    assert_usage_for_all_splits(Format::Json, DECOY_JSON.as_bytes(), Some(DECOY_JSON_USAGE));
    assert_usage_for_all_splits(Format::Sse, DECOY_SSE.as_bytes(), Some(DECOY_SSE_USAGE));
    let decoys_only = without(DECOY_SSE, DECOY_SSE_USAGE_EVENT);
    assert_usage_for_all_splits(Format::Sse, decoys_only.as_bytes(), None);
}

#[test]
fn finds_usage_around_multi_byte_utf8_split_anywhere() {
    assert_usage_for_all_splits(Format::Json, UTF8_JSON.as_bytes(), Some(UTF8_JSON_USAGE));
    assert_usage_for_all_splits(Format::Sse, UTF8_SSE.as_bytes(), Some(UTF8_SSE_USAGE));
}

#[test]
fn reports_no_usage_for_a_stream_without_usage_for_every_split_point() {
    assert_usage_for_all_splits(Format::Sse, CHAT_SSE_NO_USAGE.as_bytes(), None);
    let no_usage_chunk = without(CHAT_SSE, CHAT_SSE_USAGE_EVENT);
    assert_usage_for_all_splits(Format::Sse, no_usage_chunk.as_bytes(), None);
}

#[test]
fn reads_json_bodies_in_the_sse_format_as_nothing_and_sse_in_the_json_format_as_nothing() {
    assert_eq!(sse(CHAT_JSON), None);
    assert_eq!(json(CHAT_SSE), None);
}

#[test]
fn ignores_usage_null_after_a_real_usage() {
    let stream = concat!(
        "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":4}}\n\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{}}],\"usage\":null}\n\n",
        "data: {\"response\":{\"usage\":null}}\n\n",
        "data: [DONE]\n\n",
    );
    assert_eq!(sse(stream), Some(usage(3, 4)));
}

#[test]
fn keeps_the_last_of_several_usage_events() {
    let stream = concat!(
        "data: {\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2}}\n\n",
        "data: {\"response\":{\"usage\":{\"input_tokens\":5,\"output_tokens\":6}}}\n\n",
    );
    assert_eq!(sse(stream), Some(usage(5, 6)));
    let doc = r#"{"response":{"usage":{"input_tokens":5}},"usage":{"prompt_tokens":7}}"#;
    assert_eq!(json(doc), Some(usage(7, 0)));
}

#[test]
fn counts_an_empty_usage_object_as_zero_tokens() {
    assert_eq!(json(r#"{"usage":{}}"#), Some(usage(0, 0)));
    assert_eq!(json(r#"{"usage":{"total_tokens":9}}"#), Some(usage(0, 0)));
}

#[test]
fn reports_no_usage_until_the_usage_object_is_complete() {
    let closing = CHAT_JSON.find("  },\n  \"service_tier\"").unwrap() + 3;
    for len in 0..=CHAT_JSON.len() {
        let want = (len >= closing).then_some(CHAT_JSON_USAGE);
        assert_eq!(json(&CHAT_JSON[..len]), want, "prefix of {len} bytes");
    }
    let closing = CHAT_SSE.find("}}}\n\ndata: [DONE]").unwrap() + 2;
    for len in 0..=CHAT_SSE.len() {
        let want = (len >= closing).then_some(CHAT_SSE_USAGE);
        assert_eq!(sse(&CHAT_SSE[..len]), want, "prefix of {len} bytes");
    }
}

#[test]
fn counts_usage_of_a_final_event_without_its_blank_line() {
    let stream = "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":2,\"completion_tokens\":1}}";
    assert_eq!(sse(stream), Some(usage(2, 1)));
}

#[test]
fn reads_usage_fields_that_are_non_negative_integers_only() {
    let cases: &[(&str, Option<Usage>)] = &[
        (
            r#"{"usage":{"prompt_tokens":-1,"completion_tokens":3}}"#,
            Some(usage(0, 3)),
        ),
        (
            r#"{"usage":{"prompt_tokens":1.5,"completion_tokens":3}}"#,
            Some(usage(0, 3)),
        ),
        (
            r#"{"usage":{"prompt_tokens":2.0,"completion_tokens":3}}"#,
            Some(usage(0, 3)),
        ),
        (
            r#"{"usage":{"prompt_tokens":1e3,"completion_tokens":3}}"#,
            Some(usage(0, 3)),
        ),
        (
            r#"{"usage":{"prompt_tokens":"12","completion_tokens":3}}"#,
            Some(usage(0, 3)),
        ),
        (
            r#"{"usage":{"prompt_tokens":true,"completion_tokens":3}}"#,
            Some(usage(0, 3)),
        ),
        (
            r#"{"usage":{"prompt_tokens":null,"completion_tokens":3}}"#,
            Some(usage(0, 3)),
        ),
        (
            r#"{"usage":{"prompt_tokens":[1],"completion_tokens":3}}"#,
            Some(usage(0, 3)),
        ),
        (
            r#"{"usage":{"prompt_tokens":{"n":1},"completion_tokens":3}}"#,
            Some(usage(0, 3)),
        ),
        (
            r#"{"usage":{"prompt_tokens":99999999999999999999999999,"completion_tokens":3}}"#,
            Some(usage(u64::MAX, 3)),
        ),
        (
            r#"{"usage":{"prompt_tokens":18446744073709551615,"completion_tokens":0}}"#,
            Some(usage(u64::MAX, 0)),
        ),
        (
            r#"{ "usage" : { "prompt_tokens" : 7 , "completion_tokens" : 8 } }"#,
            Some(usage(7, 8)),
        ),
        (
            "{\"usage\":\n{\"prompt_tokens\":\r\n7,\t\"completion_tokens\":8}}",
            Some(usage(7, 8)),
        ),
        (r#"{"usage":null}"#, None),
        (r#"{"usage":"none"}"#, None),
        (r#"{"usage":[{"prompt_tokens":1}]}"#, None),
        (
            r#"{"response":{"usage":{"input_tokens":4,"output_tokens":5}}}"#,
            Some(usage(4, 5)),
        ),
        (r#"{"response":{"usage":null}}"#, None),
        (r#"[{"usage":{"prompt_tokens":1}}]"#, None),
        (
            r#"{"data":{"response":{"usage":{"prompt_tokens":1}}}}"#,
            None,
        ),
    ];
    for (doc, want) in cases {
        assert_eq!(json(doc), *want, "{doc}");
        assert_usage_for_all_splits(Format::Json, doc.as_bytes(), *want);
    }
}

#[test]
fn decodes_escaped_member_names() {
    let doc = r#"{"us\u0061ge":{"prompt_\u0074okens":5,"completion\u005ftokens":6}}"#;
    assert_eq!(json(doc), Some(usage(5, 6)));
    let doc = r#"{"usage\u00e9":{"prompt_tokens":5},"\"usage":{"prompt_tokens":6}}"#;
    assert_eq!(json(doc), None);
    let doc = r#"{"a\\":"\\","usage":{"prompt_tokens":1}}"#;
    assert_eq!(json(doc), Some(usage(1, 0)));
}

#[test]
fn joins_multi_line_data_with_newlines() {
    let stream = concat!(
        "data: {\"choices\":[],\n",
        "data: \"usage\":{\"prompt_tokens\":3,\n",
        "data:\"completion_tokens\":\n",
        "data\n",
        "data: 4}}\n",
        "\n",
    );
    assert_usage_for_all_splits(Format::Sse, stream.as_bytes(), Some(usage(3, 4)));
    // Two documents in one event are not JSON.
    let stream =
        "data: {\"usage\":{\"prompt_tokens\":3}}\ndata: {\"usage\":{\"prompt_tokens\":4}}\n\n";
    assert_eq!(sse(stream), Some(usage(3, 0)));
}

#[test]
fn ignores_comment_event_id_retry_and_unknown_field_lines() {
    let stream = concat!(
        ": data: {\"usage\":{\"prompt_tokens\":100}}\n",
        "event: data\n",
        "id: {\"usage\":{\"prompt_tokens\":200}}\n",
        "retry: 1000\n",
        "dataX: {\"usage\":{\"prompt_tokens\":300}}\n",
        "dat: {\"usage\":{\"prompt_tokens\":400}}\n",
        " data: {\"usage\":{\"prompt_tokens\":500}}\n",
        "\n",
        "data:  {\"usage\":{\"prompt_tokens\":1}}\n",
        "\n",
    );
    assert_usage_for_all_splits(Format::Sse, stream.as_bytes(), Some(usage(1, 0)));
}

#[test]
fn resets_the_json_scan_at_each_event() {
    // A truncated event must not swallow the next one.
    let stream = concat!(
        "data: {\"choices\":[{\"delta\":{\"content\":\"unterminated\n",
        "\n",
        "data: {\"usage\":{\"prompt_tokens\":8,\"completion_tokens\":9}}\n",
        "\n",
    );
    assert_usage_for_all_splits(Format::Sse, stream.as_bytes(), Some(usage(8, 9)));
}

#[test]
fn finds_usage_behind_very_deep_nesting_in_constant_memory() {
    let depth = 100_000;
    let mut doc = String::from("{\"x\":");
    doc.push_str(&"[{\"a\":\"]}\",\"b\":".repeat(depth));
    doc.push('1');
    doc.push_str(&"}]".repeat(depth));
    doc.push_str(",\"usage\":{\"prompt_tokens\":1,\"y\":");
    doc.push_str(&"[".repeat(depth));
    doc.push_str(&"]".repeat(depth));
    doc.push_str(",\"completion_tokens\":2}}");
    let mut scanner = UsageScanner::new(Format::Json);
    for chunk in doc.as_bytes().chunks(977) {
        scanner.feed(chunk);
    }
    assert_eq!(scanner.usage(), Some(usage(1, 2)));
    // All the state there is: no heap, whatever the input.
    assert!(std::mem::size_of::<UsageScanner>() <= 160);
}

fn pick(rng: &mut SplitMix64, alphabet: &[u8]) -> u8 {
    alphabet[rng.below(alphabet.len())]
}

#[test]
fn finds_no_usage_in_garbage_and_never_panics() {
    let mut rng = SplitMix64::new(7);
    for round in 0..500 {
        let len = rng.below(2_000);
        let garbage: Vec<u8> = (0..len)
            .map(|_| match round % 3 {
                0 => rng.next_u64() as u8,
                1 => pick(&mut rng, b"{}[]\":,\\ \n\rdatu0123456789-.eE"),
                _ => pick(&mut rng, b"{\"usage\":prompt_tokens[]} \ndata:"),
            })
            .collect();
        let cuts = random_cuts(len, &mut rng, 1 + round % 50);
        for format in [Format::Json, Format::Sse] {
            assert_eq!(scan(format, &cut(&garbage, &cuts)), None);
        }
    }
    for bytes in [
        &b"\xff\xfe\xfd"[..],
        b"\xef\xbb\xbf{\"usage\":{\"prompt_tokens\":1}}",
        b"{\"usage\":{\"prompt_tokens\":1\xff}}",
        b"{\"usage\":{\"prompt_tokens\":1",
        b"{\"usage\":{\"prompt_\xc3",
        b"data: {\"usage\":{\"prompt_tokens\":1,",
        b"}}}}]]]]",
        b"{\"usage\":{\"prompt_tokens\":1]}",
        b"{\"usage\" {\"prompt_tokens\":1}}",
        b"{\"usage\":{\"prompt_tokens\":nul}}",
        b"{\"\\q\":1,\"usage\":{}}",
        b"{\"\\u12x4\":1,\"usage\":{}}",
        b"",
    ] {
        assert_eq!(scan(Format::Json, &[bytes]), None, "{bytes:?}");
        assert_eq!(
            scan(Format::Sse, &[b"data: ", bytes, b"\n\n"]),
            None,
            "{bytes:?}"
        );
    }
}

#[test]
fn never_panics_on_mutated_and_truncated_fixtures() {
    let mut rng = SplitMix64::new(11);
    let fixtures = [
        CHAT_JSON,
        CHAT_SSE,
        CHAT_SSE_CRLF,
        RESPONSES_SSE,
        EMBEDDINGS_JSON,
        DECOY_JSON,
        UTF8_SSE,
    ];
    for round in 0..2_000 {
        let mut bytes = fixtures[round % fixtures.len()].as_bytes().to_vec();
        for _ in 0..1 + rng.below(4) {
            if bytes.is_empty() {
                break;
            }
            let at = rng.below(bytes.len());
            match rng.below(3) {
                0 => bytes[at] = rng.next_u64() as u8,
                1 => {
                    bytes.remove(at);
                }
                _ => bytes.truncate(at),
            }
        }
        let cuts = random_cuts(bytes.len(), &mut rng, 1 + round % 100);
        let chunks = cut(&bytes, &cuts);
        let _ = scan(Format::Json, &chunks);
        let _ = scan(Format::Sse, &chunks);
        let _ = strip(&chunks, round % 2 == 0);
    }
}
