//! Configuration in two phases: the operator's JSON ([`schema`], serde with unknown fields
//! rejected) → [`compile`] → [`Config`], a runtime type that can't hold a bad state: names are
//! resolved to indices, weights summed, SemVer parsed, defaults applied, and per-request
//! strings (timeout header values, the `/v1/models` body) formatted once.
//!
//! The same code runs in the filter's `on_configure` and in the `ai-gateway validate` CLI.

pub mod schema;

pub use schema::KeyInjection;
use schema::{GatewayConfig, StreamUsage, UnknownModels};
use std::collections::HashMap;
use std::fmt;

pub use schema::UnknownModels as UnknownModelsPolicy;

/// Defaults of the SPEC's schema.
pub mod defaults {
    pub const FAILOVER_THRESHOLD: f64 = 0.5;
    pub const WINDOW_S: u64 = 30;
    pub const MIN_REQUESTS: u32 = 20;
    pub const COOLDOWN_S: u64 = 30;
    pub const TIMEOUT_MS: u64 = 30_000;
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

/// Upper bounds that keep values meaningful (and label values short).
const MAX_NAME_LEN: usize = 128;
const MAX_TIMEOUT_MS: u64 = 24 * 3600 * 1000;
const MAX_WINDOW_S: u64 = 24 * 3600;
/// Price ceiling: USD 1,000,000 per million tokens.
const MAX_PRICE_USD: f64 = 1_000_000.0;

// === errors ===

/// One configuration error: the field's path and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub path: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Every error found in a configuration (an invalid configuration is refused as a whole).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

// === the runtime configuration ===

/// Index of a model in [`Config::models`].
pub type ModelId = usize;
/// Index of a route in [`Config::routes`].
pub type RouteId = usize;

pub use crate::usage::Price;

/// A model the gateway may send upstream: one (name, version) pair.
#[derive(Debug, Clone)]
pub struct Model {
    pub name: String,
    pub version: semver::Version,
    /// The version as the operator wrote it (for headers and metric labels).
    pub version_label: String,
    pub max_tokens: Option<u64>,
    pub temperature: Option<f64>,
    pub weight: f64,
    pub cluster: String,
    pub system_prompt: Option<String>,
    pub timeout_ms: u64,
    /// `timeout_ms` formatted once for `x-envoy-upstream-rq-timeout-ms`.
    pub timeout_header: String,
    pub price: Option<Price>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Target {
    pub model: ModelId,
    pub weight: f64,
    /// Hash of `name@version`: the target's identity for sticky (rendezvous) hashing, so a
    /// user's target depends only on the targets themselves, not on their order.
    pub seed: u64,
}

/// A weighted set of targets: a named alias, or the implicit route of `models[].weight`.
#[derive(Debug, Clone)]
pub struct Route {
    pub name: String,
    /// Targets with weight > 0 come first in configuration order; drained ones (weight 0)
    /// are kept for `/v1/models` and metrics but never picked.
    pub targets: Vec<Target>,
    pub total_weight: f64,
}

/// What a requested model name refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Named {
    Route(RouteId),
    Model(ModelId),
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Breaker {
    pub threshold: f64,
    pub window_s: u64,
    pub min_requests: u32,
    pub cooldown_s: u64,
}

/// The endpoint a configured path serves, which decides the parameters that apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointKind {
    Chat,
    Completions,
    Embeddings,
    Responses,
    Other,
}

impl EndpointKind {
    fn of_path(path: &str) -> EndpointKind {
        if path.ends_with("/chat/completions") {
            EndpointKind::Chat
        } else if path.ends_with("/completions") {
            EndpointKind::Completions
        } else if path.ends_with("/embeddings") {
            EndpointKind::Embeddings
        } else if path.ends_with("/responses") {
            EndpointKind::Responses
        } else {
            EndpointKind::Other
        }
    }
}

/// The validated configuration. Built only by [`compile`]; every index in it is valid.
#[derive(Debug, Clone)]
pub struct Config {
    pub models: Vec<Model>,
    /// User routes in configuration order, then the implicit route when it is used.
    pub routes: Vec<Route>,
    /// The route for absent/empty/unknown models when `unknown_models: route`.
    pub default_route: Option<RouteId>,
    pub unknown_models: UnknownModels,
    pub breaker: Breaker,
    pub timeout_ms: u64,
    /// `timeout_ms` formatted once for `x-envoy-upstream-rq-timeout-ms`.
    timeout_header: String,
    pub cluster: String,
    pub api_key_env: String,
    pub key_injection: KeyInjection,
    /// Lower-case header name.
    pub sticky_header: Option<String>,
    pub stream_usage: bool,
    pub paths: Vec<(String, EndpointKind)>,
    pub serve_models_endpoint: bool,
    names: HashMap<String, Named>,
}

impl Config {
    /// What a requested model name refers to: a route, or the model it selects (the highest
    /// SemVer release of that name). `None` for unknown names and names that only have
    /// pre-release versions (those are reached through routes only).
    pub fn lookup(&self, name: &str) -> Option<Named> {
        self.names.get(name).copied()
    }

