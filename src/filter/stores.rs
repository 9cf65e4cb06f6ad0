//! Per-configuration state the HTTP contexts share inside one VM, and the state shared with the
//! other workers' VMs through proxy-wasm shared data: metric ids, cost remainders, circuit
//! breakers.

use super::host;
use crate::breaker::{Admission, BreakerConfig, Outcome, Phase, TargetState, Transition};
use crate::config::{Config, ModelId};
use crate::metrics::{Kind, Series};
use crate::rng::WordHash;
use crate::usage::{CostAccumulator, Price, Usage};
use log::{debug, warn};
use proxy_wasm::types::MetricType;
use std::cell::RefCell;
use std::collections::HashMap;

// === impl Metrics ===

/// Envoy stat ids by series. A series is defined the first time it is used (once per VM and
/// configuration) and looked up afterwards: no name formatting on the request path.
#[derive(Default)]
pub struct Metrics {
    ids: RefCell<HashMap<Series, u32, WordHash>>,
}

impl Metrics {
    fn id(&self, cfg: &Config, series: Series) -> Option<u32> {
        if let Some(&id) = self.ids.borrow().get(&series) {
            return Some(id);
        }
        let kind = match series.metric().kind {
            Kind::Counter => MetricType::Counter,
            Kind::Gauge => MetricType::Gauge,
            Kind::Histogram => MetricType::Histogram,
        };
        match host::define_metric(kind, &series.stat_name(cfg)) {
            Ok(id) => {
                self.ids.borrow_mut().insert(series, id);
                Some(id)
            }
            Err(s) => {
                warn!("ai-gateway: could not define a metric (status {s:?})");
                None
            }
        }
    }

    /// Adds `n` (> 0) to a counter.
    pub fn add(&self, cfg: &Config, series: Series, n: u64) {
        // Envoy rejects increments of 0 (BadArgument).
        if n == 0 {
            return;
        }
        if let Some(id) = self.id(cfg, series) {
            let _ = host::increment_metric(id, i64::try_from(n).unwrap_or(i64::MAX));
        }
    }

    /// Records a histogram sample or sets a gauge.
    pub fn record(&self, cfg: &Config, series: Series, value: u64) {
        if let Some(id) = self.id(cfg, series) {
            let _ = host::record_metric(id, value);
        }
    }
}

// === impl Costs ===

/// Per-model remainders of the exact cost arithmetic (see [`CostAccumulator`]).
pub struct Costs {
    by_model: RefCell<Vec<CostAccumulator>>,
}

impl Costs {
    pub fn new(models: usize) -> Self {
        Costs {
            by_model: RefCell::new(vec![CostAccumulator::default(); models]),
        }
    }

    /// Whole micro-dollars to add to the counter for this usage.
    pub fn add(&self, model: ModelId, usage: Usage, price: Price) -> u64 {
        self.by_model
            .borrow_mut()
            .get_mut(model.index())
            .map_or(0, |acc| acc.add(usage, price))
    }
}

// === impl Breakers ===

/// How many times a compare-and-swap is retried when another worker wrote in between.
const CAS_ATTEMPTS: usize = 8;
/// Bumped on every circuit transition, so workers know when to re-read the states.
const GENERATION_KEY: &str = "ai_gateway.breaker.generation";

/// The circuit breakers of every model, shared by all workers.
///
/// Each target's state is a blob under `ai_gateway.breaker.<name>@<version>`, updated with
/// compare-and-swap. To keep the pick cheap, each VM caches the decoded states and re-reads
/// them only when the generation key changed (a transition happened somewhere): one host call
/// per pick in the steady state. Time-based changes (open → half-open) need no write: they are
/// computed from the cached state and the current time.
pub struct Breakers {
    cfg: BreakerConfig,
    keys: Vec<String>,
    cache: RefCell<Cache>,
    /// Encoding buffer reused by every write (no allocation per request).
    scratch: RefCell<Vec<u8>>,
}

struct Cache {
    generation: Option<u32>,
    states: Vec<TargetState>,
}

impl Breakers {
    pub fn new(cfg: &Config) -> Self {
        let b = cfg.breaker;
        Breakers {
            cfg: BreakerConfig {
                threshold: b.threshold,
                window_ms: b.window_s.saturating_mul(1000),
                min_requests: b.min_requests,
                cooldown_ms: b.cooldown_s.saturating_mul(1000),
            },
            keys: cfg
                .models
                .iter()
                .map(|m| format!("ai_gateway.breaker.{}@{}", m.name, m.version_label))
                .collect(),
            cache: RefCell::new(Cache {
                generation: None,
                states: vec![TargetState::default(); cfg.models.len()],
            }),
            scratch: RefCell::new(Vec::new()),
        }
    }

