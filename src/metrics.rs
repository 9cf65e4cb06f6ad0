//! Metric names, labels and their encoding into Envoy stat names (`docs/design.md`,
//! "Metrics and labels").
//!
//! Wasm stats have no native labels: a series is a stat named
//! `<metric>.<label>.<value>.<label>.<value>…` and every shipped Envoy config carries the
//! `stats_config.stats_tags` regexes from [`stats_tags`] that turn each `.<label>.<value>`
//! back into a Prometheus label (`docs/design.md`, "Envoy facts the code depends on").
//! Values keep their dots (`model="gpt-4.1"`, `version="2.0.0-canary.1"`) because each regex
//! is anchored on the label that follows it.
//!
//! Label values come only from the configuration (route and model names, versions) or from
//! closed sets (status codes, error types, reasons): a client can't create a series.
//! Series are addressed by [`Series`], a small key of indices into the configuration; the
//! filter defines each stat once per VM and caches its id, so no name is formatted on the
//! request path after the first use of a series.

use crate::config::{route_labels, Config, ModelId, RouteId};

/// The kind of an Envoy stat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// One metric of the table in `docs/design.md` ("Metrics and labels").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Metric {
    pub name: &'static str,
    pub kind: Kind,
    pub labels: &'static [&'static str],
    pub help: &'static str,
}

pub const REQUESTS: Metric = Metric {
    name: "ai_gateway_requests_total",
    kind: Kind::Counter,
    labels: &["route", "model", "version", "status"],
    help: "Requests forwarded upstream, by what served them and the HTTP status the client got",
};
pub const DURATION: Metric = Metric {
    name: "ai_gateway_request_duration_milliseconds",
    kind: Kind::Histogram,
    labels: &["route", "model", "version"],
    help: "Time from the request's arrival to the end of the response, in ms",
};
pub const TTFT: Metric = Metric {
    name: "ai_gateway_time_to_first_token_milliseconds",
    kind: Kind::Histogram,
    labels: &["model", "version"],
    help: "Streaming responses: time from the request's arrival to the first response body byte, in ms",
};
pub const TOKENS: Metric = Metric {
    name: "ai_gateway_tokens_total",
    kind: Kind::Counter,
    labels: &["model", "version", "type"],
    help: "Tokens the provider reported in `usage` (type = prompt / completion)",
};
pub const COST: Metric = Metric {
    name: "ai_gateway_cost_microdollars_total",
    kind: Kind::Counter,
    labels: &["route", "model", "version"],
    help: "Cost of the reported tokens at the configured `prices`, in millionths of a US dollar",
};
pub const MODEL_ERRORS: Metric = Metric {
    name: "ai_gateway_model_errors_total",
    kind: Kind::Counter,
    labels: &["model", "version", "error_type"],
    help: "Failed upstream requests by cause (http_429, http_5xx, timeout, reset, connect_failure)",
};
pub const SELECTIONS: Metric = Metric {
    name: "ai_gateway_router_selections_total",
    kind: Kind::Counter,
    labels: &["route", "model", "version"],
    help: "Router decisions: which target each request was given",
};
pub const CIRCUIT_OPEN: Metric = Metric {
    name: "ai_gateway_circuit_open",
    kind: Kind::Gauge,
    labels: &["model", "version"],
    help: "1 while the target's circuit is open or half-open, 0 when closed",
};
pub const FAILOVERS: Metric = Metric {
    name: "ai_gateway_failovers_total",
    kind: Kind::Counter,
    labels: &["route", "from_model", "to_model"],
    help: "Requests sent to another target because the picked one's circuit was open",
};
pub const FALLBACKS: Metric = Metric {
    name: "ai_gateway_fallbacks_total",
    kind: Kind::Counter,
    labels: &["from_model", "to_model", "cause"],
    help: "Attempts moved to the next model of the first model's fallback list inside one request, by cause (5xx, 429, timeout, reset, connect_failure)",
};