    /// The global `timeout_ms`, formatted for `x-envoy-upstream-rq-timeout-ms`.
    pub fn timeout_header(&self) -> &str {
        &self.timeout_header
    }

    /// The endpoint kind of a request path (query string already removed), when configured.
    pub fn endpoint(&self, path: &str) -> Option<EndpointKind> {
        self.paths
            .iter()
            .find(|(p, _)| p == path)
            .map(|&(_, kind)| kind)
    }

    /// Names `GET /v1/models` lists: routes, then directly addressable model names.
    pub fn served_names(&self) -> impl Iterator<Item = &str> {
        let routes = self
            .routes
            .iter()
            .filter(|r| r.name != route_labels::IMPLICIT)
            .map(|r| r.name.as_str());
        let mut models: Vec<&str> = self
            .names
            .iter()
            .filter(|(_, n)| matches!(n, Named::Model(_)))
            .map(|(k, _)| k.as_str())
            .collect();
        models.sort_unstable();
        routes.chain(models)
    }
}

// === compile ===

/// Parses and validates a plugin configuration (JSON bytes).
pub fn parse(bytes: &[u8]) -> Result<Config, ConfigErrors> {
    let raw = parse_schema(bytes)?;
    compile(raw)
}

/// The first phase alone: JSON → schema structs, with the path of the first offending field.
pub fn parse_schema(bytes: &[u8]) -> Result<GatewayConfig, ConfigErrors> {
    match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        None => return Err(one("", "the plugin configuration is empty")),
        // serde would also accept a struct written as an array; only an object is a config.
        Some(b'{') => {}
        Some(_) => {
            return Err(one(
                "",
                "the plugin configuration must be a JSON object ({\"models\": [...], ...})",
            ))
        }
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    match serde_path_to_error::deserialize::<_, GatewayConfig>(de) {
        Ok(raw) => Ok(raw),
        Err(e) => {
            let path = e.path().to_string();
            let path = if path == "." { String::new() } else { path };
            Err(one(&path, &clean_serde_message(&e.inner().to_string())))
        }
    }
}

fn one(path: &str, message: &str) -> ConfigErrors {
    ConfigErrors(vec![ConfigError {
        path: path.to_owned(),
        message: message.to_owned(),
    }])
}

/// serde_json appends " at line L column C"; keep it (it helps locate the field) but make
/// the rest read like our own messages.
fn clean_serde_message(msg: &str) -> String {
    msg.replace("invalid type: ", "wrong type: ")
}

struct Errors(Vec<ConfigError>);

impl Errors {
    fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(ConfigError {
            path: path.into(),
            message: message.into(),
        });
    }
}

fn valid_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("must not be empty".into());
    }
    if name.len() > MAX_NAME_LEN {
        return Err(format!("is longer than {MAX_NAME_LEN} bytes"));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':' | '/')))
    {
        return Err(format!(
            "{name:?} contains {c:?}; names may use letters, digits, '.', '-', '_', ':' and '/'"
        ));
    }
    Ok(())
}

fn valid_cluster(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("must not be empty".into());
    }
    if name.len() > 256 || !name.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!(
            "{name:?} is not a usable Envoy cluster name (printable ASCII, no spaces)"
        ));
    }
    Ok(())
}

