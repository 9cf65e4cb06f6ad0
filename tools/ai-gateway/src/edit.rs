//! `ai-gateway canary set-weight | promote | rollback`: change weights in a config file.
//!
//! The file is edited in place, number by number: only the weight's text changes (JSON,
//! YAML, and the JSON inside an Envoy/ECDS `StringValue` written as a `|` block), so
//! comments, key order and formatting stay. The result is compiled by the filter's config
//! code before anything is written; an invalid result is never written. The write is atomic
//! (a temporary file in the same directory, fsync, rename), so a watcher such as Envoy's
//! `path_config_source` + `watched_directory` sees exactly one change.

use crate::source::{self, Body, Format, Found, Source};
use crate::tree::Node;
use crate::validate::fmt_num;
use ai_gateway_filter::config::{self, route_labels, Config, ModelId};
use clap::Args;
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Args)]
pub struct SetWeightArgs {
    /// Plugin config (JSON/YAML) or an Envoy/ECDS/Kubernetes file holding one
    #[arg(value_name = "CONFIG")]
    config: String,
    /// Route name (`_default`: the implicit route of models[].weight)
    #[arg(long)]
    route: String,
    /// MODEL or MODEL@VERSION
    #[arg(long, value_name = "MODEL[@VERSION]")]
    target: String,
    /// New weight (≥ 0; 0 drains the target)
    #[arg(long, allow_negative_numbers = true)]
    weight: f64,
    #[command(flatten)]
    common: Common,
}

#[derive(Args)]
pub struct CanaryArgs {
    /// Plugin config (JSON/YAML) or an Envoy/ECDS/Kubernetes file holding one
    #[arg(value_name = "CONFIG")]
    config: String,
    /// Route name (`_default`: the implicit route of models[].weight)
    #[arg(long)]
    route: String,
    /// The canary target: MODEL@VERSION (or MODEL when the route has one version of it)
    #[arg(long, value_name = "MODEL@VERSION")]
    canary: String,
    #[command(flatten)]
    common: Common,
}

#[derive(Args)]
struct Common {
    /// Show what would change; write nothing
    #[arg(long)]
    dry_run: bool,
    /// When the file holds several plugin configurations: the one whose location contains this
    #[arg(long, value_name = "TEXT")]
    location: Option<String>,
}

/// Why an edit was refused: exit code and message.
#[derive(Debug)]
pub struct Refused(pub i32, pub String);

pub fn run_set_weight(a: &SetWeightArgs) -> i32 {
    report(
        &a.config,
        &a.common,
        plan_file(&a.config, &a.common, &a.route, |slots| {
            let i = pick(slots, &a.target)?;
            if !(a.weight.is_finite() && a.weight >= 0.0) {
                return Err(Refused(
                    1,
                    format!("--weight {}: a weight is a finite number ≥ 0", a.weight),
                ));
            }
            let mut w: Vec<f64> = slots.iter().map(|s| s.weight).collect();
            w[i] = a.weight;
            Ok(w)
        }),
    )
}

pub fn run_promote(a: &CanaryArgs) -> i32 {
    report(
        &a.config,
        &a.common,
        plan_file(&a.config, &a.common, &a.route, |slots| {
            let c = pick(slots, &a.canary)?;
            Ok(promote(slots.len(), c))
        }),
    )
}

pub fn run_rollback(a: &CanaryArgs) -> i32 {
    report(
        &a.config,
        &a.common,
        plan_file(&a.config, &a.common, &a.route, |slots| {
            let c = pick(slots, &a.canary)?;
            let w: Vec<f64> = slots.iter().map(|s| s.weight).collect();
            rollback(&w, c).ok_or_else(|| {
                Refused(
                    1,
                    format!(
                        "route {:?} has no other target to give the canary's traffic to",
                        a.route
                    ),
                )
            })
        }),
    )
}

// === the weight arithmetic (pure) ===

/// Promote: the canary gets 100, every other target 0 (drained, not removed: a rollback
/// stays one command away, and /v1/models and the metrics keep their names).
pub fn promote(n: usize, canary: usize) -> Vec<f64> {
    (0..n)
        .map(|i| if i == canary { 100.0 } else { 0.0 })
        .collect()
}

