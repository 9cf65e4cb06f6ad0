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
