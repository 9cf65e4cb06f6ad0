use crate::testing::test;
use std::borrow::Cow;

use super::fixtures::*;
use super::*;

#[allow(clippy::ptr_arg)] // the point is to look at the Cow itself
fn is_borrowed_whole(out: &Cow<'_, [u8]>, chunk: &[u8]) -> bool {
    matches!(out, Cow::Borrowed(b) if b.as_ptr() == chunk.as_ptr() && b.len() == chunk.len())
}

#[test]
fn gives_chat_sse_with_include_usage_exactly_as_recorded_without_it_for_every_split_point() {
    assert_stripped_for_all_splits(
        CHAT_SSE.as_bytes(),
        CHAT_SSE_WITHOUT_INCLUDE_USAGE.as_bytes(),
    );
    assert_stripped_for_random_splits(
        CHAT_SSE.as_bytes(),
        CHAT_SSE_WITHOUT_INCLUDE_USAGE.as_bytes(),
        3_000,
    );
}

#[test]
fn gives_completions_sse_with_include_usage_exactly_as_recorded_without_it_for_every_split_point() {
    assert_stripped_for_all_splits(
        COMPLETIONS_SSE.as_bytes(),
        COMPLETIONS_SSE_WITHOUT_INCLUDE_USAGE.as_bytes(),
    );
    assert_stripped_for_random_splits(
        COMPLETIONS_SSE.as_bytes(),
        COMPLETIONS_SSE_WITHOUT_INCLUDE_USAGE.as_bytes(),
        3_000,
    );
}

#[test]
fn gives_the_mock_providers_sse_with_include_usage_exactly_as_without_it_for_every_split_point() {
    assert_stripped_for_all_splits(
        MOCK_CHAT_SSE.as_bytes(),
        MOCK_CHAT_SSE_WITHOUT_INCLUDE_USAGE.as_bytes(),
    );
    assert_stripped_for_random_splits(
        MOCK_CHAT_SSE.as_bytes(),
        MOCK_CHAT_SSE_WITHOUT_INCLUDE_USAGE.as_bytes(),
        3_000,
    );
}

#[test]
fn strips_the_usage_chunk_and_null_usages_from_a_crlf_stream_for_every_split_point() {
    let expected = without_null_usage(&without(CHAT_SSE_CRLF, CHAT_SSE_CRLF_USAGE_EVENT));
    assert_stripped_for_all_splits(CHAT_SSE_CRLF.as_bytes(), expected.as_bytes());
    assert_stripped_for_random_splits(CHAT_SSE_CRLF.as_bytes(), expected.as_bytes(), 2_000);
}

#[test]
fn strips_the_usage_chunk_and_null_usages_from_a_bare_cr_stream_for_every_split_point() {
    let stream = CHAT_SSE.replace('\n', "\r");
    let expected = CHAT_SSE_WITHOUT_INCLUDE_USAGE.replace('\n', "\r");
    assert_stripped_for_all_splits(stream.as_bytes(), expected.as_bytes());
}

#[test]
fn strips_only_the_real_usage_chunk_from_decoy_and_utf8_streams_for_every_split_point() {
    let expected = without_null_usage(&without(DECOY_SSE, DECOY_SSE_USAGE_EVENT));
    assert_stripped_for_all_splits(DECOY_SSE.as_bytes(), expected.as_bytes());
    let expected = without_null_usage(&without(UTF8_SSE, UTF8_SSE_USAGE_EVENT));
    assert_stripped_for_all_splits(UTF8_SSE.as_bytes(), expected.as_bytes());
}

#[test]
fn passes_streams_without_anything_to_strip_byte_identical_for_every_split_point() {
    for stream in [
        CHAT_SSE_NO_USAGE,
        // `"usage":null` only inside `response`.
        RESPONSES_SSE,
        CHAT_SSE_WITHOUT_INCLUDE_USAGE,
        COMPLETIONS_SSE_WITHOUT_INCLUDE_USAGE,
        MOCK_CHAT_SSE_WITHOUT_INCLUDE_USAGE,
        CHAT_JSON,
        UTF8_JSON,
    ] {
        assert_stripped_for_all_splits(stream.as_bytes(), stream.as_bytes());
    }
}

#[test]
fn passes_events_that_merely_resemble_the_usage_chunk_for_every_split_point() {
    for event in [
        "data: {\"choices\":[]}\n\n",
        "data: {\"usage\":{\"prompt_tokens\":1}}\n\n",
        "data: {\"choices\":[{}],\"usage\":{\"prompt_tokens\":1}}\n\n",
        "data: {\"choices\":{},\"usage\":{\"prompt_tokens\":1}}\n\n",
        "data: {\"choices\":null,\"usage\":{\"prompt_tokens\":1}}\n\n",
        "data: {\"choices\":[],\"usage\":[]}\n\n",
        "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":1}} x\n\n",
        "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":1}\n\n",
        "data: {\"choices\":[],\"usage\":{}}\ndata: {}\n\n",
        "data: {\"x\":{\"choices\":[],\"usage\":{}}}\n\n",
        "data: {\"response\":{\"choices\":[],\"usage\":{}}}\n\n",
        "data: [{\"choices\":[],\"usage\":{}}]\n\n",
        "data: [DONE]\n\n",
        "event: usage\n\n",
        ": {\"choices\":[],\"usage\":{}}\n\n",
        "id: {\"choices\":[],\"usage\":{}}\n\n",
    ] {
        let content = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"é\"}}]}\n\n";
        let stream = format!("{content}{event}{content}");
        assert_stripped_for_all_splits(stream.as_bytes(), stream.as_bytes());
    }
}

