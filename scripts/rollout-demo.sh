#!/usr/bin/env bash
# The canary part of `make demo`: a model roll-out as configuration changes in a running Envoy.
#
# Starts the mock provider and Envoy with envoy/hot-reload.yaml (the filter's configuration
# comes from a watched file, ECDS), then rolls deepseek-v3.2@2.0.0-canary.1 out on the route
# "chat": 10 % → 50 % → 100 % and back (rollback), each step one `ai-gateway canary` command
# that edits the weight in the file in place and renames it over the old one. After each step
# it sends 200 requests and prints the split it observed. Envoy is never restarted; requests
# that fail are counted (there should be none). Stops everything on exit.
#
# Needs: target/release/ai-gateway, target/release/mock-provider, the .wasm, .venv/bin/envoy
# (`make rollout-demo` builds them). Works on a copy of envoy/hot-reload/: the repository's
# file is not touched.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
ENVOY=${ENVOY:-$ROOT/.venv/bin/envoy}
MOCK=${MOCK:-$ROOT/target/release/mock-provider}
AG=${AI_GATEWAY:-$ROOT/target/release/ai-gateway}
WASM=$ROOT/target/wasm32-wasip1/release/ai_gateway_filter.wasm
PY=${PYTHON:-python3}
[[ -x $ROOT/.venv/bin/python ]] && PY=$ROOT/.venv/bin/python
REQUESTS=${ROLLOUT_DEMO_REQUESTS:-200}

for f in "$ENVOY" "$MOCK" "$AG" "$WASM"; do
  [[ -e $f ]] || { echo "missing $f: run \`make rollout-demo\` (it builds everything first)" >&2; exit 1; }
done
command -v curl >/dev/null || { echo "curl is needed (apt-get install curl)" >&2; exit 1; }

# Presentation, processes (started here, stopped on exit), ports.
DEMO_NAME=rollout
# shellcheck source=scripts/lib/demo-common.sh
source "$ROOT/scripts/lib/demo-common.sh"

LISTEN_PORT=$(pick_port 10010)
ADMIN_PORT=$(pick_port 9911)
MOCK_PORT=$(pick_port 18090)
GW=http://127.0.0.1:$LISTEN_PORT
ADMIN=http://127.0.0.1:$ADMIN_PORT

"$MOCK" --listen "127.0.0.1:$MOCK_PORT" --name mock --threads 2 >"$WORK/mock.log" 2>&1 &
PIDS+=($!)
wait_for "http://127.0.0.1:$MOCK_PORT/__health" "" "${PIDS[-1]}" "the mock provider"

# A copy of the watched directory, and the bootstrap pointed at it (and at the free ports).
cp -r envoy/hot-reload "$WORK/hot-reload"
CONFIG=$WORK/hot-reload/ai_gateway.yaml
sed -i "s|target/wasm32-wasip1/release/ai_gateway_filter.wasm|$WASM|" "$CONFIG"
sed -e "s/port_value: 10000\b/port_value: $LISTEN_PORT/" \
    -e "s/port_value: 9901\b/port_value: $ADMIN_PORT/" \
    -e "s/port_value: 18080\b/port_value: $MOCK_PORT/" \
    -e "s|path: envoy/hot-reload/ai_gateway.yaml|path: $CONFIG|" \
    -e "s|watched_directory: { path: envoy/hot-reload }|watched_directory: { path: $WORK/hot-reload }|" \
    envoy/hot-reload.yaml >"$WORK/hot-reload.yaml"
grep -q "path: $CONFIG" "$WORK/hot-reload.yaml" || { echo "could not point the bootstrap at $CONFIG" >&2; exit 1; }

HOLYSHEEP_API_KEY=demo-key "$ENVOY" -c "$WORK/hot-reload.yaml" --base-id "$ADMIN_PORT" -l warning \
  >"$WORK/envoy.log" 2>&1 &
ENVOY_PID=$!
PIDS+=("$ENVOY_PID")
wait_for "$ADMIN/ready" "LIVE" "$ENVOY_PID" "Envoy"

printf '%sai-gateway roll-out demo%s: a canary in a running Envoy, one config change per step\n' "$B" "$N"
say "gateway $GW   admin $ADMIN   (Envoy pid $ENVOY_PID, never restarted)"
say "config  ${CONFIG#"$WORK/"} (a copy of envoy/hot-reload/ai_gateway.yaml), watched by Envoy"

