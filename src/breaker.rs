//! Per-target circuit breaker: a small plain state value, driven by explicit timestamps and
//! shared between Envoy workers as a byte blob.
//!
//! Pure: no host calls, no I/O, no clock. Every function takes `now_ms`, milliseconds on the clock
//! all workers share; the same state, inputs and config always give the same result. The config
//! ([`BreakerConfig`]) is passed to every call and never stored in the state.
//!
//! # Semantics
//!
//! A target's circuit is in one of three phases:
//!
//! * **CLOSED**: the target takes part in the weighted pick, and every finished request records
//!   one outcome, success or failure, in the sliding window. (The filter counts 5xx, 429, resets
//!   and timeouts as failures.)
//! * **OPEN**: the target is left out of the pick ([`TargetState::available`] is false, and
//!   [`TargetState::admit`] rejects).
//! * **HALF-OPEN**: exactly one request, the probe, is let through to test the target.
//!
//! **Opening.** A circuit opens when, at the moment an outcome is recorded while CLOSED, the
//! window (including that outcome) holds ≥ `min_requests` outcomes, at least one of them a
//! failure, and failures / total ≥ `threshold`. Either kind of outcome can complete the
//! condition: a success that brings the count up to `min_requests` opens the circuit if the ratio
//! is still at or above `threshold`. Nothing else opens a circuit; time alone never does. The
//! instant of that outcome starts the cooldown.
//!
//! **Sliding window.** The window is a ring of 10 buckets, each `w = max(1, ⌈window_ms / 10⌉)` ms
//! wide; bucket `k` covers the instants `k·w ..= k·w + w − 1`. Each bucket counts successes and
//! failures (saturating at 2³² − 1). At time `now` the window holds the outcomes recorded in the
//! bucket of `now` and the 9 buckets before it. So an outcome recorded at `t` counts until just
//! before `(⌊t / w⌋ + 10)·w`: it is forgotten between `9·w + 1` and `10·w` ms after it was
//! recorded (with `window_ms` a multiple of 10: between `window_ms − w + 1` and `window_ms`). The
//! granularity is one bucket, a tenth of the window. A bucket is reset when it is reused for a
//! newer time. Every operation is O(1) and the state has a fixed size.
//!
//! The window is not touched while the circuit is OPEN or HALF-OPEN (it just ages). It is cleared
//! whenever the circuit closes.
//!
//! **Cooldown and HALF-OPEN.** The circuit becomes HALF-OPEN by time alone, with no call needed,
//! exactly `cooldown_ms` after it opened: at `opened + cooldown_ms` it is HALF-OPEN, and at
//! `opened + cooldown_ms − 1` it is still OPEN. While HALF-OPEN, the first `admit` returns
//! `Probe` and marks the probe as in flight from that instant. Every other `admit` returns
//! `Rejected` while the probe is in flight, and `available` is false then. Then:
//!
//! * probe success → CLOSED, and the window is cleared (the probe's success is not counted in it);
//! * probe failure → OPEN again for a full `cooldown_ms`, counted from the instant the failure is
//!   recorded;
//! * lost probe (its outcome is never recorded, e.g. the request was cancelled): `cooldown_ms`
//!   after the probe was admitted, it no longer counts as in flight, and the next `admit` takes a
//!   new probe.
//!
//! **Which outcomes count.**
//!
//! * While CLOSED, every outcome counts in the window. That includes an outcome marked `probe`:
//!   it is the late result of a probe whose circuit was already settled by another probe.
//! * While OPEN or HALF-OPEN, outcomes of non-probe requests are ignored. These are requests
//!   admitted before the circuit opened that finish later.
//! * While OPEN or HALF-OPEN, a probe outcome settles the circuit (close or reopen, as above) if
//!   a probe has been admitted and not yet settled. This holds even after that probe was
//!   considered lost, and it does not matter which probe the outcome belongs to: the first probe
//!   outcome recorded wins. Otherwise the probe outcome is ignored. For example, the result of a
//!   lost probe that arrives after its replacement already failed is ignored.
//!
//! **Out-of-order time.** Timestamps from different workers can be slightly out of order.
//!
//! * Window: an outcome whose bucket is older than the newest bucket written, but by fewer than
//!   10 buckets, is counted in its own bucket, and the window is evaluated as of the newest
//!   bucket. If it is 10 or more buckets older (the clock stepped back by about a window or
//!   more), the window is cleared and restarts from that time.
//! * Cooldown and probe timeout: a `now` earlier than the opening (or probe) instant counts as
//!   no time elapsed. If it is more than `cooldown_ms` earlier, it is treated as a clock step back
//!   and the cooldown (or probe timeout) as elapsed, so a stepped-back clock cannot hold a
//!   circuit open.
//!
//! **Configuration changes** apply to the stored state at the next call, except that a change of
//! the bucket width `w` (that is, of `window_ms`) empties the window: it reads as empty, and it is
//! cleared at the next recorded outcome. Degenerate values:
//!
//! * `cooldown_ms = 0`: an opened circuit is HALF-OPEN at once, and a probe never blocks (every
//!   `admit` is a probe).
//! * `min_requests = 0` acts as 1, since a failure is always required.
//! * `threshold` outside `(0, 1]` should be rejected by the config layer. Here, a value > 1 or NaN
//!   never opens, and a value ≤ 0 opens at `min_requests` with at least one failure.
//!
//! [`TargetState::retry_after_s`] is `⌈(opened + cooldown_ms − now) / 1000⌉` s while OPEN (so
//! ≥ 1), and 0 in any other phase, including HALF-OPEN with a probe in flight.
//!
//! [`Transition`] reports what a [`TargetState::record`] call did: `Opened` (CLOSED → OPEN),
//! `Closed` (probe success), `Reopened` (probe failure) or `None`. `HalfOpened` is never returned
//! by `record`, because OPEN → HALF-OPEN happens by time alone. A caller that wants to log it can
//! do so when `admit` returns [`Admission::Probe`].
//!
//! # Sharing between workers
//!
//! Each worker is a separate wasm VM, so the state lives in proxy-wasm shared data as one blob
//! per target. To update it, a worker reads the blob and its CAS token, decodes it
//! ([`TargetState::decode`]; `None` → [`TargetState::default`], a CLOSED circuit with an empty
//! window), applies `admit` or `record`, encodes it ([`TargetState::encode_into`]), and writes it
//! with the token. On a CAS mismatch it retries from the read. Reads for the pick (`available`,
//! `phase`, `retry_after_s`, `window_counts`) need no write.
//!
//! Blob layout, version 1: exactly [`ENCODED_LEN`] = 114 bytes, integers little-endian.
//!
//! | offset | size | field |
//! |-------:|-----:|-------|
//! | 0 | 1 | version = 1 |
//! | 1 | 1 | flags: bit 0 = open, bit 1 = probe in flight; other bits 0 |
//! | 2 | 8 | opened-at ms (0 unless open) |
//! | 10 | 8 | probe-admitted-at ms (0 unless probe flag) |
//! | 18 | 8 | bucket width `w` in ms (0 = window empty) |
//! | 26 | 8 | index of the newest bucket written (`⌊t / w⌋`) |
//! | 34 | 80 | 10 × (successes u32, failures u32), slot = bucket index mod 10 |
//!
//! `decode` returns `None`, and never panics, for anything `encode` does not produce: another
//! version, another length, unknown flag bits, a probe without open, or non-zero fields that must
//! be zero. So for every `b`, `decode(b) == Some(s)` implies `encode(s) == b`.

