//! The SSE look-ahead that steps over events which cannot matter (`skim.rs`) changes nothing:
//! the scanner and the stripper with it agree with themselves without it, byte for byte and
//! chunk for chunk, on edge cases and on generated streams split everywhere.

use crate::testing::test;

use super::fixtures::*;
use super::*;

/// Usage seen by the scanner with and without the look-ahead, and how many events it skipped.
fn scan_both(chunks: &[&[u8]]) -> (Option<Usage>, Option<Usage>, usize) {
    let mut fast = UsageScanner::new(Format::Sse);
    let mut slow = UsageScanner::reference(Format::Sse);
    for chunk in chunks {
        fast.feed(chunk);
        slow.feed(chunk);
        assert_eq!(fast.usage(), slow.usage(), "after a chunk of {chunks:?}");
    }
    assert_eq!(slow.skipped(), 0);
    (fast.usage(), slow.usage(), fast.skipped())
}

/// Each chunk's output and the usage of a stripper, with `end_of_stream` on the last chunk or
/// on an extra empty one.
fn strip_chunks(
    mut stripper: UsageChunkStripper,
    chunks: &[&[u8]],
    eos_on_last: bool,
) -> (Vec<Vec<u8>>, Option<Usage>, usize) {
    let mut outs = Vec::new();
    for (i, chunk) in chunks.iter().enumerate() {
        let last = i + 1 == chunks.len();
        outs.push(stripper.filter(chunk, eos_on_last && last).into_owned());
    }
    if !eos_on_last {
        outs.push(stripper.filter(&[], true).into_owned());
    }
    (outs, stripper.usage(), stripper.skipped())
}

/// Asserts the fast paths agree with the reference for `chunks`; returns the events skipped by
/// the scanner and by the stripper.
fn assert_same(chunks: &[&[u8]]) -> (usize, usize) {
    let (fast, slow, scan_skipped) = scan_both(chunks);
    assert_eq!(fast, slow, "scanner, chunks {chunks:?}");
    let mut strip_skipped = 0;
    for eos_on_last in [true, false] {
        let (fast_out, fast_usage, skipped) =
            strip_chunks(UsageChunkStripper::new(), chunks, eos_on_last);
        let (slow_out, slow_usage, _) =
            strip_chunks(UsageChunkStripper::reference(), chunks, eos_on_last);
        assert!(
            fast_out == slow_out,
            "stripper, chunks {chunks:?}:\n fast: {fast_out:?}\n slow: {slow_out:?}"
        );
        assert_eq!(fast_usage, slow_usage);
        assert_eq!(fast_usage, fast, "stripper and scanner usage");
        strip_skipped = skipped;
    }
    (scan_skipped, strip_skipped)
}

/// Asserts agreement for every 2-way and 3-way split of `stream` (3-way: first cut every
/// position, second cut a few positions after it), byte by byte, and whole.
fn assert_same_for_all_splits(stream: &[u8]) {
    let n = stream.len();
    assert_same(&[stream]);
    assert_same(&stream.chunks(1).collect::<Vec<_>>());
    for a in 0..=n {
        assert_same(&cut(stream, &[a]));
        for b in [a + 1, a + 3, a + 7, a + 40] {
            if b < n {
                assert_same(&cut(stream, &[a, b]));
            }
        }
    }
}

const CONTENT: &str = "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}],\"usage\":null}\n\n";
const USAGE_ONLY: &str = "data: {\"id\":\"c1\",\"choices\":[],\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":3}}\n\n";

#[test]
fn skips_ordinary_events_and_still_finds_usage_split_anywhere() {
    let plain =
        "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}]}\n\n";
    let stream = format!("{plain}{CONTENT}{plain}{USAGE_ONLY}data: [DONE]\n\n");
    let (scan_skipped, strip_skipped) = assert_same(&[stream.as_bytes()]);
    // The scanner steps over the two plain events, the `"usage":null` one and `[DONE]`; the
    // stripper over the plain events and `[DONE]` (it removes the null usage and the usage
    // chunk).
    assert_eq!((scan_skipped, strip_skipped), (4, 3));
    assert_eq!(scan(Format::Sse, &[stream.as_bytes()]), Some(usage(7, 3)));
    let (out, _) = strip(&[stream.as_bytes()], true);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        format!(
            "{plain}{}{plain}data: [DONE]\n\n",
            without_null_usage(CONTENT)
        )
    );
    assert_same_for_all_splits(stream.as_bytes());
}