/// Rollback: the canary gets 0 and its weight goes to the other targets in proportion to
/// their weights (equally when they are all 0). When every weight is an integer the result
/// is too (largest remainder), so the route's sum is unchanged. `None`: no other target.
pub fn rollback(weights: &[f64], canary: usize) -> Option<Vec<f64>> {
    let others: Vec<usize> = (0..weights.len()).filter(|&i| i != canary).collect();
    if others.is_empty() {
        return None;
    }
    let moved = weights[canary];
    let base: f64 = others.iter().map(|&i| weights[i]).sum();
    let share = |i: usize| {
        if base > 0.0 {
            weights[i] / base
        } else {
            1.0 / others.len() as f64
        }
    };
    let mut out = weights.to_vec();
    out[canary] = 0.0;
    let integral = weights.iter().all(|w| w.fract() == 0.0);
    if integral {
        let exact: Vec<(usize, f64)> = others.iter().map(|&i| (i, moved * share(i))).collect();
        let mut given = 0.0;
        for &(i, x) in &exact {
            out[i] = weights[i] + x.floor();
            given += x.floor();
        }
        let mut left = (moved - given).round() as i64;
        let mut by_rest: Vec<&(usize, f64)> = exact.iter().collect();
        // Largest remainder first; ties in configuration order.
        by_rest.sort_by(|a, b| (b.1 - b.1.floor()).total_cmp(&(a.1 - a.1.floor())));
        for &&(i, _) in by_rest.iter().cycle() {
            if left <= 0 {
                break;
            }
            out[i] += 1.0;
            left -= 1;
        }
    } else {
        for &i in &others {
            out[i] = ((weights[i] + moved * share(i)) * 1e6).round() / 1e6;
        }
    }
    Some(out)
}

// === the route's weight slots ===

/// One target of the route and where its weight is written.
#[derive(Debug, Clone)]
pub struct Slot {
    pub label: String,
    pub name: String,
    pub version: semver::Version,
    pub weight: f64,
    /// Path of the object holding the weight (`routes[0].targets[1]`; a missing weight is
    /// added there).
    pub owner: String,
}

fn slots(
    cfg: &Config,
    schema: &config::schema::GatewayConfig,
    route: &str,
) -> Result<Vec<Slot>, Refused> {
    let mk = |m: ModelId, weight: f64, owner: String| {
        let model = cfg.model(m);
        Slot {
            label: format!("{}@{}", model.name, model.version_label),
            name: model.name.clone(),
            version: model.version.clone(),
            weight,
            owner,
        }
    };
    if route == route_labels::IMPLICIT {
        return Ok(cfg
            .model_ids()
            .map(|m| mk(m, cfg.model(m).weight, m.to_string()))
            .collect());
    }
    let Some((r, rc)) = schema
        .routes
        .iter()
        .enumerate()
        .find(|(_, x)| x.name == route)
    else {
        let names: Vec<&str> = schema.routes.iter().map(|x| x.name.as_str()).collect();
        return Err(Refused(
            1,
            format!(
                "no route {route:?} (routes: {}; `{}` is the implicit route of models[].weight)",
                if names.is_empty() {
                    "none".to_owned()
                } else {
                    names.join(", ")
                },
                route_labels::IMPLICIT
            ),
        ));
    };
    let mut out = Vec::new();
    for (t, target) in rc.targets.iter().enumerate() {
        let m = cfg
            .resolve_target(&target.model, target.version.as_deref())
            .map_err(|_| Refused(1, format!("routes[{r}].targets[{t}] does not resolve")))?;
        out.push(mk(m, target.weight, format!("routes[{r}].targets[{t}]")));
    }
    Ok(out)
}

