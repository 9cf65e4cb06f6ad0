//! The compiler: JSON → [`GatewayConfig`] (serde) → [`Config`] (every rule of the
//! configuration contract checked, every error reported at once). One function per phase:
//! global settings, models, their fallbacks, routes, the default route.

use super::defaults;
use super::error::{ConfigError, ConfigErrors, UnknownField};
use super::route_labels;
use super::runtime::{
    highest_release, resolve_reference, resolve_target, Breaker, Causes, Config, Model, ModelId,
    Named, Route, RouteId, Target, CAUSES,
};
use super::schema::{
    fields_at, GatewayConfig, KeyInjection, ModelConfig, PathSegment, RouteConfig, StreamUsage,
    UnknownModels,
};
use crate::usage::Price;
use serde_path_to_error::Segment;
use std::collections::HashMap;

/// Upper bounds that keep values meaningful (and label values short).
const MAX_NAME_LEN: usize = 128;
const MAX_TIMEOUT_MS: u64 = 24 * 3600 * 1000;
const MAX_WINDOW_S: u64 = 24 * 3600;
/// `max_attempts`: every attempt of one request together.
const MAX_ATTEMPTS: u64 = 5;
/// `models[].fallback`: models after the first.
const MAX_FALLBACKS: usize = 4;
/// Price ceiling: USD 1,000,000 per million tokens.
const MAX_PRICE_USD: f64 = 1_000_000.0;

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
            let mut error = ConfigError::new(path, clean_serde_message(&e.inner().to_string()));
            error.unknown_field = unknown_field(e.path());
            Err(ConfigErrors(vec![error]))
        }
    }
}

/// The member serde stopped at, when its key is not a field of the struct around it: with
/// `deny_unknown_fields` serde checks a key before reading its value, so that is the one
/// error serde reports for an unknown member (known from the schema's own field lists, not
/// from serde's message).
fn unknown_field(path: &serde_path_to_error::Path) -> Option<UnknownField> {
    let segments: Vec<PathSegment> = path
        .iter()
        .map(|s| match s {
            Segment::Seq { index } => Some(PathSegment::Index(*index)),
            Segment::Map { key } => Some(PathSegment::Key(key.clone())),
            Segment::Enum { .. } | Segment::Unknown => None,
        })
        .collect::<Option<_>>()?;
    let (PathSegment::Key(name), parent) = segments.split_last()? else {
        return None;
    };
    let known = fields_at(parent)?;
    (!known.contains(&name.as_str())).then(|| UnknownField {
        parent: parent.to_vec(),
        name: name.clone(),
    })
}

fn one(path: &str, message: &str) -> ConfigErrors {
    ConfigErrors(vec![ConfigError::new(path, message)])
}

/// serde_json appends " at line L column C"; keep it (it helps locate the field) but make
/// the rest read like our own messages.
fn clean_serde_message(msg: &str) -> String {
    msg.replace("invalid type: ", "wrong type: ")
}

struct Errors(Vec<ConfigError>);

impl Errors {
    fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(ConfigError::new(path, message));
    }
}

/// Validates the schema structs into the runtime [`Config`], reporting every error found
/// (in phase order: global settings, models, prices, routes, the default route).
pub fn compile(raw: GatewayConfig) -> Result<Config, ConfigErrors> {
    let mut errs = Errors(Vec::new());
    let globals = globals(&raw, &mut errs);
    let mut models = models(&raw, &globals, &mut errs);
    fallbacks(&raw, &mut models, &mut errs);
    check_prices(&raw, &mut errs);
    let mut names = model_names(&models);
    let mut routes = routes(&raw.routes, &models, &mut names, &mut errs);
    let default_route = default_route(&raw, &models, &mut routes, &mut errs);

    if !errs.0.is_empty() {
        return Err(ConfigErrors(errs.0));
    }
    let Globals {
        timeout_ms,
        stream_idle_timeout_ms,
        max_duration_ms,
        fallback_on,
        max_attempts,
        breaker,
        cluster,
        api_key_env,
        key_injection,
        sticky_header,
        paths,
    } = globals;
    Ok(Config {
        models,
        routes,
        default_route,
        unknown_models: raw.unknown_models,
        breaker,
        timeout_ms,
        timeout_header: timeout_ms.to_string(),
        stream_idle_timeout_ms,
        max_duration_ms,
        max_duration_header: max_duration_ms.to_string(),
        max_retries_header: max_attempts.saturating_sub(1).to_string(),
        fallback_on,
        max_attempts,
        cluster,
        api_key_env,
        key_injection,
        sticky_header,
        stream_usage: raw.stream_usage == StreamUsage::Inject,
        paths: paths
            .into_iter()
            .map(|p| {
                let kind = crate::body::Endpoint::of_path(&p);
                (p, kind)
            })
            .collect(),
        serve_models_endpoint: raw.serve_models_endpoint.unwrap_or(true),
        names,
    })
}

