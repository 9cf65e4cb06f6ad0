//! The vector code of the body scan (`simd.rs`) and the fast string scan built on it, tested
//! differentially: the vector operations against their lane-by-lane definitions, `utf8_valid`
//! against `std::str::from_utf8` (every 1- and 2-byte sequence at every offset of a block, the
//! 3- and 4-byte ones that matter at the vector and block boundaries, random text), the string
//! mask against a byte-by-byte one, and the scan in fast mode against the scalar one and
//! serde_json on generated bodies, at every alignment and cut short anywhere.
//!
//! Natively these run the portable emulation of the vectors; under `make wasm-test` (built
//! with `simd128`, see the first test) the wasm intrinsics that the filter runs.

use super::generated::gen_body;
use super::scanner::random_string;
use crate::body::scan::{scan_string, scan_string_fast, skip_ws, string_fast, Mode};
use crate::body::scan_check::scan;
use crate::body::simd::{utf8_valid, Block, V};
use crate::body::BodyError;
use crate::testing::{test, RngCore, SplitMix64, TestRng};

#[test]
fn wasm_builds_of_the_tests_run_the_simd128_intrinsics() {
    // `.cargo/config.toml` turns simd128 on for every wasm32 target: without it the wasm tests
    // would test the emulation a second time, and the filter would not use the intrinsics.
    assert_eq!(
        cfg!(target_arch = "wasm32"),
        cfg!(target_feature = "simd128")
    );
}

fn lanes(a: [u8; 16], b: [u8; 16], f: impl Fn(u8, u8) -> u8) -> [u8; 16] {
    let mut r = [0u8; 16];
    for k in 0..16 {
        r[k] = f(a[k], b[k]);
    }
    r
}

#[test]
fn every_vector_operation_does_what_its_lanes_say() {
    let mut rng = SplitMix64::new(0x51d_0001);
    // Bytes around the boundaries the operations care about, and any byte.
    let pick = |rng: &mut SplitMix64| match rng.below(3) {
        0 => [
            0x00, 0x01, 0x0F, 0x10, 0x1F, 0x20, 0x22, 0x5C, 0x7F, 0x80, 0x81, 0xBF, 0xC0, 0xFF,
        ][rng.below(14)],
        _ => rng.next_u64() as u8,
    };
    for _ in 0..20_000 {
        let a: [u8; 16] = std::array::from_fn(|_| pick(&mut rng));
        let mut b: [u8; 16] = std::array::from_fn(|_| pick(&mut rng));
        for k in 0..16 {
            if rng.chance(25) {
                b[k] = a[k];
            }
        }
        let (va, vb) = (V::from_array(a), V::load(&b));
        assert_eq!(va.to_array(), a);
        assert_eq!(V::splat(a[0]).to_array(), [a[0]; 16]);
        let eq = lanes(a, b, |x, y| if x == y { 0xFF } else { 0 });
        assert_eq!(va.eq(vb).to_array(), eq, "eq {a:x?} {b:x?}");
        assert_eq!(va.min(vb).to_array(), lanes(a, b, u8::min), "min");
        assert_eq!(
            va.sub_sat(vb).to_array(),
            lanes(a, b, u8::saturating_sub),
            "sub_sat {a:x?} {b:x?}"
        );
        assert_eq!(va.and(vb).to_array(), lanes(a, b, |x, y| x & y));
        assert_eq!(va.or(vb).to_array(), lanes(a, b, |x, y| x | y));
        assert_eq!(va.xor(vb).to_array(), lanes(a, b, |x, y| x ^ y));
        assert_eq!(va.high_nibbles().to_array(), a.map(|x| x >> 4));
        let idx = a.map(|x| x & 0x0F);
        assert_eq!(
            V::from_array(idx).lookup(vb).to_array(),
            idx.map(|i| b[usize::from(i)])
        );
        // `prev<N>` of the vector `b` that follows `a`: the 16 bytes ending N before b's end.
        let joined: Vec<u8> = a.iter().chain(&b).copied().collect();
        let back = |n: usize| -> [u8; 16] { std::array::from_fn(|k| joined[16 - n + k]) };
        assert_eq!(vb.prev1(va).to_array(), back(1));
        assert_eq!(vb.prev2(va).to_array(), back(2));
        assert_eq!(vb.prev3(va).to_array(), back(3));
        let bits = (0..16).fold(0u16, |m, k| m | (u16::from(a[k] >> 7) << k));
        assert_eq!(va.bitmask(), bits);
        assert_eq!(va.any(), a != [0; 16]);
        let one_lane: [u8; 16] =
            std::array::from_fn(|k| if k == a[0] as usize % 16 { b[0] } else { 0 });
        assert_eq!(V::from_array(one_lane).any(), b[0] != 0);
    }
}

