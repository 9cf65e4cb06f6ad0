//! The circuit breaker's shared-data blob and state machine, on any bytes.
//!
//! Input: 114 bytes for `TargetState::decode` (a blob another worker wrote, or garbage),
//! then a breaker config and a sequence of operations with timestamps that may jump forwards
//! and backwards (clocks of different workers).
//!
//! Checked: never panics (overflow checks on); `decode(b) == Some(s)` implies
//! `encode(s) == b`; after every operation the state round-trips through the blob, and the
//! phase, availability and `retry_after_s` agree with each other.
#![no_main]

use ai_gateway_filter::breaker::{
    Admission, BreakerConfig, Outcome, Phase, TargetState, ENCODED_LEN,
};
use fuzz_support::take_u64;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (blob, rest) = data.split_at(data.len().min(ENCODED_LEN));
    let mut state = match TargetState::decode(blob) {
        Some(s) => {
            assert_eq!(s.encode(), blob, "decode accepted a non-canonical blob");
            s
        }
        None => TargetState::default(),
    };
    let (c, rest) = take_u64(rest);
    // The config layer's ranges: threshold (0, 1], window and cooldown 1 s .. 24 h.
    let cfg = BreakerConfig {
        threshold: f64::from((c & 0xFF) as u8 as u32 + 1) / 256.0,
        window_ms: 1_000 * (1 + (c >> 8) % 86_400),
        min_requests: ((c >> 25) % 50) as u32,
        cooldown_ms: 1_000 * (1 + (c >> 32) % 86_400),
    };
    let (start, mut ops) = take_u64(rest);
    let mut now = start;
    let mut probe = false;
    while let Some((&op, tail)) = ops.split_first() {
        let (delta, _) = take_u64(tail.get(..tail.len().min(2)).unwrap_or_default());
        ops = ops.get(3..).unwrap_or_default();
        // Small steps, forwards mostly, sometimes back.
        let step = delta % 5_000;
        now = if op & 0x80 != 0 {
            now.saturating_sub(step)
        } else {
            now.saturating_add(step * 20)
        };
        match op & 3 {
            0 => {
                let a = state.admit(now, &cfg);
                probe = a == Admission::Probe;
            }
            1 => {
                let _ = state.record(now, Outcome::Success, probe && op & 4 != 0, &cfg);
            }
            2 => {
                let _ = state.record(now, Outcome::Failure, probe && op & 4 != 0, &cfg);
            }
            _ => {}
        }
        let phase = state.phase(now, &cfg);
        let available = state.available(now, &cfg);
        let retry = state.retry_after_s(now, &cfg);
        match phase {
            Phase::Closed => assert!(available && retry == 0),
            Phase::Open => assert!(!available && retry >= 1 && retry <= cfg.cooldown_ms / 1000),
            Phase::HalfOpen => assert_eq!(retry, 0),
        }
        let _ = state.window_counts(now, &cfg);
        let blob = state.encode();
        assert_eq!(blob.len(), ENCODED_LEN);
        assert_eq!(TargetState::decode(&blob).as_ref(), Some(&state));
    }
});
