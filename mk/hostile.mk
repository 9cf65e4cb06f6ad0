# Hostile input: fuzzing and a bounded soak (neither is part of `make test`).
# Included by the Makefile (`include mk/*.mk`, after TIERS is set).
#
#   make fuzz               every cargo-fuzz target for FUZZ_SECONDS (default 60) each
#   make soak               SOAK_SECONDS (default 600) of mixed load through Envoy + the filter
#
# cargo-fuzz is installed on first use into ./.tools (gitignored, TOOLS_DIR) at CARGO_FUZZ_VER.

CARGO_FUZZ_VER   ?= 0.13.2
CARGO_FUZZ       := $(TOOLS_DIR)/bin/cargo-fuzz
# Seconds per fuzz target, and which targets (see fuzz/Cargo.toml).
FUZZ_SECONDS     ?= 60
FUZZ_TARGETS     ?= body_rewrite body_scan usage_scanner sse_stripper config breaker_codec fallback
# Soak length in seconds and client concurrency.
SOAK_SECONDS     ?= 600
SOAK_ARGS        ?=

.PHONY: fuzz cargo-fuzz soak

cargo-fuzz: $(CARGO_FUZZ)

$(CARGO_FUZZ):
	@mkdir -p $(TOOLS_DIR)
	$(CARGO) install cargo-fuzz --version $(CARGO_FUZZ_VER) --root $(TOOLS_DIR)

fuzz: cargo-fuzz ## Fuzz every target for FUZZ_SECONDS (60) each; crashes land in fuzz/artifacts/ (not part of make test)
	PATH="$(abspath $(TOOLS_DIR))/bin:$$PATH" FUZZ_SECONDS=$(FUZZ_SECONDS) fuzz/run.sh $(FUZZ_TARGETS)

soak: wasm tools venv ## Mixed load through Envoy + the filter for SOAK_SECONDS (600); reports errors, VM restarts, memory (not part of make test)
	$(VENV)/bin/python scripts/soak.py --seconds $(SOAK_SECONDS) $(SOAK_ARGS)
