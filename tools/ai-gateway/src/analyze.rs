//! `ai-gateway canary analyze`: the canary against the route's stable targets, from
//! Prometheus (`/api/v1/query`), using the filter's own metric names
//! (`ai_gateway_filter::metrics`) and labels (docs/design.md, "Metrics and labels"):
//!
//! - `ai_gateway_requests_total{route,model,version,status}` (status = the HTTP code;
//!   errors are `status=~"5..|429"`),
//! - `ai_gateway_request_duration_milliseconds_bucket{route,model,version,le}`,
//! - `ai_gateway_cost_microdollars_total{route,model,version}` (summed over every route of
//!   that model version, per router pick),
//! - `ai_gateway_router_selections_total{route,model,version}`: the router's picks, the base
//!   of the per-request ratios over every route (a pick another model answered counts too),
//! - `ai_gateway_model_errors_total{model,version,error_type}`: failed *attempts* at a model,
//!   those a fallback to another model hid from the client included (no route label: per
//!   request over every route of that model version).
//!
//! "Stable" is every other (model, version) of the route, selected with
//! `unless on(model, version)`. Verdict: `promote` (exit 0), `hold` (10: too little traffic
//! or no data to judge), `rollback` (20: a threshold is crossed).

use ai_gateway_filter::metrics;
use clap::Args;
use serde::Serialize;
use std::time::Duration;

#[derive(Args)]
pub struct AnalyzeArgs {
    /// Prometheus base URL (http://127.0.0.1:9090)
    #[arg(long, value_name = "URL")]
    prometheus: String,
    /// The route (alias) the canary serves, as in the `route` label (`_default`: the
    /// implicit route)
    #[arg(long)]
    route: String,
    /// The canary: MODEL@VERSION, as in the `model` and `version` labels
    #[arg(long, value_name = "MODEL@VERSION")]
    canary: String,
    /// The window to compare over (a PromQL duration)
    #[arg(long, default_value = "10m")]
    window: String,
    /// Roll back when the canary's error ratio exceeds the stable one by more than this
    #[arg(long, default_value_t = 0.02)]
    max_error_ratio_delta: f64,
    /// Roll back when canary p95 latency / stable p95 latency is above this
    #[arg(long, default_value_t = 1.5)]
    max_latency_ratio: f64,
    /// Hold when either side has fewer requests than this in the window
    #[arg(long, default_value_t = 50.0)]
    min_requests: f64,
    /// Also roll back when canary cost per request / stable cost per request is above this
    #[arg(long)]
    max_cost_ratio: Option<f64>,
    #[arg(long, value_enum, default_value_t = OutFormat::Text)]
    format: OutFormat,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum OutFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Promote,
    Hold,
    Rollback,
}

