//! Differential tests of the word-at-a-time string scanner against a byte-at-a-time reference
//! (the spec, written for clarity) and against the scanner it replaced (kept here verbatim), on
//! generated strings: every byte class at every position relative to the 8- and 32-byte steps,
//! escapes and UTF-8 sequences straddling them, invalid UTF-8 of every kind, bodies that end
//! inside a string. The vector scanner (`scan_string_fast`) is checked against the same
//! reference on every such input (`simd.rs` has more).

use crate::body::scan::{scan_string, scan_string_fast, syntax};
use crate::body::BodyError;
use crate::testing::{test, RngCore, SplitMix64};

/// The spec: one byte at a time; a non-ASCII run (up to the next ASCII byte) is checked by
/// `std::str::from_utf8`, so the error offset is std's `valid_up_to`.
fn reference(b: &[u8], i: usize) -> Result<(usize, bool), BodyError> {
    let mut j = i + 1;
    let mut escaped = false;
    loop {
        let Some(&c) = b.get(j) else {
            return Err(syntax(b.len(), "unterminated string"));
        };
        match c {
            b'"' => return Ok((j + 1, escaped)),
            b'\\' => {
                escaped = true;
                match b.get(j + 1) {
                    None => return Err(syntax(b.len(), "unterminated string")),
                    Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => j += 2,
                    Some(b'u') => {
                        let hex = b.get(j + 2..j + 6);
                        if !hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
                            return Err(syntax(j, "invalid \\u escape in string"));
                        }
                        j += 6;
                    }
                    Some(_) => return Err(syntax(j, "invalid escape in string")),
                }
            }
            0x00..=0x1F => return Err(syntax(j, "unescaped control character in string")),
            0x20..=0x7F => j += 1,
            _ => {
                let run = b[j..].iter().take_while(|&&c| c >= 0x80).count();
                if let Err(e) = std::str::from_utf8(&b[j..j + run]) {
                    return Err(BodyError::InvalidUtf8 {
                        offset: j + e.valid_up_to(),
                    });
                }
                j += run;
            }
        }
    }
}

/// The scanner before the fused loop (commit 179cbe8), verbatim but for names.
mod old {
    // `skip_utf8` and the word constants are unchanged since: the old scanner uses the live ones.
    use crate::body::scan::{skip_utf8, syntax};
    use crate::body::BodyError;
    use crate::bytes::{HI, LO};

    fn find_special(b: &[u8], mut i: usize) -> usize {
        if let Some(w) = b.get(i..i + 8).and_then(|w| <[u8; 8]>::try_from(w).ok()) {
            let m = special_mask(u64::from_le_bytes(w));
            if m != 0 {
                return i + (m.trailing_zeros() / 8) as usize;
            }
            i += 8;
        }
        let rest = b.get(i..).unwrap_or_default();
        let mut blocks = rest.chunks_exact(32);
        let mut base = i;
        for block in blocks.by_ref() {
            let mut m = [0u64; 4];
            for (k, word) in block.chunks_exact(8).enumerate() {
                if let (Some(slot), Ok(w)) = (m.get_mut(k), <[u8; 8]>::try_from(word)) {
                    *slot = special_mask(u64::from_le_bytes(w));
                }
            }
            let [m0, m1, m2, m3] = m;
            if (m0 | m1 | m2 | m3) != 0 {
                let (k, w) = if m0 != 0 {
                    (0, m0)
                } else if m1 != 0 {
                    (8, m1)
                } else if m2 != 0 {
                    (16, m2)
                } else {
                    (24, m3)
                };
                return base + k + (w.trailing_zeros() / 8) as usize;
            }
            base += 32;
        }
        let tail = blocks.remainder();
        for (k, &c) in tail.iter().enumerate() {
            if c == b'"' || c == b'\\' || !(0x20..0x80).contains(&c) {
                return base + k;
            }
        }
        base + tail.len()
    }

