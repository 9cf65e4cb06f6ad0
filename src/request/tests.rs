//! The request's decisions: the header policy, the route (pick, body edit, upstream headers)
//! and the verdict on a finished request.

use super::*;
use crate::breaker::Breakers;
use crate::config::parse;
use crate::errors::GatewayError;
use crate::header_map::{serialize, HeaderMap};
use crate::metrics::ErrorType;
use crate::store::MemoryStore;
use crate::testing::test;
use std::borrow::Cow;
use std::rc::Rc;

const CONFIG: &str = r#"{
    "models":[
        {"name":"stable","version":"1.0.0","max_tokens":100,"timeout_ms":5000},
        {"name":"canary","version":"2.0.0-rc.1","cluster":"other"}],
    "routes":[{"name":"chat","targets":[{"model":"stable","weight":90},{"model":"canary","weight":10}]}],
    "default_route":"chat",
    "sticky":{"header":"x-user-id"},
    "failover":{"min_requests":2,"window_s":10,"cooldown_s":30}}"#;

fn id(i: usize) -> crate::config::ModelId {
    parse(CONFIG.as_bytes()).unwrap().model_id(i).unwrap()
}

fn cfg(json: &str) -> Config {
    parse(json.as_bytes()).unwrap()
}

fn plan(cfg: &Config, headers: &[(&str, &[u8])], end_of_stream: bool) -> HeadersPlan {
    let raw = serialize(headers);
    let map = HeaderMap::parse(&raw).unwrap();
    let paths = vec!["/v1/models".to_owned()];
    let gw = Gateway {
        cfg,
        models_paths: &paths,
        key_ready: true,
    };
    on_headers(&gw, Some(&map), end_of_stream)
}

fn post(path: &'static str) -> Vec<(&'static str, &'static [u8])> {
    vec![(":method", b"POST"), (":path", path.as_bytes())]
}

#[test]
fn only_the_control_headers_the_client_sent_are_removed_and_an_unreadable_map_removes_all() {
    let c = cfg(CONFIG);
    let mut h = post("/v1/chat/completions");
    h.push(("x-ai-gateway-cluster", b"evil"));
    h.push(("x-envoy-max-retries", b"9"));
    h.push(("x-envoy-retry-on", b"5xx"));
    // Held: the headers the body phase sets anyway are replaced then, not removed now.
    let p = plan(&c, &h, false);
    assert_eq!(p.remove, vec!["x-envoy-retry-on"]);
    assert!(matches!(p.decision, Decision::Hold(_)));
    for name in SET_FOR_EVERY_ROUTED_REQUEST {
        assert!(CLIENT_CONTROL_HEADERS.contains(&name));
    }
    // Passed through (or answered): every one the client sent goes now.
    h[0] = (":method", b"GET");
    let p = plan(&c, &h, true);
    assert_eq!(p.decision, Decision::PassThrough);
    assert_eq!(
        p.remove,
        vec![
            "x-ai-gateway-cluster",
            "x-envoy-max-retries",
            "x-envoy-retry-on"
        ]
    );

    let paths: Vec<String> = Vec::new();
    let gw = Gateway {
        cfg: &c,
        models_paths: &paths,
        key_ready: true,
    };
    let blind = on_headers(&gw, None, false);
    assert_eq!(blind.remove, CLIENT_CONTROL_HEADERS.to_vec());
    // Nothing is known of the request: it passes through to the default cluster.
    assert_eq!(blind.decision, Decision::PassThrough);
}

