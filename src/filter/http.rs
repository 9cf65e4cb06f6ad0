//! The HTTP context: one per request. Each callback reads from the host, asks the pure core
//! ([`crate::request`], [`crate::response`]) what to do and applies it (docs/design.md,
//! "Request path").

use super::{host, Runtime};
use crate::body::Endpoint;
use crate::config::KeyInjection;
use crate::errors::GatewayError;
use crate::fallback;
use crate::header_map::HeaderMap;
use crate::metrics::{ModelLabel, Series};
use crate::request::{self, Decision, HeaderEdit, RouteInput, Served, CLUSTER_HEADER};
use crate::response::{self, Finished, Observer};
use crate::rng::SplitMix64;
use crate::stats::Stats;
use log::warn;
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::{Action, BufferType, MapType};
use rand_core::RngCore;
use std::borrow::Cow;
use std::cell::RefCell;
use std::rc::Rc;

const JSON: &[u8] = b"application/json";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Not a request the gateway handles (or not yet).
    Idle,
    /// Headers held; waiting for the whole body.
    AwaitingBody,
    /// Routed upstream.
    Forwarded,
    /// Answered locally.
    Answered,
}

pub struct Http {
    runtime: Option<Rc<Runtime>>,
    rng: Rc<RefCell<SplitMix64>>,
    state: State,
    endpoint: Endpoint,
    sticky_key: Option<Vec<u8>>,
    started_ms: u64,
    served: Option<Served>,
    observer: Observer,
    /// A successful SSE answer to a streaming request whose first body byte is still to
    /// come: time to first token is recorded then (never for error answers).
    awaiting_first_token: bool,
    /// The status of the response headers the client got (0 until they pass).
    response_status: u16,
    /// The client sent an `authorization` header of its own.
    client_authorization: bool,
    /// Attempts the request took, and why it last moved to another model (from the response).
    attempts: u32,
    fallback_cause: Option<crate::metrics::ErrorType>,
    /// A fallback model's attempt answered (its answered-by header was read), or the attempt
    /// record was read for an answer Envoy made itself.
    answered: bool,
}

fn set_request_header(name: &str, value: &[u8]) -> bool {
    match host::set_header(MapType::HttpRequestHeaders, name, value) {
        Ok(()) => true,
        Err(s) => {
            warn!("ai-gateway: could not set request header {name} (status {s:?})");
            false
        }
    }
}

fn property_u64(path: &[&str]) -> Option<u64> {
    let bytes = host::property(path).ok().flatten()?;
    let arr: [u8; 8] = bytes.get(..8)?.try_into().ok()?;
    Some(u64::from_le_bytes(arr))
}

impl Http {
    pub fn new(runtime: Option<Rc<Runtime>>, rng: Rc<RefCell<SplitMix64>>) -> Self {
        Http {
            runtime,
            rng,
            state: State::Idle,
            endpoint: Endpoint::Other,
            sticky_key: None,
            started_ms: 0,
            served: None,
            observer: Observer::None,
            awaiting_first_token: false,
            response_status: 0,
            client_authorization: false,
            attempts: 1,
            fallback_cause: None,
            answered: false,
        }
    }

    /// Answers the request locally with an OpenAI-style error.
    fn answer(&mut self, rt: &Runtime, err: &GatewayError) -> Action {
        self.state = State::Answered;
        rt.add(Series::Rejected(err.reject_reason()), 1);
        let retry_after = err.retry_after_s().map(|s| s.max(1).to_string());
        let mut headers: Vec<(&str, &[u8])> = vec![("content-type", JSON)];
        if let Some(r) = &retry_after {
            headers.push(("retry-after", r.as_bytes()));
        }
        if let Err(s) = host::send_response(err.status(), err.details(), &headers, &err.body()) {
            warn!("ai-gateway: could not send the local reply (status {s:?})");
            return Action::Continue;
        }
        Action::Pause
    }

    fn on_body_complete(&mut self, rt: &Runtime, body_size: usize) -> Action {
        let body = match host::buffer(BufferType::HttpRequestBody, 0, body_size) {
            Ok(b) => b.unwrap_or_default(),
            Err(s) => {
                warn!("ai-gateway: could not read the request body (status {s:?})");
                return self.answer(
                    rt,
                    &GatewayError::InvalidRequest("the request body could not be read".into()),
                );
            }
        };
        match self.route(rt, &body) {
            Ok(action) => action,
            Err(e) => self.answer(rt, &e),
        }
    }

