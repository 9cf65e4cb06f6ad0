//! Which model serves a request: resolve the requested name, then pick among a route's
//! targets by weight, at random or sticky, through the circuit breakers (docs/design.md,
//! "Request path").
//!
//! Randomness and target health are inputs, so tests pin the distribution exactly.

use crate::breaker::{Admission, Breakers};
use crate::config::{route_labels, Config, ModelId, Named, Route, RouteId, UnknownModelsPolicy};
use crate::errors::GatewayError;
use crate::metrics::RouteLabel;
use crate::rng::{fnv1a64, mix64};
use crate::store::SharedStore;

/// What the requested model name resolves to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    /// Pick among this route's targets.
    Route(RouteId),
    /// The client's preferred model, honoured.
    Model(ModelId),
    /// `unknown_models: reject`.
    Reject,
    /// `unknown_models: passthrough`: the body goes upstream untouched.
    Passthrough,
}

/// Resolves the top-level `model` of a request (`None` when absent).
pub fn resolve(cfg: &Config, requested: Option<&str>) -> Resolution {
    if let Some(name) = requested.filter(|n| !n.is_empty()) {
        match cfg.lookup(name) {
            Some(Named::Route(r)) => return Resolution::Route(r),
            Some(Named::Model(m)) => return Resolution::Model(m),
            None => {}
        }
    }
    match cfg.unknown_models {
        UnknownModelsPolicy::Reject => Resolution::Reject,
        UnknownModelsPolicy::Passthrough => Resolution::Passthrough,
        UnknownModelsPolicy::Route => match cfg.default_route {
            Some(r) => Resolution::Route(r),
            // compile() always sets a default route under `route`; stay total anyway.
            None => Resolution::Reject,
        },
    }
}

/// The name of a route label, for the `x-ai-gateway-route` header and the `route` label.
pub fn route_name(cfg: &Config, route: RouteLabel) -> &str {
    match route {
        RouteLabel::Route(r) => cfg.route(r).name.as_str(),
        RouteLabel::Direct => route_labels::DIRECT,
        RouteLabel::Passthrough => route_labels::PASSTHROUGH,
    }
}

/// How a pick chooses among the healthy targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chooser<'a> {
    /// Weighted rendezvous hash of the sticky header's value.
    Sticky(&'a [u8]),
    /// Weighted random pick with these 64 random bits.
    Roll(u64),
}

impl Chooser<'_> {
    fn choose(self, route: &Route, available: impl Fn(ModelId) -> bool) -> Option<ModelId> {
        match self {
            Chooser::Sticky(key) => pick_sticky(route, available, key),
            Chooser::Roll(roll) => pick_weighted(route, available, roll),
        }
    }
}

/// The outcome of [`pick`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Picked {
    pub model: ModelId,
    /// The request is the model's half-open probe: record its outcome as such.
    pub probe: bool,
    /// The model the same roll (or key) picks with every circuit closed, when it is another
    /// one: the pick failed over from it.
    pub failover_from: Option<ModelId>,
}

/// Picks among a route's targets: the healthy ones by weight (or sticky hash), admitting
/// through the circuit breaker. A target whose admission is refused (its half-open probe is
/// taken) leaves the pick and the pick runs again. `503 no_healthy_target` when none is left.
pub fn pick<S: SharedStore>(
    cfg: &Config,
    route_id: RouteId,
    breakers: &Breakers<S>,
    chooser: Chooser,
    now_ms: u64,
) -> Result<Picked, GatewayError> {
    let route = cfg.route(route_id);
    breakers.refresh();
    // What the pick would be with every circuit closed: a different final choice is a
    // failover (the same roll or key keeps the two comparable).
    let natural = chooser.choose(route, |_| true);
    let mut excluded: Vec<ModelId> = Vec::new();
    loop {
        let chosen = chooser.choose(route, |m| {
            !excluded.contains(&m) && breakers.available(m, now_ms)
        });
        let Some(model) = chosen else {
            let retry_after_s =
                breakers.retry_after_s(route.targets.iter().map(|t| t.model), now_ms);
            return Err(GatewayError::NoHealthyTarget {
                route: route.name.clone(),
                retry_after_s,
            });
        };
        match breakers.admit(model, now_ms) {
            Admission::Rejected => excluded.push(model),
            admission => {
                return Ok(Picked {
                    model,
                    probe: admission == Admission::Probe,
                    failover_from: natural.filter(|&n| n != model),
                })
            }
        }
    }
}

