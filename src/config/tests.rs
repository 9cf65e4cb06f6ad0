use super::*;
use crate::body::Endpoint;
use crate::metrics::ErrorType;
use crate::testing::test;

fn errors_of(json: &str) -> Vec<String> {
    match parse(json.as_bytes()) {
        Ok(_) => panic!("expected errors for {json}"),
        Err(e) => e.0.iter().map(|e| e.to_string()).collect(),
    }
}

fn ok(json: &str) -> Config {
    match parse(json.as_bytes()) {
        Ok(c) => c,
        Err(e) => panic!("expected a valid config, got {e}"),
    }
}

const FULL_EXAMPLE: &str = r#"{
  "models": [
    {"name": "claude-sonnet-4.5", "version": "1.4.0", "max_tokens": 4096, "temperature": 0.7,
     "weight": 90, "cluster": "holysheep", "system_prompt": "...", "timeout_ms": 60000},
    {"name": "deepseek-v3.2", "version": "2.0.0-canary.1", "weight": 10},
    {"name": "claude-sonnet-4.5", "version": "1.5.0-rc.1", "system_prompt": "new template"}
  ],
  "routes": [
    {"name": "chat", "targets": [
      {"model": "claude-sonnet-4.5", "version": "1.4.0", "weight": 80},
      {"model": "claude-sonnet-4.5", "version": "1.5.0-rc.1", "weight": 10},
      {"model": "deepseek-v3.2", "weight": 10}
    ]}
  ],
  "default_route": "chat",
  "unknown_models": "route",
  "failover_threshold": 0.5,
  "failover": {"window_s": 30, "min_requests": 20, "cooldown_s": 30},
  "timeout_ms": 30000,
  "upstream": {"cluster": "holysheep", "api_key_env": "HOLYSHEEP_API_KEY"},
  "sticky": {"header": "x-user-id"},
  "stream_usage": "inject",
  "paths": ["/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/responses"],
  "serve_models_endpoint": true,
  "prices": {"gpt-4.1": {"input": 2.00, "output": 8.00}}
}"#;

#[test]
fn accepts_the_full_example_and_resolves_names_to_indices() {
    let c = ok(FULL_EXAMPLE);
    assert_eq!(c.models.len(), 3);
    assert_eq!(c.lookup("chat"), Some(Named::Route(RouteId(0))));
    assert_eq!(c.default_route, Some(RouteId(0)));
    let chat = &c.routes[0];
    assert_eq!(chat.total_weight, 100.0);
    assert_eq!(
        chat.targets.iter().map(|t| t.model).collect::<Vec<_>>(),
        vec![ModelId(0), ModelId(2), ModelId(1)]
    );
    assert_eq!(c.models[0].timeout_header, "60000");
    assert_eq!(c.models[1].timeout_ms, 30_000);
    assert_eq!(c.models[1].cluster, "holysheep");
    assert_eq!(c.sticky_header.as_deref(), Some("x-user-id"));
    assert_eq!(c.endpoint("/v1/chat/completions"), Some(Endpoint::Chat));
    assert_eq!(c.endpoint("/v1/responses"), Some(Endpoint::Responses));
    assert_eq!(c.endpoint("/v1/files"), None);
}

#[test]
fn a_model_name_selects_its_highest_release_and_skips_pre_releases() {
    let c = ok(r#"{"models":[
        {"name":"m","version":"1.2.0","weight":1},
        {"name":"m","version":"1.10.0"},
        {"name":"m","version":"2.0.0-rc.1"},
        {"name":"canary-only","version":"0.1.0-canary.1"}]}"#);
    assert_eq!(c.lookup("m"), Some(Named::Model(ModelId(1))));
    assert_eq!(c.lookup("canary-only"), None);
    assert_eq!(c.lookup("nope"), None);
}