    /// Asks the core where the request goes, then edits the body and the headers.
    fn route(&mut self, rt: &Runtime, body: &[u8]) -> Result<Action, GatewayError> {
        let (roll, nonce) = {
            let mut rng = self.rng.borrow_mut();
            let roll = match &self.sticky_key {
                Some(_) => 0,
                None => rng.next_u64(),
            };
            (roll, rng.next_u64())
        };
        let input = RouteInput {
            endpoint: self.endpoint,
            sticky_key: self.sticky_key.as_deref(),
            roll,
            nonce,
            now_ms: host::now_ms(),
            authorization: rt.authorization.as_deref(),
            client_authorization: self.client_authorization,
        };
        let routed = request::route(&rt.cfg, &rt.breakers, body, &input)?;
        if let Some((from, to)) = routed.failover {
            rt.add(Series::Failovers(routed.served.route, from, to), 1);
        }
        if let Some((replaced, prefix)) = &routed.splice {
            // Envoy drains the first `replaced` bytes of its buffer and prepends the new
            // prefix: the rest of the body is never copied back.
            if let Err(s) = host::set_buffer(BufferType::HttpRequestBody, 0, *replaced, prefix) {
                warn!("ai-gateway: could not replace the request body (status {s:?})");
                return Err(GatewayError::InvalidRequest(
                    "the request body could not be rewritten".into(),
                ));
            }
        }
        for edit in &routed.headers {
            let ok = match edit {
                HeaderEdit::Set(name, value) => set_request_header(name, value),
                HeaderEdit::Remove(name) => {
                    host::remove_header(MapType::HttpRequestHeaders, name).is_ok()
                }
            };
            // content-length is best effort, as it always was; the routing headers are not.
            if !ok && !matches!(edit, HeaderEdit::Set("content-length", _)) {
                return Err(GatewayError::InvalidRequest(
                    "the request could not be routed".into(),
                ));
            }
        }
        // For the upstream filter of a later attempt: without it, a retry replays this body.
        if let Some(handoff) = &routed.handoff {
            let left = host::set_property(fallback::HANDOFF_PROPERTY, &handoff.encode())
                .and_then(|()| host::set_property(fallback::ATTEMPT_MARK_PROPERTY, b""));
            if let Err(s) = left {
                warn!("ai-gateway: could not leave the fallback plan (status {s:?}); this request won't fall back");
            }
        }
        rt.add(
            Series::Selections(routed.served.route, routed.served.model),
            1,
        );
        self.served = Some(routed.served);
        self.state = State::Forwarded;
        Ok(Action::Continue)
    }
}

impl Http {
    /// A request that may have fallen back and got no answer naming its model: the latest
    /// attempt's record says which model it was, how many attempts and why it last moved.
    /// Read once (a data-returning host call, on the error path only).
    fn last_attempt(&mut self, rt: &Runtime, served: Served) -> Served {
        if served.nonce.is_none() || self.answered {
            return served;
        }
        self.answered = true;
        let record = host::property(&[fallback::ATTEMPT_PROPERTY])
            .ok()
            .flatten()
            .and_then(|b| fallback::AttemptRecord::decode(&b));
        let Some(record) = record else {
            return served;
        };
        self.attempts = self.attempts.max(record.attempt);
        self.fallback_cause = record.last_cause;
        let served = match response::last_attempt_model(&rt.cfg, &served, &record) {
            Some(model) => served.answered_by(model),
            None => served,
        };
        self.served = Some(served);
        served
    }
}

impl Context for Http {}

