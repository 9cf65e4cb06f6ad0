//! The circuit breakers of every model, shared by all Envoy workers through a [`SharedStore`].
//!
//! Each target's state is a blob under `ai_gateway.breaker.<name>@<version>`, updated with
//! compare-and-swap. To keep the pick cheap, each worker caches the decoded states and re-reads
//! them only when the generation key changed (a transition happened somewhere): one store read
//! per pick in the steady state. Time-based changes (open → half-open) need no write: they are
//! computed from the cached state and the current time.

use super::{Admission, BreakerConfig, Outcome, Phase, TargetState, Transition};
use crate::config::{Config, ModelId};
use crate::store::{SharedStore, StoreError};
use log::{debug, warn};
use std::cell::RefCell;

/// How many times a compare-and-swap is retried when another worker wrote in between.
pub const CAS_ATTEMPTS: usize = 8;
/// Bumped on every circuit transition, so workers know when to re-read the states.
pub const GENERATION_KEY: &str = "ai_gateway.breaker.generation";

/// The shared-data key of a target's circuit state (`model_key`: `name@version`).
pub fn state_key(model_key: &str) -> String {
    format!("ai_gateway.breaker.{model_key}")
}

/// The circuit breakers of one configuration, as one worker sees them.
pub struct Breakers<S> {
    store: S,
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

impl<S: SharedStore> Breakers<S> {
    pub fn new(cfg: &Config, store: S) -> Self {
        let b = cfg.breaker;
        Breakers {
            store,
            cfg: BreakerConfig {
                threshold: b.threshold,
                window_ms: b.window_s.saturating_mul(1000),
                min_requests: b.min_requests,
                cooldown_ms: b.cooldown_s.saturating_mul(1000),
            },
            keys: cfg.models.iter().map(|m| state_key(&m.key)).collect(),
            cache: RefCell::new(Cache {
                generation: None,
                states: vec![TargetState::default(); cfg.models.len()],
            }),
            scratch: RefCell::new(Vec::new()),
        }
    }

    fn load(&self, model: ModelId) -> (TargetState, u32) {
        let Some(key) = self.keys.get(model.index()) else {
            return (TargetState::default(), 0);
        };
        match self.store.get(key) {
            Ok((Some(bytes), cas)) => (TargetState::decode(&bytes).unwrap_or_default(), cas),
            Ok((None, cas)) => (TargetState::default(), cas),
            Err(_) => (TargetState::default(), 0),
        }
    }

    /// Reads a state to update it. proxy-wasm reads a key never written as version 0, and a
    /// write with version 0 is unconditional: a compare-and-swap from there could overwrite
    /// another worker's first write. So an absent key is created first (a closed circuit, which
    /// is what "absent" means) and read again; the compare-and-swap then has a real version.
    /// Two workers creating the same key at once both write the default: harmless.
    fn load_for_write(&self, model: ModelId, key: &str) -> Option<(TargetState, u32)> {
        for _ in 0..2 {
            match self.store.get(key) {
                Ok((Some(bytes), cas)) if cas != 0 => {
                    return Some((TargetState::decode(&bytes).unwrap_or_default(), cas))
                }
                Ok(_) => {
                    let mut buf = self.scratch.borrow_mut();
                    TargetState::default().encode_into(&mut buf);
                    self.store.set(key, &buf, 0).ok()?;
                }
                Err(_) => return None,
            }
        }
        debug!("ai-gateway: the circuit state of model {model} could not be created");
        None
    }

    /// Refreshes the cache when another worker (or this one) made a transition.
    pub fn refresh(&self) {
        let generation = self
            .store
            .get(GENERATION_KEY)
            .map_or(None, |(_, cas)| Some(cas));
        let mut cache = self.cache.borrow_mut();
        if cache.generation == generation && generation.is_some() {
            return;
        }
        for (index, key) in self.keys.iter().enumerate() {
            let state = match self.store.get(key) {
                Ok((Some(bytes), _)) => TargetState::decode(&bytes).unwrap_or_default(),
                _ => TargetState::default(),
            };
            if let Some(slot) = cache.states.get_mut(index) {
                *slot = state;
            }
        }
        cache.generation = generation;
    }

    fn bump_generation(&self) {
        let _ = self.store.set(GENERATION_KEY, b"", 0);
    }

    /// May the pick choose this model now (from the cache)?
    pub fn available(&self, model: ModelId, now_ms: u64) -> bool {
        self.cache
            .borrow()
            .states
            .get(model.index())
            .is_none_or(|s| s.available(now_ms, &self.cfg))
    }

    /// Is the circuit closed now (from the cache)? A fallback attempt goes only to a closed
    /// circuit: a half-open one's single probe is left to the requests routed to it.
    pub fn closed(&self, model: ModelId, now_ms: u64) -> bool {
        self.cache
            .borrow()
            .states
            .get(model.index())
            .is_none_or(|s| s.phase(now_ms, &self.cfg) == Phase::Closed)
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

    /// Admits a request to the picked model. A closed circuit (in the cache) needs no write; a
    /// half-open one hands out its single probe through compare-and-swap.
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
        for _ in 0..CAS_ATTEMPTS {
            let Some((mut state, cas)) = self.load_for_write(model, key) else {
                break;
            };
            let admission = state.admit(now_ms, &self.cfg);
            if admission != Admission::Probe {
                self.store_in_cache(model, state);
                return admission;
            }
            let mut buf = self.scratch.borrow_mut();
            state.encode_into(&mut buf);
            match self.store.set(key, &buf, cas) {
                Ok(()) => {
                    self.store_in_cache(model, state);
                    self.bump_generation();
                    debug!("ai-gateway: probe admitted to {key}");
                    return Admission::Probe;
                }
                Err(StoreError::Stale) => continue,
                Err(StoreError::Failed(_)) => break,
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
        for _ in 0..CAS_ATTEMPTS {
            let Some((mut state, cas)) = self.load_for_write(model, key) else {
                break;
            };
            let transition = state.record(now_ms, outcome, probe, &self.cfg);
            let mut buf = self.scratch.borrow_mut();
            state.encode_into(&mut buf);
            match self.store.set(key, &buf, cas) {
                Ok(()) => {
                    if transition != Transition::None {
                        self.store_in_cache(model, state);
                        self.bump_generation();
                    }
                    return transition;
                }
                Err(StoreError::Stale) => continue,
                Err(StoreError::Failed(s)) => {
                    warn!("ai-gateway: could not store a circuit state (status {s})");
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

    /// The window's (successes, failures) of a model as stored now (a store read).
    pub fn window_counts(&self, model: ModelId, now_ms: u64) -> (u64, u64) {
        self.load(model).0.window_counts(now_ms, &self.cfg)
    }
}
