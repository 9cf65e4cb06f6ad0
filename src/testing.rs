//! The test prelude: every test module under `src/` imports from here in one line,
//! `use crate::testing::test;` or `use crate::testing::{test, …};`.
//!
//! `test` is the `#[test]` attribute each target runs: compiled to wasm32-unknown-unknown (the
//! `wasm-test` tier, `mk/hostile.mk`) it is `wasm_bindgen_test`, so every `#[test]` of the
//! module runs under wasm-bindgen-test; elsewhere it is the built-in one. The import must name
//! `test`: a glob import (`testing::*`) cannot shadow the standard prelude's `#[test]` (rustc
//! reports `test` as ambiguous, E0659), and a module without the import compiles on wasm32
//! too, its tests silently not run.
//!
//! It also holds what tests share: the one deterministic PRNG ([`SplitMix64`], the crate's,
//! with [`RngCore`] and the [`TestRng`] draws).

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
