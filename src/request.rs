//! The request's decisions, without the host: which client headers go, whether the gateway
//! answers itself, and — once the body is read — which model serves it, the body edit and the
//! headers to upstream (docs/design.md, "Request path").
//!
//! The filter's HTTP context (`src/filter/http.rs`) reads the headers and the body from Envoy,
//! calls [`on_headers`] and [`route`], and applies what they return.

use crate::body::{self, Endpoint, Plan};
use crate::breaker::{Admission, Breakers, Outcome};
use crate::config::Config;
use crate::config::{KeyInjection, ModelId};
use crate::errors::GatewayError;
use crate::fallback::Handoff;
use crate::header_map::HeaderMap;
use crate::metrics::{ModelLabel, RouteLabel};
use crate::routing::{self, Chooser, Resolution};
use crate::store::SharedStore;
use std::borrow::Cow;

/// The header the shipped Envoy routes read (`cluster_header`) to pick the upstream cluster.
pub const CLUSTER_HEADER: &str = "x-ai-gateway-cluster";
/// Envoy's whole-request timeout (every attempt, back-off and the response body); the gateway
/// sets it from `max_duration_ms` (`0`: none).
pub const TIMEOUT_HEADER: &str = "x-envoy-upstream-rq-timeout-ms";
/// Envoy's per-attempt timeout, which Envoy stops once the response has started to reach the
/// client; the gateway sets it from the model's `timeout_ms`.
pub const PER_TRY_TIMEOUT_HEADER: &str = "x-envoy-upstream-rq-per-try-timeout-ms";
/// How many times Envoy may retry: `max_attempts - 1`.
pub const MAX_RETRIES_HEADER: &str = "x-envoy-max-retries";
/// With `key_injection: upstream`: marks the requests whose attempts get the provider key, so
/// requests the gateway doesn't handle never carry it. In the shipped configs a
/// `header_to_metadata` filter after this one moves the marker into dynamic metadata (every
/// retry sees it there; a header removed by the first attempt's upstream filters would be gone
/// for the next) and the cluster's upstream filters inject the key where it is set.
pub const INJECT_KEY_HEADER: &str = "x-ai-gateway-inject-key";
/// Envoy control headers a client must not use to change how the provider is called.
pub const CLIENT_CONTROL_HEADERS: [&str; 6] = [
    CLUSTER_HEADER,
    TIMEOUT_HEADER,
    INJECT_KEY_HEADER,
    PER_TRY_TIMEOUT_HEADER,
    MAX_RETRIES_HEADER,
    "x-envoy-retry-on",
];
/// The client-control headers [`route`] sets on every request it routes (replacing the
/// client's value).
const SET_FOR_EVERY_ROUTED_REQUEST: [&str; 4] = [
    CLUSTER_HEADER,
    TIMEOUT_HEADER,
    PER_TRY_TIMEOUT_HEADER,
    MAX_RETRIES_HEADER,
];
/// Longest client-supplied text quoted back in an error message.
pub const MAX_ECHO: usize = 200;

/// What the request-headers phase decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// `GET <prefix>/models`: answer with the rendered model list.
    ServeModels,
    /// Not an API request: it goes to the default cluster untouched, without the provider key.
    PassThrough,
    /// Answer locally with this error.
    Answer(GatewayError),
    /// An API request: hold the headers until the whole body is read.
    Hold(Held),
}

/// What the body phase needs from the request headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub endpoint: Endpoint,
    /// The sticky header's value, when configured and present (not empty).
    pub sticky_key: Option<Vec<u8>>,
    /// The client sent an `authorization` header of its own (or the map was unreadable).
    pub client_authorization: bool,
    /// Remove `accept-encoding`: usage is read from the response, which must be uncompressed.
    pub remove_accept_encoding: bool,
}

/// The request-headers phase: headers to remove first, then the decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeadersPlan {
    /// Client copies of the headers the gateway owns. If one can't be removed, the glue lets the
    /// request pass untouched rather than send it on with a client-chosen cluster or timeout.
    pub remove: Vec<&'static str>,
    pub decision: Decision,
}

/// The header-phase inputs that come from the configuration and the VM, not the request.
pub struct Gateway<'a> {
    pub cfg: &'a Config,
    /// The `GET` paths answered with the model list.
    pub models_paths: &'a [String],
    /// The provider key is usable (or injected upstream): API requests can be served.
    pub key_ready: bool,
}

