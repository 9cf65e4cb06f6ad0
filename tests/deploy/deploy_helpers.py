"""Shared helpers of tests/deploy (imported by name; the paths come from the harness package,
tests/harness)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from harness.paths import ENVOY_BIN, REPO
from harness.paths import WASM_DEFAULT as WASM

VENV_BIN = REPO / ".venv" / "bin"
AI_GATEWAY = Path(os.environ.get("AI_GATEWAY", REPO / "target" / "release" / "ai-gateway"))
SCHEMAS = Path(__file__).resolve().parent / "schemas"
DEPLOY = REPO / "deploy"
OVERLAYS = ("stable", "canary")

#: Debian package for each tool a test needs (scripts/ci/install-deploy-tools.sh installs them).
DEBIAN_PACKAGE = {
    "skopeo": "skopeo",
    "docker-registry": "docker-registry",
    "promtool": "prometheus",
    "shellcheck": "shellcheck",
    "kubectl": "kubectl (or kustomize)",
}


def tool(name: str) -> str:
    """Path of a command-line tool; skips the test, naming the package, when it is missing."""
    venv = VENV_BIN / name
    if venv.exists():
        return str(venv)
    found = shutil.which(name)
    if not found:
        pkg = DEBIAN_PACKAGE.get(name)
        hint = (
            f"apt-get install {pkg} (scripts/ci/install-deploy-tools.sh does it as root)"
            if pkg
            else "make deploy-venv"
        )
        pytest.skip(f"{name} is not installed here: {hint}")
    return found


def run(cmd, *, cwd=REPO, env=None, timeout=120, check=False, input=None) -> subprocess.CompletedProcess:
    r = subprocess.run(
        [str(c) for c in cmd],
        cwd=cwd,
        env=env,
        input=input,
        stdin=None if input is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check and r.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, cmd))} → exit {r.returncode}\n{r.stdout[-4000:]}\n{r.stderr[-4000:]}")
    return r


def kustomize_cmd() -> list[str]:
    """`kustomize build` when installed, else `kubectl kustomize` (kubectl embeds kustomize)."""
    if shutil.which("kustomize"):
        return ["kustomize", "build"]
    return [tool("kubectl"), "kustomize"]


def render(overlay: str) -> list[dict]:
    r = run([*kustomize_cmd(), DEPLOY / "overlays" / overlay], check=True)
    return [d for d in yaml.safe_load_all(r.stdout) if d]


def find(docs: list[dict], kind: str, name: str | None = None) -> dict:
    hits = [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    assert len(hits) == 1, f"expected one {kind} {name or ''}, found {len(hits)}"
    return hits[0]


def wasm_ecds_config(envoyfilter: dict) -> dict:
    """The Wasm filter config (envoy.extensions.filters.http.wasm.v3.Wasm) the EnvoyFilter ADDs."""
    patches = [p for p in envoyfilter["spec"]["configPatches"] if p["applyTo"] == "EXTENSION_CONFIG"]
    assert len(patches) == 1
    return patches[0]["patch"]["value"]


def read_env(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            k, _, v = line.partition("=")
            out[k] = v
    return out


def load_json(path: Path):
    return json.loads(Path(path).read_text())


def require_wasm() -> Path:
    assert WASM.exists(), f"{WASM} missing: run `make wasm`"
    return WASM
