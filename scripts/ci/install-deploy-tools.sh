#!/usr/bin/env bash
# The Debian tools the deploy tier uses, installed when missing (as root: .ci/run, CI runners):
#   skopeo           copies the OCI image to and from a registry
#   docker-registry  a local registry on 127.0.0.1 for that test
#   prometheus       for promtool (checks the compose Prometheus config); its service is never
#                    started: the install runs under a policy-rc.d that forbids service starts
#   ShellCheck       lints scripts/ci/*.sh and the shell in the workflows (actionlint uses it)
# Not root and something missing: says so and exits 0; the tests that need it skip by name.
set -euo pipefail
declare -A pkg=([skopeo]=skopeo [docker-registry]=docker-registry [promtool]=prometheus [shellcheck]=shellcheck)
need=()
for tool in "${!pkg[@]}"; do
  command -v "$tool" >/dev/null 2>&1 || need+=("${pkg[$tool]}")
done
((${#need[@]})) || exit 0
mapfile -t need < <(printf '%s\n' "${need[@]}" | sort -u)
if [[ $(id -u) -ne 0 ]]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO=(sudo -n)
  else
    echo "install-deploy-tools: missing ${need[*]} and not root: the tests that need them will skip" >&2
    exit 0
  fi
else
  SUDO=()
fi
# docker-registry and prometheus ship services that Debian starts on install (a registry on
# :5000, Prometheus on :9090). The tests start their own on free loopback ports: forbid service
# starts for the duration of the install unless a policy-rc.d already decides.
policy=/usr/sbin/policy-rc.d
if [[ ! -e $policy ]]; then
  printf '#!/bin/sh\n# temporary: scripts/ci/install-deploy-tools.sh\nexit 101\n' | "${SUDO[@]}" tee "$policy" >/dev/null
  "${SUDO[@]}" chmod 755 "$policy"
  trap '"${SUDO[@]}" rm -f "$policy"' EXIT
fi
echo "==> apt-get install ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -qq
"${SUDO[@]}" apt-get install -y --no-install-recommends "${need[@]}"
