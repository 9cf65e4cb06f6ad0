//! The HTTP context: one per request (SPEC "Request path").

use super::{host, Runtime};
use crate::body::{self, Endpoint, Plan};
use crate::breaker::{Admission, Outcome, Transition};
use crate::config::{EndpointKind, KeyInjection, ModelId, RouteId};
use crate::errors::GatewayError;
use crate::header_map::HeaderMap;
use crate::metrics::{ErrorType, ModelLabel, RejectReason, RouteLabel, Series, TokenType};
use crate::rng::SplitMix64;
use crate::routing::{self, Resolution};
use crate::usage::{Format, Usage, UsageChunkStripper, UsageScanner};
use log::{info, warn};
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::{Action, BufferType, MapType};
use rand_core::RngCore;
use std::borrow::Cow;
use std::cell::RefCell;
use std::rc::Rc;

/// Headers the filter owns on the way upstream; client-sent copies are removed first.
const CLUSTER_HEADER: &str = "x-ai-gateway-cluster";
const TIMEOUT_HEADER: &str = "x-envoy-upstream-rq-timeout-ms";
/// With `key_injection: upstream`: marks the requests whose attempts get the provider key,
/// so requests the gateway doesn't handle never carry it. In the shipped configs a
/// `header_to_metadata` filter after this one moves the marker into dynamic metadata (every
/// retry sees it there; a header removed by the first attempt's upstream filters would be
/// gone for the next) and the cluster's upstream filters inject the key where it is set.
const INJECT_KEY_HEADER: &str = "x-ai-gateway-inject-key";
/// Envoy control headers a client must not use to change how the provider is called.
const CLIENT_CONTROL_HEADERS: [&str; 6] = [
    CLUSTER_HEADER,
    TIMEOUT_HEADER,
    INJECT_KEY_HEADER,
    "x-envoy-upstream-rq-per-try-timeout-ms",
    "x-envoy-max-retries",
    "x-envoy-retry-on",
];
const JSON: &[u8] = b"application/json";
/// Longest client-supplied text quoted back in an error message.
const MAX_ECHO: usize = 200;

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

/// What served the request.
#[derive(Debug, Clone, Copy)]
struct Served {
    resolution: Resolution,
    route: RouteLabel,
    model: ModelLabel,
    /// This request is its circuit's half-open probe.
    probe: bool,
    stream: bool,
    /// The gateway asked the provider for a usage chunk the client didn't ask for.
    strip_usage: bool,
}

/// How the response body is observed.
enum Observer {
    None,
    Scan(UsageScanner),
    Strip(Box<UsageChunkStripper>),
}