fn is_header_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Validates the schema structs into the runtime [`Config`], reporting every error found.
pub fn compile(raw: GatewayConfig) -> Result<Config, ConfigErrors> {
    let mut errs = Errors(Vec::new());

    // --- global settings ---
    let timeout_ms = raw.timeout_ms.unwrap_or(defaults::TIMEOUT_MS);
    check_timeout(&mut errs, "timeout_ms", timeout_ms);

    let threshold = raw
        .failover_threshold
        .unwrap_or(defaults::FAILOVER_THRESHOLD);
    if !(threshold > 0.0 && threshold <= 1.0) {
        errs.push(
            "failover_threshold",
            format!("{threshold} is out of range: an error ratio in (0, 1]"),
        );
    }
    let failover = raw.failover.as_ref();
    let window_s = failover
        .and_then(|f| f.window_s)
        .unwrap_or(defaults::WINDOW_S);
    let min_requests = failover
        .and_then(|f| f.min_requests)
        .unwrap_or(defaults::MIN_REQUESTS);
    let cooldown_s = failover
        .and_then(|f| f.cooldown_s)
        .unwrap_or(defaults::COOLDOWN_S);
    if !(1..=MAX_WINDOW_S).contains(&window_s) {
        errs.push(
            "failover.window_s",
            format!("{window_s} is out of range: 1 to {MAX_WINDOW_S} seconds"),
        );
    }
    if min_requests == 0 {
        errs.push("failover.min_requests", "must be at least 1");
    }
    if !(1..=MAX_WINDOW_S).contains(&cooldown_s) {
        errs.push(
            "failover.cooldown_s",
            format!("{cooldown_s} is out of range: 1 to {MAX_WINDOW_S} seconds"),
        );
    }

    let upstream = raw.upstream.as_ref();
    let cluster = upstream
        .and_then(|u| u.cluster.clone())
        .unwrap_or_else(|| defaults::CLUSTER.to_owned());
    if let Err(m) = valid_cluster(&cluster) {
        errs.push("upstream.cluster", m);
    }
    let api_key_env = upstream
        .and_then(|u| u.api_key_env.clone())
        .unwrap_or_else(|| defaults::API_KEY_ENV.to_owned());
    let env_ok = api_key_env
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && api_key_env
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !env_ok {
        // The value is not echoed: a common mistake is pasting the key itself here, and
        // this message goes to Envoy's log and to CI output.
        errs.push(
            "upstream.api_key_env",
            "is not an environment variable name ([A-Za-z_][A-Za-z0-9_]*): it names the \
             variable that holds the key, not the key itself",
        );
    }

    let sticky_header = match &raw.sticky {
        Some(s) => {
            let h = s.header.to_ascii_lowercase();
            if !is_header_token(&h) || h.starts_with(':') {
                errs.push(
                    "sticky.header",
                    format!("{:?} is not an HTTP header name", s.header),
                );
            }
            Some(h)
        }
        None => None,
    };

    let paths: Vec<String> = match &raw.paths {
        Some(p) => p.clone(),
        None => defaults::PATHS.iter().map(|s| (*s).to_owned()).collect(),
    };
    if paths.is_empty() {
        errs.push("paths", "must list at least one path");
    }
    for (i, p) in paths.iter().enumerate() {
        if !p.starts_with('/') || p.contains(['?', '#']) || !p.bytes().all(|b| b.is_ascii_graphic())
        {
            errs.push(
                format!("paths[{i}]"),
                format!("{p:?} is not a request path (starts with '/', no query, no spaces)"),
            );
        } else if paths[..i].contains(p) {
            errs.push(format!("paths[{i}]"), format!("{p:?} is listed twice"));
        }
    }

    // --- models ---
    if raw.models.is_empty() {
        errs.push("models", "must list at least one model");
    }
    let mut models: Vec<Model> = Vec::with_capacity(raw.models.len());
    for (i, m) in raw.models.iter().enumerate() {
        let at = |field: &str| format!("models[{i}].{field}");
        if let Err(msg) = valid_name(&m.name) {
            errs.push(at("name"), msg);
        }
        let version = match semver::Version::parse(&m.version) {
            Ok(v) => v,
            Err(e) => {
                errs.push(
                    at("version"),
                    format!(
                        "{:?} is not SemVer (MAJOR.MINOR.PATCH[-pre][+build]): {e}",
                        m.version
                    ),
                );
                semver::Version::new(0, 0, 0)
            }
        };
        if let Some(mt) = m.max_tokens {
            if mt == 0 {
                errs.push(at("max_tokens"), "must be at least 1");
            }
        }
        if let Some(t) = m.temperature {
            if !(0.0..=2.0).contains(&t) {
                errs.push(at("temperature"), format!("{t} is out of range: 0 to 2"));
            }
        }
        let weight = m.weight.unwrap_or(0.0);
        check_weight(&mut errs, &at("weight"), weight);
        let cluster = m.cluster.clone().unwrap_or_else(|| cluster.clone());
        if let Err(msg) = valid_cluster(&cluster) {
            errs.push(at("cluster"), msg);
        }
        let timeout = m.timeout_ms.unwrap_or(timeout_ms);
        if m.timeout_ms.is_some() {
            check_timeout(&mut errs, &at("timeout_ms"), timeout);
        }
        for (j, prev) in models.iter().enumerate() {
            if prev.name == m.name && prev.version.cmp_precedence(&version).is_eq() {
                errs.push(
                    at("version"),
                    format!(
                        "{}@{} is already configured as models[{j}]; a model is identified by (name, version)",
                        m.name, m.version
                    ),
                );
            }
        }
        let price = match raw.prices.get(&m.name) {
            Some(p) => Price::from_usd_per_mtok(p.input, p.output),
            None => None,
        };
        models.push(Model {
            name: m.name.clone(),
            version,
            version_label: m.version.clone(),
            max_tokens: m.max_tokens,
            temperature: m.temperature,
            weight,
            cluster,
            system_prompt: m.system_prompt.clone(),
            timeout_ms: timeout,
            timeout_header: timeout.to_string(),
            price,
        });
    }

    for (name, p) in &raw.prices {
        for (field, v) in [("input", p.input), ("output", p.output)] {
            if !(v.is_finite() && (0.0..=MAX_PRICE_USD).contains(&v)) {
                errs.push(
                    format!("prices.{name}.{field}"),
                    format!("{v} is out of range: USD 0 to {MAX_PRICE_USD} per million tokens"),
                );
            }
        }
    }

    // --- names: the highest release of each model name is what a client gets by name ---
    let mut names: HashMap<String, Named> = HashMap::new();
    for (id, m) in models.iter().enumerate() {
        if !m.version.pre.is_empty() {
            continue;
        }
        match names.get(&m.name) {
            Some(&Named::Model(prev)) if models[prev].version >= m.version => {}
            _ => {
                names.insert(m.name.clone(), Named::Model(id));
            }
        }
    }

    // --- routes ---
    let mut routes: Vec<Route> = Vec::with_capacity(raw.routes.len() + 1);
    for (r, route) in raw.routes.iter().enumerate() {
        let at = format!("routes[{r}]");
        if let Err(msg) = valid_name(&route.name) {
            errs.push(format!("{at}.name"), msg);
        }
        if models.iter().any(|m| m.name == route.name) {
            errs.push(
                format!("{at}.name"),
                format!(
                    "{:?} is also a model name; a route name must differ from every model name",
                    route.name
                ),
            );
        }
        if raw.routes[..r].iter().any(|p| p.name == route.name) {
            errs.push(
                format!("{at}.name"),
                format!("{:?} is already the name of another route", route.name),
            );
        }
        if route.targets.is_empty() {
            errs.push(format!("{at}.targets"), "must list at least one target");
        }
        let mut targets = Vec::with_capacity(route.targets.len());
        for (t, target) in route.targets.iter().enumerate() {
            let tat = format!("{at}.targets[{t}]");
            check_weight(&mut errs, &format!("{tat}.weight"), target.weight);
            match resolve_target(&models, &target.model, target.version.as_deref()) {
                Ok(model) => {
                    if targets.iter().any(|x: &Target| x.model == model) {
                        errs.push(
                            tat.clone(),
                            format!(
                                "{}@{} is listed twice in this route",
                                models[model].name, models[model].version_label
                            ),
                        );
                    }
                    targets.push(Target {
                        model,
                        weight: target.weight,
                        seed: target_seed(&models[model]),
                    });
                }
                Err((field, msg)) => errs.push(format!("{tat}.{field}"), msg),
            }
        }
        let route = build_route(route.name.clone(), targets);
        if route.total_weight <= 0.0 && !route.targets.is_empty() {
            errs.push(
                format!("{at}.targets"),
                "the weights sum to 0: at least one target needs a weight above 0",
            );
        }
        names.entry(route.name.clone()).or_insert(Named::Route(r));
        routes.push(route);
    }

    // --- the default route ---
    let default_route = match (&raw.default_route, raw.unknown_models) {
        (Some(name), _) => match raw.routes.iter().position(|r| &r.name == name) {
            Some(id) => Some(id),
            None => {
                errs.push(
                    "default_route",
                    format!("{name:?} is not the name of a configured route"),
                );
                None
            }
        },
        (None, UnknownModels::Route) => {
            let targets = models
                .iter()
                .enumerate()
                .filter(|(_, m)| m.weight > 0.0)
                .map(|(model, m)| Target {
                    model,
                    weight: m.weight,
                    seed: target_seed(m),
                })
                .collect();
            let route = build_route(route_labels::IMPLICIT.to_owned(), targets);
            if route.total_weight <= 0.0 && !models.is_empty() {
                errs.push(
                    "models",
                    "no model has a weight above 0, but the implicit default route (unknown_models: route without default_route) needs one; set models[].weight, default_route, or unknown_models",
                );
            }
            routes.push(route);
            Some(routes.len() - 1)
        }
        (None, _) => None,
    };

    if !errs.0.is_empty() {
        return Err(ConfigErrors(errs.0));
    }
    Ok(Config {
        models,
        routes,
        default_route,
        unknown_models: raw.unknown_models,
        breaker: Breaker {
            threshold,
            window_s,
            min_requests,
            cooldown_s,
        },
        timeout_ms,
        timeout_header: timeout_ms.to_string(),
        cluster,
        api_key_env,
        key_injection: upstream.map(|u| u.key_injection).unwrap_or_default(),
        sticky_header,
        stream_usage: raw.stream_usage == StreamUsage::Inject,
        paths: paths
            .into_iter()
            .map(|p| {
                let kind = EndpointKind::of_path(&p);
                (p, kind)
            })
            .collect(),
        serve_models_endpoint: raw.serve_models_endpoint.unwrap_or(true),
        names,
    })
}

