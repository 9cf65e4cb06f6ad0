"""Helpers for the roll-out tests (test_rollout.py): Envoy with ``envoy/hot-reload.yaml`` (the
wasm filter's configuration from a watched ECDS file), the ``ai-gateway`` CLI, a bounded
concurrent load on loopback that records what served every request, and a real Prometheus
scraping Envoy.

Everything binds loopback ports the processes pick (or that were free a moment ago, for
Prometheus, which cannot report a port 0 bind), and every process runs in its own process
group through conftest's :class:`Proc`, so a failing test gets its logs and nothing outlives it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
import yaml
from conftest import (
    ENVOY_BIN,
    KEY_ENV,
    REPO,
    START_TIMEOUT_S,
    TEST_KEY,
    WASM,
    Gateway,
    Mock,
    Proc,
    free_port,
    wait_until_live,
)

HOT_BOOTSTRAP = REPO / "envoy" / "hot-reload.yaml"
HOT_DIR = REPO / "envoy" / "hot-reload"
ECDS_NAME = "ai_gateway.yaml"
#: Envoy's ECDS stats for the filter named ai_gateway in the listener's http_filters.
ECDS_STATS = "extension_config_discovery.http_filter.ai_gateway."
AI_GATEWAY_BIN = Path(os.environ.get("AI_GATEWAY_BIN", REPO / "target" / "release" / "ai-gateway"))


# --------------------------------------------------------------------------------------------
# The CLI
# --------------------------------------------------------------------------------------------


def ensure_cli() -> Path:
    """The ai-gateway binary (``cargo build --release -p ai-gateway`` when it is not there)."""
    if "AI_GATEWAY_BIN" not in os.environ:
        r = subprocess.run(
            ["cargo", "build", "--release", "-p", "ai-gateway"], cwd=REPO, capture_output=True, text=True
        )
        if r.returncode != 0:
            pytest.fail(f"cargo build --release -p ai-gateway failed:\n{r.stderr[-3000:]}", pytrace=False)
    if not AI_GATEWAY_BIN.exists():
        pytest.fail(f"{AI_GATEWAY_BIN} missing", pytrace=False)
    return AI_GATEWAY_BIN


def cli(*args: str | Path, check: bool = True, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run ``ai-gateway ARGS`` (from the repository root); ``check``: exit 0 expected."""
    r = subprocess.run(
        [str(AI_GATEWAY_BIN), *map(str, args)], cwd=REPO, capture_output=True, text=True, timeout=120, env=env
    )
    if check and r.returncode != 0:
        raise AssertionError(f"ai-gateway {' '.join(map(str, args))} → {r.returncode}\n{r.stdout}\n{r.stderr}")
    return r


# --------------------------------------------------------------------------------------------
# Envoy with envoy/hot-reload.yaml
# --------------------------------------------------------------------------------------------


