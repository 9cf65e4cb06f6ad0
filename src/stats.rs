//! Where the request path's metrics go: a sink of [`Series`] values. The filter's sink defines
//! and updates Envoy stats (`src/filter/stores.rs`); [`MemoryStats`] keeps them in memory for
//! the unit tests.

use crate::metrics::Series;
use std::cell::RefCell;
use std::collections::HashMap;

/// A sink of metric updates.
pub trait Stats {
    /// Adds `n` to a counter (an `n` of 0 changes nothing).
    fn add(&self, series: Series, n: u64);
    /// Records a histogram sample, or sets a gauge.
    fn record(&self, series: Series, value: u64);
}

/// [`Stats`] in memory: counters summed, gauges and histograms as the list of values recorded.
#[derive(Default, Debug)]
pub struct MemoryStats {
    counters: RefCell<HashMap<Series, u64>>,
    recorded: RefCell<Vec<(Series, u64)>>,
}

impl MemoryStats {
    /// A counter's value (0 when never added to).
    pub fn counter(&self, series: Series) -> u64 {
        self.counters.borrow().get(&series).copied().unwrap_or(0)
    }

    /// Every value recorded for a gauge or histogram series, in order.
    pub fn recorded(&self, series: Series) -> Vec<u64> {
        self.recorded
            .borrow()
            .iter()
            .filter(|(s, _)| *s == series)
            .map(|&(_, v)| v)
            .collect()
    }

    /// Every counter with a value above 0.
    pub fn counters(&self) -> HashMap<Series, u64> {
        self.counters.borrow().clone()
    }
}

impl Stats for MemoryStats {
    fn add(&self, series: Series, n: u64) {
        if n > 0 {
            *self.counters.borrow_mut().entry(series).or_insert(0) += n;
        }
    }

    fn record(&self, series: Series, value: u64) {
        self.recorded.borrow_mut().push((series, value));
    }
}
