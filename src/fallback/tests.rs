//! Fallback decisions: the handoff and record codecs, the next attempt's model, the
//! Retry-After rule and the body refit (checked against a rewrite of the client's original body).

use super::*;
use crate::rng::SplitMix64;
use crate::testing::test;
use rand_core::RngCore;

fn handoff() -> Handoff {
    Handoff {
        nonce: 0x0123_4567_89ab_cdef,
        endpoint: Endpoint::Chat,
        first: "claude-sonnet-4.5@1.4.0".into(),
        started_ms: 1_700_000_000_000,
        probe: true,
        original_prefix: br#"{"model":"chat","#.to_vec(),
        sent_prefix_len: 27,
        sent_len: 4096,
    }
}

#[test]
fn the_handoff_survives_its_encoding_and_anything_else_decodes_to_none() {
    let h = handoff();
    let bytes = h.encode();
    assert_eq!(Handoff::decode(&bytes), Some(h.clone()));
    // Every truncation, an extra byte, another version: None, never a panic.
    for cut in 0..bytes.len() {
        assert_eq!(Handoff::decode(&bytes[..cut]), None, "cut at {cut}");
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert_eq!(Handoff::decode(&longer), None);
    let mut other = bytes.clone();
    other[0] = 9;
    assert_eq!(Handoff::decode(&other), None);
    let mut bad_endpoint = bytes.clone();
    bad_endpoint[1] = 77;
    assert_eq!(Handoff::decode(&bad_endpoint), None);
    let mut bad_probe = bytes;
    bad_probe[2] = 2;
    assert_eq!(Handoff::decode(&bad_probe), None);
    let mut rng = SplitMix64::new(7);
    for _ in 0..2_000 {
        let len = (rng.next_u64() % 64) as usize;
        let junk: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
        let _ = Handoff::decode(&junk);
    }
}

#[test]
fn the_attempt_record_survives_its_encoding() {
    let r = AttemptRecord {
        attempt: 3,
        index: 2,
        started_ms: 42,
        status: 503,
        connect_failed: true,
        fallbacks: 2,
        last_cause: Some(ErrorType::Http429),
    };
    assert_eq!(AttemptRecord::decode(&r.encode()), Some(r));
    assert_eq!(AttemptRecord::decode(&r.encode()[..18]), None);
    let mut bad = r.encode();
    bad[17] = 99;
    assert_eq!(AttemptRecord::decode(&bad), None);
    let mut bad = r.encode();
    bad[18] = 2;
    assert_eq!(AttemptRecord::decode(&bad), None);
    assert_eq!(
        AttemptRecord::decode(&AttemptRecord::default().encode()),
        Some(AttemptRecord::default())
    );
}

#[test]
fn the_cause_is_the_status_seen_else_a_timeout_when_the_attempt_lasted_its_timeout() {
    assert_eq!(cause_of(429, false, 0, 100), ErrorType::Http429);
    assert_eq!(cause_of(503, true, 0, 100), ErrorType::Http5xx);
    assert_eq!(cause_of(0, false, 100, 100), ErrorType::Timeout);
    assert_eq!(cause_of(0, false, 99, 100), ErrorType::Reset);
    assert_eq!(cause_of(0, true, 5, 100), ErrorType::ConnectFailure);
    assert_eq!(attempt_timeout_ms([500, 5000, 30].into_iter()), 5000);
    assert!(is_failure_status(429) && is_failure_status(500) && is_failure_status(599));
    assert!(!is_failure_status(200) && !is_failure_status(404) && !is_failure_status(600));
}

const T0: u64 = 1_000_000;

fn at(n: u32, prev: Option<AttemptRecord>, now_ms: u64) -> Attempt {
    Attempt {
        n,
        prev,
        first_started_ms: T0,
        now_ms,
    }
}

fn all(_: usize) -> bool {
    true
}

#[test]
fn a_fallback_cause_moves_to_the_next_healthy_model_and_another_cause_stays() {
    // Attempt 1 (model 0) got a 503 and recorded it.
    let rec = AttemptRecord {
        attempt: 1,
        index: 0,
        started_ms: T0,
        status: 503,
        ..AttemptRecord::default()
    };
    let next = next_attempt(at(2, Some(rec), T0 + 5), 3, |_| true, all, 30_000);
    assert_eq!(next.index, 1);
    assert_eq!(next.failed, (0, ErrorType::Http5xx));
    assert_eq!(next.fallback, Some((0, 1, ErrorType::Http5xx)));

    // Model 1's circuit is open: skipped.
    let next = next_attempt(at(2, Some(rec), T0 + 5), 3, |_| true, |i| i != 1, 30_000);
    assert_eq!(next.fallback, Some((0, 2, ErrorType::Http5xx)));

    // 5xx is not in fallback_on: an endpoint retry on the same model.
    let next = next_attempt(
        at(2, Some(rec), T0 + 5),
        3,
        |c| c != ErrorType::Http5xx,
        all,
        30_000,
    );
    assert_eq!(next.index, 0);
    assert_eq!(next.fallback, None);
    assert_eq!(next.failed, (0, ErrorType::Http5xx));

    // The list is used up: the last model again.
    let last = AttemptRecord {
        attempt: 2,
        index: 2,
        started_ms: T0 + 10,
        status: 500,
        ..AttemptRecord::default()
    };
    let next = next_attempt(at(3, Some(last), T0 + 20), 3, |_| true, all, 30_000);
    assert_eq!((next.index, next.fallback), (2, None));
}

#[test]
fn without_a_record_of_the_previous_attempt_it_timed_out_or_was_reset() {
    // Attempt 1 never saw response headers and left no record.
    let timed_out = next_attempt(at(2, None, T0 + 30_000), 2, |_| true, all, 30_000);
    assert_eq!(timed_out.failed, (0, ErrorType::Timeout));
    assert_eq!(timed_out.index, 1);
    let reset = next_attempt(at(2, None, T0 + 50), 2, |_| true, all, 30_000);
    assert_eq!(reset.failed, (0, ErrorType::Reset));
    // Attempt 1 ended without a status because its connection failed (noted when it ended).
    let refused = AttemptRecord {
        attempt: 1,
        started_ms: T0,
        connect_failed: true,
        ..AttemptRecord::default()
    };
    let next = next_attempt(at(2, Some(refused), T0 + 3), 2, |_| true, all, 30_000);
    assert_eq!(next.failed, (0, ErrorType::ConnectFailure));
    // connect_failure not in fallback_on: the same model again (an endpoint retry).
    let next = next_attempt(
        at(2, Some(refused), T0 + 3),
        2,
        |c| c != ErrorType::ConnectFailure,
        all,
        30_000,
    );
    assert_eq!((next.index, next.fallback), (0, None));
    // A record left by an older attempt says nothing about the previous one: attempt 2
    // (model 1) wrote its record at its start and then timed out.
    let started_2 = AttemptRecord {
        attempt: 2,
        index: 1,
        started_ms: T0 + 100,
        status: 0,
        connect_failed: false,
        fallbacks: 1,
        last_cause: Some(ErrorType::Http5xx),
    };
    let next = next_attempt(
        at(3, Some(started_2), T0 + 100 + 30_000),
        3,
        |_| true,
        all,
        30_000,
    );
    assert_eq!(next.failed, (1, ErrorType::Timeout));
    assert_eq!(next.fallback, Some((1, 2, ErrorType::Timeout)));
    let stale = AttemptRecord {
        attempt: 1,
        ..started_2
    };
    let next = next_attempt(at(3, Some(stale), T0 + 10), 3, |_| true, all, 30_000);
    assert_eq!(
        next.failed,
        (0, ErrorType::Reset),
        "a stale record is ignored"
    );
}

#[test]
fn retry_after_is_dropped_only_when_the_next_attempt_goes_to_another_model() {
    assert!(skip_retry_after(1, 3, 0, 2, true, all));
    assert!(
        !skip_retry_after(3, 3, 0, 2, true, all),
        "the last attempt: the client sees it"
    );
    assert!(
        !skip_retry_after(1, 3, 1, 2, true, all),
        "no model left: wait on this one"
    );
    assert!(
        !skip_retry_after(1, 3, 0, 2, false, all),
        "429 is not a fallback cause"
    );
    assert!(
        !skip_retry_after(1, 3, 0, 2, true, |i| i != 1),
        "the fallback's circuit is open"
    );
}

/// The first attempt's body as the downstream filter sends it, and the handoff it leaves.
fn first_attempt(original: &[u8], plan: &Plan, endpoint: Endpoint) -> (Vec<u8>, Handoff) {
    let parsed = body::parse(original).unwrap();
    let rw = body::rewrite_prefix(original, &parsed, endpoint, plan).unwrap();
    let (replaced, prefix) = rw.splice.unwrap_or((0, Vec::new()));
    let mut sent = prefix.clone();
    sent.extend_from_slice(&original[replaced..]);
    let h = Handoff {
        endpoint,
        original_prefix: original[..replaced].to_vec(),
        sent_prefix_len: prefix.len(),
        sent_len: sent.len(),
        ..handoff()
    };
    (sent, h)
}

fn apply(sent: &[u8], r: &Refit) -> Vec<u8> {
    let mut out = r.prefix.clone();
    out.extend_from_slice(&sent[r.drain..]);
    assert_eq!(out.len(), r.len);
    out
}

fn expected(original: &[u8], plan: &Plan, endpoint: Endpoint) -> Vec<u8> {
    let parsed = body::parse(original).unwrap();
    body::rewrite(original, &parsed, endpoint, plan)
        .unwrap()
        .body
        .unwrap_or_else(|| original.to_vec())
}

#[test]
fn the_fallback_body_is_the_rewrite_of_the_clients_body_for_the_other_model() {
    let first = Plan {
        model: Some("claude-sonnet-4.5"),
        max_tokens: Some(100),
        temperature: Some(0.7),
        system_prompt: Some("You are A."),
        include_usage: true,
    };
    let shorter = Plan {
        model: Some("b"),
        max_tokens: Some(4096),
        temperature: None,
        system_prompt: None,
        include_usage: true,
    };
    let longer = Plan {
        model: Some("a-much-longer-fallback-model-name"),
        max_tokens: None,
        temperature: Some(0.1),
        system_prompt: Some("You are the fallback, with a longer prompt than A."),
        include_usage: true,
    };
    let bodies: Vec<Vec<u8>> = vec![
        br#"{"model":"chat","messages":[{"role":"user","content":"hi"}]}"#.to_vec(),
        br#"{"messages":[{"role":"user","content":"hi \u00e9"}],"max_tokens":500,"stream":true,"model":"chat"}"#.to_vec(),
        br#"{"temperature":1,"model":"chat","messages":[],"max_tokens":50}"#.to_vec(),
        br#"{"model":"chat","messages":[{"role":"system","content":"client"}],"stream_options":{"include_usage":false},"stream":true}"#.to_vec(),
        // 1 MiB of content after the model: the refit swaps only a prefix.
        {
            let mut b = br#"{"model":"chat","max_tokens":9999,"messages":[{"role":"user","content":""#.to_vec();
            b.extend(std::iter::repeat_n(b'x', 1 << 20));
            b.extend_from_slice(br#""}]}"#);
            b
        },
    ];
    for original in &bodies {
        for endpoint in [Endpoint::Chat, Endpoint::Completions, Endpoint::Responses] {
            let (sent, h) = first_attempt(original, &first, endpoint);
            for plan in [&shorter, &longer, &first] {
                let r = refit(&sent, &h, plan).unwrap();
                let got = apply(&sent, &r);
                let want = expected(original, plan, endpoint);
                assert_eq!(
                    String::from_utf8_lossy(&got[..got.len().min(300)]),
                    String::from_utf8_lossy(&want[..want.len().min(300)])
                );
                assert_eq!(got, want);
                if original.len() > 1 << 20 {
                    assert!(r.prefix.len() < 1024, "only a prefix is swapped");
                }
            }
        }
    }
}

#[test]
fn answered_by_carries_the_model_attempt_and_cause_and_needs_the_nonce() {
    let v = answered_by(77, "gpt-4.1@1.0.0", 2, Some(ErrorType::Http5xx));
    assert_eq!(
        parse_answered_by(v.as_bytes(), 77),
        Some(("gpt-4.1@1.0.0", 2, Some(ErrorType::Http5xx)))
    );
    assert_eq!(
        parse_answered_by(v.as_bytes(), 78),
        None,
        "a provider can't forge it"
    );
    let none = answered_by(1, "m@1.0.0", 1, None);
    assert_eq!(
        parse_answered_by(none.as_bytes(), 1),
        Some(("m@1.0.0", 1, None))
    );
    for junk in [
        &b""[..],
        b";;;",
        b"zz;m;1;",
        b"0000000000000001;m;x;",
        b"0000000000000001;m;1;oops",
    ] {
        assert_eq!(parse_answered_by(junk, 1), None);
    }
}
