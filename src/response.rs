//! The response's decisions, without the host: the headers that tell the client what served
//! it, how the body is observed for usage (never buffered, never paused), and the accounting of
//! a finished request — metrics, cost, the circuit breaker's outcome (docs/design.md,
//! "Request path" and "Metrics and labels").

use crate::body::push_json_str;
use crate::breaker::{Breakers, Transition};
use crate::config::{Config, ModelId};
use crate::fallback;
use crate::header_map::HeaderMap;
use crate::metrics::ErrorType;
use crate::metrics::{ModelLabel, Series, TokenType};
use crate::request::{Served, Verdict};
use crate::routing;
use crate::stats::Stats;
use crate::store::SharedStore;
use crate::usage::{CostAccumulator, Format, Usage, UsageChunkStripper, UsageScanner};
use log::{info, warn};
use std::cell::RefCell;

/// How the response body is observed.
pub enum Observer {
    None,
    Scan(UsageScanner),
    /// The gateway asked for a usage chunk the client didn't: it is read and removed.
    Strip(Box<UsageChunkStripper>),
}

impl Observer {
    pub fn usage(&self) -> Option<Usage> {
        match self {
            Observer::None => None,
            Observer::Scan(s) => s.usage(),
            Observer::Strip(s) => s.usage(),
        }
    }
}

/// What the response-headers phase decided.
pub struct ResponsePlan {
    /// The `:status` the client gets (0 when unreadable).
    pub status: u16,
    pub observer: Observer,
    /// A successful SSE answer to a streaming request: time to first token is recorded at
    /// its first body byte.
    pub awaiting_first_token: bool,
    /// The body will change size (a usage chunk is stripped): let Envoy frame it.
    pub remove_content_length: bool,
    /// A fallback model answered (the upstream filter's answered-by header, this request's
    /// nonce): it gets the client headers, the tokens, the cost and the outcome.
    pub answered: Option<Answered>,
    /// How many attempts the request took (`x-ai-gateway-attempts`).
    pub attempts: u32,
}

/// The model that answered after a fallback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answered {
    pub model: ModelId,
    pub attempt: u32,
    /// Why the request last moved to another model.
    pub cause: Option<ErrorType>,
}

/// Reads the answered-by header of a request that may have fallen back.
fn answered(cfg: &Config, headers: &HeaderMap, served: &Served) -> Option<Answered> {
    let nonce = served.nonce?;
    let value = headers.get(fallback::ANSWERED_HEADER)?;
    let (key, attempt, cause) = fallback::parse_answered_by(value, nonce)?;
    let model = cfg.resolve_reference(key).ok()?;
    Some(Answered {
        model,
        attempt,
        cause,
    })
}

/// The attempts Envoy made: the answered-by header's, else Envoy's own count (virtual host
/// `include_attempt_count_in_response`), else 1.
fn attempts(headers: &HeaderMap, answered: Option<Answered>) -> u32 {
    if let Some(a) = answered {
        return a.attempt;
    }
    headers
        .get(fallback::ATTEMPT_COUNT_HEADER)
        .and_then(|v| std::str::from_utf8(v).ok()?.parse().ok())
        .unwrap_or(1)
}

/// Chooses how to read usage from this response: 2xx and uncompressed only; SSE or JSON by
/// `content-type`. Learns which model answered when the request fell back.
pub fn on_headers(cfg: &Config, headers: &HeaderMap, served: &Served) -> ResponsePlan {
    let raw_status = headers.get(":status").unwrap_or_default();
    let status = std::str::from_utf8(raw_status)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let answered = answered(cfg, headers, served);
    let mut plan = ResponsePlan {
        status,
        observer: Observer::None,
        awaiting_first_token: false,
        remove_content_length: false,
        answered,
        attempts: attempts(headers, answered),
    };
    if !raw_status.starts_with(b"2") {
        return plan;
    }
    if let Some(enc) = headers.get("content-encoding") {
        if !enc.eq_ignore_ascii_case(b"identity") {
            return plan;
        }
    }
    let sse = headers.get("content-type").is_some_and(|ct| {
        ct.windows(17)
            .any(|w| w.eq_ignore_ascii_case(b"text/event-stream"))
    });
    plan.awaiting_first_token = served.stream && sse;
    plan.observer = if sse && served.strip_usage {
        plan.remove_content_length = headers.contains("content-length");
        Observer::Strip(Box::default())
    } else if sse {
        Observer::Scan(UsageScanner::new(Format::Sse))
    } else {
        Observer::Scan(UsageScanner::new(Format::Json))
    };
    plan
}