#[test]
fn removes_the_whole_usage_event_with_its_other_fields_but_keeps_leading_comments() {
    let event =
        "event: chunk\nid: 7\ndata: {\"choices\":[],\"usage\":{\"prompt_tokens\":1}}\nretry: 5\n\n";
    let stream = format!(": ping\n{event}data: [DONE]\n\n");
    assert_stripped_for_all_splits(stream.as_bytes(), b": ping\ndata: [DONE]\n\n");
    // A comment after the first field line belongs to the event.
    let stream = "data: {\"choices\":[],\n: note\ndata: \"usage\":{}}\n\n: after\n\n";
    assert_stripped_for_all_splits(stream.as_bytes(), b": after\n\n");
}

#[test]
fn passes_whole_ordinary_events_borrowed_without_copying() {
    let mut stripper = UsageChunkStripper::new();
    let mut got = Vec::new();
    for event in CHAT_SSE.split_inclusive("\n\n") {
        let out = stripper.filter(event.as_bytes(), false);
        if event == CHAT_SSE_USAGE_EVENT {
            assert!(out.is_empty());
        } else if event.contains("\"usage\":null") {
            // Copied once, without the member.
            assert!(matches!(out, Cow::Owned(_)), "{event}");
            assert_eq!(*out, *without_null_usage(event).as_bytes());
        } else {
            assert!(is_borrowed_whole(&out, event.as_bytes()), "{event}");
        }
        got.extend_from_slice(&out);
    }
    assert!(matches!(stripper.filter(&[], true), Cow::Borrowed(b"")));
    assert_eq!(got, CHAT_SSE_WITHOUT_INCLUDE_USAGE.as_bytes());
    assert_eq!(stripper.usage(), Some(CHAT_SSE_USAGE));

    // Events with nothing to strip, one per chunk.
    let mut stripper = UsageChunkStripper::new();
    for event in CHAT_SSE_WITHOUT_INCLUDE_USAGE
        .split_inclusive("\n\n")
        .chain(CHAT_SSE_NO_USAGE.split_inclusive("\n\n"))
        .chain(RESPONSES_SSE.split_inclusive("\n\n"))
    {
        let out = stripper.filter(event.as_bytes(), false);
        assert!(is_borrowed_whole(&out, event.as_bytes()), "{event}");
    }

    // Several events per chunk, none usage-only.
    let mut stripper = UsageChunkStripper::new();
    let out = stripper.filter(CHAT_SSE_NO_USAGE.as_bytes(), true);
    assert!(is_borrowed_whole(&out, CHAT_SSE_NO_USAGE.as_bytes()));
    let mut stripper = UsageChunkStripper::new();
    let out = stripper.filter(RESPONSES_SSE.as_bytes(), false);
    assert!(is_borrowed_whole(&out, RESPONSES_SSE.as_bytes()));
    assert_eq!(stripper.usage(), Some(RESPONSES_SSE_USAGE));
    let mut stripper = UsageChunkStripper::new();
    let stream = COMPLETIONS_SSE_WITHOUT_INCLUDE_USAGE.as_bytes();
    assert!(is_borrowed_whole(&stripper.filter(stream, false), stream));
}

#[test]
fn borrows_the_part_before_a_withheld_tail_and_after_a_removed_head() {
    let mut stripper = UsageChunkStripper::new();
    let head = b"data: {\"choices\":[{}]}\n\n".len();
    let first = b"data: {\"choices\":[{}]}\n\ndata: {\"choices\":[],\"usage\":{\"pro";
    let out = stripper.filter(first, false);
    assert!(matches!(out, Cow::Borrowed(b) if b.as_ptr() == first.as_ptr() && b.len() == head));
    assert_eq!(stripper.held_len(), first.len() - head);
    let second = b"mpt_tokens\":3}}\r\n\r\ndata: [DONE]\r\n\r\n";
    let out = stripper.filter(second, false);
    let done = b"data: [DONE]\r\n\r\n";
    assert!(matches!(out, Cow::Borrowed(b) if b == done && b.as_ptr() == second[19..].as_ptr()));
    assert_eq!(stripper.held_len(), 0);
    // The `\n` of a removed event's last `\r\n` arriving in the next chunk is removed too.
    let mut stripper = UsageChunkStripper::new();
    assert!(stripper
        .filter(b"data: {\"choices\":[],\"usage\":{}}\r\n\r", false)
        .is_empty());
    let next = b"\ndata: [DONE]\r\n\r\n";
    let out = stripper.filter(next, true);
    assert!(matches!(out, Cow::Borrowed(b) if b == &next[1..]));
}

