//! The proxy-wasm glue: the only code that talks to Envoy. Each callback reads from the
//! host, calls the pure modules, applies the returned edits and returns an `Action`.
//! Every host call's error is handled (see [`host`]): no input can trap the VM.

mod host;

use crate::body::{self, Endpoint, Plan};
use crate::config::{self, Config, EndpointKind, ModelId};
use crate::errors::GatewayError;
use crate::rng::SplitMix64;
use crate::routing::{self, Resolution};
use log::{error, info, warn};
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, BufferType, ContextType, LogLevel, MapType};
use rand_core::RngCore;
use std::cell::RefCell;
use std::rc::Rc;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Trace);
    std::panic::set_hook(Box::new(|info| {
        // Reaching this is a bug (every input is handled); say where before the VM traps.
        error!("ai-gateway: panic (please report): {info}");
    }));
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root::default()) });
}}

/// Headers the filter owns on the way upstream; client-sent copies are removed first.
const CLUSTER_HEADER: &str = "x-ai-gateway-cluster";
const TIMEOUT_HEADER: &str = "x-envoy-upstream-rq-timeout-ms";
/// Other Envoy control headers a client must not use to change how the provider is called.
const CLIENT_CONTROL_HEADERS: [&str; 5] = [
    CLUSTER_HEADER,
    TIMEOUT_HEADER,
    "x-envoy-upstream-rq-per-try-timeout-ms",
    "x-envoy-max-retries",
    "x-envoy-retry-on",
];
const JSON: &[u8] = b"application/json";

// === impl Root ===

/// Everything a request needs, built once per configuration.
struct Runtime {
    cfg: Config,
    /// `Bearer <key>`; `None` when the key is missing or unusable (→ 500).
    authorization: Option<Vec<u8>>,
    models_body: Vec<u8>,
    /// Paths where `GET` returns `models_body` (`<prefix>/models` of each configured prefix).
    models_paths: Vec<String>,
}