/// Decides what to do with a request from its headers. `headers` is `None` when the map could
/// not be read: then every header the gateway owns is removed blindly.
pub fn on_headers(gw: &Gateway, headers: Option<&HeaderMap>, end_of_stream: bool) -> HeadersPlan {
    let unread = headers.is_none();
    let empty = HeaderMap::default();
    let headers = headers.unwrap_or(&empty);
    let present = |h: &&str| unread || headers.contains(h);
    let plan = |decision| HeadersPlan {
        remove: CLIENT_CONTROL_HEADERS.into_iter().filter(present).collect(),
        decision,
    };

    let method = headers.get(":method").unwrap_or_default();
    let raw_path = headers.get(":path").unwrap_or_default();
    let path_end = raw_path
        .iter()
        .position(|&b| b == b'?' || b == b'#')
        .unwrap_or(raw_path.len());
    let path = std::str::from_utf8(&raw_path[..path_end]).unwrap_or("");

    if method == b"GET" && gw.models_paths.iter().any(|p| p == path) {
        return plan(Decision::ServeModels);
    }
    let endpoint = match gw.cfg.endpoint(path) {
        Some(kind) if method == b"POST" => kind,
        _ => return plan(Decision::PassThrough),
    };
    if !gw.key_ready {
        return plan(Decision::Answer(GatewayError::Misconfigured));
    }
    if let Some(enc) = headers.get("content-encoding") {
        if !enc.eq_ignore_ascii_case(b"identity") {
            return plan(Decision::Answer(GatewayError::InvalidRequest(format!(
                "compressed request bodies are not supported (content-encoding: {}); send plain JSON",
                truncate(&String::from_utf8_lossy(enc), 40)
            ))));
        }
    }
    if end_of_stream {
        return plan(Decision::Answer(GatewayError::InvalidRequest(
            "the request body is empty; expected a JSON object".into(),
        )));
    }
    let sticky_key = gw
        .cfg
        .sticky_header
        .as_deref()
        .and_then(|h| headers.get(h))
        .filter(|v| !v.is_empty())
        .map(<[u8]>::to_vec);
    // A held request gets these set by [`route`] (each edit costs a host call, about three
    // times a plain one): removing them first would be a call for nothing. A request answered
    // from the body phase never goes upstream.
    let remove = CLIENT_CONTROL_HEADERS
        .into_iter()
        .filter(|h| !SET_FOR_EVERY_ROUTED_REQUEST.contains(h))
        .filter(present)
        .collect();
    HeadersPlan {
        remove,
        decision: Decision::Hold(Held {
            endpoint,
            sticky_key,
            client_authorization: unread || headers.contains("authorization"),
            remove_accept_encoding: unread || headers.contains("accept-encoding"),
        }),
    }
}

/// What the rewrite does for a model: its name, `max_tokens` cap, `temperature` default and
/// system prompt, and the usage request of streams (`stream_usage`). The first attempt and a
/// fallback attempt apply the same plan.
pub fn plan_for<'c>(cfg: &'c Config, model: ModelId) -> Plan<'c> {
    let m = cfg.model(model);
    Plan {
        model: Some(&m.name),
        max_tokens: m.max_tokens,
        temperature: m.temperature,
        system_prompt: m.system_prompt.as_deref(),
        include_usage: cfg.stream_usage,
    }
}

/// What served a request, kept for the response and the access accounting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Served {
    pub route: RouteLabel,
    pub model: ModelLabel,
    /// This request is its circuit's half-open probe.
    pub probe: bool,
    pub stream: bool,
    /// The gateway asked the provider for a usage chunk the client didn't ask for.
    pub strip_usage: bool,
    /// The request may fall back to other models: the nonce of its handoff, which the
    /// upstream filter repeats in the answered-by header.
    pub nonce: Option<u64>,
}

/// A header edit on the way upstream, in the order to apply. Values are borrowed from the
/// configuration (formatted once) wherever they can be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderEdit<'a> {
    Set(&'static str, Cow<'a, [u8]>),
    Remove(&'static str),
}

/// Everything the body phase decided.
#[derive(Debug, Clone, PartialEq)]
pub struct Routed<'a> {
    pub served: Served,
    /// `(replaced, prefix)`: swap the first `replaced` bytes of the body for `prefix`.
    pub splice: Option<(usize, Vec<u8>)>,
    /// Header edits, after the body edit (content-length first, when the length changed).
    pub headers: Vec<HeaderEdit<'a>>,
    /// The pick left the model it would have chosen with every circuit closed:
    /// `(from, to)` for the failover counter.
    pub failover: Option<(ModelId, ModelId)>,
    /// For the upstream filter of later attempts, when the model has a `fallback` list.
    pub handoff: Option<Handoff>,
}

