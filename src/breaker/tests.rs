//! The circuit state machine (`TargetState`) and its codec.

use super::*;
use crate::testing::{test, RngCore, SplitMix64};

/// threshold 0.5, window 10 s (buckets of 1 s), min 4 requests, cooldown 30 s.
const CFG: BreakerConfig = BreakerConfig {
    threshold: 0.5,
    window_ms: 10_000,
    min_requests: 4,
    cooldown_ms: 30_000,
};
const T0: u64 = 1_700_000_000_000;

fn fail(state: &mut TargetState, now: u64) -> Transition {
    state.record(now, Outcome::Failure, false, &CFG)
}

fn succeed(state: &mut TargetState, now: u64) -> Transition {
    state.record(now, Outcome::Success, false, &CFG)
}

/// A circuit opened at `T0` (four failures at `T0`).
fn opened_at_t0() -> TargetState {
    let mut state = TargetState::default();
    for _ in 0..3 {
        assert_eq!(fail(&mut state, T0), Transition::None);
    }
    assert_eq!(fail(&mut state, T0), Transition::Opened);
    state
}

/// A circuit opened at `T0` whose probe was admitted at `T0 + cooldown`.
fn probing() -> (TargetState, u64) {
    let mut state = opened_at_t0();
    let at = T0 + CFG.cooldown_ms;
    assert_eq!(state.admit(at, &CFG), Admission::Probe);
    (state, at)
}