/// Number of buckets in the sliding-window ring.
const BUCKETS: usize = 10;
/// `BUCKETS` as a bucket-index distance.
const RING: u64 = BUCKETS as u64;
/// Version byte of the blob layout produced by [`TargetState::encode`].
pub const CODEC_VERSION: u8 = 1;
/// Exact size in bytes of an encoded [`TargetState`].
pub const ENCODED_LEN: usize = 2 + 4 * 8 + BUCKETS * 8;

const FLAG_OPEN: u8 = 1;
const FLAG_PROBE: u8 = 2;

/// Circuit-breaker settings of a route. `0 < threshold ≤ 1`; see the module doc for the exact
/// meaning of every field and for degenerate values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BreakerConfig {
    /// Failure ratio (failures / total in the window) at or above which the circuit opens.
    pub threshold: f64,
    /// Length of the sliding window, in ms (10 buckets of `⌈window_ms / 10⌉` ms).
    pub window_ms: u64,
    /// Minimum number of outcomes in the window before the circuit may open.
    pub min_requests: u32,
    /// How long the circuit stays OPEN before it half-opens, and how long a probe may stay in
    /// flight before another is admitted, in ms.
    pub cooldown_ms: u64,
}

/// Phase of a circuit at a given instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Closed,
    Open,
    HalfOpen,
}