    fn special_mask(x: u64) -> u64 {
        let quote = x ^ (LO * b'"' as u64);
        let slash = x ^ (LO * b'\\' as u64);
        (((quote.wrapping_sub(LO) | slash.wrapping_sub(LO) | x.wrapping_sub(LO * 0x20)) & !x) | x)
            & HI
    }

    pub(super) fn scan_string(b: &[u8], i: usize) -> Result<(usize, bool), BodyError> {
        let mut j = i + 1;
        let mut escaped = false;
        loop {
            j = find_special(b, j);
            match b.get(j) {
                None => return Err(syntax(b.len(), "unterminated string")),
                Some(b'"') => return Ok((j + 1, escaped)),
                Some(b'\\') => {
                    escaped = true;
                    match b.get(j + 1) {
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => j += 2,
                        Some(b'u') => match b.get(j + 2..j + 6) {
                            Some(h) if h.iter().all(u8::is_ascii_hexdigit) => j += 6,
                            _ => return Err(syntax(j, "invalid \\u escape in string")),
                        },
                        Some(_) => return Err(syntax(j, "invalid escape in string")),
                        None => return Err(syntax(b.len(), "unterminated string")),
                    }
                }
                Some(&c) if c >= 0x80 => j = skip_utf8(b, j)?,
                Some(_) => return Err(syntax(j, "unescaped control character in string")),
            }
        }
    }
}

/// Scans the string at `i` with all three (four, when `b` is valid UTF-8) and asserts they
/// agree; returns the common result.
#[track_caller]
fn check(b: &[u8], i: usize) -> Result<(usize, bool), BodyError> {
    let want = reference(b, i);
    assert_eq!(
        scan_string(b, i),
        want,
        "new vs reference on {:?} at {i}",
        b
    );
    assert_eq!(
        old::scan_string(b, i),
        want,
        "old vs reference on {:?} at {i}",
        b
    );
    assert_eq!(
        scan_string_fast(b, i),
        want,
        "fast vs reference on {:?} at {i}",
        b
    );
    want
}

/// Pieces of string text, each one class of what the scanner can meet.
const PIECES: &[&[u8]] = &[
    // Plain ASCII, short and long (to cross the 8- and 32-byte steps).
    b"a",
    b"hello",
    b"The quick brown fox jumps over the lazy dog. ",
    b" ",
    b"\x7f",
    b"~",
    b"!",
    b"#",
    b"[",
    b"]",
    // Valid escapes.
    b"\\\"",
    b"\\\\",
    b"\\/",
    b"\\b",
    b"\\f",
    b"\\n",
    b"\\r",
    b"\\t",
    b"\\u0041",
    b"\\uD83D\\uDE00",
    b"\\uabcdef",
    b"\\uFFFF",
    // Invalid escapes.
    b"\\x",
    b"\\a",
    b"\\U0041",
    b"\\u12",
    b"\\u12G4",
    b"\\u 123",
    b"\\u\xc3\xa9000",
    b"\\\xc3\xa9",
    b"\\\x01",
    b"\\'",
    // Control characters.
    b"\x00",
    b"\x01",
    b"\n",
    b"\t",
    b"\x1f",
    // Valid UTF-8, every length and the range boundaries.
    "é".as_bytes(),
    "\u{80}".as_bytes(),
    "\u{7ff}".as_bytes(),
    "\u{800}".as_bytes(),
    "日本語".as_bytes(),
    "\u{d7ff}".as_bytes(),
    "\u{e000}".as_bytes(),
    "\u{fffd}".as_bytes(),
    "\u{ffff}".as_bytes(),
    "\u{10000}".as_bytes(),
    "😀".as_bytes(),
    "\u{10ffff}".as_bytes(),
    "’“”".as_bytes(),
    "café 日本語 😀 ü".as_bytes(),
    // Overlong encodings.
    b"\xc0\x80",
    b"\xc1\xbf",
    b"\xe0\x80\x80",
    b"\xe0\x9f\xbf",
    b"\xf0\x80\x80\x80",
    b"\xf0\x8f\xbf\xbf",
    // Surrogates.
    b"\xed\xa0\x80",
    b"\xed\xbf\xbf",
    // Above U+10FFFF, and bytes that never appear in UTF-8.
    b"\xf4\x90\x80\x80",
    b"\xf5\x80\x80\x80",
    b"\xf8\x88\x80\x80\x80",
    b"\xfe",
    b"\xff",
    // Lone continuation bytes, truncated sequences.
    b"\x80",
    b"\xbf",
    b"\xc3",
    b"\xe6\x97",
    b"\xf0\x9f\x98",
    b"\xf0\x9f",
    b"\xf0",
    b"\xe6",
    // The end of the string.
    b"\"",
];