pub const REJECTED: Metric = Metric {
    name: "ai_gateway_rejected_total",
    kind: Kind::Counter,
    labels: &["reason"],
    help: "Requests the gateway answered itself with an error, by reason",
};

/// Every metric, in the order of that table.
pub const ALL: [Metric; 11] = [
    REQUESTS,
    DURATION,
    TTFT,
    TOKENS,
    COST,
    MODEL_ERRORS,
    SELECTIONS,
    CIRCUIT_OPEN,
    FAILOVERS,
    REJECTED,
    FALLBACKS,
];

/// Histogram buckets (ms) for LLM latencies: tens of milliseconds to ten minutes. Set in every
/// shipped Envoy config through `stats_config.histogram_bucket_settings`.
pub const LATENCY_BUCKETS_MS: [u64; 17] = [
    10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 20_000, 30_000, 60_000, 120_000,
    300_000, 600_000, 1_800_000,
];

/// Where the request went, for the `route` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RouteLabel {
    Route(RouteId),
    Direct,
    Passthrough,
}

/// What served the request, for the `model` and `version` labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ModelLabel {
    Model(ModelId),
    /// `unknown_models: passthrough`: the client's model went upstream unchanged; it is not a
    /// label value (client input), so these requests share one series.
    Passthrough,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenType {
    Prompt,
    Completion,
}

/// Why a request to a model failed (the `error_type` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorType {
    Http429,
    Http5xx,
    Timeout,
    Reset,
    ConnectFailure,
}

impl ErrorType {
    pub fn label(self) -> &'static str {
        match self {
            ErrorType::Http429 => "http_429",
            ErrorType::Http5xx => "http_5xx",
            ErrorType::Timeout => "timeout",
            ErrorType::Reset => "reset",
            ErrorType::ConnectFailure => "connect_failure",
        }
    }

    /// Classifies a finished upstream request from the status the client got and Envoy's
    /// `response.code_details`. `None` = not a failure of the model (2xx–4xx other than 429,
    /// or the client went away).
    pub fn classify(status: u32, code_details: &str) -> Option<ErrorType> {
        // Envoy 1.40: `response_timeout` (the request timeout the filter sets, also when it
        // cuts a stream after its 200), `upstream_per_try_timeout`,
        // `upstream_per_try_idle_timeout`; older releases said `upstream_response_timeout`.
        if code_details.starts_with("response_timeout")
            || code_details.starts_with("upstream_response_timeout")
            || code_details.starts_with("upstream_per_try_timeout")
            || code_details.starts_with("upstream_per_try_idle_timeout")
        {
            return Some(ErrorType::Timeout);
        }
        if code_details.starts_with("upstream_reset") {
            return Some(if code_details.contains("connection_failure") {
                ErrorType::ConnectFailure
            } else {
                ErrorType::Reset
            });
        }
        match status {
            429 => Some(ErrorType::Http429),
            500..=599 => Some(ErrorType::Http5xx),
            _ => None,
        }
    }
}

/// Why the gateway answered a request itself (the `reason` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RejectReason {
    InvalidRequest,
    ModelNotFound,
    NoHealthyTarget,
    Misconfigured,
}

impl RejectReason {
    pub fn label(self) -> &'static str {
        match self {
            RejectReason::InvalidRequest => "invalid_request",
            RejectReason::ModelNotFound => "model_not_found",
            RejectReason::NoHealthyTarget => "no_healthy_target",
            RejectReason::Misconfigured => "gateway_misconfigured",
        }
    }
}