fn check_weight(errs: &mut Errors, path: &str, weight: f64) {
    if !(weight.is_finite() && weight >= 0.0) {
        errs.push(
            path,
            format!("{weight} is not a weight: a finite number ≥ 0 (0 drains the target)"),
        );
    }
}

fn check_timeout(errs: &mut Errors, path: &str, ms: u64) {
    if !(1..=MAX_TIMEOUT_MS).contains(&ms) {
        errs.push(
            path,
            format!("{ms} is out of range: 1 to {MAX_TIMEOUT_MS} milliseconds"),
        );
    }
}

fn target_seed(m: &Model) -> u64 {
    let h = crate::rng::fnv1a64(m.name.as_bytes());
    crate::rng::fnv1a64_continue(
        crate::rng::fnv1a64_continue(h, b"@"),
        m.version_label.as_bytes(),
    )
}

fn build_route(name: String, mut targets: Vec<Target>) -> Route {
    // Drained targets last, so the pick only walks live ones; stable keeps config order.
    targets.sort_by_key(|t| t.weight <= 0.0);
    let total_weight = targets.iter().map(|t| t.weight).sum();
    Route {
        name,
        targets,
        total_weight,
    }
}

/// Finds the model a route target names. Errors carry the sub-field to blame.
fn resolve_target(
    models: &[Model],
    name: &str,
    version: Option<&str>,
) -> Result<ModelId, (&'static str, String)> {
    let candidates: Vec<ModelId> = models
        .iter()
        .enumerate()
        .filter(|(_, m)| m.name == name)
        .map(|(i, _)| i)
        .collect();
    if candidates.is_empty() {
        return Err(("model", format!("{name:?} is not a configured model")));
    }
    match version {
        Some(v) => {
            let wanted = semver::Version::parse(v)
                .map_err(|e| ("version", format!("{v:?} is not SemVer: {e}")))?;
            candidates
                .iter()
                .copied()
                .find(|&i| models[i].version.cmp_precedence(&wanted).is_eq())
                .ok_or_else(|| {
                    (
                        "version",
                        format!(
                            "{name}@{v} is not configured (configured versions: {})",
                            versions_of(models, &candidates)
                        ),
                    )
                })
        }
        None if candidates.len() == 1 => Ok(candidates[0]),
        None => Err((
            "version",
            format!(
                "required: {name} has {} configured versions ({})",
                candidates.len(),
                versions_of(models, &candidates)
            ),
        )),
    }
}

fn versions_of(models: &[Model], ids: &[ModelId]) -> String {
    ids.iter()
        .map(|&i| models[i].version_label.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests;
