//! The validated runtime configuration: what the filter reads on the request path. Built only
//! by [`super::compile`]; every index in it is valid.

use super::route_labels;
use super::schema::{KeyInjection, UnknownModels};
use crate::body::Endpoint;
use crate::metrics::ErrorType;
use crate::usage::Price;
use std::collections::HashMap;
use std::fmt;

/// A model of a [`Config`]: its position in [`Config::models`]. Only the compiler makes one
/// (or [`Config::model_id`], which checks), so [`Config::model`] needs no fallback. An id is
/// valid for the configuration it came from; the filter keeps both in one runtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ModelId(pub(super) usize);

/// A route of a [`Config`]: its position in [`Config::routes`]; made like [`ModelId`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RouteId(pub(super) usize);

impl ModelId {
    /// The position in [`Config::models`], and in per-model tables sized like it.
    pub fn index(self) -> usize {
        self.0
    }
}

impl RouteId {
    /// The position in [`Config::routes`].
    pub fn index(self) -> usize {
        self.0
    }
}

/// The model's place in the configuration: `models[i]`.
impl fmt::Display for ModelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "models[{}]", self.0)
    }
}

/// The route's place: `routes[i]` (the implicit route comes after the configured ones).
impl fmt::Display for RouteId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "routes[{}]", self.0)
    }
}

/// A model the gateway may send upstream: one (name, version) pair.
#[derive(Debug, Clone)]
pub struct Model {
    pub name: String,
    pub version: semver::Version,
    /// The version as the operator wrote it (for headers and metric labels).
    pub version_label: String,
    /// `name@version`: how a fallback list, the fallback handoff, the answered-by header and
    /// the circuit's shared-data key name this model.
    pub key: String,
    pub max_tokens: Option<u64>,
    pub temperature: Option<f64>,
    pub weight: f64,
    pub cluster: String,
    pub system_prompt: Option<String>,
    /// Per attempt, until the response starts (its headers): the model's own `timeout_ms`,
    /// else the global one.
    pub timeout_ms: u64,
    /// The value of `x-envoy-upstream-rq-per-try-timeout-ms` for a request to this model,
    /// formatted once (Envoy's per-try timeout bounds the wait for an attempt's response
    /// headers, never its body): `timeout_ms`, or, with a `fallback` list, the longest
    /// `timeout_ms` of the model and its fallbacks (Envoy reads it once per request, for
    /// every attempt).
    pub timeout_header: String,
    pub price: Option<Price>,
    /// The models to try next, in order, when an attempt at this one fails with a cause of
    /// [`Config::fallback_on`]. Each routes to this model's `cluster`, is not this model, and
    /// appears once (checked by the compiler); at most 4.
    pub fallback: Vec<ModelId>,
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

/// The causes of a failed attempt, by their configuration names (`fallback_on`): the one
/// mapping between [`ErrorType`] and what operators write. Client errors (4xx other than
/// 429) are never among them.
pub const CAUSES: [(ErrorType, &str); 5] = [
    (ErrorType::Http5xx, "5xx"),
    (ErrorType::Http429, "429"),
    (ErrorType::Timeout, "timeout"),
    (ErrorType::Reset, "reset"),
    (ErrorType::ConnectFailure, "connect_failure"),
];

/// A set of [`CAUSES`] (`fallback_on`): one bit per entry of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Causes(u8);

impl Causes {
    /// No cause: never fall back.
    pub const NONE: Causes = Causes(0);
    /// Every cause of [`CAUSES`].
    pub const ALL: Causes = Causes((1 << CAUSES.len()) - 1);

    fn bit(cause: ErrorType) -> u8 {
        CAUSES
            .iter()
            .position(|&(c, _)| c == cause)
            .map_or(0, |i| 1 << i)
    }

    /// Whether `cause` is in the set (a cause outside [`CAUSES`] never is).
    pub fn contains(self, cause: ErrorType) -> bool {
        self.0 & Causes::bit(cause) != 0
    }

    /// The set with `cause` added.
    #[must_use]
    pub fn with(self, cause: ErrorType) -> Causes {
        Causes(self.0 | Causes::bit(cause))
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The causes in the set, in [`CAUSES`] order.
    pub fn iter(self) -> impl Iterator<Item = ErrorType> {
        CAUSES
            .iter()
            .map(|&(c, _)| c)
            .filter(move |&c| self.contains(c))
    }

    /// The configuration name of a cause (`5xx`, `429`, `timeout`, `reset`,
    /// `connect_failure`); `None` for an [`ErrorType`] that is not a cause.
    pub fn name(cause: ErrorType) -> Option<&'static str> {
        CAUSES.iter().find(|&&(c, _)| c == cause).map(|&(_, n)| n)
    }

