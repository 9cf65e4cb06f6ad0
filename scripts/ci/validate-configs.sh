#!/usr/bin/env bash
# Validate every gateway configuration in the repository with the same code the filter runs:
#   scripts/ci/validate-configs.sh [FILE...]        (default: scripts/ci/list-configs.sh)
# Uses $AI_GATEWAY (default target/release/ai-gateway; `cargo build --release -p ai-gateway`).
# Prints the CLI's report; under GitHub Actions it also turns the `--format json` report into
# ::error annotations on the files. Exit status: the CLI's (0 valid, 1 invalid, 2 unreadable).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
AI_GATEWAY=${AI_GATEWAY:-target/release/ai-gateway}
if [[ ! -x $AI_GATEWAY ]]; then
  echo "validate-configs: $AI_GATEWAY not found: cargo build --release -p ai-gateway" >&2
  exit 2
fi
if (($#)); then files=("$@"); else mapfile -t files < <(scripts/ci/list-configs.sh); fi
if ((${#files[@]} == 0)); then
  echo "validate-configs: no configuration found" >&2
  exit 2
fi

echo "ai-gateway validate ${files[*]}"
status=0
"$AI_GATEWAY" validate "${files[@]}" || status=$?

if [[ ${GITHUB_ACTIONS:-} == true ]] && ((status != 0)); then
  report=$(mktemp)
  "$AI_GATEWAY" validate --format json "${files[@]}" >"$report" 2>/dev/null || true
  PYTHON=${PYTHON:-python3}
  "$PYTHON" - "$report" <<'PY' || true
import json, sys

def esc(s):
    return str(s).replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")

seen = set()

def walk(node, file=None):
    # The report's exact shape belongs to the CLI; any object naming a file and a message is
    # an annotation.
    if isinstance(node, dict):
        file = node.get("file") or node.get("path_file") or file
        msg = node.get("message") or node.get("reason") or node.get("error")
        if file and isinstance(msg, str):
            where = node.get("path") or node.get("field") or ""
            text = f"{where}: {msg}" if where and where != file else msg
            line = node.get("line")
            loc = f"file={esc(file)}" + (f",line={line}" if isinstance(line, int) else "")
            annotation = f"::error {loc},title=ai-gateway validate::{esc(text)}"
            if annotation not in seen:
                seen.add(annotation)
                print(annotation)
        for value in node.values():
            walk(value, file)
    elif isinstance(node, list):
        for value in node:
            walk(value, file)

try:
    walk(json.load(open(sys.argv[1])))
except ValueError:
    pass
PY
  rm -f "$report"
fi
exit "$status"
