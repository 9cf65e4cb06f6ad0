//! `ai-gateway validate`, the Envoy side of `models[].fallback` and `stream_idle_timeout_ms`
//! (docs/failover.md#fallback): what the filter can't do per request, and so what the
//! Envoy bootstrap around it must carry.
//!
//! - A fallback model is tried on a retry attempt by the same `.wasm` running as an upstream
//!   HTTP filter of the cluster (`root_id: ai_gateway_upstream`). Envoy builds the upstream
//!   filter chain from the cluster the route named: for an aggregate cluster from the
//!   aggregate itself, never from its children (as for `credential_injector`).
//! - That filter holds each attempt's headers while it rewrites the body, which needs
//!   `allow_on_headers_stop_iteration: true` in its own wasm config.
//! - `stream_idle_timeout_ms` is enforced by the route's `retry_policy.per_try_idle_timeout`.

use crate::source::{Envelope, Found, Source, WASM_TYPE};
use crate::tree::{Node, Value};
use ai_gateway_filter::config::{schema::GatewayConfig, Config};
use ai_gateway_filter::request::CLUSTER_HEADER;

/// The `root_id` by which the filter knows it runs as a cluster's upstream HTTP filter.
pub const UPSTREAM_ROOT_ID: &str = "ai_gateway_upstream";
/// The key of the upstream HTTP protocol options in `typed_extension_protocol_options`.
const HTTP_PROTOCOL_OPTIONS: &str = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions";

/// Is this configuration the one of the filter running as an upstream HTTP filter?
pub fn is_upstream_instance(f: &Found) -> bool {
    match &f.envelope {
        Some(Envelope::Wasm(config)) => {
            config.get("root_id").and_then(Node::as_str) == Some(UPSTREAM_ROOT_ID)
        }
        _ => false,
    }
}

/// Warnings (path in the plugin configuration, message) about the Envoy bootstrap that holds
/// the listener's filter `f`: the clusters its fallback lists go to, and the routes that
/// enforce `stream_idle_timeout_ms`. Only static resources are seen (CDS and RDS are not);
/// nothing is said when no model has a fallback list and `stream_idle_timeout_ms` is not set.
pub fn warnings(
    src: &Source,
    f: &Found,
    cfg: &Config,
    schema: &GatewayConfig,
) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if !matches!(f.envelope, Some(Envelope::Wasm(_))) || is_upstream_instance(f) {
        return out;
    }
    let Some(doc) = src.doc_at(f.offset) else {
        return out;
    };
    let falls_back = cfg.models.iter().any(|m| !m.fallback.is_empty());
    if falls_back {
        cluster_warnings(doc, cfg, &mut out);
    }
    if falls_back || schema.stream_idle_timeout_ms.is_some() {
        route_warnings(doc, cfg, &mut out);
    }
    out
}

/// Each cluster a model with a fallback list goes to needs our upstream filter, with
/// `allow_on_headers_stop_iteration: true`. One warning per cluster, at the first such model.
fn cluster_warnings(doc: &Node, cfg: &Config, out: &mut Vec<(String, String)>) {
    let Some(clusters) = doc.get("static_resources").and_then(|r| r.get("clusters")) else {
        return;
    };
    let mut seen: Vec<&str> = Vec::new();
    for id in cfg.model_ids() {
        let model = cfg.model(id);
        let name = model.cluster.as_str();
        if model.fallback.is_empty() || seen.contains(&name) {
            continue;
        }
        seen.push(name);
        let Some(cluster) = clusters
            .items()
            .iter()
            .find(|c| c.get("name").and_then(Node::as_str) == Some(name))
        else {
            continue;
        };
        let path = format!("models[{}].fallback", id.index());
        let who = format!("{}@{}", model.name, model.version_label);
        match upstream_filter(cluster) {
            Upstream::Missing => out.push((
                path,
                format!(
                    "{who} has a fallback list, but cluster {name:?} has no upstream ai-gateway filter: the fallback models are never tried (add envoy.filters.http.wasm with root_id: {UPSTREAM_ROOT_ID} to that cluster's HttpProtocolOptions http_filters — on the aggregate cluster itself, Envoy ignores its children's; see docs/failover.md#fallback)"
                ),
            )),
            Upstream::Found(config) => {
                let allow = config.get("allow_on_headers_stop_iteration");
                if allow.is_none_or(|a| a.value != Value::Bool(true)) {
                    out.push((
                        path,
                        format!(
                            "{who} has a fallback list, but the upstream ai-gateway filter of cluster {name:?} (root_id: {UPSTREAM_ROOT_ID}) lacks allow_on_headers_stop_iteration: true: it holds each attempt's headers while it rewrites the body for a fallback model, which Envoy (≥ 1.35) refuses without the flag (set it in that filter's config)"
                        ),
                    ));
                }
            }
            // Configured through ECDS: its root_id and flags are in another file.
            Upstream::Discovered => {}
        }
    }
}