/// `utf8_valid` says what std says.
#[track_caller]
fn check_utf8(b: &[u8]) {
    assert_eq!(
        utf8_valid(b),
        std::str::from_utf8(b).is_ok(),
        "utf8_valid on {b:x?}"
    );
}

/// `seq` after `offset` ASCII bytes: at the end of the input, followed by a little ASCII, and
/// (when `long`) followed by a whole block of it (so a block of pure ASCII comes after one
/// that may end inside a sequence).
fn check_utf8_at(buf: &mut Vec<u8>, seq: &[u8], offset: usize, long: bool) {
    buf.clear();
    buf.resize(offset, b'a');
    buf.extend_from_slice(seq);
    check_utf8(buf);
    buf.extend_from_slice(b"bc");
    check_utf8(buf);
    if long {
        buf.extend(std::iter::repeat_n(b'd', 64));
        check_utf8(buf);
    }
}

#[test]
fn utf8_valid_agrees_with_std_on_every_one_and_two_byte_sequence_at_every_offset() {
    let mut buf = Vec::with_capacity(160);
    for offset in 0..=64 {
        for x in 0..=0xFFu8 {
            check_utf8_at(&mut buf, &[x], offset, true);
        }
        // Pairs with an ASCII byte are a 1-byte case after or before ASCII: the pairs of
        // non-ASCII bytes are the ones to try all of.
        for x in 0x80..=0xFFu8 {
            for y in 0x80..=0xFFu8 {
                check_utf8_at(&mut buf, &[x, y], offset, false);
            }
        }
    }
}

#[test]
fn utf8_valid_agrees_with_std_on_three_byte_sequences_across_vector_and_block_boundaries() {
    // Every non-ASCII lead and second byte; as third byte, one of each class the check tells
    // apart (ASCII, each range of continuation bytes, each kind of lead).
    let thirds = [
        0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC2, 0xDF, 0xE0, 0xED, 0xF0,
        0xF4, 0xFF,
    ];
    let mut rng = SplitMix64::new(0x51d_0003);
    let mut buf = Vec::with_capacity(160);
    for x in 0x80..=0xFFu8 {
        for y in 0x80..=0xFFu8 {
            for z in thirds {
                // Straddling the first vector boundary or the first block boundary.
                for offset in [14 + rng.below(2), 62 + rng.below(2)] {
                    check_utf8_at(&mut buf, &[x, y, z], offset, offset >= 62);
                }
            }
        }
    }
}

#[test]
fn utf8_valid_agrees_with_std_on_the_boundary_four_byte_sequences_at_every_offset() {
    let leads = [
        0xC2, 0xE0, 0xED, 0xEF, 0xF0, 0xF1, 0xF3, 0xF4, 0xF5, 0xF7, 0xF8, 0xFF,
    ];
    let seconds = [0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0];
    let rests = [0x7F, 0x80, 0xBF, 0xC0];
    let mut buf = Vec::with_capacity(160);
    for offset in 0..=64 {
        for a in leads {
            for b in seconds {
                for c in rests {
                    for d in rests {
                        check_utf8_at(&mut buf, &[a, b, c, d], offset, true);
                    }
                }
            }
        }
    }
}