#[test]
fn finds_a_usage_name_split_across_chunks_at_every_position() {
    for name in [
        "\"usage\":",
        "\"usage\" :\t",
        "\"us\\u0061ge\":",
        "\"\\u0075sage\":",
        "\"usag\\u0065\" : ",
    ] {
        let stream = format!(
            "data: {{\"choices\":[],{name}{{\"prompt_tokens\":5,\"completion_tokens\":1}}}}\n\n{CONTENT}"
        );
        assert_usage_for_all_splits(Format::Sse, stream.as_bytes(), Some(usage(5, 1)));
        assert_same_for_all_splits(stream.as_bytes());
        let (out, got) = strip(&[stream.as_bytes()], true);
        assert_eq!(got, Some(usage(5, 1)));
        assert_eq!(out, without_null_usage(CONTENT).as_bytes(), "{name}");
    }
}

#[test]
fn usage_inside_string_values_neither_counts_nor_stops_the_skip() {
    let decoys = concat!(
        "data: {\"choices\":[{\"delta\":{\"content\":\"\\\"usage\\\": {\\\"prompt_tokens\\\": 9}\"}}]}\n\n",
        "data: {\"choices\":[{\"delta\":{\"content\":\"my usage\"}}],\"x\":[\"usage\",\"usage\"]}\n\n",
        "data: {\"choices\":[{\"delta\":{\"content\":\"\\\\\\\"usage\\\\\\\"\"}}]}\n\n",
    );
    let (scan_skipped, strip_skipped) = assert_same(&[decoys.as_bytes()]);
    assert_eq!((scan_skipped, strip_skipped), (3, 3));
    assert_eq!(scan(Format::Sse, &[decoys.as_bytes()]), None);
    assert_same_for_all_splits(decoys.as_bytes());
}

#[test]
fn null_usage_with_whitespace_is_skipped_by_the_scanner_only() {
    for member in [
        "\"usage\":null",
        "\"usage\" : null",
        "\"usage\"\t:\tnull",
        "\"usage\":  nul",
    ] {
        let stream = format!("data: {{\"choices\":[{{}}],{member}}}\n\n");
        let (scan_skipped, strip_skipped) = assert_same(&[stream.as_bytes()]);
        assert_eq!((scan_skipped, strip_skipped), (1, 0), "{member}");
        assert_same_for_all_splits(stream.as_bytes());
    }
    // A value on the next data line, or a name at the end of a line: the JSON scan decides.
    for stream in [
        "data: {\"choices\":[],\"usage\":\ndata: {\"prompt_tokens\":2}}\n\n",
        "data: {\"choices\":[],\"usage\"\ndata: :{\"prompt_tokens\":2}}\n\n",
        "data: {\"choices\":[],\"usage\":\r\ndata: {\"prompt_tokens\":2}}\r\n\r\n",
    ] {
        let (scan_skipped, _) = assert_same(&[stream.as_bytes()]);
        assert_eq!(scan_skipped, 0, "{stream:?}");
        assert_eq!(scan(Format::Sse, &[stream.as_bytes()]), Some(usage(2, 0)));
        assert_same_for_all_splits(stream.as_bytes());
    }
}

#[test]
fn skips_with_every_line_ending_comment_and_field_line() {
    let event = "data: {\"choices\":[{\"delta\":{}}],\"usage\":null}";
    for eol in ["\n", "\r\n", "\r"] {
        let stream = [
            format!(": keep-alive{eol}{eol}"),
            format!("event: message{eol}id: 7{eol}retry: 10{eol}{event}{eol}{eol}"),
            format!(": comment{eol}{event}{eol}{eol}"),
            format!("data: [DONE]{eol}{eol}"),
            USAGE_ONLY.replace('\n', eol),
            format!("data{eol}{eol}data:{eol}data: {{{eol}data: }}{eol}{eol}"),
        ]
        .concat();
        let (scan_skipped, _) = assert_same(&[stream.as_bytes()]);
        // All but the usage chunk: the comment-only event, the two with a null usage, `[DONE]`
        // and the two with empty or non-JSON data.
        assert_eq!(scan_skipped, 6, "{eol:?}");
        assert_eq!(scan(Format::Sse, &[stream.as_bytes()]), Some(usage(7, 3)));
        assert_same_for_all_splits(stream.as_bytes());
    }
}

