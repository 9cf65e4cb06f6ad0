//! ai-gateway-filter: an AI gateway that runs inside Envoy as a proxy-wasm HTTP filter.
//!
//! Data flows one way: host bytes → [`filter`] → pure functions → edits → [`filter`] → host.
//! Nothing outside `filter/` talks to the host, so every module below is unit-tested natively
//! with `cargo test`; only `filter/` is compiled for (and only for) `wasm32`.

pub mod body;
pub mod breaker;
pub mod config;
pub mod errors;
pub mod fallback;
pub mod header_map;
pub mod metrics;
pub mod models_endpoint;
pub mod request;
pub mod response;
pub mod rng;
pub mod routing;
pub mod stats;
pub mod store;
pub mod usage;

mod bytes;
mod sort;

#[cfg(test)]
mod testing;

#[cfg(all(target_arch = "wasm32", target_os = "wasi"))]
mod filter;

/// The crate version, logged by the filter when its VM starts.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
