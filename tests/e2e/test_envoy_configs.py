"""What `make validate-envoy` relies on, and what it does not cover.

`make validate-envoy` runs `envoy --mode validate` on every envoy/*.yaml (a tier of
`make test`); here: that validation really runs the filter's own configuration check, and
that a refused plugin configuration keeps Envoy from starting instead of serving with a
half-understood one. Set E2E_VALIDATE_ALL=1 to also validate every shipped config here."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from harness import KEY_ENV, REPO, WASM, demo_plugin_config, envoy_validate

CONFIGS = sorted((REPO / "envoy").glob("*.yaml"))


def validate(path: Path) -> subprocess.CompletedProcess:
    # multi-provider.yaml reads a second provider's key and refuses to start without it.
    env = dict(os.environ, **{KEY_ENV: "sk-dummy-for-validation", "BACKUP_PROVIDER_API_KEY": "sk-dummy-for-validation"})
    return envoy_validate(path, env)


def test_envoy_configs_are_shipped():
    assert REPO / "envoy" / "demo.yaml" in CONFIGS


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
    import json

    import yaml
    from harness import load_demo_yaml, wasm_filter_config

    doc = load_demo_yaml()
    bad = demo_plugin_config()
    bad["routes"][0]["targets"][0]["model"] = "no-such-model"
    wasm_filter_config(doc)["configuration"]["value"] = json.dumps(bad)
    path = REPO / "target" / f"e2e-invalid-{os.getpid()}.yaml"  # relative wasm path: under the repo
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    try:
        r = validate(path)
    finally:
        path.unlink()
    assert r.returncode != 0, "envoy --mode validate accepted a plugin configuration the filter refuses"
    assert "Unable to create Wasm plugin" in r.stdout + r.stderr