#[test]
fn the_header_phase_decides_models_list_passthrough_answers_and_holds() {
    let c = cfg(CONFIG);
    let get_models: Vec<(&str, &[u8])> = vec![(":method", b"GET"), (":path", b"/v1/models?x=1")];
    assert_eq!(plan(&c, &get_models, true).decision, Decision::ServeModels);
    let get_chat: Vec<(&str, &[u8])> =
        vec![(":method", b"GET"), (":path", b"/v1/chat/completions")];
    assert_eq!(plan(&c, &get_chat, true).decision, Decision::PassThrough);
    assert_eq!(
        plan(&c, &post("/healthz"), false).decision,
        Decision::PassThrough
    );

    let mut gz = post("/v1/chat/completions");
    gz.push(("content-encoding", b"gzip"));
    let Decision::Answer(GatewayError::InvalidRequest(m)) = plan(&c, &gz, false).decision else {
        panic!("a compressed body is refused");
    };
    assert!(m.contains("content-encoding: gzip"), "{m}");

    let empty = plan(&c, &post("/v1/chat/completions"), true).decision;
    assert!(
        matches!(empty, Decision::Answer(GatewayError::InvalidRequest(m)) if m.contains("empty"))
    );

    let mut h = post("/v1/embeddings?api-version=1");
    h.push(("x-user-id", b"u-42"));
    h.push(("authorization", b"Bearer client"));
    h.push(("accept-encoding", b"gzip"));
    assert_eq!(
        plan(&c, &h, false).decision,
        Decision::Hold(Held {
            endpoint: Endpoint::Embeddings,
            sticky_key: Some(b"u-42".to_vec()),
            client_authorization: true,
            remove_accept_encoding: true,
        })
    );
    let mut blank_user = post("/v1/chat/completions");
    blank_user.push(("x-user-id", b""));
    assert_eq!(
        plan(&c, &blank_user, false).decision,
        Decision::Hold(Held {
            endpoint: Endpoint::Chat,
            sticky_key: None,
            client_authorization: false,
            remove_accept_encoding: false,
        })
    );
}

#[test]
fn an_api_request_without_a_usable_key_is_answered_500() {
    let c = cfg(CONFIG);
    let raw = serialize(&post("/v1/chat/completions"));
    let map = HeaderMap::parse(&raw).unwrap();
    let gw = Gateway {
        cfg: &c,
        models_paths: &[],
        key_ready: false,
    };
    assert_eq!(
        on_headers(&gw, Some(&map), false).decision,
        Decision::Answer(GatewayError::Misconfigured)
    );
}

fn input(endpoint: Endpoint, roll: u64) -> RouteInput<'static> {
    RouteInput {
        endpoint,
        sticky_key: None,
        roll,
        nonce: 7,
        now_ms: 1_700_000_000_000,
        authorization: Some(b"Bearer sk-test"),
        client_authorization: false,
    }
}

fn breakers(c: &Config) -> Breakers<Rc<MemoryStore>> {
    Breakers::new(c, MemoryStore::new())
}