impl HttpContext for Http {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        let Some(rt) = self.runtime.clone() else {
            return Action::Continue;
        };
        self.started_ms = host::now_ms();
        // The whole map in one host call; every lookup below is local.
        let Ok(raw) = host::header_pairs(MapType::HttpRequestHeaders) else {
            return Action::Continue;
        };
        let headers = HeaderMap::parse(&raw);
        let gateway = request::Gateway {
            cfg: &rt.cfg,
            models_paths: &rt.models_paths,
            key_ready: rt.authorization.is_some() || rt.cfg.key_injection == KeyInjection::Upstream,
        };
        let plan = request::on_headers(&gateway, headers.as_ref(), end_of_stream);
        // A client can't pick a cluster, a timeout or retries.
        for h in plan.remove {
            if host::remove_header(MapType::HttpRequestHeaders, h).is_err() {
                return Action::Continue;
            }
        }
        match plan.decision {
            Decision::ServeModels => {
                self.state = State::Answered;
                match host::send_response(
                    200,
                    "ai_gateway_models",
                    &[("content-type", JSON)],
                    &rt.models_body,
                ) {
                    Ok(()) => Action::Pause,
                    Err(_) => Action::Continue,
                }
            }
            Decision::PassThrough => {
                set_request_header(CLUSTER_HEADER, rt.cfg.cluster.as_bytes());
                Action::Continue
            }
            Decision::Answer(err) => self.answer(&rt, &err),
            Decision::Hold(held) => {
                if held.remove_accept_encoding {
                    let _ = host::remove_header(MapType::HttpRequestHeaders, "accept-encoding");
                }
                self.endpoint = held.endpoint;
                self.sticky_key = held.sticky_key;
                self.client_authorization = held.client_authorization;
                self.state = State::AwaitingBody;
                // Hold the headers: the cluster and timeout are set once the body is read.
                Action::Pause
            }
        }
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        if self.state != State::AwaitingBody {
            return Action::Continue;
        }
        if !end_of_stream {
            return Action::Pause;
        }
        let Some(rt) = self.runtime.clone() else {
            return Action::Continue;
        };
        self.on_body_complete(&rt, body_size)
    }

    fn on_http_request_trailers(&mut self, _num_trailers: usize) -> Action {
        // A body followed by trailers never sees end_of_stream in the body callback.
        if self.state != State::AwaitingBody {
            return Action::Continue;
        }
        let Some(rt) = self.runtime.clone() else {
            return Action::Continue;
        };
        self.on_body_complete(&rt, usize::MAX)
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        if self.state != State::Forwarded {
            return Action::Continue;
        }
        let (Some(rt), Some(mut served)) = (self.runtime.clone(), self.served) else {
            return Action::Continue;
        };
        let raw = host::header_pairs(MapType::HttpResponseHeaders).unwrap_or_default();
        let headers = HeaderMap::parse(&raw).unwrap_or_default();
        let plan = response::on_headers(&rt.cfg, &headers, &served);
        if headers.contains(fallback::ANSWERED_HEADER) {
            let _ = host::remove_header(MapType::HttpResponseHeaders, fallback::ANSWERED_HEADER);
        }
        self.attempts = plan.attempts;
        if let Some(answered) = plan.answered {
            served = served.answered_by(answered.model);
            self.served = Some(served);
            self.answered = true;
            self.fallback_cause = answered.cause;
        } else if !(200..300).contains(&plan.status) {
            // Envoy answered itself (its 504 after the last attempt timed out, a reset): no
            // attempt named its model; the record of the last one does.
            served = self.last_attempt(&rt, served);
        }
        for (name, value) in response::client_headers(&rt.cfg, &served) {
            let _ = host::set_header(MapType::HttpResponseHeaders, name, value.as_bytes());
        }
        // Only when it says something: a header edit costs about three plain host calls, and
        // most requests take one attempt (absent = 1).
        if self.attempts > 1 {
            let _ = host::set_header(
                MapType::HttpResponseHeaders,
                "x-ai-gateway-attempts",
                self.attempts.to_string().as_bytes(),
            );
        }
        if plan.remove_content_length {
            let _ = host::remove_header(MapType::HttpResponseHeaders, "content-length");
        }
        self.response_status = plan.status;
        self.awaiting_first_token = plan.awaiting_first_token;
        self.observer = plan.observer;
        Action::Continue
    }

    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        let Some(served) = self.served else {
            return Action::Continue;
        };
        if self.awaiting_first_token && body_size > 0 {
            self.awaiting_first_token = false;
            if let (Some(rt), ModelLabel::Model(_)) = (self.runtime.as_ref(), served.model) {
                let ttft = host::now_ms().saturating_sub(self.started_ms);
                rt.record(Series::Ttft(served.model), ttft);
            }
        }
        if matches!(self.observer, Observer::None) {
            return Action::Continue;
        }
        let chunk = if body_size == 0 {
            Vec::new()
        } else {
            match host::buffer(BufferType::HttpResponseBody, 0, body_size) {
                Ok(b) => b.unwrap_or_default(),
                Err(_) => return Action::Continue,
            }
        };
        match &mut self.observer {
            Observer::None => {}
            Observer::Scan(scanner) => scanner.feed(&chunk),
            Observer::Strip(stripper) => {
                let out = stripper.filter(&chunk, end_of_stream);
                if matches!(out, Cow::Owned(_)) || out.len() != chunk.len() {
                    if let Err(s) =
                        host::set_buffer(BufferType::HttpResponseBody, 0, chunk.len(), &out)
                    {
                        warn!("ai-gateway: could not edit a response chunk (status {s:?})");
                    }
                }
            }
        }
        Action::Continue
    }

    fn on_log(&mut self) {
        if self.state != State::Forwarded {
            return;
        }
        let (Some(rt), Some(mut served)) = (self.runtime.clone(), self.served) else {
            return;
        };
        let now_ms = host::now_ms();
        // Data-returning host calls are the expensive ones: the status comes from the response
        // headers already read, Envoy's details only where they can change the verdict.
        let status = match self.response_status {
            0 => property_u64(&["response", "code"]).unwrap_or(0),
            s => u64::from(s),
        };
        let details = if request::needs_details(status, served.stream) {
            host::property(&["response", "code_details"])
                .ok()
                .flatten()
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        // No response headers at all (the client left): the record may still name the model.
        if request::needs_details(status, false) {
            served = self.last_attempt(&rt, served);
        }
        let usage = self.observer.usage();
        let entry =
            response::access_entry(&rt.cfg, &served, self.attempts, self.fallback_cause, usage);
        if let Err(s) = host::set_property(response::ACCESS_LOG_PROPERTY, &entry) {
            warn!("ai-gateway: could not leave the access-log entry (status {s:?})");
        }
        let done = Finished {
            served,
            status,
            details: std::str::from_utf8(&details).unwrap_or(""),
            duration_ms: now_ms.saturating_sub(self.started_ms),
            usage,
            now_ms,
        };
        response::account(&rt.cfg, rt.as_ref(), &rt.costs, &rt.breakers, &done);
    }
}
