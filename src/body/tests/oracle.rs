//! serde_json as an oracle: `parse` accepts exactly the strict JSON serde_json accepts (but for
//! what RFC 8259 allows beyond it), on samples and on randomly mutated bodies.

use super::*;
use crate::testing::{test, SplitMix64, TestRng};

#[test]
fn parse_agrees_with_serde_json_on_validity() {
    let samples: &[&str] = &[
        "{}",
        "{\"a\":1}",
        "{\"a\":[1,2,{\"b\":null}],\"c\":\"\\u00e9\\n\"}",
        "{\"a\":1,}",
        "{\"a\":[1,]}",
        "{\"a\":01}",
        "{\"a\":1.}",
        "{\"a\":.1}",
        "{\"a\":-}",
        "{\"a\":1e}",
        "{\"a\":1e-5}",
        "{\"a\":-0.0E+1}",
        "{\"a\":NaN}",
        "{\"a\":Infinity}",
        "{\"a\":\"\\x\"}",
        "{\"a\":\"\\u00\"}",
        "{\"a\":\"\\ud83d\\ude00\"}",
        "{\"a\":\"\t\"}",
        "{\"a\":\"\u{7f}\"}",
        "{\"a\":tru}",
        "{\"a\":true}",
        "{\"a\":nul}",
        "{\"a\" 1}",
        "{\"a\":1 \"b\":2}",
        "{\"a\":1}}",
        "{\"a\":1} x",
        "{\"a\":1} ",
        "{a:1}",
        "{'a':1}",
        "",
        " ",
        "[]",
        "\"s\"",
        "1",
        "null",
        "{\"a\":[[[[[]]]]]}",
        "{\"a\":{\"b\":{\"c\":{}}}}",
        "{\"\":\"\"}",
        "{\"a\":\"\\/\\b\\f\\n\\r\\t\\\"\\\\\"}",
        "{\"a\":[1 2]}",
        "{\"a\":{\"b\"}}",
        "{\"a\":\"unterminated}",
        "{\"a\":12345678901234567890123}",
        "{\"model\":\"a\",\"model\":\"b\"}",
        "{\"a\":1}\u{0}",
        "\u{feff}{}",
    ];
    for s in samples {
        check_validity_agrees(s.as_bytes());
    }
    check_validity_agrees(b"{\"a\":\"\xff\"}");
    check_validity_agrees(b"{\"a\":\"\xc3\xa9\"}");
}

/// Whether parse() thinks `body` is JSON (it may still refuse it for what it holds).
fn parse_says_json(body: &[u8]) -> bool {
    !matches!(
        parse(body),
        Err(BodyError::Empty
            | BodyError::ByteOrderMark
            | BodyError::InvalidUtf8 { .. }
            | BodyError::Syntax { .. })
    )
}

fn check_validity_agrees(body: &[u8]) {
    let ours = parse_says_json(body);
    let theirs = serde_json::from_slice::<Value>(body).is_ok();
    assert_eq!(
        ours,
        theirs,
        "validity of {:?}: parse says {ours}, serde_json says {theirs}",
        String::from_utf8_lossy(body)
    );
}

/// The only places where parse() accepts what serde_json refuses, on purpose.
#[test]
fn parse_accepts_what_rfc_8259_allows_beyond_serde_json() {
    // Lone surrogates: any \uXXXX is grammatical.
    assert!(serde_json::from_str::<Value>(r#"{"a":"\ud800"}"#).is_err());
    parsed(r#"{"a":"\ud800"}"#);
    // Numbers beyond f64 range.
    assert!(serde_json::from_str::<Value>(r#"{"a":1e400}"#).is_err());
    parsed(r#"{"a":1e400}"#);
    // Nesting deeper than serde_json's recursion limit (128).
    let deep = format!(r#"{{"a":{}{}}}"#, "[".repeat(200), "]".repeat(200));
    assert!(serde_json::from_str::<Value>(&deep).is_err());
    parsed(&deep);
}

#[test]
fn mutated_bodies_never_panic_and_agree_with_serde_json() {
    let seeds = [
        r#"{"model":"gpt-4o","messages":[{"role":"user","content":"h\u00e9 \"q\" 🙂"}],"stream":true,"stream_options":{"include_usage":false},"max_tokens":100,"temperature":0.5}"#,
        r#"{ "a" : [ 1 , -2.5e3 , true , false , null , { "b" : "c" } ] , "d" : { } }"#,
        "{\"x\":[[],[[]],{\"y\":{\"z\":[0]}}],\"w\":\"\\\\\\/\\n\"}",
    ];
    let alphabet = b"{}[]:,\"\\ 0123456789-+.eEtrufalsn\n\tu\x00\x1f\xff\xc3\xa9ab";
    let mut rng = SplitMix64::new(0x9e37_79b9_7f4a_7c15);
    let (mut accepted, mut refused) = (0, 0);
    for _ in 0..20_000 {
        let seed = seeds[rng.below(seeds.len())];
        let mut body = seed.as_bytes().to_vec();
        for _ in 0..1 + rng.below(3) {
            let at = rng.below(body.len() + 1);
            match rng.below(3) {
                0 if at < body.len() => {
                    body.remove(at);
                }
                1 if at < body.len() => body[at] = alphabet[rng.below(alphabet.len())],
                _ => body.insert(at, alphabet[rng.below(alphabet.len())]),
            }
        }
        let ours = parse_says_json(&body);
        match serde_json::from_slice::<Value>(&body) {
            Ok(_) => assert!(ours, "{:?} refused", String::from_utf8_lossy(&body)),
            // The deliberate differences: lone surrogates and numbers beyond f64.
            Err(e)
                if e.to_string().contains("surrogate")
                    || e.to_string().contains("hex escape")
                    || e.to_string().contains("number out of range") => {}
            Err(e) => assert!(
                !ours,
                "{:?} accepted; serde_json: {e}",
                String::from_utf8_lossy(&body)
            ),
        }
        if parse(&body).is_ok() {
            accepted += 1;
        } else {
            refused += 1;
        }
        if let Ok(p) = parse(&body) {
            // Whatever parses must rewrite without panicking and stay valid.
            let plan = Plan {
                model: Some("m"),
                max_tokens: Some(10),
                temperature: Some(0.5),
                system_prompt: Some("s"),
                include_usage: true,
            };
            for endpoint in [Endpoint::Chat, Endpoint::Completions, Endpoint::Responses] {
                if let Ok(out) = rewrite(&body, &p, endpoint, &plan) {
                    if let Some(out) = out.body {
                        serde_json::from_slice::<Value>(&out).unwrap();
                        assert_eq!(parse(&out).unwrap().model(), Some("m"));
                    }
                }
            }
        }
    }
    println!("mutated bodies: {accepted} accepted, {refused} refused");
    assert!(
        accepted > 2000 && refused > 5000,
        "{accepted} accepted, {refused} refused"
    );
}