    /// The cause a configuration name stands for.
    pub fn parse(name: &str) -> Option<ErrorType> {
        CAUSES.iter().find(|&&(_, n)| n == name).map(|&(c, _)| c)
    }
}

/// The configuration names, comma-separated in [`CAUSES`] order (`(none)` when empty).
impl fmt::Display for Causes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("(none)");
        }
        for (i, c) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            f.write_str(Causes::name(c).unwrap_or("?"))?;
        }
        Ok(())
    }
}

/// The validated configuration. Built only by [`super::compile`]; every index in it is valid.
#[derive(Debug, Clone)]
pub struct Config {
    pub models: Vec<Model>,
    /// User routes in configuration order, then the implicit route when it is used.
    pub routes: Vec<Route>,
    /// The route for absent/empty/unknown models when `unknown_models: route`.
    pub default_route: Option<RouteId>,
    pub unknown_models: UnknownModels,
    pub breaker: Breaker,
    /// Per attempt, until the response starts (first response byte), for models without
    /// their own `timeout_ms`.
    pub timeout_ms: u64,
    /// `timeout_ms` formatted once for `x-envoy-upstream-rq-per-try-timeout-ms`.
    pub(super) timeout_header: String,
    /// Between two chunks of a response that has started. The filter can't set this per
    /// request: Envoy enforces it through the route's `retry_policy.per_try_idle_timeout`
    /// (`ai-gateway validate` warns when the route's differs).
    pub stream_idle_timeout_ms: u64,
    /// A cap on the whole request, every attempt, back-off and the response body included;
    /// 0: none.
    pub max_duration_ms: u64,
    /// `max_duration_ms` formatted once for `x-envoy-upstream-rq-timeout-ms` (`"0"`: Envoy
    /// applies no request timeout).
    pub(super) max_duration_header: String,
    /// `max_attempts - 1`, formatted once for `x-envoy-max-retries`.
    pub(super) max_retries_header: String,
    /// The causes of a failed attempt that move the request to the next model of its
    /// [`Model::fallback`] list (empty: never fall back).
    pub fallback_on: Causes,
    /// Every attempt of one request together (endpoint retries and fallback models), 1–5.
    pub max_attempts: u32,
    pub cluster: String,
    pub api_key_env: String,
    pub key_injection: KeyInjection,
    /// Lower-case header name.
    pub sticky_header: Option<String>,
    pub stream_usage: bool,
    pub paths: Vec<(String, Endpoint)>,
    pub serve_models_endpoint: bool,
    pub(super) names: HashMap<String, Named>,
}

impl Config {
    /// The model `id` names. Ids come from this configuration, so it is there.
    pub fn model(&self, id: ModelId) -> &Model {
        &self.models[id.0]
    }

    /// The route `id` names. Ids come from this configuration, so it is there.
    pub fn route(&self, id: RouteId) -> &Route {
        &self.routes[id.0]
    }

    /// Every model's id, in configuration order.
    pub fn model_ids(&self) -> impl Iterator<Item = ModelId> {
        (0..self.models.len()).map(ModelId)
    }

    /// Every route's id: the user routes in configuration order, then the implicit route.
    pub fn route_ids(&self) -> impl Iterator<Item = RouteId> {
        (0..self.routes.len()).map(RouteId)
    }

    /// The id of `models[index]`, if there is one.
    pub fn model_id(&self, index: usize) -> Option<ModelId> {
        (index < self.models.len()).then_some(ModelId(index))
    }

    /// The id of `routes[index]` (user routes in configuration order), if there is one.
    pub fn route_id(&self, index: usize) -> Option<RouteId> {
        (index < self.routes.len()).then_some(RouteId(index))
    }

    /// What a requested model name refers to: a route, or the model it selects (the highest
    /// SemVer release of that name). `None` for unknown names and names that only have
    /// pre-release versions (those are reached through routes only).
    pub fn lookup(&self, name: &str) -> Option<Named> {
        self.names.get(name).copied()
    }

    /// The global `timeout_ms` (per attempt, until the response starts), formatted for
    /// `x-envoy-upstream-rq-per-try-timeout-ms`.
    pub fn timeout_header(&self) -> &str {
        &self.timeout_header
    }

    /// `max_duration_ms` (the whole request), formatted for `x-envoy-upstream-rq-timeout-ms`:
    /// `"0"` when there is no cap (Envoy then applies none).
    pub fn max_duration_header(&self) -> &str {
        &self.max_duration_header
    }

    /// `max_attempts - 1` (Envoy's retries), formatted for `x-envoy-max-retries`.
    pub fn max_retries_header(&self) -> &str {
        &self.max_retries_header
    }

