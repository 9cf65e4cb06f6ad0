//! The response's decisions: client headers, how usage is observed, and the accounting of a
//! finished request (metrics, cost, circuit breaker).

use super::*;
use crate::config::parse;
use crate::header_map::{serialize, HeaderMap};
use crate::metrics::{ErrorType, RouteLabel};
use crate::stats::MemoryStats;
use crate::store::MemoryStore;
use crate::testing::test;
use std::rc::Rc;

const CONFIG: &str = r#"{
    "models":[{"name":"gpt-4.1","version":"1.0.0","weight":1}],
    "failover":{"min_requests":2,"window_s":10,"cooldown_s":30},
    "prices":{"gpt-4.1":{"input":2.0,"output":8.0}}}"#;

fn id(i: usize) -> crate::config::ModelId {
    parse(CONFIG.as_bytes()).unwrap().model_id(i).unwrap()
}

fn served(stream: bool, strip_usage: bool) -> Served {
    Served {
        route: RouteLabel::Route(parse(CONFIG.as_bytes()).unwrap().route_id(0).unwrap()),
        model: ModelLabel::Model(id(0)),
        probe: false,
        stream,
        strip_usage,
        nonce: None,
    }
}

fn plan(headers: &[(&str, &[u8])], served: &Served) -> ResponsePlan {
    let raw = serialize(headers);
    let cfg = parse(CONFIG.as_bytes()).unwrap();
    on_headers(&cfg, &HeaderMap::parse(&raw).unwrap(), served)
}

#[test]
fn usage_is_read_from_uncompressed_successes_as_sse_or_json() {
    let sse: Vec<(&str, &[u8])> = vec![
        (":status", b"200"),
        ("content-type", b"text/event-stream; charset=utf-8"),
        ("content-length", b"99"),
    ];
    let p = plan(&sse, &served(true, true));
    assert_eq!(p.status, 200);
    assert!(matches!(p.observer, Observer::Strip(_)));
    assert!(p.remove_content_length);
    assert!(p.awaiting_first_token);

    let p = plan(&sse, &served(true, false));
    assert!(matches!(p.observer, Observer::Scan(_)));
    assert!(!p.remove_content_length);

    let json: Vec<(&str, &[u8])> = vec![(":status", b"201"), ("content-type", b"application/json")];
    let p = plan(&json, &served(true, true));
    assert!(matches!(p.observer, Observer::Scan(_)));
    assert!(
        !p.awaiting_first_token,
        "no first token to wait for in a JSON answer"
    );

    let gz: Vec<(&str, &[u8])> = vec![(":status", b"200"), ("content-encoding", b"gzip")];
    assert!(matches!(
        plan(&gz, &served(false, false)).observer,
        Observer::None
    ));
    let err: Vec<(&str, &[u8])> = vec![(":status", b"503"), ("content-type", b"text/event-stream")];
    let p = plan(&err, &served(true, true));
    assert_eq!(p.status, 503);
    assert!(matches!(p.observer, Observer::None));
    assert!(!p.awaiting_first_token);
    let bad: Vec<(&str, &[u8])> = vec![(":status", b"2xx")];
    assert_eq!(plan(&bad, &served(false, false)).status, 0);
}

#[test]
fn the_client_is_told_the_model_version_and_route_that_served_it() {
    let cfg = parse(CONFIG.as_bytes()).unwrap();
    assert_eq!(
        client_headers(&cfg, &served(false, false)),
        vec![
            ("x-ai-gateway-model", "gpt-4.1"),
            ("x-ai-gateway-version", "1.0.0"),
            ("x-ai-gateway-route", "_default"),
        ]
    );
    let pass = Served {
        route: RouteLabel::Passthrough,
        model: ModelLabel::Passthrough,
        ..served(false, false)
    };
    assert_eq!(
        client_headers(&cfg, &pass),
        vec![("x-ai-gateway-route", "_passthrough")]
    );
}

