#!/usr/bin/env bash
# The canary roll-out of a model on the Istio deployment (CI's deploy job; runnable by hand
# with a kubeconfig):
#
#   scripts/ci/canary.sh deploy   --route R --canary MODEL@VERSION --weight N [--wait S] [--prometheus URL]
#   scripts/ci/canary.sh analyze  --route R --canary MODEL@VERSION [--prometheus URL]
#   scripts/ci/canary.sh rollback --route R --canary MODEL@VERSION
#
# deploy:   `ai-gateway canary set-weight` on deploy/overlays/canary/plugin-config.json,
#           `ai-gateway validate`, `kubectl apply -k deploy/overlays/canary`, wait S seconds
#           (default 600) for traffic, then analyze.
# analyze:  `ai-gateway canary analyze --prometheus URL` and act on its verdict:
#             exit 0  promote:  `ai-gateway canary promote` on the canary config, which becomes
#                               deploy/base/plugin-config.json (and envoy/holysheep.yaml, via
#                               sync-deploy.py --to-envoy); `kubectl apply -k deploy/overlays/stable`
#             exit 10 hold:     too little evidence; the canary keeps its weight; run analyze later
#             exit 20 rollback, or any other status (the analysis could not judge): roll back
# rollback: `ai-gateway canary rollback` on the canary config (the canary's weight goes to 0),
#           `kubectl apply -k deploy/overlays/stable` (the last promoted configuration).
#
# Without --prometheus (or $PROMETHEUS_URL), the cluster's Prometheus is reached through
# `kubectl port-forward -n $PROMETHEUS_NAMESPACE svc/$PROMETHEUS_SERVICE` (default
# monitoring / prometheus-operated, port 9090).
# Writes `verdict=promote|hold|rollback` to $GITHUB_OUTPUT and a summary to $GITHUB_STEP_SUMMARY
# when those are set. Exit status: 0 promoted or held, 1 rolled back, 2 usage or tool error.
# Tools: $AI_GATEWAY (default target/release/ai-gateway), $KUBECTL (default kubectl).
set -euo pipefail
cd "${REPO_ROOT:-$(dirname "${BASH_SOURCE[0]}")/../..}"

AI_GATEWAY=${AI_GATEWAY:-target/release/ai-gateway}
KUBECTL=${KUBECTL:-kubectl}
CANARY_CONFIG=deploy/overlays/canary/plugin-config.json
BASE_CONFIG=deploy/base/plugin-config.json
PY=${PYTHON:-python3}
[[ -x .venv/bin/python ]] && PY=.venv/bin/python

usage() { sed -n '2,30s/^# \{0,1\}//p' "${BASH_SOURCE[0]}" >&2; exit 2; }
log() { printf '==> %s\n' "$*"; }
run() { printf '+ %s\n' "$*"; "$@"; }
summary() { [[ -z ${GITHUB_STEP_SUMMARY:-} ]] || printf '%s\n' "$*" >>"$GITHUB_STEP_SUMMARY"; }
output() { [[ -z ${GITHUB_OUTPUT:-} ]] || printf '%s\n' "$*" >>"$GITHUB_OUTPUT"; }

(($# >= 1)) || usage
cmd=$1
shift
route='' canary='' weight='' wait_s=600 prometheus=${PROMETHEUS_URL:-}
while (($#)); do
  case $1 in
    --route) route=${2:?}; shift 2 ;;
    --canary) canary=${2:?}; shift 2 ;;
    --weight) weight=${2:?}; shift 2 ;;
    --wait) wait_s=${2:?}; shift 2 ;;
    --prometheus) prometheus=${2:?}; shift 2 ;;
    -h | --help) usage ;;
    *) echo "canary.sh: unknown argument $1" >&2; usage ;;
  esac
done
[[ -n $route && -n $canary ]] || { echo "canary.sh: --route and --canary are required" >&2; usage; }
[[ $canary == *@* ]] || { echo "canary.sh: --canary takes MODEL@VERSION, got $canary" >&2; exit 2; }
[[ -x $AI_GATEWAY ]] || { echo "canary.sh: $AI_GATEWAY not found: cargo build --release -p ai-gateway" >&2; exit 2; }

pf_pid=''
cleanup() { [[ -z $pf_pid ]] || kill "$pf_pid" 2>/dev/null || true; }
trap cleanup EXIT

prometheus_url() {
  if [[ -n $prometheus ]]; then echo "$prometheus"; return; fi
  local ns=${PROMETHEUS_NAMESPACE:-monitoring} svc=${PROMETHEUS_SERVICE:-prometheus-operated}
  local port=${PROMETHEUS_LOCAL_PORT:-19090}
  "$KUBECTL" -n "$ns" port-forward "svc/$svc" "$port:9090" >&2 &
  pf_pid=$!
  for _ in $(seq 1 30); do
    if curl -fsS -o /dev/null "http://127.0.0.1:$port/-/ready" 2>/dev/null; then break; fi
    sleep 1
  done
  echo "http://127.0.0.1:$port"
}

rollback() {
  log "rollback: $canary on route $route"
  run "$AI_GATEWAY" canary rollback "$CANARY_CONFIG" --route "$route" --canary "$canary"
  run "$KUBECTL" apply -k deploy/overlays/stable
  output "verdict=rollback"
  summary "### Canary \`$canary\` on route \`$route\`: **rolled back**" "" \
    "The stable configuration (deploy/base/plugin-config.json) is live again."
}

promote() {
  log "promote: $canary on route $route"
  run "$AI_GATEWAY" canary promote "$CANARY_CONFIG" --route "$route" --canary "$canary"
  run "$AI_GATEWAY" validate "$CANARY_CONFIG"
  cp "$CANARY_CONFIG" "$BASE_CONFIG"
  run "$PY" scripts/ci/sync-deploy.py --to-envoy
  run "$KUBECTL" apply -k deploy/overlays/stable
  output "verdict=promote"
  summary "### Canary \`$canary\` on route \`$route\`: **promoted**" "" \
    "deploy/base/plugin-config.json and envoy/holysheep.yaml now carry the promoted configuration: commit them."
}

analyze() {
  local url status=0
  url=$(prometheus_url)
  log "analyze: $canary on route $route against $url"
  run "$AI_GATEWAY" canary analyze --prometheus "$url" --route "$route" --canary "$canary" || status=$?
  case $status in
    0) promote ;;
    10)
      log "hold: not enough evidence yet; the canary keeps its weight"
      output "verdict=hold"
      summary "### Canary \`$canary\` on route \`$route\`: **hold**" "" "Too little traffic to judge: run the analysis again later."
      ;;
    20) rollback; return 1 ;;
    *)
      echo "canary.sh: the analysis failed (exit $status): rolling back, a canary is never promoted unjudged" >&2
      rollback
      return 1
      ;;
  esac
}

case $cmd in
  deploy)
    [[ $weight =~ ^[0-9]+$ ]] || { echo "canary.sh: deploy needs --weight N (an integer)" >&2; exit 2; }
    log "canary: $canary at weight $weight on route $route"
    run "$AI_GATEWAY" canary set-weight "$CANARY_CONFIG" --route "$route" --target "$canary" --weight "$weight"
    run "$AI_GATEWAY" validate "$CANARY_CONFIG"
    run "$KUBECTL" apply -k deploy/overlays/canary
    log "waiting ${wait_s}s for canary traffic"
    sleep "$wait_s"
    analyze || exit 1
    ;;
  analyze) analyze || exit 1 ;;
  rollback) rollback ;;
  *) echo "canary.sh: unknown command $cmd" >&2; usage ;;
esac
