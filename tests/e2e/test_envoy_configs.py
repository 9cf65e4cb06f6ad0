"""Every shipped Envoy config (envoy/*.yaml) passes `envoy --mode validate` with the filter's
.wasm loaded (validation instantiates the plugin), and a refused plugin configuration keeps
Envoy from starting instead of serving with a half-understood one."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from conftest import ENVOY_BIN, KEY_ENV, REPO, WASM, demo_plugin_config

CONFIGS = sorted((REPO / "envoy").glob("*.yaml"))


def validate(path: Path) -> subprocess.CompletedProcess:
    # multi-provider.yaml reads a second provider's key and refuses to start without it.
    env = dict(os.environ, **{KEY_ENV: "sk-dummy-for-validation", "BACKUP_PROVIDER_API_KEY": "sk-dummy-for-validation"})
    return subprocess.run(
        [str(ENVOY_BIN), "--mode", "validate", "-c", str(path.relative_to(REPO)), "-l", "warning"],
        cwd=REPO,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_envoy_configs_are_shipped():
    assert REPO / "envoy" / "demo.yaml" in CONFIGS


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_a_shipped_envoy_config_passes_envoy_validate(path):
    assert WASM.exists(), f"{WASM} missing: run `make wasm`"
    r = validate(path)
    assert r.returncode == 0, f"envoy --mode validate {path.name} → {r.returncode}\n{r.stdout[-4000:]}\n{r.stderr[-4000:]}"


def test_envoy_refuses_to_start_with_an_invalid_plugin_configuration(mock, envoy):
    """A static bootstrap whose plugin configuration `on_configure` refuses: Envoy exits with
    an error naming the plugin (ENVOY-NOTES: "Unable to create Wasm plugin")."""
    bad = demo_plugin_config()
    bad["routes"][0]["targets"][0]["model"] = "no-such-model"
    gw = envoy(mock(), bad, expect_start=False)
    assert not gw.proc.alive(), "Envoy started with a plugin configuration the filter must refuse"
    log = gw.log()
    assert "Unable to create Wasm plugin" in log or "ai_gateway" in log, log[-3000:]
    assert "no-such-model" in log or "routes[0]" in log, "the log does not say what was wrong"
