//! Fallback to another model inside one request, without the host (docs/failover.md#fallback,
//! docs/design.md "Failover layers").
//!
//! Envoy does the retrying: the same `.wasm` also runs as an *upstream* HTTP filter on the
//! cluster, once per attempt. The downstream filter routes the first attempt as always and, when
//! the model has a `fallback` list, leaves a [`Handoff`] in the request's filter state. The
//! upstream filter of attempt 1 passes through (it only notes a failing status); the upstream
//! filter of attempt `n ≥ 2` reads the handoff and the previous attempt's [`AttemptRecord`],
//! decides the model of this attempt ([`next_attempt`]) and, when it changes, rebuilds the body
//! from the client's original bytes ([`refit`]).
//!
//! Everything here is pure: the glue reads and writes the filter state and the headers.

use crate::body::{self, Endpoint, Plan};
use crate::metrics::ErrorType;

/// The filter-state key of the handoff (Envoy stores it as `wasm.ai_gateway_plan`).
pub const HANDOFF_PROPERTY: &str = "ai_gateway_plan";
/// The filter-state key that tells the upstream filter, without reading any data, which attempt
/// of a request that may fall back it sees (`wasm.ai_gateway_fallback`): absent, the request has
/// no fallback plan and the upstream filter stays out of it; empty (as the downstream filter
/// leaves it), this is the first attempt, which sets it to [`ATTEMPT_SEEN`]; anything else, a
/// later attempt. Reading a value costs a host call into the VM's allocator (about ten times a
/// plain call); an absent or empty one returns no data, so the first attempt costs no such read.
pub const ATTEMPT_MARK_PROPERTY: &str = "ai_gateway_fallback";
/// The mark's value once the first attempt went out.
pub const ATTEMPT_SEEN: &[u8] = b"1";
/// The filter-state key of the latest attempt's record (`wasm.ai_gateway_attempt`).
pub const ATTEMPT_PROPERTY: &str = "ai_gateway_attempt";
/// The response header an upstream filter sets on the attempt it rewrote, for the downstream
/// filter (which removes it): `<nonce>;<name>@<version>;<attempt>;<cause>`.
pub const ANSWERED_HEADER: &str = "x-ai-gateway-answered-by";
/// The request header Envoy sets on each attempt (virtual host `include_request_attempt_count`).
pub const ATTEMPT_COUNT_HEADER: &str = "x-envoy-attempt-count";

const HANDOFF_VERSION: u8 = 1;
const RECORD_VERSION: u8 = 1;
/// Longest model key (`name@version`) carried: names are at most 128 bytes, versions short.
const MAX_KEY: usize = 512;

/// What the downstream filter hands to the upstream filter of later attempts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handoff {
    /// Random per request: an answered-by header without it was not made by our filter.
    pub nonce: u64,
    pub endpoint: Endpoint,
    /// `name@version` of the first attempt's model.
    pub first: String,
    /// When the first attempt was routed (ms on the workers' shared clock).
    pub started_ms: u64,
    /// The first attempt is its model's half-open probe (a failure reopens the circuit).
    pub probe: bool,
    /// The client's original bytes `[0, n)` that the first attempt's prefix replaced.
    pub original_prefix: Vec<u8>,
    /// The length of the prefix the first attempt sent instead.
    pub sent_prefix_len: usize,
    /// The length of the whole body the first attempt sent (what Envoy replays).
    pub sent_len: usize,
}

fn endpoint_code(e: Endpoint) -> u8 {
    match e {
        Endpoint::Chat => 1,
        Endpoint::Completions => 2,
        Endpoint::Embeddings => 3,
        Endpoint::Responses => 4,
        Endpoint::Other => 0,
    }
}

fn endpoint_of_code(c: u8) -> Option<Endpoint> {
    Some(match c {
        0 => Endpoint::Other,
        1 => Endpoint::Chat,
        2 => Endpoint::Completions,
        3 => Endpoint::Embeddings,
        4 => Endpoint::Responses,
        _ => return None,
    })
}

/// Reads a little-endian integer of `N` bytes and advances.
fn take<const N: usize>(rest: &mut &[u8]) -> Option<[u8; N]> {
    let (head, tail) = rest.split_first_chunk::<N>()?;
    *rest = tail;
    Some(*head)
}

fn take_bytes<'a>(rest: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    if rest.len() < n {
        return None;
    }
    let (head, tail) = rest.split_at(n);
    *rest = tail;
    Some(head)
}

