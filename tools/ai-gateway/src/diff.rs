//! `ai-gateway diff OLD NEW`: what a configuration change does to traffic. Per route
//! (including the implicit default route of `models[].weight`): each target's share before →
//! after, targets added or removed; models added, removed or with changed settings; changed
//! global settings. Markdown for PR comments, text, or JSON.

use crate::source::{self, Found, Source};
use crate::validate::fmt_num;
use ai_gateway_filter::config::{self, route_labels, Config, Model};
use serde::Serialize;
use std::path::Path;

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Format {
    Markdown,
    Text,
    Json,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct TargetChange {
    pub target: String,
    /// Share of the route's traffic in percent (None: not a target on that side).
    pub before: Option<f64>,
    pub after: Option<f64>,
    pub weight_before: Option<f64>,
    pub weight_after: Option<f64>,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct RouteChange {
    pub route: String,
    /// `added`, `removed`, `changed` or `unchanged`.
    pub status: &'static str,
    pub default_before: bool,
    pub default_after: bool,
    pub targets: Vec<TargetChange>,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct FieldChange {
    pub what: String,
    pub before: String,
    pub after: String,
}

#[derive(Debug, Serialize, PartialEq, Default)]
pub struct ModelChanges {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub changed: Vec<FieldChange>,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct ConfigDiff {
    pub location: String,
    pub routes: Vec<RouteChange>,
    pub models: ModelChanges,
    pub settings: Vec<FieldChange>,
}

impl ConfigDiff {
    pub fn changed(&self) -> bool {
        self.routes.iter().any(|r| r.status != "unchanged")
            || self.models != ModelChanges::default()
            || !self.settings.is_empty()
    }
}

pub fn run(old: &str, new: &str, format: Format) -> i32 {
    let a = match load(old) {
        Ok(x) => x,
        Err((code, msg)) => {
            eprintln!("{msg}");
            return code;
        }
    };
    let b = match load(new) {
        Ok(x) => x,
        Err((code, msg)) => {
            eprintln!("{msg}");
            return code;
        }
    };
    // Pair the configurations: one each, or by location.
    let mut diffs = Vec::new();
    if a.len() == 1 && b.len() == 1 {
        diffs.push(diff_configs(&b[0].0, &a[0].1, &b[0].1));
    } else {
        for (loc, ca) in &a {
            match b.iter().find(|(l, _)| l == loc) {
                Some((_, cb)) => diffs.push(diff_configs(loc, ca, cb)),
                None => eprintln!("{old}: {loc}: not in {new} (removed)"),
            }
        }
        for (loc, _) in &b {
            if !a.iter().any(|(l, _)| l == loc) {
                eprintln!("{new}: {loc}: not in {old} (added)");
            }
        }
    }
    let out = match format {
        Format::Json => serde_json::to_string_pretty(&serde_json::json!({
            "old": old, "new": new,
            "changed": diffs.iter().any(ConfigDiff::changed),
            "configs": diffs,
        }))
        .unwrap_or_else(|e| e.to_string()),
        Format::Markdown => markdown(old, new, &diffs),
        Format::Text => text(old, new, &diffs),
    };
    println!("{out}");
    0
}

/// Every plugin configuration of a file, compiled: (location, config). Errors: exit code
/// and message.
fn load(path: &str) -> Result<Vec<(String, Config)>, (i32, String)> {
    let src = Source::read(Path::new(path))
        .map_err(|source::Unreadable(why)| (2, format!("{path}: unreadable: {why}")))?;
    let (found, _) = source::find(&src);
    if found.is_empty() {
        return Err((
            1,
            format!("{path}: no ai-gateway plugin configuration found"),
        ));
    }
    let mut out = Vec::new();
    for f in found {
        out.push((f.location.clone(), compile(&src, &f)?));
    }
    Ok(out)
}

fn compile(src: &Source, f: &Found) -> Result<Config, (i32, String)> {
    let at = |msg: String| {
        let loc = if f.location.is_empty() {
            String::new()
        } else {
            format!("{}: ", f.location)
        };
        (
            1,
            format!(
                "{}: {loc}{msg} (run `ai-gateway validate {}`)",
                src.name, src.name
            ),
        )
    };
    let bytes = match (&f.body, f.json_bytes()) {
        (source::Body::Unusable { path, reason }, _) => {
            return Err(at(format!("{path}: {reason}")))
        }
        (_, Some(b)) => b,
        (_, None) => return Err(at("unusable plugin configuration".into())),
    };
    config::parse(&bytes).map_err(|e| at(format!("invalid: {e}")))
}

fn label(m: &Model) -> String {
    format!("{}@{}", m.name, m.version_label)
}

/// Targets of route `name` as (label, weight, share %), in configuration order.
fn shares(cfg: &Config, name: &str) -> Option<Vec<(String, f64, f64)>> {
    let route = cfg.routes.iter().find(|r| r.name == name)?;
    let mut out: Vec<(String, f64, f64)> = route
        .targets
        .iter()
        .map(|t| {
            let share = if route.total_weight > 0.0 {
                t.weight / route.total_weight * 100.0
            } else {
                0.0
            };
            (label(cfg.model(t.model)), t.weight, share)
        })
        .collect();
    // The compiled route puts drained targets last; show configuration order (model order).
    out.sort_by_key(|(l, _, _)| {
        cfg.models
            .iter()
            .position(|m| label(m) == *l)
            .unwrap_or(usize::MAX)
    });
    Some(out)
}

fn is_default(cfg: &Config, name: &str) -> bool {
    cfg.default_route.is_some_and(|i| cfg.route(i).name == name)
}

pub fn diff_configs(location: &str, a: &Config, b: &Config) -> ConfigDiff {
    let mut names: Vec<String> = a.routes.iter().map(|r| r.name.clone()).collect();
    for r in &b.routes {
        if !names.contains(&r.name) {
            names.push(r.name.clone());
        }
    }
    let mut routes = Vec::new();
    for name in names {
        let (sa, sb) = (shares(a, &name), shares(b, &name));
        let mut labels: Vec<String> = Vec::new();
        for (l, _, _) in sa.iter().flatten().chain(sb.iter().flatten()) {
            if !labels.contains(l) {
                labels.push(l.clone());
            }
        }
        let find = |s: &Option<Vec<(String, f64, f64)>>, l: &str| {
            s.as_ref()
                .and_then(|v| v.iter().find(|(x, _, _)| x == l).map(|&(_, w, p)| (w, p)))
        };
        let targets: Vec<TargetChange> = labels
            .iter()
            .map(|l| {
                let (x, y) = (find(&sa, l), find(&sb, l));
                TargetChange {
                    target: l.clone(),
                    before: x.map(|v| v.1),
                    after: y.map(|v| v.1),
                    weight_before: x.map(|v| v.0),
                    weight_after: y.map(|v| v.0),
                }
            })
            .collect();
        let status = match (&sa, &sb) {
            (None, Some(_)) => "added",
            (Some(_), None) => "removed",
            _ if targets
                .iter()
                .any(|t| !close(t.before, t.after) || t.weight_before != t.weight_after) =>
            {
                "changed"
            }
            _ => "unchanged",
        };
        routes.push(RouteChange {
            route: name.clone(),
            status,
            default_before: is_default(a, &name),
            default_after: is_default(b, &name),
            targets,
        });
    }

    let mut models = ModelChanges::default();
    for m in &a.models {
        match b
            .models
            .iter()
            .find(|x| x.name == m.name && x.version_label == m.version_label)
        {
            None => models.removed.push(label(m)),
            Some(n) => {
                let l = label(m);
                let mut field = |what: &str, x: String, y: String| {
                    if x != y {
                        models.changed.push(FieldChange {
                            what: format!("{l} {what}"),
                            before: x,
                            after: y,
                        });
                    }
                };
                let opt = |v: Option<String>| v.unwrap_or_else(|| "(none)".into());
                field(
                    "max_tokens",
                    opt(m.max_tokens.map(|v| v.to_string())),
                    opt(n.max_tokens.map(|v| v.to_string())),
                );
                field(
                    "temperature",
                    opt(m.temperature.map(fmt_num)),
                    opt(n.temperature.map(fmt_num)),
                );
                // Inherited values (upstream.cluster, the global timeout_ms) are reported once,
                // as settings; a model's own value when it has one on either side.
                if m.cluster != a.cluster || n.cluster != b.cluster {
                    field("cluster", m.cluster.clone(), n.cluster.clone());
                }
                if m.timeout_ms != a.timeout_ms || n.timeout_ms != b.timeout_ms {
                    field(
                        "timeout_ms",
                        m.timeout_ms.to_string(),
                        n.timeout_ms.to_string(),
                    );
                }
                field(
                    "system_prompt",
                    opt(m.system_prompt.as_deref().map(short)),
                    opt(n.system_prompt.as_deref().map(short)),
                );
                field("price", opt(m.price.map(price)), opt(n.price.map(price)));
                field("fallback", fallback(a, m), fallback(b, n));
            }
        }
    }
    for m in &b.models {
        if !a
            .models
            .iter()
            .any(|x| x.name == m.name && x.version_label == m.version_label)
        {
            models.added.push(label(m));
        }
    }

    let mut settings = Vec::new();
    let mut setting = |what: &str, x: String, y: String| {
        if x != y {
            settings.push(FieldChange {
                what: what.to_owned(),
                before: x,
                after: y,
            });
        }
    };
    let default_name = |c: &Config| {
        c.default_route
            .map(|i| c.route(i))
            .map(|r| {
                if r.name == route_labels::IMPLICIT {
                    "(implicit: models[].weight)".to_owned()
                } else {
                    r.name.clone()
                }
            })
            .unwrap_or_else(|| "(none)".into())
    };
    setting("default_route", default_name(a), default_name(b));
    // Every global setting, as the operator reads it: (field, how to show it).
    let shown: [(&str, Show); 16] = [
        ("unknown_models", |c| {
            format!("{:?}", c.unknown_models).to_lowercase()
        }),
        ("timeout_ms", |c| c.timeout_ms.to_string()),
        ("stream_idle_timeout_ms", |c| {
            c.stream_idle_timeout_ms.to_string()
        }),
        ("max_duration_ms", |c| max_duration(c.max_duration_ms)),
        ("fallback_on", |c| c.fallback_on.to_string()),
        ("max_attempts", |c| c.max_attempts.to_string()),
        ("failover_threshold", |c| fmt_num(c.breaker.threshold)),
        ("failover.window_s", |c| c.breaker.window_s.to_string()),
        ("failover.min_requests", |c| {
            c.breaker.min_requests.to_string()
        }),
        ("failover.cooldown_s", |c| c.breaker.cooldown_s.to_string()),
        ("upstream.cluster", |c| c.cluster.clone()),
        ("upstream.api_key_env", |c| c.api_key_env.clone()),
        ("upstream.key_injection", |c| {
            format!("{:?}", c.key_injection).to_lowercase()
        }),
        ("sticky.header", |c| {
            c.sticky_header.clone().unwrap_or_else(|| "(none)".into())
        }),
        ("stream_usage", |c| {
            if c.stream_usage { "inject" } else { "off" }.into()
        }),
        ("paths", |c| {
            c.paths
                .iter()
                .map(|(p, _)| p.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        }),
    ];
    for (what, show) in shown {
        setting(what, show(a), show(b));
    }
    setting(
        "serve_models_endpoint",
        a.serve_models_endpoint.to_string(),
        b.serve_models_endpoint.to_string(),
    );

    ConfigDiff {
        location: location.to_owned(),
        routes,
        models,
        settings,
    }
}

/// A model's fallback list, resolved (`(none)` when empty): a name that now selects another
/// release shows as a change.
fn fallback(cfg: &Config, m: &Model) -> String {
    if m.fallback.is_empty() {
        return "(none)".into();
    }
    m.fallback
        .iter()
        .map(|&id| label(cfg.model(id)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// How `diff` shows one global setting of a configuration.
type Show = fn(&Config) -> String;

fn max_duration(ms: u64) -> String {
    if ms == 0 {
        "0 (none)".into()
    } else {
        ms.to_string()
    }
}

/// USD per million tokens, input / output.
fn price(p: config::Price) -> String {
    let usd = |micros: u64| fmt_num(micros as f64 / 1e6);
    format!(
        "${} in / ${} out per M tokens",
        usd(p.input_micros_per_mtok),
        usd(p.output_micros_per_mtok)
    )
}

fn close(a: Option<f64>, b: Option<f64>) -> bool {
    match (a, b) {
        (Some(x), Some(y)) => (x - y).abs() < 1e-9,
        (None, None) => true,
        _ => false,
    }
}

fn short(s: &str) -> String {
    let mut out: String = s.chars().take(60).collect();
    if s.chars().count() > 60 {
        out.push('…');
    }
    format!("{out:?}")
}

pub fn pct(x: Option<f64>) -> String {
    match x {
        None => "—".into(),
        Some(v) => {
            let r = (v * 10.0).round() / 10.0;
            format!("{} %", fmt_num(r))
        }
    }
}

fn delta(t: &TargetChange) -> String {
    let d = t.after.unwrap_or(0.0) - t.before.unwrap_or(0.0);
    let r = (d * 10.0).round() / 10.0;
    if r == 0.0 {
        String::new()
    } else if r > 0.0 {
        format!("+{}", fmt_num(r))
    } else {
        format!("−{}", fmt_num(-r))
    }
}

fn route_title(r: &RouteChange) -> String {
    let name = if r.route == route_labels::IMPLICIT {
        "implicit default route (models[].weight)".to_owned()
    } else {
        format!("route `{}`", r.route)
    };
    let mut tags = Vec::new();
    match (r.default_before, r.default_after) {
        (true, true) => tags.push("default route".to_owned()),
        (false, true) => tags.push("now the default route".to_owned()),
        (true, false) => tags.push("no longer the default route".to_owned()),
        _ => {}
    }
    if r.status == "added" || r.status == "removed" {
        tags.push(r.status.to_owned());
    }
    if tags.is_empty() {
        name
    } else {
        format!("{name} ({})", tags.join(", "))
    }
}

fn target_note(t: &TargetChange) -> &'static str {
    match (t.before, t.after) {
        (None, Some(_)) => " (new target)",
        (Some(_), None) => " (removed)",
        (Some(b), Some(a)) if b > 0.0 && a == 0.0 => " (drained)",
        _ => "",
    }
}

fn markdown(old: &str, new: &str, diffs: &[ConfigDiff]) -> String {
    let mut s = format!("### ai-gateway config diff: `{old}` → `{new}`\n");
    for d in diffs {
        if !d.location.is_empty() && diffs.len() > 1 {
            s += &format!("\n#### {}\n", d.location);
        }
        if !d.changed() {
            s += "\nNo change to traffic, models or settings.\n";
            continue;
        }
        let mut unchanged = Vec::new();
        for r in &d.routes {
            if r.status == "unchanged" && r.default_before == r.default_after {
                unchanged.push(format!("`{}`", r.route));
                continue;
            }
            s += &format!(
                "\n**{}**\n\n| target | before | after | change (points) |\n|---|---:|---:|---:|\n",
                route_title(r)
            );
            for t in &r.targets {
                s += &format!(
                    "| `{}`{} | {} | {} | {} |\n",
                    t.target,
                    target_note(t),
                    pct(t.before),
                    pct(t.after),
                    delta(t)
                );
            }
        }
        if !unchanged.is_empty() {
            s += &format!("\nUnchanged routes: {}\n", unchanged.join(", "));
        }
        let m = &d.models;
        if *m != ModelChanges::default() {
            s += "\n**Models**\n\n";
            for x in &m.added {
                s += &format!("- added `{x}`\n");
            }
            for x in &m.removed {
                s += &format!("- removed `{x}`\n");
            }
            for c in &m.changed {
                s += &format!("- `{}`: {} → {}\n", c.what, c.before, c.after);
            }
        }
        if !d.settings.is_empty() {
            s += "\n**Settings**\n\n";
            for c in &d.settings {
                s += &format!("- `{}`: {} → {}\n", c.what, c.before, c.after);
            }
        }
    }
    s.trim_end().to_owned()
}

fn text(old: &str, new: &str, diffs: &[ConfigDiff]) -> String {
    let mut s = format!("{old} → {new}\n");
    for d in diffs {
        if !d.location.is_empty() && diffs.len() > 1 {
            s += &format!("{}:\n", d.location);
        }
        if !d.changed() {
            s += "no change to traffic, models or settings\n";
            continue;
        }
        for r in &d.routes {
            let title = route_title(r).replace('`', "");
            if r.status == "unchanged" && r.default_before == r.default_after {
                s += &format!("{title}: unchanged\n");
                continue;
            }
            s += &format!("{title}:\n");
            for t in &r.targets {
                s += &format!(
                    "  {:<40} {:>8} → {:<8} {}{}\n",
                    t.target,
                    pct(t.before),
                    pct(t.after),
                    delta(t),
                    target_note(t)
                );
            }
        }
        for x in &d.models.added {
            s += &format!("model added: {x}\n");
        }
        for x in &d.models.removed {
            s += &format!("model removed: {x}\n");
        }
        for c in &d.models.changed {
            s += &format!("model {}: {} → {}\n", c.what, c.before, c.after);
        }
        for c in &d.settings {
            s += &format!("setting {}: {} → {}\n", c.what, c.before, c.after);
        }
    }
    s.trim_end().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(json: &str) -> Config {
        config::parse(json.as_bytes()).unwrap()
    }

    #[test]
    fn a_weight_change_shows_shares_before_and_after() {
        let a = cfg(
            r#"{"models":[{"name":"a","version":"1.0.0"},{"name":"b","version":"2.0.0-rc.1"}],
            "routes":[{"name":"chat","targets":[{"model":"a","weight":90},{"model":"b","weight":10}]}],
            "default_route":"chat"}"#,
        );
        let b = cfg(
            r#"{"models":[{"name":"a","version":"1.0.0"},{"name":"b","version":"2.0.0-rc.1"}],
            "routes":[{"name":"chat","targets":[{"model":"a","weight":50},{"model":"b","weight":50}]}],
            "default_route":"chat"}"#,
        );
        let d = diff_configs("", &a, &b);
        assert_eq!(d.routes.len(), 1);
        assert_eq!(d.routes[0].status, "changed");
        assert_eq!(d.routes[0].targets[0].before, Some(90.0));
        assert_eq!(d.routes[0].targets[0].after, Some(50.0));
        let md = markdown("old.json", "new.json", &[d]);
        assert!(md.contains("| `a@1.0.0` | 90 % | 50 % | −40 |"), "{md}");
        assert!(
            md.contains("| `b@2.0.0-rc.1` | 10 % | 50 % | +40 |"),
            "{md}"
        );
        assert!(md.contains("**route `chat` (default route)**"), "{md}");
    }

    #[test]
    fn the_implicit_route_and_model_changes_are_reported() {
        let a = cfg(
            r#"{"models":[{"name":"a","version":"1.0.0","weight":1},{"name":"b","version":"1.0.0","weight":3,"max_tokens":10}]}"#,
        );
        let b = cfg(
            r#"{"models":[{"name":"a","version":"1.0.0","weight":1},{"name":"b","version":"1.0.0","weight":1,"max_tokens":20},{"name":"c","version":"1.0.0"}]}"#,
        );
        let d = diff_configs("", &a, &b);
        assert_eq!(d.routes[0].route, route_labels::IMPLICIT);
        assert_eq!(d.routes[0].targets[0].before, Some(25.0));
        assert_eq!(d.routes[0].targets[0].after, Some(50.0));
        assert_eq!(d.models.added, ["c@1.0.0"]);
        assert_eq!(d.models.changed[0].what, "b@1.0.0 max_tokens");
        let t = text("a", "b", &[d]);
        assert!(
            t.contains("implicit default route (models[].weight) (default route):"),
            "{t}"
        );
    }

    #[test]
    fn a_change_of_key_injection_is_reported_both_ways() {
        let filter = cfg(r#"{"models":[{"name":"a","version":"1.0.0","weight":1}]}"#);
        let upstream = cfg(
            r#"{"models":[{"name":"a","version":"1.0.0","weight":1}],"upstream":{"key_injection":"upstream"}}"#,
        );
        let d = diff_configs("", &filter, &upstream);
        assert!(d.changed());
        let md = markdown("old.json", "new.json", std::slice::from_ref(&d));
        assert!(md.contains("upstream.key_injection"), "{md}");
        let t = text("old.json", "new.json", &[d]);
        assert!(t.contains("upstream.key_injection"), "{t}");
        assert!(t.contains("filter") && t.contains("upstream"), "{t}");
        let back = diff_configs("", &upstream, &filter);
        assert!(back.changed());
        // The default spelled out is no change.
        let explicit = cfg(
            r#"{"models":[{"name":"a","version":"1.0.0","weight":1}],"upstream":{"key_injection":"filter"}}"#,
        );
        assert!(!diff_configs("", &filter, &explicit).changed());
    }

    #[test]
    fn fallbacks_attempts_and_timeouts_are_reported() {
        let a = cfg(
            r#"{"models":[{"name":"a","version":"1.0.0","weight":1},{"name":"b","version":"1.0.0"},{"name":"c","version":"1.0.0","timeout_ms":5000}]}"#,
        );
        let b = cfg(
            r#"{"models":[{"name":"a","version":"1.0.0","weight":1,"fallback":["b","c@1.0.0"]},{"name":"b","version":"1.0.0"},{"name":"c","version":"1.0.0","timeout_ms":6000}],
            "timeout_ms":20000,"stream_idle_timeout_ms":30000,"max_duration_ms":600000,
            "fallback_on":["5xx","timeout"],"max_attempts":4}"#,
        );
        let d = diff_configs("", &a, &b);
        let changed: Vec<(&str, &str, &str)> = d
            .models
            .changed
            .iter()
            .map(|c| (c.what.as_str(), c.before.as_str(), c.after.as_str()))
            .collect();
        assert_eq!(
            changed,
            [
                ("a@1.0.0 fallback", "(none)", "b@1.0.0, c@1.0.0"),
                ("c@1.0.0 timeout_ms", "5000", "6000"),
            ]
        );
        let settings: Vec<(&str, &str, &str)> = d
            .settings
            .iter()
            .map(|c| (c.what.as_str(), c.before.as_str(), c.after.as_str()))
            .collect();
        assert_eq!(
            settings,
            [
                ("timeout_ms", "30000", "20000"),
                ("stream_idle_timeout_ms", "60000", "30000"),
                ("max_duration_ms", "0 (none)", "600000"),
                (
                    "fallback_on",
                    "5xx, 429, timeout, reset, connect_failure",
                    "5xx, timeout"
                ),
                ("max_attempts", "3", "4"),
            ]
        );
        let t = text("old", "new", std::slice::from_ref(&d));
        assert!(
            t.contains("model a@1.0.0 fallback: (none) → b@1.0.0, c@1.0.0"),
            "{t}"
        );
        assert!(
            t.contains(
                "setting fallback_on: 5xx, 429, timeout, reset, connect_failure → 5xx, timeout"
            ),
            "{t}"
        );
        let md = markdown("old", "new", &[d]);
        assert!(
            md.contains("- `a@1.0.0 fallback`: (none) → b@1.0.0, c@1.0.0"),
            "{md}"
        );
        assert!(md.contains("- `max_attempts`: 3 → 4"), "{md}");

        // A name that now selects a newer release is a change of the list; none to empty is
        // not, and an explicit list of the defaults is no change.
        let c = cfg(
            r#"{"models":[{"name":"a","version":"1.0.0","weight":1,"fallback":["b","c@1.0.0"]},{"name":"b","version":"1.0.0"},{"name":"b","version":"1.1.0"},{"name":"c","version":"1.0.0","timeout_ms":6000}],
            "timeout_ms":20000,"stream_idle_timeout_ms":30000,"max_duration_ms":600000,
            "fallback_on":["timeout","5xx"],"max_attempts":4}"#,
        );
        let d = diff_configs("", &b, &c);
        assert_eq!(d.models.added, ["b@1.1.0"]);
        assert_eq!(d.models.changed.len(), 1, "{:?}", d.models.changed);
        assert_eq!(d.models.changed[0].after, "b@1.1.0, c@1.0.0");
        assert!(d.settings.is_empty(), "{:?}", d.settings);
        let empty = cfg(
            r#"{"models":[{"name":"a","version":"1.0.0","weight":1,"fallback":[]}],
            "fallback_on":["5xx","429","timeout","reset","connect_failure"],"max_attempts":3,
            "stream_idle_timeout_ms":60000,"max_duration_ms":0}"#,
        );
        let none = cfg(r#"{"models":[{"name":"a","version":"1.0.0","weight":1}]}"#);
        assert!(!diff_configs("", &none, &empty).changed());
    }

    #[test]
    fn identical_configs_say_so() {
        let a = cfg(r#"{"models":[{"name":"a","version":"1.0.0","weight":1}]}"#);
        let b = cfg(r#"{"models":[{"name":"a","version":"1.0.0","weight":1}]}"#);
        let d = diff_configs("", &a, &b);
        assert!(!d.changed());
        assert!(markdown("a", "b", &[d]).contains("No change"));
    }
}
