//! A fallback attempt's pieces, on any bytes: the handoff and attempt-record codecs, and the
//! body refit.
//!
//! Input: a selector byte, then either bytes for the codecs or a client body.
//!
//! Checked: never panics; `Handoff::decode(b) == Some(h)` implies `h.encode() == b` (and the
//! same for `AttemptRecord`); for a body that parses, the refit of the first attempt's body
//! for another model equals the rewrite of the client's own body for that model — byte for
//! byte, with the length `content-length` will carry (the upstream filter sends exactly what
//! the downstream filter would have sent for that model).
#![no_main]

use ai_gateway_filter::body::{self, Endpoint, Plan};
use ai_gateway_filter::fallback::{refit, AttemptRecord, Handoff};
use libfuzzer_sys::fuzz_target;

const FIRST: Plan = Plan {
    model: Some("claude-sonnet-4.5"),
    max_tokens: Some(100),
    temperature: Some(0.7),
    system_prompt: Some("You are A."),
    include_usage: true,
};

const SECOND: [Plan; 3] = [
    Plan {
        model: Some("b"),
        max_tokens: Some(4096),
        temperature: None,
        system_prompt: None,
        include_usage: true,
    },
    Plan {
        model: Some("a-much-longer-fallback-model-name"),
        max_tokens: None,
        temperature: Some(0.1),
        system_prompt: Some("A longer system prompt than the first model's, with \"quotes\"."),
        include_usage: true,
    },
    Plan {
        model: Some("c"),
        max_tokens: None,
        temperature: None,
        system_prompt: None,
        include_usage: false,
    },
];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    if let Some(h) = Handoff::decode(rest) {
        assert_eq!(h.encode(), rest, "Handoff::decode accepted a non-canonical encoding");
    }
    if let Some(r) = AttemptRecord::decode(rest) {
        assert_eq!(&r.encode()[..], rest, "AttemptRecord::decode accepted a non-canonical encoding");
    }
    let endpoint = [Endpoint::Chat, Endpoint::Completions, Endpoint::Responses, Endpoint::Other]
        [usize::from(selector & 3)];
    let second = &SECOND[usize::from(selector >> 2) % SECOND.len()];
    let Ok(parsed) = body::parse(rest) else {
        return;
    };
    let Ok(first) = body::rewrite_prefix(rest, &parsed, endpoint, &FIRST) else {
        return;
    };
    let (replaced, prefix) = first.splice.unwrap_or((0, Vec::new()));
    let mut sent = prefix.clone();
    sent.extend_from_slice(&rest[replaced..]);
    let handoff = Handoff {
        nonce: 1,
        endpoint,
        first: "claude-sonnet-4.5@1.4.0".into(),
        started_ms: 0,
        probe: false,
        original_prefix: rest[..replaced].to_vec(),
        sent_prefix_len: prefix.len(),
        sent_len: sent.len(),
    };
    let Ok(r) = refit(&sent, &handoff, second) else {
        panic!("the refit refused a body the first rewrite accepted");
    };
    let mut got = r.prefix.clone();
    got.extend_from_slice(&sent[r.drain..]);
    assert_eq!(got.len(), r.len, "content-length differs from the body");
    let want = body::rewrite(rest, &parsed, endpoint, second)
        .map(|w| w.body.unwrap_or_else(|| rest.to_vec()));
    assert_eq!(Ok(got), want.map_err(|_| ()), "the refit differs from the rewrite of the client's body");
});