enum Upstream<'a> {
    Missing,
    /// The wasm filter's `config`.
    Found(&'a Node),
    /// A wasm filter whose configuration comes from ECDS.
    Discovered,
}

/// Our upstream filter among the cluster's upstream HTTP filters (one run by a `composite`
/// filter counts).
fn upstream_filter(cluster: &Node) -> Upstream<'_> {
    let Some(filters) = cluster
        .get("typed_extension_protocol_options")
        .and_then(|o| o.get(HTTP_PROTOCOL_OPTIONS))
        .and_then(|o| o.get("http_filters"))
    else {
        return Upstream::Missing;
    };
    let mut found = Upstream::Missing;
    find_upstream_wasm(filters, &mut found);
    found
}

fn find_upstream_wasm<'a>(node: &'a Node, found: &mut Upstream<'a>) {
    if matches!(found, Upstream::Found(_)) {
        return;
    }
    match &node.value {
        Value::Object(members) => {
            let wasm = crate::source::wasm_of(node);
            if let Some(config) = wasm.and_then(|w| w.get("config")) {
                if config.get("root_id").and_then(Node::as_str) == Some(UPSTREAM_ROOT_ID) {
                    *found = Upstream::Found(config);
                }
                return;
            }
            let discovered = node.get("config_discovery").is_some_and(|cd| {
                cd.get("type_urls")
                    .is_some_and(|t| t.items().iter().any(|u| u.as_str() == Some(WASM_TYPE)))
            });
            if discovered {
                *found = Upstream::Discovered;
                return;
            }
            for m in members {
                find_upstream_wasm(&m.node, found);
            }
        }
        Value::Array(items) => {
            for n in items {
                find_upstream_wasm(n, found);
            }
        }
        _ => {}
    }
}

/// Every route that sends to the filter's clusters (by `cluster_header:
/// x-ai-gateway-cluster`, or naming one of the models' clusters) must have
/// `retry_policy.per_try_idle_timeout` = `stream_idle_timeout_ms` (a route without a retry
/// policy of its own takes its virtual host's).
fn route_warnings(doc: &Node, cfg: &Config, out: &mut Vec<(String, String)>) {
    let mut vhosts = Vec::new();
    virtual_hosts(doc, String::new(), &mut vhosts);
    let want = cfg.stream_idle_timeout_ms;
    let set = format!(
        "set per_try_idle_timeout: {} in its retry_policy",
        duration(want)
    );
    for (vpath, vhost) in vhosts {
        for (r, route) in vhost
            .get("routes")
            .map_or(&[][..], Node::items)
            .iter()
            .enumerate()
        {
            let Some(action) = route.get("route") else {
                continue;
            };
            let ours = action.get("cluster_header").and_then(Node::as_str) == Some(CLUSTER_HEADER)
                || action
                    .get("cluster")
                    .and_then(Node::as_str)
                    .is_some_and(|c| c == cfg.cluster || cfg.models.iter().any(|m| m.cluster == c));
            if !ours {
                continue;
            }
            let at = format!("{vpath}.routes[{r}]");
            let policy = action
                .get("retry_policy")
                .or_else(|| vhost.get("retry_policy"));
            let idle = policy.and_then(|p| p.get("per_try_idle_timeout"));
            let message = match idle.map(millis) {
                None => format!(
                    "is {want} ms, but the route {at} has no retry_policy.per_try_idle_timeout: Envoy enforces the stream idle timeout through the route (the filter can't set it per request), so a started answer that stalls is never cut ({set})"
                ),
                Some(Some(ms)) if ms == want => continue,
                Some(Some(ms)) => format!(
                    "is {want} ms, but the route {at} has retry_policy.per_try_idle_timeout {}: Envoy enforces the route's (the filter can't set it per request) ({set})",
                    duration(ms)
                ),
                Some(None) => format!(
                    "is {want} ms, but the route {at} has a retry_policy.per_try_idle_timeout that is not a duration ({set})"
                ),
            };
            out.push(("stream_idle_timeout_ms".into(), message));
        }
    }
}