pub struct Http {
    runtime: Option<Rc<Runtime>>,
    rng: Rc<RefCell<SplitMix64>>,
    state: State,
    endpoint: EndpointKind,
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

fn endpoint_of(kind: EndpointKind) -> Endpoint {
    match kind {
        EndpointKind::Chat => Endpoint::Chat,
        EndpointKind::Completions => Endpoint::Completions,
        EndpointKind::Embeddings => Endpoint::Embeddings,
        EndpointKind::Responses => Endpoint::Responses,
        EndpointKind::Other => Endpoint::Other,
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

impl Http {
    pub fn new(runtime: Option<Rc<Runtime>>, rng: Rc<RefCell<SplitMix64>>) -> Self {
        Http {
            runtime,
            rng,
            state: State::Idle,
            endpoint: EndpointKind::Other,
            sticky_key: None,
            started_ms: 0,
            served: None,
            observer: Observer::None,
            awaiting_first_token: false,
            response_status: 0,
            client_authorization: false,
        }
    }

    /// Answers the request locally with an OpenAI-style error.
    fn answer(&mut self, rt: &Runtime, err: &GatewayError) -> Action {
        self.state = State::Answered;
        let (reason, details) = match err {
            GatewayError::InvalidRequest(_) => {
                (RejectReason::InvalidRequest, "ai_gateway_invalid_request")
            }
            GatewayError::ModelNotFound(_) => {
                (RejectReason::ModelNotFound, "ai_gateway_model_not_found")
            }
            GatewayError::NoHealthyTarget { .. } => (
                RejectReason::NoHealthyTarget,
                "ai_gateway_no_healthy_target",
            ),
            GatewayError::Misconfigured => {
                (RejectReason::Misconfigured, "ai_gateway_misconfigured")
            }
        };
        rt.metrics.add(&rt.cfg, Series::Rejected(reason), 1);
        let retry_after = err.retry_after_s().map(|s| s.max(1).to_string());
        let mut headers: Vec<(&str, &[u8])> = vec![("content-type", JSON)];
        if let Some(r) = &retry_after {
            headers.push(("retry-after", r.as_bytes()));
        }
        if let Err(s) = host::send_response(err.status(), details, &headers, &err.body()) {
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

    /// Picks among a route's targets: the healthy ones by weight (or sticky hash), admitting
    /// through the circuit breaker. Returns the model and whether it is the circuit's probe.
    fn pick(&self, rt: &Runtime, route_id: RouteId) -> Result<(ModelId, bool), GatewayError> {
        let cfg = &rt.cfg;
        let route = cfg.route(route_id);
        rt.breakers.refresh();
        let now = host::now_ms();
        let roll = match &self.sticky_key {
            Some(_) => 0,
            None => self.rng.borrow_mut().next_u64(),
        };
        let pick_among = |ok: &dyn Fn(ModelId) -> bool| match &self.sticky_key {
            Some(key) => routing::pick_sticky(route, ok, key),
            None => routing::pick_weighted(route, ok, roll),
        };
        // What the pick would be with every circuit closed: a different final choice is a
        // failover (the same roll or key keeps the two comparable).
        let natural = pick_among(&|_| true);
        let mut excluded: Vec<ModelId> = Vec::new();
        loop {
            let chosen = pick_among(&|m| !excluded.contains(&m) && rt.breakers.available(m, now));
            let Some(model) = chosen else {
                let retry_after_s = rt
                    .breakers
                    .retry_after_s(route.targets.iter().map(|t| t.model), now);
                return Err(GatewayError::NoHealthyTarget {
                    route: route.name.clone(),
                    retry_after_s,
                });
            };
            match rt.breakers.admit(model, now) {
                Admission::Rejected => excluded.push(model),
                admission => {
                    if let Some(from) = natural.filter(|&n| n != model) {
                        rt.metrics.add(
                            cfg,
                            Series::Failovers(RouteLabel::Route(route_id), from, model),
                            1,
                        );
                    }
                    return Ok((model, admission == Admission::Probe));
                }
            }
        }
    }

    /// Resolves, picks, rewrites and sets the upstream headers.
    fn route(&mut self, rt: &Runtime, body: &[u8]) -> Result<Action, GatewayError> {
        let cfg = &rt.cfg;
        let parsed = body::parse(body).map_err(|e| GatewayError::InvalidRequest(e.to_string()))?;
        let resolution = routing::resolve(cfg, parsed.model());
        let (route, target, probe) = match resolution {
            Resolution::Reject => {
                let requested = parsed.model().unwrap_or("");
                return Err(GatewayError::ModelNotFound(truncate(requested, MAX_ECHO)));
            }
            Resolution::Passthrough => (RouteLabel::Passthrough, None, false),
            // The client's preferred model is honoured even while its circuit is open: the
            // breaker steers the gateway's own choices (routes), not explicit requests.
            Resolution::Model(m) => (RouteLabel::Direct, Some(m), false),
            Resolution::Route(r) => {
                let (m, probe) = self.pick(rt, r)?;
                (RouteLabel::Route(r), Some(m), probe)
            }
        };

        let mut strip_usage = false;
        let model = target.map(|m| cfg.model(m));
        if let Some(t) = model {
            let plan = Plan {
                model: Some(&t.name),
                max_tokens: t.max_tokens,
                temperature: t.temperature,
                system_prompt: t.system_prompt.as_deref(),
                include_usage: cfg.stream_usage,
            };
            let rewrite = body::rewrite_prefix(body, &parsed, endpoint_of(self.endpoint), &plan)
                .map_err(|e| GatewayError::InvalidRequest(e.to_string()))?;
            strip_usage = cfg.stream_usage
                && parsed.stream()
                && !rewrite.client_asked_usage
                && matches!(
                    self.endpoint,
                    EndpointKind::Chat | EndpointKind::Completions
                );
            if let Some((replaced, prefix)) = rewrite.splice {
                // Envoy drains the first `replaced` bytes of its buffer and prepends the new
                // prefix: the rest of the body is never copied back.
                if let Err(s) = host::set_buffer(BufferType::HttpRequestBody, 0, replaced, &prefix)
                {
                    warn!("ai-gateway: could not replace the request body (status {s:?})");
                    return Err(GatewayError::InvalidRequest(
                        "the request body could not be rewritten".into(),
                    ));
                }
                // set_http_request_body does not fix content-length (ENVOY-NOTES): without
                // this the upstream reads the extra bytes as the next request.
                let len = body.len().saturating_sub(replaced) + prefix.len();
                set_request_header("content-length", len.to_string().as_bytes());
            }
        }

        let (cluster, timeout) = match model {
            Some(t) => (t.cluster.as_str(), t.timeout_header.as_str()),
            None => (cfg.cluster.as_str(), cfg.timeout_header()),
        };
        let key_set = match (rt.cfg.key_injection, rt.authorization.as_deref()) {
            (KeyInjection::Filter, Some(auth)) => set_request_header("authorization", auth),
            (KeyInjection::Filter, None) => return Err(GatewayError::Misconfigured),
            // The cluster's upstream filter sets the key per attempt; the client's own
            // `authorization` never reaches the provider either way.
            (KeyInjection::Upstream, _) => {
                (!self.client_authorization
                    || host::remove_header(MapType::HttpRequestHeaders, "authorization").is_ok())
                    && set_request_header(INJECT_KEY_HEADER, b"1")
            }
        };
        let ok = key_set
            && set_request_header(CLUSTER_HEADER, cluster.as_bytes())
            && set_request_header(TIMEOUT_HEADER, timeout.as_bytes());
        if !ok {
            return Err(GatewayError::InvalidRequest(
                "the request could not be routed".into(),
            ));
        }
        let model_label = match target {
            Some(m) => ModelLabel::Model(m),
            None => ModelLabel::Passthrough,
        };
        rt.metrics
            .add(cfg, Series::Selections(route, model_label), 1);
        self.served = Some(Served {
            resolution,
            route,
            model: model_label,
            probe,
            stream: parsed.stream(),
            strip_usage,
        });
        self.state = State::Forwarded;
        Ok(Action::Continue)
    }

    /// Chooses how to read usage from this response (2xx, uncompressed only).
    fn observe(&mut self, served: &Served) {
        let raw = host::header_pairs(MapType::HttpResponseHeaders).unwrap_or_default();
        let headers = HeaderMap::parse(&raw).unwrap_or_default();
        let status = headers.get(":status").unwrap_or_default();
        self.response_status = std::str::from_utf8(status)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        if !status.starts_with(b"2") {
            return;
        }
        if let Some(enc) = headers.get("content-encoding") {
            if !enc.eq_ignore_ascii_case(b"identity") {
                return;
            }
        }
        let sse = headers.get("content-type").is_some_and(|ct| {
            ct.windows(17)
                .any(|w| w.eq_ignore_ascii_case(b"text/event-stream"))
        });
        self.awaiting_first_token = served.stream && sse;
        self.observer = if sse && served.strip_usage {
            // The body changes size: let Envoy frame it.
            if headers.contains("content-length") {
                let _ = host::remove_header(MapType::HttpResponseHeaders, "content-length");
            }
            Observer::Strip(Box::default())
        } else if sse {
            Observer::Scan(UsageScanner::new(Format::Sse))
        } else {
            Observer::Scan(UsageScanner::new(Format::Json))
        };
    }

    fn usage(&self) -> Option<Usage> {
        match &self.observer {
            Observer::None => None,
            Observer::Scan(s) => s.usage(),
            Observer::Strip(s) => s.usage(),
        }
    }

    fn account(&self, rt: &Runtime, served: &Served) {
        let cfg = &rt.cfg;
        let now = host::now_ms();
        // Host calls that return data are the expensive ones (Envoy re-enters the VM to
        // allocate the result): take the status from the response headers already read, and
        // ask for Envoy's response details only where they can change the verdict — an
        // error, a stream (a 200 cut by a timeout or reset), or no response headers at all.
        let status = match self.response_status {
            0 => property_u64(&["response", "code"]).unwrap_or(0),
            s => u64::from(s),
        };
        let details = if (200..300).contains(&status) && !served.stream {
            Vec::new()
        } else {
            host::property(&["response", "code_details"])
                .ok()
                .flatten()
                .unwrap_or_default()
        };
        let details = std::str::from_utf8(&details).unwrap_or("");
        let duration = now.saturating_sub(self.started_ms);
        let code = u16::try_from(status).unwrap_or(0);
        rt.metrics
            .add(cfg, Series::Requests(served.route, served.model, code), 1);
        rt.metrics
            .record(cfg, Series::Duration(served.route, served.model), duration);

        if let Some(usage) = self.usage() {
            rt.metrics.add(
                cfg,
                Series::Tokens(served.model, TokenType::Prompt),
                usage.prompt_tokens,
            );
            rt.metrics.add(
                cfg,
                Series::Tokens(served.model, TokenType::Completion),
                usage.completion_tokens,
            );
            if let ModelLabel::Model(m) = served.model {
                if let Some(price) = cfg.model(m).price {
                    let micros = rt.costs.add(m, usage, price);
                    rt.metrics.add(cfg, Series::Cost(served.model), micros);
                }
            }
        }

        let ModelLabel::Model(model) = served.model else {
            return;
        };
        // The client went away before an answer: says nothing about the model.
        if status == 0 || details.starts_with("downstream_") {
            return;
        }
        let outcome = match ErrorType::classify(u32::from(code), details) {
            Some(e) => {
                rt.metrics.add(cfg, Series::ModelErrors(served.model, e), 1);
                Outcome::Failure
            }
            None => Outcome::Success,
        };
        let transition = rt.breakers.record(model, outcome, served.probe, now);
        let name = cfg.model(model).name.as_str();
        match transition {
            Transition::Opened | Transition::Reopened => {
                warn!("ai-gateway: circuit of {name} is open ({transition:?})");
                rt.metrics.record(cfg, Series::CircuitOpen(model), 1);
            }
            Transition::Closed => {
                info!("ai-gateway: circuit of {name} closed");
                rt.metrics.record(cfg, Series::CircuitOpen(model), 0);
            }
            Transition::None | Transition::HalfOpened => {}
        }
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
        let parsed = HeaderMap::parse(&raw);
        // Were the map ever unreadable, the headers to remove are removed blindly.
        let unread = parsed.is_none();
        let headers = parsed.unwrap_or_default();
        // A client can't pick a cluster, a timeout or retries.
        for h in CLIENT_CONTROL_HEADERS {
            if (unread || headers.contains(h))
                && host::remove_header(MapType::HttpRequestHeaders, h).is_err()
            {
                return Action::Continue;
            }
        }
        let method = headers.get(":method").unwrap_or_default();
        let raw_path = headers.get(":path").unwrap_or_default();
        let path_end = raw_path
            .iter()
            .position(|&b| b == b'?' || b == b'#')
            .unwrap_or(raw_path.len());
        let path = std::str::from_utf8(&raw_path[..path_end]).unwrap_or("");

        if method == b"GET" && rt.models_paths.iter().any(|p| p == path) {
            self.state = State::Answered;
            return match host::send_response(
                200,
                "ai_gateway_models",
                &[("content-type", JSON)],
                &rt.models_body,
            ) {
                Ok(()) => Action::Pause,
                Err(_) => Action::Continue,
            };
        }

        let endpoint = match rt.cfg.endpoint(path) {
            Some(kind) if method == b"POST" => kind,
            _ => {
                // Not an API request: passes through untouched to the default cluster,
                // without the provider key.
                set_request_header(CLUSTER_HEADER, rt.cfg.cluster.as_bytes());
                return Action::Continue;
            }
        };
        self.endpoint = endpoint;
        if rt.authorization.is_none() && rt.cfg.key_injection == KeyInjection::Filter {
            return self.answer(&rt, &GatewayError::Misconfigured);
        }
        if let Some(enc) = headers.get("content-encoding") {
            if !enc.eq_ignore_ascii_case(b"identity") {
                return self.answer(
                    &rt,
                    &GatewayError::InvalidRequest(format!(
                        "compressed request bodies are not supported (content-encoding: {}); send plain JSON",
                        truncate(&String::from_utf8_lossy(enc), 40)
                    )),
                );
            }
        }
        if end_of_stream {
            return self.answer(
                &rt,
                &GatewayError::InvalidRequest(
                    "the request body is empty; expected a JSON object".into(),
                ),
            );
        }
        // Usage is read from the response: ask for it uncompressed.
        if unread || headers.contains("accept-encoding") {
            let _ = host::remove_header(MapType::HttpRequestHeaders, "accept-encoding");
        }
        self.client_authorization = unread || headers.contains("authorization");
        if let Some(h) = &rt.cfg.sticky_header {
            self.sticky_key = headers.get(h).filter(|v| !v.is_empty()).map(<[u8]>::to_vec);
        }
        self.state = State::AwaitingBody;
        // Hold the headers: the cluster and timeout are set once the body is read.
        Action::Pause
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
        let (Some(rt), Some(served)) = (self.runtime.clone(), self.served) else {
            return Action::Continue;
        };
        let cfg = &rt.cfg;
        let route = routing::route_label(cfg, served.resolution);
        if let ModelLabel::Model(m) = served.model {
            let m = cfg.model(m);
            let _ = host::set_header(
                MapType::HttpResponseHeaders,
                "x-ai-gateway-model",
                m.name.as_bytes(),
            );
            let _ = host::set_header(
                MapType::HttpResponseHeaders,
                "x-ai-gateway-version",
                m.version_label.as_bytes(),
            );
        }
        let _ = host::set_header(
            MapType::HttpResponseHeaders,
            "x-ai-gateway-route",
            route.as_bytes(),
        );
        self.observe(&served);
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
                rt.metrics.record(&rt.cfg, Series::Ttft(served.model), ttft);
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
        if let (Some(rt), Some(served)) = (self.runtime.clone(), self.served) {
            self.account(&rt, &served);
        }
    }
}