/// The headers that tell the client what served it: `x-ai-gateway-model` and
/// `x-ai-gateway-version` (when a configured model did: after a fallback, the one that
/// answered) and `x-ai-gateway-route`.
pub fn client_headers<'c>(cfg: &'c Config, served: &Served) -> Vec<(&'static str, &'c str)> {
    let mut out = Vec::with_capacity(3);
    if let ModelLabel::Model(m) = served.model {
        let m = cfg.model(m);
        out.push(("x-ai-gateway-model", m.name.as_str()));
        out.push(("x-ai-gateway-version", m.version_label.as_str()));
    }
    out.push(("x-ai-gateway-route", routing::route_name(cfg, served.route)));
    out
}

/// Per-model remainders of the exact cost arithmetic (see [`CostAccumulator`]).
pub struct Costs {
    by_model: RefCell<Vec<CostAccumulator>>,
}

impl Costs {
    pub fn new(models: usize) -> Self {
        Costs {
            by_model: RefCell::new(vec![CostAccumulator::default(); models]),
        }
    }

    /// Whole micro-dollars to add to the counter for this usage.
    pub fn add(&self, model: ModelId, usage: Usage, price: crate::usage::Price) -> u64 {
        self.by_model
            .borrow_mut()
            .get_mut(model.index())
            .map_or(0, |acc| acc.add(usage, price))
    }
}

/// The filter-state key of the access-log entry (`%FILTER_STATE(wasm.ai_gateway:PLAIN)%`).
pub const ACCESS_LOG_PROPERTY: &str = "ai_gateway";

/// What the gateway decided for a request, as one JSON object for Envoy's access log: route,
/// model, version (of the model that answered), attempts, the cause of the last fallback,
/// tokens and cost (USD, exact decimal).
pub fn access_entry(
    cfg: &Config,
    served: &Served,
    attempts: u32,
    fallback_cause: Option<ErrorType>,
    usage: Option<Usage>,
) -> Vec<u8> {
    // Written by hand, once per request: the same JSON serde_json makes of these fields (a
    // test checks it), at a fifth of the instructions.
    let model = match served.model {
        ModelLabel::Model(m) => Some(cfg.model(m)),
        ModelLabel::Passthrough => None,
    };
    let mut out = Vec::with_capacity(192);
    out.extend_from_slice(b"{\"route\":");
    push_json_str(&mut out, routing::route_name(cfg, served.route));
    out.extend_from_slice(b",\"model\":");
    json_opt_str(&mut out, model.map(|m| m.name.as_str()));
    out.extend_from_slice(b",\"version\":");
    json_opt_str(&mut out, model.map(|m| m.version_label.as_str()));
    out.extend_from_slice(b",\"attempts\":");
    json_u64(&mut out, u64::from(attempts));
    out.extend_from_slice(b",\"fallback_cause\":");
    json_opt_str(
        &mut out,
        fallback_cause.and_then(crate::config::Causes::name),
    );
    out.extend_from_slice(b",\"prompt_tokens\":");
    match usage {
        Some(u) => json_u64(&mut out, u.prompt_tokens),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"completion_tokens\":");
    match usage {
        Some(u) => json_u64(&mut out, u.completion_tokens),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"cost_usd\":");
    match (usage, model.and_then(|m| m.price)) {
        (Some(u), Some(p)) => {
            // µ$ per million tokens × tokens = 10⁻¹² $: exact, as a decimal string.
            let pico = u128::from(u.prompt_tokens) * u128::from(p.input_micros_per_mtok)
                + u128::from(u.completion_tokens) * u128::from(p.output_micros_per_mtok);
            out.push(b'"');
            decimal_pico(&mut out, pico);
            out.push(b'"');
        }
        _ => out.extend_from_slice(b"null"),
    }
    out.push(b'}');
    out
}