impl Handoff {
    /// Layout v1: version u8, endpoint u8, probe u8, nonce u64, started u64, sent_len u64,
    /// sent_prefix_len u32,
    /// key length u16 + key, original prefix length u32 + bytes (little-endian).
    pub fn encode(&self) -> Vec<u8> {
        let key = &self.first.as_bytes()[..self.first.len().min(MAX_KEY)];
        let mut out = Vec::with_capacity(30 + key.len() + self.original_prefix.len());
        out.push(HANDOFF_VERSION);
        out.push(endpoint_code(self.endpoint));
        out.push(u8::from(self.probe));
        out.extend_from_slice(&self.nonce.to_le_bytes());
        out.extend_from_slice(&self.started_ms.to_le_bytes());
        out.extend_from_slice(&(self.sent_len as u64).to_le_bytes());
        out.extend_from_slice(
            &u32::try_from(self.sent_prefix_len)
                .unwrap_or(u32::MAX)
                .to_le_bytes(),
        );
        out.extend_from_slice(&u16::try_from(key.len()).unwrap_or(0).to_le_bytes());
        out.extend_from_slice(key);
        let n = u32::try_from(self.original_prefix.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&n.to_le_bytes());
        out.extend_from_slice(&self.original_prefix[..n as usize]);
        out
    }

    /// `None` for anything [`Handoff::encode`] does not produce. Never panics.
    pub fn decode(bytes: &[u8]) -> Option<Handoff> {
        let mut rest = bytes;
        let [version] = take::<1>(&mut rest)?;
        if version != HANDOFF_VERSION {
            return None;
        }
        let [endpoint] = take::<1>(&mut rest)?;
        let endpoint = endpoint_of_code(endpoint)?;
        let probe = match take::<1>(&mut rest)? {
            [0] => false,
            [1] => true,
            _ => return None,
        };
        let nonce = u64::from_le_bytes(take::<8>(&mut rest)?);
        let started_ms = u64::from_le_bytes(take::<8>(&mut rest)?);
        let sent_len = usize::try_from(u64::from_le_bytes(take::<8>(&mut rest)?)).ok()?;
        let sent_prefix_len = u32::from_le_bytes(take::<4>(&mut rest)?) as usize;
        let key_len = u16::from_le_bytes(take::<2>(&mut rest)?) as usize;
        let first = std::str::from_utf8(take_bytes(&mut rest, key_len)?).ok()?;
        let n = u32::from_le_bytes(take::<4>(&mut rest)?) as usize;
        let original_prefix = take_bytes(&mut rest, n)?.to_vec();
        if !rest.is_empty() {
            return None;
        }
        Some(Handoff {
            nonce,
            endpoint,
            first: first.to_owned(),
            started_ms,
            probe,
            original_prefix,
            sent_prefix_len,
            sent_len,
        })
    }
}

/// What an attempt's upstream filter leaves for the next attempt (and for the downstream
/// filter's accounting when no attempt answered).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AttemptRecord {
    /// 1-based, as `x-envoy-attempt-count`.
    pub attempt: u32,
    /// Position of the attempt's model in the plan (0 = the first model).
    pub index: u8,
    /// When the attempt started.
    pub started_ms: u64,
    /// The failing status the attempt got (0 = none seen: timeout, reset or connect failure).
    pub status: u16,
    /// The attempt ended without a status because the connection to the provider failed
    /// (Envoy's transport failure reason, read when the attempt ended).
    pub connect_failed: bool,
    /// Fallbacks so far in this request, and the cause of the latest one.
    pub fallbacks: u8,
    pub last_cause: Option<ErrorType>,
}

fn cause_code(c: Option<ErrorType>) -> u8 {
    match c {
        None => 0,
        Some(ErrorType::Http5xx) => 1,
        Some(ErrorType::Http429) => 2,
        Some(ErrorType::Timeout) => 3,
        Some(ErrorType::Reset) => 4,
        Some(ErrorType::ConnectFailure) => 5,
    }
}

fn cause_of_code(c: u8) -> Option<Option<ErrorType>> {
    Some(match c {
        0 => None,
        1 => Some(ErrorType::Http5xx),
        2 => Some(ErrorType::Http429),
        3 => Some(ErrorType::Timeout),
        4 => Some(ErrorType::Reset),
        5 => Some(ErrorType::ConnectFailure),
        _ => return None,
    })
}

