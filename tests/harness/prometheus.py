"""A real Prometheus (Debian package ``prometheus``) scraping an Envoy's admin
``/stats/prometheus`` every second on loopback, and its HTTP query API."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import requests
import yaml

from .envoy import Gateway
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
    def __init__(self, proc: Proc, url: str):
        self.proc = proc
        self.url = url

    def query(self, q: str) -> list:
        r = requests.get(f"{self.url}/api/v1/query", params={"query": q}, timeout=10)
        r.raise_for_status()
        doc = r.json()
        assert doc["status"] == "success", doc
        return doc["data"]["result"]

    def value(self, q: str) -> float | None:
        res = self.query(q)
        return float(res[0]["value"][1]) if res else None

    def wait_scraped(self, gw: Gateway, timeout: float = 20.0) -> None:
        """Until Prometheus has scraped the gateway's current counters (two scrapes after now)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            res = self.query('up{job="envoy"}')
            if res and res[0]["value"][1] == "1":
                return
            time.sleep(0.2)
        self.proc.fail("never scraped Envoy successfully")


def start_prometheus(workdir: Path, gw: Gateway, procs: list | None = None) -> Prometheus:
    """A real Prometheus (1 s scrape interval) scraping Envoy's admin ``/stats/prometheus``."""
    ensure_prometheus()
    admin = gw.admin_url.removeprefix("http://")
    cfg = workdir / "prometheus.yml"
    cfg.write_text(
        yaml.safe_dump(
            {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "scrape_configs": [
                    {"job_name": "envoy", "metrics_path": "/stats/prometheus", "static_configs": [{"targets": [admin]}]}
                ],
            }
        )
    )
    data = workdir / f"prometheus-data-{time.monotonic_ns()}"
    for _attempt in range(5):
        port = free_port()
        argv = [
            PROMETHEUS, f"--config.file={cfg}", f"--storage.tsdb.path={data}",
            f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn",
        ]  # fmt: skip
        proc = Proc("prometheus", argv, workdir / f"prometheus-{port}.log")
        if procs is not None:
            procs.append(proc)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline and proc.alive():
            try:
                if requests.get(f"{url}/-/ready", timeout=1).status_code == 200:
                    prom = Prometheus(proc, url)
                    prom.wait_scraped(gw)
                    return prom
            except requests.RequestException:
                pass
            time.sleep(0.1)
        if proc.alive():
            proc.fail("not ready")
        proc.stop()  # the port was taken in between: try another
    raise AssertionError("prometheus did not start")
