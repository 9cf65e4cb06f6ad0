#!/usr/bin/env bash
# Runs each fuzz target for FUZZ_SECONDS (default 60) and prints a summary table.
#
#   fuzz/run.sh [TARGET...]          (default: every target in fuzz/Cargo.toml)
#
# The committed seeds (fuzz/corpus/<target>) are read only; what libFuzzer finds goes to
# fuzz/target/corpus/<target> (kept between runs, gitignored). A crash is saved under
# fuzz/artifacts/<target>/ and fails the run; reproduce it with
#   cargo +nightly fuzz run <target> fuzz/artifacts/<target>/<file>
# FUZZ_SANITIZER (default none: the code under test is safe Rust, so speed matters more than
# ASan) and FUZZ_JOBS (default 1) are passed to cargo fuzz. Overflow checks are on (-a).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

seconds="${FUZZ_SECONDS:-60}"
sanitizer="${FUZZ_SANITIZER:-none}"
targets=("$@")

# libFuzzer's instrumentation needs nightly flags: use a nightly toolchain when there is one,
# else the stable one with RUSTC_BOOTSTRAP=1.
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  cargo=(cargo +nightly)
else
  echo "no nightly toolchain: using stable with RUSTC_BOOTSTRAP=1"
  export RUSTC_BOOTSTRAP=1
  cargo=(cargo)
fi
command -v cargo-fuzz >/dev/null || { echo "cargo-fuzz not found (make fuzz installs it into .tools)" >&2; exit 1; }
if ((${#targets[@]} == 0)); then
  mapfile -t targets < <("${cargo[@]}" fuzz list)
fi

mkdir -p fuzz/target/fuzz-logs
echo "==> cargo fuzz build (release, debug assertions, sanitizer $sanitizer)"
if ! "${cargo[@]}" fuzz build --release --debug-assertions --sanitizer "$sanitizer" >fuzz/target/fuzz-logs/build.log 2>&1; then
  tail -n 40 fuzz/target/fuzz-logs/build.log
  exit 1
fi
summary=()
failed=()
for t in "${targets[@]}"; do
  dict=""
  case "$t" in
    body_rewrite | body_scan) dict=fuzz/dict/body.dict ;;
    usage_scanner | sse_stripper) dict=fuzz/dict/usage.dict ;;
    config) dict=fuzz/dict/config.dict ;;
  esac
  work="fuzz/target/corpus/$t"
  mkdir -p "$work" "fuzz/artifacts/$t"
  log="fuzz/target/fuzz-logs/$t.log"
  echo "==> fuzz $t for ${seconds}s (log: $log)"
  status=ok
  if ! "${cargo[@]}" fuzz run --release --debug-assertions --sanitizer "$sanitizer" "$t" "$work" "fuzz/corpus/$t" -- \
      -max_total_time="$seconds" -max_len=8192 -timeout=10 -rss_limit_mb=2048 \
      -print_final_stats=1 ${dict:+-dict=$dict} >"$log" 2>&1; then
    status=CRASH
    failed+=("$t")
    grep -E "panicked at|ERROR: libFuzzer|SUMMARY|Test unit written|^error" "$log" | head -n 8 || true
  fi
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1 || true)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1 || true)
  cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -n 1 | cut -d' ' -f2 || true)
  corpus=$(find "$work" -type f | wc -l)
  summary+=("$(printf '  %-15s %-6s %12s execs %8s/s  cov %6s  corpus %6s' "$t" "$status" "${execs:-?}" "${rate:-?}" "${cov:-?}" "$corpus")")
done
echo
echo "==> fuzz summary (${seconds}s per target, sanitizer $sanitizer)"
printf '%s\n' "${summary[@]}"
if ((${#failed[@]})); then
  echo "==> fuzz FAILED: ${failed[*]} (inputs in fuzz/artifacts/)"
  exit 1
fi
