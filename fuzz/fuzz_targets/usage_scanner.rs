//! The response usage scanner (`usage::UsageScanner`), JSON and SSE, under any chunking.
//!
//! Input: byte 0 = format (bit 0) and the largest chunk size, bytes 1..9 = the PRNG seed of the
//! chunk pattern, the rest = the response body.
//!
//! Checked: never panics; the usage found is the same whether the body arrives whole, byte
//! by byte or in random chunks (empty ones included); for a JSON body that serde_json
//! accepts and whose `usage` is unambiguous, the tokens equal an independent reading.
#![no_main]

use ai_gateway_filter::usage::{Format, Usage, UsageScanner};
use fuzz_support::{members, serde_valid, take_u64, Cuts, RawMember};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&ctl, rest)) = data.split_first() else {
        return;
    };
    let (seed, body) = take_u64(rest);
    let format = if ctl & 1 == 0 {
        Format::Json
    } else {
        Format::Sse
    };
    let max_chunk = [1usize, 2, 3, 7, 16, 64, 512, 4096][usize::from(ctl >> 1) % 8];

    let whole = scan(format, [body]);
    let bytes = scan(format, body.chunks(1));
    let chunks = scan(format, Cuts::new(seed).split(body, max_chunk));
    assert_eq!(whole, bytes, "whole vs byte by byte");
    assert_eq!(whole, chunks, "whole vs chunked");

    if format == Format::Json {
        if let Some(expected) = json_oracle(body) {
            assert_eq!(whole, expected, "{:?}", String::from_utf8_lossy(body));
        }
    }
});

fn scan<'a>(format: Format, chunks: impl IntoIterator<Item = &'a [u8]>) -> Option<Usage> {
    let mut s = UsageScanner::new(format);
    for c in chunks {
        s.feed(c);
        let _ = s.usage(); // reading mid-stream is allowed at any point
    }
    s.usage()
}

/// A token count as the scanner documents it: a plain non-negative integer → its value;
/// a non-number (string, object, ...) or a negative number → 0; None (= don't know) for
/// fractions, exponents and values past u64.
fn tokens(v: &[u8]) -> Option<u64> {
    match v.first()? {
        b'0'..=b'9' => {
            if v.iter().all(u8::is_ascii_digit) && v.len() < 20 {
                std::str::from_utf8(v).ok()?.parse().ok()
            } else {
                None
            }
        }
        b'-' => {
            if v[1..].iter().all(u8::is_ascii_digit) {
                Some(0)
            } else {
                None
            }
        }
        _ => Some(0),
    }
}

fn count<'m, 'a>(ms: &'m [RawMember<'a>], name: &str) -> Vec<&'m RawMember<'a>> {
    ms.iter().filter(|m| m.is(name)).collect()
}

/// The usage of a valid JSON body when exactly one `usage` can count (top level, or in a
/// single `response` object); None when the case is ambiguous or not covered.
fn json_oracle(body: &[u8]) -> Option<Option<Usage>> {
    if !serde_valid(body)? {
        return None;
    }
    let top = match members(body) {
        Some(ms) => ms,
        None => return Some(None), // not an object: no usage
    };
    if top.iter().any(|m| m.key.is_none()) {
        return None;
    }
    let mut candidates: Vec<&[u8]> = count(&top, "usage").iter().map(|m| m.value).collect();
    let responses = count(&top, "response");
    if responses.len() > 1 {
        return None;
    }
    if let Some(r) = responses.first() {
        if let Some(inner) = members(r.value) {
            if inner.iter().any(|m| m.key.is_none()) {
                return None;
            }
            candidates.extend(count(&inner, "usage").iter().map(|m| m.value));
        }
    }
    match candidates.as_slice() {
        [] => Some(None),
        [v] if *v == b"null" => Some(None),
        [v] if v.first() == Some(&b'{') => {
            let u = members(v)?;
            if u.iter().any(|m| m.key.is_none()) {
                return None;
            }
            let field = |a: &str, b: &str| -> Option<u64> {
                let hits: Vec<_> = u.iter().filter(|m| m.is(a) || m.is(b)).collect();
                match hits.as_slice() {
                    [] => Some(0),
                    [m] => tokens(m.value),
                    _ => None,
                }
            };
            Some(Some(Usage {
                prompt_tokens: field("prompt_tokens", "input_tokens")?,
                completion_tokens: field("completion_tokens", "output_tokens")?,
            }))
        }
        _ => None,
    }
}
