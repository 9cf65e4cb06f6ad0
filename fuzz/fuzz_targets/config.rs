//! The plugin configuration: `config::parse` (serde schema + `compile` validation), then what
//! the filter does with a configuration it accepted, on any bytes.
//!
//! Checked: never panics; a refused configuration has at least one error, each naming what
//! is wrong; an accepted one is internally consistent (every index valid, every served name
//! resolves, `/v1/models` renders as valid JSON, weighted and sticky picks only return live
//! targets of the route, names from the input resolve without panicking).
#![no_main]

use ai_gateway_filter::config::{self, ModelId, Named};
use ai_gateway_filter::metrics::RouteLabel;
use ai_gateway_filter::routing::{self, Resolution};
use ai_gateway_filter::{models_endpoint, rng::mix64};
use fuzz_support::serde_valid;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let cfg = match config::parse(data) {
        Ok(cfg) => cfg,
        Err(errors) => {
            assert!(!errors.0.is_empty(), "refused without an error");
            for e in &errors.0 {
                assert!(
                    !e.message.is_empty(),
                    "an error without a message at {:?}",
                    e.path
                );
            }
            assert!(!errors.to_string().is_empty());
            return;
        }
    };
    assert!(!cfg.models.is_empty() || cfg.routes.is_empty());
    for route in &cfg.routes {
        assert!(!route.name.is_empty());
        for t in &route.targets {
            assert!(
                t.model.index() < cfg.models.len(),
                "route {} names model {}",
                route.name,
                t.model
            );
            assert!(t.weight >= 0.0 && t.weight.is_finite());
        }
        // Live targets (weight > 0) come first.
        let live = route.targets.iter().take_while(|t| t.weight > 0.0).count();
        assert!(route.targets[live..].iter().all(|t| t.weight == 0.0));
    }
    if let Some(r) = cfg.default_route {
        assert!(r.index() < cfg.routes.len());
    }
    for name in cfg.served_names() {
        match cfg.lookup(name) {
            Some(Named::Route(r)) => assert!(r.index() < cfg.routes.len()),
            Some(Named::Model(m)) => assert!(m.index() < cfg.models.len()),
            None => panic!("served name {name:?} does not resolve"),
        }
    }
    let models = models_endpoint::render(&cfg);
    assert_eq!(
        serde_valid(&models),
        Some(true),
        "/v1/models is not valid JSON"
    );
    for m in &cfg.models {
        assert!(m.timeout_header.parse::<u64>().is_ok());
        assert!(!m.cluster.is_empty());
    }
    assert!(cfg.timeout_header().parse::<u64>().is_ok());

    // Picks.
    let seed = u64::try_from(data.len()).unwrap_or(0);
    for (ri, route) in cfg.route_ids().zip(&cfg.routes) {
        for k in 0..8u64 {
            let roll = mix64(seed ^ k.wrapping_mul(0x9E37_79B9_7F4A_7C15));
            let mask = mix64(roll);
            let healthy = |m: ModelId| (mask >> (m.index() % 64)) & 1 == 1 || k == 0;
            let live = |m: ModelId| {
                route
                    .targets
                    .iter()
                    .any(|t| t.model == m && t.weight > 0.0 && healthy(m))
            };
            if let Some(m) = routing::pick_weighted(route, healthy, roll) {
                assert!(
                    live(m),
                    "weighted pick {m} is not a live target of route {ri}"
                );
            } else {
                assert!(!route
                    .targets
                    .iter()
                    .any(|t| t.weight > 0.0 && healthy(t.model)));
            }
            let key = roll.to_le_bytes();
            if let Some(m) = routing::pick_sticky(route, healthy, &key[..(k as usize)]) {
                assert!(
                    live(m),
                    "sticky pick {m} is not a live target of route {ri}"
                );
            }
        }
        let _ = routing::route_name(&cfg, RouteLabel::Route(ri));
    }
    // Requested names taken from the input itself.
    for piece in data.split(|&b| b == b'"').take(64) {
        if let Ok(name) = std::str::from_utf8(piece) {
            let res = routing::resolve(&cfg, Some(name));
            let label = match res {
                Resolution::Route(r) => {
                    assert!(r.index() < cfg.routes.len());
                    Some(RouteLabel::Route(r))
                }
                Resolution::Model(m) => {
                    assert!(m.index() < cfg.models.len());
                    Some(RouteLabel::Direct)
                }
                Resolution::Passthrough => Some(RouteLabel::Passthrough),
                Resolution::Reject => None,
            };
            if let Some(label) = label {
                let _ = routing::route_name(&cfg, label);
            }
        }
    }
    let _ = routing::resolve(&cfg, None);
});