/// Every `virtual_hosts[]` entry under `node`, with its path.
fn virtual_hosts<'a>(node: &'a Node, path: String, out: &mut Vec<(String, &'a Node)>) {
    let join = |k: &str| {
        if path.is_empty() {
            k.to_owned()
        } else {
            format!("{path}.{k}")
        }
    };
    match &node.value {
        Value::Object(members) => {
            for m in members {
                if m.key == "virtual_hosts" {
                    for (i, v) in m.node.items().iter().enumerate() {
                        out.push((format!("{}[{i}]", join(&m.key)), v));
                    }
                } else {
                    virtual_hosts(&m.node, join(&m.key), out);
                }
            }
        }
        Value::Array(items) => {
            for (i, n) in items.iter().enumerate() {
                virtual_hosts(n, format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

/// A protobuf `Duration` in milliseconds: `"60s"`, `"1.5s"` (JSON/YAML form) or
/// `{seconds, nanos}`.
fn millis(node: &Node) -> Option<u64> {
    match &node.value {
        Value::String(s, _) => {
            let secs = s.strip_suffix('s')?;
            let (whole, frac) = secs.split_once('.').unwrap_or((secs, ""));
            if whole.is_empty() && frac.is_empty()
                || !whole
                    .bytes()
                    .chain(frac.bytes())
                    .all(|b| b.is_ascii_digit())
                || frac.len() > 9
            {
                return None;
            }
            let whole: u64 = if whole.is_empty() {
                0
            } else {
                whole.parse().ok()?
            };
            let nanos: u64 = format!("{frac:0<9}").parse().ok()?;
            whole.checked_mul(1000)?.checked_add(nanos / 1_000_000)
        }
        Value::Object(_) => {
            let num = |k: &str| match node.get(k).map(|n| &n.value) {
                None => Some(0),
                Some(Value::Number(n)) => n.as_u64(),
                Some(Value::String(s, _)) => s.parse().ok(),
                Some(_) => None,
            };
            num("seconds")?
                .checked_mul(1000)?
                .checked_add(num("nanos")? / 1_000_000)
        }
        _ => None,
    }
}

/// Milliseconds as an Envoy duration: `60s`, `1.5s`.
fn duration(ms: u64) -> String {
    if ms % 1000 == 0 {
        format!("{}s", ms / 1000)
    } else {
        let s = format!("{}.{:03}", ms / 1000, ms % 1000);
        format!("{}s", s.trim_end_matches('0'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(yaml: &str) -> Node {
        crate::yaml::parse_all(yaml).unwrap().remove(0)
    }

    #[test]
    fn durations_read_and_written() {
        for (text, ms) in [
            ("60s", Some(60_000)),
            ("1.5s", Some(1500)),
            ("0.25s", Some(250)),
            (".5s", Some(500)),
            ("60", None),
            ("1m", None),
            ("s", None),
            ("{seconds: 60}", Some(60_000)),
            ("{seconds: 1, nanos: 500000000}", Some(1500)),
        ] {
            assert_eq!(
                millis(&node(&format!("v: {text}\n")).get("v").unwrap().clone()),
                ms,
                "{text}"
            );
        }
        assert_eq!(duration(60_000), "60s");
        assert_eq!(duration(1500), "1.5s");
        assert_eq!(duration(1), "0.001s");
    }
}