/// The slot a `MODEL[@VERSION]` names.
fn pick(slots: &[Slot], spec: &str) -> Result<usize, Refused> {
    let (name, version) = match spec.split_once('@') {
        Some((n, v)) => (n, Some(v)),
        None => (spec, None),
    };
    let want = match version {
        Some(v) => Some(
            semver::Version::parse(v)
                .map_err(|e| Refused(1, format!("{spec}: {v:?} is not SemVer: {e}")))?,
        ),
        None => None,
    };
    let hits: Vec<usize> = slots
        .iter()
        .enumerate()
        .filter(|(_, s)| {
            s.name == name
                && want
                    .as_ref()
                    .is_none_or(|w| s.version.cmp_precedence(w).is_eq())
        })
        .map(|(i, _)| i)
        .collect();
    let listed = || {
        slots
            .iter()
            .map(|s| s.label.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    match hits.as_slice() {
        [one] => Ok(*one),
        [] => Err(Refused(
            1,
            format!(
                "{spec} is not a target of this route (targets: {})",
                listed()
            ),
        )),
        _ => Err(Refused(
            1,
            format!(
                "{spec} matches several targets ({}): add @VERSION",
                listed()
            ),
        )),
    }
}

// === planning and applying the edit ===

pub struct Plan {
    pub old_text: String,
    pub new_text: String,
    pub before: Config,
    pub after: Config,
    pub location: String,
    pub changed: usize,
    pub notes: Vec<String>,
}

fn plan_file(
    path: &str,
    common: &Common,
    route: &str,
    weights: impl FnOnce(&[Slot]) -> Result<Vec<f64>, Refused>,
) -> Result<Plan, Refused> {
    let src = Source::read(Path::new(path))
        .map_err(|source::Unreadable(w)| Refused(2, format!("unreadable: {w}")))?;
    plan(&src, common.location.as_deref(), route, weights)
}

/// Plans the edit of `src`: the new text, validated.
pub fn plan(
    src: &Source,
    location: Option<&str>,
    route: &str,
    weights: impl FnOnce(&[Slot]) -> Result<Vec<f64>, Refused>,
) -> Result<Plan, Refused> {
    let (found, _) = source::find(src);
    let chosen: Vec<(usize, &Found)> = found
        .iter()
        .enumerate()
        .filter(|(_, f)| location.is_none_or(|l| f.location.contains(l)))
        .collect();
    let (index, f) = match chosen.as_slice() {
        [one] => *one,
        [] => {
            return Err(Refused(
                2,
                "no ai-gateway plugin configuration found".into(),
            ))
        }
        many => {
            let locs: Vec<&str> = many.iter().map(|(_, f)| f.location.as_str()).collect();
            return Err(Refused(
                2,
                format!(
                    "several plugin configurations ({}): choose one with --location",
                    locs.join("; ")
                ),
            ));
        }
    };
    let bytes = f.json_bytes().ok_or_else(|| {
        Refused(
            1,
            "the plugin configuration is not usable: run `ai-gateway validate`".into(),
        )
    })?;
    let before = config::parse(&bytes).map_err(|e| {
        Refused(
            1,
            format!(
                "the configuration is already invalid ({e}): fix it first (ai-gateway validate)"
            ),
        )
    })?;
    let schema = config::parse_schema(&bytes).map_err(|e| Refused(1, e.to_string()))?;
    let tree = f
        .tree()
        .ok_or_else(|| Refused(1, "the plugin configuration does not parse".into()))?;
    let slots = slots(&before, &schema, route)?;
    let new_weights = weights(&slots)?;

    // Text edits in the coordinates of `tree`.
    let json_style = match &f.body {
        Body::Embedded(_) => true,
        _ => src.format == Format::Json,
    };
    let mut edits: Vec<(usize, usize, String)> = Vec::new();
    for (s, &w) in slots.iter().zip(&new_weights) {
        if s.weight == w {
            continue;
        }
        let text = fmt_num(w);
        let owner = tree.resolve(&s.owner);
        match owner.get("weight") {
            Some(n) => edits.push((n.start, n.end, text)),
            None => edits.push(insert_weight(owner, json_style, &src.text, f, &text)?),
        }
    }
    let changed = edits.len();
    let mut notes = Vec::new();
    let new_text = apply(src, f, edits, &mut notes)?;

    // The result must be what the filter accepts, and hold exactly the intended weights.
    let new_src =
        Source::parse(src.name.clone(), new_text.clone()).map_err(|source::Unreadable(w)| {
            Refused(
                1,
                format!("internal error: the edited file does not parse ({w}); nothing written"),
            )
        })?;
    let (new_found, _) = source::find(&new_src);
    let nf = new_found.get(index).ok_or_else(|| {
        Refused(
            1,
            "internal error: the edited configuration is gone; nothing written".into(),
        )
    })?;
    let new_bytes = nf.json_bytes().unwrap_or_default();
    let after = config::parse(&new_bytes).map_err(|e| {
        let list: Vec<String> = e.0.iter().map(ToString::to_string).collect();
        Refused(
            1,
            format!(
                "refused: the result would be invalid, nothing written:\n  {}",
                list.join("\n  ")
            ),
        )
    })?;
    let new_schema = config::parse_schema(&new_bytes).map_err(|e| Refused(1, e.to_string()))?;
    let check = self::slots(&after, &new_schema, route)?;
    let same = check.len() == new_weights.len()
        && check
            .iter()
            .zip(&new_weights)
            .all(|(s, w)| (s.weight - w).abs() < 1e-9);
    if !same {
        return Err(Refused(
            1,
            "internal error: the edit did not produce the intended weights; nothing written".into(),
        ));
    }
    Ok(Plan {
        old_text: src.text.clone(),
        new_text,
        before,
        after,
        location: f.location.clone(),
        changed,
        notes,
    })
}

/// Where and what to insert for a target that has no `weight` yet (the implicit route's
/// models default to 0).
fn insert_weight(
    owner: &Node,
    json_style: bool,
    file: &str,
    f: &Found,
    text: &str,
) -> Result<(usize, usize, String), Refused> {
    let last = owner
        .members()
        .last()
        .ok_or_else(|| Refused(1, "cannot add a weight to an empty object".into()))?;
    if json_style {
        return Ok((
            last.node.end,
            last.node.end,
            format!(", \"weight\": {text}"),
        ));
    }
    let start = f.file_offset(owner.start);
    if file.as_bytes().get(start) == Some(&b'{') {
        return Ok((last.node.end, last.node.end, format!(", weight: {text}")));
    }
    // Block mapping: a new first key, at the indentation of the existing first key.
    let first = owner.members().first().map_or(owner.start, |m| m.key_start);
    let line_start = file[..first].rfind('\n').map_or(0, |i| i + 1);
    let indent = " ".repeat(file[line_start..first].chars().count());
    Ok((first, first, format!("weight: {text}\n{indent}")))
}

/// Applies edits (in the configuration's coordinates) to the file text.
fn apply(
    src: &Source,
    f: &Found,
    mut edits: Vec<(usize, usize, String)>,
    notes: &mut Vec<String>,
) -> Result<String, Refused> {
    edits.sort_by_key(|e| std::cmp::Reverse(e.0));
    match &f.body {
        Body::Tree { .. } => Ok(splice(&src.text, &edits)),
        Body::Embedded(e) => {
            let mapped: Option<Vec<(usize, usize, String)>> = edits
                .iter()
                .map(|(s, t, text)| {
                    let fs = e.file_offset(*s)?;
                    let ft = fs + (t - s);
                    (src.text.get(fs..ft) == e.text.get(*s..*t) && !text.contains('\n'))
                        .then(|| (fs, ft, text.clone()))
                })
                .collect();
            match mapped {
                Some(m) => Ok(splice(&src.text, &m)),
                None => {
                    // The string can't be edited in place (quoted with escapes, folded…):
                    // rewrite that one string as a double-quoted JSON/YAML string.
                    let inner = splice(&e.text, &edits);
                    let quoted =
                        serde_json::to_string(&inner).map_err(|x| Refused(1, x.to_string()))?;
                    notes.push("the StringValue holding the configuration was rewritten as one double-quoted string (its original quoting could not be kept); everything else is unchanged".into());
                    Ok(splice(&src.text, &[(e.scalar.start, e.scalar.end, quoted)]))
                }
            }
        }
        Body::Unusable { reason, .. } => Err(Refused(1, reason.clone())),
    }
}

/// `edits` sorted by start, descending; non-overlapping.
fn splice(text: &str, edits: &[(usize, usize, String)]) -> String {
    let mut out = text.to_owned();
    for (s, e, t) in edits {
        out.replace_range(*s..*e, t);
    }
    out
}

/// Writes `text` to `path` atomically: a temporary file next to it (same directory, so the
/// rename is atomic and a directory watcher sees one move), fsync, rename, fsync the
/// directory. Symlinks are followed (the link's target is replaced).
pub fn write_atomic(path: &Path, text: &str) -> std::io::Result<()> {
    let real: PathBuf = std::fs::canonicalize(path)?;
    let dir = real.parent().unwrap_or(Path::new(".")).to_path_buf();
    let name = real
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "config".into());
    let tmp = dir.join(format!(".{name}.ai-gateway-{}.tmp", std::process::id()));
    let result = (|| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        if let Ok(meta) = std::fs::metadata(&real) {
            std::fs::set_permissions(&tmp, meta.permissions())?;
        }
        std::fs::rename(&tmp, &real)?;
        if let Ok(d) = std::fs::File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn report(path: &str, common: &Common, planned: Result<Plan, Refused>) -> i32 {
    let plan = match planned {
        Ok(p) => p,
        Err(Refused(code, msg)) => {
            eprintln!("{path}: {msg}");
            return code;
        }
    };
    let at = if plan.location.is_empty() {
        String::new()
    } else {
        format!(" ({})", plan.location)
    };
    let d = crate::diff::diff_configs(&plan.location, &plan.before, &plan.after);
    for r in d.routes.iter().filter(|r| r.status != "unchanged") {
        println!("{path}{at}: route {}:", r.route);
        for t in &r.targets {
            println!(
                "  {:<40} weight {:>6} → {:<6} share {:>8} → {}",
                t.target,
                t.weight_before.map(fmt_num).unwrap_or_default(),
                t.weight_after.map(fmt_num).unwrap_or_default(),
                crate::diff::pct(t.before),
                crate::diff::pct(t.after)
            );
        }
    }
    for n in &plan.notes {
        println!("note: {n}");
    }
    if plan.changed == 0 {
        println!("{path}: already so; nothing to write");
        return 0;
    }
    if common.dry_run {
        println!(
            "{path}: dry run: {} number(s) would change; nothing written",
            plan.changed
        );
        return 0;
    }
    if plan.new_text == plan.old_text {
        return 0;
    }
    match write_atomic(Path::new(path), &plan.new_text) {
        Ok(()) => {
            println!(
                "{path}: written ({} number(s) changed in place; validated by the filter's config compiler)",
                plan.changed
            );
            0
        }
        Err(e) => {
            eprintln!("{path}: cannot write: {e}");
            2
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rollback_returns_the_canary_weight_in_proportion() {
        assert_eq!(rollback(&[90.0, 10.0], 1), Some(vec![100.0, 0.0]));
        assert_eq!(
            rollback(&[45.0, 45.0, 10.0], 2),
            Some(vec![50.0, 50.0, 0.0])
        );
        // 70/20 + 10 → 70 + 7.78, 20 + 2.22: integers, sum kept.
        assert_eq!(
            rollback(&[70.0, 20.0, 10.0], 2),
            Some(vec![78.0, 22.0, 0.0])
        );
        // After a promote every other weight is 0: equal split.
        assert_eq!(rollback(&[0.0, 0.0, 100.0], 2), Some(vec![50.0, 50.0, 0.0]));
        assert_eq!(
            rollback(&[0.0, 0.0, 0.0, 100.0], 3),
            Some(vec![34.0, 33.0, 33.0, 0.0])
        );
        assert_eq!(rollback(&[100.0], 0), None);
        assert_eq!(rollback(&[0.5, 0.5], 1), Some(vec![1.0, 0.0]));
    }

    #[test]
    fn promote_gives_the_canary_everything() {
        assert_eq!(promote(3, 1), vec![0.0, 100.0, 0.0]);
    }

    fn plan_text(
        name: &str,
        text: &str,
        route: &str,
        spec: &str,
        w: f64,
    ) -> Result<String, Refused> {
        let src = Source::parse(name.into(), text.into()).map_err(|e| Refused(2, e.0))?;
        plan(&src, None, route, |slots| {
            let i = pick(slots, spec)?;
            let mut ws: Vec<f64> = slots.iter().map(|s| s.weight).collect();
            ws[i] = w;
            Ok(ws)
        })
        .map(|p| p.new_text)
    }

    const JSON: &str = r#"{
  "models": [
    { "name": "gpt-4.1", "version": "1.0.0" },
    { "name": "deepseek-v3.2", "version": "2.0.0-canary.1" }
  ],
  "routes": [ { "name": "chat", "targets": [
      { "model": "gpt-4.1", "weight": 90 },
      { "model": "deepseek-v3.2", "weight": 10 } ] } ],
  "default_route": "chat"
}
"#;

    #[test]
    fn json_weights_are_edited_in_place() {
        let out = plan_text("c.json", JSON, "chat", "deepseek-v3.2@2.0.0-canary.1", 50.0).unwrap();
        assert_eq!(out, JSON.replace("\"weight\": 10 }", "\"weight\": 50 }"));
    }

    #[test]
    fn yaml_keeps_comments_and_layout() {
        let yaml = "# rollout of deepseek\nmodels:\n  - name: gpt-4.1   # stable\n    version: 1.0.0\n  - {name: deepseek-v3.2, version: 2.0.0-canary.1}\nroutes:\n  - name: chat\n    targets:\n      - model: gpt-4.1\n        weight: 90   # percent\n      - {model: deepseek-v3.2, weight: 10}\ndefault_route: chat\n";
        let out = plan_text("c.yaml", yaml, "chat", "gpt-4.1", 50.0).unwrap();
        assert_eq!(
            out,
            yaml.replace("weight: 90   # percent", "weight: 50   # percent")
        );
    }

    #[test]
    fn an_invalid_result_is_refused() {
        let e = plan_text("c.json", JSON, "chat", "gpt-4.1", 0.0).map(|_| ());
        let e = e.and_then(|_| {
            let src = Source::parse("c.json".into(), JSON.into()).map_err(|e| Refused(2, e.0))?;
            plan(&src, None, "chat", |_| Ok(vec![0.0, 0.0])).map(|_| ())
        });
        let Err(Refused(code, msg)) = e else {
            panic!("accepted")
        };
        assert_eq!(code, 1);
        assert!(
            msg.contains("routes[0].targets: the weights sum to 0"),
            "{msg}"
        );
    }

    #[test]
    fn unknown_targets_and_routes_are_named() {
        let Err(Refused(_, msg)) = plan_text("c.json", JSON, "chat", "gpt-5", 1.0) else {
            panic!()
        };
        assert_eq!(msg, "gpt-5 is not a target of this route (targets: gpt-4.1@1.0.0, deepseek-v3.2@2.0.0-canary.1)");
        let Err(Refused(_, msg)) = plan_text("c.json", JSON, "nope", "gpt-4.1", 1.0) else {
            panic!()
        };
        assert!(msg.starts_with("no route \"nope\" (routes: chat;"), "{msg}");
    }

    #[test]
    fn a_missing_implicit_weight_is_added() {
        let json = "{\"models\": [{\"name\": \"a\", \"version\": \"1.0.0\", \"weight\": 1}, {\"name\": \"b\", \"version\": \"1.0.0\"}]}";
        let out = plan_text("c.json", json, "_default", "b", 3.0).unwrap();
        assert_eq!(
            out,
            json.replace("\"1.0.0\"}]", "\"1.0.0\", \"weight\": 3}]")
        );
        let yaml = "models:\n  - name: a\n    version: 1.0.0\n    weight: 1\n  - name: b\n    version: 1.0.0\n";
        let out = plan_text("c.yaml", yaml, "_default", "b", 3.0).unwrap();
        assert_eq!(out, "models:\n  - name: a\n    version: 1.0.0\n    weight: 1\n  - weight: 3\n    name: b\n    version: 1.0.0\n");
    }

    #[test]
    fn the_json_inside_an_envoy_string_value_is_edited_in_place() {
        let envoy = "resources:\n- \"@type\": type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig\n  name: ai_gateway\n  typed_config:\n    \"@type\": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm\n    config:\n      configuration:\n        \"@type\": type.googleapis.com/google.protobuf.StringValue\n        value: |\n          {\"models\": [{\"name\": \"a\", \"version\": \"1.0.0\"},\n                      {\"name\": \"b\", \"version\": \"1.1.0-rc.1\"}],\n           \"routes\": [{\"name\": \"chat\", \"targets\": [{\"model\": \"a\", \"weight\": 90},\n                                                  {\"model\": \"b\", \"weight\": 10}]}],\n           \"default_route\": \"chat\"}\n";
        let out = plan_text("ecds.yaml", envoy, "chat", "b@1.1.0-rc.1", 50.0).unwrap();
        assert_eq!(out, envoy.replace("\"weight\": 10}", "\"weight\": 50}"));
    }

    #[test]
    fn a_quoted_string_value_is_rewritten_whole() {
        let envoy = "\"@type\": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm\nconfig:\n  configuration:\n    \"@type\": type.googleapis.com/google.protobuf.StringValue\n    value: \"{\\\"models\\\": [{\\\"name\\\": \\\"a\\\", \\\"version\\\": \\\"1.0.0\\\", \\\"weight\\\": 1}]}\"\n";
        let out = plan_text("x.yaml", envoy, "_default", "a", 7.0).unwrap();
        assert!(out.contains(r#"value: "{\"models\": [{\"name\": \"a\", \"version\": \"1.0.0\", \"weight\": 7}]}""#), "{out}");
    }
}
