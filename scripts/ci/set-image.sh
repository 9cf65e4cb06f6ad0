#!/usr/bin/env bash
# Point the Istio deployment at a published plugin image:
#   scripts/ci/set-image.sh oci://REGISTRY/REPO:TAG sha256:MANIFEST_DIGEST
# Rewrites deploy/base/image.env (kustomize copies it into the EnvoyFilter) and regenerates the
# WasmPlugin variant. The digest is the image *manifest* digest (what `make oci` prints as
# manifest_digest and what the registry returns): Istio compares that, not the .wasm's sha256.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
url=${1:?usage: set-image.sh oci://REGISTRY/REPO:TAG sha256:DIGEST}
digest=${2:?usage: set-image.sh oci://REGISTRY/REPO:TAG sha256:DIGEST}
digest=${digest#sha256:}
[[ $url =~ ^oci://[a-z0-9.:-]+/[a-z0-9._/-]+(:[A-Za-z0-9_.-]+|@sha256:[0-9a-f]{64})$ ]] ||
  { echo "set-image: not an oci:// image reference with a tag or digest: $url" >&2; exit 2; }
[[ $digest =~ ^[0-9a-f]{64}$ ]] || { echo "set-image: not a sha256 digest: $2" >&2; exit 2; }
env=deploy/base/image.env
tmp=$(mktemp)
grep -v -E '^(WASM_URL|WASM_SHA256)=' "$env" >"$tmp" || true
printf 'WASM_URL=%s\nWASM_SHA256=%s\n' "$url" "$digest" >>"$tmp"
mv "$tmp" "$env"
PY=${PYTHON:-python3}
[[ -x .venv/bin/python ]] && PY=.venv/bin/python
"$PY" scripts/ci/sync-deploy.py >/dev/null
echo "deploy: $url (manifest sha256:$digest)"
