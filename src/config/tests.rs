use super::*;
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

const SPEC_EXAMPLE: &str = r#"{
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
fn accepts_the_spec_example_and_resolves_names_to_indices() {
    let c = ok(SPEC_EXAMPLE);
    assert_eq!(c.models.len(), 3);
    assert_eq!(c.lookup("chat"), Some(Named::Route(0)));
    assert_eq!(c.default_route, Some(0));
    let chat = &c.routes[0];
    assert_eq!(chat.total_weight, 100.0);
    assert_eq!(
        chat.targets.iter().map(|t| t.model).collect::<Vec<_>>(),
        vec![0, 2, 1]
    );
    assert_eq!(c.models[0].timeout_header, "60000");
    assert_eq!(c.models[1].timeout_ms, 30_000);
    assert_eq!(c.models[1].cluster, "holysheep");
    assert_eq!(c.sticky_header.as_deref(), Some("x-user-id"));
    assert_eq!(c.endpoint("/v1/chat/completions"), Some(EndpointKind::Chat));
    assert_eq!(c.endpoint("/v1/responses"), Some(EndpointKind::Responses));
    assert_eq!(c.endpoint("/v1/files"), None);
}

#[test]
fn a_model_name_selects_its_highest_release_and_skips_pre_releases() {
    let c = ok(r#"{"models":[
        {"name":"m","version":"1.2.0","weight":1},
        {"name":"m","version":"1.10.0"},
        {"name":"m","version":"2.0.0-rc.1"},
        {"name":"canary-only","version":"0.1.0-canary.1"}]}"#);
    assert_eq!(c.lookup("m"), Some(Named::Model(1)));
    assert_eq!(c.lookup("canary-only"), None);
    assert_eq!(c.lookup("nope"), None);
}

#[test]
fn fills_defaults_when_optional_fields_are_absent() {
    let c = ok(r#"{"models":[{"name":"gpt-4.1","version":"1.0.0","weight":1}]}"#);
    assert_eq!(c.timeout_ms, 30_000);
    assert_eq!(c.cluster, "holysheep");
    assert_eq!(c.api_key_env, "HOLYSHEEP_API_KEY");
    assert_eq!(c.unknown_models, UnknownModels::Route);
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
    assert_eq!(c.routes[d].name, route_labels::IMPLICIT);
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
    let c = ok(SPEC_EXAMPLE);
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
    assert_eq!(r.targets[0].model, 1);
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
