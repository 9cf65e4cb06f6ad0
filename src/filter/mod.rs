//! The proxy-wasm glue: the only code that talks to Envoy. Each callback reads from the
//! host, calls the pure modules, applies the returned edits and returns an `Action`.
//! Every host call's error is handled (see [`host`]): no input can trap the VM.

mod host;
mod http;
mod stores;
mod upstream;

use crate::breaker::Breakers;
use crate::config::{self, Config, KeyInjection};
use crate::metrics::Series;
use crate::response::Costs;
use crate::rng::SplitMix64;
use crate::stats::Stats;
use log::{error, info, warn};
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{BufferType, ContextType, LogLevel};
use std::cell::RefCell;
use std::rc::Rc;
use stores::{HostStore, Metrics};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Trace);
    std::panic::set_hook(Box::new(|info| {
        // Reaching this is a bug (every input is handled); say where before the VM traps.
        error!("ai-gateway: panic (please report): {info}");
    }));
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root::default()) });
}}

/// Everything a request needs, built once per configuration.
pub(crate) struct Runtime {
    cfg: Config,
    /// `Bearer <key>`; `None` when the key is missing or unusable (→ 500), or when the
    /// cluster's upstream filters inject it (`key_injection: upstream`).
    authorization: Option<Vec<u8>>,
    models_body: Vec<u8>,
    /// Paths where `GET` returns `models_body` (`<prefix>/models` of each configured prefix).
    models_paths: Vec<String>,
    metrics: Metrics,
    costs: Costs,
    breakers: Breakers<HostStore>,
}

impl Stats for Runtime {
    fn add(&self, series: Series, n: u64) {
        self.metrics.add(&self.cfg, series, n);
    }

    fn record(&self, series: Series, value: u64) {
        self.metrics.record(&self.cfg, series, value);
    }
}

/// The plugin `root_id` that makes this `.wasm` the upstream filter of a cluster (one context
/// per attempt: fallback to another model); any other root id is the downstream filter.
pub const UPSTREAM_ROOT_ID: &str = "ai_gateway_upstream";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Role {
    #[default]
    Downstream,
    Upstream,
}

#[derive(Default)]
struct Root {
    runtime: Option<Rc<Runtime>>,
    rng: Option<Rc<RefCell<SplitMix64>>>,
    role: Role,
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
        self.role = match host::property(&["plugin_root_id"]) {
            Ok(Some(id)) if id == UPSTREAM_ROOT_ID.as_bytes() => Role::Upstream,
            _ => Role::Downstream,
        };
        let (authorization, key) = match cfg.key_injection {
            // The upstream role never sets the key: the downstream filter (or the cluster's
            // credential injector) did, and request headers carry over between attempts.
            _ if self.role == Role::Upstream => (None, "not needed (upstream filter)"),
            KeyInjection::Filter => {
                let a = bearer_from_env(&cfg.api_key_env);
                let state = if a.is_some() { "present" } else { "MISSING" };
                (a, state)
            }
            // The cluster's upstream filters set it on every attempt; nothing to read here.
            KeyInjection::Upstream => (None, "injected upstream (key_injection: upstream)"),
        };
        info!(
            "ai-gateway: configured as the {} filter: {} model(s), {} route(s), unknown_models={:?}, provider key {}",
            match self.role {
                Role::Downstream => "downstream",
                Role::Upstream => "upstream (fallback attempts)",
            },
            cfg.models.len(),
            cfg.routes.len(),
            cfg.unknown_models,
            key
        );
        let runtime = Runtime {
            authorization,
            models_body: crate::models_endpoint::render(&cfg),
            models_paths: models_paths(&cfg),
            metrics: Metrics::default(),
            costs: Costs::new(cfg.models.len()),
            breakers: Breakers::new(&cfg, HostStore),
            cfg,
        };
        // Publish the circuit gauges as they stand (state survives reconfiguration and VM
        // reloads: it lives in the host's shared data).
        runtime.breakers.refresh();
        for model in runtime.cfg.model_ids() {
            let open = u64::from(runtime.breakers.is_open(model));
            runtime.record(Series::CircuitOpen(model), open);
        }
        self.runtime = Some(Rc::new(runtime));
        true
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        let rng = self
            .rng
            .clone()
            .unwrap_or_else(|| Rc::new(RefCell::new(SplitMix64::new(host::now_ms()))));
        match self.role {
            Role::Downstream => Some(Box::new(http::Http::new(self.runtime.clone(), rng))),
            Role::Upstream => Some(Box::new(upstream::Upstream::new(self.runtime.clone()))),
        }
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
        warn!(
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
        if let Some(prefix) = crate::body::Endpoint::prefix_of(path) {
            let p = format!("{prefix}/models");
            if !out.contains(&p) {
                out.push(p);
            }
        }
    }
    out
}
