# `make bench`: the gateway's cost side by side with plain Envoy, an Envoy Lua filter and
# LiteLLM, in one run, and every figure of the filter next to the previous build's (the .wasm
# of git ref BENCH_BASE, variants filter-base and filter-upstream-base). Not part of
# `make test`. Results: bench/RESULTS.md and bench/results.json; logs and rendered configs:
# bench/out/. See bench/run.py --help.
# It also measures the upstream filter (variant filter-upstream against filter: its added CPU
# on first attempts, target ≤ 10 µs) and the fallback path (scenario fallback), printed at
# the end and in RESULTS.md.
#
#   make bench                    the full run (waits for a quiet machine first, then ~31 min)
#   make bench BENCH_ARGS=--quick a smoke run of a few minutes (no wait, 2 s runs, 1 round;
#                                 prints the tables, writes bench/out/results.json only)
#   make bench BENCH_BASE=<ref>   compare against another build (default 2e920cc: main before
#                                 the performance work; any commit, tag or branch)
#   .venv/bin/python bench/run.py --duration 4 --rounds 2 --no-wait --no-write \
#     --scenarios direct,fallback --sizes 1KiB --variants envoy-buffer,filter,filter-upstream
#                                 the upstream filter and the fallback path only (~2 min; after
#                                 make wasm tools venv, with wrk installed; writes bench/out/ only)
#   make bench-micro              cargo bench: the native micro-benchmark (benches/hot.rs)
#   make bench-profile            exact instruction counts (callgrind) of this build and the
#                                 previous one, perf profile at 64 KiB and 1 MiB (bench/profile.py;
#                                 ~25 min); re-renders RESULTS.md when bench/results.json is of
#                                 the same two .wasm files
#
# The targets table of RESULTS.md takes its instruction rows from bench/out/profile/
# instructions.json when that file counted the same two .wasm files (by SHA-256) as the bench
# run: one `make bench` and one `make bench-profile`, in either order, give the full report.
#
# Needs wrk and wasm-opt (Debian: wrk, binaryen; installed here when missing and run as
# root), perf and valgrind for bench-profile (Debian: linux-perf, valgrind), LiteLLM in
# bench/.venv (pinned in bench/litellm/requirements.txt, installed by bench-litellm from PyPI).

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
# The previous build: the commit before the performance work. Its .wasm is built from
# `git archive BENCH_BASE` (the working tree is not touched) with its own target directory.
BENCH_BASE       ?= 2e920cc
BENCH_BASE_DIR   := $(BENCH_OUT)/base
BENCH_BASE_WASM  := $(BENCH_BASE_DIR)/ai_gateway_filter.wasm
# The base's sources go outside this tree: cargo reads `.cargo/config.toml` from every parent of
# the directory it builds in, so a copy under bench/out would be built with this tree's flags
# (simd128) instead of its own.
BENCH_BASE_SRC   := $(or $(TMPDIR),/tmp)/ai-gateway-bench-base-src

.PHONY: bench bench-deps bench-wasm-opt bench-floor bench-base bench-litellm bench-micro bench-profile

bench: wasm tools venv bench-deps bench-wasm-opt bench-floor bench-base bench-litellm ## Benchmark: plain Envoy vs the filter (and the BENCH_BASE build) vs Lua vs LiteLLM (bench/RESULTS.md; not in `make test`)
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

# The previous build's .wasm (variants filter-base, filter-upstream-base): the sources of
# BENCH_BASE from `git archive` into $(BENCH_BASE_SRC) (outside this tree), built there as that commit builds
# (its own Cargo.lock, toolchain file and cargo config; RUSTFLAGS from the environment unset)
# into bench/out/base/target, copied to bench/out/base/ai_gateway_filter.wasm. bench/out/base/ref
# names the commit; a build already there for the same commit is reused.
bench-base: wasm-target ## Build the .wasm of BENCH_BASE (default 2e920cc) into bench/out/base/ for the side-by-side
	@rev=$$(git rev-parse --verify --quiet "$(BENCH_BASE)^{commit}") || { \
	  echo "BENCH_BASE=$(BENCH_BASE) is not a commit here (a shallow clone? git fetch --unshallow)" >&2; exit 1; }; \
	if [[ -f $(BENCH_BASE_WASM) && "$$(cut -d' ' -f1 $(BENCH_BASE_DIR)/ref 2>/dev/null)" == "$$rev" ]]; then \
	  echo "bench-base: $(BENCH_BASE_WASM) is the build of $$rev"; exit 0; fi; \
	rm -rf $(BENCH_BASE_SRC) $(BENCH_BASE_DIR)/ref $(BENCH_BASE_WASM); mkdir -p $(BENCH_BASE_SRC) $(BENCH_BASE_DIR); \
	git archive "$$rev" | tar -x -C $(BENCH_BASE_SRC); \
	(cd $(BENCH_BASE_SRC) && env -u RUSTFLAGS -u CARGO_ENCODED_RUSTFLAGS \
	  CARGO_TARGET_DIR=$(CURDIR)/$(BENCH_BASE_DIR)/target \
	  $(CARGO) build --release --locked --target $(WASM_TARGET) -p ai-gateway-filter --lib); \
	cp $(BENCH_BASE_DIR)/target/$(WASM_TARGET)/release/ai_gateway_filter.wasm $(BENCH_BASE_WASM); \
	echo "$$rev $$(git log -1 --format='%h %cs' "$$rev")" > $(BENCH_BASE_DIR)/ref; \
	ls -l $(BENCH_BASE_WASM); cat $(BENCH_BASE_DIR)/ref

bench-litellm: $(BENCH_VENV)/.installed ## Install LiteLLM (pinned, bench/litellm/requirements.txt) into bench/.venv

$(BENCH_VENV)/.installed: $(BENCH_DIR)/litellm/requirements.txt
	@test -x $(BENCH_VENV)/bin/python || $(PYTHON) -m venv $(BENCH_VENV)
	PIP_DISABLE_PIP_VERSION_CHECK=1 $(BENCH_VENV)/bin/pip install --quiet --requirement $<
	@touch $@

bench-micro: ## Native micro-benchmark of the hot pure functions (cargo bench: rewrite, picks, SSE scan)
	$(CARGO) bench --bench hot -- $(BENCH_ARGS)

bench-profile: wasm tools venv bench-deps bench-wasm-opt bench-floor bench-base ## Instruction counts (this build and BENCH_BASE's) and perf profile (bench/out/profile/)
	$(BENCH_PY) $(BENCH_DIR)/profile.py
	$(BENCH_PY) $(BENCH_DIR)/run.py --render-if-current