#[test]
fn the_stripper_stops_looking_ahead_in_a_stream_with_usage_in_every_event() {
    let plain = "data: {\"choices\":[{\"delta\":{}}]}\n\n";
    let stream = format!("{}{plain}{USAGE_ONLY}", CONTENT.repeat(6));
    let (scan_skipped, strip_skipped) = assert_same(&[stream.as_bytes()]);
    assert_eq!((scan_skipped, strip_skipped), (7, 0));
    let (out, _) = strip(&[stream.as_bytes()], true);
    assert_eq!(
        out,
        format!("{}{plain}", without_null_usage(CONTENT).repeat(6)).as_bytes()
    );
    let (scan_skipped, strip_skipped) =
        assert_same(&[format!("{plain}{plain}{stream}").as_bytes()]);
    assert_eq!((scan_skipped, strip_skipped), (9, 2));
}

#[test]
fn skips_nothing_of_the_recorded_fixtures_that_matters() {
    for stream in [
        CHAT_SSE,
        CHAT_SSE_CRLF,
        RESPONSES_SSE,
        DECOY_SSE,
        UTF8_SSE,
        CHAT_SSE_NO_USAGE,
        COMPLETIONS_SSE,
        MOCK_CHAT_SSE,
        CHAT_SSE_WITHOUT_INCLUDE_USAGE,
    ] {
        let (scan_skipped, _) = assert_same(&[stream.as_bytes()]);
        assert!(scan_skipped > 0, "{stream}");
        // Every 2-way split and byte by byte (3-way splits of these kilobytes are slow).
        assert_same(&stream.as_bytes().chunks(1).collect::<Vec<_>>());
        for at in 0..=stream.len() {
            assert_same(&cut(stream.as_bytes(), &[at]));
        }
    }
}

/// One generated event (without its terminating empty line) and the line ending to use.
fn gen_event(rng: &mut SplitMix64) -> String {
    const CONTENTS: &[&str] = &[
        "Hi",
        "\\\"usage\\\": {}",
        "usage",
        "\\u00e9\\u0065",
        "你好",
        "a\\\\",
        "\\n",
    ];
    const USAGES: &[&str] = &[
        "",
        ",\"usage\":null",
        ",\"usage\" : null",
        ",\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":4}",
        ",\"usage\":{\"prompt_tokens\":5}",
        ",\"us\\u0061ge\":{\"completion_tokens\":6}",
        ",\"usage\":nul",
        ",\"x\":\"usage\"",
    ];
    let content = CONTENTS[rng.below(CONTENTS.len())];
    let usage = USAGES[rng.below(USAGES.len())];
    match rng.below(10) {
        0 => ": ping".to_owned(),
        1 => "data: [DONE]".to_owned(),
        2 => format!("event: x\ndata: {{\"choices\":[]{usage}}}"),
        3 => format!("data: {{\"choices\":[],\n data: \"usage\":null{usage}}}"),
        4 => format!(
            "data: {{\"type\":\"response.completed\",\"response\":{{\"id\":\"r\"{usage}}}}}"
        ),
        _ => format!(
            "data: {{\"id\":\"c\",\"choices\":[{{\"delta\":{{\"content\":\"{content}\"}}}}]{usage}}}"
        ),
    }
}

fn gen_stream(rng: &mut SplitMix64) -> String {
    let eol = ["\n", "\r\n", "\r"][rng.below(3)];
    let mut stream = String::new();
    for _ in 0..1 + rng.below(5) {
        stream.push_str(&gen_event(rng).replace('\n', eol));
        stream.push_str(eol);
        stream.push_str(eol);
    }
    if rng.below(4) == 0 {
        // A stream cut short.
        let at = rng.below(stream.len());
        while !stream.is_char_boundary(stream.len().min(at)) {
            stream.pop();
        }
        stream.truncate(at.min(stream.len()));
    }
    stream
}

#[test]
fn agrees_with_the_reference_on_generated_streams_split_everywhere() {
    let mut rng = SplitMix64::new(0x5ca1ab1e);
    let mut skipped = (0, 0);
    for _ in 0..40 {
        let stream = gen_stream(&mut rng);
        let whole = assert_same(&[stream.as_bytes()]);
        skipped = (skipped.0 + whole.0, skipped.1 + whole.1);
        assert_same_for_all_splits(stream.as_bytes());
    }
    for round in 0..400 {
        let stream = gen_stream(&mut rng);
        for max_piece in [2, 9, 40] {
            let cuts = random_cuts(stream.len(), &mut rng, max_piece + round % 7);
            assert_same(&cut(stream.as_bytes(), &cuts));
        }
    }
    assert!(skipped.0 > 20 && skipped.1 > 10, "{skipped:?}");
}