impl AttemptRecord {
    /// Layout v1 ([`AttemptRecord::ENCODED`] bytes, little-endian): version u8, attempt u32,
    /// index u8, started u64, status u16, fallbacks u8, last cause u8, connect failed u8.
    pub fn encode(&self) -> [u8; Self::ENCODED] {
        let mut out = [0u8; Self::ENCODED];
        out[0] = RECORD_VERSION;
        out[1..5].copy_from_slice(&self.attempt.to_le_bytes());
        out[5] = self.index;
        out[6..14].copy_from_slice(&self.started_ms.to_le_bytes());
        out[14..16].copy_from_slice(&self.status.to_le_bytes());
        out[16] = self.fallbacks;
        out[17] = cause_code(self.last_cause);
        out[18] = u8::from(self.connect_failed);
        out
    }

    pub const ENCODED: usize = 19;

    pub fn decode(bytes: &[u8]) -> Option<AttemptRecord> {
        let b: &[u8; Self::ENCODED] = bytes.try_into().ok()?;
        if b[0] != RECORD_VERSION {
            return None;
        }
        let mut rest = &b[1..];
        let attempt = u32::from_le_bytes(take::<4>(&mut rest)?);
        let [index] = take::<1>(&mut rest)?;
        let started_ms = u64::from_le_bytes(take::<8>(&mut rest)?);
        let status = u16::from_le_bytes(take::<2>(&mut rest)?);
        let [fallbacks] = take::<1>(&mut rest)?;
        let [cause] = take::<1>(&mut rest)?;
        let connect_failed = match take::<1>(&mut rest)? {
            [0] => false,
            [1] => true,
            _ => return None,
        };
        Some(AttemptRecord {
            attempt,
            index,
            started_ms,
            status,
            connect_failed,
            fallbacks,
            last_cause: cause_of_code(cause)?,
        })
    }
}

/// Why the previous attempt failed. A status it saw decides (429, 5xx); without one, a
/// connection that failed, else the attempt timed out (it lasted at least the per-attempt
/// timeout) or was reset.
pub fn cause_of(status: u16, connect_failed: bool, elapsed_ms: u64, timeout_ms: u64) -> ErrorType {
    match status {
        429 => ErrorType::Http429,
        500..=599 => ErrorType::Http5xx,
        _ if connect_failed => ErrorType::ConnectFailure,
        _ if elapsed_ms >= timeout_ms => ErrorType::Timeout,
        _ => ErrorType::Reset,
    }
}

/// Envoy reads the per-attempt timeout once per request: every attempt of a request that may
/// fall back gets the longest `timeout_ms` of its plan, so that no model is cut before its own
/// timeout (a fallback to a slower model would otherwise never succeed).
pub fn attempt_timeout_ms(timeouts: impl Iterator<Item = u64>) -> u64 {
    timeouts.max().unwrap_or(0)
}

/// Whether a status an attempt got is one Envoy may retry and the breaker counts as a failure.
pub fn is_failure_status(status: u16) -> bool {
    status == 429 || (500..=599).contains(&status)
}

/// The decision for attempt `n ≥ 2`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Next {
    /// Position in the plan of this attempt's model.
    pub index: u8,
    /// The previous attempt: its model's position and why it failed (count it).
    pub failed: (u8, ErrorType),
    /// This attempt moves to another model: (from, to, cause).
    pub fallback: Option<(u8, u8, ErrorType)>,
}

/// Where attempt `n` stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attempt {
    /// This attempt's number (`x-envoy-attempt-count`), ≥ 2.
    pub n: u32,
    /// The latest record in the filter state (`None`: attempt 1 left none, so it saw no
    /// failing status and its model was the plan's first).
    pub prev: Option<AttemptRecord>,
    /// When the first attempt was routed (from the handoff).
    pub first_started_ms: u64,
    pub now_ms: u64,
}

/// Decides attempt `n`'s model (see [`Attempt`]); `plan_len` models in the plan (the first and its fallbacks); `falls_back` says whether a
/// cause moves to the next model (`fallback_on`); `available(i)` whether the circuit of the
/// plan's `i`-th model admits requests; `timeout_ms` the request's per-attempt timeout
/// ([`attempt_timeout_ms`]).
///
/// A cause in `fallback_on` moves to the next model of the list whose circuit is not open;
/// any other cause (Envoy retried it for its own retry policy), or no model left, keeps the
/// same model: an endpoint retry, as without fallback.
pub fn next_attempt(
    at: Attempt,
    plan_len: usize,
    falls_back: impl Fn(ErrorType) -> bool,
    available: impl Fn(usize) -> bool,
    timeout_ms: u64,
) -> Next {
    let prev = at.prev.filter(|r| r.attempt.saturating_add(1) == at.n);
    let (index, started, status, connect_failed) = match prev {
        Some(r) => (r.index, r.started_ms, r.status, r.connect_failed),
        None => (0, at.first_started_ms, 0, false),
    };
    let from = usize::from(index);
    let elapsed = at.now_ms.saturating_sub(started);
    let cause = cause_of(status, connect_failed, elapsed, timeout_ms);
    let to = if falls_back(cause) {
        (from + 1..plan_len.min(usize::from(u8::MAX)))
            .find(|&i| available(i))
            .unwrap_or(from)
    } else {
        from
    };
    let to = u8::try_from(to).unwrap_or(index);
    Next {
        index: to,
        failed: (index, cause),
        fallback: (to != index).then_some((index, to, cause)),
    }
}

