//! The plugin configuration as operators write it (docs/design.md, "Configuration contract"):
//! serde structs that reject unknown fields. Nothing here is trusted; [`super::compile`] turns
//! it into the validated runtime [`super::Config`].

use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayConfig {
    pub models: Vec<ModelConfig>,
    #[serde(default)]
    pub routes: Vec<RouteConfig>,
    #[serde(default)]
    pub default_route: Option<String>,
    #[serde(default)]
    pub unknown_models: UnknownModels,
    #[serde(default)]
    pub failover_threshold: Option<f64>,
    #[serde(default)]
    pub failover: Option<FailoverConfig>,
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    #[serde(default)]
    pub upstream: Option<UpstreamConfig>,
    #[serde(default)]
    pub sticky: Option<StickyConfig>,
    #[serde(default)]
    pub stream_usage: StreamUsage,
    #[serde(default)]
    pub paths: Option<Vec<String>>,
    #[serde(default)]
    pub serve_models_endpoint: Option<bool>,
    #[serde(default)]
    pub prices: BTreeMap<String, PriceConfig>,
}

/// One model the gateway may send upstream.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    pub name: String,
    pub version: String,
    #[serde(default)]
    pub max_tokens: Option<u64>,
    #[serde(default)]
    pub temperature: Option<f64>,
    #[serde(default)]
    pub weight: Option<f64>,
    #[serde(default)]
    pub cluster: Option<String>,
    #[serde(default)]
    pub system_prompt: Option<String>,
    #[serde(default)]
    pub timeout_ms: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    pub name: String,
    pub targets: Vec<TargetConfig>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetConfig {
    pub model: String,
    #[serde(default)]
    pub version: Option<String>,
    pub weight: f64,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UnknownModels {
    #[default]
    Route,
    Reject,
    Passthrough,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StreamUsage {
    #[default]
    Inject,
    Off,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailoverConfig {
    #[serde(default)]
    pub window_s: Option<u64>,
    #[serde(default)]
    pub min_requests: Option<u32>,
    #[serde(default)]
    pub cooldown_s: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamConfig {
    #[serde(default)]
    pub cluster: Option<String>,
    #[serde(default)]
    pub api_key_env: Option<String>,
    #[serde(default)]
    pub key_injection: KeyInjection,
}

/// Who puts the provider key on the upstream request.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyInjection {
    /// The filter sets `authorization: Bearer <key>` from `api_key_env` (the default).
    #[default]
    Filter,
    /// An upstream HTTP filter on the cluster (Envoy's `credential_injector`) sets it on every
    /// attempt of the requests the filter marks with `x-ai-gateway-inject-key` (the shipped
    /// configs move the marker into dynamic metadata before the router and match on that);
    /// the filter removes the client's `authorization`. The key then never passes the
    /// router, whose debug log prints the request headers.
    Upstream,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StickyConfig {
    pub header: String,
}

/// USD per million tokens.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceConfig {
    pub input: f64,
    pub output: f64,
}