#[derive(Default)]
struct Root {
    runtime: Option<Rc<Runtime>>,
    rng: Option<Rc<RefCell<SplitMix64>>>,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_vm_start(&mut self, _vm_configuration_size: usize) -> bool {
        info!(
            "ai-gateway-filter {} ({}) starting",
            crate::VERSION,
            env!("AI_GATEWAY_GIT_HASH")
        );
        self.rng = Some(Rc::new(RefCell::new(SplitMix64::from_host_entropy(
            host::now_ms() ^ 0x5EED,
        ))));
        true
    }

    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        let bytes = match host::buffer(BufferType::PluginConfiguration, 0, usize::MAX) {
            Ok(Some(b)) => b,
            Ok(None) => Vec::new(),
            Err(s) => {
                error!("ai-gateway: could not read the plugin configuration (status {s:?})");
                return false;
            }
        };
        let cfg = match config::parse(&bytes) {
            Ok(cfg) => cfg,
            Err(errors) => {
                for e in &errors.0 {
                    error!("ai-gateway: invalid configuration: {e}");
                }
                error!(
                    "ai-gateway: configuration refused ({} error(s)); Envoy keeps the last good one",
                    errors.0.len()
                );
                return false;
            }
        };
        let authorization = bearer_from_env(&cfg.api_key_env);
        let models_body = crate::models_endpoint::render(&cfg);
        let models_paths = models_paths(&cfg);
        info!(
            "ai-gateway: configured {} model(s), {} route(s), unknown_models={:?}, key {}",
            cfg.models.len(),
            cfg.routes.len(),
            cfg.unknown_models,
            if authorization.is_some() {
                "present"
            } else {
                "MISSING"
            }
        );
        self.runtime = Some(Rc::new(Runtime {
            cfg,
            authorization,
            models_body,
            models_paths,
        }));
        true
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        let rng = self
            .rng
            .clone()
            .unwrap_or_else(|| Rc::new(RefCell::new(SplitMix64::new(host::now_ms()))));
        Some(Box::new(Http {
            runtime: self.runtime.clone(),
            rng,
            state: State::Idle,
            endpoint: EndpointKind::Other,
            sticky_key: None,
            served: None,
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

/// Reads the provider key from the VM environment. Never logs the key itself.
fn bearer_from_env(var: &str) -> Option<Vec<u8>> {
    let key = match std::env::var(var) {
        Ok(k) => k,
        Err(_) => {
            error!(
                "ai-gateway: upstream.api_key_env: {var} is not set in the VM environment \
                 (vm_config.environment_variables.host_env_keys); requests will get 500 gateway_misconfigured"
            );
            return None;
        }
    };
    // Secrets mounted from files often end with a newline.
    let key = key.trim();
    if key.is_empty() {
        error!("ai-gateway: upstream.api_key_env: {var} is empty; requests will get 500 gateway_misconfigured");
        return None;
    }
    if !key.bytes().all(|b| b.is_ascii_graphic()) {
        error!(
            "ai-gateway: upstream.api_key_env: {var} contains characters that can't be sent in an \
             HTTP header (spaces, control or non-ASCII characters); requests will get 500 gateway_misconfigured"
        );
        return None;
    }
    let mut value = Vec::with_capacity(7 + key.len());
    value.extend_from_slice(b"Bearer ");
    value.extend_from_slice(key.as_bytes());
    Some(value)
}

fn models_paths(cfg: &Config) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    if !cfg.serve_models_endpoint {
        return out;
    }
    for (path, _) in &cfg.paths {
        for suffix in [
            "/chat/completions",
            "/completions",
            "/embeddings",
            "/responses",
        ] {
            if let Some(prefix) = path.strip_suffix(suffix) {
                let p = format!("{prefix}/models");
                if !out.contains(&p) {
                    out.push(p);
                }
                break;
            }
        }
    }
    out
}

// === impl Http ===

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Not (yet) a request the gateway handles.
    Idle,
    /// Headers held; waiting for the whole body.
    AwaitingBody,
    /// Routed upstream.
    Forwarded,
    /// Answered locally.
    Answered,
}

/// What served the request, for the response headers (and, later, metrics).
#[derive(Debug, Clone, Copy)]
struct Served {
    model: Option<ModelId>,
    resolution: Resolution,
}

struct Http {
    runtime: Option<Rc<Runtime>>,
    rng: Rc<RefCell<SplitMix64>>,
    state: State,
    endpoint: EndpointKind,
    sticky_key: Option<Vec<u8>>,
    served: Option<Served>,
}

impl Context for Http {}

fn request_header(name: &str) -> Option<Vec<u8>> {
    host::header(MapType::HttpRequestHeaders, name)
        .ok()
        .flatten()
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

impl Http {
    fn answer(&mut self, err: &GatewayError) -> Action {
        self.state = State::Answered;
        let retry_after = err.retry_after_s().map(|s| s.max(1).to_string());
        let mut headers: Vec<(&str, &[u8])> = vec![("content-type", JSON)];
        if let Some(r) = &retry_after {
            headers.push(("retry-after", r.as_bytes()));
        }
        let details = match err {
            GatewayError::InvalidRequest(_) => "ai_gateway_invalid_request",
            GatewayError::ModelNotFound(_) => "ai_gateway_model_not_found",
            GatewayError::NoHealthyTarget { .. } => "ai_gateway_no_healthy_target",
            GatewayError::Misconfigured => "ai_gateway_misconfigured",
        };
        if let Err(s) = host::send_response(err.status(), details, &headers, &err.body()) {
            warn!("ai-gateway: could not send the local reply (status {s:?})");
            return Action::Continue;
        }
        Action::Pause
    }

    /// Strips the headers a client must not set; true when the headers are writable.
    fn strip_client_control_headers(&self) -> bool {
        CLIENT_CONTROL_HEADERS
            .iter()
            .all(|h| host::remove_header(MapType::HttpRequestHeaders, h).is_ok())
    }

    fn on_body_complete(&mut self, rt: &Runtime, body_size: usize) -> Action {
        let body = match host::buffer(BufferType::HttpRequestBody, 0, body_size) {
            Ok(b) => b.unwrap_or_default(),
            Err(s) => {
                warn!("ai-gateway: could not read the request body (status {s:?})");
                return self.answer(&GatewayError::InvalidRequest(
                    "the request body could not be read".into(),
                ));
            }
        };
        match self.route(rt, &body) {
            Ok(action) => action,
            Err(e) => self.answer(&e),
        }
    }

    /// Resolves, picks, rewrites and sets the upstream headers.
    fn route(&mut self, rt: &Runtime, body: &[u8]) -> Result<Action, GatewayError> {
        let cfg = &rt.cfg;
        let parsed = body::parse(body).map_err(|e| GatewayError::InvalidRequest(e.to_string()))?;
        let resolution = routing::resolve(cfg, parsed.model());
        let model = match resolution {
            Resolution::Reject => {
                let requested = parsed.model().unwrap_or("");
                return Err(GatewayError::ModelNotFound(truncate(requested, 200)));
            }
            Resolution::Passthrough => None,
            Resolution::Model(m) => Some(m),
            Resolution::Route(r) => {
                let route = cfg.routes.get(r).ok_or(GatewayError::Misconfigured)?;
                let picked = match &self.sticky_key {
                    Some(key) => routing::pick_sticky(route, |_| true, key),
                    None => {
                        let roll = self.rng.borrow_mut().next_u64();
                        routing::pick_weighted(route, |_| true, roll)
                    }
                };
                Some(picked.ok_or_else(|| GatewayError::NoHealthyTarget {
                    route: route.name.clone(),
                    retry_after_s: 1,
                })?)
            }
        };

        let target = model.and_then(|m| cfg.models.get(m));
        if let Some(t) = target {
            let plan = Plan {
                model: Some(&t.name),
                max_tokens: t.max_tokens,
                temperature: t.temperature,
                system_prompt: t.system_prompt.as_deref(),
                include_usage: cfg.stream_usage,
            };
            let rewrite = body::rewrite(body, &parsed, endpoint_of(self.endpoint), &plan)
                .map_err(|e| GatewayError::InvalidRequest(e.to_string()))?;
            if let Some(new_body) = rewrite.body {
                if let Err(s) =
                    host::set_buffer(BufferType::HttpRequestBody, 0, body.len(), &new_body)
                {
                    warn!("ai-gateway: could not replace the request body (status {s:?})");
                    return Err(GatewayError::InvalidRequest(
                        "the request body could not be rewritten".into(),
                    ));
                }
                // set_http_request_body does not fix content-length (ENVOY-NOTES): without
                // this the upstream reads the extra bytes as the next request.
                set_request_header("content-length", new_body.len().to_string().as_bytes());
            }
        }

        let (cluster, timeout) = match target {
            Some(t) => (t.cluster.as_str(), t.timeout_header.as_str()),
            None => (cfg.cluster.as_str(), cfg.timeout_header()),
        };
        let Some(auth) = rt.authorization.as_deref() else {
            return Err(GatewayError::Misconfigured);
        };
        let ok = set_request_header("authorization", auth)
            && set_request_header(CLUSTER_HEADER, cluster.as_bytes())
            && set_request_header(TIMEOUT_HEADER, timeout.as_bytes());
        if !ok {
            return Err(GatewayError::InvalidRequest(
                "the request could not be routed".into(),
            ));
        }
        self.served = Some(Served { model, resolution });
        self.state = State::Forwarded;
        Ok(Action::Continue)
    }
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

impl HttpContext for Http {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        let Some(rt) = self.runtime.clone() else {
            return Action::Continue;
        };
        if !self.strip_client_control_headers() {
            // Headers not writable (should not happen in the request-headers phase).
            return Action::Continue;
        }
        let method = request_header(":method").unwrap_or_default();
        let raw_path = request_header(":path").unwrap_or_default();
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
        if rt.authorization.is_none() {
            return self.answer(&GatewayError::Misconfigured);
        }
        if let Some(enc) = request_header("content-encoding") {
            if !enc.eq_ignore_ascii_case(b"identity") {
                return self.answer(&GatewayError::InvalidRequest(format!(
                    "compressed request bodies are not supported (content-encoding: {}); send plain JSON",
                    truncate(&String::from_utf8_lossy(&enc), 40)
                )));
            }
        }
        if end_of_stream {
            return self.answer(&GatewayError::InvalidRequest(
                "the request body is empty; expected a JSON object".into(),
            ));
        }
        if let Some(h) = &rt.cfg.sticky_header {
            self.sticky_key = request_header(h).filter(|v| !v.is_empty());
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
        let size = host::buffer(BufferType::HttpRequestBody, 0, usize::MAX)
            .ok()
            .flatten()
            .map_or(0, |b| b.len());
        self.on_body_complete(&rt, size)
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        if self.state != State::Forwarded {
            return Action::Continue;
        }
        let (Some(rt), Some(served)) = (self.runtime.as_ref(), self.served) else {
            return Action::Continue;
        };
        let cfg = &rt.cfg;
        let route = routing::route_label(cfg, served.resolution);
        if let Some(m) = served.model.and_then(|m| cfg.models.get(m)) {
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
        Action::Continue
    }
}
