#!/usr/bin/env bash
# The gateway on one machine, no key and no Docker: `make demo` (which builds what this needs).
#
# Starts the mock provider and Envoy with envoy/demo.yaml (listener 10000, admin 9901, mock
# 18080; other free ports when those are taken), sends a handful of requests with curl and
# shows what the client got and what the provider received. Stops everything on exit.
#
# With HOLYSHEEP_API_KEY set, it then also starts Envoy with envoy/holysheep.yaml and sends one
# real chat request to HolySheep AI. The local part never sees that key: its Envoy gets
# HOLYSHEEP_API_KEY=demo-key.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
ENVOY=${ENVOY:-$ROOT/.venv/bin/envoy}
MOCK=${MOCK:-$ROOT/target/release/mock-provider}
WASM=$ROOT/target/wasm32-wasip1/release/ai_gateway_filter.wasm
PY=${PYTHON:-python3}
[[ -x $ROOT/.venv/bin/python ]] && PY=$ROOT/.venv/bin/python

for f in "$ENVOY" "$MOCK" "$WASM"; do
  [[ -e $f ]] || { echo "missing $f: run \`make demo\` (it builds everything first)" >&2; exit 1; }
done
command -v curl >/dev/null || { echo "curl is needed (apt-get install curl)" >&2; exit 1; }

# Presentation, processes (started here, stopped on exit), ports.
DEMO_NAME=demo
# shellcheck source=scripts/lib/demo-common.sh
source "$ROOT/scripts/lib/demo-common.sh"

LISTEN_PORT=$(pick_port 10000)
ADMIN_PORT=$(pick_port 9901)
PRIMARY_PORT=$(pick_port 18080)
SECONDARY_PORT=$(pick_port 18081)
GW=http://127.0.0.1:$LISTEN_PORT
ADMIN=http://127.0.0.1:$ADMIN_PORT
PRIMARY=http://127.0.0.1:$PRIMARY_PORT
SECONDARY=http://127.0.0.1:$SECONDARY_PORT

printf '%sai-gateway-filter demo%s: Envoy %s + the filter + a local mock provider\n' "$B" "$N" \
  "$("$ENVOY" --version | sed -n 's/.*version: [^/]*\/\([^/]*\)\/.*/\1/p')"

# Two endpoints of one (mock) provider: envoy/demo.yaml's cluster "mock" tries the primary
# first and the secondary when the primary fails.
"$MOCK" --listen "127.0.0.1:$PRIMARY_PORT" --name primary >"$WORK/mock-primary.log" 2>&1 &
PIDS+=($!)
wait_for "$PRIMARY/__health" "" "${PIDS[-1]}" "the mock provider (primary)"
"$MOCK" --listen "127.0.0.1:$SECONDARY_PORT" --name secondary >"$WORK/mock-secondary.log" 2>&1 &
PIDS+=($!)
wait_for "$SECONDARY/__health" "" "${PIDS[-1]}" "the mock provider (secondary)"

sed -e "s/port_value: 10000\b/port_value: $LISTEN_PORT/" \
    -e "s/port_value: 9901\b/port_value: $ADMIN_PORT/" \
    -e "s/port_value: 18080\b/port_value: $PRIMARY_PORT/" \
    -e "s/port_value: 18081\b/port_value: $SECONDARY_PORT/" envoy/demo.yaml >"$WORK/demo.yaml"
for p in "$LISTEN_PORT" "$ADMIN_PORT" "$PRIMARY_PORT"; do
  grep -q "port_value: $p\b" "$WORK/demo.yaml" || { echo "could not set port $p in a copy of envoy/demo.yaml" >&2; exit 1; }
done

# A fixed fake key: a real HOLYSHEEP_API_KEY must never reach the local mock.
HOLYSHEEP_API_KEY=demo-key "$ENVOY" -c "$WORK/demo.yaml" --base-id "$ADMIN_PORT" -l warning \
  >"$WORK/envoy.log" 2>&1 &
PIDS+=($!)
wait_for "$ADMIN/ready" "LIVE" "${PIDS[-1]}" "Envoy"

say "gateway   $GW   (point any OpenAI client at $GW/v1)"
say "admin     $ADMIN   (/stats/prometheus, /config_dump)"
say "provider  $PRIMARY (primary), $SECONDARY (secondary)   (tools/mock-provider, records every request)"

