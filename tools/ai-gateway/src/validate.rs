//! `ai-gateway validate`: every plugin configuration in every file, compiled by the filter's
//! own config code; errors (the filter would refuse it) and warnings (it would run, but an
//! operator should look).

use crate::fallback;
use crate::source::{self, Body, Envelope, Found, Source};
use crate::tree::{Node, Value};
use ai_gateway_filter::config::{
    self, route_labels,
    schema::{GatewayConfig, PathSegment, UnknownModels},
    Config, KeyInjection, ModelId,
};
use serde::Serialize;
use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

/// One message: `FILE: LOCATION: PATH: message`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Diag {
    pub file: String,
    /// Where the plugin configuration was found in the file (empty: the file is one).
    pub location: String,
    /// The field path inside the plugin configuration (or the document, for what surrounds it).
    pub path: String,
    pub message: String,
    /// 1-based line in the file, when known.
    pub line: Option<usize>,
}

impl std::fmt::Display for Diag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: ", self.file)?;
        if !self.location.is_empty() {
            write!(f, "{}: ", self.location)?;
        }
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)
    }
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Valid,
    Invalid,
    Unreadable,
}

#[derive(Debug, Clone, Serialize)]
pub struct ConfigSummary {
    pub location: String,
    pub line: usize,
    pub valid: bool,
    pub models: usize,
    pub routes: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct FileReport {
    pub file: String,
    pub status: Status,
    pub configs: Vec<ConfigSummary>,
    pub notes: Vec<String>,
}

#[derive(Debug, Default)]
pub struct Report {
    pub files: Vec<FileReport>,
    pub errors: Vec<Diag>,
    pub warnings: Vec<Diag>,
}

impl Report {
    /// 2 when a file (or the provider's model list) could not be read, else 1 when anything
    /// is invalid, else 0.
    pub fn exit_code(&self) -> i32 {
        if self.files.iter().any(|f| f.status == Status::Unreadable) {
            2
        } else if self.files.iter().any(|f| f.status == Status::Invalid) {
            1
        } else {
            0
        }
    }
}

pub struct Options {
    /// `--check-models URL`: the provider's API base (…/v1).
    pub check_models: Option<String>,
    /// The variable holding the provider key for `--check-models`.
    pub api_key_env: String,
}

/// Validates `paths` in order.
pub fn run(paths: &[String], opts: &Options) -> Report {
    let mut report = Report::default();
    let mut provider = ProviderModels::default();
    for p in paths {
        validate_file(p, opts, &mut provider, &mut report);
    }
    // One configuration text shared by several filter copies (YAML anchors: the listener's
    // filter and the clusters' upstream copies) gives the same warning once per copy: keep one.
    let mut seen = Vec::new();
    report.warnings.retain(|d| {
        let key = (d.file.clone(), d.path.clone(), d.message.clone(), d.line);
        if seen.contains(&key) {
            false
        } else {
            seen.push(key);
            true
        }
    });
    report
}

fn validate_file(path: &str, opts: &Options, provider: &mut ProviderModels, report: &mut Report) {
    let src = match Source::read(Path::new(path)) {
        Ok(s) => s,
        Err(source::Unreadable(why)) => {
            report.errors.push(Diag {
                file: path.to_owned(),
                location: String::new(),
                path: String::new(),
                message: format!("unreadable: {why}"),
                line: None,
            });
            report.files.push(FileReport {
                file: path.to_owned(),
                status: Status::Unreadable,
                configs: Vec::new(),
                notes: Vec::new(),
            });
            return;
        }
    };
    let (found, notes) = source::find(&src);
    let mut file = FileReport {
        file: path.to_owned(),
        status: Status::Valid,
        configs: Vec::new(),
        notes,
    };
    let mut key_names = vec![config::defaults::API_KEY_ENV.to_owned()];
    for f in &found {
        let before = report.errors.len();
        let compiled = check_config(&src, f, report);
        if let Some((cfg, _)) = &compiled {
            if !key_names.contains(&cfg.api_key_env) {
                key_names.push(cfg.api_key_env.clone());
            }
        }
        if let (Some((cfg, _)), Some(url)) = (&compiled, &opts.check_models) {
            match provider.get(url, &opts.api_key_env) {
                Ok(listed) => check_models(&src, f, cfg, url, listed, report),
                Err(why) => {
                    report.errors.push(Diag {
                        file: src.name.clone(),
                        location: f.location.clone(),
                        path: String::new(),
                        message: format!("--check-models: {why}"),
                        line: None,
                    });
                    file.status = Status::Unreadable;
                }
            }
        }
        let valid = report.errors.len() == before;
        if !valid && file.status == Status::Valid {
            file.status = Status::Invalid;
        }
        file.configs.push(ConfigSummary {
            location: f.location.clone(),
            line: src.line(f.offset),
            valid,
            models: compiled.as_ref().map_or(0, |(c, _)| c.models.len()),
            routes: compiled.as_ref().map_or(0, |(c, _)| {
                c.routes
                    .iter()
                    .filter(|r| r.name != route_labels::IMPLICIT)
                    .count()
            }),
        });
    }
    scan_file_for_keys(&src, &found, &key_names, report);
    if found.is_empty() && !file.notes.iter().any(|n| n.contains("ECDS")) {
        report.warnings.push(Diag {
            file: src.name.clone(),
            location: String::new(),
            path: String::new(),
            message: "no ai-gateway plugin configuration found (nothing validated)".into(),
            line: None,
        });
    }
    report.files.push(file);
}

/// Compiles one configuration; pushes its errors and warnings.
fn check_config(src: &Source, f: &Found, report: &mut Report) -> Option<(Config, GatewayConfig)> {
    let diag = |path: &str, message: String, offset: usize| Diag {
        file: src.name.clone(),
        location: f.location.clone(),
        path: path.to_owned(),
        message,
        line: Some(src.line(offset)),
    };
    if let Body::Unusable { path, reason } = &f.body {
        report.errors.push(diag(path, reason.clone(), f.offset));
        return None;
    }
    if let Body::Embedded(e) = &f.body {
        if let Err(why) = &e.tree {
            // The filter's own message (serde_json's) for the syntax error, placed in the file.
            let msg = match config::parse(e.text.as_bytes()) {
                Err(errs) => errs
                    .0
                    .first()
                    .map(|x| x.message.clone())
                    .unwrap_or_else(|| why.clone()),
                Ok(_) => why.clone(),
            };
            let off = f.error_offset("", &msg);
            let msg = source::strip_serde_position(&msg);
            let message = if msg.starts_with("the plugin configuration") {
                msg.to_owned()
            } else {
                format!("the plugin configuration is not valid JSON: {msg}")
            };
            report.errors.push(diag("", message, off));
            return None;
        }
    }
    let bytes = f.json_bytes()?;
    if let Some(env) = &f.envelope {
        envelope_warnings(src, f, env, &bytes, report);
    }
    match config::parse(&bytes) {
        Err(errs) => {
            for e in every_error(&bytes, errs.0) {
                let off = f.error_offset(&e.path, &e.message);
                let keep_position = matches!(f.body, Body::Tree { raw: Some(_), .. });
                let message = if keep_position {
                    e.message.clone()
                } else {
                    source::strip_serde_position(&e.message).to_owned()
                };
                report.errors.push(diag(&e.path, message, off));
            }
            None
        }
        Ok(cfg) => {
            let schema = config::parse_schema(&bytes).ok()?;
            if let Some(tree) = f.tree() {
                for (path, message) in lint(&cfg, &schema, tree) {
                    let off = f.file_offset(tree.resolve(&path).start);
                    report.warnings.push(diag(&path, message, off));
                }
                let surroundings = key_injection_warnings(src, f, &cfg)
                    .into_iter()
                    .chain(fallback::warnings(src, f, &cfg, &schema));
                for (path, message) in surroundings {
                    let off = f.file_offset(tree.resolve(&path).start);
                    report.warnings.push(diag(&path, message, off));
                }
            }
            Some((cfg, schema))
        }
    }
}

/// serde stops at the first unknown field; the filter would refuse the configuration for
/// that alone, but an operator wants every error at once. So: drop each unknown field (the
/// compiler says which, [`config::ConfigError::unknown_field`]) and compile again, until the
/// errors are about something else. (Later positions refer to the re-serialised JSON, so
/// they are taken from the paths only.)
fn every_error(bytes: &[u8], first: Vec<config::ConfigError>) -> Vec<config::ConfigError> {
    let mut out: Vec<config::ConfigError> = Vec::new();
    let mut errs = first;
    let Ok(mut value) = serde_json::from_slice::<serde_json::Value>(bytes) else {
        return errs;
    };
    for round in 0..64 {
        let unknown = match errs.as_slice() {
            [one] if one.unknown_field().is_some() => one.clone(),
            _ => break,
        };
        let Some(field) = unknown.unknown_field() else {
            break;
        };
        if !remove_field(&mut value, &field.parent, &field.name) {
            break;
        }
        let mut shown = unknown;
        if round > 0 {
            shown.message = source::strip_serde_position(&shown.message).to_owned();
        }
        out.push(shown);
        let Ok(next) = serde_json::to_vec(&value) else {
            break;
        };
        match config::parse(&next) {
            Ok(_) => return out,
            Err(e) => errs = e.0,
        }
    }
    for mut e in errs {
        if !out.is_empty() {
            e.message = source::strip_serde_position(&e.message).to_owned();
        }
        out.push(e);
    }
    out
}

/// Removes member `field` from the object at `parent`.
fn remove_field(value: &mut serde_json::Value, parent: &[PathSegment], field: &str) -> bool {
    let mut node = Some(value);
    for segment in parent {
        node = match segment {
            PathSegment::Key(k) => node.and_then(|n| n.get_mut(k.as_str())),
            PathSegment::Index(i) => node.and_then(|n| n.get_mut(*i)),
        };
    }
    node.and_then(serde_json::Value::as_object_mut)
        .is_some_and(|o| o.remove(field).is_some())
}

// === warnings about the plugin configuration ===

/// A route as the warnings see it: (path of its weights, what to call it, the sum of its
/// weights, its canary targets as (path, model)).
type RouteFacts = (String, String, f64, Vec<(String, ModelId)>);

/// Warnings (path, message) for a valid configuration.
pub fn lint(cfg: &Config, schema: &GatewayConfig, tree: &Node) -> Vec<(String, String)> {
    let mut out = Vec::new();
    secrets_in_tree(tree, "", &mut out);

    // Each route: (path of its weights, what to call it, sum, canaries as (path, model)).
    let mut routes: Vec<RouteFacts> = Vec::new();
    for (r, route) in schema.routes.iter().enumerate() {
        let compiled = cfg.routes.iter().find(|x| x.name == route.name);
        let targets: Vec<(String, ModelId, f64)> = route
            .targets
            .iter()
            .enumerate()
            .filter_map(|(t, target)| {
                let model = cfg
                    .resolve_target(&target.model, target.version.as_deref())
                    .ok()?;
                Some((format!("routes[{r}].targets[{t}]"), model, target.weight))
            })
            .collect();
        let sum = compiled.map_or(0.0, |c| c.total_weight);
        routes.push((
            format!("routes[{r}].targets"),
            format!("route {:?}", route.name),
            sum,
            canaries(cfg, &targets),
        ));
    }
    if let Some(implicit) = cfg.routes.iter().find(|r| r.name == route_labels::IMPLICIT) {
        let targets: Vec<(String, ModelId, f64)> = cfg
            .model_ids()
            .map(|m| (m, cfg.model(m).weight))
            .filter(|&(_, weight)| weight > 0.0)
            .map(|(m, weight)| (m.to_string(), m, weight))
            .collect();
        routes.push((
            "models".into(),
            "the implicit default route (models[].weight)".into(),
            implicit.total_weight,
            canaries(cfg, &targets),
        ));
    }

    for (_, what, _, canary) in &routes {
        for (path, m) in canary {
            let model = cfg.model(*m);
            if !schema.prices.contains_key(&model.name) {
                out.push((
                    path.clone(),
                    format!(
                        "{}@{} is the canary of {what} but has no price: its cost can't be measured or compared with the stable targets (add prices.{})",
                        model.name, model.version_label, model.name
                    ),
                ));
            }
        }
    }

    // A request makes at most max_attempts attempts (endpoint retries included): the
    // fallback models past max_attempts - 1 are never tried.
    for id in cfg.model_ids() {
        let model = cfg.model(id);
        let reachable = cfg.max_attempts.saturating_sub(1) as usize;
        if model.fallback.len() > reachable {
            out.push((
                format!("models[{}].fallback", id.index()),
                format!(
                    "lists {} model(s), but max_attempts is {}: a request makes at most {} attempts (endpoint retries included), so fallback[{reachable}] and later are never tried (raise max_attempts or shorten the list)",
                    model.fallback.len(),
                    cfg.max_attempts,
                    cfg.max_attempts
                ),
            ));
        }
    }

    let is_100 = |s: f64| (s - 100.0).abs() < 1e-9;
    if routes.len() >= 2 {
        for (i, (path, what, sum, _)) in routes.iter().enumerate() {
            let others_100 = routes
                .iter()
                .enumerate()
                .all(|(j, r)| j == i || is_100(r.2));
            if !is_100(*sum) && others_100 {
                out.push((
                    path.clone(),
                    format!(
                        "the weights of {what} sum to {}, while every other route's sum to 100 (shares are weight / sum, so this works, but the percent convention is broken)",
                        fmt_num(*sum)
                    ),
                ));
            }
        }
    }
    out
}

/// The canary targets of a route: its pre-release versions, or else (several live targets
/// with different weights) the smallest-weight ones.
fn canaries(cfg: &Config, targets: &[(String, ModelId, f64)]) -> Vec<(String, ModelId)> {
    let live: Vec<&(String, ModelId, f64)> = targets.iter().filter(|t| t.2 > 0.0).collect();
    let pre: Vec<(String, ModelId)> = live
        .iter()
        .filter(|t| !cfg.model(t.1).version.pre.is_empty())
        .map(|t| (t.0.clone(), t.1))
        .collect();
    if !pre.is_empty() {
        return pre;
    }
    if live.len() < 2 {
        return Vec::new();
    }
    let min = live.iter().map(|t| t.2).fold(f64::INFINITY, f64::min);
    let max = live.iter().map(|t| t.2).fold(0.0, f64::max);
    if min >= max {
        return Vec::new();
    }
    live.iter()
        .filter(|t| t.2 <= min)
        .map(|t| (t.0.clone(), t.1))
        .collect()
}

pub fn fmt_num(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        let s = format!("{x:.6}");
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    }
}