/// One time series: a metric and its label values, as indices and closed-set values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Series {
    Requests(RouteLabel, ModelLabel, u16),
    Duration(RouteLabel, ModelLabel),
    Ttft(ModelLabel),
    Tokens(ModelLabel, TokenType),
    Cost(RouteLabel, ModelLabel),
    ModelErrors(ModelLabel, ErrorType),
    Selections(RouteLabel, ModelLabel),
    CircuitOpen(ModelId),
    Failovers(RouteLabel, ModelId, ModelId),
    /// An attempt moved from one model to the next of its fallback list, and why.
    Fallbacks(ModelId, ModelId, ErrorType),
    Rejected(RejectReason),
}

impl Series {
    pub fn metric(&self) -> Metric {
        match self {
            Series::Requests(..) => REQUESTS,
            Series::Duration(..) => DURATION,
            Series::Ttft(..) => TTFT,
            Series::Tokens(..) => TOKENS,
            Series::Cost(..) => COST,
            Series::ModelErrors(..) => MODEL_ERRORS,
            Series::Selections(..) => SELECTIONS,
            Series::CircuitOpen(..) => CIRCUIT_OPEN,
            Series::Failovers(..) => FAILOVERS,
            Series::Fallbacks(..) => FALLBACKS,
            Series::Rejected(..) => REJECTED,
        }
    }

    /// The Envoy stat name of this series, e.g.
    /// `ai_gateway_requests_total.route.chat.model.gpt-4.1.version.1.0.0.status.200`.
    pub fn stat_name(&self, cfg: &Config) -> String {
        let route = |r: &RouteLabel| match r {
            RouteLabel::Route(id) => cfg.route(*id).name.as_str(),
            RouteLabel::Direct => route_labels::DIRECT,
            RouteLabel::Passthrough => route_labels::PASSTHROUGH,
        };
        let model_name = |m: ModelId| cfg.model(m).name.as_str();
        let model = |m: &ModelLabel| match m {
            ModelLabel::Model(id) => (model_name(*id), cfg.model(*id).version_label.as_str()),
            ModelLabel::Passthrough => (route_labels::PASSTHROUGH, route_labels::PASSTHROUGH),
        };
        let status;
        let values: Vec<&str> = match self {
            Series::Requests(r, m, s) => {
                status = s.to_string();
                let (n, v) = model(m);
                vec![route(r), n, v, &status]
            }
            Series::Duration(r, m) | Series::Selections(r, m) | Series::Cost(r, m) => {
                let (n, v) = model(m);
                vec![route(r), n, v]
            }
            Series::Ttft(m) => {
                let (n, v) = model(m);
                vec![n, v]
            }
            Series::Tokens(m, t) => {
                let (n, v) = model(m);
                let t = match t {
                    TokenType::Prompt => "prompt",
                    TokenType::Completion => "completion",
                };
                vec![n, v, t]
            }
            Series::ModelErrors(m, e) => {
                let (n, v) = model(m);
                vec![n, v, e.label()]
            }
            Series::CircuitOpen(id) => {
                let (n, v) = model(&ModelLabel::Model(*id));
                vec![n, v]
            }
            Series::Failovers(r, from, to) => vec![route(r), model_name(*from), model_name(*to)],
            Series::Fallbacks(from, to, cause) => vec![
                model_name(*from),
                model_name(*to),
                crate::config::Causes::name(*cause).unwrap_or("unknown"),
            ],
            Series::Rejected(reason) => vec![reason.label()],
        };
        encode(&self.metric(), &values)
    }
}

/// `name.l1.v1.l2.v2…`
pub fn encode(metric: &Metric, values: &[&str]) -> String {
    let mut out = String::with_capacity(
        metric.name.len()
            + values
                .iter()
                .zip(metric.labels)
                .map(|(v, l)| v.len() + l.len() + 2)
                .sum::<usize>(),
    );
    out.push_str(metric.name);
    for (label, value) in metric.labels.iter().zip(values) {
        out.push('.');
        out.push_str(label);
        out.push('.');
        out.push_str(value);
    }
    out
}

