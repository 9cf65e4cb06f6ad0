"""A real Prometheus (Debian package ``prometheus``) scraping Envoy admin ``/stats/prometheus``
every second on loopback (:func:`start_prometheus`), and its HTTP API (:class:`Prometheus`).

Finding the binary is the caller's choice: :func:`ensure_prometheus` installs it with apt-get
when missing and root (as CI runs), else skips the test; test_prometheus.py skips without
installing (``PROMETHEUS_BIN`` overrides)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from .processes import START_TIMEOUT_S, Proc, free_port

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"


def ensure_prometheus() -> str:
    """The Debian ``prometheus`` binary; installed with apt-get when missing and root (as CI
    runs), else the test is skipped saying why."""
    global PROMETHEUS
    if shutil.which("prometheus"):
        PROMETHEUS = shutil.which("prometheus")
        return PROMETHEUS
    if os.geteuid() != 0:
        pytest.skip("prometheus is not installed (Debian package `prometheus`; not root, so not installing it)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "prometheus"]):
        r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
        if r.returncode != 0:
            pytest.skip(f"could not install prometheus ({' '.join(cmd)}: {r.stderr[-500:]})")
    found = shutil.which("prometheus")
    if not found:
        pytest.skip("apt-get installed prometheus but there is no prometheus binary on PATH")
    PROMETHEUS = found
    return found


class Prometheus:
    """A running Prometheus: ``url``, its :class:`Proc`, and its HTTP API."""

    def __init__(self, proc: Proc, url: str):
        self.proc = proc
        self.url = url

    def api(self, path: str, **params) -> Any:
        """``GET path?params``: the ``data`` of a successful answer."""
        r = requests.get(self.url + path, params=params, timeout=30)
        doc = r.json()
        assert r.status_code == 200 and doc.get("status") == "success", f"{path} {params}: {r.status_code} {doc}"
        return doc["data"]

    def query(self, expr: str, at: float | None = None) -> list[dict]:
        """An instant query (now, or at the Unix time ``at``): the result vector."""
        params = {"query": expr} if at is None else {"query": expr, "time": f"{at:.3f}"}
        data = self.api("/api/v1/query", **params)
        assert data["resultType"] == "vector", (expr, data)
        return data["result"]

    def value(self, expr: str, at: float, **labels: str) -> float:
        """The value of the one result whose labels include ``labels``."""
        rows = [r for r in self.query(expr, at) if labels.items() <= r["metric"].items()]
        assert len(rows) == 1, f"{expr} at {at} {labels}: {rows}"
        return float(rows[0]["value"][1])

    def first_value(self, expr: str) -> float | None:
        """The value of the first result of ``expr`` now, or None when there is none."""
        res = self.query(expr)
        return float(res[0]["value"][1]) if res else None

    def by(self, expr: str, at: float, label: str) -> dict[str, float]:
        return {r["metric"].get(label, ""): float(r["value"][1]) for r in self.query(expr, at)}

    def wait_scraped(self, timeout: float = 20.0) -> None:
        """Until Prometheus has scraped its target successfully (``up{job="envoy"}`` is 1)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            res = self.query('up{job="envoy"}')
            if res and res[0]["value"][1] == "1":
                return
            time.sleep(0.2)
        self.proc.fail("never scraped Envoy successfully")


def start_prometheus(
    workdir: Path,
    targets: list[str],
    rule_files: Iterable[Path] = (),
    binary: str | None = None,
    procs: list | None = None,
) -> Prometheus:
    """A real Prometheus scraping ``targets`` (``host:port`` of Envoy admins, job ``envoy``)
    every second, with ``rule_files`` loaded, on a loopback port that was free a moment ago
    (Prometheus cannot report a port 0 bind: tried again on another port when it was taken).
    ``binary``: default :func:`ensure_prometheus`. ``procs``: a list its :class:`Proc` is
    appended to (a Launcher's, to stop it)."""
    binary = binary or ensure_prometheus()
    cfg = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(p) for p in rule_files],
        "scrape_configs": [
            {"job_name": "envoy", "metrics_path": "/stats/prometheus", "static_configs": [{"targets": targets}]}
        ],
    }
    path = workdir / "prometheus.yml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    for attempt in range(3):
        port = free_port()
        argv = [
            binary,
            f"--config.file={path}",
            f"--storage.tsdb.path={workdir / f'tsdb-{time.monotonic_ns()}'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ]
        proc = Proc("prometheus", argv, workdir / f"prometheus-{port}.log")
        if procs is not None:
            procs.append(proc)
        prom = Prometheus(proc, f"http://127.0.0.1:{port}")
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline and proc.alive():
            try:
                if requests.get(prom.url + "/-/ready", timeout=1).status_code == 200:
                    return prom
            except requests.RequestException:
                pass
            time.sleep(0.1)
        if proc.alive():
            proc.fail(f"not ready after {START_TIMEOUT_S:.0f} s")
        if "address already in use" not in proc.log_tail():
            proc.fail(f"exited with code {proc.popen.returncode}")
        proc.stop()
    raise AssertionError("no free port for Prometheus after 3 attempts")