    fn load(&self, model: usize) -> (TargetState, u32) {
        let Some(key) = self.keys.get(model) else {
            return (TargetState::default(), 0);
        };
        match host::shared_data(key) {
            Ok((Some(bytes), cas)) => (TargetState::decode(&bytes).unwrap_or_default(), cas),
            Ok((None, cas)) => (TargetState::default(), cas),
            Err(_) => (TargetState::default(), 0),
        }
    }

    /// Refreshes the cache when another worker (or this one) made a transition.
    pub fn refresh(&self) {
        let generation = host::shared_data(GENERATION_KEY).map_or(None, |(_, cas)| Some(cas));
        let mut cache = self.cache.borrow_mut();
        if cache.generation == generation && generation.is_some() {
            return;
        }
        for model in 0..self.keys.len() {
            let (state, _) = self.load(model);
            if let Some(slot) = cache.states.get_mut(model) {
                *slot = state;
            }
        }
        cache.generation = generation;
    }

    fn bump_generation() {
        let _ = host::set_shared_data(GENERATION_KEY, b"", 0);
    }

    /// May the pick choose this model now (from the cache)?
    pub fn available(&self, model: ModelId, now_ms: u64) -> bool {
        self.cache
            .borrow()
            .states
            .get(model.index())
            .is_none_or(|s| s.available(now_ms, &self.cfg))
    }

    /// Seconds until the earliest of these models may be tried again (at least 1).
    pub fn retry_after_s(&self, models: impl Iterator<Item = ModelId>, now_ms: u64) -> u64 {
        let cache = self.cache.borrow();
        models
            .filter_map(|m| cache.states.get(m.index()))
            .map(|s| s.retry_after_s(now_ms, &self.cfg))
            .min()
            .unwrap_or(1)
            .max(1)
    }

    /// Admits a request to the picked model. A closed circuit needs no write; a half-open one
    /// hands out its single probe through compare-and-swap.
    pub fn admit(&self, model: ModelId, now_ms: u64) -> Admission {
        let phase = self
            .cache
            .borrow()
            .states
            .get(model.index())
            .map_or(Phase::Closed, |s| s.phase(now_ms, &self.cfg));
        if phase == Phase::Closed {
            return Admission::Allowed;
        }
        let Some(key) = self.keys.get(model.index()) else {
            return Admission::Allowed;
        };
        let mut buf = self.scratch.borrow_mut();
        for _ in 0..CAS_ATTEMPTS {
            let (mut state, cas) = self.load(model.index());
            let admission = state.admit(now_ms, &self.cfg);
            if admission != Admission::Probe {
                self.store_in_cache(model, state);
                return admission;
            }
            state.encode_into(&mut buf);
            match host::set_shared_data(key, &buf, cas) {
                Ok(()) => {
                    self.store_in_cache(model, state);
                    Self::bump_generation();
                    debug!("ai-gateway: probe admitted to {key}");
                    return Admission::Probe;
                }
                Err(host::Status(host::CAS_MISMATCH)) => continue,
                Err(_) => break,
            }
        }
        Admission::Rejected
    }

    fn store_in_cache(&self, model: ModelId, state: TargetState) {
        if let Some(slot) = self.cache.borrow_mut().states.get_mut(model.index()) {
            *slot = state;
        }
    }

    /// Records a finished request's outcome; returns the transition it caused.
    pub fn record(&self, model: ModelId, outcome: Outcome, probe: bool, now_ms: u64) -> Transition {
        let Some(key) = self.keys.get(model.index()) else {
            return Transition::None;
        };
        let mut buf = self.scratch.borrow_mut();
        for _ in 0..CAS_ATTEMPTS {
            let (mut state, cas) = self.load(model.index());
            let transition = state.record(now_ms, outcome, probe, &self.cfg);
            state.encode_into(&mut buf);
            match host::set_shared_data(key, &buf, cas) {
                Ok(()) => {
                    if transition != Transition::None {
                        self.store_in_cache(model, state);
                        Self::bump_generation();
                    }
                    return transition;
                }
                Err(host::Status(host::CAS_MISMATCH)) => continue,
                Err(s) => {
                    warn!("ai-gateway: could not store a circuit state (status {s:?})");
                    break;
                }
            }
        }
        debug!("ai-gateway: outcome for {key} dropped after {CAS_ATTEMPTS} conflicting writes");
        Transition::None
    }

    /// Whether the circuit is open or half-open (for the gauge), from the cache.
    pub fn is_open(&self, model: ModelId) -> bool {
        self.cache
            .borrow()
            .states
            .get(model.index())
            .is_some_and(TargetState::is_open)
    }
}