#[test]
fn fills_defaults_when_optional_fields_are_absent() {
    let c = ok(r#"{"models":[{"name":"gpt-4.1","version":"1.0.0","weight":1}]}"#);
    assert_eq!(c.timeout_ms, 30_000);
    assert_eq!(c.cluster, "holysheep");
    assert_eq!(c.api_key_env, "HOLYSHEEP_API_KEY");
    assert_eq!(c.unknown_models, UnknownModelsPolicy::Route);
    assert!(c.stream_usage);
    assert!(c.serve_models_endpoint);
    assert_eq!(c.paths.len(), 4);
    assert_eq!(
        c.breaker,
        Breaker {
            threshold: 0.5,
            window_s: 30,
            min_requests: 20,
            cooldown_s: 30
        }
    );
    // The implicit route of models[].weight is the default route.
    let d = c.default_route.unwrap();
    assert_eq!(c.route(d).name, route_labels::IMPLICIT);
}

#[test]
fn names_the_path_of_an_unknown_field() {
    let e = errors_of(r#"{"models":[{"name":"a","version":"1.0.0","wieght":1}]}"#);
    assert_eq!(e.len(), 1);
    assert!(
        e[0].starts_with("models[0].wieght: unknown field `wieght`, expected one of `name`"),
        "{e:?}"
    );
}

#[test]
fn names_the_path_of_a_wrong_type() {
    let e = errors_of(r#"{"models":[{"name":"a","version":"1.0.0","weight":"high"}]}"#);
    assert!(e[0].starts_with("models[0].weight: wrong type"), "{e:?}");
}

#[test]
fn rejects_a_version_that_is_not_semver() {
    let e = errors_of(
        r#"{"models":[{"name":"a","version":"1.0.0","weight":1},{"name":"b","version":"2.0"}]}"#,
    );
    assert_eq!(e.len(), 1);
    assert!(
        e[0].starts_with(r#"models[1].version: "2.0" is not SemVer"#),
        "{e:?}"
    );
}

#[test]
fn rejects_a_duplicate_name_and_version() {
    let e = errors_of(
        r#"{"models":[{"name":"a","version":"1.0.0","weight":1},{"name":"a","version":"1.0.0"}]}"#,
    );
    assert!(
        e[0].contains("models[1].version: a@1.0.0 is already configured as models[0]"),
        "{e:?}"
    );
}

#[test]
fn reports_every_error_at_once() {
    let e = errors_of(
        r#"{"models":[{"name":"a","version":"x","weight":-1,"temperature":3}],
            "failover_threshold": 1.5, "timeout_ms": 0,
            "routes":[{"name":"a","targets":[{"model":"zzz","weight":1}]}]}"#,
    );
    let joined = e.join("\n");
    for needle in [
        "timeout_ms: 0 is out of range",
        "failover_threshold: 1.5 is out of range",
        "models[0].version:",
        "models[0].weight: -1 is not a weight",
        "models[0].temperature: 3 is out of range",
        "routes[0].name: \"a\" is also a model name",
        "routes[0].targets[0].model: \"zzz\" is not a configured model",
    ] {
        assert!(joined.contains(needle), "missing {needle:?} in\n{joined}");
    }
}

#[test]
fn requires_a_version_when_a_route_names_a_model_with_several() {
    let e = errors_of(
        r#"{"models":[{"name":"a","version":"1.0.0"},{"name":"a","version":"1.1.0"}],
            "routes":[{"name":"r","targets":[{"model":"a","weight":1}]}],"default_route":"r"}"#,
    );
    assert_eq!(
        e,
        vec!["routes[0].targets[0].version: required: a has 2 configured versions (1.0.0, 1.1.0)"]
    );
}

#[test]
fn rejects_a_route_version_that_is_not_configured() {
    let e = errors_of(
        r#"{"models":[{"name":"a","version":"1.0.0"}],
            "routes":[{"name":"r","targets":[{"model":"a","version":"9.9.9","weight":1}]}],"default_route":"r"}"#,
    );
    assert!(
        e[0].starts_with("routes[0].targets[0].version: a@9.9.9 is not configured"),
        "{e:?}"
    );
}

#[test]
fn rejects_a_route_whose_weights_sum_to_zero() {
    let e = errors_of(
        r#"{"models":[{"name":"a","version":"1.0.0","weight":1}],
            "routes":[{"name":"r","targets":[{"model":"a","weight":0}]}]}"#,
    );
    assert!(
        e[0].starts_with("routes[0].targets: the weights sum to 0"),
        "{e:?}"
    );
}