# ---- helpers ------------------------------------------------------------------------------------
# post PATH BODY [curl args...]: sets STATUS, HDRS (file), BODY (file)
HDRS=$WORK/headers; RESP=$WORK/body
post() {
  local path=$1 body=$2; shift 2
  STATUS=$(curl -sS -o "$RESP" -D "$HDRS" -w '%{http_code}' -X POST "$GW$path" \
    -H 'content-type: application/json' -H 'authorization: Bearer client-secret' \
    --data-binary "$body" "$@")
}
hdr() { tr -d '\r' <"$HDRS" | awk -v h="$(tr 'A-Z' 'a-z' <<<"$1")" -F': ' 'tolower($1) == h {print $2; exit}'; }
# What the provider endpoint that served the last request recorded for it.
mock_url() { if [[ $(hdr x-mock-provider) == secondary ]]; then echo "$SECONDARY"; else echo "$PRIMARY"; fi; }
received() { curl -fsS "$(mock_url)/__requests/$(hdr x-mock-request-id)"; }
jq_py() { "$PY" -c "import json,sys; d=json.load(sys.stdin); $1"; }

# ---- 1. the split -------------------------------------------------------------------------------
step "Weighted routing: 20 requests for the alias \"chat\" (gpt-4.1 weight 90, deepseek-v3.2 weight 10)"
declare -A COUNT=()
for i in $(seq 20); do
  post /v1/chat/completions '{"model":"chat","messages":[{"role":"user","content":"Hello!"}]}'
  [[ $STATUS == 200 ]] || { bad "request $i: HTTP $STATUS $(cat "$RESP")"; continue; }
  m=$(hdr x-ai-gateway-model)
  COUNT[$m]=$(( ${COUNT[$m]:-0} + 1 ))
