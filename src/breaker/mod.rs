//! Per-target circuit breaker: a small plain state value, driven by explicit timestamps and
//! shared between Envoy workers as a byte blob ([`shared::Breakers`] keeps one per model in a
//! [`crate::store::SharedStore`]).
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
//! `Closed` (probe success), `Reopened` (probe failure) or `None`. OPEN → HALF-OPEN happens by
//! time alone, so no call reports it; a caller that wants to log it can do so when `admit`
//! returns [`Admission::Probe`].
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

mod shared;
pub use shared::{state_key, Breakers, CAS_ATTEMPTS, GENERATION_KEY};

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

/// What a [`TargetState::record`] call changed (OPEN → HALF-OPEN happens by time alone: see
/// the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    None,
    Opened,
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
mod tests;