/// Answer of [`TargetState::admit`] for a request the pick sent to this target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// CLOSED: send the request.
    Allowed,
    /// HALF-OPEN: send the request as the probe, and record its outcome with `probe = true`.
    Probe,
    /// OPEN, or HALF-OPEN with a probe in flight: pick another target.
    Rejected,
}

/// Result of a finished request, as counted by the breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failure,
}

/// What a [`TargetState::record`] call changed. `HalfOpened` is never returned by `record` (see
/// the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    None,
    Opened,
    HalfOpened,
    Closed,
    Reopened,
}

/// Circuit state of one target. A small plain value (see the module doc for its encoding);
/// `Default` is a CLOSED circuit with an empty window.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TargetState {
    /// OPEN or HALF-OPEN (which one depends on time).
    open: bool,
    /// When the current cooldown started; 0 unless `open`.
    opened_at: u64,
    /// When the unsettled probe was admitted; only when `open`.
    probe_at: Option<u64>,
    /// Bucket width the window was written with; 0 = window empty (then everything below is 0).
    bucket_ms: u64,
    /// Index (`t / bucket_ms`) of the newest bucket written; the ring holds `head - 9 ..= head`.
    head: u64,
    successes: [u32; BUCKETS],
    failures: [u32; BUCKETS],
}

/// Bucket width for a config: `max(1, ⌈window_ms / 10⌉)`.
fn bucket_width(cfg: &BreakerConfig) -> u64 {
    cfg.window_ms.div_ceil(RING).max(1)
}

/// Time elapsed from `since` to `now`. A `now` before `since` by at most `span` counts as 0 elapsed
/// (clock skew between workers); by more than `span`, as a clock step back, and the span as elapsed.
fn elapsed(now: u64, since: u64, span: u64) -> u64 {
    if now >= since {
        now - since
    } else if since - now > span {
        u64::MAX
    } else {
        0
    }
}

impl TargetState {
    /// Whether the circuit is open or half-open (not closed), whatever the time.
    pub fn is_open(&self) -> bool {
        self.open
    }

    /// Phase at `now_ms`. An OPEN circuit becomes HALF-OPEN by time, `cooldown_ms` after it opened.
    pub fn phase(&self, now_ms: u64, cfg: &BreakerConfig) -> Phase {
        if !self.open {
            Phase::Closed
        } else if elapsed(now_ms, self.opened_at, cfg.cooldown_ms) < cfg.cooldown_ms {
            Phase::Open
        } else {
            Phase::HalfOpen
        }
    }

    /// Is the target available for the weighted pick right now (without taking the probe)?
    /// Closed → true; Open → false; HalfOpen → true only when no probe is in flight.
    pub fn available(&self, now_ms: u64, cfg: &BreakerConfig) -> bool {
        match self.phase(now_ms, cfg) {
            Phase::Closed => true,
            Phase::Open => false,
            Phase::HalfOpen => !self.probe_in_flight(now_ms, cfg),
        }
    }

    /// Called when the pick chose this target: Closed → Allowed; HalfOpen with no probe in flight →
    /// Probe (and marks the probe in flight, recording `now_ms`); otherwise Rejected (the caller
    /// re-picks among the others).
    pub fn admit(&mut self, now_ms: u64, cfg: &BreakerConfig) -> Admission {
        match self.phase(now_ms, cfg) {
            Phase::Closed => Admission::Allowed,
            Phase::Open => Admission::Rejected,
            Phase::HalfOpen if self.probe_in_flight(now_ms, cfg) => Admission::Rejected,
            Phase::HalfOpen => {
                self.probe_at = Some(now_ms);
                Admission::Probe
            }
        }
    }

    /// Records an outcome. `probe` = this request was admitted as the probe
    /// ([`Admission::Probe`]). See the module doc for which outcomes count.
    pub fn record(
        &mut self,
        now_ms: u64,
        outcome: Outcome,
        probe: bool,
        cfg: &BreakerConfig,
    ) -> Transition {
        if !self.open {
            self.count(now_ms, outcome, cfg);
            if self.should_open(now_ms, cfg) {
                self.trip(now_ms);
                return Transition::Opened;
            }
            return Transition::None;
        }
        if !probe || self.probe_at.is_none() {
            return Transition::None;
        }
        match outcome {
            Outcome::Success => {
                *self = Self::default();
                Transition::Closed
            }
            Outcome::Failure => {
                self.trip(now_ms);
                Transition::Reopened
            }
        }
    }