#[test]
fn utf8_valid_agrees_with_std_on_random_text_at_every_alignment_and_length() {
    let mut rng = SplitMix64::new(0x51d_0004);
    for _ in 0..3000 {
        let (text, _) = random_string(&mut rng);
        let mut b = vec![b' '; rng.below(65)];
        b.extend_from_slice(&text);
        for end in 0..=b.len() {
            check_utf8(&b[..end]);
        }
    }
    // Long runs of valid text of every width with one byte changed anywhere.
    for unit in [
        "日本語のテキスト",
        "café ",
        "😀 emoji ",
        "plain words ",
        "\u{7ff}\u{800}\u{ffff}",
    ] {
        let text = unit.repeat(300 / unit.len() + 1);
        for _ in 0..300 {
            let mut b = text.as_bytes().to_vec();
            let at = rng.below(b.len());
            b[at] = rng.next_u64() as u8;
            check_utf8(&b);
            check_utf8(&b[..rng.below(b.len() + 1)]);
        }
    }
}

fn naive_string_mask(b: &[u8]) -> u64 {
    b.iter().enumerate().fold(0, |m, (k, &c)| {
        m | (u64::from(c == b'"' || c == b'\\' || c < 0x20) << k)
    })
}

fn naive_non_ascii(b: &[u8]) -> u64 {
    b.iter()
        .enumerate()
        .fold(0, |m, (k, &c)| m | (u64::from(c >= 0x80) << k))
}

#[test]
fn the_string_mask_flags_exactly_quotes_backslashes_and_control_bytes() {
    for pos in 0..64 {
        for c in 0..=0xFFu8 {
            let mut block = [b'a'; 64];
            block[pos] = c;
            assert_eq!(
                Block::new(&block).string_mask(),
                naive_string_mask(&block),
                "{c:#x} at {pos}"
            );
            assert_eq!(
                Block::new(&block).non_ascii(),
                naive_non_ascii(&block),
                "{c:#x} at {pos}"
            );
        }
    }
    let mut rng = SplitMix64::new(0x51d_0005);
    for _ in 0..5000 {
        let block: [u8; 64] = std::array::from_fn(|_| match rng.below(4) {
            0 => b"\"\\\x00\x1f\x20\x21\x5b\x5d\x7f\x80\xa2\xdc\xff"[rng.below(13)],
            _ => rng.next_u64() as u8,
        });
        assert_eq!(Block::new(&block).string_mask(), naive_string_mask(&block));
        assert_eq!(Block::new(&block).non_ascii(), naive_non_ascii(&block));
        let n = rng.below(64);
        assert_eq!(
            Block::padded(&block[..n]).string_mask(),
            naive_string_mask(&block[..n])
        );
        assert_eq!(
            Block::padded(&block[..n]).non_ascii(),
            naive_non_ascii(&block[..n])
        );
    }
}

/// The value at the start of `b` scanned in both modes: the same end, members and error, on
/// any input. Whether `b` is one JSON text by that scan is what serde_json says too. Returns
/// that.
#[track_caller]
fn check_body(b: &[u8]) -> bool {
    let start = skip_ws(b, 0);
    let scalar = scan(b, start, false);
    assert_eq!(
        utf8_valid(b),
        std::str::from_utf8(b).is_ok(),
        "utf8_valid on {:?}",
        String::from_utf8_lossy(b)
    );
    assert_eq!(
        scan(b, start, true),
        scalar,
        "fast vs scalar on {:?}",
        String::from_utf8_lossy(b)
    );
    let ours = start < b.len() && matches!(&scalar, Ok((end, _)) if skip_ws(b, *end) == b.len());
    // Read into `IgnoredAny`, serde_json checks the grammar alone (a lone surrogate escape or a
    // number beyond f64 is grammatical, as for `parse`), and not UTF-8: std does.
    let theirs = std::str::from_utf8(b)
        .is_ok_and(|text| serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok());
    assert_eq!(ours, theirs, "{:?}", String::from_utf8_lossy(b));
    ours
}

