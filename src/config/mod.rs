//! Configuration in two phases: the operator's JSON ([`schema`], serde with unknown fields
//! rejected) → [`compile`] → [`Config`], a runtime type that can't hold a bad state: names are
//! resolved to ids ([`ModelId`], [`RouteId`]: made only here, so `cfg.model(id)` and
//! `cfg.route(id)` need no fallback), weights summed, SemVer parsed, defaults applied, and
//! per-request strings (timeout header values, the `/v1/models` body) formatted once.
//!
//! The same code runs in the filter's `on_configure` and in the `ai-gateway validate` CLI.
//!
//! Layout: `schema.rs` (what operators write), `compile.rs` (the compiler, one function per
//! phase), `runtime.rs` (the validated types the filter reads), `error.rs`. Everything is
//! re-exported here: callers name `crate::config::X`.

mod compile;
mod error;
mod runtime;
pub mod schema;

pub use crate::usage::Price;
pub use compile::{compile, parse, parse_schema};
pub use error::{ConfigError, ConfigErrors, UnknownField};
pub use runtime::{
    Breaker, Causes, Config, Model, ModelId, Named, Route, RouteId, Target, UnresolvedTarget,
    CAUSES,
};
pub use schema::KeyInjection;
pub use schema::UnknownModels as UnknownModelsPolicy;

/// Defaults of the optional fields (docs/design.md, "Configuration contract").
pub mod defaults {
    pub const FAILOVER_THRESHOLD: f64 = 0.5;
    pub const WINDOW_S: u64 = 30;
    pub const MIN_REQUESTS: u32 = 20;
    pub const COOLDOWN_S: u64 = 30;
    /// Per attempt, until the response starts.
    pub const TIMEOUT_MS: u64 = 30_000;
    /// Between two chunks of a started response.
    pub const STREAM_IDLE_TIMEOUT_MS: u64 = 60_000;
    /// The whole request: 0 = no cap.
    pub const MAX_DURATION_MS: u64 = 0;
    /// Every cause falls back.
    pub const FALLBACK_ON: super::Causes = super::Causes::ALL;
    /// All attempts of one request together.
    pub const MAX_ATTEMPTS: u32 = 3;
    pub const CLUSTER: &str = "holysheep";
    pub const API_KEY_ENV: &str = "HOLYSHEEP_API_KEY";
    pub const PATHS: [&str; 4] = [
        "/v1/chat/completions",
        "/v1/completions",
        "/v1/embeddings",
        "/v1/responses",
    ];
}

/// Route labels for requests that were not sent to a named route.
pub mod route_labels {
    /// The implicit route formed by `models[].weight` (no `default_route`).
    pub const IMPLICIT: &str = "_default";
    /// A configured model requested by its own name.
    pub const DIRECT: &str = "_direct";
    /// `unknown_models: passthrough`: the body went upstream untouched.
    pub const PASSTHROUGH: &str = "_passthrough";
}

#[cfg(test)]
mod tests;
