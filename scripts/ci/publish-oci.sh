#!/usr/bin/env bash
# Push the image built by `make oci` to a registry and print what the deployment needs:
#   scripts/ci/publish-oci.sh REGISTRY/REPOSITORY TAG [TAG...]
# e.g. scripts/ci/publish-oci.sh ghcr.io/acme/ai-gateway-filter 1.2.0 sha-0123abc
# Credentials: skopeo's usual auth file (`skopeo login`, done by the workflow), or
# REGISTRY_USER / REGISTRY_PASSWORD. SKOPEO_TLS_VERIFY=false for a plain-HTTP test registry.
# Prints key=value lines (url, digest, wasm_sha256), also appended to $GITHUB_OUTPUT when set.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
repo=${1:?usage: publish-oci.sh REGISTRY/REPOSITORY TAG [TAG...]}
shift
(($#)) || { echo "publish-oci.sh: at least one TAG" >&2; exit 2; }
layout=${OCI_LAYOUT:-target/oci/ai-gateway-filter}
summary=$layout.json
[[ -f $summary ]] || { echo "publish-oci.sh: $summary missing: run \`make oci\`" >&2; exit 2; }
PY=${PYTHON:-python3}
field() { "$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$summary" "$1"; }
src_tag=$(field tag)
digest=$(field manifest_digest)
wasm_sha=$(field wasm_sha256)

args=(--dest-tls-verify="${SKOPEO_TLS_VERIFY:-true}")
[[ -z ${REGISTRY_USER:-} ]] || args+=(--dest-creds "$REGISTRY_USER:${REGISTRY_PASSWORD:-}")
pol=()
[[ -z ${SKOPEO_POLICY:-} ]] || pol=(--policy "$SKOPEO_POLICY")
for tag in "$@"; do
  echo "+ skopeo copy oci:$layout:$src_tag docker://$repo:$tag" >&2
  skopeo "${pol[@]}" copy --preserve-digests "${args[@]}" "oci:$layout:$src_tag" "docker://$repo:$tag" >&2
done
# The registry must hold the manifest byte for byte: its digest is what Istio verifies.
remote=$(skopeo "${pol[@]}" inspect --raw --tls-verify="${SKOPEO_TLS_VERIFY:-true}" \
  ${REGISTRY_USER:+--creds "$REGISTRY_USER:${REGISTRY_PASSWORD:-}"} "docker://$repo:$1" | sha256sum | cut -d' ' -f1)
if [[ sha256:$remote != "$digest" ]]; then
  echo "publish-oci.sh: the registry serves manifest sha256:$remote, built $digest" >&2
  exit 1
fi
out=("url=oci://$repo:$1" "digest=$digest" "wasm_sha256=$wasm_sha")
printf '%s\n' "${out[@]}"
[[ -z ${GITHUB_OUTPUT:-} ]] || printf '%s\n' "${out[@]}" >>"$GITHUB_OUTPUT"