/// Pieces of valid string text: words, non-ASCII text of every width, escapes.
const TEXT: [&[u8]; 12] = [
    b"Summarise the following report ",
    b"x",
    b"about ",
    b"\\n",
    b"\\\"latency\\\" ",
    "caf\u{e9} ".as_bytes(),
    "\u{65e5}\u{672c}\u{8a9e} ".as_bytes(),
    "\u{1f600}".as_bytes(),
    b"\\u00e9\\uD83D\\uDE00",
    b"\\\\",
    b"\\/\\b\\f\\r\\t",
    b"throughput. ",
];

/// Raw string text with long runs between stops: [`TEXT`], and now and then something
/// invalid (a bad escape, a control byte, a lone quote).
fn long_text(rng: &mut SplitMix64) -> Vec<u8> {
    let broken: [&[u8]; 4] = [b"\\x", b"\x01", b"\\u12G4", b"\""];
    let mut t = Vec::new();
    let len = rng.below(400);
    while t.len() < len {
        let p = if rng.chance(97) {
            TEXT[rng.below(TEXT.len())]
        } else {
            broken[rng.below(broken.len())]
        };
        t.extend_from_slice(p);
    }
    t
}

#[test]
fn both_modes_agree_with_each_other_and_serde_json_on_generated_bodies_at_every_alignment() {
    let mut rng = SplitMix64::new(0x51d_0006);
    let mut accepted = 0;
    for round in 0..200 {
        let body = if round % 2 == 0 {
            gen_body(&mut rng).into_bytes()
        } else {
            let mut b = br#"{"model":"chat","messages":[{"role":"user","content":""#.to_vec();
            b.extend_from_slice(&long_text(&mut rng));
            b.extend_from_slice(br#""},{"role":"x","content":""#);
            b.extend_from_slice(&long_text(&mut rng));
            b.extend_from_slice(br#""}],"user":"bench"}"#);
            b
        };
        // The value at every offset of a 64-byte block.
        for align in 0..64 {
            let mut b = vec![b' '; align];
            b.extend_from_slice(&body);
            accepted += usize::from(check_body(&b));
        }
        // Cut short anywhere (inside a string, an escape, a character).
        let mut b = vec![b'\n'; rng.below(64)];
        b.extend_from_slice(&body);
        for end in 0..b.len() {
            check_body(&b[..end]);
        }
        // One byte changed.
        for _ in 0..10 {
            let mut c = b.clone();
            let at = rng.below(c.len());
            c[at] = b"\"\\\x00\x1fu{}[],:a\xc3\xa9\xff"[rng.below(15)];
            check_body(&c);
        }
    }
    // Most generated bodies are valid (the long ones now and then hold an invalid piece).
    assert!(accepted > 200 * 64 / 2, "only {accepted} accepted");
}

#[test]
fn both_modes_agree_on_long_strings_with_escapes_across_every_block_boundary() {
    // An escape (or the closing quote, or an error) at every position relative to the 64-byte
    // blocks of the fast scan, after text that makes the blocks start anywhere.
    let stops: [&[u8]; 8] = [
        b"\\n",
        b"\\\\",
        b"\\\"",
        b"\\u00e9",
        b"\\u00g9",
        b"\\q",
        b"\x1f",
        "é日😀".as_bytes(),
    ];
    let mut rng = SplitMix64::new(0x51d_0007);
    for stop in stops {
        for lead in 0..140 {
            let mut b = br#"{"k":""#.to_vec();
            for k in 0..lead {
                b.push(if rng.chance(10) {
                    b'\xc3'
                } else {
                    b'a' + (k % 26) as u8
                });
                if b.last() == Some(&b'\xc3') {
                    b.push(0xA9);
                }
            }
            b.extend_from_slice(stop);
            b.extend_from_slice(b"\\\\tail\"}");
            check_body(&b);
            for end in b.len().saturating_sub(12)..b.len() {
                check_body(&b[..end]);
            }
        }
    }
}

#[test]
fn parse_scans_strings_in_the_fast_mode_exactly_where_the_vectors_are_real() {
    assert_eq!(
        Mode::BEST == Mode::Fast,
        cfg!(all(target_arch = "wasm32", target_feature = "simd128"))
    );
}

/// A string of valid text ([`TEXT`]) of about `len` bytes.
fn valid_text(rng: &mut SplitMix64, len: usize) -> Vec<u8> {
    let mut t = Vec::new();
    while t.len() < len {
        t.extend_from_slice(TEXT[rng.below(TEXT.len())]);
    }
    t
}

#[test]
fn the_fast_scan_answers_valid_strings_itself_wherever_they_end_and_whatever_follows() {
    // The one-pass scan must not send valid text to the scalar scan (it would be right, and
    // slow): whether the string ends in its first block or later, on an escape or not, with
    // ASCII or non-ASCII text after the closing quote, the block cutting a character in two.
    let mut rng = SplitMix64::new(0x51d_0008);
    let after: [&[u8]; 4] = [
        b"}",
        ",\"k\":\"\u{65e5}\u{672c}\u{8a9e}\u{65e5}\"}".as_bytes(),
        b",\"k\":\"x\"}",
        ",\"k\":\"\u{1f600}".as_bytes(),
    ];
    for round in 0..3000 {
        let align = round % 64;
        let mut b = vec![b' '; align];
        let i = b.len();
        b.push(b'"');
        b.extend_from_slice(&{
            let n = rng.below(200);
            valid_text(&mut rng, n)
        });
        b.push(b'"');
        let end = b.len();
        let tail = after[rng.below(after.len())];
        // What follows, then up to 63 spaces: the string's last block ends anywhere in it,
        // inside a character too. (A body that ends inside a character is refused anyway; its
        // last string may well take the scalar scan.)
        b.extend_from_slice(tail);
        b.resize(b.len() + rng.below(64), b' ');
        let want = scan_string(&b, i);
        assert!(matches!(want, Ok((e, _)) if e == end), "{want:?}");
        assert_eq!(
            string_fast(&b, i),
            want.ok(),
            "on {:?}",
            String::from_utf8_lossy(&b)
        );
    }
}

#[test]
fn a_string_that_is_not_valid_utf8_goes_to_the_scalar_scan_and_gets_its_exact_error() {
    let mut rng = SplitMix64::new(0x51d_0009);
    let bad: [&[u8]; 8] = [
        b"\xff",
        b"\xc3",
        b"\xc3(",
        b"\xe6\x97",
        b"\xed\xa0\x80",
        b"\xf0\x8f\xbf\xbf",
        b"\xf4\x90\x80\x80",
        b"\x80",
    ];
    for round in 0..3000 {
        let mut b = vec![b' '; round % 64];
        let i = b.len();
        b.push(b'"');
        b.extend_from_slice(&{
            let n = rng.below(150);
            valid_text(&mut rng, n)
        });
        b.extend_from_slice(bad[rng.below(bad.len())]);
        b.extend_from_slice(&{
            let n = rng.below(80);
            valid_text(&mut rng, n)
        });
        if rng.chance(50) {
            b.extend_from_slice(b"\"}");
        }
        let want = scan_string(&b, i);
        assert!(
            matches!(want, Err(BodyError::InvalidUtf8 { .. })),
            "{want:?}"
        );
        assert_eq!(string_fast(&b, i), None);
        assert_eq!(scan_string_fast(&b, i), want);
    }
}
