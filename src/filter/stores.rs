//! The host's side of the pure core's stores: Envoy stats behind [`Metrics`] (the
//! [`crate::stats::Stats`] sink) and proxy-wasm shared data behind [`HostStore`] (the
//! [`crate::store::SharedStore`] the circuit breakers use).

use super::host;
use crate::config::Config;
use crate::metrics::{Kind, Series};
use crate::rng::WordHash;
use crate::store::{SharedStore, StoreError};
use log::warn;
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

// === impl HostStore ===

/// proxy-wasm shared data: one store for every VM of the same `vm_id`.
#[derive(Debug, Clone, Copy, Default)]
pub struct HostStore;

impl SharedStore for HostStore {
    fn get(&self, key: &str) -> Result<(Option<Vec<u8>>, u32), StoreError> {
        host::shared_data(key).map_err(|host::Status(s)| StoreError::Failed(s))
    }

    fn set(&self, key: &str, value: &[u8], cas: u32) -> Result<(), StoreError> {
        host::set_shared_data(key, value, cas).map_err(|host::Status(s)| match s {
            host::CAS_MISMATCH => StoreError::Stale,
            s => StoreError::Failed(s),
        })
    }
}
