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
    /// Per attempt, until the response starts (first response byte).
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    /// Between two chunks of a response that has started.
    #[serde(default)]
    pub stream_idle_timeout_ms: Option<u64>,
    /// A cap on the whole request, every attempt included (0: none).
    #[serde(default)]
    pub max_duration_ms: Option<u64>,
    /// The causes of a failed attempt that move the request to the next model of its
    /// `fallback` list (`5xx`, `429`, `timeout`, `reset`, `connect_failure`).
    #[serde(default)]
    pub fallback_on: Option<Vec<CauseName>>,
    /// Every attempt of one request together (endpoints and models).
    #[serde(default)]
    pub max_attempts: Option<u64>,
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
    /// Per attempt, until the response starts (default: the global `timeout_ms`).
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    /// The models to try next, in order, when an attempt at this one fails with a cause of
    /// `fallback_on`: `"name"` (that name's highest release) or `"name@version"`.
    #[serde(default)]
    pub fallback: Option<Vec<String>>,
}

/// An entry of `fallback_on`, as written: a string, or a number for the status codes
/// (YAML reads `[5xx, 429]` as a string and a number; Istio hands both on as JSON).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CauseName(pub String);

impl<'de> Deserialize<'de> for CauseName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<CauseName, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = CauseName;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a cause (5xx, 429, timeout, reset, connect_failure)")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<CauseName, E> {
                Ok(CauseName(v.to_owned()))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<CauseName, E> {
                Ok(CauseName(v.to_string()))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<CauseName, E> {
                Ok(CauseName(v.to_string()))
            }
        }
        d.deserialize_any(Visitor)
    }
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

// === field names ===

/// One step of a path into the configuration's JSON: an object member or an array item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathSegment {
    Key(String),
    Index(usize),
}

/// The field names of a schema struct, as its `Deserialize` derive knows them (read from the
/// derive itself, so they can't drift from the structs above).
pub fn fields_of<'de, T: Deserialize<'de>>() -> &'static [&'static str] {
    match T::deserialize(probe::Fields) {
        Err(probe::Found(Some(fields))) => fields,
        _ => &[],
    }
}

/// The field names of the schema struct found at `path` in a configuration (`[]`: the
/// top-level object), or `None` where there is no struct (a list, a map of prices, a value).
pub fn fields_at(path: &[PathSegment]) -> Option<&'static [&'static str]> {
    use PathSegment::{Index, Key};
    let fields = match path {
        [] => fields_of::<GatewayConfig>(),
        [Key(k), Index(_)] if k == "models" => fields_of::<ModelConfig>(),
        [Key(k), Index(_)] if k == "routes" => fields_of::<RouteConfig>(),
        [Key(k), Index(_), Key(t), Index(_)] if k == "routes" && t == "targets" => {
            fields_of::<TargetConfig>()
        }
        [Key(k)] if k == "failover" => fields_of::<FailoverConfig>(),
        [Key(k)] if k == "upstream" => fields_of::<UpstreamConfig>(),
        [Key(k)] if k == "sticky" => fields_of::<StickyConfig>(),
        [Key(k), Key(_)] if k == "prices" => fields_of::<PriceConfig>(),
        _ => return None,
    };
    Some(fields)
}

/// A deserializer that only answers "which fields?": the derive passes its field list to
/// `deserialize_struct`, which hands it back as the error.
mod probe {
    use serde::de::{self, Visitor};
    use std::fmt;

    pub struct Fields;

    #[derive(Debug)]
    pub struct Found(pub Option<&'static [&'static str]>);

    impl fmt::Display for Found {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("field-name probe")
        }
    }

    impl std::error::Error for Found {}

    impl de::Error for Found {
        fn custom<T: fmt::Display>(_: T) -> Self {
            Found(None)
        }
    }

    impl<'de> de::Deserializer<'de> for Fields {
        type Error = Found;

        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Found> {
            Err(Found(None))
        }

        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Found> {
            Err(Found(Some(fields)))
        }

        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
            byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map enum
            identifier ignored_any
        }
    }
}