/// The body-phase inputs that don't come from the body.
pub struct RouteInput<'a> {
    pub endpoint: Endpoint,
    pub sticky_key: Option<&'a [u8]>,
    /// 64 random bits for a weighted pick (unused when sticky).
    pub roll: u64,
    /// 64 random bits that mark this request's handoff.
    pub nonce: u64,
    pub now_ms: u64,
    /// `Bearer <key>` when the filter injects the key; `None` when missing or injected upstream.
    pub authorization: Option<&'a [u8]>,
    pub client_authorization: bool,
}

/// Resolves the requested model, picks a target, rewrites the body and decides the upstream
/// headers. Errors are answered locally.
pub fn route<'a, S: SharedStore>(
    cfg: &'a Config,
    breakers: &Breakers<S>,
    body: &[u8],
    input: &RouteInput<'a>,
) -> Result<Routed<'a>, GatewayError> {
    let parsed = body::parse(body).map_err(|e| GatewayError::InvalidRequest(e.to_string()))?;
    let resolution = routing::resolve(cfg, parsed.model());
    let mut failover = None;
    let (route, target, probe) = match resolution {
        Resolution::Reject => {
            let requested = parsed.model().unwrap_or("");
            return Err(GatewayError::ModelNotFound(truncate(requested, MAX_ECHO)));
        }
        Resolution::Passthrough => (RouteLabel::Passthrough, None, false),
        // The client's preferred model is honoured even while its circuit is open, unless it
        // has fallbacks: then the first one that admits the request serves it.
        Resolution::Model(m) => {
            let (m, probe) = direct(cfg, m, breakers, input.now_ms)?;
            (RouteLabel::Direct, Some(m), probe)
        }
        Resolution::Route(r) => {
            let chooser = match input.sticky_key {
                Some(key) => Chooser::Sticky(key),
                None => Chooser::Roll(input.roll),
            };
            let picked = routing::pick(cfg, r, breakers, chooser, input.now_ms)?;
            failover = picked.failover_from.map(|from| (from, picked.model));
            (RouteLabel::Route(r), Some(picked.model), picked.probe)
        }
    };

    let mut headers = Vec::with_capacity(6);
    let mut splice = None;
    let mut strip_usage = false;
    let mut handoff = None;
    let model = target.map(|m| (m, cfg.model(m)));
    if let Some((id, t)) = model {
        let plan = plan_for(cfg, id);
        let rewrite = body::rewrite_prefix(body, &parsed, input.endpoint, &plan)
            .map_err(|e| GatewayError::InvalidRequest(e.to_string()))?;
        strip_usage = rewrite.usage_injected;
        if let Some((replaced, prefix)) = rewrite.splice {
            // Setting the body does not fix content-length (docs/design.md, "Envoy facts the
            // code depends on"): without this the upstream reads the extra bytes as the next
            // request on the connection.
            let len = body.len().saturating_sub(replaced) + prefix.len();
            headers.push(HeaderEdit::Set(
                "content-length",
                Cow::Owned(len.to_string().into_bytes()),
            ));
            splice = Some((replaced, prefix));
        }
        if !t.fallback.is_empty() {
            let (replaced, sent) = splice.as_ref().map_or((0, 0), |(r, p)| (*r, p.len()));
            handoff = Some(Handoff {
                nonce: input.nonce,
                endpoint: input.endpoint,
                first: t.key.clone(),
                started_ms: input.now_ms,
                probe,
                original_prefix: body.get(..replaced).unwrap_or_default().to_vec(),
                sent_prefix_len: sent,
                sent_len: body.len().saturating_sub(replaced) + sent,
            });
        }
    }

    // With a fallback list, the model's timeout header is its plan's longest (see
    // `config::Model::timeout_header`): Envoy has one per-try timeout per request.
    let (cluster, per_try) = match model.map(|(_, t)| t) {
        Some(t) => (&t.cluster, t.timeout_header.as_str()),
        None => (&cfg.cluster, cfg.timeout_header()),
    };
    match (cfg.key_injection, input.authorization) {
        (KeyInjection::Filter, Some(auth)) => {
            headers.push(HeaderEdit::Set("authorization", Cow::Borrowed(auth)));
        }
        (KeyInjection::Filter, None) => return Err(GatewayError::Misconfigured),
        // The cluster's upstream filter sets the key per attempt; the client's own
        // `authorization` never reaches the provider either way.
        (KeyInjection::Upstream, _) => {
            if input.client_authorization {
                headers.push(HeaderEdit::Remove("authorization"));
            }
            headers.push(HeaderEdit::Set(INJECT_KEY_HEADER, Cow::Borrowed(b"1")));
        }
    }
    headers.push(HeaderEdit::Set(
        CLUSTER_HEADER,
        Cow::Borrowed(cluster.as_bytes()),
    ));
    headers.push(HeaderEdit::Set(
        PER_TRY_TIMEOUT_HEADER,
        Cow::Borrowed(per_try.as_bytes()),
    ));
    headers.push(HeaderEdit::Set(
        TIMEOUT_HEADER,
        Cow::Borrowed(cfg.max_duration_header().as_bytes()),
    ));
    headers.push(HeaderEdit::Set(
        MAX_RETRIES_HEADER,
        Cow::Borrowed(cfg.max_retries_header().as_bytes()),
    ));

    let model_label = match target {
        Some(m) => ModelLabel::Model(m),
        None => ModelLabel::Passthrough,
    };
    Ok(Routed {
        served: Served {
            route,
            model: model_label,
            probe,
            stream: parsed.stream(),
            strip_usage,
            nonce: handoff.as_ref().map(|h| h.nonce),
        },
        splice,
        headers,
        failover,
        handoff,
    })
}