/// `pico` × 10⁻¹² as the shortest exact decimal (`"0.000000000001"`, `"12"`, `"0.5"`).
fn decimal_pico(out: &mut Vec<u8>, pico: u128) {
    const UNIT: u128 = 1_000_000_000_000;
    json_u128(out, pico / UNIT);
    // The 12 places of the fraction, then without its trailing zeros.
    let mut frac = [b'0'; 12];
    let mut rest = pico % UNIT;
    for d in frac.iter_mut().rev() {
        *d = b'0' + (rest % 10) as u8;
        rest /= 10;
    }
    let places = frac.iter().rposition(|&d| d != b'0').map_or(0, |i| i + 1);
    if places > 0 {
        out.push(b'.');
        out.extend_from_slice(frac.get(..places).unwrap_or_default());
    }
}

fn json_u64(out: &mut Vec<u8>, n: u64) {
    json_u128(out, u128::from(n));
}

fn json_u128(out: &mut Vec<u8>, mut n: u128) {
    let mut buf = [0u8; 40];
    let mut i = buf.len();
    loop {
        i -= 1;
        if let Some(slot) = buf.get_mut(i) {
            *slot = b'0' + (n % 10) as u8;
        }
        n /= 10;
        if n == 0 || i == 0 {
            break;
        }
    }
    out.extend_from_slice(buf.get(i..).unwrap_or_default());
}

fn json_opt_str(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => push_json_str(out, s),
        None => out.extend_from_slice(b"null"),
    }
}

/// After a request that may have fallen back got no answer naming its model (the last
/// attempt timed out or was reset: Envoy answered itself), the latest attempt's record says
/// which model it was. `None`: the first model's.
pub fn last_attempt_model(
    cfg: &Config,
    served: &Served,
    record: &fallback::AttemptRecord,
) -> Option<ModelId> {
    let ModelLabel::Model(first) = served.model else {
        return None;
    };
    match usize::from(record.index) {
        0 => None,
        i => cfg.model(first).fallback.get(i - 1).copied(),
    }
}

/// A finished request, as the access accounting sees it.
#[derive(Debug, Clone, Copy)]
pub struct Finished<'a> {
    pub served: Served,
    /// The status the client got (0: no response headers).
    pub status: u64,
    /// Envoy's `response.code_details` (empty when not read: see
    /// [`crate::request::needs_details`]).
    pub details: &'a str,
    pub duration_ms: u64,
    pub usage: Option<Usage>,
    pub now_ms: u64,
}

/// Counts a finished request: requests, duration, tokens, cost, the model's error and its
/// circuit breaker's outcome (with the circuit gauge on a transition).
pub fn account<S: SharedStore>(
    cfg: &Config,
    stats: &dyn Stats,
    costs: &Costs,
    breakers: &Breakers<S>,
    done: &Finished,
) {
    let served = done.served;
    let code = u16::try_from(done.status).unwrap_or(0);
    stats.add(Series::Requests(served.route, served.model, code), 1);
    stats.record(
        Series::Duration(served.route, served.model),
        done.duration_ms,
    );

    if let Some(usage) = done.usage {
        stats.add(
            Series::Tokens(served.model, TokenType::Prompt),
            usage.prompt_tokens,
        );
        stats.add(
            Series::Tokens(served.model, TokenType::Completion),
            usage.completion_tokens,
        );
        if let ModelLabel::Model(m) = served.model {
            if let Some(price) = cfg.model(m).price {
                let micros = costs.add(m, usage, price);
                stats.add(Series::Cost(served.route, served.model), micros);
            }
        }
    }

    let ModelLabel::Model(model) = served.model else {
        return;
    };
    let verdict = Verdict::of(done.status, done.details);
    if let Verdict::Failure(e) = verdict {
        stats.add(Series::ModelErrors(served.model, e), 1);
    }
    let Some(outcome) = verdict.outcome() else {
        return;
    };
    let transition = breakers.record(model, outcome, served.probe, done.now_ms);
    let name = cfg.model(model).name.as_str();
    match transition {
        Transition::Opened | Transition::Reopened => {
            warn!("ai-gateway: circuit of {name} is open ({transition:?})");
            stats.record(Series::CircuitOpen(model), 1);
        }
        Transition::Closed => {
            info!("ai-gateway: circuit of {name} closed");
            stats.record(Series::CircuitOpen(model), 0);
        }
        Transition::None => {}
    }
}

#[cfg(test)]
mod tests;
