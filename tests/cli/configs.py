"""Configuration texts for the CLI tests: one plugin configuration, and the envelopes it
travels in (Envoy bootstrap, LDS and ECDS resource files, Istio WasmPlugin and EnvoyFilter)."""

from __future__ import annotations

import json
import textwrap

#: A valid plugin configuration: a 90/10 canary on route `chat`, both targets priced.
GOOD = {
    "models": [
        {"name": "gpt-4.1", "version": "1.0.0", "max_tokens": 4096},
        {"name": "deepseek-v3.2", "version": "2.0.0-canary.1"},
    ],
    "routes": [
        {
            "name": "chat",
            "targets": [
                {"model": "gpt-4.1", "weight": 90},
                {"model": "deepseek-v3.2", "weight": 10},
            ],
        }
    ],
    "default_route": "chat",
    "prices": {
        "gpt-4.1": {"input": 2.0, "output": 8.0},
        "deepseek-v3.2": {"input": 0.28, "output": 0.42},
    },
}

#: The same, as an operator would keep it in Git: YAML with comments.
GOOD_YAML = """\
# The chat canary: deepseek at 10 %.
models:
  - name: gpt-4.1          # stable
    version: 1.0.0
    max_tokens: 4096
  - name: deepseek-v3.2
    version: 2.0.0-canary.1
routes:
  - name: chat
    targets:
      - { model: gpt-4.1, weight: 90 }
      - { model: deepseek-v3.2, weight: 10 }   # the canary
default_route: chat
prices:
  gpt-4.1: { input: 2.00, output: 8.00 }
  deepseek-v3.2: { input: 0.28, output: 0.42 }
"""


def pretty(cfg: dict | str) -> str:
    return cfg if isinstance(cfg, str) else json.dumps(cfg, indent=2)


def block(text: str, indent: int) -> str:
    return textwrap.indent(text, " " * indent)


def wasm_config(cfg: dict | str, indent: int, extra: str = "") -> str:
    """The `config` of a Wasm filter with `cfg` as its StringValue, as YAML at `indent`."""
    text = f"""\
config:
  name: ai_gateway
  root_id: ai_gateway
  allow_on_headers_stop_iteration: true
  failure_policy: FAIL_RELOAD
  configuration:
    "@type": type.googleapis.com/google.protobuf.StringValue
    value: |
{block(pretty(cfg), 6)}
  vm_config:
    vm_id: ai_gateway
    runtime: envoy.wasm.runtime.v8
    code: {{ local: {{ filename: ai_gateway_filter.wasm }} }}
    environment_variables:
      host_env_keys: [HOLYSHEEP_API_KEY]
{extra}"""
    return block(text, indent)


def envoy_bootstrap(cfg: dict | str, extra: str = "") -> str:
    return f"""\
admin:
  address: {{ socket_address: {{ address: 127.0.0.1, port_value: 9901 }} }}
static_resources:
  listeners:
  - name: gateway
    address: {{ socket_address: {{ address: 127.0.0.1, port_value: 10000 }} }}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: gateway
          route_config: {{ name: r, virtual_hosts: [] }}
          http_filters:
          - name: envoy.filters.http.wasm
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
{wasm_config(cfg, 14, extra)}
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
"""


def lds(cfg: dict | str) -> str:
    return f"""\
resources:
- "@type": type.googleapis.com/envoy.config.listener.v3.Listener
  name: gateway
  filter_chains:
  - filters:
    - name: envoy.filters.network.http_connection_manager
      typed_config:
        "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
        stat_prefix: gateway
        http_filters:
        - name: envoy.filters.http.wasm
          typed_config:
            "@type": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
{wasm_config(cfg, 12)}
"""


def ecds(cfg: dict | str) -> str:
    return f"""\
# the filter's configuration, discovered from this file
resources:
- "@type": type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig
  name: ai_gateway
  typed_config:
    "@type": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
{wasm_config(cfg, 4)}
"""


def wasmplugin(plugin_yaml: str, env: str = "    - name: HOLYSHEEP_API_KEY\n      valueFrom: HOST\n") -> str:
    return f"""\
apiVersion: extensions.istio.io/v1alpha1
kind: WasmPlugin
metadata:
  name: ai-gateway
spec:
  url: oci://registry.example/ai-gateway-filter:1.0.0
  vmConfig:
    env:
{env}  pluginConfig:
{block(plugin_yaml, 4)}"""


def envoyfilter(cfg: dict | str) -> str:
    return f"""\
apiVersion: networking.istio.io/v1alpha3
kind: EnvoyFilter
metadata:
  name: ai-gateway-wasm
spec:
  configPatches:
  - applyTo: HTTP_FILTER
    patch:
      operation: INSERT_BEFORE
      value:
        name: envoy.filters.http.wasm
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
{wasm_config(cfg, 10)}"""


NAMESPACE = """\
apiVersion: v1
kind: Namespace
metadata:
  name: ai-gateway
"""