#[test]
fn rejects_an_implicit_route_without_weight_only_when_it_is_used() {
    let e = errors_of(r#"{"models":[{"name":"a","version":"1.0.0"}]}"#);
    assert!(
        e[0].starts_with("models: no model has a weight above 0"),
        "{e:?}"
    );
    ok(r#"{"models":[{"name":"a","version":"1.0.0"}],"unknown_models":"reject"}"#);
    ok(r#"{"models":[{"name":"a","version":"1.0.0"}],"unknown_models":"passthrough"}"#);
    ok(r#"{"models":[{"name":"a","version":"1.0.0"}],
          "routes":[{"name":"r","targets":[{"model":"a","weight":1}]}],"default_route":"r"}"#);
}

#[test]
fn rejects_duplicate_route_names_and_unknown_default_route() {
    let e = errors_of(
        r#"{"models":[{"name":"a","version":"1.0.0"}],
            "routes":[{"name":"r","targets":[{"model":"a","weight":1}]},
                      {"name":"r","targets":[{"model":"a","weight":1}]}],
            "default_route":"nope"}"#,
    );
    let joined = e.join("\n");
    assert!(joined.contains("routes[1].name: \"r\" is already the name of another route"));
    assert!(joined.contains("default_route: \"nope\" is not the name of a configured route"));
}

#[test]
fn rejects_bad_enums_sticky_headers_paths_and_env_names() {
    assert!(errors_of(
        r#"{"models":[{"name":"a","version":"1.0.0","weight":1}],"unknown_models":"drop"}"#
    )[0]
    .starts_with("unknown_models: unknown variant `drop`"));
    assert!(errors_of(
        r#"{"models":[{"name":"a","version":"1.0.0","weight":1}],"sticky":{"header":"x user"}}"#
    )[0]
    .starts_with("sticky.header:"));
    assert!(errors_of(
        r#"{"models":[{"name":"a","version":"1.0.0","weight":1}],"paths":["v1/chat"]}"#
    )[0]
    .starts_with("paths[0]:"));
    assert!(errors_of(r#"{"models":[{"name":"a","version":"1.0.0","weight":1}],"upstream":{"api_key_env":"MY-KEY"}}"#)[0]
        .starts_with("upstream.api_key_env:"));
    // Regression: a key pasted where the variable's name belongs is never echoed.
    let e = errors_of(
        r#"{"models":[{"name":"a","version":"1.0.0","weight":1}],"upstream":{"api_key_env":"sk-live-0123456789abcdef"}}"#,
    );
    assert!(
        e[0].starts_with("upstream.api_key_env: is not an environment variable name"),
        "{e:?}"
    );
    assert!(!e[0].contains("sk-live"), "{e:?}");
}

#[test]
fn rejects_names_that_cannot_be_metric_labels() {
    let e = errors_of(r#"{"models":[{"name":"a b","version":"1.0.0","weight":1}]}"#);
    assert!(
        e[0].starts_with("models[0].name: \"a b\" contains ' '"),
        "{e:?}"
    );
}

#[test]
fn rejects_empty_and_non_json_configurations_clearly() {
    assert_eq!(errors_of("  "), vec!["the plugin configuration is empty"]);
    assert!(errors_of("{not json")[0].contains("line 1"));
    assert!(errors_of("[]")[0].starts_with("the plugin configuration must be a JSON object"));
    assert!(
        errors_of("\"models\"")[0].starts_with("the plugin configuration must be a JSON object")
    );
}

#[test]
fn converts_prices_to_integer_micro_dollars() {
    let c = ok(
        r#"{"models":[{"name":"gpt-4.1","version":"1.0.0","weight":1}],
                   "prices":{"gpt-4.1":{"input":2.0,"output":8.0}}}"#,
    );
    assert_eq!(
        c.models[0].price,
        Some(Price {
            input_micros_per_mtok: 2_000_000,
            output_micros_per_mtok: 8_000_000
        })
    );
    assert!(errors_of(r#"{"models":[{"name":"a","version":"1.0.0","weight":1}],"prices":{"a":{"input":-1,"output":1}}}"#)[0]
        .starts_with("prices.a.input: -1 is out of range"));
}

#[test]
fn lists_routes_then_addressable_models_for_the_models_endpoint() {
    let c = ok(FULL_EXAMPLE);
    assert_eq!(
        c.served_names().collect::<Vec<_>>(),
        vec!["chat", "claude-sonnet-4.5"]
    );
}

#[test]
fn drained_targets_are_kept_after_live_ones() {
    let c = ok(
        r#"{"models":[{"name":"a","version":"1.0.0"},{"name":"b","version":"1.0.0"}],
                   "routes":[{"name":"r","targets":[{"model":"a","weight":0},{"model":"b","weight":5}]}],
                   "default_route":"r"}"#,
    );
    let r = &c.routes[0];
    assert_eq!(r.targets[0].model, ModelId(1));
    assert_eq!(r.targets[1].weight, 0.0);
}

#[test]
fn key_injection_defaults_to_the_filter() {
    let c = ok(r#"{"models":[{"name":"a","version":"1.0.0","weight":1}]}"#);
    assert_eq!(c.key_injection, KeyInjection::Filter);
    // An `upstream` object without the field keeps the default too.
    let c = ok(
        r#"{"models":[{"name":"a","version":"1.0.0","weight":1}],"upstream":{"cluster":"mock"}}"#,
    );
    assert_eq!(c.key_injection, KeyInjection::Filter);
}

#[test]
fn key_injection_parses_filter_and_upstream() {
    for (value, want) in [
        ("filter", KeyInjection::Filter),
        ("upstream", KeyInjection::Upstream),
    ] {
        let c = ok(&format!(
            r#"{{"models":[{{"name":"a","version":"1.0.0","weight":1}}],"upstream":{{"key_injection":"{value}"}}}}"#
        ));
        assert_eq!(c.key_injection, want, "{value}");
        // The rest of `upstream` is unaffected (api_key_env keeps its default, unused upstream).
        assert_eq!(c.api_key_env, "HOLYSHEEP_API_KEY");
    }
}

#[test]
fn key_injection_rejects_other_values_naming_the_field() {
    for bad in [
        r#""Upstream""#,
        r#""credential_injector""#,
        r#""""#,
        "true",
        "null",
        "1",
    ] {
        let e = errors_of(&format!(
            r#"{{"models":[{{"name":"a","version":"1.0.0","weight":1}}],"upstream":{{"key_injection":{bad}}}}}"#
        ));
        assert_eq!(e.len(), 1, "{bad}: {e:?}");
        assert!(e[0].starts_with("upstream.key_injection:"), "{bad}: {e:?}");
    }
    let e = errors_of(
        r#"{"models":[{"name":"a","version":"1.0.0","weight":1}],"upstream":{"key_injection":"router"}}"#,
    );
    assert!(
        e[0].starts_with(
            "upstream.key_injection: unknown variant `router`, expected `filter` or `upstream`"
        ),
        "{e:?}"
    );
}

#[test]
fn an_unknown_member_is_typed_with_its_place_in_every_schema_struct() {
    use schema::PathSegment::{Index, Key};
    let model = r#"{"name":"a","version":"1.0.0","weight":1}"#;
    let cases: Vec<(String, Vec<schema::PathSegment>)> = vec![
        (format!(r#"{{"models":[{model}],"bogus":1}}"#), vec![]),
        (
            r#"{"models":[{"name":"a","version":"1.0.0","bogus":1}]}"#.into(),
            vec![Key("models".into()), Index(0)],
        ),
        (
            format!(r#"{{"models":[{model}],"routes":[{{"name":"r","bogus":1,"targets":[]}}]}}"#),
            vec![Key("routes".into()), Index(0)],
        ),
        (
            format!(
                r#"{{"models":[{model}],"routes":[{{"name":"r","targets":[{{"model":"a","weight":1,"bogus":1}}]}}]}}"#
            ),
            vec![
                Key("routes".into()),
                Index(0),
                Key("targets".into()),
                Index(0),
            ],
        ),
        (
            format!(r#"{{"models":[{model}],"failover":{{"bogus":1}}}}"#),
            vec![Key("failover".into())],
        ),
        (
            format!(r#"{{"models":[{model}],"upstream":{{"bogus":1}}}}"#),
            vec![Key("upstream".into())],
        ),
        (
            format!(r#"{{"models":[{model}],"sticky":{{"header":"x","bogus":1}}}}"#),
            vec![Key("sticky".into())],
        ),
        (
            format!(r#"{{"models":[{model}],"prices":{{"a.b":{{"input":1,"bogus":1}}}}}}"#),
            vec![Key("prices".into()), Key("a.b".into())],
        ),
    ];
    for (json, parent) in cases {
        let errs = match parse(json.as_bytes()) {
            Ok(_) => panic!("accepted {json}"),
            Err(e) => e.0,
        };
        assert_eq!(errs.len(), 1, "{json}");
        let unknown = errs[0].unknown_field();
        assert_eq!(
            unknown,
            Some(&UnknownField {
                parent: parent.clone(),
                name: "bogus".into()
            }),
            "{json}: {}",
            errs[0]
        );
        assert!(
            errs[0].message.starts_with("unknown field `bogus`"),
            "{}",
            errs[0]
        );
        // The field list is the derive's own: serde's message names exactly those fields.
        let known = schema::fields_at(&parent).unwrap_or_default();
        assert!(!known.is_empty(), "{json}");
        for f in known {
            assert!(errs[0].message.contains(&format!("`{f}`")), "{}", errs[0]);
        }
        let quoted = errs[0].message.matches('`').count() / 2;
        assert_eq!(quoted, known.len() + 1, "{}", errs[0]);
    }
}

#[test]
fn other_errors_are_not_unknown_fields() {
    for json in [
        r#"{"models":[{"name":"a","version":1}]}"#,
        r#"{"models":[{"name":"a"}]}"#,
        r#"{"models":[],"prices":{"a":1}}"#,
        r#"{"models":[],"unknown_models":"maybe"}"#,
        r#"{"models":[{"name":"a","version":"x"}]}"#,
        r#"{"models":[{"name":"a","#,
        "[]",
        "",
    ] {
        let errs = match parse(json.as_bytes()) {
            Ok(_) => panic!("accepted {json}"),
            Err(e) => e.0,
        };
        assert!(
            errs.iter().all(|e| e.unknown_field().is_none()),
            "{json}: {errs:?}"
        );
    }
}

#[test]
fn resolves_target_references_by_the_compiler_rules() {
    let c = ok(FULL_EXAMPLE);
    assert_eq!(c.resolve_target("deepseek-v3.2", None), Ok(ModelId(1)));
    assert_eq!(
        c.resolve_target("claude-sonnet-4.5", Some("1.5.0-rc.1")),
        Ok(ModelId(2))
    );
    assert_eq!(
        c.resolve_target("claude-sonnet-4.5", Some("1.4.0+build.7")),
        Ok(ModelId(0))
    );
    let err = |name, version| match c.resolve_target(name, version) {
        Ok(m) => panic!("{name} resolved to {m}"),
        Err(e) => (e.field, e.message),
    };
    assert_eq!(
        err("claude-sonnet-4.5", None),
        (
            "version",
            "required: claude-sonnet-4.5 has 2 configured versions (1.4.0, 1.5.0-rc.1)".into()
        )
    );
    assert_eq!(
        err("gpt-4.1", None),
        ("model", "\"gpt-4.1\" is not a configured model".into())
    );
    assert_eq!(err("deepseek-v3.2", Some("2")).0, "version");
    assert_eq!(
        err("deepseek-v3.2", Some("2.0.0")),
        (
            "version",
            "deepseek-v3.2@2.0.0 is not configured (configured versions: 2.0.0-canary.1)".into()
        )
    );
}

#[test]
fn ids_cover_the_models_and_routes_and_nothing_else() {
    let c = ok(
        r#"{"models":[{"name":"a","version":"1.0.0","weight":1},{"name":"b","version":"1.0.0"}],
                   "routes":[{"name":"r","targets":[{"model":"b","weight":1}]}]}"#,
    );
    let models: Vec<ModelId> = c.model_ids().collect();
    assert_eq!(models, vec![ModelId(0), ModelId(1)]);
    assert_eq!(c.model(models[1]).name, "b");
    assert_eq!(c.model_id(1), Some(models[1]));
    assert_eq!(c.model_id(2), None);
    assert_eq!(models[1].index(), 1);
    assert_eq!(models[1].to_string(), "models[1]");
    // The user route, then the implicit route of models[].weight.
    let routes: Vec<RouteId> = c.route_ids().collect();
    assert_eq!(routes.len(), 2);
    assert_eq!(c.route(routes[0]).name, "r");
    assert_eq!(c.route(routes[1]).name, route_labels::IMPLICIT);
    assert_eq!(c.default_route, Some(routes[1]));
    assert_eq!(c.route_id(2), None);
    assert_eq!(routes[0].to_string(), "routes[0]");
    // Every id the compiler hands out is one of these.
    for route in &c.routes {
        for t in &route.targets {
            assert!(models.contains(&t.model));
        }
    }
}

// === fallback between models, attempts and stream timeouts ===

/// The example of docs/failover.md#fallback.
const FALLBACK_EXAMPLE: &str = r#"{
  "models": [
    {"name": "claude-sonnet-4.5", "version": "1.4.0", "weight": 100, "timeout_ms": 60000,
     "fallback": ["gpt-4.1", "deepseek-v3.2@2.0.0"]},
    {"name": "gpt-4.1", "version": "1.0.0"},
    {"name": "deepseek-v3.2", "version": "2.0.0"}
  ],
  "upstream": {"cluster": "holysheep"},
  "timeout_ms": 30000,
  "stream_idle_timeout_ms": 60000,
  "max_duration_ms": 0,
  "fallback_on": ["5xx", "429", "timeout", "reset", "connect_failure"],
  "max_attempts": 3
}"#;

/// `models` (JSON items) with the rest of a minimal valid configuration.
fn with_models(models: &str, rest: &str) -> String {
    format!(r#"{{"unknown_models":"reject","models":[{models}]{rest}}}"#)
}

#[test]
fn accepts_the_fallback_example_of_the_docs() {
    let c = ok(FALLBACK_EXAMPLE);
    assert_eq!(c.models[0].fallback, vec![ModelId(1), ModelId(2)]);
    assert!(c.models[1].fallback.is_empty());
    assert_eq!(c.models[0].timeout_header, "60000");
    assert_eq!(c.timeout_header(), "30000");
    assert_eq!(c.stream_idle_timeout_ms, 60_000);
    assert_eq!(c.max_duration_ms, 0);
    assert_eq!(c.max_duration_header(), "0");
    assert_eq!(c.fallback_on, Causes::ALL);
    assert_eq!(c.max_attempts, 3);
    assert_eq!(c.max_retries_header(), "2");
}

#[test]
fn the_new_fields_have_their_defaults() {
    let c = ok(r#"{"models":[{"name":"a","version":"1.0.0","weight":1}]}"#);
    assert_eq!(c.stream_idle_timeout_ms, defaults::STREAM_IDLE_TIMEOUT_MS);
    assert_eq!(c.stream_idle_timeout_ms, 60_000);
    assert_eq!(c.max_duration_ms, 0);
    assert_eq!(c.max_duration_header(), "0");
    assert_eq!(c.fallback_on, defaults::FALLBACK_ON);
    assert_eq!(c.fallback_on, Causes::ALL);
    assert_eq!(c.max_attempts, defaults::MAX_ATTEMPTS);
    assert_eq!(c.max_attempts, 3);
    assert!(c.models[0].fallback.is_empty());
    // An empty list is no fallback, as no list is.
    let c = ok(r#"{"models":[{"name":"a","version":"1.0.0","weight":1,"fallback":[]}]}"#);
    assert!(c.models[0].fallback.is_empty());
}

#[test]
fn the_new_fields_are_set_and_formatted_once() {
    let c = ok(&with_models(
        r#"{"name":"a","version":"1.0.0"}"#,
        r#","stream_idle_timeout_ms":1,"max_duration_ms":86400000,"max_attempts":5,"fallback_on":["timeout","5xx"]"#,
    ));
    assert_eq!(c.stream_idle_timeout_ms, 1);
    assert_eq!(c.max_duration_ms, 86_400_000);
    assert_eq!(c.max_duration_header(), "86400000");
    assert_eq!(c.max_attempts, 5);
    assert_eq!(
        c.fallback_on.iter().collect::<Vec<_>>(),
        vec![ErrorType::Http5xx, ErrorType::Timeout]
    );
    let c = ok(&with_models(
        r#"{"name":"a","version":"1.0.0"}"#,
        r#","max_duration_ms":1,"max_attempts":1,"fallback_on":[]"#,
    ));
    assert_eq!(c.max_duration_header(), "1");
    assert_eq!(c.max_attempts, 1);
    assert_eq!(c.fallback_on, Causes::NONE);
    assert!(c.fallback_on.is_empty());
}

#[test]
fn a_fallback_name_selects_its_highest_release_and_a_version_selects_exactly() {
    let c = ok(&with_models(
        r#"{"name":"main","version":"1.0.0","fallback":["b","b@1.0.0","b@2.0.0-rc.1","c@0.1.0-canary.1"]},
           {"name":"b","version":"1.0.0"},
           {"name":"b","version":"1.10.0"},
           {"name":"b","version":"2.0.0-rc.1"},
           {"name":"c","version":"0.1.0-canary.1"}"#,
        "",
    ));
    assert_eq!(
        c.models[0].fallback,
        vec![ModelId(2), ModelId(1), ModelId(3), ModelId(4)]
    );
    // The public resolver is the compiler's.
    assert_eq!(c.resolve_reference("b"), Ok(ModelId(2)));
    assert_eq!(c.resolve_reference("b@1.0.0+build.5"), Ok(ModelId(1)));
    assert_eq!(c.resolve_reference("b@2.0.0-rc.1"), Ok(ModelId(3)));
    // A client asking for "b" gets the same model.
    assert_eq!(c.lookup("b"), Some(Named::Model(ModelId(2))));
}

#[test]
fn a_fallback_may_name_a_model_configured_after_it() {
    let c = ok(&with_models(
        r#"{"name":"a","version":"1.0.0","fallback":["b"]},
           {"name":"b","version":"1.0.0","fallback":["a"]}"#,
        "",
    ));
    assert_eq!(c.models[0].fallback, vec![ModelId(1)]);
    assert_eq!(c.models[1].fallback, vec![ModelId(0)]);
}

#[test]
fn a_fallback_must_name_a_configured_model() {
    let e = errors_of(&with_models(
        r#"{"name":"a","version":"1.0.0","fallback":["nope","b@9.9.9","b@1.0","canary"]},
           {"name":"b","version":"1.0.0"},
           {"name":"canary","version":"0.1.0-canary.1"}"#,
        "",
    ));
    assert_eq!(
        e,
        vec![
            r#"models[0].fallback[0]: "nope" is not a configured model"#,
            "models[0].fallback[1]: b@9.9.9 is not configured (configured versions: 1.0.0)",
            r#"models[0].fallback[2]: "1.0" is not SemVer: unexpected end of input while parsing minor version number"#,
            r#"models[0].fallback[3]: "canary" has only pre-release versions (0.1.0-canary.1), which a name alone never selects: name the version ("canary@0.1.0-canary.1")"#,
        ]
    );
    let e = errors_of(&with_models(
        r#"{"name":"a","version":"1.0.0","fallback":["c"]},
           {"name":"c","version":"1.0.0-rc.1"},{"name":"c","version":"1.0.0-rc.2"}"#,
        "",
    ));
    assert_eq!(
        e,
        vec![
            r#"models[0].fallback[0]: "c" has only pre-release versions (1.0.0-rc.1, 1.0.0-rc.2), which a name alone never selects: name the version ("c@VERSION")"#
        ]
    );
}

#[test]
fn a_model_never_falls_back_to_itself() {
    let e = errors_of(&with_models(
        r#"{"name":"a","version":"1.0.0","fallback":["a"]},
           {"name":"a","version":"0.9.0","fallback":["a@0.9.0+build.1"]}"#,
        "",
    ));
    assert_eq!(
        e,
        vec![
            r#"models[0].fallback[0]: "a" is a@1.0.0, the model itself: a model can't fall back to itself"#,
            r#"models[1].fallback[0]: "a@0.9.0+build.1" is a@0.9.0, the model itself: a model can't fall back to itself"#,
        ]
    );
    // The other version of the same name is another model.
    let c = ok(&with_models(
        r#"{"name":"a","version":"1.0.0","fallback":["a@0.9.0"]},{"name":"a","version":"0.9.0"}"#,
        "",
    ));
    assert_eq!(c.models[0].fallback, vec![ModelId(1)]);
}

#[test]
fn a_fallback_is_listed_once_after_resolution() {
    let e = errors_of(&with_models(
        r#"{"name":"a","version":"1.0.0","fallback":["b","b@1.1.0","b"]},
           {"name":"b","version":"1.0.0"},{"name":"b","version":"1.1.0"}"#,
        "",
    ));
    assert_eq!(
        e,
        vec![
            r#"models[0].fallback[1]: "b@1.1.0" is b@1.1.0, already listed (fallback[0])"#,
            r#"models[0].fallback[2]: "b" is b@1.1.0, already listed (fallback[0])"#,
        ]
    );
}

#[test]
fn a_fallback_lists_at_most_four_models() {
    let models = r#"{"name":"b","version":"1.0.0"},{"name":"c","version":"1.0.0"},
        {"name":"d","version":"1.0.0"},{"name":"e","version":"1.0.0"},{"name":"f","version":"1.0.0"}"#;
    let c = ok(&with_models(
        &format!(r#"{{"name":"a","version":"1.0.0","fallback":["b","c","d","e"]}},{models}"#),
        "",
    ));
    assert_eq!(c.models[0].fallback.len(), 4);
    let e = errors_of(&with_models(
        &format!(r#"{{"name":"a","version":"1.0.0","fallback":["b","c","d","e","f"]}},{models}"#),
        "",
    ));
    assert_eq!(e, vec!["models[0].fallback: lists 5 models; at most 4"]);
}

#[test]
fn a_fallback_must_route_to_the_same_cluster() {
    let e = errors_of(&with_models(
        r#"{"name":"claude-sonnet-4.5","version":"1.4.0","fallback":["deepseek-v3.2","gpt-4.1"]},
           {"name":"deepseek-v3.2","version":"2.0.0","cluster":"holysheep"},
           {"name":"gpt-4.1","version":"1.0.0","cluster":"openai"}"#,
        r#","upstream":{"cluster":"holysheep"}"#,
    ));
    assert_eq!(
        e,
        vec![
            r#"models[0].fallback[1]: "gpt-4.1" routes to cluster "openai" but claude-sonnet-4.5@1.4.0 routes to "holysheep": Envoy picks the cluster once per request (cluster_header) and retries stay in it, so a fallback must be served by the same cluster (see docs/failover.md#fallback)"#
        ]
    );
    // The model's own cluster counts, not upstream.cluster.
    let e = errors_of(&with_models(
        r#"{"name":"a","version":"1.0.0","cluster":"openai","fallback":["b@1.0.0"]},
           {"name":"b","version":"1.0.0"}"#,
        "",
    ));
    assert_eq!(
        e,
        vec![
            r#"models[0].fallback[0]: "b@1.0.0" routes to cluster "holysheep" but a@1.0.0 routes to "openai": Envoy picks the cluster once per request (cluster_header) and retries stay in it, so a fallback must be served by the same cluster (see docs/failover.md#fallback)"#
        ]
    );
    ok(&with_models(
        r#"{"name":"a","version":"1.0.0","cluster":"openai","fallback":["b"]},
           {"name":"b","version":"1.0.0","cluster":"openai"}"#,
        "",
    ));
}

#[test]
fn fallback_on_takes_exactly_the_five_causes() {
    let e = errors_of(&with_models(
        r#"{"name":"a","version":"1.0.0"}"#,
        r#","fallback_on":["5xx","503","5XX","timeout","429","timeout","gateway_error"]"#,
    ));
    assert_eq!(
        e,
        vec![
            r#"fallback_on[1]: "503" is not a cause; the causes are 5xx, 429, timeout, reset, connect_failure"#,
            r#"fallback_on[2]: "5XX" is not a cause; the causes are 5xx, 429, timeout, reset, connect_failure"#,
            r#"fallback_on[5]: "timeout" is listed twice"#,
            r#"fallback_on[6]: "gateway_error" is not a cause; the causes are 5xx, 429, timeout, reset, connect_failure"#,
        ]
    );
    let e = errors_of(&with_models(
        r#"{"name":"a","version":"1.0.0"}"#,
        r#","fallback_on":["400","401","403","404","413","422","4xx"]"#,
    ));
    assert_eq!(e.len(), 7, "{e:?}");
    for (i, code) in ["400", "401", "403", "404", "413", "422", "4xx"]
        .iter()
        .enumerate()
    {
        assert_eq!(
            e[i],
            format!(
                r#"fallback_on[{i}]: "{code}" is a client error: client errors never fall back (the next model would get the same request); the causes are 5xx, 429, timeout, reset, connect_failure"#
            )
        );
    }
    assert!(errors_of(&with_models(
        r#"{"name":"a","version":"1.0.0"}"#,
        r#","fallback_on":"5xx""#
    ))[0]
        .starts_with("fallback_on: wrong type"));
    let e = errors_of(&with_models(
        r#"{"name":"a","version":"1.0.0"}"#,
        r#","fallback_on":[true]"#,
    ));
    assert!(
        e[0].starts_with(
            "fallback_on[0]: wrong type: boolean `true`, expected a cause (5xx, 429, timeout, reset, connect_failure)"
        ),
        "{e:?}"
    );
}

#[test]
fn fallback_on_takes_status_codes_written_as_numbers() {
    // YAML reads `[5xx, 429]` as a string and a number (and Istio passes the number on).
    let c = ok(&with_models(
        r#"{"name":"a","version":"1.0.0"}"#,
        r#","fallback_on":["5xx",429]"#,
    ));
    assert_eq!(
        c.fallback_on,
        Causes::NONE
            .with(ErrorType::Http5xx)
            .with(ErrorType::Http429)
    );
    let e = errors_of(&with_models(
        r#"{"name":"a","version":"1.0.0"}"#,
        r#","fallback_on":[404,500,-1,"429",429]"#,
    ));
    assert_eq!(
        e,
        vec![
            r#"fallback_on[0]: "404" is a client error: client errors never fall back (the next model would get the same request); the causes are 5xx, 429, timeout, reset, connect_failure"#,
            r#"fallback_on[1]: "500" is not a cause; the causes are 5xx, 429, timeout, reset, connect_failure"#,
            r#"fallback_on[2]: "-1" is not a cause; the causes are 5xx, 429, timeout, reset, connect_failure"#,
            r#"fallback_on[4]: "429" is listed twice"#,
        ]
    );
}

#[test]
fn causes_map_error_types_to_their_configuration_names() {
    assert_eq!(CAUSES.len(), 5);
    assert_eq!(
        CAUSES.iter().map(|&(_, n)| n).collect::<Vec<_>>(),
        ["5xx", "429", "timeout", "reset", "connect_failure"]
    );
    for &(cause, name) in &CAUSES {
        assert_eq!(Causes::name(cause), Some(name));
        assert_eq!(Causes::parse(name), Some(cause));
        assert!(Causes::ALL.contains(cause));
        assert!(!Causes::NONE.contains(cause));
        let one = Causes::NONE.with(cause);
        assert_eq!(one.iter().collect::<Vec<_>>(), vec![cause]);
        assert_eq!(one.to_string(), name);
    }
    assert_eq!(Causes::ALL.iter().count(), 5);
    assert_eq!(Causes::parse("4xx"), None);
    assert_eq!(
        Causes::ALL.to_string(),
        "5xx, 429, timeout, reset, connect_failure"
    );
    assert_eq!(Causes::NONE.to_string(), "(none)");
    assert_eq!(Causes::default(), Causes::NONE);
    let c = ok(&with_models(
        r#"{"name":"a","version":"1.0.0"}"#,
        r#","fallback_on":["connect_failure","429"]"#,
    ));
    assert!(c.fallback_on.contains(ErrorType::Http429));
    assert!(c.fallback_on.contains(ErrorType::ConnectFailure));
    assert!(!c.fallback_on.contains(ErrorType::Http5xx));
    assert!(!c.fallback_on.contains(ErrorType::Timeout));
    assert!(!c.fallback_on.contains(ErrorType::Reset));
}

#[test]
fn max_attempts_is_one_to_five() {
    for bad in [0, 6, 1000] {
        let e = errors_of(&with_models(
            r#"{"name":"a","version":"1.0.0"}"#,
            &format!(r#","max_attempts":{bad}"#),
        ));
        assert_eq!(
            e,
            vec![format!(
                "max_attempts: {bad} is out of range: 1 to 5 (every attempt of one request together: endpoint retries and fallback models)"
            )]
        );
    }
    let e = errors_of(&with_models(
        r#"{"name":"a","version":"1.0.0"}"#,
        r#","max_attempts":-1"#,
    ));
    assert!(e[0].starts_with("max_attempts: "), "{e:?}");
    assert!(errors_of(&with_models(
        r#"{"name":"a","version":"1.0.0"}"#,
        r#","max_attempts":2.5"#
    ))[0]
        .starts_with("max_attempts: wrong type"));
}

#[test]
fn stream_idle_timeout_and_max_duration_are_bounded() {
    let e = errors_of(&with_models(
        r#"{"name":"a","version":"1.0.0"}"#,
        r#","stream_idle_timeout_ms":0,"max_duration_ms":86400001"#,
    ));
    assert_eq!(
        e,
        vec![
            "stream_idle_timeout_ms: 0 is out of range: 1 to 86400000 milliseconds",
            "max_duration_ms: 86400001 is out of range: 0 (no cap) or 1 to 86400000 milliseconds",
        ]
    );
    let e = errors_of(&with_models(
        r#"{"name":"a","version":"1.0.0"}"#,
        r#","stream_idle_timeout_ms":86400001"#,
    ));
    assert_eq!(
        e,
        vec!["stream_idle_timeout_ms: 86400001 is out of range: 1 to 86400000 milliseconds"]
    );
    // timeout_ms keeps its checks, global and per model.
    let e = errors_of(&with_models(
        r#"{"name":"a","version":"1.0.0","timeout_ms":0}"#,
        r#","timeout_ms":86400001"#,
    ));
    assert_eq!(
        e,
        vec![
            "timeout_ms: 86400001 is out of range: 1 to 86400000 milliseconds",
            "models[0].timeout_ms: 0 is out of range: 1 to 86400000 milliseconds",
        ]
    );
}

#[test]
fn every_fallback_error_is_reported_at_once_with_the_others() {
    let e = errors_of(
        r#"{"models":[
              {"name":"a","version":"1.0.0","weight":1,"fallback":["zzz","a","b"]},
              {"name":"b","version":"1.0.0","cluster":"other","temperature":9}],
            "fallback_on":["404"],"max_attempts":9,"stream_idle_timeout_ms":0,
            "routes":[{"name":"r","targets":[{"model":"nope","weight":1}]}]}"#,
    );
    let joined = e.join("\n");
    for needle in [
        "stream_idle_timeout_ms: 0 is out of range",
        "fallback_on[0]: \"404\" is a client error",
        "max_attempts: 9 is out of range",
        "models[1].temperature: 9 is out of range",
        "models[0].fallback[0]: \"zzz\" is not a configured model",
        "models[0].fallback[1]: \"a\" is a@1.0.0, the model itself",
        "models[0].fallback[2]: \"b\" routes to cluster \"other\"",
        "routes[0].targets[0].model: \"nope\" is not a configured model",
    ] {
        assert!(joined.contains(needle), "missing {needle:?} in\n{joined}");
    }
    assert_eq!(e.len(), 8, "{joined}");
}

#[test]
fn the_schema_knows_the_new_fields() {
    let top = schema::fields_of::<schema::GatewayConfig>();
    for f in [
        "timeout_ms",
        "stream_idle_timeout_ms",
        "max_duration_ms",
        "fallback_on",
        "max_attempts",
    ] {
        assert!(top.contains(&f), "{f}: {top:?}");
    }
    assert!(schema::fields_of::<schema::ModelConfig>().contains(&"fallback"));
    let e =
        errors_of(r#"{"models":[{"name":"a","version":"1.0.0","weight":1,"fallbacks":["b"]}]}"#);
    assert!(
        e[0].starts_with("models[0].fallbacks: unknown field `fallbacks`, expected one of"),
        "{e:?}"
    );
    assert!(e[0].contains("`fallback`"), "{e:?}");
    let e = errors_of(r#"{"models":[{"name":"a","version":"1.0.0","weight":1}],"max_attempt":2}"#);
    assert!(e[0].contains("`max_attempts`"), "{e:?}");
    assert!(e[0].contains("`stream_idle_timeout_ms`"), "{e:?}");
}