    /// The endpoint kind of a request path (query string already removed), when configured.
    pub fn endpoint(&self, path: &str) -> Option<Endpoint> {
        self.paths
            .iter()
            .find(|(p, _)| p == path)
            .map(|&(_, kind)| kind)
    }

    /// The model a route target's `model` (and optional `version`) names, by the rules the
    /// compiler applies to `routes[].targets[]`: the name must be configured; a `version`
    /// matches by SemVer precedence (build metadata ignored); without one, the name must
    /// have a single configured version.
    pub fn resolve_target(
        &self,
        model: &str,
        version: Option<&str>,
    ) -> Result<ModelId, UnresolvedTarget> {
        resolve_target(&self.models, model, version)
    }

    /// The model a `models[].fallback` entry names, by the rules the compiler applies to
    /// them: `"name@version"` exactly as a route target with a `version`; `"name"` that
    /// name's highest SemVer release (what a client gets by that name; a name with only
    /// pre-releases must be written with its version).
    pub fn resolve_reference(&self, reference: &str) -> Result<ModelId, UnresolvedTarget> {
        resolve_reference(&self.models, reference)
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
        crate::sort::by_key(&mut models, |m| *m);
        routes.chain(models)
    }
}

/// Why a route target names no configured model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnresolvedTarget {
    /// The target's sub-field to blame: `model` or `version`.
    pub field: &'static str,
    pub message: String,
}

/// [`Config::resolve_target`] over the models alone (the compiler resolves targets before
/// the [`Config`] exists).
pub(super) fn resolve_target(
    models: &[Model],
    name: &str,
    version: Option<&str>,
) -> Result<ModelId, UnresolvedTarget> {
    resolve(models, name, version, Unversioned::Single)
}

/// [`Config::resolve_reference`] over the models alone.
pub(super) fn resolve_reference(
    models: &[Model],
    reference: &str,
) -> Result<ModelId, UnresolvedTarget> {
    match reference.split_once('@') {
        Some((name, version)) => resolve(models, name, Some(version), Unversioned::Single),
        None => resolve(models, reference, None, Unversioned::HighestRelease),
    }
}

/// What a name without a version selects.
#[derive(Clone, Copy)]
enum Unversioned {
    /// Its only configured version (route targets).
    Single,
    /// Its highest SemVer release (model references: what a client gets by that name).
    HighestRelease,
}

/// The highest SemVer release configured under `name` (pre-releases are never selected by
/// name alone); among equal versions, the first configured.
pub(super) fn highest_release(models: &[Model], name: &str) -> Option<ModelId> {
    let mut best: Option<usize> = None;
    for (i, m) in models.iter().enumerate() {
        if m.name != name || !m.version.pre.is_empty() {
            continue;
        }
        if best.is_none_or(|b| models[b].version < m.version) {
            best = Some(i);
        }
    }
    best.map(ModelId)
}

fn resolve(
    models: &[Model],
    name: &str,
    version: Option<&str>,
    unversioned: Unversioned,
) -> Result<ModelId, UnresolvedTarget> {
    let unresolved = |field, message| UnresolvedTarget { field, message };
    let candidates: Vec<usize> = models
        .iter()
        .enumerate()
        .filter(|(_, m)| m.name == name)
        .map(|(i, _)| i)
        .collect();
    if candidates.is_empty() {
        return Err(unresolved(
            "model",
            format!("{name:?} is not a configured model"),
        ));
    }
    match version {
        None if matches!(unversioned, Unversioned::HighestRelease) => {
            highest_release(models, name).ok_or_else(|| {
                let example = match candidates.as_slice() {
                    [one] => format!("{name}@{}", models[*one].version_label),
                    _ => format!("{name}@VERSION"),
                };
                unresolved(
                    "version",
                    format!(
                        "{name:?} has only pre-release versions ({}), which a name alone never selects: name the version ({example:?})",
                        versions_of(models, &candidates)
                    ),
                )
            })
        }
        Some(v) => {
            let wanted = semver::Version::parse(v)
                .map_err(|e| unresolved("version", format!("{v:?} is not SemVer: {e}")))?;
            candidates
                .iter()
                .copied()
                .find(|&i| models[i].version.cmp_precedence(&wanted).is_eq())
                .map(ModelId)
                .ok_or_else(|| {
                    unresolved(
                        "version",
                        format!(
                            "{name}@{v} is not configured (configured versions: {})",
                            versions_of(models, &candidates)
                        ),
                    )
                })
        }
        None if candidates.len() == 1 => Ok(ModelId(candidates[0])),
        None => Err(unresolved(
            "version",
            format!(
                "required: {name} has {} configured versions ({})",
                candidates.len(),
                versions_of(models, &candidates)
            ),
        )),
    }
}

fn versions_of(models: &[Model], ids: &[usize]) -> String {
    ids.iter()
        .map(|&i| models[i].version_label.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}