/// A string body: `prefix` bytes before the opening quote, the contents, maybe a closing quote.
pub(super) fn random_string(rng: &mut SplitMix64) -> (Vec<u8>, usize) {
    let prefix = (rng.next_u64() % 4) as usize;
    let mut b = vec![b' '; prefix];
    b.push(b'"');
    // Plain text first, so the first piece lands at every offset within a word and a block.
    let lead = (rng.next_u64() % 40) as usize;
    b.extend((0..lead).map(|k| b'a' + (k % 26) as u8));
    let pieces = (rng.next_u64() % 12) as usize;
    for _ in 0..pieces {
        let r = rng.next_u64();
        match r % 8 {
            // Mostly known pieces, weighted towards the valid ones so the scan goes far.
            0..=4 => {
                let piece = PIECES[(r >> 8) as usize % PIECES.len()];
                if piece == b"\"" && r & 0x100_0000 != 0 {
                    continue;
                }
                b.extend_from_slice(piece);
            }
            5 => {
                let n = ((r >> 8) % 20) as usize;
                b.extend((0..n).map(|k| b'A' + ((k + n) % 26) as u8));
            }
            6 => {
                // A random valid character of any length.
                let c = char::from_u32(((r >> 8) % 0x11_0000) as u32).unwrap_or('\u{fffd}');
                let mut buf = [0u8; 4];
                b.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
            _ => b.push((r >> 8) as u8),
        }
    }
    if rng.next_u64() % 4 != 0 {
        b.push(b'"');
    }
    // Sometimes cut the body short, anywhere: it then ends inside the string (or a sequence).
    if rng.next_u64() % 4 == 0 {
        let cut = prefix + 1 + (rng.next_u64() as usize) % (b.len() - prefix);
        b.truncate(cut);
    }
    b.extend(std::iter::repeat_n(b' ', (rng.next_u64() % 3) as usize));
    (b, prefix)
}

#[test]
fn the_word_scanner_agrees_with_the_reference_on_random_strings() {
    let mut rng = SplitMix64::new(0x5CA7_0001);
    let (mut ok, mut errors) = (0, 0);
    for _ in 0..200_000 {
        let (b, i) = random_string(&mut rng);
        match check(&b, i) {
            Ok(_) => ok += 1,
            Err(_) => errors += 1,
        }
    }
    // Both outcomes are well represented.
    assert!(ok > 20_000 && errors > 20_000, "ok {ok}, errors {errors}");
}

#[test]
fn every_two_byte_pair_agrees_at_every_offset_of_a_word() {
    let mut b = Vec::with_capacity(64);
    for pair in 0..=u16::MAX {
        let [x, y] = pair.to_le_bytes();
        for offset in 0..10 {
            for (closed, extra) in [(true, 0), (true, 40), (false, 0)] {
                b.clear();
                b.push(b'"');
                b.extend(std::iter::repeat_n(b'a', offset + extra));
                b.extend_from_slice(&[x, y]);
                b.extend_from_slice(b"bcd");
                if closed {
                    b.push(b'"');
                }
                let _ = check(&b, 0);
            }
        }
    }
}

#[test]
fn every_sequence_after_each_lead_byte_agrees_at_every_offset_of_a_word() {
    // Leads C0..=FF with every second byte and a continuation or ASCII third/fourth byte,
    // ending at every distance from the end of the body.
    let mut b = Vec::with_capacity(64);
    for lead in 0xC0..=0xFFu8 {
        for second in 0..=0xFFu8 {
            for rest in [[0x80, 0x80], [0xBF, 0xBF], [0x80, b'a'], [b'"', 0x80]] {
                for offset in 0..9 {
                    b.clear();
                    b.push(b'"');
                    b.extend(std::iter::repeat_n(b'x', offset));
                    b.extend_from_slice(&[lead, second]);
                    b.extend_from_slice(&rest);
                    let full = b.len();
                    b.push(b'"');
                    for end in full - 3..=full + 1 {
                        let _ = check(&b[..end], 0);
                    }
                }
            }
        }
    }
}

#[test]
fn escapes_agree_when_they_straddle_word_and_block_boundaries() {
    let escapes: &[&[u8]] = &[
        b"\\n",
        b"\\\"",
        b"\\\\",
        // A `]` after `\\` is flagged by a borrow in the word mask: only the lowest flag of a
        // word is exact, so the scan must look again after each escape.
        b"\\\\]",
        b"\\\\\\\\]]",
        b"\\u00e9",
        b"\\u00g9",
        b"\\q",
        b"\\",
    ];
    let mut b = Vec::with_capacity(128);
    for e in escapes {
        for offset in 0..72 {
            for tail in [&b"\""[..], b"abc\"", b"", b"\\\"\"", b"\xc3\xa9\""] {
                b.clear();
                b.push(b'"');
                b.extend(std::iter::repeat_n(b'a', offset));
                b.extend_from_slice(e);
                b.extend_from_slice(tail);
                for end in 1..=b.len() {
                    let _ = check(&b[..end], 0);
                }
            }
        }
    }
}

#[test]
fn the_byte_reported_is_the_first_bad_one_whatever_follows_it() {
    // A control byte, a bad escape and an invalid sequence in one string, in every order: the
    // first one met is the error, at its own offset.
    let bad: [&[u8]; 3] = [b"\x01", b"\\x", b"\xed\xa0\x80"];
    for order in [
        [0, 1, 2],
        [0, 2, 1],
        [1, 0, 2],
        [1, 2, 0],
        [2, 0, 1],
        [2, 1, 0],
    ] {
        for gap in 0..20 {
            let mut b = b"\"".to_vec();
            for k in order {
                b.extend(std::iter::repeat_n(b'z', gap));
                b.extend_from_slice(bad[k]);
            }
            b.push(b'"');
            let got = check(&b, 0);
            let first = 1 + gap;
            let want = match order[0] {
                0 => syntax(first, "unescaped control character in string"),
                1 => syntax(first, "invalid escape in string"),
                _ => BodyError::InvalidUtf8 { offset: first },
            };
            assert_eq!(got, Err(want));
        }
    }
}

#[test]
fn long_strings_of_each_kind_agree() {
    let mut rng = SplitMix64::new(7);
    for unit in [
        &b"plain ascii text "[..],
        "日本語のテキスト".as_bytes(),
        "café ".as_bytes(),
        b"line\\n",
        b"\\\"q\\\" ",
    ] {
        for len in [0, 1, 7, 8, 9, 31, 32, 33, 40, 41, 1000, 4096] {
            let mut b = b"\"".to_vec();
            while b.len() < len {
                b.extend_from_slice(unit);
            }
            b.push(b'"');
            let end = b.len();
            assert_eq!(check(&b, 0).map(|r| r.0), Ok(end));
            // One random byte replaced anywhere.
            for _ in 0..50 {
                let mut c = b.clone();
                let at = 1 + (rng.next_u64() as usize) % (c.len() - 1);
                c[at] = rng.next_u64() as u8;
                let _ = check(&c, 0);
            }
        }
    }
}