/// A request for a model by name: that model, even while its circuit is open, unless it has
/// fallbacks; then the first of them (in order) that admits the request, or `503` when none.
fn direct<S: SharedStore>(
    cfg: &Config,
    model: ModelId,
    breakers: &Breakers<S>,
    now_ms: u64,
) -> Result<(ModelId, bool), GatewayError> {
    let m = cfg.model(model);
    if m.fallback.is_empty() {
        return Ok((model, false));
    }
    breakers.refresh();
    let candidates = std::iter::once(model).chain(m.fallback.iter().copied());
    for candidate in candidates.clone() {
        if !breakers.available(candidate, now_ms) {
            continue;
        }
        match breakers.admit(candidate, now_ms) {
            Admission::Rejected => continue,
            admission => return Ok((candidate, admission == Admission::Probe)),
        }
    }
    Err(GatewayError::NoHealthyTarget {
        route: m.name.clone(),
        retry_after_s: breakers.retry_after_s(candidates, now_ms),
    })
}

/// The breaker's verdict on a finished request, from the status the client got and Envoy's
/// `response.code_details`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The client went away before an answer: says nothing about the model.
    Ignore,
    Success,
    Failure(crate::metrics::ErrorType),
}

impl Served {
    /// After a fallback: the model that answered serves the request (headers, tokens, cost,
    /// outcome). The first model's probe, if it was one, was settled by the attempt that
    /// failed.
    pub fn answered_by(self, model: ModelId) -> Served {
        match self.model {
            ModelLabel::Model(m) if m != model => Served {
                model: ModelLabel::Model(model),
                probe: false,
                ..self
            },
            _ => self,
        }
    }
}

impl Verdict {
    pub fn of(status: u64, details: &str) -> Verdict {
        if status == 0 || details.starts_with("downstream_") {
            return Verdict::Ignore;
        }
        let code = u32::try_from(status).unwrap_or(0);
        match crate::metrics::ErrorType::classify(code, details) {
            Some(e) => Verdict::Failure(e),
            None => Verdict::Success,
        }
    }

    /// The breaker outcome, when the request counts.
    pub fn outcome(self) -> Option<Outcome> {
        match self {
            Verdict::Ignore => None,
            Verdict::Success => Some(Outcome::Success),
            Verdict::Failure(_) => Some(Outcome::Failure),
        }
    }
}

/// Whether Envoy's response details can change the verdict: an error, a stream (a 200 cut by a
/// timeout or reset), or no response headers at all (status 0). Reading them is a
/// data-returning host call, skipped for a plain success.
pub fn needs_details(status: u64, stream: bool) -> bool {
    !(200..300).contains(&status) || stream
}

/// At most `max` bytes of `s` (on a character boundary), with `…` when cut.
pub fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

#[cfg(test)]
mod tests;