fn finished(status: u64, details: &str, usage: Option<Usage>, now_ms: u64) -> Finished<'_> {
    Finished {
        served: served(false, false),
        status,
        details,
        duration_ms: 42,
        usage,
        now_ms,
    }
}

#[test]
fn a_finished_request_counts_its_status_duration_tokens_and_exact_cost() {
    let cfg = parse(CONFIG.as_bytes()).unwrap();
    let stats = MemoryStats::default();
    let costs = Costs::new(1);
    let breakers = Breakers::new(&cfg, MemoryStore::new());
    let usage = Usage {
        prompt_tokens: 1000,
        completion_tokens: 250,
    };
    let s = served(false, false);
    account(
        &cfg,
        &stats,
        &costs,
        &breakers,
        &finished(200, "", Some(usage), 1),
    );
    assert_eq!(stats.counter(Series::Requests(s.route, s.model, 200)), 1);
    assert_eq!(stats.recorded(Series::Duration(s.route, s.model)), vec![42]);
    assert_eq!(
        stats.counter(Series::Tokens(s.model, TokenType::Prompt)),
        1000
    );
    assert_eq!(
        stats.counter(Series::Tokens(s.model, TokenType::Completion)),
        250
    );
    // 1000 × $2/M + 250 × $8/M = $0.004 = 4000 µ$.
    assert_eq!(stats.counter(Series::Cost(s.route, s.model)), 4000);
    assert_eq!(breakers.window_counts(id(0), 1), (1, 0));
}

#[test]
fn failures_count_as_model_errors_and_open_the_circuit_with_its_gauge() {
    let cfg = parse(CONFIG.as_bytes()).unwrap();
    let stats = MemoryStats::default();
    let costs = Costs::new(1);
    let breakers = Breakers::new(&cfg, Rc::new(MemoryStore::default()));
    let s = served(false, false);
    account(
        &cfg,
        &stats,
        &costs,
        &breakers,
        &finished(503, "via_upstream", None, 10),
    );
    assert!(stats.recorded(Series::CircuitOpen(id(0))).is_empty());
    account(
        &cfg,
        &stats,
        &costs,
        &breakers,
        &finished(200, "response_timeout", None, 11),
    );
    assert_eq!(
        stats.counter(Series::ModelErrors(s.model, ErrorType::Http5xx)),
        1
    );
    assert_eq!(
        stats.counter(Series::ModelErrors(s.model, ErrorType::Timeout)),
        1
    );
    assert_eq!(stats.recorded(Series::CircuitOpen(id(0))), vec![1]);
    assert!(breakers.is_open(id(0)));
    // The client that went away says nothing about the model: counted as a request only.
    account(&cfg, &stats, &costs, &breakers, &finished(0, "", None, 12));
    assert_eq!(stats.counter(Series::Requests(s.route, s.model, 0)), 1);
    assert_eq!(
        breakers.window_counts(id(0), 12),
        (0, 2),
        "nothing added to the two failures"
    );
}

#[test]
fn the_half_open_probe_closes_the_circuit_and_resets_the_gauge() {
    let cfg = parse(CONFIG.as_bytes()).unwrap();
    let stats = MemoryStats::default();
    let costs = Costs::new(1);
    let breakers = Breakers::new(&cfg, MemoryStore::new());
    for t in [10, 11] {
        account(&cfg, &stats, &costs, &breakers, &finished(500, "", None, t));
    }
    breakers.refresh();
    assert_eq!(
        breakers.admit(id(0), 11 + 30_000),
        crate::breaker::Admission::Probe
    );
    let probe = Finished {
        served: Served {
            probe: true,
            ..served(false, false)
        },
        ..finished(200, "", None, 11 + 30_001)
    };
    account(&cfg, &stats, &costs, &breakers, &probe);
    assert_eq!(stats.recorded(Series::CircuitOpen(id(0))), vec![1, 0]);
    assert!(!breakers.is_open(id(0)));
}