#[test]
fn releases_an_event_as_soon_as_its_choices_are_not_empty() {
    let mut stripper = UsageChunkStripper::new();
    assert!(stripper
        .filter(b"data: {\"id\":\"x\",\"choices\":[", false)
        .is_empty());
    assert!(stripper.held_len() > 0);
    let out = stripper.filter(b"{", false);
    assert_eq!(&*out, b"data: {\"id\":\"x\",\"choices\":[{");
    assert_eq!(stripper.held_len(), 0);
    let out = stripper.filter(b"\"index\":0}]}\n", false);
    assert!(matches!(out, Cow::Borrowed(_)));
    assert_eq!(&*out, b"\"index\":0}]}\n");
    // A Responses API event is released at its first byte that rules it out.
    let mut stripper = UsageChunkStripper::new();
    let out = stripper.filter(
        b"event: response.created\ndata: {\"type\":\"response.created\"",
        false,
    );
    assert!(out.is_empty());
    let out = stripper.filter(b"}", false);
    assert_eq!(
        &*out,
        b"event: response.created\ndata: {\"type\":\"response.created\"}"
    );
}

#[test]
fn holds_a_possible_usage_chunk_until_its_blank_line() {
    let mut stripper = UsageChunkStripper::new();
    let event = CHAT_SSE_USAGE_EVENT.as_bytes();
    let (body, blank) = event.split_at(event.len() - 1);
    assert!(stripper.filter(body, false).is_empty());
    assert_eq!(stripper.held_len(), body.len());
    assert!(stripper.filter(blank, false).is_empty());
    assert_eq!(stripper.held_len(), 0);
    assert_eq!(stripper.usage(), Some(CHAT_SSE_USAGE));
    let out = stripper.filter(b"data: [DONE]\n\n", true);
    assert_eq!(&*out, b"data: [DONE]\n\n");
}

#[test]
fn releases_what_is_held_at_end_of_stream_unless_it_is_a_complete_usage_chunk() {
    let partial = b"data: {\"choices\":[],\"usage\":{\"prompt_tokens\":1";
    let mut stripper = UsageChunkStripper::new();
    assert!(stripper.filter(&partial[..10], false).is_empty());
    assert_eq!(&*stripper.filter(&partial[10..], true), &partial[..]);

    let mut stripper = UsageChunkStripper::new();
    assert!(stripper.filter(partial, false).is_empty());
    assert_eq!(&*stripper.filter(b"", true), &partial[..]);

    let complete = b"data: {\"choices\":[],\"usage\":{\"prompt_tokens\":1}}\n";
    let mut stripper = UsageChunkStripper::new();
    assert!(stripper.filter(complete, false).is_empty());
    assert!(stripper.filter(b"", true).is_empty());
    assert_eq!(stripper.usage(), Some(usage(1, 0)));
}

#[test]
fn gives_up_holding_an_undecided_event_past_the_cap() {
    let mut stream = b"data: {\"choices\":[],\"x\":\"".to_vec();
    stream.extend(std::iter::repeat_n(b'a', 300_000));
    stream.extend_from_slice(b"\",\"usage\":{\"prompt_tokens\":1}}\n\n");
    let mut stripper = UsageChunkStripper::new();
    let mut out = Vec::new();
    for chunk in stream.chunks(1000) {
        out.extend_from_slice(&stripper.filter(chunk, false));
        assert!(stripper.held_len() <= 64 * 1024);
    }
    out.extend_from_slice(&stripper.filter(&[], true));
    assert_eq!(out, stream);
    assert_eq!(stripper.usage(), Some(usage(1, 0)));
}

#[test]
fn passes_garbage_unchanged_and_never_panics() {
    let mut rng = SplitMix64::new(3);
    for round in 0..300 {
        let len = rng.below(3_000);
        let alphabet: &[u8] = if round % 2 == 0 {
            b"data: {\"choices\":[],\"usage\":{}}\n\r:event"
        } else {
            b"\x00\xff\xc3\xa9\n\r\n\n"
        };
        let garbage: Vec<u8> = (0..len)
            .map(|_| alphabet[rng.below(alphabet.len())])
            .collect();
        let cuts = random_cuts(len, &mut rng, 1 + round % 64);
        let (out, _) = strip(&cut(&garbage, &cuts), round % 3 == 0);
        assert_eq!(out, garbage);
    }
}

#[test]
fn reports_the_same_usage_as_the_scanner() {
    for (stream, want) in [
        (CHAT_SSE, Some(CHAT_SSE_USAGE)),
        (RESPONSES_SSE, Some(RESPONSES_SSE_USAGE)),
        (CHAT_SSE_NO_USAGE, None),
        (COMPLETIONS_SSE, Some(COMPLETIONS_SSE_USAGE)),
        (MOCK_CHAT_SSE, Some(MOCK_CHAT_SSE_USAGE)),
    ] {
        for cuts in split_plans(stream.len(), 1).into_iter().step_by(7) {
            let chunks = cut(stream.as_bytes(), &cuts);
            assert_eq!(strip(&chunks, true).1, want);
        }
    }
}
