# The wasm-test tier: the unit tests of the pure modules compiled to wasm32 (32-bit usize, wasm
# floats and allocator), run under Node by wasm-bindgen-test-runner. Included by the Makefile
# (`include mk/*.mk`, after TIERS is set).
#
#   make wasm-test          the tier (needs node; the wasm32-unknown-unknown target is added
#                           with rustup)
#
# wasm-bindgen-cli is installed on first use into ./.tools (gitignored, TOOLS_DIR) at exactly the
# wasm-bindgen version of Cargo.lock (the runner refuses any other).

# The wasm-bindgen version in Cargo.lock (wasm-bindgen-test pulls it in for wasm32 only).
WASM_BINDGEN_VER := $(shell awk '/^name = "wasm-bindgen"$$/ { getline; gsub(/[^0-9.]/, ""); print; exit }' Cargo.lock)
WBT_RUNNER       := $(TOOLS_DIR)/bin/wasm-bindgen-test-runner
WBT_STAMP        := $(TOOLS_DIR)/.wasm-bindgen-cli-$(WASM_BINDGEN_VER)
WASM_TEST_TARGET := wasm32-unknown-unknown

TIERS += wasm-test

.PHONY: wasm-test wasm-test-target wasm-bindgen-cli

wasm-test-target:
	@if command -v rustup >/dev/null 2>&1; then rustup target add $(WASM_TEST_TARGET); \
	else echo "rustup not found: assuming the $(WASM_TEST_TARGET) target is installed"; fi

wasm-bindgen-cli: $(WBT_STAMP)

$(WBT_STAMP):
	@test -n "$(WASM_BINDGEN_VER)" || { echo "no wasm-bindgen in Cargo.lock" >&2; exit 1; }
	@mkdir -p $(TOOLS_DIR)
	@echo "==> installing wasm-bindgen-cli $(WASM_BINDGEN_VER) into $(TOOLS_DIR) (a few minutes, once)"
	$(CARGO) install wasm-bindgen-cli --version $(WASM_BINDGEN_VER) --root $(TOOLS_DIR)
	@rm -f $(TOOLS_DIR)/.wasm-bindgen-cli-*
	@touch $@

# opt-level 1 (overflow checks and debug assertions stay on): the suite runs in seconds under
# Node instead of over a minute unoptimised.
wasm-test: wasm-test-target wasm-bindgen-cli ## Unit tests of the pure modules compiled to wasm32, run under Node (wasm-bindgen-test)
	@command -v node >/dev/null 2>&1 || { echo "node not found: wasm-bindgen-test runs the tests under Node.js (apt-get install nodejs)" >&2; exit 1; }
	@# A test module without the test prelude's `test` is silently skipped on wasm32: say so.
	@for f in $$(grep -rl --include='*.rs' '#\[test\]' src | grep -v '^src/filter/'); do \
	  grep -qE 'use crate::testing::(test;|\{([^}]*, )?test[,}])' "$$f" || echo "note: $$f has #[test]s that wasm-test does not run (add: use crate::testing::test; see src/testing.rs)"; \
	done
	CARGO_PROFILE_TEST_OPT_LEVEL=1 CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=$(abspath $(WBT_RUNNER)) \
	  $(CARGO) test --target $(WASM_TEST_TARGET) -p ai-gateway-filter --lib