fn set(name: &'static str, value: &str) -> HeaderEdit<'static> {
    HeaderEdit::Set(name, Cow::Owned(value.as_bytes().to_vec()))
}

#[test]
fn a_direct_request_is_rewritten_with_its_model_settings_and_routed_to_its_cluster() {
    let c = cfg(CONFIG);
    let body = br#"{"model":"stable","max_tokens":500,"messages":[]}"#;
    let routed = route(&c, &breakers(&c), body, &input(Endpoint::Chat, 0)).unwrap();
    let (replaced, prefix) = routed.splice.clone().unwrap();
    let mut new_body = prefix.clone();
    new_body.extend_from_slice(&body[replaced..]);
    assert_eq!(
        std::str::from_utf8(&new_body).unwrap(),
        r#"{"model":"stable","max_tokens":100,"messages":[]}"#
    );
    assert_eq!(
        routed.headers,
        vec![
            set("content-length", &new_body.len().to_string()),
            set("authorization", "Bearer sk-test"),
            set(CLUSTER_HEADER, "holysheep"),
            set(PER_TRY_TIMEOUT_HEADER, "5000"),
            set(TIMEOUT_HEADER, "0"),
            set(MAX_RETRIES_HEADER, "2"),
        ]
    );
    assert_eq!(routed.served.route, RouteLabel::Direct);
    assert_eq!(routed.served.model, ModelLabel::Model(id(0)));
    assert_eq!(routed.failover, None);
}

#[test]
fn with_the_key_injected_upstream_the_client_authorization_goes_and_the_marker_is_set() {
    let c = cfg(&CONFIG.replace(
        r#""default_route":"chat","#,
        r#""default_route":"chat","upstream":{"key_injection":"upstream"},"#,
    ));
    let body = br#"{"model":"canary"}"#;
    let mut i = input(Endpoint::Embeddings, 0);
    i.authorization = None;
    i.client_authorization = true;
    // "canary" has only a pre-release: the name goes to the default route, pick by roll 0.
    let routed = route(&c, &breakers(&c), body, &i).unwrap();
    let model = routed.served.model;
    let cluster = if model == ModelLabel::Model(id(1)) {
        "other"
    } else {
        "holysheep"
    };
    assert_eq!(
        routed.headers[1..],
        [
            HeaderEdit::Remove("authorization"),
            set(INJECT_KEY_HEADER, "1"),
            set(CLUSTER_HEADER, cluster),
            routed.headers[4].clone(),
            set(TIMEOUT_HEADER, "0"),
            set(MAX_RETRIES_HEADER, "2"),
        ]
    );
    i.client_authorization = false;
    let routed = route(&c, &breakers(&c), body, &i).unwrap();
    assert!(!routed
        .headers
        .contains(&HeaderEdit::Remove("authorization")));
}

#[test]
fn the_filter_mode_without_a_key_refuses_to_route() {
    let c = cfg(CONFIG);
    let mut i = input(Endpoint::Chat, 0);
    i.authorization = None;
    assert_eq!(
        route(&c, &breakers(&c), br#"{"model":"stable"}"#, &i),
        Err(GatewayError::Misconfigured)
    );
}

#[test]
fn unknown_models_follow_the_policy_and_passthrough_leaves_the_body_alone() {
    let reject = cfg(&CONFIG.replace(
        r#""default_route":"chat","#,
        r#""unknown_models":"reject","#,
    ));
    let long = "x".repeat(500);
    let body = format!(r#"{{"model":"{long}"}}"#);
    let Err(GatewayError::ModelNotFound(echo)) = route(
        &reject,
        &breakers(&reject),
        body.as_bytes(),
        &input(Endpoint::Chat, 0),
    ) else {
        panic!("rejected");
    };
    assert_eq!(echo, format!("{}…", "x".repeat(MAX_ECHO)));

    let pass = cfg(&CONFIG.replace(
        r#""default_route":"chat","#,
        r#""unknown_models":"passthrough","#,
    ));
    let routed = route(
        &pass,
        &breakers(&pass),
        br#"{"model":"zzz"}"#,
        &input(Endpoint::Chat, 0),
    )
    .unwrap();
    assert_eq!(routed.splice, None);
    assert_eq!(routed.served.route, RouteLabel::Passthrough);
    assert_eq!(routed.served.model, ModelLabel::Passthrough);
    assert_eq!(routed.headers[1], set(CLUSTER_HEADER, "holysheep"));
    assert_eq!(routed.headers[2], set(PER_TRY_TIMEOUT_HEADER, "30000"));
    assert_eq!(routed.headers[3], set(TIMEOUT_HEADER, "0"));
}

#[test]
fn an_open_circuit_moves_the_pick_and_reports_the_failover_then_503_when_all_are_open() {
    let c = cfg(CONFIG);
    let b = breakers(&c);
    let now = 1_700_000_000_000;
    let mut i = input(Endpoint::Chat, 0);
    i.now_ms = now;
    // Roll 0 picks the first target, "stable".
    let routed = route(&c, &b, br#"{"model":"chat"}"#, &i).unwrap();
    assert_eq!(routed.served.model, ModelLabel::Model(id(0)));
    for _ in 0..2 {
        b.record(id(0), Outcome::Failure, false, now);
    }
    let routed = route(&c, &b, br#"{"model":"chat"}"#, &i).unwrap();
    assert_eq!(routed.served.model, ModelLabel::Model(id(1)));
    assert_eq!(routed.failover, Some((id(0), id(1))));
    assert!(routed
        .headers
        .contains(&set(PER_TRY_TIMEOUT_HEADER, "30000")));
    // A request by name is honoured while its circuit is open.
    let direct = route(&c, &b, br#"{"model":"stable"}"#, &i).unwrap();
    assert_eq!(direct.served.model, ModelLabel::Model(id(0)));

    for _ in 0..2 {
        b.record(id(1), Outcome::Failure, false, now);
    }
    assert_eq!(
        route(&c, &b, br#"{"model":"chat"}"#, &i),
        Err(GatewayError::NoHealthyTarget {
            route: "chat".into(),
            retry_after_s: 30
        })
    );
    // After the cooldown one request is the probe.
    i.now_ms = now + 30_000;
    let probe = route(&c, &b, br#"{"model":"chat"}"#, &i).unwrap();
    assert!(probe.served.probe);
}

#[test]
fn the_sticky_key_picks_the_same_model_whatever_the_roll() {
    let c = cfg(CONFIG);
    let b = breakers(&c);
    let mut i = input(Endpoint::Chat, 0);
    i.sticky_key = Some(b"user-7");
    let first = route(&c, &b, br#"{"model":"chat"}"#, &i)
        .unwrap()
        .served
        .model;
    for roll in [1, u64::MAX / 2, u64::MAX] {
        i.roll = roll;
        assert_eq!(
            route(&c, &b, br#"{"model":"chat"}"#, &i)
                .unwrap()
                .served
                .model,
            first
        );
    }
}

#[test]
fn the_injected_usage_chunk_is_stripped_only_when_the_client_did_not_ask_for_it() {
    let c = cfg(CONFIG);
    let b = breakers(&c);
    let i = input(Endpoint::Chat, 0);
    let strip = |body: &str, endpoint| {
        let mut i = input(endpoint, 0);
        i.endpoint = endpoint;
        route(&c, &b, body.as_bytes(), &i)
            .unwrap()
            .served
            .strip_usage
    };
    assert!(strip(r#"{"model":"stable","stream":true}"#, Endpoint::Chat));
    assert!(strip(
        r#"{"model":"stable","stream":true}"#,
        Endpoint::Completions
    ));
    assert!(!strip(
        r#"{"model":"stable","stream":false}"#,
        Endpoint::Chat
    ));
    assert!(!strip(
        r#"{"model":"stable","stream":true}"#,
        Endpoint::Responses
    ));
    assert!(!strip(
        r#"{"model":"stable","stream":true,"stream_options":{"include_usage":true}}"#,
        Endpoint::Chat
    ));
    // stream_options that is not an object is left to the provider: no usage of ours to strip.
    assert!(!strip(
        r#"{"model":"stable","stream":true,"stream_options":"yes"}"#,
        Endpoint::Chat
    ));
    assert!(strip(
        r#"{"model":"stable","stream":true,"stream_options":{"include_usage":false}}"#,
        Endpoint::Chat
    ));
    let off = cfg(&CONFIG.replace(
        r#""default_route":"chat","#,
        r#""default_route":"chat","stream_usage":"off","#,
    ));
    let routed = route(
        &off,
        &breakers(&off),
        br#"{"model":"stable","stream":true}"#,
        &i,
    )
    .unwrap();
    assert!(!routed.served.strip_usage);
    assert!(routed.served.stream);
}

#[test]
fn a_body_that_is_not_a_json_object_is_an_invalid_request() {
    let c = cfg(CONFIG);
    for body in [&b"[1]"[..], b"{", b"{\"model\":1}", b"\xff"] {
        assert!(matches!(
            route(&c, &breakers(&c), body, &input(Endpoint::Chat, 0)),
            Err(GatewayError::InvalidRequest(_))
        ));
    }
}

#[test]
fn the_verdict_counts_model_failures_and_ignores_clients_that_went_away() {
    assert_eq!(Verdict::of(0, ""), Verdict::Ignore);
    assert_eq!(
        Verdict::of(200, "downstream_remote_disconnect"),
        Verdict::Ignore
    );
    assert_eq!(Verdict::of(200, ""), Verdict::Success);
    assert_eq!(Verdict::of(404, ""), Verdict::Success);
    assert_eq!(Verdict::of(429, ""), Verdict::Failure(ErrorType::Http429));
    assert_eq!(Verdict::of(503, ""), Verdict::Failure(ErrorType::Http5xx));
    assert_eq!(
        Verdict::of(200, "response_timeout"),
        Verdict::Failure(ErrorType::Timeout)
    );
    assert_eq!(
        Verdict::of(
            503,
            "upstream_reset_before_response_started{connection_failure}"
        ),
        Verdict::Failure(ErrorType::ConnectFailure)
    );
    assert_eq!(
        Verdict::Failure(ErrorType::Reset).outcome(),
        Some(Outcome::Failure)
    );
    assert_eq!(Verdict::Ignore.outcome(), None);
}

#[test]
fn envoy_details_are_read_only_where_they_can_change_the_verdict() {
    assert!(!needs_details(200, false));
    assert!(needs_details(200, true));
    assert!(needs_details(503, false));
    assert!(needs_details(0, false));
    assert!(needs_details(404, false));
}

const FALLBACKS: &str = r#"{
    "models":[
        {"name":"a","version":"1.0.0","weight":1,"max_tokens":10,"system_prompt":"I am A.",
         "timeout_ms":500,"fallback":["bee","c@1.0.0"]},
        {"name":"bee","version":"2.0.0","temperature":0.5,"timeout_ms":7000},
        {"name":"c","version":"1.0.0","timeout_ms":2000}],
    "max_attempts":4,
    "max_duration_ms":90000}"#;

fn fallback_config() -> Config {
    cfg(FALLBACKS)
}

#[test]
fn a_model_with_fallbacks_leaves_a_handoff_with_the_clients_original_prefix() {
    let c = fallback_config();
    let body = br#"{"model":"a","max_tokens":99,"messages":[{"role":"user","content":"hi"}]}"#;
    let routed = route(&c, &breakers(&c), body, &input(Endpoint::Chat, 0)).unwrap();
    let h = routed.handoff.clone().expect("a has fallbacks");
    assert_eq!(h.first, "a@1.0.0");
    assert_eq!(h.nonce, 7);
    assert_eq!(routed.served.nonce, Some(7));
    let (replaced, prefix) = routed.splice.clone().unwrap();
    assert_eq!(h.original_prefix, body[..replaced].to_vec());
    assert_eq!(h.sent_prefix_len, prefix.len());
    assert!(routed.headers.contains(&set(TIMEOUT_HEADER, "90000")));
    // Envoy reads the per-attempt timeout once per request: the plan's longest (bee's).
    assert!(routed
        .headers
        .contains(&set(PER_TRY_TIMEOUT_HEADER, "7000")));
    assert!(routed.headers.contains(&set(MAX_RETRIES_HEADER, "3")));
    // The fallback body rebuilt from the handoff is the rewrite of the client's body for bee.
    let mut sent = prefix;
    sent.extend_from_slice(&body[replaced..]);
    let plan = plan_for(&c, id_in(&c, 1));
    let r = crate::fallback::refit(&sent, &h, &plan).unwrap();
    let mut refit = r.prefix.clone();
    refit.extend_from_slice(&sent[r.drain..]);
    assert_eq!(
        std::str::from_utf8(&refit).unwrap(),
        r#"{"temperature":0.5,"model":"bee","max_tokens":99,"messages":[{"role":"user","content":"hi"}]}"#
    );
    // Models without fallbacks leave none, and keep their own timeout.
    let plain = route(
        &c,
        &breakers(&c),
        br#"{"model":"c"}"#,
        &input(Endpoint::Chat, 0),
    )
    .unwrap();
    assert_eq!(plain.handoff, None);
    assert_eq!(plain.served.nonce, None);
    assert!(plain.headers.contains(&set(PER_TRY_TIMEOUT_HEADER, "2000")));
}

fn id_in(c: &Config, i: usize) -> ModelId {
    c.model_id(i).unwrap()
}

#[test]
fn a_request_by_name_for_an_open_model_starts_at_its_first_healthy_fallback() {
    let c = fallback_config();
    let b = breakers(&c);
    let i = input(Endpoint::Chat, 0);
    let now = i.now_ms;
    let failures = c.breaker.min_requests.max(1);
    for _ in 0..failures {
        b.record(id_in(&c, 0), Outcome::Failure, false, now);
    }
    let routed = route(&c, &b, br#"{"model":"a"}"#, &i).unwrap();
    assert_eq!(routed.served.model, ModelLabel::Model(id_in(&c, 1)));
    assert_eq!(routed.served.route, RouteLabel::Direct);
    for _ in 0..failures {
        b.record(id_in(&c, 1), Outcome::Failure, false, now);
    }
    let routed = route(&c, &b, br#"{"model":"a"}"#, &i).unwrap();
    assert_eq!(routed.served.model, ModelLabel::Model(id_in(&c, 2)));
    for _ in 0..failures {
        b.record(id_in(&c, 2), Outcome::Failure, false, now);
    }
    assert!(matches!(
        route(&c, &b, br#"{"model":"a"}"#, &i),
        Err(GatewayError::NoHealthyTarget { .. })
    ));
}

/// The header phase leaves these to the body phase (it doesn't remove the client's values):
/// every routed request must then set them, whatever it resolved to.
#[test]
fn every_routed_request_sets_the_control_headers_the_header_phase_left() {
    let c = cfg(CONFIG);
    let passthrough = cfg(&CONFIG.replace(
        r#""default_route":"chat","#,
        r#""unknown_models":"passthrough","#,
    ));
    for (c, body) in [
        (&c, &br#"{"model":"stable"}"#[..]),
        (&c, br#"{"model":"chat"}"#),
        (&passthrough, br#"{"model":"something-else"}"#),
    ] {
        let routed = route(c, &breakers(c), body, &input(Endpoint::Chat, 0)).unwrap();
        if std::ptr::eq(c, &passthrough) {
            assert_eq!(routed.served.model, ModelLabel::Passthrough);
        }
        for name in SET_FOR_EVERY_ROUTED_REQUEST {
            assert!(
                routed
                    .headers
                    .iter()
                    .any(|e| matches!(e, HeaderEdit::Set(n, _) if *n == name)),
                "{name} is not set for {}",
                String::from_utf8_lossy(body)
            );
        }
    }
}
