//! The SSE usage-chunk stripper (`usage::UsageChunkStripper`) under any chunking.
//!
//! Input: byte 0 = the largest chunk size (and whether end-of-stream comes with the last
//! chunk or as an extra empty one), bytes 1..9 = the PRNG seed of the chunk pattern, the rest =
//! the stream.
//!
//! Checked: never panics; the bytes passed on and the usage found do not depend on the
//! chunking; the usage equals `UsageScanner` (SSE) on the same stream; a stream that can't
//! hold a usage-only event passes byte for byte; for a well-formed stream of `data: <JSON>`
//! events, exactly the usage-only events (`"choices":[]` with a `usage` object) and the
//! top-level `"usage":null` members of the others are removed.
#![no_main]

use ai_gateway_filter::usage::{Format, Usage, UsageChunkStripper, UsageScanner};
use fuzz_support::{members, serde_valid, skip_ws, take_u64, Cuts};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&ctl, rest)) = data.split_first() else {
        return;
    };
    let (seed, body) = take_u64(rest);
    let max_chunk = [1usize, 2, 3, 5, 16, 64, 512, 4096][usize::from(ctl & 7)];
    let eos_separate = ctl & 8 != 0;

    let (whole, u_whole) = strip([body], eos_separate);
    let (bytes, u_bytes) = strip(body.chunks(1), eos_separate);
    let (chunked, u_chunked) = strip(Cuts::new(seed).split(body, max_chunk), !eos_separate);
    assert_eq!(whole, bytes, "whole vs byte by byte");
    assert_eq!(whole, chunked, "whole vs chunked");
    assert_eq!(u_whole, u_bytes);
    assert_eq!(u_whole, u_chunked);

    let mut scanner = UsageScanner::new(Format::Sse);
    scanner.feed(body);
    assert_eq!(
        u_whole,
        scanner.usage(),
        "stripper and scanner disagree on usage"
    );

    assert!(whole.len() <= body.len());
    let may_hold_usage_only = body.windows(5).any(|w| w == b"usage") || body.contains(&b'\\');
    if !may_hold_usage_only {
        assert_eq!(whole, body, "bytes changed in a stream without any usage");
    }
    if let Some(expected) = oracle(body) {
        assert_eq!(
            String::from_utf8_lossy(&whole),
            String::from_utf8_lossy(&expected),
            "input {:?}",
            String::from_utf8_lossy(body)
        );
    }
});

fn strip<'a>(
    chunks: impl IntoIterator<Item = &'a [u8]>,
    eos_separate: bool,
) -> (Vec<u8>, Option<Usage>) {
    let mut s = UsageChunkStripper::new();
    let mut out = Vec::new();
    let chunks: Vec<&[u8]> = chunks.into_iter().collect();
    let n = chunks.len();
    for (i, c) in chunks.into_iter().enumerate() {
        let last = i + 1 == n && !eos_separate;
        out.extend_from_slice(&s.filter(c, last));
    }
    if eos_separate || n == 0 {
        out.extend_from_slice(&s.filter(&[], true));
    }
    (out, s.usage())
}

/// The payload with its (single) top-level `usage` member removed when its value is `null`, as
/// the stripper documents it: after another member, from the comma before it through `null`;
/// as the first member, from its name through the comma after it (or through `null` when it
/// is the only one). Whitespace outside that span stays.
fn without_null_usage(payload: &[u8], ms: &[fuzz_support::RawMember<'_>]) -> Vec<u8> {
    let Some(idx) = ms.iter().position(|m| m.is("usage") && m.value == b"null") else {
        return payload.to_vec();
    };
    let u = &ms[idx];
    let (from, to) = if idx > 0 {
        let comma = skip_ws(payload, ms[idx - 1].value_end);
        (comma, u.value_end)
    } else {
        let open = skip_ws(payload, 0);
        let name = skip_ws(payload, open + 1);
        if ms.len() > 1 {
            (name, skip_ws(payload, u.value_end) + 1)
        } else {
            (name, u.value_end)
        }
    };
    let mut out = payload[..from].to_vec();
    out.extend_from_slice(&payload[to..]);
    out
}

/// The expected output for a stream made only of `data: <one line>\n\n` events (LF only,
/// no comments or other fields) whose payloads are `[DONE]` or JSON objects that serde_json
/// accepts, with no duplicated `choices`/`usage` and a `usage` that is absent, null or an
/// object. None for anything else.
fn oracle(body: &[u8]) -> Option<Vec<u8>> {
    if body.contains(&b'\r') || !body.ends_with(b"\n\n") {
        return None;
    }
    let mut out = Vec::new();
    for event in body[..body.len() - 2]
        .split(|&b| b == b'\n')
        .collect::<Vec<_>>()
        .split(|l| l.is_empty())
    {
        let [line] = event else {
            return None;
        };
        let payload = line.strip_prefix(b"data:")?;
        let payload = payload.strip_prefix(b" ").unwrap_or(payload);
        let keep = if payload == b"[DONE]" {
            true
        } else {
            if !serde_valid(payload)? {
                return None;
            }
            let ms = members(payload)?;
            if ms.iter().any(|m| m.key.is_none()) {
                return None;
            }
            let choices: Vec<_> = ms.iter().filter(|m| m.is("choices")).collect();
            let usage: Vec<_> = ms.iter().filter(|m| m.is("usage")).collect();
            if choices.len() > 1 || usage.len() > 1 {
                return None;
            }
            let empty_choices = choices.first().is_some_and(|c| {
                c.value.first() == Some(&b'[') && skip_ws(c.value, 1) == c.value.len() - 1
            });
            let usage_object = match usage.first() {
                None => false,
                Some(u) if u.value == b"null" => false,
                Some(u) if u.value.first() == Some(&b'{') => true,
                Some(_) => return None,
            };
            if !(empty_choices && usage_object) {
                // Kept: without its top-level `"usage":null` member, if it has one.
                let prefix = &line[..line.len() - payload.len()];
                out.extend_from_slice(prefix);
                out.extend_from_slice(&without_null_usage(payload, &ms));
                out.extend_from_slice(b"\n\n");
            }
            false
        };
        if keep {
            out.extend_from_slice(line);
            out.extend_from_slice(b"\n\n");
        }
    }
    Some(out)
}
