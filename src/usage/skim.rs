//! Look-ahead over one whole SSE event that decides, without parsing its JSON, that the event
//! cannot matter: then the SSE parser steps over it instead of running the JSON scan.
//!
//! Why a byte search is enough: the JSON scan only ever acts on a member named `usage` (a
//! `usage` object sets the usage; a usage-only chunk and a removable member both need one). A
//! member name decoding to `usage` is written either literally, `"usage"`, or with at least
//! one `\u00XX` escape of one of its letters, all of which are `\u006X` or `\u007X` (the
//! scanner decodes no other escape to a letter, and an escape never spans a line). Its raw
//! bytes are on one line of the event, and a name is followed by optional whitespace and `:`,
//! so:
//!
//! - an event without `usage"` followed by `[ \t]*:` on its line, without `usage"` followed by
//!   `[ \t]*` and a line end, and without `\u006` / `\u007`, has no member named `usage` —
//!   whatever the bytes mean (`usage"` inside a string value has its quote escaped, `\"`, and
//!   a string value ending in `usage` is followed by `,`, `}` or `]`);
//! - for the usage alone, a `usage` member whose value starts on its line with `n` (`null`, or
//!   a syntax error) is no `usage` object either.
//!
//! Everything else is "interesting", and so is an event that does not end in the bytes at
//! hand: those go through the JSON scan as before. False alarms (`\u0065` in content, a
//! `"usage":{` quoted in a comment line) only cost the look-ahead.

use crate::bytes::{splat, word, zero_bytes, zero_bytes_exact};

/// A byte the look-ahead stops at: a line end, a backslash, or a `u` with a `"` five bytes on
/// (the shape of `usage"`).
#[inline(always)]
fn is_hit(hay: &[u8], k: usize, b: u8) -> bool {
    matches!(b, b'\n' | b'\r' | b'\\') || (b == b'u' && hay.get(k + 5) == Some(&b'"'))
}

/// Index of the first hit (see [`is_hit`]) of `hay` at or after `from`, eight bytes at a time.
#[inline]
fn next_hit(hay: &[u8], from: usize) -> Option<usize> {
    let rest = hay.get(from..)?;
    let (nl, cr, bs, u, quote) = (
        splat(b'\n'),
        splat(b'\r'),
        splat(b'\\'),
        splat(b'u'),
        splat(b'"'),
    );
    let mut base = 0;
    // Windows of 13 bytes at 0, 8, 16…: the word at the start and the word five bytes on.
    for window in rest.windows(13).step_by(8) {
        let w = word(&window[..8]);
        let w5 = word(&window[5..]);
        // The lowest set bit is a true hit: the spurious bits of `zero_bytes` only lie above a
        // true zero byte of the same term, and the `u`…`"` term is exact.
        let hits = zero_bytes(w ^ nl)
            | zero_bytes(w ^ cr)
            | zero_bytes(w ^ bs)
            | (zero_bytes_exact(w ^ u) & zero_bytes_exact(w5 ^ quote));
        if hits != 0 {
            return Some(from + base + (hits.trailing_zeros() / 8) as usize);
        }
        base += 8;
    }
    let tail = rest.get(base..).unwrap_or_default();
    tail.iter()
        .enumerate()
        .position(|(k, &b)| is_hit(rest, base + k, b))
        .map(|k| from + base + k)
}

/// Skips `[ \t]*` from `at`.
#[inline]
fn skip_blanks(hay: &[u8], mut at: usize) -> usize {
    while matches!(hay.get(at), Some(b' ' | b'\t')) {
        at += 1;
    }
    at
}

/// Whether the `usage"` at `at` can begin a `usage` member that matters: its name is followed by
/// `:` (or by the line's end, after which a `:` may follow), and, unless `any_value`, its
/// value does not start with `n` on the same line. `None`: the bytes end too soon to tell.
#[inline]
fn usage_matters(hay: &[u8], at: usize, any_value: bool) -> Option<bool> {
    let colon = skip_blanks(hay, at + b"usage\"".len());
    match *hay.get(colon)? {
        b':' if any_value => Some(true),
        b':' => {
            let value = skip_blanks(hay, colon + 1);
            Some(*hay.get(value)? != b'n')
        }
        b'\n' | b'\r' => Some(true),
        // A string value that ends in `usage`: not a member name.
        _ => Some(false),
    }
}

/// Why an event is not stepped over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Miss {
    /// It may have a `usage` member that matters.
    Usage,
    /// It does not end in the bytes at hand (or ends too close to a candidate to tell).
    Unknown,
}