    /// Encodes the state into a new [`ENCODED_LEN`]-byte blob.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(ENCODED_LEN);
        self.encode_into(&mut out);
        out
    }

    /// Encodes the state into `out`, replacing its contents (reuses its allocation).
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.clear();
        out.reserve(ENCODED_LEN);
        let mut flags = 0;
        if self.open {
            flags |= FLAG_OPEN;
        }
        if self.probe_at.is_some() {
            flags |= FLAG_PROBE;
        }
        out.push(CODEC_VERSION);
        out.push(flags);
        out.extend_from_slice(&self.opened_at.to_le_bytes());
        out.extend_from_slice(&self.probe_at.unwrap_or(0).to_le_bytes());
        out.extend_from_slice(&self.bucket_ms.to_le_bytes());
        out.extend_from_slice(&self.head.to_le_bytes());
        for (ok, failed) in self.successes.iter().zip(&self.failures) {
            out.extend_from_slice(&ok.to_le_bytes());
            out.extend_from_slice(&failed.to_le_bytes());
        }
    }

    /// Decodes a blob written by [`TargetState::encode`]. `None` for anything else (another
    /// version, truncated or garbage bytes); never panics. The caller then starts fresh from
    /// [`TargetState::default`].
    pub fn decode(bytes: &[u8]) -> Option<TargetState> {
        let (&version, rest) = bytes.split_first()?;
        if version != CODEC_VERSION || bytes.len() != ENCODED_LEN {
            return None;
        }
        let (&flags, mut rest) = rest.split_first()?;
        if flags & !(FLAG_OPEN | FLAG_PROBE) != 0 {
            return None;
        }
        let open = flags & FLAG_OPEN != 0;
        let has_probe = flags & FLAG_PROBE != 0;
        let opened_at = take_u64(&mut rest)?;
        let probe_at = take_u64(&mut rest)?;
        let bucket_ms = take_u64(&mut rest)?;
        let head = take_u64(&mut rest)?;
        let mut successes = [0u32; BUCKETS];
        let mut failures = [0u32; BUCKETS];
        for (ok, failed) in successes.iter_mut().zip(failures.iter_mut()) {
            *ok = take_u32(&mut rest)?;
            *failed = take_u32(&mut rest)?;
        }
        let canonical = rest.is_empty()
            && (open || (opened_at == 0 && !has_probe))
            && (has_probe || probe_at == 0)
            && (bucket_ms != 0
                || (head == 0
                    && successes.iter().all(|&n| n == 0)
                    && failures.iter().all(|&n| n == 0)));
        if !canonical {
            return None;
        }
        Some(TargetState {
            open,
            opened_at,
            probe_at: has_probe.then_some(probe_at),
            bucket_ms,
            head,
            successes,
            failures,
        })
    }

    /// For the gauge/metrics and tests: (successes, failures) currently in the window.
    pub fn window_counts(&self, now_ms: u64, cfg: &BreakerConfig) -> (u64, u64) {
        let w = bucket_width(cfg);
        // `bucket_ms == 0` (empty window) never equals `w >= 1`.
        if self.bucket_ms != w {
            return (0, 0);
        }
        let current = now_ms / w;
        if current.saturating_add(RING) <= self.head {
            // The clock stepped back by the whole ring: the window is treated as cleared.
            return (0, 0);
        }
        let oldest = current.max(self.head).saturating_sub(RING - 1);
        let mut totals = (0u64, 0u64);
        for age in 0..RING {
            let Some(index) = self.head.checked_sub(age) else {
                break;
            };
            if index < oldest {
                break;
            }
            let slot = (index % RING) as usize;
            totals.0 += u64::from(self.successes[slot]);
            totals.1 += u64::from(self.failures[slot]);
        }
        totals
    }

    /// Seconds until the circuit may half-open (for a `retry-after` header when every target is
    /// open): `⌈remaining cooldown / 1000⌉` while OPEN (so ≥ 1); 0 in any other phase.
    pub fn retry_after_s(&self, now_ms: u64, cfg: &BreakerConfig) -> u64 {
        if self.phase(now_ms, cfg) != Phase::Open {
            return 0;
        }
        let gone = elapsed(now_ms, self.opened_at, cfg.cooldown_ms);
        cfg.cooldown_ms.saturating_sub(gone).div_ceil(1000)
    }

    /// A probe was admitted less than `cooldown_ms` ago and is not settled.
    fn probe_in_flight(&self, now_ms: u64, cfg: &BreakerConfig) -> bool {
        self.probe_at
            .is_some_and(|at| elapsed(now_ms, at, cfg.cooldown_ms) < cfg.cooldown_ms)
    }

    /// OPEN from `now_ms` for a full cooldown, no probe. The window is left as it is.
    fn trip(&mut self, now_ms: u64) {
        self.open = true;
        self.opened_at = now_ms;
        self.probe_at = None;
    }

    fn clear_window(&mut self) {
        self.bucket_ms = 0;
        self.head = 0;
        self.successes = [0; BUCKETS];
        self.failures = [0; BUCKETS];
    }

    /// Adds one outcome to the bucket of `now_ms`, first resetting the buckets it reuses.
    fn count(&mut self, now_ms: u64, outcome: Outcome, cfg: &BreakerConfig) {
        let w = bucket_width(cfg);
        let current = now_ms / w;
        if self.bucket_ms != w || current.saturating_add(RING) <= self.head {
            // Empty window, another bucket width, or the clock stepped back by the whole ring.
            self.clear_window();
            self.bucket_ms = w;
            self.head = current;
        } else if current > self.head {
            if current - self.head >= RING {
                self.successes = [0; BUCKETS];
                self.failures = [0; BUCKETS];
            } else {
                for index in self.head + 1..=current {
                    let slot = (index % RING) as usize;
                    self.successes[slot] = 0;
                    self.failures[slot] = 0;
                }
            }
            self.head = current;
        }
        // Here `head - 9 <= current <= head`, so the slot holds the bucket of `current`.
        let slot = (current % RING) as usize;
        let counter = match outcome {
            Outcome::Success => &mut self.successes[slot],
            Outcome::Failure => &mut self.failures[slot],
        };
        *counter = counter.saturating_add(1);
    }

    /// The opening condition of the module doc, evaluated on the window at `now_ms`.
    fn should_open(&self, now_ms: u64, cfg: &BreakerConfig) -> bool {
        let (successes, failures) = self.window_counts(now_ms, cfg);
        let total = successes + failures;
        failures > 0
            && total >= u64::from(cfg.min_requests)
            && failures as f64 / total as f64 >= cfg.threshold
    }
}

