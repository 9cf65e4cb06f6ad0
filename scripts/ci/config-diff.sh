#!/usr/bin/env bash
# What a change does to traffic, as Markdown for the pull request's job summary:
#   scripts/ci/config-diff.sh BASE_REF [HEAD_REF]     (HEAD_REF default: the work tree)
# For every gateway configuration (scripts/ci/list-configs.sh) that differs between BASE_REF
# and HEAD_REF: `ai-gateway diff OLD NEW --format markdown` (per route: shares before → after,
# versions added / removed). A configuration added or removed is said so. Prints nothing but a
# one-line note when no configuration changed. Uses $AI_GATEWAY (default target/release/ai-gateway).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
BASE=${1:?usage: config-diff.sh BASE_REF [HEAD_REF]}
HEAD=${2:-}
AI_GATEWAY=${AI_GATEWAY:-target/release/ai-gateway}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if [[ -n $HEAD ]]; then
  changed=$(git diff --name-only "$BASE" "$HEAD" --)
else
  changed=$(git diff --name-only "$BASE" --)
fi
# Configurations now in the tree, plus configurations that BASE had (removed ones).
mapfile -t configs < <({ scripts/ci/list-configs.sh; git ls-tree -r --name-only "$BASE" -- envoy deploy config examples 2>/dev/null |
  grep -E '^(envoy/.*\.yaml|deploy/.*plugin-config\.json|deploy/istio-wasmplugin/[^/]+\.yaml|(config|examples)/.*\.(json|ya?ml))$' || true; } | LC_ALL=C sort -u)

echo "## Gateway configuration changes"
echo
n=0
for f in "${configs[@]}"; do
  grep -qxF -- "$f" <<<"$changed" || continue
  n=$((n + 1))
  # git-style names (a/FILE, b/FILE), so that the CLI's report names the real file.
  old=$tmp/a/$f new=$tmp/b/$f
  mkdir -p "$(dirname "$old")" "$(dirname "$new")"
  had_old=0 has_new=0
  git show "$BASE:$f" >"$old" 2>/dev/null && had_old=1
  if [[ -n $HEAD ]]; then git show "$HEAD:$f" >"$new" 2>/dev/null && has_new=1; else [[ -f $f ]] && cp "$f" "$new" && has_new=1; fi
  echo "### \`$f\`"
  echo
  if ((!had_old)); then
    echo "New configuration."
  elif ((!has_new)); then
    echo "Configuration removed."
  elif [[ ! -x $AI_GATEWAY ]]; then
    echo "_\`ai-gateway\` not built: no traffic diff._"
  else
    cli=$AI_GATEWAY
    [[ $cli == /* ]] || cli=$PWD/$cli
    (cd "$tmp" && "$cli" diff "a/$f" "b/$f" --format markdown) || echo "_\`ai-gateway diff\` failed (exit $?): see the job log._"
  fi
  echo
done
((n > 0)) || echo "No gateway configuration changed."