/// Whether a `429` answer of the plan's `index`-th model, on attempt `n` of at most
/// `max_attempts`, should lose its `Retry-After` before Envoy's router sees it: when the next
/// attempt goes to another model there is nothing to wait for (Envoy's rate-limited back-off
/// would otherwise wait the header's time before asking a model that never said it was busy).
pub fn skip_retry_after(
    n: u32,
    max_attempts: u32,
    index: usize,
    plan_len: usize,
    falls_back_on_429: bool,
    available: impl Fn(usize) -> bool,
) -> bool {
    falls_back_on_429 && n < max_attempts && (index + 1..plan_len).any(available)
}

/// The body edit of a fallback attempt: drop the first `drain` bytes of the body as the first
/// attempt sent it and put `prefix` in their place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refit {
    pub drain: usize,
    pub prefix: Vec<u8>,
    /// The new body's length (for `content-length`).
    pub len: usize,
}

/// Rebuilds the body for another model from the client's original bytes: the first attempt's
/// body is `sent = sent_prefix ‖ original[k..]` with `k = original_prefix.len()`; the model's
/// [`Plan`] is applied to `original = original_prefix ‖ sent[sent_prefix_len..]` exactly as the
/// downstream filter applies it, and only the changed prefix is swapped.
pub fn refit(sent: &[u8], handoff: &Handoff, plan: &Plan) -> Result<Refit, body::BodyError> {
    let k = handoff.original_prefix.len();
    let tail = sent.get(handoff.sent_prefix_len..).unwrap_or_default();
    let mut original = Vec::with_capacity(k + tail.len());
    original.extend_from_slice(&handoff.original_prefix);
    original.extend_from_slice(tail);
    let parsed = body::parse(&original)?;
    let rewrite = body::rewrite_prefix(&original, &parsed, handoff.endpoint, plan)?;
    let (replaced, mut prefix) = rewrite.splice.unwrap_or((0, Vec::new()));
    // The new body is prefix ‖ original[replaced..]; `sent` shares original[k..] from
    // sent_prefix_len on. Swap whichever prefix of `sent` covers both edits.
    let upto = replaced.max(k);
    prefix.extend_from_slice(original.get(replaced..upto).unwrap_or_default());
    let drain = handoff
        .sent_prefix_len
        .saturating_add(upto - k)
        .min(sent.len());
    let len = sent.len() - drain + prefix.len();
    Ok(Refit { drain, prefix, len })
}

/// The value of [`ANSWERED_HEADER`].
pub fn answered_by(nonce: u64, key: &str, attempt: u32, cause: Option<ErrorType>) -> String {
    let cause = cause.map_or("", ErrorType::label);
    format!("{nonce:016x};{key};{attempt};{cause}")
}

fn error_type_of_label(label: &str) -> Option<ErrorType> {
    [
        ErrorType::Http5xx,
        ErrorType::Http429,
        ErrorType::Timeout,
        ErrorType::Reset,
        ErrorType::ConnectFailure,
    ]
    .into_iter()
    .find(|e| e.label() == label)
}

/// Parses [`ANSWERED_HEADER`]: `(key, attempt, cause)` when the nonce is this request's.
pub fn parse_answered_by(value: &[u8], nonce: u64) -> Option<(&str, u32, Option<ErrorType>)> {
    let text = std::str::from_utf8(value).ok()?;
    let mut parts = text.split(';');
    let got = u64::from_str_radix(parts.next()?, 16).ok()?;
    if got != nonce {
        return None;
    }
    let key = parts.next()?;
    let attempt = parts.next()?.parse().ok()?;
    let cause = match parts.next()? {
        "" => None,
        label => Some(error_type_of_label(label)?),
    };
    if parts.next().is_some() {
        return None;
    }
    Some((key, attempt, cause))
}

#[cfg(test)]
mod tests;
