//! The upstream role: the same `.wasm` as an upstream HTTP filter of the cluster (plugin
//! `root_id: ai_gateway_upstream`), one context per attempt. Every attempt first tests the
//! attempt mark the downstream filter leaves ([`fallback::ATTEMPT_MARK_PROPERTY`]), a lookup that
//! returns no data: a request without it has no fallback plan, and its attempts are left alone
//! (no other host call). Attempt 1 of a request that may fall back sets the mark and reads the
//! response `:status`, nothing else. Attempt `n ≥ 2` of a request that may fall back
//! reads the downstream filter's handoff and the previous attempt's record, counts the failed
//! attempt, and — when this attempt goes to another model — holds the headers, swaps the body
//! prefix and sets `content-length` (docs/failover.md#fallback).
//!
//! Request headers persist from one attempt to the next (a header an attempt sets is still
//! there on the next), the body does not (every attempt starts from the body the downstream
//! filter left): so every attempt `n ≥ 2` sets `content-length` to its own body's length.

use super::{host, Runtime};
use crate::breaker::Outcome;
use crate::config::ModelId;
use crate::fallback::{self, Attempt, AttemptRecord, Handoff};
use crate::metrics::{ErrorType, ModelLabel, Series};
use crate::stats::Stats;
use log::{debug, warn};
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::{Action, BufferType, MapType};
use std::rc::Rc;

/// What this attempt knows once its request headers were read.
struct Fallback {
    handoff: Handoff,
    /// The first model, then its fallback list (this configuration's).
    plan: Vec<ModelId>,
    record: AttemptRecord,
}

pub struct Upstream {
    runtime: Option<Rc<Runtime>>,
    /// The request has no fallback plan: nothing to do on any callback.
    inert: bool,
    /// `x-envoy-attempt-count` (1 when absent).
    attempt: u32,
    /// The attempt's response headers arrived.
    answered: bool,
    fallback: Option<Fallback>,
    /// The body must be rebuilt for another model when it is complete.
    refit: bool,
}

fn parse_u32(bytes: &[u8]) -> Option<u32> {
    std::str::from_utf8(bytes).ok()?.trim().parse().ok()
}

/// The handoff the downstream filter left, and the plan it stands for in this configuration.
fn read_plan(rt: &Runtime) -> Option<(Handoff, Vec<ModelId>)> {
    let bytes = host::property(&[fallback::HANDOFF_PROPERTY])
        .ok()
        .flatten()?;
    let handoff = Handoff::decode(&bytes)?;
    let Ok(first) = rt.cfg.resolve_reference(&handoff.first) else {
        debug!(
            "ai-gateway: upstream: model {} of the handoff is not in this filter's configuration",
            handoff.first
        );
        return None;
    };
    let mut plan = vec![first];
    plan.extend_from_slice(&rt.cfg.model(first).fallback);
    Some((handoff, plan))
}

fn read_record() -> Option<AttemptRecord> {
    let bytes = host::property(&[fallback::ATTEMPT_PROPERTY])
        .ok()
        .flatten()?;
    AttemptRecord::decode(&bytes)
}

fn write_record(record: &AttemptRecord) {
    if let Err(s) = host::set_property(fallback::ATTEMPT_PROPERTY, &record.encode()) {
        warn!("ai-gateway: upstream: could not record the attempt (status {s:?})");
    }
}

impl Upstream {
    pub fn new(runtime: Option<Rc<Runtime>>) -> Self {
        Upstream {
            runtime,
            inert: false,
            attempt: 1,
            answered: false,
            fallback: None,
            refit: false,
        }
    }