fn take_u64(rest: &mut &[u8]) -> Option<u64> {
    let (head, tail) = rest.split_first_chunk::<8>()?;
    *rest = tail;
    Some(u64::from_le_bytes(*head))
}

fn take_u32(rest: &mut &[u8]) -> Option<u32> {
    let (head, tail) = rest.split_first_chunk::<4>()?;
    *rest = tail;
    Some(u32::from_le_bytes(*head))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::test;

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

    /// Deterministic xorshift64* generator for the randomized tests.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    #[test]
    fn circuit_opens_exactly_when_min_requests_and_threshold_are_reached_and_not_one_outcome_earlier(
    ) {
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
        let mut rng = Rng(seed);
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
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
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

    // ---- Two workers sharing one blob through compare-and-swap ----

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

    fn apply(state: &mut TargetState, op: Op) -> Answer {
        match op {
            Op::Admit(now) => Answer::Admission(state.admit(now, &CFG)),
            Op::Record(now, outcome, probe) => {
                Answer::Transition(state.record(now, outcome, probe, &CFG))
            }
        }
    }

    /// proxy-wasm shared data for one key: bytes plus a CAS version bumped on every write.
    #[derive(Default)]
    struct SharedData {
        bytes: Vec<u8>,
        cas: u32,
    }

    /// A worker holding one operation between its read and its compare-and-swap.
    struct Worker {
        op: Option<Op>,
        read: Option<(Vec<u8>, u32)>,
    }

    impl Worker {
        fn read(&mut self, shared: &SharedData) {
            self.read = Some((shared.bytes.clone(), shared.cas));
        }

        /// Decode, apply, encode, CAS. `Some(answer)` when the write won; on a mismatch the
        /// worker re-reads and keeps its operation for the next attempt.
        fn commit(&mut self, shared: &mut SharedData, log: &mut Vec<Op>) -> Option<Answer> {
            let op = self.op?;
            let (bytes, cas) = self.read.take()?;
            let mut state = TargetState::decode(&bytes).unwrap_or_default();
            let answer = apply(&mut state, op);
            if cas != shared.cas {
                self.read(shared);
                return None;
            }
            shared.bytes = state.encode();
            shared.cas += 1;
            log.push(op);
            self.op = None;
            Some(answer)
        }
    }

    /// Replays `log` serially and checks the shared blob and every answer match it.
    fn assert_serial(shared: &SharedData, log: &[Op], answers: &[Answer]) {
        let mut serial = TargetState::default();
        let serial_answers: Vec<Answer> = log.iter().map(|&op| apply(&mut serial, op)).collect();
        assert_eq!(serial_answers, answers);
        assert_eq!(TargetState::decode(&shared.bytes), Some(serial));
    }

    #[test]
    fn two_workers_sharing_a_blob_with_cas_end_as_if_their_operations_were_serial() {
        use Outcome::{Failure, Success};
        let mut shared = SharedData::default();
        let mut log = Vec::new();
        let mut answers = Vec::new();
        let mut conflicts = 0;
        // Each round: both workers read, then commit in the given order; the loser retries.
        let rounds = [
            (
                Op::Record(T0, Failure, false),
                Op::Record(T0 + 1, Success, false),
                true,
            ),
            (
                Op::Record(T0 + 2, Failure, false),
                Op::Record(T0 + 2, Failure, false),
                false,
            ),
            // Opens on whichever failure commits second (4 outcomes, 3 failures).
            (
                Op::Record(T0 + 3, Failure, false),
                Op::Record(T0 + 4, Success, false),
                true,
            ),
            // Both pick the target as it half-opens: exactly one gets the probe.
            (
                Op::Admit(T0 + 3 + CFG.cooldown_ms),
                Op::Admit(T0 + 4 + CFG.cooldown_ms),
                false,
            ),
        ];
        let mut workers = [
            Worker {
                op: None,
                read: None,
            },
            Worker {
                op: None,
                read: None,
            },
        ];
        for (a, b, a_first) in rounds {
            workers[0].op = Some(a);
            workers[1].op = Some(b);
            workers[0].read(&shared);
            workers[1].read(&shared);
            let order = if a_first { [0, 1] } else { [1, 0] };
            for index in order.into_iter().cycle().take(4) {
                match workers[index].commit(&mut shared, &mut log) {
                    Some(answer) => answers.push(answer),
                    None if workers[index].op.is_some() => conflicts += 1,
                    None => {}
                }
            }
            assert!(workers.iter().all(|worker| worker.op.is_none()));
        }
        assert_eq!(
            conflicts, 4,
            "every round's second writer hit a CAS mismatch"
        );
        assert_serial(&shared, &log, &answers);
        let probes = answers
            .iter()
            .filter(|&&answer| answer == Answer::Admission(Admission::Probe))
            .count();
        assert_eq!(probes, 1);
        assert!(answers.contains(&Answer::Admission(Admission::Rejected)));
        assert!(answers.contains(&Answer::Transition(Transition::Opened)));
        let state = TargetState::decode(&shared.bytes).unwrap_or_default();
        assert_eq!(state.phase(T0 + 5 + CFG.cooldown_ms, &CFG), Phase::HalfOpen);
        assert!(!state.available(T0 + 5 + CFG.cooldown_ms, &CFG));
    }

    #[test]
    fn randomly_interleaved_workers_sharing_a_blob_match_a_serial_replay() {
        let mut rng = Rng(42);
        for _ in 0..50 {
            let mut shared = SharedData::default();
            let mut log = Vec::new();
            let mut answers = Vec::new();
            let mut workers = [
                Worker {
                    op: None,
                    read: None,
                },
                Worker {
                    op: None,
                    read: None,
                },
            ];
            let mut now = T0;
            let mut conflicts = 0;
            for _ in 0..400 {
                now += rng.below(400);
                let worker = &mut workers[rng.below(2) as usize];
                if worker.op.is_none() {
                    worker.op = Some(match rng.below(3) {
                        0 => Op::Admit(now),
                        1 => Op::Record(now, Outcome::Success, rng.below(4) == 0),
                        _ => Op::Record(now, Outcome::Failure, rng.below(4) == 0),
                    });
                    worker.read(&shared);
                } else {
                    match worker.commit(&mut shared, &mut log) {
                        Some(answer) => answers.push(answer),
                        None => conflicts += 1,
                    }
                }
            }
            assert!(conflicts > 0);
            assert_serial(&shared, &log, &answers);
        }
    }
}