done
for m in $(printf '%s\n' "${!COUNT[@]}" | sort); do say "$(printf '%-16s %2d of 20  %s' "$m" "${COUNT[$m]}" "$(printf '%*s' "${COUNT[$m]}" '' | tr ' ' '#')")"; done
say "${D}(expected about 18 / 2: each request is an independent weighted pick)${N}"
((${#COUNT[@]} >= 1)) && ok "every request was served, the model chosen by the gateway (header x-ai-gateway-model)"

# ---- 2. preferred model + system prompt -----------------------------------------------------------
step "A preferred model is honoured: \"claude-sonnet-4.5\" (its system prompt is added)"
post /v1/chat/completions '{"model":"claude-sonnet-4.5","messages":[{"role":"user","content":"What is Envoy?"}],"temperature":0.2}'
say "client sent:   {\"model\":\"claude-sonnet-4.5\",\"messages\":[{\"role\":\"user\",...}],\"temperature\":0.2}"
say "client got:    HTTP $STATUS  x-ai-gateway-model: $(hdr x-ai-gateway-model)  x-ai-gateway-version: $(hdr x-ai-gateway-version)  x-ai-gateway-route: $(hdr x-ai-gateway-route)"
say "provider received (GET $(mock_url)/__requests/$(hdr x-mock-request-id)):"
received | jq_py 'print(json.dumps(json.loads(d["body"]), indent=2, ensure_ascii=False))' | indent
if received | jq_py 'b=json.loads(d["body"]); sys.exit(0 if b["messages"][0]["role"]=="system" else 1)'; then
  ok "served by claude-sonnet-4.5, with its system prompt as the first message"
else bad "the system prompt is not the first message"; fi

# ---- 3. sticky ---------------------------------------------------------------------------------------
step "Sticky routing: user alice (header x-user-id) sends 5 requests for \"chat\""
picks=()
for i in $(seq 5); do
  post /v1/chat/completions '{"model":"chat","messages":[{"role":"user","content":"again"}]}' -H 'x-user-id: alice'
  picks+=("$(hdr x-ai-gateway-model)")
done
say "alice got: ${picks[*]}"
if [[ $(printf '%s\n' "${picks[@]}" | sort -u | wc -l) == 1 ]]; then ok "the same model every time"; else bad "alice moved between models"; fi

# ---- 4. unknown model ----------------------------------------------------------------------------------
step "An unknown model is refused (unknown_models: reject)"
post /v1/chat/completions '{"model":"gpt-9","messages":[{"role":"user","content":"hi"}]}'
say "HTTP $STATUS"; pretty <"$RESP" | indent
[[ $STATUS == 400 ]] && grep -q model_not_found "$RESP" && ok "400 model_not_found, OpenAI-style" || bad "expected 400 model_not_found"

# ---- 5. not JSON -------------------------------------------------------------------------------------
step "A body that is not JSON"
post /v1/chat/completions 'model=chat&prompt=hi'
say "HTTP $STATUS"; pretty <"$RESP" | indent
[[ $STATUS == 400 ]] && grep -q invalid_request "$RESP" && ok "400 invalid_request, OpenAI-style" || bad "expected 400 invalid_request"

# ---- 6. /v1/models --------------------------------------------------------------------------------------
step "GET /v1/models, answered by the gateway itself"
STATUS=$(curl -sS -o "$RESP" -D "$HDRS" -w '%{http_code}' "$GW/v1/models")
say "HTTP $STATUS"
jq_py 'print("\n".join("  %-20s owned_by %s" % (m["id"], m["owned_by"]) for m in d["data"]))' <"$RESP" | indent
[[ $STATUS == 200 && -z $(hdr x-mock-request-id) ]] && ok "routes and models, without a call to the provider" || bad "unexpected /v1/models answer"

# ---- 7. key injection -------------------------------------------------------------------------------------
step "Key injection: the client sends 'authorization: Bearer client-secret'"
post /v1/chat/completions '{"model":"chat","messages":[{"role":"user","content":"hi"}]}'
auth=$(received | jq_py 'print("; ".join(v for k, v in d["headers"] if k == "authorization"))')
say "the provider received: authorization: $auth"
[[ $auth == "Bearer demo-key" ]] && ok "the gateway's key replaced the client's (the client never holds the provider key)" \
  || bad "expected 'Bearer demo-key'"

# ---- 8. failover between endpoints ---------------------------------------------------------------
step "Failover between endpoints: the primary answers 503 for gpt-4.1"
curl -fsS -X POST "$PRIMARY/__control" -d '{"fail_models":{"gpt-4.1":503}}' >/dev/null
before=$(curl -fsS "$PRIMARY/__requests" | jq_py 'print(d["last_id"])')
post /v1/chat/completions '{"model":"gpt-4.1","messages":[{"role":"user","content":"are you there?"}]}'
after=$(curl -fsS "$PRIMARY/__requests" | jq_py 'print(d["last_id"])')
curl -fsS -X DELETE "$PRIMARY/__control" >/dev/null
say "the primary was tried $((after - before)) time(s) and failed; the client got HTTP $STATUS from: $(hdr x-mock-provider)"
[[ $STATUS == 200 && $(hdr x-mock-provider) == secondary ]] \
  && ok "Envoy retried on the secondary endpoint with the same rewritten request (docs/failover.md#between-endpoints-the-envoy-knobs)" \
  || bad "expected a 200 from the secondary"

# ---- 9. a failing model: fallback to the next model inside the same request --------------------
step "A failing model: claude-sonnet-4.5 answers 503 on both endpoints (its fallback list: gpt-4.1)"
for url in "$PRIMARY" "$SECONDARY"; do
  curl -fsS -X POST "$url/__control" -d '{"fail_models":{"claude-sonnet-4.5":503}}' >/dev/null
done
post /v1/chat/completions '{"model":"claude-sonnet-4.5","messages":[{"role":"user","content":"still there?"}]}'
say "client sent:   {\"model\":\"claude-sonnet-4.5\",...}"
say "client got:    HTTP $STATUS  x-ai-gateway-model: $(hdr x-ai-gateway-model)  x-ai-gateway-version: $(hdr x-ai-gateway-version)  x-ai-gateway-attempts: $(hdr x-ai-gateway-attempts)"
say "provider received model: $(received | jq_py 'print(json.loads(d["body"])["model"])')  (at the $(hdr x-mock-provider))"
say "why (admin /stats/prometheus):"
FALLBACK_LINE=$(curl -fsS "$ADMIN/stats/prometheus" | grep '^ai_gateway_fallbacks_total{' || true)
if [[ -n $FALLBACK_LINE ]]; then indent <<<"$FALLBACK_LINE"; else say "  (no ai_gateway_fallbacks_total line)"; fi
for url in "$PRIMARY" "$SECONDARY"; do curl -fsS -X POST "$url/__control" -d '{}' >/dev/null; done
if [[ $STATUS == 200 && $(hdr x-ai-gateway-model) == gpt-4.1 ]] \
   && grep -q 'from_model="claude-sonnet-4.5",to_model="gpt-4.1",cause="5xx"' <<<"$FALLBACK_LINE"; then
  ok "the client got 200 from gpt-4.1: the failed attempt was retried on the next model of claude-sonnet-4.5's fallback list (docs/failover.md#fallback)"
else bad "expected a 200 from gpt-4.1 and an ai_gateway_fallbacks_total line with cause=\"5xx\""; fi
say "${D}(healed: both endpoints answer claude-sonnet-4.5 again)${N}"

# ---- 10. metrics ---------------------------------------------------------------------------------------------
step "Metrics (Envoy admin /stats/prometheus, first lines of ai_gateway_*)"
curl -fsS "$ADMIN/stats/prometheus" | grep '^ai_gateway_' | grep -v '_bucket' | head -n 12 | indent || say "(no ai_gateway_* metrics yet)"

# ---- 11. the real provider -------------------------------------------------------------------------------------
step "The real provider (HolySheep AI) with envoy/holysheep.yaml"
if [[ -z ${HOLYSHEEP_API_KEY:-} ]]; then
  say "skipped: HOLYSHEEP_API_KEY is not set. Set it to your key and run \`make demo\` again to send"
  say "one real chat request through the gateway to https://api.holysheep.ai/v1."
elif [[ ! -f envoy/holysheep.yaml ]]; then
  say "skipped: envoy/holysheep.yaml is not there"
else
  RL_PORT=$(pick_port 10001); RA_PORT=$(pick_port 9902)
  "$PY" - "$RL_PORT" "$RA_PORT" >"$WORK/holysheep.yaml" <<'PYEOF'
import sys, yaml
listen, admin = int(sys.argv[1]), int(sys.argv[2])
doc = yaml.safe_load(open("envoy/holysheep.yaml"))
doc["admin"]["address"]["socket_address"]["port_value"] = admin
for l in doc["static_resources"]["listeners"]:
    l["address"]["socket_address"]["port_value"] = listen
    break
print(yaml.safe_dump(doc, sort_keys=False))
PYEOF
  "$ENVOY" -c "$WORK/holysheep.yaml" --base-id "$RA_PORT" -l warning >"$WORK/envoy-holysheep.log" 2>&1 &
  PIDS+=($!)
  wait_for "http://127.0.0.1:$RA_PORT/ready" "LIVE" "${PIDS[-1]}" "Envoy (holysheep.yaml)"
  MODEL=$("$PY" - <<'PYEOF'
import json, yaml
doc = yaml.safe_load(open("envoy/holysheep.yaml"))
def walk(x):
    if isinstance(x, dict):
        if x.get("name") == "envoy.filters.http.wasm":
            yield x
        for v in x.values(): yield from walk(v)
    elif isinstance(x, list):
        for v in x: yield from walk(v)
cfg = json.loads(next(walk(doc))["typed_config"]["config"]["configuration"]["value"])
print((cfg.get("routes") or [{}])[0].get("name") or cfg["models"][0]["name"])
PYEOF
)
  GW=http://127.0.0.1:$RL_PORT
  post /v1/chat/completions "{\"model\":\"$MODEL\",\"messages\":[{\"role\":\"user\",\"content\":\"Say hello in five words.\"}],\"max_tokens\":32}" --max-time 60
  say "model \"$MODEL\" → HTTP $STATUS, served by $(hdr x-ai-gateway-model) $(hdr x-ai-gateway-version)"
  if [[ $STATUS == 200 ]]; then
    jq_py 'print("answer: " + d["choices"][0]["message"]["content"].strip())' <"$RESP" | indent
    ok "a real completion through the gateway"
  else
    pretty <"$RESP" | head -n 20 | indent
    bad "the real provider did not answer 200"
  fi
fi

echo
if ((FAILURES)); then
  printf '%s%d check(s) did not show what they should.%s Logs: see above.\n' "$R" "$FAILURES" "$N"
  exit 1
fi
printf '%sDone.%s Everything was stopped; run `make demo` again any time.\n' "$B" "$N"