/// The test prelude's PRNG ([`SplitMix64`]), drawing the `u64` times and sizes these tests use.
struct Rng(SplitMix64);
impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(SplitMix64::new(seed))
    }
    fn next(&mut self) -> u64 {
        self.0.next_u64()
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[test]
fn circuit_opens_exactly_when_min_requests_and_threshold_are_reached_and_not_one_outcome_earlier() {
    let mut state = TargetState::default();
    assert_eq!(succeed(&mut state, T0), Transition::None);
    assert_eq!(fail(&mut state, T0 + 1), Transition::None);
    assert_eq!(succeed(&mut state, T0 + 2), Transition::None);
    // 1 success + 2 failures = 3 outcomes, 2/3 ≥ 0.5 but below min_requests: still closed.
    assert_eq!(state.phase(T0 + 2, &CFG), Phase::Closed);
    // 4th outcome: 2 failures / 4 = 0.5 = threshold → opens on this very outcome.
    assert_eq!(fail(&mut state, T0 + 3), Transition::Opened);
    assert_eq!(state.phase(T0 + 3, &CFG), Phase::Open);
    assert!(!state.available(T0 + 3, &CFG));
    assert_eq!(state.admit(T0 + 3, &CFG), Admission::Rejected);
}

#[test]
fn circuit_stays_closed_when_the_ratio_is_just_below_threshold() {
    let mut state = TargetState::default();
    for i in 0..3 {
        assert_eq!(succeed(&mut state, T0 + i), Transition::None);
    }
    for i in 0..2 {
        assert_eq!(fail(&mut state, T0 + 10 + i), Transition::None);
    }
    // 2/5 < 0.5.
    assert_eq!(state.phase(T0 + 20, &CFG), Phase::Closed);
    assert_eq!(state.window_counts(T0 + 20, &CFG), (3, 2));
    // 3/6 = 0.5 → opens.
    assert_eq!(fail(&mut state, T0 + 20), Transition::Opened);
}

#[test]
fn a_success_completing_min_requests_opens_when_the_ratio_is_still_at_threshold() {
    let cfg = BreakerConfig {
        min_requests: 5,
        ..CFG
    };
    let mut state = TargetState::default();
    for _ in 0..4 {
        assert_eq!(
            state.record(T0, Outcome::Failure, false, &cfg),
            Transition::None
        );
    }
    assert_eq!(
        state.record(T0, Outcome::Success, false, &cfg),
        Transition::Opened
    );
}

#[test]
fn circuit_does_not_open_below_min_requests_even_at_full_failure() {
    let cfg = BreakerConfig {
        threshold: 1.0,
        min_requests: 20,
        ..CFG
    };
    let mut state = TargetState::default();
    for i in 0..19 {
        assert_eq!(
            state.record(T0 + i, Outcome::Failure, false, &cfg),
            Transition::None
        );
        assert_eq!(state.phase(T0 + i, &cfg), Phase::Closed);
    }
    assert_eq!(state.window_counts(T0 + 19, &cfg), (0, 19));
    assert_eq!(
        state.record(T0 + 19, Outcome::Failure, false, &cfg),
        Transition::Opened
    );
}

#[test]
fn a_window_of_only_successes_never_opens_even_with_a_zero_threshold() {
    let cfg = BreakerConfig {
        threshold: 0.0,
        min_requests: 0,
        ..CFG
    };
    let mut state = TargetState::default();
    for i in 0..100 {
        assert_eq!(
            state.record(T0 + i, Outcome::Success, false, &cfg),
            Transition::None
        );
    }
    assert_eq!(
        state.record(T0 + 100, Outcome::Failure, false, &cfg),
        Transition::Opened
    );
}

#[test]
fn a_nan_or_above_one_threshold_never_opens() {
    for threshold in [f64::NAN, 1.5] {
        let cfg = BreakerConfig { threshold, ..CFG };
        let mut state = TargetState::default();
        for i in 0..50 {
            assert_eq!(
                state.record(T0 + i, Outcome::Failure, false, &cfg),
                Transition::None
            );
        }
    }
}

#[test]
fn window_forgets_outcomes_once_they_are_older_than_the_window() {
    // T0 is a multiple of the 1 s bucket, so failures at T0 count for exactly window_ms.
    assert_eq!(T0 % 1_000, 0);
    let mut state = TargetState::default();
    for _ in 0..3 {
        fail(&mut state, T0);
    }
    assert_eq!(state.window_counts(T0 + CFG.window_ms - 1, &CFG), (0, 3));
    assert_eq!(state.window_counts(T0 + CFG.window_ms, &CFG), (0, 0));
    // The 4th failure a full window later finds an empty window: 1 outcome, no opening.
    assert_eq!(fail(&mut state, T0 + CFG.window_ms), Transition::None);
    assert_eq!(state.window_counts(T0 + CFG.window_ms, &CFG), (0, 1));
    // One ms earlier the old failures still counted and the circuit would have opened.
    let mut earlier = TargetState::default();
    for _ in 0..3 {
        fail(&mut earlier, T0);
    }
    assert_eq!(
        fail(&mut earlier, T0 + CFG.window_ms - 1),
        Transition::Opened
    );
}

#[test]
fn window_granularity_is_one_tenth_of_the_window() {
    let mut state = TargetState::default();
    // Recorded at the last ms of its bucket: forgotten 9 buckets + 1 ms later.
    fail(&mut state, T0 + 999);
    assert_eq!(state.window_counts(T0 + 9_999, &CFG), (0, 1));
    assert_eq!(state.window_counts(T0 + 10_000, &CFG), (0, 0));
    // Buckets age one at a time.
    let mut state = TargetState::default();
    for second in 0..10 {
        succeed(&mut state, T0 + second * 1_000 + 500);
    }
    for second in 0..10 {
        assert_eq!(
            state.window_counts(T0 + 10_000 + second * 1_000, &CFG),
            (9 - second, 0)
        );
    }
    // Reusing a bucket resets it; the old count does not leak into the new one.
    succeed(&mut state, T0 + 25_000);
    assert_eq!(state.window_counts(T0 + 25_000, &CFG), (1, 0));
}

#[test]
fn bucket_width_rounds_up_and_is_at_least_one_ms() {
    let cfg = |window_ms| BreakerConfig { window_ms, ..CFG };
    assert_eq!(bucket_width(&cfg(10_000)), 1_000);
    assert_eq!(bucket_width(&cfg(10_001)), 1_001);
    assert_eq!(bucket_width(&cfg(5)), 1);
    assert_eq!(bucket_width(&cfg(0)), 1);
    assert_eq!(bucket_width(&cfg(u64::MAX)), u64::MAX.div_ceil(10));
    // window_ms = 0 still works: a 10 ms window of 1 ms buckets.
    let tiny = cfg(0);
    let mut state = TargetState::default();
    state.record(100, Outcome::Failure, false, &tiny);
    assert_eq!(state.window_counts(109, &tiny), (0, 1));
    assert_eq!(state.window_counts(110, &tiny), (0, 0));
}

#[test]
fn a_change_of_window_length_empties_the_window() {
    let mut state = TargetState::default();
    for _ in 0..3 {
        fail(&mut state, T0);
    }
    let longer = BreakerConfig {
        window_ms: 20_000,
        ..CFG
    };
    assert_eq!(state.window_counts(T0, &longer), (0, 0));
    assert_eq!(
        state.record(T0, Outcome::Failure, false, &longer),
        Transition::None
    );
    assert_eq!(state.window_counts(T0, &longer), (0, 1));
    // A threshold change applies at once to the stored window.
    let strict = BreakerConfig {
        threshold: 0.2,
        min_requests: 2,
        ..longer
    };
    assert_eq!(
        state.record(T0, Outcome::Success, false, &strict),
        Transition::Opened
    );
}

#[test]
fn slightly_late_timestamps_count_in_their_own_bucket() {
    let mut state = TargetState::default();
    fail(&mut state, T0 + 5_000);
    // Another worker's outcome stamped 3 s earlier (within the ring).
    fail(&mut state, T0 + 2_000);
    assert_eq!(state.window_counts(T0 + 5_000, &CFG), (0, 2));
    // It ages with its own bucket: gone 10 buckets after T0 + 2 s, the other stays.
    assert_eq!(state.window_counts(T0 + 12_000, &CFG), (0, 1));
    // Evaluated at a time before the newest bucket, the window is as of the newest bucket.
    assert_eq!(state.window_counts(T0 + 2_000, &CFG), (0, 2));
}

#[test]
fn a_clock_step_back_by_a_window_or_more_restarts_the_window() {
    let mut state = TargetState::default();
    for _ in 0..3 {
        fail(&mut state, T0 + 60_000);
    }
    // Newest bucket is T0 + 60 s; 9 buckets older is still the same window.
    assert_eq!(state.window_counts(T0 + 51_000, &CFG), (0, 3));
    // 10 buckets older: the window reads empty, and the next outcome restarts it there.
    assert_eq!(state.window_counts(T0 + 50_999, &CFG), (0, 0));
    assert_eq!(fail(&mut state, T0 + 50_999), Transition::None);
    assert_eq!(state.window_counts(T0 + 50_999, &CFG), (0, 1));
    assert_eq!(state.window_counts(T0 + 60_000, &CFG), (0, 0));
}

#[test]
fn circuit_half_opens_exactly_after_cooldown() {
    let state = opened_at_t0();
    let end = T0 + CFG.cooldown_ms;
    assert_eq!(state.phase(end - 1, &CFG), Phase::Open);
    assert!(!state.available(end - 1, &CFG));
    assert_eq!(state.phase(end, &CFG), Phase::HalfOpen);
    assert!(state.available(end, &CFG));
    // Time alone does not close it.
    assert_eq!(state.phase(end + 3_600_000, &CFG), Phase::HalfOpen);
    let mut early = state.clone();
    assert_eq!(early.admit(end - 1, &CFG), Admission::Rejected);
    assert_eq!(early, state);
}

#[test]
fn only_one_probe_is_admitted_while_half_open() {
    let (mut state, at) = probing();
    assert_eq!(state.phase(at, &CFG), Phase::HalfOpen);
    assert!(!state.available(at, &CFG));
    for later in [at, at + 1, at + CFG.cooldown_ms - 1] {
        assert_eq!(state.admit(later, &CFG), Admission::Rejected);
        assert!(!state.available(later, &CFG));
    }
}

#[test]
fn probe_success_closes_the_circuit_and_clears_the_window() {
    let (mut state, at) = probing();
    assert_eq!(state.window_counts(T0 + 1, &CFG), (0, 4));
    assert_eq!(
        state.record(at + 200, Outcome::Success, true, &CFG),
        Transition::Closed
    );
    assert_eq!(state, TargetState::default());
    assert_eq!(state.phase(at + 200, &CFG), Phase::Closed);
    assert_eq!(state.window_counts(at + 200, &CFG), (0, 0));
    assert_eq!(state.admit(at + 200, &CFG), Admission::Allowed);
    // It needs a fresh min_requests outcomes to open again.
    for i in 0..3 {
        assert_eq!(fail(&mut state, at + 300 + i), Transition::None);
    }
    assert_eq!(fail(&mut state, at + 400), Transition::Opened);
}

#[test]
fn probe_failure_reopens_the_circuit_for_a_full_cooldown() {
    let (mut state, at) = probing();
    let failed_at = at + 700;
    assert_eq!(
        state.record(failed_at, Outcome::Failure, true, &CFG),
        Transition::Reopened
    );
    assert_eq!(state.phase(failed_at, &CFG), Phase::Open);
    assert_eq!(
        state.phase(failed_at + CFG.cooldown_ms - 1, &CFG),
        Phase::Open
    );
    assert_eq!(
        state.admit(failed_at + CFG.cooldown_ms - 1, &CFG),
        Admission::Rejected
    );
    assert_eq!(
        state.phase(failed_at + CFG.cooldown_ms, &CFG),
        Phase::HalfOpen
    );
    assert_eq!(
        state.admit(failed_at + CFG.cooldown_ms, &CFG),
        Admission::Probe
    );
}

#[test]
fn a_lost_probe_allows_a_new_probe_after_cooldown() {
    let (mut state, at) = probing();
    assert_eq!(
        state.admit(at + CFG.cooldown_ms - 1, &CFG),
        Admission::Rejected
    );
    assert!(!state.available(at + CFG.cooldown_ms - 1, &CFG));
    assert!(state.available(at + CFG.cooldown_ms, &CFG));
    assert_eq!(state.admit(at + CFG.cooldown_ms, &CFG), Admission::Probe);
    // The new probe blocks others for its own cooldown.
    assert_eq!(
        state.admit(at + CFG.cooldown_ms + 1, &CFG),
        Admission::Rejected
    );
    assert_eq!(
        state.admit(at + 2 * CFG.cooldown_ms, &CFG),
        Admission::Probe
    );
}

#[test]
fn a_late_outcome_of_a_lost_probe_still_settles_the_circuit() {
    let (mut state, at) = probing();
    let replacement = at + CFG.cooldown_ms;
    assert_eq!(state.admit(replacement, &CFG), Admission::Probe);
    // The first probe's failure turns up: the first probe outcome recorded wins.
    assert_eq!(
        state.record(replacement + 5, Outcome::Failure, true, &CFG),
        Transition::Reopened
    );
    // The replacement's success then finds no unsettled probe and is ignored.
    let before = state.clone();
    assert_eq!(
        state.record(replacement + 9, Outcome::Success, true, &CFG),
        Transition::None
    );
    assert_eq!(state, before);
}

#[test]
fn a_probe_outcome_after_the_circuit_closed_counts_like_any_outcome() {
    let (mut state, at) = probing();
    assert_eq!(
        state.record(at + 1, Outcome::Success, true, &CFG),
        Transition::Closed
    );
    assert_eq!(
        state.record(at + 2, Outcome::Failure, true, &CFG),
        Transition::None
    );
    assert_eq!(state.window_counts(at + 2, &CFG), (0, 1));
}

#[test]
fn late_outcomes_while_open_or_half_open_are_ignored() {
    let mut state = opened_at_t0();
    let snapshot = state.clone();
    for (now, outcome) in [
        (T0 + 1, Outcome::Success),
        (T0 + 2, Outcome::Failure),
        (T0 + CFG.cooldown_ms - 1, Outcome::Success),
        (T0 + CFG.cooldown_ms, Outcome::Success),
        (T0 + CFG.cooldown_ms + 5, Outcome::Failure),
    ] {
        assert_eq!(state.record(now, outcome, false, &CFG), Transition::None);
        assert_eq!(state, snapshot);
    }
    // Also while a probe is in flight: only the probe's own outcome settles it.
    let (mut state, at) = probing();
    let snapshot = state.clone();
    assert_eq!(
        state.record(at + 1, Outcome::Success, false, &CFG),
        Transition::None
    );
    assert_eq!(
        state.record(at + 2, Outcome::Failure, false, &CFG),
        Transition::None
    );
    assert_eq!(state, snapshot);
    assert_eq!(state.admit(at + 3, &CFG), Admission::Rejected);
}

#[test]
fn a_probe_outcome_without_an_admitted_probe_is_ignored_while_open() {
    let mut state = opened_at_t0();
    let snapshot = state.clone();
    assert_eq!(
        state.record(T0 + CFG.cooldown_ms, Outcome::Success, true, &CFG),
        Transition::None
    );
    assert_eq!(state, snapshot);
}

#[test]
fn a_clock_step_back_cannot_hold_a_circuit_open() {
    let state = opened_at_t0();
    // Skew: a worker slightly behind sees the circuit open, with the full cooldown left.
    assert_eq!(state.phase(T0 - 500, &CFG), Phase::Open);
    assert_eq!(state.retry_after_s(T0 - 500, &CFG), 30);
    assert_eq!(state.phase(T0 - CFG.cooldown_ms, &CFG), Phase::Open);
    // A step back by more than the cooldown counts as the cooldown having elapsed.
    assert_eq!(state.phase(T0 - CFG.cooldown_ms - 1, &CFG), Phase::HalfOpen);
    // Same for a probe in flight: admitted long after the opening, at `at`.
    let mut state = opened_at_t0();
    let at = T0 + 10 * CFG.cooldown_ms;
    assert_eq!(state.admit(at, &CFG), Admission::Probe);
    let skewed = at - CFG.cooldown_ms;
    assert!(!state.available(skewed, &CFG));
    assert_eq!(state.clone().admit(skewed, &CFG), Admission::Rejected);
    let stepped = skewed - 1;
    assert!(state.available(stepped, &CFG));
    assert_eq!(state.admit(stepped, &CFG), Admission::Probe);
}

#[test]
fn a_zero_cooldown_half_opens_at_once_and_never_blocks_on_a_probe() {
    let cfg = BreakerConfig {
        cooldown_ms: 0,
        ..CFG
    };
    let mut state = TargetState::default();
    for _ in 0..4 {
        state.record(T0, Outcome::Failure, false, &cfg);
    }
    assert_eq!(state.phase(T0, &cfg), Phase::HalfOpen);
    assert_eq!(state.retry_after_s(T0, &cfg), 0);
    assert_eq!(state.admit(T0, &cfg), Admission::Probe);
    assert_eq!(state.admit(T0, &cfg), Admission::Probe);
}

#[test]
fn retry_after_counts_whole_seconds_until_half_open() {
    let state = opened_at_t0();
    let end = T0 + CFG.cooldown_ms;
    assert_eq!(state.retry_after_s(T0, &CFG), 30);
    assert_eq!(state.retry_after_s(T0 + 1, &CFG), 30);
    assert_eq!(state.retry_after_s(T0 + 999, &CFG), 30);
    assert_eq!(state.retry_after_s(T0 + 1_000, &CFG), 29);
    assert_eq!(state.retry_after_s(end - 1_000, &CFG), 1);
    assert_eq!(state.retry_after_s(end - 1, &CFG), 1);
    assert_eq!(state.retry_after_s(end, &CFG), 0);
    assert_eq!(TargetState::default().retry_after_s(T0, &CFG), 0);
    let (probing, at) = probing();
    assert_eq!(probing.retry_after_s(at + 1, &CFG), 0);
    let odd = BreakerConfig {
        cooldown_ms: 1_500,
        ..CFG
    };
    assert_eq!(state.retry_after_s(T0, &odd), 2);
    assert_eq!(state.retry_after_s(T0 + 501, &odd), 1);
}

/// States reached by random operations, to feed the codec tests.
fn random_states(seed: u64, count: usize) -> Vec<TargetState> {
    let mut rng = Rng::new(seed);
    let mut states = vec![TargetState::default()];
    let mut state = TargetState::default();
    let mut now = rng.below(u64::MAX / 2);
    while states.len() < count {
        let cfg = BreakerConfig {
            threshold: [0.1, 0.5, 1.0][rng.below(3) as usize],
            window_ms: [0, 10, 1_000, 60_000][rng.below(4) as usize],
            min_requests: rng.below(6) as u32,
            cooldown_ms: [0, 5, 500][rng.below(3) as usize],
        };
        now = match rng.below(10) {
            0 => now.saturating_sub(rng.below(2_000)),
            _ => now + rng.below(300),
        };
        match rng.below(4) {
            0 => {
                state.admit(now, &cfg);
            }
            1 => {
                state.record(now, Outcome::Success, rng.below(3) == 0, &cfg);
            }
            _ => {
                state.record(now, Outcome::Failure, rng.below(3) == 0, &cfg);
            }
        }
        states.push(state.clone());
    }
    states
}

#[test]
fn codec_round_trips_many_states() {
    let mut buffer = Vec::new();
    let states = random_states(7, 5_000);
    let mut phases = [false; 3];
    for state in &states {
        let bytes = state.encode();
        assert_eq!(bytes.len(), ENCODED_LEN);
        assert_eq!(TargetState::decode(&bytes).as_ref(), Some(state));
        state.encode_into(&mut buffer);
        assert_eq!(buffer, bytes);
        phases[usize::from(state.open) + usize::from(state.probe_at.is_some())] = true;
    }
    assert_eq!(
        phases, [true; 3],
        "closed, open and probing states all covered"
    );
    // Extremes.
    let extreme = TargetState {
        open: true,
        opened_at: u64::MAX,
        probe_at: Some(0),
        bucket_ms: u64::MAX,
        head: u64::MAX,
        successes: [u32::MAX; BUCKETS],
        failures: [u32::MAX; BUCKETS],
    };
    assert_eq!(TargetState::decode(&extreme.encode()), Some(extreme));
    assert_eq!(ENCODED_LEN, 114);
}

#[test]
fn encode_into_replaces_the_buffer_contents() {
    let mut buffer = vec![0xAA; 500];
    opened_at_t0().encode_into(&mut buffer);
    assert_eq!(buffer, opened_at_t0().encode());
}

#[test]
fn decode_rejects_every_truncation_and_extension_of_a_valid_blob() {
    let (state, _) = probing();
    let bytes = state.encode();
    for len in 0..bytes.len() {
        assert_eq!(TargetState::decode(&bytes[..len]), None, "len {len}");
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert_eq!(TargetState::decode(&longer), None);
    assert_eq!(TargetState::decode(&bytes), Some(state));
}

#[test]
fn decode_rejects_unknown_versions_and_non_canonical_blobs() {
    let closed = TargetState::default().encode();
    let mut open = opened_at_t0().encode();
    for version in [0u8, 2, 0xFF] {
        let mut bytes = closed.clone();
        bytes[0] = version;
        assert_eq!(TargetState::decode(&bytes), None);
    }
    let mutate = |base: &[u8], at: usize, value: u8| {
        let mut bytes = base.to_vec();
        bytes[at] = value;
        TargetState::decode(&bytes)
    };
    assert_eq!(mutate(&closed, 1, 4), None, "unknown flag bit");
    assert_eq!(mutate(&closed, 1, FLAG_PROBE), None, "probe without open");
    assert_eq!(mutate(&closed, 2, 1), None, "opened-at while closed");
    assert_eq!(mutate(&open, 10, 1), None, "probe time without probe");
    assert_eq!(mutate(&closed, 26, 1), None, "head with empty window");
    assert_eq!(mutate(&closed, 40, 1), None, "counts with empty window");
    open[1] = FLAG_OPEN | FLAG_PROBE;
    assert!(TargetState::decode(&open).is_some());
}

#[test]
fn decode_of_random_bytes_never_panics_and_only_accepts_canonical_blobs() {
    let mut rng = Rng::new(0x9E37_79B9_7F4A_7C15);
    let mut accepted = 0;
    for round in 0..20_000 {
        let len = match round % 4 {
            0 => rng.below(300) as usize,
            _ => ENCODED_LEN,
        };
        let mut bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        if round % 2 == 0 && len > 1 {
            bytes[0] = CODEC_VERSION;
            bytes[1] &= FLAG_OPEN | FLAG_PROBE;
            bytes[1] |= FLAG_OPEN;
        }
        if let Some(state) = TargetState::decode(&bytes) {
            accepted += 1;
            assert_eq!(state.encode(), bytes);
            // Any accepted state is usable without panicking.
            let mut state = state;
            let now = rng.next();
            state.phase(now, &CFG);
            state.available(now, &CFG);
            state.window_counts(now, &CFG);
            state.retry_after_s(now, &CFG);
            state.admit(now, &CFG);
            state.record(now, Outcome::Failure, true, &CFG);
        }
    }
    assert!(accepted > 0);
}

#[test]
fn a_random_blob_with_any_timestamps_is_safe_to_operate_on() {
    for state in random_states(11, 2_000) {
        for now in [0, 1, u64::MAX - 1, u64::MAX] {
            let mut copy = state.clone();
            copy.phase(now, &CFG);
            copy.retry_after_s(now, &CFG);
            copy.window_counts(now, &CFG);
            copy.admit(now, &CFG);
            copy.record(now, Outcome::Success, false, &CFG);
            copy.record(now, Outcome::Failure, true, &CFG);
            assert_eq!(TargetState::decode(&copy.encode()), Some(copy));
        }
    }
}

// ---- Workers sharing the states through the real compare-and-swap loop ([`Breakers`]) ----

mod shared {
    use super::{Rng, CFG, T0};
    use crate::breaker::{state_key, CAS_ATTEMPTS};
    use crate::breaker::{Admission, Breakers, Outcome, Phase, TargetState, Transition};
    use crate::config::{parse, Config, ModelId};
    use crate::store::{MemoryStore, SharedStore};
    use crate::testing::test;
    use std::cell::RefCell;
    use std::rc::Rc;

    /// The one model of [`config`].
    fn m() -> ModelId {
        config().model_id(0).unwrap()
    }

    /// One model whose breaker has the settings of [`CFG`].
    fn config() -> Config {
        let cfg = parse(
            br#"{"models":[{"name":"m","version":"1.0.0","weight":1}],
                 "failover_threshold":0.5,
                 "failover":{"window_s":10,"min_requests":4,"cooldown_s":30}}"#,
        )
        .unwrap();
        assert_eq!(cfg.breaker.window_s * 1000, CFG.window_ms);
        assert_eq!(cfg.breaker.cooldown_s * 1000, CFG.cooldown_ms);
        cfg
    }

    type Worker = Rc<Breakers<Rc<MemoryStore>>>;

    /// Two workers (each with its own cache, as two VMs have) on one store where the model's
    /// state exists (the first write creates it unconditionally: see `load_for_write`).
    fn two_workers() -> (Rc<MemoryStore>, Worker, Worker) {
        let cfg = config();
        let store = MemoryStore::new();
        let closed = TargetState::default().encode();
        store.set(&state_key("m@1.0.0"), &closed, 0).unwrap();
        let a = Rc::new(Breakers::new(&cfg, Rc::clone(&store)));
        let b = Rc::new(Breakers::new(&cfg, Rc::clone(&store)));
        (store, a, b)
    }

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Op {
        Admit(u64),
        Record(u64, Outcome, bool),
    }

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Answer {
        Admission(Admission),
        Transition(Transition),
    }

    /// What the filter does: refresh the cache (the pick does it first), then the operation.
    fn run(worker: &Breakers<Rc<MemoryStore>>, op: Op) -> Answer {
        worker.refresh();
        match op {
            Op::Admit(now) => Answer::Admission(worker.admit(m(), now)),
            Op::Record(now, outcome, probe) => {
                Answer::Transition(worker.record(m(), outcome, probe, now))
            }
        }
    }

    fn apply(state: &mut TargetState, op: Op) -> Answer {
        match op {
            Op::Admit(now) => Answer::Admission(state.admit(now, &CFG)),
            Op::Record(now, outcome, probe) => {
                Answer::Transition(state.record(now, outcome, probe, &CFG))
            }
        }
    }

    fn stored(store: &MemoryStore) -> TargetState {
        let (bytes, _) = store.get(&state_key("m@1.0.0")).unwrap();
        bytes
            .and_then(|b| TargetState::decode(&b))
            .unwrap_or_default()
    }

    /// Replays `log` on one plain state and checks every answer and the stored blob match.
    fn assert_serial(store: &MemoryStore, log: &[(Op, Answer)]) {
        let mut serial = TargetState::default();
        for &(op, answer) in log {
            assert_eq!(apply(&mut serial, op), answer, "{op:?}");
        }
        assert_eq!(stored(store), serial);
    }

    /// Runs `a` on worker A while worker B runs `b` between A's read and A's write (if A
    /// writes at all). Returns the operations in the order they took effect.
    fn race(
        store: &Rc<MemoryStore>,
        a: &Worker,
        b: &Worker,
        op_a: Op,
        op_b: Op,
    ) -> Vec<(Op, Answer)> {
        let done: Rc<RefCell<Option<Answer>>> = Rc::default();
        let (other, slot) = (Rc::clone(b), Rc::clone(&done));
        let mut pending = Some(op_b);
        store.interleave(move || {
            if let Some(op) = pending.take() {
                *slot.borrow_mut() = Some(run(&other, op));
            }
        });
        let answer_a = run(a, op_a);
        store.interleave_off();
        let mut log = Vec::new();
        if let Some(answer_b) = done.borrow_mut().take() {
            log.push((op_b, answer_b));
        }
        log.push((op_a, answer_a));
        log
    }

    #[test]
    fn a_write_that_loses_the_race_is_retried_on_the_state_the_other_worker_wrote() {
        let (store, a, b) = two_workers();
        let log = race(
            &store,
            &a,
            &b,
            Op::Record(T0, Outcome::Failure, false),
            Op::Record(T0, Outcome::Success, false),
        );
        assert_eq!(log.len(), 2, "B wrote between A's read and A's write");
        assert_serial(&store, &log);
        assert_eq!(a.window_counts(m(), T0), (1, 1), "neither outcome was lost");
    }

    #[test]
    fn racing_workers_end_as_if_their_operations_were_serial_and_hand_out_one_probe() {
        use Outcome::{Failure, Success};
        let (store, a, b) = two_workers();
        let mut log = Vec::new();
        let rounds = [
            (
                Op::Record(T0, Failure, false),
                Op::Record(T0 + 1, Success, false),
            ),
            (
                Op::Record(T0 + 2, Failure, false),
                Op::Record(T0 + 2, Failure, false),
            ),
            // Opens on whichever failure commits second (4 outcomes, 3 failures).
            (
                Op::Record(T0 + 3, Failure, false),
                Op::Record(T0 + 4, Success, false),
            ),
            // Both pick the target as it half-opens: exactly one gets the probe.
            (
                Op::Admit(T0 + 3 + CFG.cooldown_ms),
                Op::Admit(T0 + 4 + CFG.cooldown_ms),
            ),
        ];
        for (op_a, op_b) in rounds {
            let round = race(&store, &a, &b, op_a, op_b);
            assert_eq!(round.len(), 2, "every round's operations raced: {round:?}");
            log.extend(round);
        }
        assert_serial(&store, &log);
        let answers: Vec<Answer> = log.iter().map(|&(_, answer)| answer).collect();
        let probes = answers
            .iter()
            .filter(|&&answer| answer == Answer::Admission(Admission::Probe))
            .count();
        assert_eq!(probes, 1);
        assert!(answers.contains(&Answer::Admission(Admission::Rejected)));
        assert!(answers.contains(&Answer::Transition(Transition::Opened)));
        let state = stored(&store);
        assert_eq!(state.phase(T0 + 5 + CFG.cooldown_ms, &CFG), Phase::HalfOpen);
        for worker in [&a, &b] {
            worker.refresh();
            assert!(!worker.available(m(), T0 + 5 + CFG.cooldown_ms));
        }
    }

    #[test]
    fn randomly_racing_workers_match_a_serial_replay() {
        let mut rng = Rng::new(42);
        for _ in 0..50 {
            let (store, a, b) = two_workers();
            let mut log = Vec::new();
            let mut now = T0;
            let mut raced = 0;
            for _ in 0..200 {
                now += rng.below(400);
                let mut op = || match rng.below(3) {
                    0 => Op::Admit(now),
                    1 => Op::Record(now, Outcome::Success, rng.below(4) == 0),
                    _ => Op::Record(now, Outcome::Failure, rng.below(4) == 0),
                };
                let (op_a, op_b) = (op(), op());
                let (first, second) = if rng.below(2) == 0 {
                    (&a, &b)
                } else {
                    (&b, &a)
                };
                if rng.below(2) == 0 {
                    let round = race(&store, first, second, op_a, op_b);
                    raced += usize::from(round.len() == 2);
                    log.extend(round);
                } else {
                    log.push((op_a, run(first, op_a)));
                }
            }
            assert!(raced > 0);
            assert_serial(&store, &log);
        }
    }

    #[test]
    fn an_outcome_is_dropped_after_every_compare_and_swap_attempt_lost_the_race() {
        let (store, a, b) = two_workers();
        let other = Rc::clone(&b);
        store.interleave(move || {
            other.record(m(), Outcome::Success, false, T0);
        });
        assert_eq!(a.record(m(), Outcome::Failure, false, T0), Transition::None);
        store.interleave_off();
        let attempts = u64::try_from(CAS_ATTEMPTS).unwrap();
        assert_eq!(
            a.window_counts(m(), T0),
            (attempts, 0),
            "only B's writes landed"
        );
    }

    #[test]
    fn a_transition_reaches_the_other_workers_cache_at_its_next_refresh() {
        let (_store, a, b) = two_workers();
        b.refresh();
        for i in 0..4 {
            a.refresh();
            let t = a.record(m(), Outcome::Failure, false, T0 + i);
            assert_eq!(t == Transition::Opened, i == 3);
        }
        assert!(a.is_open(m()));
        // B's cache still has the closed circuit until it refreshes (the pick refreshes first).
        assert!(b.available(m(), T0 + 10));
        b.refresh();
        assert!(b.is_open(m()));
        assert!(!b.available(m(), T0 + 10));
        assert_eq!(b.retry_after_s([m()].into_iter(), T0 + 10), 30);
    }

    #[test]
    fn the_first_write_creates_the_state_so_later_writes_are_compare_and_swaps() {
        let cfg = config();
        let store = MemoryStore::new();
        let a = Breakers::new(&cfg, Rc::clone(&store));
        let key = state_key("m@1.0.0");
        assert_eq!(store.get(&key).unwrap(), (None, 0));
        a.record(m(), Outcome::Failure, false, T0);
        let (bytes, version) = store.get(&key).unwrap();
        assert_ne!(version, 0);
        assert_eq!(store.writes(), 2, "created, then compare-and-swapped");
        let state = TargetState::decode(&bytes.unwrap()).unwrap();
        assert_eq!(state.window_counts(T0, &CFG), (0, 1));
    }

    #[test]
    fn a_store_that_fails_loses_the_outcome_but_never_panics() {
        struct Broken;
        impl SharedStore for Broken {
            fn get(&self, _: &str) -> Result<(Option<Vec<u8>>, u32), crate::store::StoreError> {
                Err(crate::store::StoreError::Failed(2))
            }
            fn set(&self, _: &str, _: &[u8], _: u32) -> Result<(), crate::store::StoreError> {
                Err(crate::store::StoreError::Failed(2))
            }
        }
        let breakers = Breakers::new(&config(), Broken);
        breakers.refresh();
        assert!(breakers.available(m(), T0));
        assert_eq!(breakers.admit(m(), T0), Admission::Allowed);
        assert_eq!(
            breakers.record(m(), Outcome::Failure, false, T0),
            Transition::None
        );
        assert!(!breakers.is_open(m()));
    }
}