// === global settings ===

/// The global settings, defaults applied (checked, but not yet trusted: see `errs`).
struct Globals {
    timeout_ms: u64,
    stream_idle_timeout_ms: u64,
    max_duration_ms: u64,
    fallback_on: Causes,
    max_attempts: u32,
    breaker: Breaker,
    cluster: String,
    api_key_env: String,
    key_injection: KeyInjection,
    sticky_header: Option<String>,
    paths: Vec<String>,
}

fn globals(raw: &GatewayConfig, errs: &mut Errors) -> Globals {
    let timeout_ms = raw.timeout_ms.unwrap_or(defaults::TIMEOUT_MS);
    check_timeout(errs, "timeout_ms", timeout_ms);
    let stream_idle_timeout_ms = raw
        .stream_idle_timeout_ms
        .unwrap_or(defaults::STREAM_IDLE_TIMEOUT_MS);
    check_timeout(errs, "stream_idle_timeout_ms", stream_idle_timeout_ms);
    let max_duration_ms = raw.max_duration_ms.unwrap_or(defaults::MAX_DURATION_MS);
    if max_duration_ms > MAX_TIMEOUT_MS {
        errs.push(
            "max_duration_ms",
            format!(
                "{max_duration_ms} is out of range: 0 (no cap) or 1 to {MAX_TIMEOUT_MS} milliseconds"
            ),
        );
    }
    let fallback_on = fallback_on(raw, errs);
    let max_attempts = raw
        .max_attempts
        .unwrap_or(u64::from(defaults::MAX_ATTEMPTS));
    if !(1..=MAX_ATTEMPTS).contains(&max_attempts) {
        errs.push(
            "max_attempts",
            format!(
                "{max_attempts} is out of range: 1 to {MAX_ATTEMPTS} (every attempt of one request together: endpoint retries and fallback models)"
            ),
        );
    }
    let breaker = breaker(raw, errs);
    let (cluster, api_key_env, key_injection) = upstream(raw, errs);
    let sticky_header = sticky_header(raw, errs);
    let paths = paths(raw, errs);
    Globals {
        timeout_ms,
        stream_idle_timeout_ms,
        max_duration_ms,
        fallback_on,
        // In range when there is no error (1..=5).
        max_attempts: u32::try_from(max_attempts).unwrap_or(u32::MAX),
        breaker,
        cluster,
        api_key_env,
        key_injection,
        sticky_header,
        paths,
    }
}