    /// Attempt `n ≥ 2`: decides its model, counts the previous attempt's failure.
    fn start_retry(&mut self, rt: &Runtime, n: u32) -> Action {
        let Some((handoff, plan)) = read_plan(rt) else {
            // Not a request that may fall back: an endpoint retry, body and headers as left.
            return Action::Continue;
        };
        let now = host::now_ms();
        let prev = read_record();
        rt.breakers.refresh();
        let next = fallback::next_attempt(
            Attempt {
                n,
                prev,
                first_started_ms: handoff.started_ms,
                now_ms: now,
            },
            plan.len(),
            |cause| rt.cfg.fallback_on.contains(cause),
            |i| plan.get(i).is_some_and(|&m| rt.breakers.closed(m, now)),
            fallback::attempt_timeout_ms(plan.iter().map(|&m| rt.cfg.model(m).timeout_ms)),
        );
        let (failed_index, cause) = next.failed;
        if let Some(&failed) = plan.get(usize::from(failed_index)) {
            self.count_failure(
                rt,
                failed,
                cause,
                failed_index == 0 && n == 2 && handoff.probe,
                now,
            );
        }
        let prev = prev.unwrap_or_default();
        let mut record = AttemptRecord {
            attempt: n,
            index: next.index,
            started_ms: now,
            status: 0,
            connect_failed: false,
            fallbacks: prev.fallbacks,
            last_cause: prev.last_cause,
        };
        if let Some((from, to, cause)) = next.fallback {
            if let (Some(&from), Some(&to)) =
                (plan.get(usize::from(from)), plan.get(usize::from(to)))
            {
                rt.add(Series::Fallbacks(from, to, cause), 1);
                debug!(
                    "ai-gateway: attempt {n} falls back from {} to {} ({})",
                    rt.cfg.model(from).name,
                    rt.cfg.model(to).name,
                    cause.label()
                );
            }
            record.fallbacks = record.fallbacks.saturating_add(1);
            record.last_cause = Some(cause);
        }
        write_record(&record);
        self.fallback = Some(Fallback {
            handoff,
            plan,
            record,
        });
        if next.index == 0 {
            // The first model again (an endpoint retry): Envoy replays its body, and no earlier
            // attempt changed content-length (a plan never moves back to its first model).
            return Action::Continue;
        }
        self.refit = true;
        // Hold the headers: content-length is set once the new body is known.
        Action::Pause
    }

    fn count_failure(&self, rt: &Runtime, model: ModelId, cause: ErrorType, probe: bool, now: u64) {
        rt.add(Series::ModelErrors(ModelLabel::Model(model), cause), 1);
        let transition = rt.breakers.record(model, Outcome::Failure, probe, now);
        if transition != crate::breaker::Transition::None {
            warn!(
                "ai-gateway: circuit of {} is open ({transition:?})",
                rt.cfg.model(model).name
            );
            rt.record(Series::CircuitOpen(model), 1);
        }
    }

    /// Rebuilds the body for this attempt's model.
    fn refit_body(&mut self, rt: &Runtime, body_size: usize) {
        self.refit = false;
        let Some(f) = &self.fallback else { return };
        let Some(&model) = f.plan.get(usize::from(f.record.index)) else {
            return;
        };
        let sent = match host::buffer(BufferType::HttpRequestBody, 0, body_size) {
            Ok(b) => b.unwrap_or_default(),
            Err(s) => {
                warn!("ai-gateway: upstream: could not read the body (status {s:?})");
                return;
            }
        };
        let plan = crate::request::plan_for(&rt.cfg, model);
        match fallback::refit(&sent, &f.handoff, &plan) {
            Ok(r) => {
                if let Err(s) = host::set_buffer(BufferType::HttpRequestBody, 0, r.drain, &r.prefix)
                {
                    warn!("ai-gateway: upstream: could not replace the body (status {s:?})");
                    return;
                }
                let _ = host::set_header(
                    MapType::HttpRequestHeaders,
                    "content-length",
                    r.len.to_string().as_bytes(),
                );
            }
            Err(e) => warn!("ai-gateway: upstream: could not rebuild the body: {e}"),
        }
    }
}

impl Context for Upstream {
    /// The attempt ended (Envoy calls this per attempt; `on_log` never runs for an upstream
    /// filter). One that got no response headers timed out, was reset or could not connect:
    /// Envoy's transport failure reason tells the last, for the next attempt's cause.
    fn on_done(&mut self) -> bool {
        if self.answered || self.inert {
            return true;
        }
        let reason = host::property(&["upstream", "transport_failure_reason"])
            .ok()
            .flatten()
            .unwrap_or_default();
        if reason.is_empty() {
            return true;
        }
        let Some(rt) = self.runtime.clone() else {
            return true;
        };
        if self.fallback.is_none() {
            // Attempt 1 (or a request without handoff): only a request that may fall back
            // needs a record.
            let Some((handoff, plan)) = read_plan(&rt) else {
                return true;
            };
            self.fallback = Some(Fallback {
                record: AttemptRecord {
                    attempt: self.attempt,
                    index: 0,
                    started_ms: handoff.started_ms,
                    ..AttemptRecord::default()
                },
                handoff,
                plan,
            });
        }
        if let Some(f) = &mut self.fallback {
            f.record.connect_failed = true;
            write_record(&f.record);
        }
        true
    }
}