def replace_atomically(path: Path, text: str) -> None:
    """What an operator's tool does: a temporary file in the same directory, renamed over."""
    tmp = path.with_name(f".{path.name}.test-{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


class HotGateway(Gateway):
    """A running Envoy whose filter configuration is the watched file :attr:`ecds`."""

    ecds: Path

    def ecds_stats(self) -> dict[str, int]:
        """``extension_config_discovery.http_filter.ai_gateway.*`` without the prefix."""
        return {k[len(ECDS_STATS) :]: v for k, v in self.stats().items() if k.startswith(ECDS_STATS)}

    def wait_ecds(self, stat: str, at_least: int, timeout: float = 10.0) -> dict[str, int]:
        deadline = time.monotonic() + timeout
        while True:
            s = self.ecds_stats()
            if s.get(stat, 0) >= at_least:
                return s
            if time.monotonic() > deadline:
                raise AssertionError(f"{ECDS_STATS}{stat} did not reach {at_least} in {timeout}s: {s}")
            time.sleep(0.05)


def start_hot_envoy(
    workdir: Path,
    mock: Mock,
    ecds_text: str | None = None,
    concurrency: int = 2,
    procs: list | None = None,
) -> HotGateway:
    """Envoy with envoy/hot-reload.yaml as shipped, but: ports 0 (the listener's port is read
    from admin), the mock's port, and a copy of envoy/hot-reload/ in ``workdir`` as the watched
    directory (``ecds_text`` replaces its ai_gateway.yaml). The copy keeps the shipped text
    byte for byte (the CLI edits it in place) except the .wasm path when AI_GATEWAY_WASM is set."""
    if not ENVOY_BIN.exists():
        pytest.fail(f"{ENVOY_BIN} missing: run `make venv` (or `make e2e`)", pytrace=False)
    if not WASM.exists():
        pytest.fail(f"{WASM} missing: run `make wasm` (or `make e2e`)", pytrace=False)
    hot = workdir / "hot-reload"
    if hot.exists():
        shutil.rmtree(hot)
    shutil.copytree(HOT_DIR, hot)
    ecds = hot / ECDS_NAME
    text = ecds_text if ecds_text is not None else ecds.read_text()
    text = text.replace("target/wasm32-wasip1/release/ai_gateway_filter.wasm", str(WASM))
    ecds.write_text(text)

    doc = yaml.safe_load(HOT_BOOTSTRAP.read_text())
    doc["admin"]["address"]["socket_address"]["port_value"] = 0
    listener = doc["static_resources"]["listeners"][0]
    listener["address"]["socket_address"]["port_value"] = 0
    for cluster in doc["static_resources"]["clusters"]:
        for group in cluster["load_assignment"]["endpoints"]:
            for ep in group["lb_endpoints"]:
                ep["endpoint"]["address"]["socket_address"]["port_value"] = mock.port
    hcm = listener["filter_chains"][0]["filters"][0]["typed_config"]
    (wasm,) = [f for f in hcm["http_filters"] if "config_discovery" in f]
    pcs = wasm["config_discovery"]["config_source"]["path_config_source"]
    pcs["path"] = str(ecds)
    pcs["watched_directory"]["path"] = str(hot)
    cfg = workdir / "hot-reload-bootstrap.yaml"
    cfg.write_text(yaml.safe_dump(doc, sort_keys=False))

    admin_file = workdir / "hot-envoy.admin"
    admin_file.unlink(missing_ok=True)
    env = {k: v for k, v in os.environ.items() if k != KEY_ENV}
    env[KEY_ENV] = TEST_KEY
    argv = [
        ENVOY_BIN, "-c", cfg, "--use-dynamic-base-id", "--admin-address-path", admin_file,
        "--concurrency", str(concurrency), "-l", "info", "--component-log-level", "wasm:info,config:debug",
    ]  # fmt: skip
    proc = Proc("envoy (hot-reload)", argv, workdir / f"hot-envoy-{time.monotonic_ns()}.log", env=env)
    if procs is not None:
        procs.append(proc)
    gw = HotGateway(proc, None, None, cfg, mock)
    gw.ecds = ecds
    return wait_until_live(gw, admin_file)


# --------------------------------------------------------------------------------------------
# Load
# --------------------------------------------------------------------------------------------


@dataclass
class Outcome:
    sent: float  # time.monotonic() when the request was sent
    done: float
    status: int  # 0: no HTTP response (connection error, timeout)
    model: str | None  # x-ai-gateway-model
    version: str | None
    error: str | None = None


@dataclass
class Load:
    """``threads`` clients, each with its own keep-alive session, sending ``POST
    /v1/chat/completions`` for ``model`` back to back until :meth:`stop` (or ``max_seconds``,
    or ``max_requests`` in total: the loop is bounded whatever happens)."""

    gw: Gateway
    threads: int = 4
    model: str = "chat"
    max_seconds: float = 60.0
    max_requests: int = 40_000
    outcomes: list[Outcome] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _workers: list[threading.Thread] = field(default_factory=list)

    def start(self) -> Load:
        body = json.dumps({"model": self.model, "messages": [{"role": "user", "content": "hi"}]})
        deadline = time.monotonic() + self.max_seconds

        def work():
            s = requests.Session()
            while not self._stop.is_set() and time.monotonic() < deadline:
                with self._lock:
                    if len(self.outcomes) >= self.max_requests:
                        return
                t0 = time.monotonic()
                try:
                    r = s.post(
                        self.gw.url + "/v1/chat/completions",
                        data=body,
                        headers={"content-type": "application/json"},
                        timeout=10,
                    )
                    o = Outcome(
                        t0, time.monotonic(), r.status_code,
                        r.headers.get("x-ai-gateway-model"), r.headers.get("x-ai-gateway-version"),
                        None if r.status_code == 200 else r.text[:300],
                    )  # fmt: skip
                except requests.RequestException as e:
                    o = Outcome(t0, time.monotonic(), 0, None, None, repr(e))
                with self._lock:
                    self.outcomes.append(o)

        self._workers = [threading.Thread(target=work, daemon=True) for _ in range(self.threads)]
        for w in self._workers:
            w.start()
        return self

    def stop(self) -> list[Outcome]:
        self._stop.set()
        for w in self._workers:
            w.join(30)
        return self.snapshot()

    def snapshot(self) -> list[Outcome]:
        with self._lock:
            return list(self.outcomes)

    def wait_for(self, n: int, timeout: float = 20.0) -> None:
        """Until ``n`` more requests have completed."""
        target = len(self.snapshot()) + n
        deadline = time.monotonic() + timeout
        while len(self.snapshot()) < target:
            if time.monotonic() > deadline:
                raise AssertionError(f"the load made no progress: {len(self.snapshot())} of {target} requests")
            time.sleep(0.01)

    def failures(self) -> list[Outcome]:
        return [o for o in self.snapshot() if o.status != 200]


def split(outcomes: list[Outcome]) -> Counter:
    return Counter(f"{o.model}@{o.version}" for o in outcomes if o.status == 200)


def describe_split(outcomes: list[Outcome]) -> str:
    c = split(outcomes)
    n = sum(c.values())
    return ", ".join(f"{k} {v} ({100 * v / n:.1f} %)" for k, v in sorted(c.items())) if n else "(none)"


# --------------------------------------------------------------------------------------------
# Prometheus
# --------------------------------------------------------------------------------------------

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
