#!/usr/bin/env python3
"""Keep the files derived from envoy/*.yaml in step with them (`make deploy-sync`).

Derived files (never edit them by hand; `--check` fails when one is stale):
  deploy/base/plugin-config.json      the plugin configuration of envoy/holysheep.yaml, with the
                                      Envoy cluster name mapped to Istio's cluster for the
                                      ServiceEntry and the key mode mapped to Istio's (compared
                                      as JSON, not as text): holysheep.yaml injects the key
                                      upstream (credential_injector on its cluster), the Istio
                                      gateway has no such filter and lets the filter set it from
                                      HOLYSHEEP_API_KEY ("key_injection": "filter", the default)
  deploy/base/custom_bootstrap.json   stats_config (stats_tags, histogram buckets) of
                                      envoy/holysheep.yaml: the metric labels on Istio too
  deploy/istio-wasmplugin/wasmplugin.yaml   the WasmPlugin variant, from the two files above
                                      and deploy/base/image.env
  envoy/compose.yaml                  envoy/demo.yaml for docker-compose (0.0.0.0, the mock
                                      provider by its service name)
  deploy/overlays/canary/plugin-config.json   created (as a copy of the base) only when missing:
                                      it is the canary's own file, edited by `ai-gateway canary`

  sync-deploy.py            write every derived file
  sync-deploy.py --check    exit 1 naming each stale file (tests/deploy runs this)
  sync-deploy.py --to-envoy write deploy/base/plugin-config.json back into envoy/holysheep.yaml
                            (after a promotion: the Envoy and the Istio config stay one config),
                            then every derived file
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
HOLYSHEEP = REPO / "envoy" / "holysheep.yaml"
DEMO = REPO / "envoy" / "demo.yaml"
COMPOSE_ENVOY = REPO / "envoy" / "compose.yaml"
BASE_CONFIG = REPO / "deploy" / "base" / "plugin-config.json"
CANARY_CONFIG = REPO / "deploy" / "overlays" / "canary" / "plugin-config.json"
BOOTSTRAP = REPO / "deploy" / "base" / "custom_bootstrap.json"
IMAGE_ENV = REPO / "deploy" / "base" / "image.env"
WASMPLUGIN = REPO / "deploy" / "istio-wasmplugin" / "wasmplugin.yaml"

ENVOY_CLUSTER = "holysheep"
# Who sets the key: envoy/holysheep.yaml's cluster (credential_injector), Istio's filter.
ENVOY_KEY = {"key_injection": "upstream"}
ISTIO_KEY = {"api_key_env": "HOLYSHEEP_API_KEY"}
# Istio names the cluster of a ServiceEntry port "outbound|PORT||HOST" (deploy/base/provider.yaml).
ISTIO_CLUSTER = "outbound|80||api.holysheep.ai"
WASM_FILTER = "envoy.filters.http.wasm"
COMPOSE_MOCK = ("mock-provider", 8080)


def wasm_filters(envoy_config: dict):
    """Every envoy.filters.http.wasm filter config (the typed_config.config dict) of a bootstrap."""
    for listener in envoy_config.get("static_resources", {}).get("listeners", []):
        for chain in listener.get("filter_chains", []):
            for f in chain.get("filters", []):
                for hf in f.get("typed_config", {}).get("http_filters", []):
                    if hf.get("name") == WASM_FILTER:
                        yield hf["typed_config"]["config"]


def plugin_config_of(envoy_path: Path) -> dict:
    configs = [json.loads(c["configuration"]["value"]) for c in wasm_filters(yaml.safe_load(envoy_path.read_text()))]
    if len(configs) != 1:
        sys.exit(f"{envoy_path}: expected one {WASM_FILTER} filter, found {len(configs)}")
    return configs[0]


def map_clusters(config: dict, old: str, new: str) -> dict:
    config = copy.deepcopy(config)
    upstream = config.get("upstream") or {}
    if upstream.get("cluster", old) == old:
        upstream["cluster"] = new
        config["upstream"] = upstream
    for model in config.get("models", []):
        if model.get("cluster") == old:
            model["cluster"] = new
    return config


def map_key_mode(config: dict, old: dict, new: dict) -> dict:
    """Replace the `upstream` members `old` by `new` (in place of the first of them, so the
    members keep their order); a config without `old` is left as it is."""
    upstream = config.get("upstream") or {}
    if any(upstream.get(k) != v for k, v in old.items()):
        return config
    config = copy.deepcopy(config)
    out = {}
    for k, v in config["upstream"].items():
        if k in old:
            out.update({n: nv for n, nv in new.items() if n not in out})
        else:
            out[k] = v
    config["upstream"] = out
    return config


def dump_json(obj) -> str:
    return json.dumps(obj, indent=2, ensure_ascii=False) + "\n"


def derived_base_config() -> dict:
    return map_key_mode(map_clusters(plugin_config_of(HOLYSHEEP), ENVOY_CLUSTER, ISTIO_CLUSTER), ENVOY_KEY, ISTIO_KEY)


def derived_bootstrap() -> str:
    stats = yaml.safe_load(HOLYSHEEP.read_text()).get("stats_config") or {}
    keep = {k: stats[k] for k in ("stats_tags", "histogram_bucket_settings") if k in stats}
    return dump_json({"stats_config": keep})


def read_env(path: Path) -> dict:
    env = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            env[key.strip()] = value.strip()
    return env


WASMPLUGIN_HEADER = """\
# GENERATED by scripts/ci/sync-deploy.py from deploy/base/plugin-config.json and image.env:
# run `make deploy-sync`, don't edit.
#
# The filter as an Istio WasmPlugin. NOT applied by the overlays, and do not apply it next to
# deploy/base/envoyfilter.yaml (the filter would run twice). WasmPlugin cannot set the Wasm
# PluginConfig field allow_on_headers_stop_iteration, without which this filter's requests
# hang (it holds the headers until it has read the body). Use this manifest only with an Istio
# whose WasmPlugin gains that setting, or for a filter build that doesn't hold headers.
# Equivalent to the EnvoyFilter: same image and digest, same plugin configuration (as YAML),
# FAIL_RELOAD, and the key read from the proxy's environment (valueFrom: HOST; the
# istio-proxy container gets it from the holysheep-api-key Secret, see deploy/base/gateway.yaml).
"""


def derived_wasmplugin(base_config: dict) -> str:
    image = read_env(IMAGE_ENV)
    doc = {
        "apiVersion": "extensions.istio.io/v1alpha1",
        "kind": "WasmPlugin",
        "metadata": {
            "name": "ai-gateway",
            "namespace": "ai-gateway",
            "labels": {"app.kubernetes.io/name": "ai-gateway", "app.kubernetes.io/part-of": "ai-gateway-filter"},
        },
        "spec": {
            "selector": {"matchLabels": {"istio": "ai-gateway"}},
            "url": image["WASM_URL"],
            "sha256": image["WASM_SHA256"],
            "imagePullPolicy": "IfNotPresent",
            "pluginName": "ai_gateway",
            "phase": "STATS",
            "failStrategy": "FAIL_RELOAD",
            "type": "HTTP",
            "vmConfig": {"env": [{"name": "HOLYSHEEP_API_KEY", "valueFrom": "HOST"}]},
            "pluginConfig": base_config,
        },
    }
    return WASMPLUGIN_HEADER + yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=100)


COMPOSE_HEADER = """\
# GENERATED by scripts/ci/sync-deploy.py from envoy/demo.yaml: run `make deploy-sync`, don't edit.
#
# envoy/demo.yaml for docker-compose.yml: the listener and admin on 0.0.0.0 inside the
# container (published on the host's 127.0.0.1 only), every upstream cluster sent to the mock
# provider's service (mock-provider:8080, resolved by Docker's DNS). The .wasm path stays
# relative: the container runs Envoy from / with the .wasm mounted at the same relative path.
#
#   listener  http://127.0.0.1:10000/v1     admin  http://127.0.0.1:9901
"""


class _NoAliases(yaml.SafeDumper):
    """Writes a node shared through YAML anchors (demo.yaml's configuration and vm_config, used
    by the filter and by its upstream copy) in full at each use: no generated &id001."""

    def ignore_aliases(self, data) -> bool:
        return True


def derived_compose_envoy() -> str:
    d = yaml.safe_load(DEMO.read_text())
    d["admin"]["address"]["socket_address"]["address"] = "0.0.0.0"
    for listener in d["static_resources"].get("listeners", []):
        sa = listener.get("address", {}).get("socket_address")
        if sa:
            sa["address"] = "0.0.0.0"
    for cluster in d["static_resources"].get("clusters", []):
        touched = False
        for group in cluster.get("load_assignment", {}).get("endpoints", []):
            for ep in group.get("lb_endpoints", []):
                sa = ep.get("endpoint", {}).get("address", {}).get("socket_address")
                if sa and sa.get("address") in ("127.0.0.1", "localhost"):
                    sa["address"], sa["port_value"] = COMPOSE_MOCK
                    touched = True
        if touched:
            cluster["type"] = "STRICT_DNS"
            cluster["dns_lookup_family"] = "V4_ONLY"
    return COMPOSE_HEADER + yaml.dump(d, Dumper=_NoAliases, sort_keys=False, allow_unicode=True, width=100)


def to_envoy() -> None:
    """Write the base plugin configuration into envoy/holysheep.yaml's StringValue, in place."""
    config = map_key_mode(map_clusters(json.loads(BASE_CONFIG.read_text()), ISTIO_CLUSTER, ENVOY_CLUSTER), ISTIO_KEY, ENVOY_KEY)
    text = HOLYSHEEP.read_text()
    lines = text.splitlines(keepends=True)
    starts = [i for i, l in enumerate(lines) if re.match(r"^\s*value: \|\s*$", l) and "StringValue" in lines[i - 1]]
    if len(starts) != 1:
        sys.exit(f"{HOLYSHEEP}: expected one `value: |` block after a StringValue @type, found {len(starts)}")
    start = starts[0]
    key_indent = len(lines[start]) - len(lines[start].lstrip())
    end = start + 1
    while end < len(lines) and (not lines[end].strip() or len(lines[end]) - len(lines[end].lstrip()) > key_indent):
        end += 1
    block_indent = " " * (key_indent + 2)
    body = "".join(block_indent + l + "\n" for l in json.dumps(config, indent=2, ensure_ascii=False).splitlines())
    HOLYSHEEP.write_text("".join(lines[: start + 1]) + body + "".join(lines[end:]))
    if plugin_config_of(HOLYSHEEP) != config:
        sys.exit(f"{HOLYSHEEP}: the rewritten configuration does not read back")
    print(f"wrote the plugin configuration of {BASE_CONFIG.relative_to(REPO)} into {HOLYSHEEP.relative_to(REPO)}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="fail on stale derived files, write nothing")
    ap.add_argument("--to-envoy", action="store_true", help="copy the base plugin config into envoy/holysheep.yaml")
    args = ap.parse_args()
    if args.to_envoy:
        to_envoy()  # then regenerate what derives from the new base config (the WasmPlugin)

    base = derived_base_config()
    stale = []
    if not BASE_CONFIG.exists() or json.loads(BASE_CONFIG.read_text()) != base:
        stale.append((BASE_CONFIG, dump_json(base)))
    for path, text in (
        (BOOTSTRAP, derived_bootstrap()),
        (WASMPLUGIN, derived_wasmplugin(base)),
        (COMPOSE_ENVOY, derived_compose_envoy()),
    ):
        if not path.exists() or path.read_text() != text:
            stale.append((path, text))
    if args.check:
        if not CANARY_CONFIG.exists():
            stale.append((CANARY_CONFIG, None))
        for path, _ in stale:
            print(f"stale: {path.relative_to(REPO)}", file=sys.stderr)
        if stale:
            print(
                "derived deploy files are out of date: run `make deploy-sync` (when the Envoy config\n"
                "changed) or `scripts/ci/sync-deploy.py --to-envoy` (when deploy/base/plugin-config.json\n"
                "was promoted) and commit the result",
                file=sys.stderr,
            )
            return 1
        print("derived deploy files are up to date")
        return 0
    for path, text in stale:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"wrote {path.relative_to(REPO)}")
    if not CANARY_CONFIG.exists():
        CANARY_CONFIG.write_text(BASE_CONFIG.read_text())
        print(f"wrote {CANARY_CONFIG.relative_to(REPO)} (a copy of the base)")
    if not stale:
        print("derived deploy files are up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