impl HttpContext for Upstream {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let Some(rt) = self.runtime.clone() else {
            self.inert = true;
            return Action::Continue;
        };
        match host::property_presence(&[fallback::ATTEMPT_MARK_PROPERTY]) {
            Ok(host::Presence::Value(_)) => {}
            Ok(host::Presence::Empty) => {
                // The first attempt: the next one must know it is not.
                if let Err(s) =
                    host::set_property(fallback::ATTEMPT_MARK_PROPERTY, fallback::ATTEMPT_SEEN)
                {
                    warn!("ai-gateway: upstream: could not mark the first attempt (status {s:?})");
                }
                return Action::Continue;
            }
            Ok(host::Presence::Absent) | Err(_) => {
                self.inert = true;
                return Action::Continue;
            }
        }
        let n = host::header(MapType::HttpRequestHeaders, fallback::ATTEMPT_COUNT_HEADER)
            .ok()
            .flatten()
            .and_then(|v| parse_u32(&v))
            .unwrap_or(1);
        self.attempt = n;
        if n <= 1 {
            return Action::Continue;
        }
        self.start_retry(&rt, n)
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        if !self.refit {
            return Action::Continue;
        }
        if !end_of_stream {
            return Action::Pause;
        }
        if let Some(rt) = self.runtime.clone() {
            self.refit_body(&rt, body_size);
        }
        Action::Continue
    }

    fn on_http_request_trailers(&mut self, _num_trailers: usize) -> Action {
        if self.refit {
            if let Some(rt) = self.runtime.clone() {
                self.refit_body(&rt, usize::MAX);
            }
        }
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        if self.inert {
            return Action::Continue;
        }
        let Some(rt) = self.runtime.clone() else {
            return Action::Continue;
        };
        let status = host::header(MapType::HttpResponseHeaders, ":status")
            .ok()
            .flatten()
            .and_then(|v| parse_u32(&v))
            .and_then(|s| u16::try_from(s).ok())
            .unwrap_or(0);
        self.answered = true;
        let failed = fallback::is_failure_status(status);
        if self.fallback.is_none() && failed {
            // Attempt 1 (or a retry of a request without handoff): a failing status is the
            // only thing a later attempt needs to know, when the request may fall back.
            if let Some((handoff, plan)) = read_plan(&rt) {
                let record = AttemptRecord {
                    attempt: self.attempt,
                    index: 0,
                    started_ms: handoff.started_ms,
                    ..AttemptRecord::default()
                };
                self.fallback = Some(Fallback {
                    handoff,
                    plan,
                    record,
                });
            }
        }
        let Some(f) = &mut self.fallback else {
            return Action::Continue;
        };
        if failed {
            f.record.status = status;
            write_record(&f.record);
            let index = usize::from(f.record.index);
            if status == 429 {
                // Another worker may have opened the fallback's circuit since this one looked.
                rt.breakers.refresh();
            }
            if status == 429
                && fallback::skip_retry_after(
                    self.attempt,
                    rt.cfg.max_attempts,
                    index,
                    f.plan.len(),
                    rt.cfg.fallback_on.contains(ErrorType::Http429),
                    |i| {
                        let now = host::now_ms();
                        f.plan.get(i).is_some_and(|&m| rt.breakers.closed(m, now))
                    },
                )
            {
                // The next attempt asks another model: Envoy's rate-limited back-off would
                // wait for a model that is not the one that said it was busy.
                let _ = host::remove_header(MapType::HttpResponseHeaders, "retry-after");
                let _ = host::remove_header(MapType::HttpResponseHeaders, "x-ratelimit-reset");
            }
        }
        if self.attempt >= 2 {
            if let Some(&model) = f.plan.get(usize::from(f.record.index)) {
                let value = fallback::answered_by(
                    f.handoff.nonce,
                    &rt.cfg.model(model).key,
                    self.attempt,
                    f.record.last_cause,
                );
                let _ = host::set_header(
                    MapType::HttpResponseHeaders,
                    fallback::ANSWERED_HEADER,
                    value.as_bytes(),
                );
            }
        }
        Action::Continue
    }
}
