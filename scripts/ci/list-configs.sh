#!/usr/bin/env bash
# Every gateway configuration in the repository, one path a line (relative to the root):
# the Envoy configs (envoy/**/*.yaml: bootstraps, and the ECDS / LDS files they watch), the plugin configurations of the Istio stages and the
# WasmPlugin variant (deploy/**), and any plugin config kept under config/ or examples/.
# `ai-gateway validate` checks each (scripts/ci/validate-configs.sh); CI diffs the changed ones.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
{
  find envoy -type f -name '*.yaml' 2>/dev/null || true
  find deploy -type f -name 'plugin-config.json' 2>/dev/null || true
  ls deploy/istio-wasmplugin/*.yaml 2>/dev/null || true
  find config examples -type f \( -name '*.json' -o -name '*.yaml' -o -name '*.yml' \) 2>/dev/null || true
} | LC_ALL=C sort -u