/// The `stats_config.stats_tags` every Envoy config must carry: `(tag_name, regex)`.
/// For label `i` of a metric, the first group is `.label.value` (removed from the name) and
/// the second the value; the labels before and after it anchor the match, so values may
/// contain dots. The last label of a metric whose values never contain dots (`status`,
/// `reason`, `type`, `error_type`) matches `[^.]+`.
pub fn stats_tags() -> Vec<(String, String)> {
    let mut tags = Vec::new();
    for m in ALL {
        for (i, label) in m.labels.iter().enumerate() {
            let mut re = format!("^wasmcustom\\.{}", m.name);
            for (j, other) in m.labels.iter().enumerate() {
                let value = if dotless(other) { "[^.]+" } else { ".+" };
                if i == j {
                    re.push_str(&format!("(\\.{other}\\.({value}))"));
                } else {
                    re.push_str(&format!("\\.{other}\\.{value}"));
                }
            }
            re.push('$');
            tags.push(((*label).to_owned(), re));
        }
    }
    tags
}

/// Labels whose values never contain a dot.
fn dotless(label: &str) -> bool {
    matches!(label, "status" | "reason" | "type" | "error_type" | "cause")
}

/// The `stats_config` block every shipped Envoy config carries, as YAML (indented for the
/// bootstrap's top level). `config_files::every_shipped_envoy_config_carries_the_stats_config`
/// keeps the files in step with this function.
pub fn stats_config_yaml() -> String {
    let mut out = String::from("stats_config:\n  stats_tags:\n");
    for (tag, regex) in stats_tags() {
        out.push_str(&format!("  - tag_name: {tag}\n    regex: '{regex}'\n"));
    }
    out.push_str("  histogram_bucket_settings:\n  - match: { prefix: \"wasmcustom.ai_gateway_\" }\n    buckets: [");
    let buckets: Vec<String> = LATENCY_BUCKETS_MS.iter().map(|b| b.to_string()).collect();
    out.push_str(&buckets.join(", "));
    out.push_str("]\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::test;

    fn cfg() -> Config {
        crate::config::parse(
            br#"{"models":[{"name":"gpt-4.1","version":"1.0.0"},{"name":"deepseek-v3.2","version":"2.0.0-canary.1"}],
                 "routes":[{"name":"chat","targets":[{"model":"gpt-4.1","weight":90},{"model":"deepseek-v3.2","weight":10}]}],
                 "default_route":"chat"}"#,
        )
        .unwrap()
    }

    #[test]
    fn encodes_labels_into_the_stat_name_in_spec_order() {
        let c = cfg();
        let (chat, gpt, deepseek) = (
            c.route_id(0).unwrap(),
            c.model_id(0).unwrap(),
            c.model_id(1).unwrap(),
        );
        assert_eq!(
            Series::Requests(RouteLabel::Route(chat), ModelLabel::Model(deepseek), 503).stat_name(&c),
            "ai_gateway_requests_total.route.chat.model.deepseek-v3.2.version.2.0.0-canary.1.status.503"
        );
        assert_eq!(
            Series::Tokens(ModelLabel::Model(gpt), TokenType::Completion).stat_name(&c),
            "ai_gateway_tokens_total.model.gpt-4.1.version.1.0.0.type.completion"
        );
        assert_eq!(
            Series::Failovers(RouteLabel::Route(chat), deepseek, gpt).stat_name(&c),
            "ai_gateway_failovers_total.route.chat.from_model.deepseek-v3.2.to_model.gpt-4.1"
        );
        assert_eq!(
            Series::Rejected(RejectReason::ModelNotFound).stat_name(&c),
            "ai_gateway_rejected_total.reason.model_not_found"
        );
        assert_eq!(
            Series::Duration(RouteLabel::Passthrough, ModelLabel::Passthrough).stat_name(&c),
            "ai_gateway_request_duration_milliseconds.route._passthrough.model._passthrough.version._passthrough"
        );
    }

    #[test]
    fn generates_one_tag_regex_per_label_of_every_metric() {
        let tags = stats_tags();
        let labels: usize = ALL.iter().map(|m| m.labels.len()).sum();
        assert_eq!(tags.len(), labels);
        assert!(tags.contains(&(
            "status".to_owned(),
            r"^wasmcustom\.ai_gateway_requests_total\.route\..+\.model\..+\.version\..+(\.status\.([^.]+))$"
                .to_owned()
        )));
        assert!(tags.contains(&(
            "model".to_owned(),
            r"^wasmcustom\.ai_gateway_requests_total\.route\..+(\.model\.(.+))\.version\..+\.status\.[^.]+$"
                .to_owned()
        )));
    }

    #[test]
    fn classifies_failures_from_status_and_response_details() {
        assert_eq!(ErrorType::classify(200, "via_upstream"), None);
        assert_eq!(ErrorType::classify(400, "via_upstream"), None);
        assert_eq!(
            ErrorType::classify(429, "via_upstream"),
            Some(ErrorType::Http429)
        );
        assert_eq!(
            ErrorType::classify(503, "via_upstream"),
            Some(ErrorType::Http5xx)
        );
        assert_eq!(
            ErrorType::classify(504, "upstream_response_timeout"),
            Some(ErrorType::Timeout)
        );
        // Regression: Envoy 1.40 reports the filter's request timeout as `response_timeout`,
        // with status 504 before the response started and 200 when it cut a stream.
        assert_eq!(
            ErrorType::classify(504, "response_timeout"),
            Some(ErrorType::Timeout)
        );
        assert_eq!(
            ErrorType::classify(200, "response_timeout"),
            Some(ErrorType::Timeout)
        );
        assert_eq!(
            ErrorType::classify(200, "upstream_per_try_idle_timeout"),
            Some(ErrorType::Timeout)
        );
        assert_eq!(
            ErrorType::classify(503, "upstream_reset_before_response_started{remote_reset}"),
            Some(ErrorType::Reset)
        );
        assert_eq!(
            ErrorType::classify(503, "upstream_reset_before_response_started{remote_connection_failure,delayed_connect_error:_Connection_refused}"),
            Some(ErrorType::ConnectFailure)
        );
    }
}