/// A uniform number in [0, 1) from 64 random bits (the top 53).
fn unit(bits: u64) -> f64 {
    (bits >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// Weighted random pick among the route's available targets: target `i` is chosen with
/// probability `weight_i / Σ weights of available targets` — an unavailable target's share
/// is spread over the others in proportion to their weights. `None` when no target with a
/// weight above 0 is available.
pub fn pick_weighted(
    route: &Route,
    available: impl Fn(ModelId) -> bool,
    roll: u64,
) -> Option<ModelId> {
    let live = || {
        route
            .targets
            .iter()
            .take_while(|t| t.weight > 0.0)
            .filter(|t| available(t.model))
    };
    let total: f64 = live().map(|t| t.weight).sum();
    if total <= 0.0 {
        return None;
    }
    let x = unit(roll) * total;
    let mut acc = 0.0;
    let mut last = None;
    for t in live() {
        acc += t.weight;
        if x < acc {
            return Some(t.model);
        }
        last = Some(t.model);
    }
    last // x landed on the float rounding edge of the total
}

/// Sticky pick: weighted rendezvous hashing (highest random weight, logarithmic method).
/// Each target scores `weight / -ln(u)` with `u` a uniform hash of (key, target identity);
/// the highest score wins. The same key always gets the same target while the targets and
/// weights stay the same, the share of keys per target is proportional to its weight, and a
/// weight change moves only the keys that must move: raising a target's weight only moves
/// keys *to* it, lowering it only moves keys *away* from it; keys between two untouched
/// targets stay where they are. A target whose circuit opens loses only its own keys.
pub fn pick_sticky(
    route: &Route,
    available: impl Fn(ModelId) -> bool,
    key: &[u8],
) -> Option<ModelId> {
    let key_hash = fnv1a64(key);
    let mut best: Option<(f64, ModelId)> = None;
    for t in route
        .targets
        .iter()
        .take_while(|t| t.weight > 0.0)
        .filter(|t| available(t.model))
    {
        let h = mix64(key_hash ^ mix64(t.seed));
        // u in (0, 1): never 0, so ln(u) < 0 and the score is finite.
        let u = ((h >> 11) as f64 + 0.5) * (1.0 / (1u64 << 53) as f64);
        let score = t.weight / -u.ln();
        if best.is_none_or(|(s, _)| score > s) {
            best = Some((score, t.model));
        }
    }
    best.map(|(_, m)| m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse;
    use crate::testing::test;

    fn cfg(json: &str) -> Config {
        parse(json.as_bytes()).unwrap()
    }

    fn split_90_10() -> Config {
        cfg(
            r#"{"models":[{"name":"stable","version":"1.0.0"},{"name":"canary","version":"2.0.0-rc.1"}],
                "routes":[{"name":"chat","targets":[{"model":"stable","weight":90},{"model":"canary","weight":10}]}],
                "default_route":"chat"}"#,
        )
    }

    fn all(_: ModelId) -> bool {
        true
    }

    #[test]
    fn resolves_a_route_a_model_and_unknown_names_by_policy() {
        let c = split_90_10();
        let (chat, stable) = (c.route_id(0).unwrap(), c.model_id(0).unwrap());
        assert_eq!(resolve(&c, Some("chat")), Resolution::Route(chat));
        assert_eq!(resolve(&c, Some("stable")), Resolution::Model(stable));
        // A pre-release is reached only through routes: unknown by name → default route.
        assert_eq!(resolve(&c, Some("canary")), Resolution::Route(chat));
        assert_eq!(resolve(&c, Some("")), Resolution::Route(chat));
        assert_eq!(resolve(&c, None), Resolution::Route(chat));

        let reject =
            cfg(r#"{"models":[{"name":"a","version":"1.0.0"}],"unknown_models":"reject"}"#);
        assert_eq!(resolve(&reject, Some("zzz")), Resolution::Reject);
        assert_eq!(resolve(&reject, None), Resolution::Reject);
        assert_eq!(
            resolve(&reject, Some("a")),
            Resolution::Model(reject.model_id(0).unwrap())
        );

        let pass =
            cfg(r#"{"models":[{"name":"a","version":"1.0.0"}],"unknown_models":"passthrough"}"#);
        assert_eq!(resolve(&pass, Some("zzz")), Resolution::Passthrough);
    }

    #[test]
    fn labels_routes_for_headers_and_metrics() {
        let c = split_90_10();
        let chat = c.route_id(0).unwrap();
        assert_eq!(route_name(&c, RouteLabel::Route(chat)), "chat");
        assert_eq!(route_name(&c, RouteLabel::Direct), "_direct");
        assert_eq!(route_name(&c, RouteLabel::Passthrough), "_passthrough");
        let implicit = cfg(r#"{"models":[{"name":"a","version":"1.0.0","weight":1}]}"#);
        let Resolution::Route(r) = resolve(&implicit, None) else {
            panic!("the implicit route serves unknown models");
        };
        assert_eq!(route_name(&implicit, RouteLabel::Route(r)), "_default");
    }

    #[test]
    fn weighted_pick_gives_exactly_the_configured_shares_over_evenly_spaced_rolls() {
        let c = split_90_10();
        let n: u64 = 10_000;
        let step = u64::MAX / n;
        let canary = (0..n)
            .filter(|k| pick_weighted(&c.routes[0], all, k * step + step / 2) == c.model_id(1))
            .count();
        assert_eq!(canary, 1_000);
    }

    #[test]
    fn weighted_pick_covers_the_extreme_rolls() {
        let c = split_90_10();
        assert_eq!(pick_weighted(&c.routes[0], all, 0), c.model_id(0));
        assert_eq!(pick_weighted(&c.routes[0], all, u64::MAX), c.model_id(1));
    }

    #[test]
    fn an_unavailable_target_shares_its_weight_among_the_others() {
        let c = split_90_10();
        let only_canary = |m: ModelId| m.index() == 1;
        for roll in [0, u64::MAX / 2, u64::MAX] {
            assert_eq!(
                pick_weighted(&c.routes[0], only_canary, roll),
                c.model_id(1)
            );
        }
        assert_eq!(pick_weighted(&c.routes[0], |_| false, 42), None);
    }

    #[test]
    fn a_drained_target_is_never_picked() {
        let c = cfg(
            r#"{"models":[{"name":"a","version":"1.0.0"},{"name":"b","version":"1.0.0"}],
                        "routes":[{"name":"r","targets":[{"model":"a","weight":0},{"model":"b","weight":1}]}],
                        "default_route":"r"}"#,
        );
        for k in 0..1000u64 {
            let roll = mix64(k);
            assert_eq!(pick_weighted(&c.routes[0], all, roll), c.model_id(1));
            assert_eq!(
                pick_sticky(&c.routes[0], all, &roll.to_le_bytes()),
                c.model_id(1)
            );
        }
    }

    #[test]
    fn a_sticky_user_always_gets_the_same_target() {
        let c = split_90_10();
        for user in ["alice", "bob", "carol", ""] {
            let first = pick_sticky(&c.routes[0], all, user.as_bytes());
            for _ in 0..10 {
                assert_eq!(pick_sticky(&c.routes[0], all, user.as_bytes()), first);
            }
        }
    }

    #[test]
    fn sticky_shares_follow_the_weights() {
        let c = split_90_10();
        let n = 100_000;
        let canary = (0..n)
            .filter(|i| {
                pick_sticky(&c.routes[0], all, format!("user-{i}").as_bytes()) == c.model_id(1)
            })
            .count();
        // Binomial(100000, 0.1): sd ≈ 95; 6 sd ≈ 570.
        assert!((canary as i64 - 10_000).abs() < 600, "canary got {canary}");
    }

    #[test]
    fn raising_the_canary_weight_only_moves_users_to_the_canary() {
        let before = split_90_10();
        let after = cfg(
            r#"{"models":[{"name":"stable","version":"1.0.0"},{"name":"canary","version":"2.0.0-rc.1"}],
                "routes":[{"name":"chat","targets":[{"model":"stable","weight":50},{"model":"canary","weight":50}]}],
                "default_route":"chat"}"#,
        );
        let mut moved = 0;
        for i in 0..20_000 {
            let key = format!("user-{i}");
            let a = pick_sticky(&before.routes[0], all, key.as_bytes());
            let b = pick_sticky(&after.routes[0], all, key.as_bytes());
            if a != b {
                // Nobody leaves the canary when its weight grows.
                assert_eq!((a, b), (before.model_id(0), before.model_id(1)), "{key}");
                moved += 1;
            }
        }
        // The minimum possible movement is 40 % of users (10 % → 50 %).
        assert!((7_600..8_400).contains(&moved), "moved {moved}");
    }

    #[test]
    fn adding_a_target_only_takes_users_from_others_and_keeps_the_rest() {
        let two = cfg(
            r#"{"models":[{"name":"a","version":"1.0.0"},{"name":"b","version":"1.0.0"},{"name":"c","version":"1.0.0"}],
                "routes":[{"name":"r","targets":[{"model":"a","weight":1},{"model":"b","weight":1}]}],"default_route":"r"}"#,
        );
        let three = cfg(
            r#"{"models":[{"name":"a","version":"1.0.0"},{"name":"b","version":"1.0.0"},{"name":"c","version":"1.0.0"}],
                "routes":[{"name":"r","targets":[{"model":"c","weight":1},{"model":"b","weight":1},{"model":"a","weight":1}]}],"default_route":"r"}"#,
        );
        for i in 0..5_000 {
            let key = format!("u{i}");
            let a = pick_sticky(&two.routes[0], all, key.as_bytes());
            let b = pick_sticky(&three.routes[0], all, key.as_bytes());
            assert!(a == b || b == three.model_id(2), "{key}: {a:?} → {b:?}");
        }
    }

    #[test]
    fn an_open_circuit_moves_only_its_own_sticky_users() {
        let c = cfg(
            r#"{"models":[{"name":"a","version":"1.0.0"},{"name":"b","version":"1.0.0"},{"name":"c","version":"1.0.0"}],
                "routes":[{"name":"r","targets":[{"model":"a","weight":5},{"model":"b","weight":3},{"model":"c","weight":2}]}],"default_route":"r"}"#,
        );
        let (mut kept, mut moved) = (0, 0);
        for i in 0..5_000 {
            let key = format!("u{i}");
            let before = pick_sticky(&c.routes[0], all, key.as_bytes());
            let after = pick_sticky(&c.routes[0], |m| m.index() != 2, key.as_bytes());
            if before == c.model_id(2) {
                assert_ne!(after, c.model_id(2));
                moved += 1;
            } else {
                assert_eq!(after, before, "{key}");
                kept += 1;
            }
        }
        assert!(moved > 0 && kept > moved);
    }
}
