//! The test prelude: every test module under `src/` starts with `use crate::testing::test;`.
//!
//! It brings in the `#[test]` attribute each target runs: compiled to wasm32-unknown-unknown
//! (the `wasm-test` tier, `mk/hostile.mk`) that is `wasm_bindgen_test`, so every `#[test]`
//! of the module runs under wasm-bindgen-test; elsewhere it is the built-in one. (The glob
//! import shadows the built-in `#[test]` of the standard prelude; a module without it would
//! compile on wasm32 too, and its tests would silently not run.)

#[cfg(not(all(target_arch = "wasm32", target_os = "unknown")))]
pub(crate) use core::prelude::v1::test;
#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
pub(crate) use wasm_bindgen_test::wasm_bindgen_test as test;

pub(crate) use crate::rng::SplitMix64;
pub(crate) use rand_core::RngCore;

/// What the tests draw from their one deterministic PRNG, the crate's [`SplitMix64`] (seeded
/// with a fixed number per test, so every run sees the same inputs).
pub(crate) trait TestRng {
    /// Uniform-ish in `0..n` (0 when `n` is 0).
    fn below(&mut self, n: usize) -> usize;

    /// True `percent` times in a hundred.
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    /// One of `items` (which must not be empty).
    fn pick<'x, T: ?Sized>(&mut self, items: &[&'x T]) -> &'x T {
        items[self.below(items.len())]
    }
}

impl TestRng for SplitMix64 {
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next_u64() % n as u64) as usize
        }
    }
}
