"""What `make validate-envoy` relies on, and what it does not cover.

`make validate-envoy` runs `envoy --mode validate` on every envoy/*.yaml (a tier of
`make test`); here: that validation really runs the filter's own configuration check, and
that a refused plugin configuration keeps Envoy from starting instead of serving with a
half-understood one. Set E2E_VALIDATE_ALL=1 to also validate every shipped config here."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import json

import pytest
import yaml
from harness import (
    KEY_ENV,
    REPO,
    WASM,
    chat,
    chat_body,
    demo_plugin_config,
    envoy_validate,
    upstream_wasm_filter_configs,
    wasm_filter_config,
)

CONFIGS = sorted((REPO / "envoy").glob("*.yaml"))


def validate(path: Path) -> subprocess.CompletedProcess:
    # multi-provider.yaml reads a second provider's key and refuses to start without it.
    env = dict(os.environ, **{KEY_ENV: "sk-dummy-for-validation", "BACKUP_PROVIDER_API_KEY": "sk-dummy-for-validation"})
    return envoy_validate(path, env)


def test_envoy_configs_are_shipped():
    assert REPO / "envoy" / "demo.yaml" in CONFIGS


#: What the JSON access-log line of every shipped config carries, at least.
ACCESS_LOG_FIELDS = {
    "time": "%START_TIME%",
    "method": "%REQ(:METHOD)%",
    "status": "%RESPONSE_CODE%",
    "details": "%RESPONSE_CODE_DETAILS%",
    "flags": "%RESPONSE_FLAGS%",
    "duration_ms": "%DURATION%",
    "upstream_host": "%UPSTREAM_HOST%",
    "attempts": "%UPSTREAM_REQUEST_ATTEMPT_COUNT%",
    "ai_gateway": "%FILTER_STATE(wasm.ai_gateway:PLAIN)%",
}


def hcm_of(doc: dict) -> dict:
    (listener,) = doc["static_resources"]["listeners"]
    return listener["filter_chains"][0]["filters"][0]["typed_config"]


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_every_shipped_config_writes_one_json_access_log_line_per_request(path):
    (log,) = hcm_of(yaml.safe_load(path.read_text()))["access_log"]
    assert log["name"] == "envoy.access_loggers.file"
    assert log["typed_config"]["path"] == "/dev/stdout"
    fmt = log["typed_config"]["log_format"]["json_format"]
    assert {k: fmt.get(k) for k in ACCESS_LOG_FIELDS} == ACCESS_LOG_FIELDS
    assert "PATH" in fmt["path"]


def plugin_of(doc: dict) -> dict:
    return json.loads(wasm_filter_config(doc)["configuration"]["value"])


ROUTED = [p for p in CONFIGS if p.name != "hot-reload.yaml"]


@pytest.mark.parametrize("path", ROUTED, ids=[p.name for p in ROUTED])
def test_every_cluster_the_filter_routes_to_runs_the_filters_upstream_copy_first(path):
    """docs/failover.md#fallback: on the aggregate cluster itself, first of its upstream
    filters (before a credential injector), the same configuration and VM, holding headers;
    the route's attempt counts and per_try_idle_timeout = stream_idle_timeout_ms."""
    doc = yaml.safe_load(path.read_text())
    down = wasm_filter_config(doc)
    plugin = plugin_of(doc)
    clusters = {c["name"]: c for c in doc["static_resources"]["clusters"]}
    routed = {m.get("cluster", plugin["upstream"]["cluster"]) for m in plugin["models"]} | {plugin["upstream"]["cluster"]}
    for name in routed:
        c = clusters[name]
        assert c["cluster_type"]["name"] == "envoy.clusters.aggregate", name
        filters = c["typed_extension_protocol_options"]["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]["http_filters"]
        first = filters[0]
        assert first["name"] == "envoy.filters.http.wasm", [f["name"] for f in filters]
        up = first["typed_config"]["config"]
        assert up["root_id"] == "ai_gateway_upstream"
        assert up["allow_on_headers_stop_iteration"] is True and up["failure_policy"] == "FAIL_RELOAD"
        assert up["configuration"] == down["configuration"] and up["vm_config"] == down["vm_config"]
        assert filters[-1]["name"] == "envoy.filters.http.upstream_codec"
        # Room for the retries in flight (Envoy's default of 3 drops most fallbacks under load).
        assert any(t.get("max_retries", 3) >= 1024 for t in c["circuit_breakers"]["thresholds"]), name
    assert len(upstream_wasm_filter_configs(doc)) == len(routed)
    (vh,) = hcm_of(doc)["route_config"]["virtual_hosts"]
    assert vh["include_request_attempt_count"] is True and vh["include_attempt_count_in_response"] is True
    for route in vh["routes"]:
        assert route["route"]["retry_policy"]["per_try_idle_timeout"] == f"{plugin.get('stream_idle_timeout_ms', 60000) // 1000}s"
    assert any(m.get("fallback") for m in plugin["models"]), "a shipped config with fallback lists"


def test_a_request_through_demo_yaml_writes_one_access_log_line(mock, envoy):
    """The line of a request that fell back: Envoy's fields and the filter's decision (filter
    state wasm.ai_gateway, set in on_log, which runs before the HCM's access loggers)."""
    primary, secondary = mock("primary", "--fail-status", "503"), mock("secondary")
    gw = envoy({"mock_primary": primary, "mock_secondary": secondary})
    reply = chat(gw, chat_body("claude-sonnet-4.5"))
    assert reply.status == 200, reply
    (entry,) = gw.access_log(wait_for=1)
    # An edge listener (use_remote_address) makes its own request id.
    assert entry["request_id"] == secondary.received(reply.headers["x-mock-request-id"]).header("x-request-id")
    assert (entry["method"], entry["path"], entry["status"], entry["details"], entry["flags"]) == (
        "POST", "/v1/chat/completions", 200, "via_upstream", "-")
    assert entry["attempts"] == 2 and entry["upstream_host"] == f"127.0.0.1:{secondary.port}"
    assert isinstance(entry["duration_ms"], int)
    assert entry["ai_gateway"] == {
        "route": "_direct", "model": "gpt-4.1", "version": "1.0.0", "attempts": 2, "fallback_cause": "5xx",
        "prompt_tokens": entry["ai_gateway"]["prompt_tokens"], "completion_tokens": entry["ai_gateway"]["completion_tokens"],
        "cost_usd": entry["ai_gateway"]["cost_usd"],
    }
    assert entry["ai_gateway"]["prompt_tokens"] > 0 and entry["ai_gateway"]["cost_usd"]


@pytest.mark.skipif(not os.environ.get("E2E_VALIDATE_ALL"), reason="`make validate-envoy` does it (E2E_VALIDATE_ALL=1)")
@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_a_shipped_envoy_config_passes_envoy_validate(path):
    assert WASM.exists(), f"{WASM} missing: run `make wasm`"
    r = validate(path)
    assert r.returncode == 0, f"envoy --mode validate {path.name} → {r.returncode}\n{r.stdout[-4000:]}\n{r.stderr[-4000:]}"


def test_envoy_refuses_to_start_with_an_invalid_plugin_configuration(mock, envoy):
    """A static bootstrap whose plugin configuration `on_configure` refuses: Envoy exits with
    an error naming the plugin ("Unable to create Wasm plugin": docs/design.md#envoy-facts-the-code-depends-on)."""
    bad = demo_plugin_config()
    bad["routes"][0]["targets"][0]["model"] = "no-such-model"
    gw = envoy(mock(), bad, expect_start=False)
    assert not gw.proc.alive(), "Envoy started with a plugin configuration the filter must refuse"
    log = gw.log()
    assert "Unable to create Wasm plugin" in log or "ai_gateway" in log, log[-3000:]
    assert "no-such-model" in log or "routes[0]" in log, "the log does not say what was wrong"


def test_envoy_validate_runs_the_filters_own_config_check(tmp_path):
    """`envoy --mode validate` instantiates the plugin and calls its on_configure, so a shipped
    config with a bad plugin configuration fails `make validate-envoy`, not the deployment."""
    from harness import load_demo_yaml, set_plugin_config

    doc = load_demo_yaml()
    bad = demo_plugin_config()
    bad["routes"][0]["targets"][0]["model"] = "no-such-model"
    set_plugin_config(doc, json.dumps(bad))
    path = REPO / "target" / f"e2e-invalid-{os.getpid()}.yaml"  # relative wasm path: under the repo
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    try:
        r = validate(path)
    finally:
        path.unlink()
    assert r.returncode != 0, "envoy --mode validate accepted a plugin configuration the filter refuses"
    assert "Unable to create Wasm plugin" in r.stdout + r.stderr