CANARY=deepseek-v3.2@2.0.0-canary.1
STABLE=gpt-4.1@1.0.0
stat() { curl -fsS "$ADMIN/stats?filter=extension_config_discovery.http_filter.ai_gateway.$1\$" | awk '{print $2}'; }
TOTAL_FAILED=0

# observe: REQUESTS requests for "chat" over keep-alive connections; prints the split.
observe() {
  local out
  out=$("$PY" - "$GW" "$REQUESTS" <<'PY'
import collections, http.client, json, sys, urllib.parse
url, n = urllib.parse.urlparse(sys.argv[1]), int(sys.argv[2])
body = json.dumps({"model": "chat", "messages": [{"role": "user", "content": "Hello!"}]})
conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
seen, failed = collections.Counter(), 0
for _ in range(n):
    try:
        conn.request("POST", "/v1/chat/completions", body, {"content-type": "application/json"})
        r = conn.getresponse()
        r.read()
        if r.status == 200:
            seen[f"{r.getheader('x-ai-gateway-model')}@{r.getheader('x-ai-gateway-version')}"] += 1
        else:
            failed += 1
    except OSError:
        failed += 1
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
for model in ("gpt-4.1@1.0.0", "deepseek-v3.2@2.0.0-canary.1"):
    k = seen.get(model, 0)
    print(f"{model:<30} {k:>4} of {n}  {100 * k / n:5.1f} %  " + "#" * round(40 * k / n))
print(f"FAILED {failed}")
PY
)
  local failed
  failed=$(sed -n 's/^FAILED //p' <<<"$out")
  TOTAL_FAILED=$((TOTAL_FAILED + failed))
  grep -v '^FAILED' <<<"$out" | sed 's/^/     /'
  OBSERVED_CANARY=$(awk -v m="$CANARY" '$1 == m {print $2}' <<<"$out")
  ((failed == 0)) && ok "$REQUESTS requests, none failed" || bad "$failed of $REQUESTS requests failed"
}

# change ARGS...: one `ai-gateway canary` command on the live file; waits for Envoy to apply it.
change() {
  local before after
  before=$(stat config_reload)
  printf '   %s$ ai-gateway canary %s%s\n' "$D" "$*" "$N"
  "$AG" canary "$1" "$CONFIG" "${@:2}" | sed 's/^/     /'
  for _ in $(seq 100); do
    after=$(stat config_reload)
    ((after > before)) && break
    sleep 0.05
  done
  ((after > before)) && say "Envoy applied it (extension_config_discovery…config_reload $before → $after)" \
    || bad "Envoy did not reload the configuration"
}

step "The shipped configuration: the canary $CANARY at 10 %"
"$AG" validate "$CONFIG" 2>/dev/null | sed 's/^/     /'
observe
[[ ${OBSERVED_CANARY:-0} -lt $((REQUESTS / 4)) ]] && ok "about 10 % to the canary" || bad "expected about 10 % to the canary"

step "Canary at 50 %: both targets weight 50"
change set-weight --route chat --target "$STABLE" --weight 50
change set-weight --route chat --target "$CANARY" --weight 50
observe
c=${OBSERVED_CANARY:-0}
((c > REQUESTS * 35 / 100 && c < REQUESTS * 65 / 100)) && ok "about half to the canary" || bad "expected about half to the canary"

step "Promote: the canary gets 100, the stable target 0 (kept, drained)"
change promote --route chat --canary "$CANARY"
observe
[[ ${OBSERVED_CANARY:-0} == "$REQUESTS" ]] && ok "everything to the canary" || bad "expected everything on the canary"

step "An invalid change is refused before it reaches Envoy"
printf '   %s$ ai-gateway canary set-weight … --target %s --weight 0%s\n' "$D" "$CANARY" "$N"
if "$AG" canary set-weight "$CONFIG" --route chat --target "$CANARY" --weight 0 2>&1 | sed 's/^/     /'; then :; fi
say "(Envoy too refuses what the filter refuses: extension_config_discovery…update_rejected,"
say " and the last good configuration keeps serving — tests/e2e/test_rollout.py)"

step "Rollback: the canary's weight goes back to the stable target"
change rollback --route chat --canary "$CANARY"
observe
[[ ${OBSERVED_CANARY:-0} == 0 ]] && ok "nothing to the canary" || bad "expected nothing on the canary"

echo
say "Envoy pid $ENVOY_PID served every step without a restart; failed requests in total: $TOTAL_FAILED"
if ((FAILURES)); then
  printf '%s%d check(s) did not show what they should.%s\n' "$R" "$FAILURES" "$N"
  exit 1
fi
printf '%sDone.%s Everything was stopped.\n' "$B" "$N"