/// The access-log entry is written by hand: it must be the JSON serde_json makes of the same
/// fields, for names that need escaping, every cause, missing usage, and costs of every scale.
#[test]
fn the_access_entry_is_what_serde_json_writes() {
    #[derive(serde::Serialize)]
    struct Entry<'a> {
        route: &'a str,
        model: Option<&'a str>,
        version: Option<&'a str>,
        attempts: u32,
        fallback_cause: Option<&'a str>,
        prompt_tokens: Option<u64>,
        completion_tokens: Option<u64>,
        cost_usd: Option<String>,
    }
    let names = ["gpt-4.1", "org/model:v_2.x-9"];
    let prices = [
        (2.0, 8.0),
        (0.000001, 0.000003),
        (123.456789, 0.5),
        (0.0, 0.0),
    ];
    let usages = [
        None,
        Some((0, 0)),
        Some((1, 1)),
        Some((250, 9)),
        Some((u64::MAX, u64::MAX)),
    ];
    for name in names {
        for (input, output) in prices {
            let raw = serde_json::json!({
                "models": [{"name": name, "version": "1.0.0", "weight": 1}],
                "prices": {name: {"input": input, "output": output}},
            })
            .to_string();
            let cfg = parse(raw.as_bytes()).unwrap();
            let m = cfg.model_id(0).unwrap();
            let price = cfg.model(m).price.unwrap();
            for usage in usages {
                for cause in [None, Some(ErrorType::Http429), Some(ErrorType::Timeout)] {
                    for model in [ModelLabel::Model(m), ModelLabel::Passthrough] {
                        let served = Served {
                            route: RouteLabel::Route(cfg.route_id(0).unwrap()),
                            model,
                            probe: false,
                            stream: false,
                            strip_usage: false,
                            nonce: None,
                        };
                        let usage = usage.map(|(p, c)| Usage {
                            prompt_tokens: p,
                            completion_tokens: c,
                        });
                        let got = access_entry(&cfg, &served, 3, cause, usage);
                        let model_cfg = match model {
                            ModelLabel::Model(m) => Some(cfg.model(m)),
                            ModelLabel::Passthrough => None,
                        };
                        let cost = match (usage, model_cfg) {
                            (Some(u), Some(_)) => {
                                let pico = u128::from(u.prompt_tokens)
                                    * u128::from(price.input_micros_per_mtok)
                                    + u128::from(u.completion_tokens)
                                        * u128::from(price.output_micros_per_mtok);
                                let unit = 1_000_000_000_000u128;
                                let frac = format!("{:012}", pico % unit);
                                let frac = frac.trim_end_matches('0');
                                Some(if frac.is_empty() {
                                    format!("{}", pico / unit)
                                } else {
                                    format!("{}.{frac}", pico / unit)
                                })
                            }
                            _ => None,
                        };
                        let want = serde_json::to_vec(&Entry {
                            route: routing::route_name(&cfg, served.route),
                            model: model_cfg.map(|m| m.name.as_str()),
                            version: model_cfg.map(|m| m.version_label.as_str()),
                            attempts: 3,
                            fallback_cause: cause.and_then(crate::config::Causes::name),
                            prompt_tokens: usage.map(|u| u.prompt_tokens),
                            completion_tokens: usage.map(|u| u.completion_tokens),
                            cost_usd: cost,
                        })
                        .unwrap();
                        assert_eq!(
                            String::from_utf8_lossy(&got),
                            String::from_utf8_lossy(&want),
                            "{name} {input} {output} {usage:?} {cause:?}"
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn json_strings_are_escaped_as_serde_json_escapes_them() {
    let mut all: String = (0u8..0x80).map(char::from).collect();
    all.push_str("é日本\u{10ffff}");
    for s in [all.as_str(), "", "plain", "\"\\", "\u{7f}"] {
        let mut got = Vec::new();
        push_json_str(&mut got, s);
        assert_eq!(got, serde_json::to_vec(s).unwrap(), "{s:?}");
    }
}
