# `make bench`: the gateway's cost side by side with plain Envoy, an Envoy Lua filter and
# LiteLLM, in one run. Not part of `make test`. Results: bench/RESULTS.md and
# bench/results.json; logs and rendered configs: bench/out/. See bench/run.py --help.
# It also measures the upstream filter (variant filter-upstream against filter: its added CPU
# on first attempts, target ≤ 10 µs) and the fallback path (scenario fallback), printed at
# the end and in RESULTS.md.
#
#   make bench                    the full run (waits for a quiet machine first, then ~28 min)
#   make bench BENCH_ARGS=--quick a smoke run of a few minutes (no wait, 2 s runs, 1 round;
#                                 prints the tables, writes bench/out/results.json only)
#   .venv/bin/python bench/run.py --duration 4 --rounds 2 --no-wait --no-write \
#     --scenarios direct,fallback --sizes 1KiB --variants envoy-buffer,filter,filter-upstream
#                                 the upstream filter and the fallback path only (~2 min; after
#                                 make wasm tools venv, with wrk installed; writes bench/out/ only)
#   make bench-micro              cargo bench: the native micro-benchmark (benches/hot.rs)
#   make bench-profile            perf profile of the filter at 64 KiB and 1 MiB (bench/profile.py)
#
# Needs wrk and wasm-opt (Debian: wrk, binaryen; installed here when missing and run as
# root), perf for bench-profile (Debian: linux-perf), LiteLLM in bench/.venv (pinned in
# bench/litellm/requirements.txt, installed by bench-litellm from PyPI).

BENCH_DIR        := bench
BENCH_OUT        := $(BENCH_DIR)/out
BENCH_WASM_SRC   := target/wasm32-wasip1/release/ai_gateway_filter.wasm
BENCH_WASM_OPT   := $(BENCH_OUT)/ai_gateway_filter.opt.wasm
BENCH_FLOOR      := $(BENCH_OUT)/wasm-floor.wasm
BENCH_VENV       := $(BENCH_DIR)/.venv
BENCH_LITELLM    := $(BENCH_VENV)/bin/litellm
BENCH_PY         := .venv/bin/python
# Features Rust enables by default for wasm32-wasip1, and simd128 (.cargo/config.toml);
# binaryen 108 needs them spelled out.
BENCH_WASM_FEATURES := --enable-bulk-memory --enable-sign-ext --enable-mutable-globals \
                       --enable-nontrapping-float-to-int --enable-multivalue --enable-reference-types \
                       --enable-simd
BENCH_ARGS       ?=

.PHONY: bench bench-deps bench-wasm-opt bench-floor bench-litellm bench-micro bench-profile

bench: wasm tools venv bench-deps bench-wasm-opt bench-floor bench-litellm ## Benchmark: plain Envoy vs the filter vs Lua vs LiteLLM (bench/RESULTS.md; not in `make test`)
	$(BENCH_PY) $(BENCH_DIR)/run.py $(BENCH_ARGS)

bench-deps:
	@missing=(); \
	command -v wrk >/dev/null || missing+=(wrk); \
	command -v wasm-opt >/dev/null || missing+=(binaryen); \
	if (( $${#missing[@]} )); then \
	  if [[ $$(id -u) == 0 ]] && command -v apt-get >/dev/null; then \
	    apt-get install -y "$${missing[@]}" || { apt-get update && apt-get install -y "$${missing[@]}"; }; \
	  else echo "bench needs: $${missing[*]} (apt-get install $${missing[*]})" >&2; exit 1; fi; \
	fi

# The same .wasm after `wasm-opt -O3` (the `filter-opt` variant: size and speed difference).
bench-wasm-opt: wasm bench-deps
	@mkdir -p $(BENCH_OUT)
	wasm-opt -O3 $(BENCH_WASM_FEATURES) $(BENCH_WASM_SRC) -o $(BENCH_WASM_OPT)
	@ls -l $(BENCH_WASM_SRC) $(BENCH_WASM_OPT)

# The anatomy filter (bench/wasm-floor): the gateway's host calls without its logic.
bench-floor: wasm-target
	@mkdir -p $(BENCH_OUT)
	cd $(BENCH_DIR)/wasm-floor && CARGO_TARGET_DIR=$(CURDIR)/$(BENCH_OUT)/target \
	  $(CARGO) build --release --locked --target $(WASM_TARGET)
	cp $(BENCH_OUT)/target/$(WASM_TARGET)/release/wasm_floor.wasm $(BENCH_FLOOR)

bench-litellm: $(BENCH_VENV)/.installed ## Install LiteLLM (pinned, bench/litellm/requirements.txt) into bench/.venv

$(BENCH_VENV)/.installed: $(BENCH_DIR)/litellm/requirements.txt
	@test -x $(BENCH_VENV)/bin/python || $(PYTHON) -m venv $(BENCH_VENV)
	PIP_DISABLE_PIP_VERSION_CHECK=1 $(BENCH_VENV)/bin/pip install --quiet --requirement $<
	@touch $@

bench-micro: ## Native micro-benchmark of the hot pure functions (cargo bench: rewrite, picks, SSE scan)
	$(CARGO) bench --bench hot -- $(BENCH_ARGS)

bench-profile: wasm tools venv bench-deps bench-wasm-opt ## perf profile of Envoy + the filter at 64 KiB and 1 MiB (bench/out/profile-*)
	$(BENCH_PY) $(BENCH_DIR)/profile.py
