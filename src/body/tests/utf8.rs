//! UTF-8 validation agrees with `std::str::from_utf8`, offsets included: every boundary case,
//! random text, and non-ASCII bytes outside strings.

use super::*;
use crate::testing::{test, SplitMix64, TestRng};

/// parse() must refuse exactly the bodies std refuses as UTF-8, at the same offset.
fn check_utf8_like_std(body: &[u8]) {
    match std::str::from_utf8(body) {
        Ok(_) => assert!(
            !matches!(parse(body), Err(BodyError::InvalidUtf8 { .. })),
            "{body:x?} is valid UTF-8"
        ),
        Err(e) => assert_eq!(
            parse(body).err(),
            Some(BodyError::InvalidUtf8 {
                offset: e.valid_up_to()
            }),
            "{body:x?}"
        ),
    }
}

#[test]
fn utf8_validation_matches_std_on_every_boundary_case() {
    let others = [
        0x41u8, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc2, 0xe0, 0xed, 0xf0, 0xf4, 0xff,
    ];
    for lead in 0x80..=0xffu8 {
        for &b2 in &others {
            for &b3 in &others {
                for &b4 in &others {
                    let seq = [lead, b2, b3, b4];
                    let mut body = b"{\"a\":\"x".to_vec();
                    body.extend_from_slice(&seq);
                    body.extend_from_slice(b"y\"}");
                    check_utf8_like_std(&body);
                    // In a key, too.
                    let mut body = b"{\"".to_vec();
                    body.extend_from_slice(&seq);
                    body.extend_from_slice(b"\":1}");
                    check_utf8_like_std(&body);
                }
            }
            // Cut short by the end of the body.
            for n in 1..=2 {
                let mut body = b"{\"a\":\"".to_vec();
                body.extend_from_slice(&[lead, b2][..n]);
                check_utf8_like_std(&body);
            }
        }
    }
}

#[test]
fn utf8_validation_matches_std_on_random_text() {
    let pieces: [&[u8]; 14] = [
        b"a",
        b" ",
        "é".as_bytes(),
        "你".as_bytes(),
        "🙂".as_bytes(),
        "\u{10ffff}".as_bytes(),
        "\u{800}".as_bytes(),
        "\u{fffd}".as_bytes(),
        b"\x80",
        b"\xc3",
        b"\xe4\xbd",
        b"\xf0\x9f\x99",
        b"\xed\xa0\x80",
        b"\xff",
    ];
    let mut rng = SplitMix64::new(42);
    for _ in 0..20_000 {
        let mut text = Vec::new();
        for _ in 0..rng.below(12) {
            let p = if rng.chance(90) {
                pieces[rng.below(8)]
            } else {
                pieces[rng.below(pieces.len())]
            };
            text.extend_from_slice(p);
        }
        let mut body = b"{\"k".to_vec();
        body.extend_from_slice(&text);
        body.extend_from_slice(b"\":\"");
        body.extend_from_slice(&text);
        body.extend_from_slice(b"\"}");
        check_utf8_like_std(&body);
        let cut = rng.below(body.len() + 1);
        check_utf8_like_std(&body[..cut]);
        // Outside strings, whatever comes first is reported: a syntax error at a valid
        // character, or invalid UTF-8 at the very place std finds it.
        let mut outside = b"{\"a\":1}".to_vec();
        let at = rng.below(outside.len() + 1);
        outside.splice(at..at, text.iter().copied());
        match (std::str::from_utf8(&outside), parse(&outside)) {
            (Ok(_), Err(BodyError::InvalidUtf8 { .. })) => panic!("{outside:x?} is valid UTF-8"),
            (Err(_), Ok(_)) => panic!("{outside:x?} is not UTF-8"),
            (Err(e), Err(BodyError::InvalidUtf8 { offset })) => {
                assert_eq!(offset, e.valid_up_to(), "{outside:x?}")
            }
            _ => {}
        }
    }
}

#[test]
fn non_ascii_outside_strings_is_a_syntax_error_or_invalid_utf8() {
    assert_eq!(
        parse_err("{é:1}".as_bytes()),
        BodyError::Syntax {
            offset: 1,
            reason: "expected a string key"
        }
    );
    assert_eq!(parse_err(b"{\xff:1}"), BodyError::InvalidUtf8 { offset: 1 });
    assert_eq!(parse_err(b"\xff{}"), BodyError::InvalidUtf8 { offset: 0 });
    assert_eq!(parse_err(b" \xc3"), BodyError::InvalidUtf8 { offset: 1 });
    assert_eq!(
        parse_err(b"{\"a\":\xe4\xbd}"),
        BodyError::InvalidUtf8 { offset: 5 }
    );
    assert_eq!(
        parse_err("{\"a\":你}".as_bytes()),
        BodyError::Syntax {
            offset: 5,
            reason: "unexpected character"
        }
    );
}