#[cfg(test)]
mod config_files {
    use super::*;

    /// Every Envoy bootstrap in envoy/ that loads the filter must carry the block verbatim.
    /// To refresh them: `AI_GATEWAY_PRINT_STATS_CONFIG=1 cargo test stats_config -- --nocapture`.
    #[test]
    fn every_shipped_envoy_config_carries_the_stats_config() {
        let block = stats_config_yaml();
        if std::env::var_os("AI_GATEWAY_PRINT_STATS_CONFIG").is_some() {
            println!("{block}");
        }
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("envoy");
        let mut checked = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            // Bootstraps only (they have static_resources or dynamic_resources), with the filter.
            let bootstrap =
                text.contains("\nstatic_resources:") || text.contains("\ndynamic_resources:");
            if !bootstrap || !text.contains("ai_gateway") {
                continue;
            }
            // Written verbatim by hand, or re-serialised by a YAML tool (scripts/ci/sync-deploy.py
            // drops the quotes): compare regex by regex.
            for (tag, regex) in stats_tags() {
                assert!(
                    text.contains(&regex),
                    "{} lacks the stats_tags regex for {tag}: {regex} (see metrics::stats_config_yaml)",
                    path.display()
                );
            }
            assert_eq!(
                text.matches("- tag_name: ").count(),
                stats_tags().len(),
                "{}: stats_tags differ from metrics::stats_tags()",
                path.display()
            );
            assert!(
                text.contains("wasmcustom.ai_gateway_"),
                "{}: no histogram buckets",
                path.display()
            );
            checked += 1;
        }
        assert!(
            checked >= 2,
            "expected the demo and holysheep configs, checked {checked}"
        );
    }
}