/// `fallback_on`: causes of [`CAUSES`], each once.
fn fallback_on(raw: &GatewayConfig, errs: &mut Errors) -> Causes {
    let Some(names) = &raw.fallback_on else {
        return defaults::FALLBACK_ON;
    };
    let allowed = || {
        CAUSES
            .iter()
            .map(|&(_, n)| n)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut causes = Causes::NONE;
    for (i, super::schema::CauseName(name)) in names.iter().enumerate() {
        let at = format!("fallback_on[{i}]");
        match Causes::parse(name) {
            Some(c) if causes.contains(c) => errs.push(at, format!("{name:?} is listed twice")),
            Some(c) => causes = causes.with(c),
            None if is_client_error(name) => errs.push(
                at,
                format!(
                    "{name:?} is a client error: client errors never fall back (the next model would get the same request); the causes are {}",
                    allowed()
                ),
            ),
            None => errs.push(
                at,
                format!("{name:?} is not a cause; the causes are {}", allowed()),
            ),
        }
    }
    causes
}

/// `4xx` and the 4xx codes other than 429 (which is a cause).
fn is_client_error(name: &str) -> bool {
    name == "4xx"
        || (name.len() == 3
            && name.starts_with('4')
            && name.bytes().all(|b| b.is_ascii_digit())
            && name != "429")
}

/// `failover_threshold` and `failover.*`.
fn breaker(raw: &GatewayConfig, errs: &mut Errors) -> Breaker {
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
    Breaker {
        threshold,
        window_s,
        min_requests,
        cooldown_s,
    }
}

/// `upstream.*`: the default cluster, the key's variable, who injects the key.
fn upstream(raw: &GatewayConfig, errs: &mut Errors) -> (String, String, KeyInjection) {
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
    let key_injection = upstream.map(|u| u.key_injection).unwrap_or_default();
    (cluster, api_key_env, key_injection)
}

/// `sticky.header`, lower-cased.
fn sticky_header(raw: &GatewayConfig, errs: &mut Errors) -> Option<String> {
    let s = raw.sticky.as_ref()?;
    let h = s.header.to_ascii_lowercase();
    if !is_header_token(&h) || h.starts_with(':') {
        errs.push(
            "sticky.header",
            format!("{:?} is not an HTTP header name", s.header),
        );
    }
    Some(h)
}

fn paths(raw: &GatewayConfig, errs: &mut Errors) -> Vec<String> {
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
    paths
}

// === models ===

fn models(raw: &GatewayConfig, globals: &Globals, errs: &mut Errors) -> Vec<Model> {
    if raw.models.is_empty() {
        errs.push("models", "must list at least one model");
    }
    let mut models: Vec<Model> = Vec::with_capacity(raw.models.len());
    for (i, m) in raw.models.iter().enumerate() {
        let model = model(raw, globals, &models, i, m, errs);
        models.push(model);
    }
    models
}

/// `models[i]`, given the models before it (a (name, version) pair is configured once).
fn model(
    raw: &GatewayConfig,
    globals: &Globals,
    before: &[Model],
    i: usize,
    m: &ModelConfig,
    errs: &mut Errors,
) -> Model {
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
    check_weight(errs, &at("weight"), weight);
    let cluster = m.cluster.clone().unwrap_or_else(|| globals.cluster.clone());
    if let Err(msg) = valid_cluster(&cluster) {
        errs.push(at("cluster"), msg);
    }
    let timeout = m.timeout_ms.unwrap_or(globals.timeout_ms);
    if m.timeout_ms.is_some() {
        check_timeout(errs, &at("timeout_ms"), timeout);
    }
    for (j, prev) in before.iter().enumerate() {
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
    Model {
        name: m.name.clone(),
        version,
        version_label: m.version.clone(),
        key: format!("{}@{}", m.name, m.version),
        max_tokens: m.max_tokens,
        temperature: m.temperature,
        weight,
        cluster,
        system_prompt: m.system_prompt.clone(),
        timeout_ms: timeout,
        timeout_header: timeout.to_string(),
        price,
        // Resolved once every model is known: see `fallbacks`.
        fallback: Vec::new(),
    }
}

// === fallbacks ===

/// `models[i].fallback`, resolved once every model is known (a list may name models
/// configured after it).
fn fallbacks(raw: &GatewayConfig, models: &mut [Model], errs: &mut Errors) {
    for (i, m) in raw.models.iter().enumerate() {
        let Some(list) = &m.fallback else {
            continue;
        };
        let resolved = fallback(models, i, list, errs);
        let longest = crate::fallback::attempt_timeout_ms(
            std::iter::once(i)
                .chain(resolved.iter().map(|id| id.0))
                .filter_map(|j| models.get(j).map(|m| m.timeout_ms)),
        );
        if let Some(model) = models.get_mut(i) {
            model.fallback = resolved;
            model.timeout_header = longest.to_string();
        }
    }
}

/// One model's fallback list: each entry names a configured model (a name: its highest
/// release), not the model itself, once, served by the same cluster.
fn fallback(models: &[Model], i: usize, list: &[String], errs: &mut Errors) -> Vec<ModelId> {
    let at = format!("models[{i}].fallback");
    if list.len() > MAX_FALLBACKS {
        errs.push(
            at.clone(),
            format!("lists {} models; at most {MAX_FALLBACKS}", list.len()),
        );
    }
    let me = &models[i];
    let mut resolved: Vec<ModelId> = Vec::with_capacity(list.len());
    for (j, reference) in list.iter().enumerate() {
        let jat = format!("{at}[{j}]");
        let id = match resolve_reference(models, reference) {
            Ok(id) => id,
            Err(e) => {
                errs.push(jat, e.message);
                continue;
            }
        };
        let other = &models[id.0];
        let label = other.key.clone();
        if id.0 == i {
            errs.push(
                jat,
                format!(
                    "{reference:?} is {label}, the model itself: a model can't fall back to itself"
                ),
            );
            continue;
        }
        if let Some(k) = resolved.iter().position(|&x| x == id) {
            errs.push(
                jat,
                format!("{reference:?} is {label}, already listed (fallback[{k}])"),
            );
            continue;
        }
        if other.cluster != me.cluster {
            errs.push(
                jat,
                format!(
                    "{reference:?} routes to cluster {:?} but {}@{} routes to {:?}: Envoy picks the cluster once per request (cluster_header) and retries stay in it, so a fallback must be served by the same cluster (see docs/failover.md#fallback)",
                    other.cluster, me.name, me.version_label, me.cluster
                ),
            );
        }
        resolved.push(id);
    }
    resolved
}

fn check_prices(raw: &GatewayConfig, errs: &mut Errors) {
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
}

/// The names clients can request models by: the highest release of each model name is what
/// a client gets by name (pre-releases are reached through routes only).
fn model_names(models: &[Model]) -> HashMap<String, Named> {
    let mut names: HashMap<String, Named> = HashMap::new();
    for m in models {
        if names.contains_key(&m.name) {
            continue;
        }
        if let Some(id) = highest_release(models, &m.name) {
            names.insert(m.name.clone(), Named::Model(id));
        }
    }
    names
}

// === routes ===

/// The user routes, in configuration order (route `r` is `RouteId` `r`); their names are
/// added to `names`.
fn routes(
    raw: &[RouteConfig],
    models: &[Model],
    names: &mut HashMap<String, Named>,
    errs: &mut Errors,
) -> Vec<Route> {
    let mut routes: Vec<Route> = Vec::with_capacity(raw.len() + 1);
    for (r, rc) in raw.iter().enumerate() {
        let route = route(&raw[..r], models, r, rc, errs);
        names
            .entry(route.name.clone())
            .or_insert(Named::Route(RouteId(r)));
        routes.push(route);
    }
    routes
}

/// `routes[r]`, given the routes before it (route names are unique).
fn route(
    before: &[RouteConfig],
    models: &[Model],
    r: usize,
    route: &RouteConfig,
    errs: &mut Errors,
) -> Route {
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
    if before.iter().any(|p| p.name == route.name) {
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
        check_weight(errs, &format!("{tat}.weight"), target.weight);
        match resolve_target(models, &target.model, target.version.as_deref()) {
            Ok(model) => {
                if targets.iter().any(|x: &Target| x.model == model) {
                    errs.push(
                        tat.clone(),
                        format!(
                            "{}@{} is listed twice in this route",
                            models[model.0].name, models[model.0].version_label
                        ),
                    );
                }
                targets.push(Target {
                    model,
                    weight: target.weight,
                    seed: target_seed(&models[model.0]),
                });
            }
            Err(e) => errs.push(format!("{tat}.{}", e.field), e.message),
        }
    }
    let route = build_route(route.name.clone(), targets);
    if route.total_weight <= 0.0 && !route.targets.is_empty() {
        errs.push(
            format!("{at}.targets"),
            "the weights sum to 0: at least one target needs a weight above 0",
        );
    }
    route
}

// === the default route ===

/// The route for absent/empty/unknown models: the named `default_route`, or (with
/// `unknown_models: route` and none named) the implicit route of `models[].weight`, which is
/// added to `routes`.
fn default_route(
    raw: &GatewayConfig,
    models: &[Model],
    routes: &mut Vec<Route>,
    errs: &mut Errors,
) -> Option<RouteId> {
    match (&raw.default_route, raw.unknown_models) {
        (Some(name), _) => match raw.routes.iter().position(|r| &r.name == name) {
            Some(id) => Some(RouteId(id)),
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
                    model: ModelId(model),
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
            Some(RouteId(routes.len() - 1))
        }
        (None, _) => None,
    }
}

// === shared rules ===

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
    crate::sort::by_key(&mut targets, |t| t.weight <= 0.0);
    let total_weight = targets.iter().map(|t| t.weight).sum();
    Route {
        name,
        targets,
        total_weight,
    }
}