/// Does `s` contain something that looks like a provider API key?
pub fn looks_like_key(s: &str) -> bool {
    let key_char = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    for (i, _) in s.match_indices("sk-") {
        let boundary = s[..i].chars().last().is_none_or(|c| !key_char(c));
        if boundary && s[i + 3..].chars().take_while(|&c| key_char(c)).count() >= 20 {
            return true;
        }
    }
    for (i, _) in s.match_indices("Bearer ") {
        if s[i + 7..]
            .chars()
            .take_while(|&c| key_char(c) || c == '.')
            .count()
            >= 20
        {
            return true;
        }
    }
    false
}

const KEY_WHY: &str = "keys in a configuration end up in Git and in Envoy's /config_dump; the filter reads the key from the VM environment (upstream.api_key_env, vm_config.environment_variables.host_env_keys / a Secret)";

fn secrets_in_tree(node: &Node, path: &str, out: &mut Vec<(String, String)>) {
    match &node.value {
        Value::String(s, _) if looks_like_key(s) => {
            out.push((
                path.to_owned(),
                format!("a string that looks like a literal API key: {KEY_WHY}"),
            ));
        }
        Value::Object(members) => {
            for m in members {
                let p = if path.is_empty() {
                    m.key.clone()
                } else {
                    format!("{path}.{}", m.key)
                };
                secrets_in_tree(&m.node, &p, out);
            }
        }
        Value::Array(items) => {
            for (i, n) in items.iter().enumerate() {
                secrets_in_tree(n, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

// === warnings about what surrounds the plugin configuration ===

/// The `@type` of Envoy's credential_injector HTTP filter.
const CREDENTIAL_INJECTOR: &str =
    "envoy.extensions.filters.http.credential_injector.v3.CredentialInjector";

/// `upstream.key_injection: upstream`: the filter sets no key, so each cluster it sends API
/// requests to must inject one with an upstream HTTP filter (Envoy's credential_injector). In
/// an Envoy bootstrap, warn about each of those clusters, defined in
/// `static_resources.clusters`, that has none. Only the cluster the filter names counts: with
/// an aggregate cluster Envoy ignores its children's upstream filters. Clusters that aren't
/// static (CDS) are not seen.
fn key_injection_warnings(src: &Source, f: &Found, cfg: &Config) -> Vec<(String, String)> {
    let mut out = Vec::new();
    // The filter running as a cluster's upstream filter routes nothing: the listener's
    // instance (same clusters) is the one checked.
    if cfg.key_injection != KeyInjection::Upstream
        || !matches!(f.envelope, Some(Envelope::Wasm(_)))
        || fallback::is_upstream_instance(f)
    {
        return out;
    }
    let Some(doc) = src.doc_at(f.offset) else {
        return out;
    };
    let Some(clusters) = doc.get("static_resources").and_then(|r| r.get("clusters")) else {
        return out;
    };
    let mut names: Vec<&str> = cfg.models.iter().map(|m| m.cluster.as_str()).collect();
    if cfg.unknown_models == UnknownModels::Passthrough {
        names.push(cfg.cluster.as_str());
    }
    names.sort_unstable();
    names.dedup();
    for name in names {
        let Some(cluster) = clusters
            .items()
            .iter()
            .find(|c| c.get("name").and_then(Node::as_str) == Some(name))
        else {
            continue;
        };
        if !mentions(cluster, CREDENTIAL_INJECTOR) {
            out.push((
                "upstream.key_injection".into(),
                format!(
                    "is \"upstream\", but cluster {name:?} has no credential_injector upstream filter: the filter sets no key, so requests to it reach the provider without one (add envoy.filters.http.credential_injector to that cluster's HttpProtocolOptions http_filters — on the aggregate cluster itself, Envoy ignores its children's — as in envoy/key-upstream.yaml)"
                ),
            ));
        }
    }
    out
}

/// Does a string in `node` (or below) contain `needle`?
fn mentions(node: &Node, needle: &str) -> bool {
    match &node.value {
        Value::String(s, _) => s.contains(needle),
        Value::Object(members) => members.iter().any(|m| mentions(&m.node, needle)),
        Value::Array(items) => items.iter().any(|n| mentions(n, needle)),
        _ => false,
    }
}

fn envelope_warnings(src: &Source, f: &Found, env: &Envelope, bytes: &[u8], report: &mut Report) {
    let upstream = config::parse_schema(bytes).ok().and_then(|s| s.upstream);
    // With key_injection "upstream" the VM never reads the key: nothing to say about its
    // environment.
    let vm_reads_key = upstream
        .as_ref()
        .is_none_or(|u| u.key_injection == KeyInjection::Filter);
    let key_env = upstream
        .and_then(|u| u.api_key_env)
        .unwrap_or_else(|| config::defaults::API_KEY_ENV.to_owned());
    let mut warn = |path: &str, message: String, offset: usize| {
        report.warnings.push(Diag {
            file: src.name.clone(),
            location: f.location.clone(),
            path: path.to_owned(),
            message,
            line: Some(src.line(offset)),
        })
    };
    match env {
        Envelope::Wasm(config) => {
            let allow = config.get("allow_on_headers_stop_iteration");
            // For the upstream instance, the listener's configuration says it, with what the
            // flag is for there (`fallback::warnings`).
            if allow.is_none_or(|a| a.value != Value::Bool(true))
                && !fallback::is_upstream_instance(f)
            {
                warn(
                    "config.allow_on_headers_stop_iteration",
                    "is not true: the filter holds the request headers until it has read the body; without this flag (Envoy ≥ 1.35) the body is never delivered and every request hangs".into(),
                    allow.map_or(config.start, |a| a.start),
                );
            }
            let vars = config
                .get("vm_config")
                .and_then(|v| v.get("environment_variables"));
            let host = vars
                .and_then(|v| v.get("host_env_keys"))
                .is_some_and(|k| k.items().iter().any(|i| i.as_str() == Some(&key_env)));
            let inline = vars
                .and_then(|v| v.get("key_values"))
                .and_then(|kv| kv.get(&key_env));
            if vm_reads_key && !host && inline.is_none() {
                warn(
                    "config.vm_config.environment_variables.host_env_keys",
                    format!("does not list {key_env}: the VM won't see the provider key and every request gets 500 gateway_misconfigured"),
                    vars.map_or(config.start, |v| v.start),
                );
            }
        }
        Envelope::WasmPlugin(spec) => {
            let env_list = spec.get("vmConfig").and_then(|v| v.get("env"));
            let entry = env_list.and_then(|l| {
                l.items()
                    .iter()
                    .find(|e| e.get("name").and_then(Node::as_str) == Some(&key_env))
            });
            if vm_reads_key && entry.is_none() {
                warn(
                    "spec.vmConfig.env",
                    format!("has no {key_env} entry (valueFrom: HOST): the VM won't see the provider key and every request gets 500 gateway_misconfigured"),
                    env_list.map_or(spec.start, |v| v.start),
                );
            }
        }
    }
}

/// Literal keys anywhere in the file outside the plugin configurations (which [`lint`]
/// scans): strings that look like keys, `KEY_VAR: value` members, and `{name: KEY_VAR,
/// value: …}` entries (Kubernetes/Istio env) that don't read from the host. Kubernetes
/// `Secret`s are where keys belong: only key-looking strings are reported there.
fn scan_file_for_keys(src: &Source, found: &[Found], key_names: &[String], report: &mut Report) {
    let skip: Vec<(usize, usize)> = found
        .iter()
        .filter_map(|f| match &f.body {
            Body::Tree { node, .. } => Some((node.start, node.end)),
            Body::Embedded(e) => Some((e.scalar.start, e.scalar.end)),
            Body::Unusable { .. } => None,
        })
        .collect();
    let multi = src.docs.len() > 1;
    for (d, doc) in src.docs.iter().enumerate() {
        let kind = doc.get("kind").and_then(Node::as_str);
        let name = doc
            .get("metadata")
            .and_then(|m| m.get("name"))
            .and_then(Node::as_str)
            .unwrap_or("?");
        let mut location = if multi {
            format!("doc[{d}]")
        } else {
            String::new()
        };
        if let Some(k) = kind {
            location = format!("{location} {k}/{name}").trim().to_owned();
        }
        let mut hits = Vec::new();
        scan_node(doc, "", &skip, key_names, kind == Some("Secret"), &mut hits);
        for (path, message, offset) in hits {
            report.warnings.push(Diag {
                file: src.name.clone(),
                location: location.clone(),
                path,
                message,
                line: Some(src.line(offset)),
            });
        }
    }
}

fn scan_node(
    node: &Node,
    path: &str,
    skip: &[(usize, usize)],
    key_names: &[String],
    secret: bool,
    out: &mut Vec<(String, String, usize)>,
) {
    if skip
        .iter()
        .any(|&(s, e)| node.start >= s && node.end <= e && e > s)
    {
        return;
    }
    let join = |k: &str| {
        if path.is_empty() {
            k.to_owned()
        } else {
            format!("{path}.{k}")
        }
    };
    match &node.value {
        Value::String(s, _) if looks_like_key(s) => {
            out.push((
                path.to_owned(),
                format!("a string that looks like a literal API key: {KEY_WHY}"),
                node.start,
            ));
        }
        Value::Object(members) => {
            if !secret {
                let named = node.get("name").and_then(Node::as_str);
                let value = node.get("value").and_then(Node::as_str);
                let from_host = node
                    .get("valueFrom")
                    .and_then(Node::as_str)
                    .is_some_and(|v| v == "HOST");
                if let (Some(n), Some(v)) = (named, value) {
                    if key_names.iter().any(|k| k == n) && !v.is_empty() && !from_host {
                        out.push((
                            join("value"),
                            format!("{n} is set to a literal value: {KEY_WHY}"),
                            node.start,
                        ));
                    }
                }
            }
            for m in members {
                if !secret && key_names.contains(&m.key) {
                    if let Some(v) = m.node.as_str() {
                        if !v.is_empty() && !looks_like_key(v) {
                            out.push((
                                join(&m.key),
                                format!("{} is set to a literal value: {KEY_WHY}", m.key),
                                m.node.start,
                            ));
                        }
                    }
                }
                scan_node(&m.node, &join(&m.key), skip, key_names, secret, out);
            }
        }
        Value::Array(items) => {
            for (i, n) in items.iter().enumerate() {
                scan_node(n, &format!("{path}[{i}]"), skip, key_names, secret, out);
            }
        }
        _ => {}
    }
}

// === --check-models ===

#[derive(Default)]
struct ProviderModels {
    cache: HashMap<String, Result<Vec<String>, String>>,
}

impl ProviderModels {
    fn get(&mut self, base: &str, key_env: &str) -> &Result<Vec<String>, String> {
        self.cache
            .entry(base.to_owned())
            .or_insert_with(|| fetch_models(base, key_env))
    }
}

/// `GET {base}/models` with the key from `key_env`: the ids the provider lists.
pub fn fetch_models(base: &str, key_env: &str) -> Result<Vec<String>, String> {
    let url = format!("{}/models", base.trim_end_matches('/'));
    let key = std::env::var(key_env).ok().filter(|k| !k.is_empty());
    let (status, body) = crate::http::get(&url, &[], key.as_deref(), Duration::from_secs(15))
        .map_err(|e| format!("GET {url} failed: {e}"))?;
    if status != 200 {
        let hint = if key.is_none() {
            format!(" ({key_env} is not set)")
        } else {
            String::new()
        };
        return Err(format!("GET {url} answered HTTP {status}{hint}"));
    }
    let doc: serde_json::Value = serde_json::from_str(&body)
        .map_err(|e| format!("GET {url}: the answer is not JSON: {e}"))?;
    let data = doc
        .get("data")
        .and_then(|d| d.as_array())
        .ok_or_else(|| format!("GET {url}: the answer has no `data` list (OpenAI list format)"))?;
    Ok(data
        .iter()
        .filter_map(|m| m.get("id").and_then(|i| i.as_str()).map(str::to_owned))
        .collect())
}

fn check_models(
    src: &Source,
    f: &Found,
    cfg: &Config,
    base: &str,
    listed: &[String],
    report: &mut Report,
) {
    let url = format!("{}/models", base.trim_end_matches('/'));
    let mut seen: Vec<&str> = Vec::new();
    for (i, m) in cfg.models.iter().enumerate() {
        if seen.contains(&m.name.as_str()) {
            continue;
        }
        seen.push(&m.name);
        if !listed.contains(&m.name) {
            let path = format!("models[{i}].name");
            let off = f
                .tree()
                .map_or(f.offset, |t| f.file_offset(t.resolve(&path).start));
            report.errors.push(Diag {
                file: src.name.clone(),
                location: f.location.clone(),
                path,
                message: format!(
                    "model version mismatch: the provider does not list {:?} (GET {url} lists {} model(s))",
                    m.name,
                    listed.len()
                ),
                line: Some(src.line(off)),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_unknown_field_and_then_the_compiler_errors_are_reported() {
        let json = br#"{"models": [{"name": "a", "version": "2.0", "colour": 1, "weight": 1}], "prices": {"a": {"input": 1, "output": 1, "currency": "EUR"}}, "extra": true}"#;
        let first = config::parse(json).unwrap_err().0;
        let all: Vec<String> = every_error(json, first)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(all.len(), 4, "{all:?}");
        assert!(
            all[0].starts_with("models[0].colour: unknown field `colour`"),
            "{all:?}"
        );
        assert!(
            all[0].contains(" at line 1 column "),
            "the first keeps serde's position: {all:?}"
        );
        // Then in the (sorted) order of the re-serialised JSON, without positions.
        assert!(
            all[1].starts_with("extra: unknown field `extra`"),
            "{all:?}"
        );
        assert!(
            all[2].starts_with("prices.a.currency: unknown field `currency`"),
            "{all:?}"
        );
        assert!(!all[2].contains(" at line "), "{all:?}");
        assert!(
            all[3].starts_with("models[0].version: \"2.0\" is not SemVer"),
            "{all:?}"
        );
    }

    #[test]
    fn unknown_fields_under_keys_with_dots_are_found_and_removed() {
        let json = br#"{"models": [{"name": "a.b", "version": "1.0.0", "weight": 1}], "prices": {"a.b": {"input": 1, "output": 1, "x": 1}}, "y": 2}"#;
        let first = config::parse(json).unwrap_err().0;
        let all: Vec<String> = every_error(json, first)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(all.len(), 2, "{all:?}");
        assert!(
            all[0].starts_with("prices.a.b.x: unknown field `x`"),
            "{all:?}"
        );
        assert!(all[1].starts_with("y: unknown field `y`"), "{all:?}");
    }

    #[test]
    fn key_shapes() {
        assert!(looks_like_key(concat!("sk-", "abcdefghijklmnopqrstuvwx")));
        assert!(looks_like_key("token: sk-proj-abcdefghij0123456789"));
        assert!(looks_like_key("Bearer abcdefghijklmnopqrstuvwxyz"));
        assert!(!looks_like_key("sk-dummy"));
        assert!(!looks_like_key(concat!(
            "task-",
            "abcdefghijklmnopqrstuvwxyz"
        )));
        assert!(!looks_like_key("HOLYSHEEP_API_KEY"));
    }

    #[test]
    fn numbers_print_like_an_operator_wrote_them() {
        assert_eq!(fmt_num(90.0), "90");
        assert_eq!(fmt_num(33.333333333), "33.333333");
        assert_eq!(fmt_num(0.5), "0.5");
    }
}