impl Verdict {
    pub fn exit_code(self) -> i32 {
        match self {
            Verdict::Promote => 0,
            Verdict::Hold => 10,
            Verdict::Rollback => 20,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct Side {
    pub requests: f64,
    /// Requests whose client got a 5xx or a 429.
    pub errors: f64,
    /// Failed attempts at these models (`ai_gateway_model_errors_total`), over every route:
    /// a request saved by a fallback model is a client success but still a failed attempt.
    pub attempt_errors: f64,
    /// Times the router picked these models, over every route
    /// (`ai_gateway_router_selections_total`): the base of `attempt_errors`. A pick whose
    /// attempts all failed and that another model answered still counts here, where
    /// `requests` (labelled by the model that answered) does not. None: no data.
    pub requests_all_routes: Option<f64>,
    /// p95 latency in ms (None: no data).
    pub p95_ms: Option<f64>,
    /// Micro-dollars per request (None: not measured).
    pub cost_per_request: Option<f64>,
    /// Whether the filter's circuit breaker had this side open at any time in the window
    /// (`max_over_time(ai_gateway_circuit_open[W])`; canary side only).
    pub circuit_opened: bool,
}

#[derive(Debug, Clone, Copy)]
pub struct Thresholds {
    pub max_error_ratio_delta: f64,
    pub max_latency_ratio: f64,
    pub min_requests: f64,
    pub max_cost_ratio: Option<f64>,
}

/// The decision, from the numbers alone.
pub fn decide(canary: &Side, stable: &Side, t: &Thresholds) -> (Verdict, Vec<String>) {
    let mut reasons = Vec::new();
    let mut rollback = false;
    if canary.circuit_opened {
        // The filter's breaker already judged it: failover.min_requests requests with at
        // least failover_threshold of them failing. It may also have cut the canary's
        // traffic to a trickle of probes, so its request count can't be asked to be large.
        rollback = true;
        reasons.push(format!(
            "the canary's circuit breaker opened in the window ({} = 1): the filter itself took it out of the route",
            metrics::CIRCUIT_OPEN.name
        ));
    }
    // Judged on what the router sent each side: a canary whose every request fell back to
    // another model has no requests of its own, but its picks are there.
    let volume = |s: &Side| s.requests.max(s.requests_all_routes.unwrap_or(0.0));
    if volume(canary) < t.min_requests || volume(stable) < t.min_requests {
        reasons.push(format!(
            "too few requests to judge: canary {}, stable {} (--min-requests {})",
            n(volume(canary)),
            n(volume(stable)),
            n(t.min_requests)
        ));
        let v = if rollback {
            Verdict::Rollback
        } else {
            Verdict::Hold
        };
        return (v, reasons);
    }
    let ratio = |s: &Side| {
        if s.requests > 0.0 {
            s.errors / s.requests
        } else {
            0.0
        }
    };
    let (ec, es) = (ratio(canary), ratio(stable));
    if ec - es > t.max_error_ratio_delta {
        rollback = true;
        reasons.push(format!(
            "error ratio: canary {ec:.4} vs stable {es:.4}, +{:.4} > {}",
            ec - es,
            t.max_error_ratio_delta
        ));
    } else {
        reasons.push(format!(
            "error ratio: canary {ec:.4} vs stable {es:.4} (within +{})",
            t.max_error_ratio_delta
        ));
    }
    // Attempts, not only what clients saw: a canary whose attempts fail while fallbacks to
    // other models serve its clients is failing too.
    let attempt_ratio = |s: &Side| {
        let base = s.requests_all_routes.unwrap_or(0.0).max(s.requests);
        if base > 0.0 {
            s.attempt_errors / base
        } else {
            0.0
        }
    };
    let (ac, as_) = (attempt_ratio(canary), attempt_ratio(stable));
    if ac - as_ > t.max_error_ratio_delta {
        rollback = true;
        reasons.push(format!(
            "failed attempts per request: canary {ac:.4} vs stable {as_:.4}, +{:.4} > {}",
            ac - as_,
            t.max_error_ratio_delta
        ));
    } else {
        reasons.push(format!(
            "failed attempts per request: canary {ac:.4} vs stable {as_:.4} (within +{})",
            t.max_error_ratio_delta
        ));
    }
    let mut missing = Vec::new();
    match (canary.p95_ms, stable.p95_ms) {
        (Some(c), Some(s)) if s > 0.0 => {
            let r = c / s;
            if r > t.max_latency_ratio {
                rollback = true;
                reasons.push(format!(
                    "p95 latency: canary {c:.1} ms vs stable {s:.1} ms, ×{r:.2} > ×{}",
                    t.max_latency_ratio
                ));
            } else {
                reasons.push(format!(
                    "p95 latency: canary {c:.1} ms vs stable {s:.1} ms, ×{r:.2} (within ×{})",
                    t.max_latency_ratio
                ));
            }
        }
        (Some(c), Some(_)) => reasons.push(format!(
            "p95 latency: canary {c:.1} ms vs stable 0 ms: not compared"
        )),
        _ => missing.push("p95 latency (no histogram data)"),
    }
    if let Some(max) = t.max_cost_ratio {
        match (canary.cost_per_request, stable.cost_per_request) {
            (Some(c), Some(s)) if s > 0.0 => {
                let r = c / s;
                if r > max {
                    rollback = true;
                    reasons.push(format!(
                        "cost per request: canary {c:.1} µ$ vs stable {s:.1} µ$, ×{r:.2} > ×{max}"
                    ));
                } else {
                    reasons.push(format!(
                        "cost per request: canary {c:.1} µ$ vs stable {s:.1} µ$, ×{r:.2} (within ×{max})"
                    ));
                }
            }
            _ => missing.push("cost per request (no cost data: are both sides priced?)"),
        }
    }
    if rollback {
        return (Verdict::Rollback, reasons);
    }
    if !missing.is_empty() {
        reasons.push(format!("cannot judge {}", missing.join(", ")));
        return (Verdict::Hold, reasons);
    }
    (Verdict::Promote, reasons)
}

fn n(x: f64) -> String {
    crate::validate::fmt_num((x * 10.0).round() / 10.0)
}

// === queries ===

/// A PromQL label value in double quotes.
fn q(v: &str) -> String {
    format!("\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""))
}

pub struct Queries {
    pub requests: [String; 2],
    pub errors: [String; 2],
    pub attempt_errors: [String; 2],
    pub p95: [String; 2],
    pub cost: [String; 2],
    pub all_requests: [String; 2],
    pub circuit: String,
}

/// The PromQL of every number (index 0: canary, 1: stable).
pub fn queries(route: &str, model: &str, version: &str, window: &str) -> Queries {
    let (r, m, v) = (q(route), q(model), q(version));
    let requests = metrics::REQUESTS.name;
    let selections = metrics::SELECTIONS.name;
    let buckets = format!("{}_bucket", metrics::DURATION.name);
    let cost = metrics::COST.name;
    let model_errors = metrics::MODEL_ERRORS.name;
    let circuit = metrics::CIRCUIT_OPEN.name;
    let canary = format!("route={r},model={m},version={v}");
    let not_canary = format!("unless on(model, version) {requests}{{model={m},version={v}}}");
    let errors = "status=~\"5..|429\"";
    let in_route = format!("and on(model, version) {requests}{{route={r}}}");
    Queries {
        requests: [
            format!("sum(increase({requests}{{{canary}}}[{window}]))"),
            format!("sum(increase({requests}{{route={r}}}[{window}]) {not_canary})"),
        ],
        errors: [
            format!("sum(increase({requests}{{{canary},{errors}}}[{window}]))"),
            format!("sum(increase({requests}{{route={r},{errors}}}[{window}]) {not_canary})"),
        ],
        attempt_errors: [
            format!("sum(increase({model_errors}{{model={m},version={v}}}[{window}]))"),
            format!("sum(increase({model_errors}[{window}]) {in_route} {not_canary})"),
        ],
        p95: [
            format!("histogram_quantile(0.95, sum by (le) (rate({buckets}{{{canary}}}[{window}])))"),
            format!("histogram_quantile(0.95, sum by (le) (rate({buckets}{{route={r}}}[{window}]) unless on(model, version) {buckets}{{model={m},version={v}}}))"),
        ],
        cost: [
            format!("sum(increase({cost}{{model={m},version={v}}}[{window}]))"),
            format!("sum(increase({cost}[{window}]) {in_route} {not_canary})"),
        ],
        all_requests: [
            format!("sum(increase({selections}{{model={m},version={v}}}[{window}]))"),
            format!(
                "sum(increase({selections}[{window}]) and on(model, version) {selections}{{route={r}}} unless on(model, version) {selections}{{model={m},version={v}}})"
            ),
        ],
        circuit: format!("max(max_over_time({circuit}{{model={m},version={v}}}[{window}]))"),
    }
}

/// The value of an instant query's answer: None for an empty vector or NaN.
pub fn scalar_of(body: &str) -> Result<Option<f64>, String> {
    let doc: serde_json::Value =
        serde_json::from_str(body).map_err(|e| format!("Prometheus answered non-JSON: {e}"))?;
    if doc.get("status").and_then(|s| s.as_str()) != Some("success") {
        let err = doc
            .get("error")
            .and_then(|e| e.as_str())
            .unwrap_or("unknown error");
        return Err(format!("Prometheus error: {err}"));
    }
    let data = doc.get("data").ok_or("Prometheus answer without data")?;
    let value = match data.get("resultType").and_then(|t| t.as_str()) {
        Some("vector") => {
            let result = data
                .get("result")
                .and_then(|r| r.as_array())
                .ok_or("no result")?;
            match result.as_slice() {
                [] => return Ok(None),
                [one] => one.get("value").cloned(),
                _ => return Err(format!("expected one series, got {}", result.len())),
            }
        }
        Some("scalar") => data.get("result").cloned(),
        other => return Err(format!("unexpected resultType {other:?}")),
    };
    let text = value
        .as_ref()
        .and_then(|v| v.get(1))
        .and_then(|v| v.as_str())
        .ok_or("malformed sample")?;
    let x: f64 = text
        .parse()
        .map_err(|_| format!("malformed sample value {text:?}"))?;
    Ok(x.is_finite().then_some(x))
}

#[derive(Serialize)]
struct Evidence {
    name: String,
    query: String,
    value: Option<f64>,
}

pub fn run(a: &AnalyzeArgs) -> i32 {
    let Some((model, version)) = a.canary.split_once('@') else {
        eprintln!(
            "--canary {}: expected MODEL@VERSION (the model and version labels)",
            a.canary
        );
        return 2;
    };
    if !valid_duration(&a.window) {
        eprintln!(
            "--window {}: not a PromQL duration (e.g. 10m, 1h, 1h30m)",
            a.window
        );
        return 2;
    }
    let qs = queries(&a.route, model, version, &a.window);
    let url = format!("{}/api/v1/query", a.prometheus.trim_end_matches('/'));
    let mut evidence = Vec::new();
    let mut ask = |name: &str, query: &str| -> Result<Option<f64>, String> {
        let (status, body) =
            crate::http::get(&url, &[("query", query)], None, Duration::from_secs(30))
                .map_err(|e| format!("GET {url} failed: {e}"))?;
        let value = scalar_of(&body).map_err(|e| format!("{e} (HTTP {status}, query {query})"))?;
        evidence.push(Evidence {
            name: name.to_owned(),
            query: query.to_owned(),
            value,
        });
        Ok(value)
    };
    let mut sides = [Side::default(); 2];
    let result = (|| -> Result<(), String> {
        sides[0].circuit_opened =
            ask("canary circuit open (max)", &qs.circuit)?.is_some_and(|x| x >= 1.0);
        for (i, who) in ["canary", "stable"].iter().enumerate() {
            sides[i].requests = ask(&format!("{who} requests"), &qs.requests[i])?.unwrap_or(0.0);
            sides[i].errors =
                ask(&format!("{who} errors (5xx, 429)"), &qs.errors[i])?.unwrap_or(0.0);
            sides[i].p95_ms = ask(&format!("{who} p95 latency (ms)"), &qs.p95[i])?;
            sides[i].attempt_errors =
                ask(&format!("{who} failed attempts"), &qs.attempt_errors[i])?.unwrap_or(0.0);
            let all = ask(
                &format!("{who} router picks, all routes"),
                &qs.all_requests[i],
            )?;
            sides[i].requests_all_routes = all;
            if a.max_cost_ratio.is_some() {
                let cost = ask(&format!("{who} cost (µ$)"), &qs.cost[i])?;
                sides[i].cost_per_request = match (cost, all) {
                    (Some(c), Some(r)) if r > 0.0 => Some(c / r),
                    _ => None,
                };
            }
        }
        Ok(())
    })();
    if let Err(e) = result {
        eprintln!("canary analyze: {e}");
        return 2;
    }
    let t = Thresholds {
        max_error_ratio_delta: a.max_error_ratio_delta,
        max_latency_ratio: a.max_latency_ratio,
        min_requests: a.min_requests,
        max_cost_ratio: a.max_cost_ratio,
    };
    let (verdict, reasons) = decide(&sides[0], &sides[1], &t);
    match a.format {
        OutFormat::Json => {
            let doc = serde_json::json!({
                "verdict": verdict,
                "exit_code": verdict.exit_code(),
                "route": a.route,
                "canary": {"model": model, "version": version},
                "window": a.window,
                "canary_side": sides[0],
                "stable_side": sides[1],
                "reasons": reasons,
                "evidence": evidence,
            });
            println!(
                "{}",
                serde_json::to_string_pretty(&doc).unwrap_or_else(|e| e.to_string())
            );
        }
        OutFormat::Text => {
            println!(
                "canary {model}@{version} vs the other targets of route {}, window {}, {}",
                a.route, a.window, a.prometheus
            );
            println!("evidence:");
            for e in &evidence {
                let v = e
                    .value
                    .map_or("(no data)".to_owned(), |v| format!("{v:.3}"));
                println!("  {:<32} {:>12}   {}", e.name, v, e.query);
            }
            println!("judgement:");
            for r in &reasons {
                println!("  {r}");
            }
            println!(
                "verdict: {}",
                match verdict {
                    Verdict::Promote => "promote",
                    Verdict::Hold => "hold",
                    Verdict::Rollback => "rollback",
                }
            );
        }
    }
    verdict.exit_code()
}

/// `10m`, `1h30m`, `90s`, `2d`…
fn valid_duration(w: &str) -> bool {
    let mut digits = false;
    let mut any = false;
    let b = w.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_digit() {
            digits = true;
            i += 1;
            continue;
        }
        if !digits {
            return false;
        }
        if b[i..].starts_with(b"ms") {
            i += 2;
        } else if matches!(b[i], b's' | b'm' | b'h' | b'd' | b'w' | b'y') {
            i += 1;
        } else {
            return false;
        }
        digits = false;
        any = true;
    }
    any && !digits
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Thresholds = Thresholds {
        max_error_ratio_delta: 0.02,
        max_latency_ratio: 1.5,
        min_requests: 50.0,
        max_cost_ratio: None,
    };

    /// A side whose failed attempts are its client errors (no fallback hid any).
    fn side(requests: f64, errors: f64, p95: f64) -> Side {
        Side {
            requests,
            errors,
            attempt_errors: errors,
            requests_all_routes: Some(requests),
            p95_ms: Some(p95),
            cost_per_request: None,
            circuit_opened: false,
        }
    }

    #[test]
    fn a_healthy_canary_is_promoted() {
        let (v, _) = decide(&side(100.0, 1.0, 120.0), &side(900.0, 9.0, 100.0), &T);
        assert_eq!(v, Verdict::Promote);
    }

    #[test]
    fn a_failing_canary_is_rolled_back() {
        let (v, why) = decide(&side(100.0, 100.0, 5.0), &side(900.0, 0.0, 100.0), &T);
        assert_eq!(v, Verdict::Rollback);
        assert!(
            why[0].starts_with("error ratio: canary 1.0000 vs stable 0.0000, +1.0000 > 0.02"),
            "{why:?}"
        );
    }

    #[test]
    fn a_canary_whose_attempts_fail_is_rolled_back_though_every_client_got_a_200() {
        // Every client request answered (by a fallback model), but 40 of the canary's
        // attempts failed: ai_gateway_model_errors_total, not the client statuses.
        let mut c = side(100.0, 0.0, 100.0);
        c.attempt_errors = 40.0;
        let (v, why) = decide(&c, &side(900.0, 9.0, 100.0), &T);
        assert_eq!(v, Verdict::Rollback);
        assert_eq!(
            why[..2],
            [
                "error ratio: canary 0.0000 vs stable 0.0100 (within +0.02)",
                "failed attempts per request: canary 0.4000 vs stable 0.0100, +0.3900 > 0.02",
            ]
        );
        // Over every route of the model: the route's requests are the floor of the base.
        c.requests_all_routes = Some(400.0);
        let (v, why) = decide(&c, &side(900.0, 9.0, 100.0), &T);
        assert_eq!(v, Verdict::Rollback);
        assert_eq!(
            why[1],
            "failed attempts per request: canary 0.1000 vs stable 0.0100, +0.0900 > 0.02"
        );
        c.requests_all_routes = None;
        c.attempt_errors = 2.0;
        let (v, why) = decide(&c, &side(900.0, 9.0, 100.0), &T);
        assert_eq!(v, Verdict::Promote, "{why:?}");
        assert_eq!(
            why[1],
            "failed attempts per request: canary 0.0200 vs stable 0.0100 (within +0.02)"
        );
    }

    #[test]
    fn a_canary_that_answered_nothing_itself_is_judged_on_its_picks() {
        // Every pick of the canary failed and a fallback model answered: no request carries
        // the canary's labels, but the router picked it 100 times and 100 attempts failed.
        let mut c = side(0.0, 0.0, 100.0);
        c.p95_ms = None;
        c.requests_all_routes = Some(100.0);
        c.attempt_errors = 100.0;
        let (v, why) = decide(&c, &side(900.0, 9.0, 100.0), &T);
        assert_eq!(v, Verdict::Rollback, "{why:?}");
        assert!(why
            .iter()
            .any(|w| w.starts_with("failed attempts per request: canary 1.0000")));
        // Without picks either: too little traffic, as before.
        c.requests_all_routes = Some(0.0);
        assert_eq!(decide(&c, &side(900.0, 9.0, 100.0), &T).0, Verdict::Hold);
    }

    #[test]
    fn a_slow_canary_is_rolled_back() {
        let (v, why) = decide(&side(100.0, 0.0, 400.0), &side(900.0, 0.0, 100.0), &T);
        assert_eq!(v, Verdict::Rollback);
        assert!(why[2].contains("×4.00 > ×1.5"), "{why:?}");
    }

    #[test]
    fn too_few_requests_hold_either_side() {
        let (v, why) = decide(&side(49.0, 0.0, 1.0), &side(900.0, 0.0, 1.0), &T);
        assert_eq!(v, Verdict::Hold);
        assert_eq!(
            why,
            ["too few requests to judge: canary 49, stable 900 (--min-requests 50)"]
        );
        let (v, _) = decide(&side(100.0, 0.0, 1.0), &side(10.0, 0.0, 1.0), &T);
        assert_eq!(v, Verdict::Hold);
    }

    #[test]
    fn a_canary_whose_circuit_opened_is_rolled_back_even_with_few_requests() {
        let mut c = side(12.0, 12.0, 1.0);
        c.circuit_opened = true;
        let (v, why) = decide(&c, &side(900.0, 0.0, 1.0), &T);
        assert_eq!(v, Verdict::Rollback);
        assert!(
            why[0].starts_with("the canary's circuit breaker opened"),
            "{why:?}"
        );
    }

    #[test]
    fn missing_latency_data_holds() {
        let mut c = side(100.0, 0.0, 1.0);
        c.p95_ms = None;
        let (v, _) = decide(&c, &side(900.0, 0.0, 1.0), &T);
        assert_eq!(v, Verdict::Hold);
    }

    #[test]
    fn cost_is_judged_only_when_asked() {
        let mut c = side(100.0, 0.0, 100.0);
        let mut s = side(900.0, 0.0, 100.0);
        c.cost_per_request = Some(300.0);
        s.cost_per_request = Some(100.0);
        assert_eq!(decide(&c, &s, &T).0, Verdict::Promote);
        let t = Thresholds {
            max_cost_ratio: Some(2.0),
            ..T
        };
        assert_eq!(decide(&c, &s, &t).0, Verdict::Rollback);
        c.cost_per_request = None;
        assert_eq!(decide(&c, &s, &t).0, Verdict::Hold);
    }

    #[test]
    fn prometheus_answers() {
        let ok = r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1700000000.1,"42.5"]}]}}"#;
        assert_eq!(scalar_of(ok), Ok(Some(42.5)));
        let empty = r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#;
        assert_eq!(scalar_of(empty), Ok(None));
        let nan = r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"NaN"]}]}}"#;
        assert_eq!(scalar_of(nan), Ok(None));
        let err = r#"{"status":"error","errorType":"bad_data","error":"parse error at char 5"}"#;
        assert_eq!(
            scalar_of(err),
            Err("Prometheus error: parse error at char 5".into())
        );
    }

    #[test]
    fn queries_use_the_filter_metric_names_and_labels() {
        let q = queries("chat", "deepseek-v3.2", "2.0.0-canary.1", "10m");
        assert_eq!(
            q.requests[0],
            r#"sum(increase(ai_gateway_requests_total{route="chat",model="deepseek-v3.2",version="2.0.0-canary.1"}[10m]))"#
        );
        assert_eq!(
            q.errors[1],
            r#"sum(increase(ai_gateway_requests_total{route="chat",status=~"5..|429"}[10m]) unless on(model, version) ai_gateway_requests_total{model="deepseek-v3.2",version="2.0.0-canary.1"})"#
        );
        assert!(q.p95[0].starts_with("histogram_quantile(0.95, sum by (le) (rate(ai_gateway_request_duration_milliseconds_bucket{"));
        assert!(q.cost[0].contains("ai_gateway_cost_microdollars_total{model=\"deepseek-v3.2\",version=\"2.0.0-canary.1\"}"));
        assert_eq!(
            q.attempt_errors[0],
            r#"sum(increase(ai_gateway_model_errors_total{model="deepseek-v3.2",version="2.0.0-canary.1"}[10m]))"#
        );
        assert_eq!(
            q.attempt_errors[1],
            r#"sum(increase(ai_gateway_model_errors_total[10m]) and on(model, version) ai_gateway_requests_total{route="chat"} unless on(model, version) ai_gateway_requests_total{model="deepseek-v3.2",version="2.0.0-canary.1"})"#
        );
    }

    #[test]
    fn durations() {
        for ok in ["10m", "1h30m", "90s", "500ms", "2d"] {
            assert!(valid_duration(ok), "{ok}");
        }
        for bad in ["", "10", "m", "10x", "1h30"] {
            assert!(!valid_duration(bad), "{bad}");
        }
    }
}
