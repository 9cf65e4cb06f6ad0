//! Removal of the top-level `"usage":null` member that `include_usage` adds to every chunk.

use crate::testing::test;
use std::borrow::Cow;

use super::*;

const CONTENT: &str = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"é\"}}]}\n\n";

/// Asserts that each `data` JSON becomes `expected` between two ordinary events, however the
/// stream is split, with `\n` and with `\r\n` line endings.
fn assert_data_stripped(cases: &[(&str, &str)]) {
    for &(data, expected) in cases {
        for eol in ["\n", "\r\n"] {
            let stream = format!("{CONTENT}data: {data}{eol}{eol}{CONTENT}");
            let want = format!("{CONTENT}data: {expected}{eol}{eol}{CONTENT}");
            assert_stripped_for_all_splits(stream.as_bytes(), want.as_bytes());
        }
    }
}

fn assert_data_unchanged(cases: &[&str]) {
    let cases: Vec<(&str, &str)> = cases.iter().map(|&data| (data, data)).collect();
    assert_data_stripped(&cases);
}

#[test]
fn removes_a_null_usage_that_is_the_first_a_middle_the_last_or_the_only_member() {
    assert_data_stripped(&[
        (r#"{"usage":null,"a":1}"#, r#"{"a":1}"#),
        (r#"{"a":1,"usage":null,"b":2}"#, r#"{"a":1,"b":2}"#),
        (r#"{"a":1,"usage":null}"#, r#"{"a":1}"#),
        (r#"{"usage":null}"#, r#"{}"#),
        // Several (duplicate names): all go, with one comma each.
        (r#"{"usage":null,"usage":null,"a":1}"#, r#"{"a":1}"#),
        (r#"{"usage":null,"usage":null}"#, r#"{}"#),
        (r#"{"a":1,"usage":null,"usage":null}"#, r#"{"a":1}"#),
        (r#"{"usage":null,"a":1,"usage":null}"#, r#"{"a":1}"#),
        // In an event that might have been the usage-only one, and in one that is held until
        // its `choices` are known.
        (r#"{"choices":[],"usage":null}"#, r#"{"choices":[]}"#),
        (
            r#"{"usage":null,"choices":[],"x":1}"#,
            r#"{"choices":[],"x":1}"#,
        ),
        (
            r#"{"id":"x","usage":null,"choices":[{"index":0}]}"#,
            r#"{"id":"x","choices":[{"index":0}]}"#,
        ),
        // Only the top-level one.
        (
            r#"{"a":{"b":[1,{"usage":null}]},"usage":null}"#,
            r#"{"a":{"b":[1,{"usage":null}]}}"#,
        ),
        (
            r#"{"type":"x","response":{"usage":null},"usage":null}"#,
            r#"{"type":"x","response":{"usage":null}}"#,
        ),
        (
            r#"{"c":"\"usage\":null,","usage":null,"d":",\"usage\":null"}"#,
            r#"{"c":"\"usage\":null,","d":",\"usage\":null"}"#,
        ),
    ]);
}

#[test]
fn keeps_the_whitespace_outside_the_removed_span() {
    assert_data_stripped(&[
        // After a kept member: from the comma through `null`.
        (r#"{"a":1 , "usage" : null }"#, r#"{"a":1  }"#),
        (
            "{\"a\":1,\t\"usage\":\tnull\t,\"b\":2}",
            "{\"a\":1\t,\"b\":2}",
        ),
        // First: from the name through the comma after it, or through `null` before `}`.
        (r#"{ "usage" : null , "a":1}"#, r#"{  "a":1}"#),
        (r#"{ "usage" : null }"#, r#"{  }"#),
        (r#" {"usage":null} "#, r#" {} "#),
        (r#"{"usage"  :  null  ,  "usage"  :  null  }"#, r#"{    }"#),
    ]);
}

#[test]
fn removes_a_null_usage_whose_name_is_escaped() {
    assert_data_stripped(&[
        (r#"{"a":1,"us\u0061ge":null}"#, r#"{"a":1}"#),
        (
            r#"{"\u0075\u0073\u0061\u0067\u0065":null,"a":1}"#,
            r#"{"a":1}"#,
        ),
        (r#"{"usag\u0065":null}"#, r#"{}"#),
        (r#"{"a":1,"usa\u0067e":null,"b":2}"#, r#"{"a":1,"b":2}"#),
    ]);
    assert_data_unchanged(&[
        r#"{"\u0055sage":null}"#,
        r#"{"a":1,"us\/age":null}"#,
        r#"{"usage\u0000":null}"#,
        r#"{"a":1,"usage\u00e9":null}"#,
        r#"{"us\"age":null}"#,
    ]);
}

#[test]
fn keeps_usage_that_is_not_a_top_level_null_member() {
    assert_data_unchanged(&[
        // In strings and nested objects.
        r#"{"a":"\"usage\":null"}"#,
        r#"{"a":",\"usage\":null"}"#,
        r#"{"a":{"usage":null}}"#,
        r#"{"a":[{"usage":null}],"b":{"c":1,"usage":null}}"#,
        r#"{"response":{"usage":null}}"#,
        r#"{"choices":[{"usage":null}]}"#,
        // Not null.
        r#"{"usage":{"prompt_tokens":1},"choices":[{}]}"#,
        r#"{"choices":[{}],"usage":{"prompt_tokens":1}}"#,
        r#"{"a":1,"usage":0}"#,
        r#"{"usage":"null"}"#,
        r#"{"usage":false,"a":1}"#,
        r#"{"usage":[]}"#,
        r#"{"usage":{}}"#,
        // Other names.
        r#"{"usage_":null}"#,
        r#"{"usag":null}"#,
        r#"{"a":1,"Usage":null}"#,
        r#"{"xusage":null}"#,
        // Not a top-level object.
        r#"[{"usage":null}]"#,
        r#""usage":null"#,
        r#"null"#,
        // Not JSON before the removal would be decided.
        r#"{"usage":nul}"#,
        r#"{"usage":nulll}"#,
        r#"{"usage":null x}"#,
        r#"{"usage":null"a":1}"#,
        r#"{"a":1 "usage":null}"#,
        r#"{"a":1,,"usage":null}"#,
        r#"{"usage" null}"#,
        r#"{"usage":null"#,
        r#"{"a":1,"usage":null"#,
        r#"[DONE]"#,
        r#"usage":null}"#,
    ]);
    // A non-null usage on a content chunk, and the non-usage-only events, stay.
    let stream = concat!(
        "data: {\"choices\":[{\"delta\":{}}],\"usage\":{\"prompt_tokens\":1}}\n\n",
        "data: [DONE]\n\n",
    );
    assert_stripped_for_all_splits(stream.as_bytes(), stream.as_bytes());
}

#[test]
fn decides_at_the_comma_or_brace_after_null_whatever_follows() {
    // The document turns out not to be JSON only after the member: it was removed already.
    assert_data_stripped(&[
        (r#"{"a":1,"usage":null,}"#, r#"{"a":1,}"#),
        (r#"{"usage":null,}"#, r#"{}"#),
        (r#"{"a":1,"usage":null} x"#, r#"{"a":1} x"#),
    ]);
}

#[test]
fn removes_only_spans_within_one_data_line() {
    for (stream, expected) in [
        (
            "data: {\"a\":1,\ndata: \"usage\":null}\n\n",
            "data: {\"a\":1,\ndata: \"usage\":null}\n\n",
        ),
        (
            "data: {\"usage\":null\ndata: ,\"a\":1}\n\n",
            "data: {\"usage\":null\ndata: ,\"a\":1}\n\n",
        ),
        (
            "data: {\"a\":1,\"usage\"\ndata: :null}\n\n",
            "data: {\"a\":1,\"usage\"\ndata: :null}\n\n",
        ),
        (
            "data: {\"a\":1,\"usage\":null\r\ndata: }\r\n\r\n",
            "data: {\"a\":1,\"usage\":null\r\ndata: }\r\n\r\n",
        ),
        (
            "data: {\"a\":1,\ndata: \"b\":2,\"usage\":null}\n\n",
            "data: {\"a\":1,\ndata: \"b\":2}\n\n",
        ),
        (
            "data: {\ndata: \"usage\":null,\"a\":1}\n\n",
            "data: {\ndata: \"a\":1}\n\n",
        ),
        (
            "data: {\"a\":1,\"usage\":null}\ndata: \n\n",
            "data: {\"a\":1}\ndata: \n\n",
        ),
        (
            "event: chunk\nid: 7\ndata: {\"usage\":null,\"a\":1}\nretry: 5\n\n",
            "event: chunk\nid: 7\ndata: {\"a\":1}\nretry: 5\n\n",
        ),
        (
            ": usage\ndata:{\"a\":1,\"usage\":null}\r\rdata: {\"usage\":null}\r\r",
            ": usage\ndata:{\"a\":1}\r\rdata: {}\r\r",
        ),
    ] {
        assert_stripped_for_all_splits(stream.as_bytes(), expected.as_bytes());
    }
}

#[test]
fn holds_only_a_tail_that_may_still_be_removed() {
    let mut stripper = UsageChunkStripper::new();
    // Released whole: nothing in it can be removed.
    let first = CONTENT.as_bytes();
    assert!(matches!(stripper.filter(first, false), Cow::Borrowed(b) if b == first));
    // A comma at the top level may begin `,"usage":null`.
    let chunk = b"data: {\"id\":\"x\",\"choices\":[{}],";
    let out = stripper.filter(chunk, false);
    assert!(
        matches!(out, Cow::Borrowed(b) if b.as_ptr() == chunk.as_ptr() && b == &chunk[..chunk.len() - 1])
    );
    assert_eq!(stripper.held_len(), 1);
    // A name that can still decode to `usage`, through escapes.
    assert!(stripper.filter(b"\"us\\u00", false).is_empty());
    assert_eq!(stripper.held_len(), 8);
    assert!(stripper.filter(b"61ge\" :nu", false).is_empty());
    assert_eq!(stripper.held_len(), 17);
    assert!(stripper.filter(b"ll", false).is_empty());
    // `null` complete: removed at the `}`, the rest is a borrowed sub-slice.
    let last = b"}\n\n";
    let out = stripper.filter(last, false);
    assert!(matches!(out, Cow::Borrowed(b) if b == last));
    assert_eq!(stripper.held_len(), 0);

    // Released as soon as the name is not a prefix of `usage`.
    let mut stripper = UsageChunkStripper::new();
    assert_eq!(
        &*stripper.filter(b"data: {\"choices\":[{}],\"us", false),
        b"data: {\"choices\":[{}]"
    );
    assert_eq!(stripper.held_len(), 4);
    assert_eq!(&*stripper.filter(b"ed", false), b",\"used");
    assert_eq!(stripper.held_len(), 0);
    // ... or the value is not `null`.
    let mut stripper = UsageChunkStripper::new();
    assert_eq!(
        &*stripper.filter(b"data: {\"choices\":[{}],\"usage\":", false),
        b"data: {\"choices\":[{}]"
    );
    assert_eq!(&*stripper.filter(b"{", false), b",\"usage\":{");
    assert_eq!(stripper.held_len(), 0);
    // ... or the line ends.
    let mut stripper = UsageChunkStripper::new();
    assert_eq!(
        &*stripper.filter(b"data: {\"choices\":[{}],\"usage\":null", false),
        b"data: {\"choices\":[{}]"
    );
    assert_eq!(&*stripper.filter(b"\n", false), b",\"usage\":null\n");
    assert_eq!(stripper.held_len(), 0);
    // A first member is held from its name; `{` goes at once once the event is not usage-only.
    let mut stripper = UsageChunkStripper::new();
    assert_eq!(
        &*stripper.filter(b"data: {\"usage\":null ", false),
        b"data: {"
    );
    assert_eq!(stripper.held_len(), 13);
    assert_eq!(&*stripper.filter(b",\"a\":1}\n\n", false), b"\"a\":1}\n\n");
    // Released at the end of the stream.
    let mut stripper = UsageChunkStripper::new();
    assert_eq!(
        &*stripper.filter(b"data: {\"a\":1,\"usage\":null", false),
        b"data: {\"a\":1"
    );
    assert_eq!(&*stripper.filter(b"", true), b",\"usage\":null");
}

#[test]
fn copies_a_chunk_once_only_when_a_member_is_removed_from_it() {
    let mut stripper = UsageChunkStripper::new();
    let chunk = b"data: {\"a\":1,\"usage\":null,\"b\":2}\n\ndata: {\"c\":3}\n\n";
    let out = stripper.filter(chunk, false);
    assert!(matches!(out, Cow::Owned(_)));
    assert_eq!(&*out, b"data: {\"a\":1,\"b\":2}\n\ndata: {\"c\":3}\n\n");
    // A removed tail or head leaves a borrowed sub-slice.
    let chunk = b"data: {\"c\":3}\n\ndata: {\"a\":1,\"usage\":null";
    let out = stripper.filter(chunk, false);
    assert!(matches!(out, Cow::Borrowed(b) if b == b"data: {\"c\":3}\n\ndata: {\"a\":1"));
    let chunk = b"}\n\ndata: {\"c\":3}\n\n";
    assert!(matches!(stripper.filter(chunk, false), Cow::Borrowed(b) if b == chunk));
}

#[test]
fn gives_up_holding_a_member_past_the_cap() {
    let spaces = |n| " ".repeat(n);
    // Within the cap, removed.
    let stream = format!("data: {{\"a\":1,{}\"usage\":null}}\n\n", spaces(10_000));
    let expected = "data: {\"a\":1}\n\n";
    let mut stripper = UsageChunkStripper::new();
    let mut out = Vec::new();
    for chunk in stream.as_bytes().chunks(1000) {
        out.extend_from_slice(&stripper.filter(chunk, false));
    }
    assert_eq!(out, expected.as_bytes());
    // Past it, passed on unchanged, and the next members are still handled.
    for (stream, expected) in [
        (
            format!(
                "data: {{\"a\":1,{}\"usage\":null,\"usage\":null}}\n\n",
                spaces(100_000)
            ),
            format!("data: {{\"a\":1,{}\"usage\":null}}\n\n", spaces(100_000)),
        ),
        (
            format!(
                "data: {{{}\"usage\":null,\"usage\":null}}\n\n",
                spaces(100_000)
            ),
            format!("data: {{{}}}\n\n", spaces(100_000)),
        ),
        (
            format!(
                "data: {{\"usage\"{}:null,\"usage\":null}}\n\n",
                spaces(100_000)
            ),
            format!("data: {{\"usage\"{}:null}}\n\n", spaces(100_000)),
        ),
    ] {
        let mut stripper = UsageChunkStripper::new();
        let mut out = Vec::new();
        for chunk in stream.as_bytes().chunks(1000) {
            out.extend_from_slice(&stripper.filter(chunk, false));
            assert!(stripper.held_len() <= 64 * 1024);
        }
        out.extend_from_slice(&stripper.filter(&[], true));
        assert!(out == expected.as_bytes(), "{}", &stream[..40]);
    }
}

#[test]
fn never_panics_and_only_removes_null_usages_from_garbage() {
    let mut rng = SplitMix64::new(11);
    for round in 0..2_000 {
        let len = rng.below(600);
        let alphabet: &[u8] = [
            b"data: {\"usage\":null,}\n\r\\u0061 \"".as_slice(),
            b"{,\"usage\" :null}\n\n\rdata:[]u\\",
        ][round % 2];
        let garbage: Vec<u8> = (0..len)
            .map(|_| alphabet[rng.below(alphabet.len())])
            .collect();
        let whole = strip(&[&garbage], true).0;
        let cuts = random_cuts(len, &mut rng, 1 + round % 64);
        let (out, _) = strip(&cut(&garbage, &cuts), round % 3 == 0);
        assert_eq!(out, whole, "{:?}", String::from_utf8_lossy(&garbage));
        // Only whole bytes were removed, in order.
        let mut rest = garbage.iter();
        assert!(out.iter().all(|b| rest.any(|g| g == b)));
    }
}
