# Shared by scripts/demo.sh and scripts/rollout-demo.sh (sourced, not run): how the demos
# print, and how they start, find ports for and stop their processes.
# Expects PY (a python3) and DEMO_NAME (names the temporary work folder) to be set.

# ---- presentation ---------------------------------------------------------------------------
if [[ -t 1 ]]; then B=$'\e[1m'; G=$'\e[32m'; Y=$'\e[33m'; R=$'\e[31m'; D=$'\e[2m'; N=$'\e[0m'
else B=; G=; Y=; R=; D=; N=; fi
STEP=0
step() { STEP=$((STEP + 1)); printf '\n%s%d. %s%s\n' "$B" "$STEP" "$*" "$N"; }
say() { printf '   %s\n' "$*"; }
ok() { printf '   %s✓%s %s\n' "$G" "$N" "$*"; }
bad() { printf '   %s✗%s %s\n' "$R" "$N" "$*"; FAILURES=$((FAILURES + 1)); }
FAILURES=0
indent() { sed 's/^/     /'; }
pretty() { "$PY" -c 'import json,sys; print(json.dumps(json.load(sys.stdin), indent=2, ensure_ascii=False))' 2>/dev/null || cat; }

# ---- processes: started here, stopped here ----------------------------------------------------
WORK=$(mktemp -d "${TMPDIR:-/tmp}/ai-gateway-${DEMO_NAME:-demo}.XXXXXX")
PIDS=()
cleanup() {
  local rc=$?
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  done
  if ((rc != 0 && rc != 130 && rc != 143)); then
    echo
    for log in "$WORK"/*.log; do
      [[ -e $log ]] || continue
      printf '%s--- last 40 lines of %s ---%s\n' "$D" "$(basename "$log")" "$N"
      tail -n 40 "$log"
    done
  fi
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# A port is free when a server could listen on it (SO_REUSEADDR, as servers do: connections
# of an earlier run in TIME_WAIT don't make it busy; a listener does).
port_free() { "$PY" -c 'import socket,sys; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen()' "$1" 2>/dev/null; }
any_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
pick_port() { if port_free "$1"; then echo "$1"; else any_port; fi; }

wait_for() { # URL EXPECTED-BODY-OR-EMPTY PID WHAT
  local url=$1 want=$2 pid=$3 what=$4 body
  for _ in $(seq 300); do
    kill -0 "$pid" 2>/dev/null || { echo "$what exited during start-up" >&2; return 1; }
    if body=$(curl -fsS --max-time 1 "$url" 2>/dev/null); then
      [[ -z $want || $body == "$want"* ]] && return 0
    fi
    sleep 0.1
  done
  echo "$what not ready after 30 s" >&2
  return 1
}