/// When `hay` starts with the first line of an event (its first byte is no line end), the
/// event ends (with its empty line) in `hay`, and it cannot matter, returns the length of the
/// event through its empty line and whether that empty line was a `\r` (a `\n` right after it
/// belongs to it). `any_value`: a `usage` member matters whatever its value (the stripper
/// removes `"usage": null`); else only when its value does not start with `n`.
pub(super) fn skip_event(hay: &[u8], any_value: bool) -> Result<(usize, bool), Miss> {
    let mut at = 0;
    loop {
        let hit = next_hit(hay, at).ok_or(Miss::Unknown)?;
        match *hay.get(hit).ok_or(Miss::Unknown)? {
            b'\n' | b'\r' => {
                let mut next = hit + 1;
                if hay.get(hit) == Some(&b'\r') {
                    // Whether a `\n` follows is not known yet.
                    if *hay.get(next).ok_or(Miss::Unknown)? == b'\n' {
                        next += 1;
                    }
                }
                match *hay.get(next).ok_or(Miss::Unknown)? {
                    end @ (b'\n' | b'\r') => return Ok((next + 1, end == b'\r')),
                    _ => at = next,
                }
            }
            b'\\' => {
                let escape = hay.get(hit + 1..hit + 5).ok_or(Miss::Unknown)?;
                if escape.starts_with(b"u00") && matches!(escape.get(3), Some(b'6' | b'7')) {
                    return Err(Miss::Usage);
                }
                at = hit + 1;
            }
            _ => {
                if hay.get(hit..hit + 6) == Some(b"usage\"")
                    && usage_matters(hay, hit, any_value).ok_or(Miss::Unknown)?
                {
                    return Err(Miss::Usage);
                }
                at = hit + 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{next_hit, skip_event, Miss};
    use crate::testing::{test, RngCore, SplitMix64};

    fn naive_next_hit(hay: &[u8], from: usize) -> Option<usize> {
        (from..hay.len()).find(|&k| {
            matches!(hay[k], b'\n' | b'\r' | b'\\')
                || (hay[k] == b'u' && hay.get(k + 5) == Some(&b'"'))
        })
    }

    #[test]
    fn next_hit_agrees_with_a_naive_search_for_every_position_and_length() {
        for len in 0..40 {
            for pos in 0..len {
                for byte in [b'\n', b'\r', b'\\', b'u', b'"', 0x80, 0xff, 0x00, b't'] {
                    let mut hay = vec![b'a'; len];
                    hay[pos] = byte;
                    if pos + 5 < len {
                        hay[pos + 5] = b'"';
                    }
                    for from in 0..=len {
                        assert_eq!(
                            next_hit(&hay, from),
                            naive_next_hit(&hay, from),
                            "{hay:?} from {from}"
                        );
                    }
                }
            }
        }
        let alphabet = b"u\"\n\r\\ausage:\x00\x80\xff\x75\x22";
        let mut rng = SplitMix64::new(0x9e37_79b9_7f4a_7c15);
        for _ in 0..50_000 {
            let state = rng.next_u64();
            let len = (state % 48) as usize;
            let hay: Vec<u8> = (0..len)
                .map(|k| alphabet[((state >> (k % 50)) as usize + k * 5) % alphabet.len()])
                .collect();
            let from = (state >> 40) as usize % (len + 1);
            assert_eq!(next_hit(&hay, from), naive_next_hit(&hay, from), "{hay:?}");
        }
    }

    #[test]
    fn skips_only_whole_events_without_a_usage_member_that_matters() {
        // (event, what follows it, any_value, Ok(cr) when the event is skipped).
        let cases: &[(&str, &str, bool, Result<bool, Miss>)] = &[
            ("data: {\"a\":1}\n\n", "rest", false, Ok(false)),
            ("data: {\"a\":1}\r\n\r", "\nrest", false, Ok(true)),
            ("data: {\"a\":1}\r\r", "rest", false, Ok(true)),
            ("data: {\"a\":1}\n\r", "rest", false, Ok(true)),
            ("data: {\"a\":1}\r\n\n", "rest", false, Ok(false)),
            ("data: {\"a\":1}\n\r", "", false, Ok(true)),
            ("event: x\n: c\ndata: [DONE]\n\n", "", false, Ok(false)),
            (
                "data: {\"a\":1}\ndata: {}\n\n",
                "data: {\"usage\":{}}\n\n",
                false,
                Ok(false),
            ),
            // Not whole: the end is not known.
            ("data: {\"a\":1}\n", "", false, Err(Miss::Unknown)),
            ("data: {\"a\":1}\r", "", false, Err(Miss::Unknown)),
            ("data: {\"a\":1}\r\n", "", false, Err(Miss::Unknown)),
            ("data: {\"a\":1}", "", false, Err(Miss::Unknown)),
            // A null usage: nothing for the scanner, a member to remove for the stripper.
            ("data: {\"usage\":null}\n\n", "", false, Ok(false)),
            ("data: {\"usage\" :\t null}\n\n", "", false, Ok(false)),
            ("data: {\"usage\":null}\n\n", "", true, Err(Miss::Usage)),
            ("data: {\"usage\":{}}\n\n", "", false, Err(Miss::Usage)),
            ("data: {\"usage\" : {}}\n\n", "", false, Err(Miss::Usage)),
            (
                "data: {\"usage\"\ndata: :null}\n\n",
                "",
                false,
                Err(Miss::Usage),
            ),
            (
                "data: {\"usage\":\ndata: {}}\n\n",
                "",
                false,
                Err(Miss::Usage),
            ),
            ("data: {\"usage\":", "", false, Err(Miss::Unknown)),
            ("data: {\"usage\"", "", false, Err(Miss::Unknown)),
            // `usage` in a string value, with escaped quotes, and a value ending in `usage`.
            (
                "data: {\"c\":\"\\\"usage\\\":{}\"}\n\n",
                "",
                true,
                Ok(false),
            ),
            ("data: {\"c\":\"usage\"}\n\n", "", true, Ok(false)),
            ("data: {\"c\":[\"usage\",\"x\"]}\n\n", "", true, Ok(false)),
            // Escaped letters of a name, other escapes.
            (
                "data: {\"us\\u0061ge\":{}}\n\n",
                "",
                false,
                Err(Miss::Usage),
            ),
            (
                "data: {\"\\u0075sage\":{}}\n\n",
                "",
                false,
                Err(Miss::Usage),
            ),
            ("data: {\"c\":\"\\u4f60\\n\\\\\"}\n\n", "", true, Ok(false)),
            ("data: {\"c\":\"\\u00", "", false, Err(Miss::Unknown)),
        ];
        for &(event, rest, any_value, cr) in cases {
            let input = format!("{event}{rest}");
            assert_eq!(
                skip_event(input.as_bytes(), any_value),
                cr.map(|cr| (event.len(), cr)),
                "{input:?} any_value {any_value}"
            );
        }
    }
}
